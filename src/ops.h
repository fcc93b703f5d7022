/* ops.h - the data model's operations on an engine: Get, Set, Clear, Range
 * and ClearRange, each checked, run and answered in one place, for the rpc
 * handlers (service.c) and for Txn (txn.c), which runs several of them as
 * one write. What the rules are is docs/PROTOCOL.md's; where each lives in
 * code is here.
 *
 * Every kv_op_* that can fail returns a kv_status and, when it is not
 * KV_OK, leaves a one-line reason in op->why (a static string or one in
 * op->alloc). Answers' bytes are views of the request (keys) or come from
 * op->alloc (values copied out of the engine), except a Get outside a Txn,
 * whose value is the engine's own bytes (see kv_op_get). */
#ifndef KV_OPS_H
#define KV_OPS_H

#include <stdint.h>
#include "service.h"

struct kv_watch_hub;

/* The most keys one Range page holds (limit 0, or a limit above it). */
#define KV_RANGE_MAX_PAGE 10000u
/* The most compares, and the most operations in each branch, of a Txn. */
#define KV_TXN_MAX_COMPARES 128u
#define KV_TXN_MAX_OPS 128u
/* Bytes of a frame kept for what an answer holds besides its pages and
 * results: the envelope around the payload (id, payload key and length:
 * 17), and a RangeResponse's more, count and revision or a TxnResponse's
 * succeeded and revision (24 at most). */
#define KV_ANSWER_HEADROOM 64u

typedef struct kv_op {
    kv_engine *engine;
    const kv_limits *limits;
    ProtobufCAllocator *alloc;  /* the request's arena */
    uint64_t rev;               /* the revision the writes make; 0 until
                                   kv_op_revision() fixes it */
    size_t budget;              /* answer bytes left under the frame limit */
    int in_txn;                 /* inside a Txn: values copied (a later
                                   write may move the engine's bytes), a
                                   Get of a missing key is found = false,
                                   conditional writes refused */
    const char *why;            /* the reason of the last failure */
    struct kv_watch_hub *watch; /* where writes record their events; NULL: none */
    uint64_t *expired_keys;     /* counts keys removed by expiry; NULL: none */
    uint64_t now;               /* ms on the engine's clock; 0 until kv_op_now() */
    int engine_failed;          /* an engine call failed (kv_op_engine_failed):
                                   the failure is this node's, not the
                                   request's (a cluster node must stop) */
} kv_op;

/* Prepares OP for one request of ENV: its answer may take a frame of ENV's
 * limit. Inline, as kv_op_revision: every request runs them. */
static inline void kv_op_init(kv_op *op, const kv_service_env *env, ProtobufCAllocator *alloc)
{
    size_t max = env->limits.max_frame_bytes;

    op->engine = env->engine;
    op->limits = &env->limits;
    op->alloc = alloc;
    op->rev = 0;
    op->budget = !max ? SIZE_MAX : max > KV_ANSWER_HEADROOM ? max - KV_ANSWER_HEADROOM : 0;
    op->in_txn = 0;
    op->why = NULL;
    op->watch = env->watch;
    op->expired_keys = env->expired_keys;
    op->now = 0;
    op->engine_failed = 0;
}

/* Now on the engine's clock, read once per request: every expiry decision
 * of one request sees the same instant. */
static inline uint64_t kv_op_now(kv_op *op)
{
    if (!op->now)
        op->now = kv_engine_now_ms(op->engine);
    return op->now;
}

/* Whether a key with the deadline EXPIRES (0: none) has expired: it is
 * gone for every read (expire.h). */
static inline int kv_op_due(kv_op *op, uint64_t expires)
{
    return expires && expires <= kv_op_now(op);
}

/* The milliseconds left to a key with the deadline EXPIRES, rounded up,
 * so that a live key with a TTL never reads as 0 (no TTL). */
static inline uint64_t kv_op_ttl_left(kv_op *op, uint64_t expires)
{
    if (!expires)
        return 0;
    uint64_t now = kv_op_now(op);
    return expires > now ? expires - now : 1;
}

