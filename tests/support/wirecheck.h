/* wirecheck.h - where our hand-written decoders (the envelope, pbview) are
 * deliberately stricter than protobuf-c 1.4, and the comparison of pbview
 * with protobuf-c, for the differential tests (test_envelope, fuzz_frame). */
#ifndef KV_TEST_WIRECHECK_H
#define KV_TEST_WIRECHECK_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

/* Whether BUF holds, before anything else goes wrong, a field key wider
 * than 32 bits (a field number above 2^29 - 1) or one of field number 0.
 * protobuf-c truncates the first and skips the second; we refuse both, as
 * the protobuf encoding spec and the other languages' runtimes do. */
int kv_wire_stricter_than_protobuf_c(const uint8_t *buf, size_t len);

/* Unpacks BUF with pbview (src/pbview.h) and with protobuf-c as DESC and
 * compares: the same decision (or ours stricter as above) and the same
 * field values. Returns 1 when both accept, 0 when both refuse, -1 when
 * they disagree (with what differs written to stderr). */
int kv_wire_pbview_agrees(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len);

/* Whether pbview packs MSG into the very bytes protobuf-c does (1; also
 * when MSG is not flat and pbview leaves it to protobuf-c), else 0. */
int kv_wire_pbview_packs_as_protobuf_c(const ProtobufCMessage *msg);

/* The request messages pbview reads in the server, and the answers it
 * packs (NULL-terminated). */
extern const ProtobufCMessageDescriptor *const kv_wire_request_messages[];
extern const ProtobufCMessageDescriptor *const kv_wire_answer_messages[];

#endif
