/* expire.c - the removal of expired keys; see expire.h. */
#include <stdlib.h>
#include <string.h>
#include "expire.h"
#include "watch.h"

/* What a walk gathers of the expired keys: their keys, copied, or (COUNT
 * only) their number; those of R only when R is not NULL. The walk is
 * over the expired keys (walk_expiring), or, when there are more of them
 * than R has keys, over R (BY_RANGE): so a read of a small range during a
 * mass expiry costs the range, not the whole store's expired keys. */
typedef struct due_keys {
    kv_op *op;
    const kv_range *r;
    size_t max;
    int count_only;
    uint64_t budget;    /* expired keys the walk may look at before it
                           gives up for a walk over R */
    int by_range;       /* walking R: keep the keys that expired */
    uint64_t seen;
    int gave_up;
    ProtobufCBinaryData *keys;
    size_t n, cap;
    int more;           /* stopped at MAX with more to come */
    kv_status st;
} due_keys;

/* A walk of the expired keys of R (NULL: of the store), up to MAX kept. */
#define DUE_KEYS(op, r, max, count_only)                                        \
    ((due_keys){ (op), (r), (max), (count_only), UINT64_MAX, 0, 0, 0, NULL, 0, 0, 0, KV_OK })

static int gather(void *ctx, const kv_entry *e)
{
    due_keys *d = ctx;
    ProtobufCAllocator *a = d->op->alloc;

    if (d->by_range) {
        if (!kv_op_due(d->op, e->meta.expires_ms))
            return 0;
    } else {
        if (++d->seen > d->budget) {
            d->gave_up = 1;
            return 1;
        }
        if (d->r && !kv_range_has(d->r, e->key, e->klen))
            return 0;
    }
    if (d->n == d->max) {
        d->more = 1;
        return 1;
    }
    if (d->count_only) {
        d->n++;
        return 0;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        ProtobufCBinaryData *k = a->alloc(a->allocator_data, cap * sizeof *k);
        if (!k)
            goto oom;
        if (d->n)
            memcpy(k, d->keys, d->n * sizeof *k);
        d->keys = k;
        d->cap = cap;
    }
    uint8_t *copy = a->alloc(a->allocator_data, e->klen);
    if (!copy)
        goto oom;
    memcpy(copy, e->key, e->klen);
    d->keys[d->n++] = (ProtobufCBinaryData){ e->klen, copy };
    return 0;
oom:
    d->st = KV_RESOURCE_EXHAUSTED;
    d->op->why = "server out of memory";
    return 1;
}

static int key_order(const void *a, const void *b)
{
    const ProtobufCBinaryData *x = a, *y = b;

    return kv_key_cmp(x->data, x->len, y->data, y->len);
}

/* The expired keys D asks for, in key order (a removal's events come in
 * key order, as a ClearRange's). With a range, IN_RANGE is its number of
 * keys: past as many expired keys, the range is walked instead. */
static kv_status find_due(kv_op *op, due_keys *d, uint64_t in_range)
{
    if (d->r)
        d->budget = in_range;
    kv_status st = kv_engine_walk_expiring(op->engine, kv_op_now(op), 0, gather, d);
    if (st == KV_OK && d->gave_up) {
        d->n = 0;
        d->by_range = 1;
        st = kv_engine_walk(op->engine, d->r, 0, 0, gather, d);
    }
    if (st != KV_OK)
        return kv_op_engine_failed(op, st);
    if (d->st == KV_OK && d->n > 1 && !d->count_only)
        qsort(d->keys, d->n, sizeof *d->keys, key_order);
    return d->st;
}

static void count_expired(kv_op *op, size_t n)
{
    if (op->expired_keys)
        *op->expired_keys += n;
}

/* Removes KEYS[0..N) as one write at the next revision, each a DELETE
 * event with expired = true, committed. */