/* A key as reads see it: get_view, with a key past its deadline
 * KV_NOT_FOUND (and *META zero). Inline: every Get runs it. */
static inline kv_status kv_op_lookup(kv_op *op, const ProtobufCBinaryData *key,
                                     ProtobufCBinaryData *value, kv_meta *meta)
{
    kv_status st = kv_engine_get_view(op->engine, key->data, key->len, op->alloc, value, meta);

    if (st == KV_OK && kv_op_due(op, meta->expires_ms)) {
        *meta = (kv_meta){ 0 };
        *value = (ProtobufCBinaryData){ 0, NULL };
        return KV_NOT_FOUND;
    }
    return st;
}

/* The revision OP's writes make: the engine's revision plus one, fixed at
 * the first call, so that every write of one request (a Txn) shares it. */
static inline uint64_t kv_op_revision(kv_op *op)
{
    if (!op->rev)
        op->rev = kv_engine_revision(op->engine) + 1;
    return op->rev;
}

/* The single-key operations. KV_OK with OUT filled, or an error: Get of a
 * missing key outside a Txn is KV_NOT_FOUND; a conditional write whose
 * if_mod_revision does not hold is KV_FAILED_PRECONDITION with nothing
 * changed; a bad request KV_INVALID_ARGUMENT. Outside a Txn a Get's value
 * points at the engine's bytes: pack the answer before anything writes. */
kv_status kv_op_get(kv_op *op, const Kvstore__V1__GetRequest *in, Kvstore__V1__GetResponse *out);
kv_status kv_op_set(kv_op *op, const Kvstore__V1__SetRequest *in, Kvstore__V1__SetResponse *out);
kv_status kv_op_clear(kv_op *op, const Kvstore__V1__ClearRequest *in,
                      Kvstore__V1__ClearResponse *out);

/* Touch (v2.1): a live key's TTL set or removed, nothing else changed. */
kv_status kv_op_touch(kv_op *op, const Kvstore__V1__TouchRequest *in,
                      Kvstore__V1__TouchResponse *out);

/* Range: a page of at most the request's limit (KV_RANGE_MAX_PAGE when 0
 * or above), cut short so that its answer stays within op->budget, which
 * it lowers by what the page takes. KeyValues and their bytes come from
 * op->alloc. KV_INVALID_ARGUMENT for prefix together with start or end;
 * KV_RESOURCE_EXHAUSTED when not even one key fits the budget, except in a
 * Txn, where the page is then empty (more = true). */
kv_status kv_op_range(kv_op *op, const Kvstore__V1__RangeRequest *in,
                      Kvstore__V1__RangeResponse *out);
kv_status kv_op_clear_range(kv_op *op, const Kvstore__V1__ClearRangeRequest *in,
                            Kvstore__V1__ClearRangeResponse *out);

/* The checks the operations above make before touching the engine, for a
 * Txn to make on every operation before it runs any. KV_OK or
 * KV_INVALID_ARGUMENT with op->why. */
kv_status kv_op_check_key(kv_op *op, const ProtobufCBinaryData *key);
kv_status kv_op_check_set(kv_op *op, const Kvstore__V1__SetRequest *in);
kv_status kv_op_check_clear(kv_op *op, const Kvstore__V1__ClearRequest *in);

/* The keys a Range or ClearRange selects, in *R (bytes of the request or
 * of op->alloc). REQUIRED: a request with no selector at all is refused
 * (ClearRange) rather than meaning every key (Range). KV_OK or
 * KV_INVALID_ARGUMENT with op->why. */
kv_status kv_op_select(kv_op *op, const ProtobufCBinaryData *start, const ProtobufCBinaryData *end,
                       const ProtobufCBinaryData *prefix, int required, kv_range *r);

/* op->why for a failed engine call: the engine's own reason when it gave
 * one (copied into op->alloc), else a generic one for ST. Returns ST. */
kv_status kv_op_engine_failed(kv_op *op, kv_status st);

/* Fails with a formatted reason in op->alloc: FMT takes two PRIu64. */
kv_status kv_op_fail(kv_op *op, kv_status st, const char *fmt, uint64_t a, uint64_t b);

#endif /* KV_OPS_H */
