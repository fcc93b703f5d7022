/* wirecheck.h - where our envelope decoder is deliberately stricter than
 * protobuf-c 1.4, for the differential tests (test_envelope, fuzz_frame). */
#ifndef KV_TEST_WIRECHECK_H
#define KV_TEST_WIRECHECK_H

#include <stddef.h>
#include <stdint.h>

/* Whether BUF holds, before anything else goes wrong, a field key wider
 * than 32 bits (a field number above 2^29 - 1) or one of field number 0.
 * protobuf-c truncates the first and skips the second; we refuse both, as
 * the protobuf encoding spec and the other languages' runtimes do. */
int kv_wire_stricter_than_protobuf_c(const uint8_t *buf, size_t len);

#endif