static kv_status remove_keys(kv_op *op, const ProtobufCBinaryData *keys, size_t n)
{
    kv_watch_hub *h = op->watch;
    int record = kv_watch_recording(h), prev = kv_watch_wants_prev(h);
    uint64_t rev = kv_engine_revision(op->engine) + 1;
    size_t removed = 0;

    for (size_t i = 0; i < n; i++) {
        ProtobufCBinaryData old = { 0, NULL };
        kv_meta meta;
        kv_status st = kv_engine_unset_meta(op->engine, keys[i].data, keys[i].len,
                                            op->alloc, prev ? &old : NULL, &meta, rev);
        if (st == KV_NOT_FOUND)
            continue;
        if (st != KV_OK) {
            /* The keys removed so far are removed: say so to watchers. */
            kv_watch_commit(h);
            count_expired(op, removed);
            return kv_op_engine_failed(op, st);
        }
        removed++;
        if (record) {
            kv_entry e = { keys[i].data, keys[i].len, old.data, old.len, meta };
            kv_watch_delete(h, rev, keys[i].data, keys[i].len, prev ? &e : NULL, 1);
        }
    }
    kv_watch_commit(h);
    count_expired(op, removed);
    return KV_OK;
}

kv_status kv_expire_key(kv_op *op, const ProtobufCBinaryData *key)
{
    ProtobufCBinaryData v;
    kv_meta meta;
    kv_status st = kv_engine_get_view(op->engine, key->data, key->len, op->alloc, &v, &meta);

    if (st == KV_NOT_FOUND || (st == KV_OK && !kv_op_due(op, meta.expires_ms)))
        return KV_OK;
    if (st != KV_OK)
        return kv_op_engine_failed(op, st);
    return remove_keys(op, key, 1);
}

kv_status kv_expire_range(kv_op *op, const kv_range *r)
{
    due_keys d = DUE_KEYS(op, r, SIZE_MAX, 0);
    uint64_t in_range;
    kv_status st = kv_engine_count(op->engine, r, &in_range);

    if (st != KV_OK)
        return kv_op_engine_failed(op, st);
    if ((st = find_due(op, &d, in_range)) != KV_OK || !d.n)
        return st;
    return remove_keys(op, d.keys, d.n);
}

kv_status kv_expire_find(kv_op *op, size_t max, ProtobufCBinaryData **keys, size_t *n,
                         int *more)
{
    due_keys d = DUE_KEYS(op, NULL, max, 0);
    kv_status st = find_due(op, &d, 0);

    *keys = d.keys;
    *n = st == KV_OK ? d.n : 0;
    *more = d.more;
    return st;
}

kv_status kv_expire_cycle(kv_op *op, size_t max, size_t *removed, int *more)
{
    ProtobufCBinaryData *keys;
    kv_status st = kv_expire_find(op, max, &keys, removed, more);

    if (st != KV_OK || !*removed)
        return st;
    return remove_keys(op, keys, *removed);
}

kv_status kv_expire_keys(kv_op *op, const ProtobufCBinaryData *keys, size_t n, size_t *removed)
{
    ProtobufCBinaryData *due = n ? op->alloc->alloc(op->alloc->allocator_data, n * sizeof *due)
                                 : NULL;
    size_t k = 0;

    *removed = 0;
    if (n && !due) {
        op->why = "server out of memory";
        return KV_RESOURCE_EXHAUSTED;
    }
    for (size_t i = 0; i < n; i++) {
        ProtobufCBinaryData v;
        kv_meta meta;
        kv_status st = kv_engine_get_view(op->engine, keys[i].data, keys[i].len, op->alloc,
                                          &v, &meta);
        if (st == KV_OK && kv_op_due(op, meta.expires_ms))
            due[k++] = keys[i];
        else if (st != KV_OK && st != KV_NOT_FOUND)
            return kv_op_engine_failed(op, st);
    }
    *removed = k;
    return k ? remove_keys(op, due, k) : KV_OK;
}

kv_status kv_expire_count(kv_op *op, const kv_range *r, uint64_t in_range, uint64_t *n)
{
    due_keys d = DUE_KEYS(op, r, SIZE_MAX, 1);
    kv_status st = find_due(op, &d, in_range);

    *n = d.n;
    return st;
}
