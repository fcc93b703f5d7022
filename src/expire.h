/* expire.h - expiry (v2.1), decided in one place: which keys count as gone
 * (a key whose deadline has come, for every read at once), and their
 * removal, which is a write like any other: at a revision of its own, seen
 * by watchers as DELETE events with expired = true. Keys are removed by
 * the active cycle, a bounded batch per loop turn (kv_expire_cycle, run by
 * the server), and by a write that finds its key expired (the removal
 * first, then the write at the next revision). In a cluster only the
 * leader will run these; followers' reads hide expired keys the same way.
 * Engines only keep deadlines and find the keys past them (engine.h). */
#ifndef KV_EXPIRE_H
#define KV_EXPIRE_H

#include <stddef.h>
#include <stdint.h>
#include "ops.h"

/* The longest TTL a Set or Touch may give: 10^12 ms, some 31.7 years. */
#define KV_TTL_MAX_MS 1000000000000ull

/* Keys the active cycle removes at most in one loop turn, as one write. */
#define KV_EXPIRE_BATCH 1000u

/* Whether some key of the store may have expired: the engine's earliest
 * deadline has come. Cheap; every write asks before looking further. */
static inline int kv_expire_any_due(kv_op *op)
{
    uint64_t next = kv_engine_next_deadline(op->engine);

    return next && next <= kv_op_now(op);
}

/* Removes KEY if it has expired, as one write of its own (its revision
 * and event committed). KV_OK (also when it had not), or an engine error
 * with op->why. Call before the write's revision is fixed. */
kv_status kv_expire_key(kv_op *op, const ProtobufCBinaryData *key);

/* Removes every expired key of R, as one write. As kv_expire_key. Looks
 * at the fewer of the store's expired keys and R's keys. */
kv_status kv_expire_range(kv_op *op, const kv_range *r);

/* The active cycle: removes up to MAX expired keys as one write. Returns
 * KV_OK with their number in *REMOVED and *MORE set when expired keys
 * remain, or an engine error. */
kv_status kv_expire_cycle(kv_op *op, size_t max, size_t *removed, int *more);

/* The cycle in two halves, for a cluster, where the leader decides and
 * every node removes: kv_expire_find gathers up to MAX expired keys, in
 * key order, into *KEYS (memory from op->alloc; *N of them; *MORE when
 * others remain), removing nothing; kv_expire_keys removes, as one write,
 * those of KEYS[0..N) that are expired at op->now (a key rewritten since
 * it was found is left alone), their number in *REMOVED. Both KV_OK, or
 * an error with op->why. */
kv_status kv_expire_find(kv_op *op, size_t max, ProtobufCBinaryData **keys, size_t *n,
                         int *more);
kv_status kv_expire_keys(kv_op *op, const ProtobufCBinaryData *keys, size_t n, size_t *removed);

/* The number of expired keys (not yet removed) in R, whose keys number
 * IN_RANGE in the engine, in *N: what the engine's count of R holds that
 * reads must not see. Costs the fewer of the store's expired keys and
 * IN_RANGE. */
kv_status kv_expire_count(kv_op *op, const kv_range *r, uint64_t in_range, uint64_t *n);

#endif
