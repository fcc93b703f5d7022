/* dispatch.h - from one frame's bytes to one answer frame: decodes the
 * RpcRequest envelope, finds the method in the service's protoc-c
 * descriptor by its gRPC path, unpacks the payload with the method's input
 * descriptor, invokes the service, and packs the RpcResponse. Knows nothing
 * about sockets (see conn.c) or request semantics (see exec.c); an rpc added
 * to the proto needs only its handler. */
#ifndef KV_DISPATCH_H
#define KV_DISPATCH_H

#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include <kvstore/status.h>
#include "arena.h"
#include "buf.h"
#include "stats.h"

/* The closure_data every handler receives: where its outcome goes. */
typedef struct kv_call {
    ProtobufCAllocator *alloc;  /* read-only: the request arena, for handlers */
    kv_status status;           /* KV_OK unless a handler called kv_call_fail */
    const char *message;        /* reason when status != KV_OK; static or arena */
    const uint8_t *payload;     /* read-only: the request message as sent (in
                                   the frame, valid during the call), for a
                                   handler that must read it with a
                                   descriptor of its own (exec_ping) */
    size_t payload_len;
    uint64_t id;                /* private: the request's id */
    kv_buf *out;                /* private: where the answer frame goes */
    int answered;               /* private: closure ran */
} kv_call;

/* Handlers call this before closure(NULL, closure_data) to fail the call.
 * MESSAGE must outlive the call (a literal or arena memory). */
void kv_call_fail(void *closure_data, kv_status status, const char *message);

/* Handles the RpcRequest in BODY[0..LEN) with SERVICE and appends exactly
 * one RpcResponse frame to OUT, counting it in STATS. Temporary memory comes
 * from ARENA, which the caller resets when it likes. Returns 0, or -1 when
 * memory for the answer is out (OUT is then unchanged). */
int kv_dispatch_frame(ProtobufCService *service, kv_arena *arena, kv_stats *stats,
                      const uint8_t *body, size_t len, kv_buf *out);

/* Appends an RpcResponse frame {ID, CODE, MESSAGE} with no payload to OUT
 * and counts it in STATS (may be NULL). MESSAGE may be NULL. Returns 0 or
 * -1 (out of memory). */
int kv_dispatch_reply(kv_buf *out, kv_stats *stats, uint64_t id, kv_status code,
                      const char *message);

#endif
