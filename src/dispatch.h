/* dispatch.h - the envelope level of one frame: decodes the RpcRequest,
 * finds the method in the service's protoc-c descriptor by its gRPC path
 * and unpacks the payload with the method's input descriptor; packs
 * RpcResponse frames. Knows nothing of connections (see session.c) or of
 * what requests mean (see service.c): an rpc added to the proto needs only
 * its handler. */
#ifndef KV_DISPATCH_H
#define KV_DISPATCH_H

#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include <kvstore/status.h>
#include "arena.h"
#include "buf.h"
#include "envelope.h"
#include "stats.h"

/* One frame's request, decoded. */
typedef struct kv_request {
    uint64_t id;                /* 0 when the envelope did not decode */
    unsigned method;            /* index in the descriptor's methods */
    ProtobufCMessage *input;    /* the unpacked payload, in the arena */
    kv_status status;           /* KV_OK, or why the request cannot be called */
    const char *message;        /* the reason when status != KV_OK */
    kv_envelope env;            /* the RpcRequest as decoded: method, payload,
                                   client_id and seq point into the frame */
} kv_request;

/* Decodes the RpcRequest in BODY[0..LEN) for the service DESC into *REQ,
 * with memory from ARENA. The payload is unpacked with INPUTS[method] when
 * INPUTS (indexed like DESC's methods) has one there: a message of the same
 * encoding that reads it differently; else with the method's own input.
 * On a bad envelope, an unknown method or a payload that does not decode,
 * REQ->status says so (and the request must be answered with that error). */
void kv_dispatch_decode(const ProtobufCServiceDescriptor *desc,
                        const ProtobufCMessageDescriptor *const *inputs, kv_arena *arena,
                        const uint8_t *body, size_t len, kv_request *req);

/* Unpacks LEN bytes of DATA as a DESC message into ARENA, as requests are
 * (flat messages in place, views of DATA; others by protobuf-c). Returns
 * the message, or NULL when the bytes do not decode or memory is out. */
ProtobufCMessage *kv_dispatch_unpack(const ProtobufCMessageDescriptor *desc, kv_arena *arena,
                                     const uint8_t *data, size_t len);

/* Appends an RpcResponse frame {ID, OK, MSG} to OUT. Returns 0, or -1 when
 * memory is out or the answer exceeds a frame (OUT is then unchanged). */
int kv_dispatch_answer(kv_buf *out, uint64_t id, const ProtobufCMessage *msg);

/* Appends a stream frame {ID, OK, MSG, stream = true} to OUT (packed by
 * protobuf-c: stream payloads are not on the hot path). Returns as
 * kv_dispatch_answer(). */
int kv_dispatch_stream(kv_buf *out, uint64_t id, const ProtobufCMessage *msg);

/* Appends an RpcResponse frame {ID, CODE, MESSAGE, LEADER} with no payload
 * to OUT. MESSAGE and LEADER (v3: the leader's client address, with
 * UNAVAILABLE from a follower) may be NULL. Returns 0 or -1 (out of
 * memory, OUT unchanged). */
int kv_dispatch_error(kv_buf *out, uint64_t id, kv_status code, const char *message,
                      const char *leader);

/* The gRPC path of DESC's method METHOD ("/kvstore.v1.KV/Get"), built
 * once and static; "" when there is none. */
const char *kv_dispatch_method_path(const ProtobufCServiceDescriptor *desc, unsigned method);

#endif
