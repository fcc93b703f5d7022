/* ops.c - the data model's operations on an engine (see ops.h): the
 * checks of a request, the engine calls with their revisions, and the
 * answer's fields. Owns no state; the engine is the service's. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "expire.h"
#include "ops.h"
#include "varint.h"
#include "watch.h"

#define SET_IF(in) ((in)->_if_mod_revision_case == KVSTORE__V1__SET_REQUEST___IF_MOD_REVISION_IF_MOD_REVISION)
#define CLEAR_IF(in) ((in)->_if_mod_revision_case == KVSTORE__V1__CLEAR_REQUEST___IF_MOD_REVISION_IF_MOD_REVISION)

kv_status kv_op_fail(kv_op *op, kv_status st, const char *fmt, uint64_t a, uint64_t b)
{
    char *msg = op->alloc->alloc(op->alloc->allocator_data, 200);

    if (msg)
        snprintf(msg, 200, fmt, a, b);
    op->why = msg ? msg : "request over a server limit";
    return st;
}

kv_status kv_op_engine_failed(kv_op *op, kv_status st)
{
    const char *why = st == KV_NOT_FOUND ? NULL : kv_engine_last_error(op->engine);

    op->engine_failed |= st != KV_NOT_FOUND;
    if (why) {
        size_t n = strlen(why) + 1;
        char *copy = op->alloc->alloc(op->alloc->allocator_data, n);
        if (copy) {
            memcpy(copy, why, n);
            op->why = copy;
            return st;
        }
    }
    op->why = st == KV_NOT_FOUND ? "key not found"
            : st == KV_RESOURCE_EXHAUSTED ? "server out of memory"
            : st == KV_INVALID_ARGUMENT ? "key or value too large"
            : "storage engine failure";
    return st;
}

static inline kv_status check_key(kv_op *op, const ProtobufCBinaryData *key)
{
    if (key->len == 0) {
        op->why = "key must not be empty";
        return KV_INVALID_ARGUMENT;
    }
    if (key->len > op->limits->max_key_bytes)
        return kv_op_fail(op, KV_INVALID_ARGUMENT,
                          "key of %" PRIu64 " bytes exceeds the limit of %" PRIu64 " bytes",
                          key->len, op->limits->max_key_bytes);
    return KV_OK;
}

/* Refuses a condition (HAS_IF) where a Txn runs the write: its compares
 * say when. */
static kv_status check_condition(kv_op *op, int has_if)
{
    if (has_if && op->in_txn) {
        op->why = "if_mod_revision is not allowed inside a Txn: compare MOD_REVISION instead";
        return KV_INVALID_ARGUMENT;
    }
    return KV_OK;
}

static kv_status check_ttl(kv_op *op, uint64_t ttl_ms)
{
    if (ttl_ms <= KV_TTL_MAX_MS)
        return KV_OK;
    return kv_op_fail(op, KV_INVALID_ARGUMENT, "ttl_ms %" PRIu64 " exceeds the maximum of %"
                      PRIu64 " (about 31.7 years)", ttl_ms, KV_TTL_MAX_MS);
}

static inline kv_status check_set(kv_op *op, const Kvstore__V1__SetRequest *in)
{
    kv_status st = check_key(op, &in->key);

    if (st != KV_OK)
        return st;
    if (in->value.len > op->limits->max_value_bytes)
        return kv_op_fail(op, KV_INVALID_ARGUMENT,
                          "value of %" PRIu64 " bytes exceeds the limit of %" PRIu64 " bytes",
                          in->value.len, op->limits->max_value_bytes);
    if (in->ttl_ms && in->keep_ttl) {
        op->why = "ttl_ms and keep_ttl cannot be given together: keep_ttl keeps the key's TTL, "
                  "ttl_ms gives it a new one";
        return KV_INVALID_ARGUMENT;
    }
    if ((st = check_ttl(op, in->ttl_ms)) != KV_OK)
        return st;
    return check_condition(op, SET_IF(in));
}

static inline kv_status check_clear(kv_op *op, const Kvstore__V1__ClearRequest *in)
{
    kv_status st = check_key(op, &in->key);

    return st != KV_OK ? st : check_condition(op, CLEAR_IF(in));
}

kv_status kv_op_check_key(kv_op *op, const ProtobufCBinaryData *key)
{
    return check_key(op, key);
}

kv_status kv_op_check_set(kv_op *op, const Kvstore__V1__SetRequest *in)
{
    return check_set(op, in);
}

kv_status kv_op_check_clear(kv_op *op, const Kvstore__V1__ClearRequest *in)
{
    return check_clear(op, in);
}

/* A conditional write's test: KV_OK when KEY's mod_revision (0 when
 * absent) is WANT, else KV_FAILED_PRECONDITION saying what it is. */
static kv_status check_mod_revision(kv_op *op, const ProtobufCBinaryData *key, uint64_t want)
{
    ProtobufCBinaryData v;
    kv_meta meta = { 0 };
    kv_status st = kv_op_lookup(op, key, &v, &meta);

    if (st != KV_OK && st != KV_NOT_FOUND)
        return kv_op_engine_failed(op, st);
    if (meta.mod_revision == want)
        return KV_OK;
    if (st == KV_NOT_FOUND)
        return kv_op_fail(op, KV_FAILED_PRECONDITION, "if_mod_revision %" PRIu64 " does not hold: "
                          "the key does not exist (mod_revision %" PRIu64 ")", want, 0);
    return kv_op_fail(op, KV_FAILED_PRECONDITION, "if_mod_revision %" PRIu64 " does not hold: "
                      "the key's mod_revision is %" PRIu64, want, meta.mod_revision);
}

/* Inside a Txn: refuses a value of VLEN bytes that the answer has no
 * room left for, before it is copied. */
static kv_status check_fits(kv_op *op, size_t vlen)
{
    if (vlen < op->budget)
        return KV_OK;
    return kv_op_fail(op, KV_RESOURCE_EXHAUSTED, "the Txn's answer would pass the frame limit "
                      "(--max-frame-bytes) with a value of %" PRIu64 " bytes; %" PRIu64
                      " were left", vlen, op->budget);
}

kv_status kv_op_get(kv_op *op, const Kvstore__V1__GetRequest *in, Kvstore__V1__GetResponse *out)
{
    kv_meta meta;
    kv_status st = check_key(op, &in->key);

    if (st != KV_OK)
        return st;
    /* Outside a Txn a view of the engine's bytes, not a copy: the caller
     * packs the answer before anything can write to the engine. Inside
     * one, a later write may move them, so the value is copied, once it is
     * known to fit the answer. */
    st = kv_op_lookup(op, &in->key, &out->value, &meta);
    if (st == KV_OK && op->in_txn) {
        if ((st = check_fits(op, out->value.len)) != KV_OK)
            return st;
        if (kv_engine_copy_out(op->alloc, out->value.data, out->value.len,
                               &out->value) != KV_OK) {
            op->why = "server out of memory";
            return KV_RESOURCE_EXHAUSTED;
        }
    }
    out->revision = kv_engine_revision(op->engine);
    if (st == KV_NOT_FOUND && op->in_txn)
        return KV_OK;           /* found = false */
    if (st != KV_OK)
        return kv_op_engine_failed(op, st);
    out->found = 1;
    out->create_revision = meta.create_revision;
    out->mod_revision = meta.mod_revision;
    out->version = meta.version;
    out->ttl_ms = kv_op_ttl_left(op, meta.expires_ms);
    return KV_OK;
}

/* Refuses a Set that would take the engine past --max-memory-bytes. */
static kv_status memory_over(kv_op *op, const Kvstore__V1__SetRequest *in, uint64_t max)
{
    kv_engine_stats es;

    kv_engine_stats_get(op->engine, &es);
    if (es.memory_bytes + in->key.len + in->value.len <= max)
        return KV_OK;
    return kv_op_fail(op, KV_RESOURCE_EXHAUSTED, "memory limit reached: %" PRIu64 " of %" PRIu64
                      " bytes in use; Clear keys or raise --max-memory-bytes", es.memory_bytes, max);
}

static inline kv_status check_memory(kv_op *op, const Kvstore__V1__SetRequest *in)
{
    uint64_t max = op->limits->max_memory_bytes;

    return max ? memory_over(op, in, max) : KV_OK;
}

/* Outside a Txn (which does it for all its keys before it starts), a
 * write first removes its key if it has expired: at a revision of its
 * own, before the write's. */
static inline kv_status expire_first(kv_op *op, const ProtobufCBinaryData *key)
{
    if (op->in_txn || !kv_expire_any_due(op))
        return KV_OK;
    return kv_expire_key(op, key);
}

/* A Set that watchers and the history see: its PUT event is recorded
 * when the engine hands over the key it replaces (SEEN), before the write
 * moves its bytes, so the old value is copied once, into the event; a new
 * key's event is recorded after the write. A Set that then fails fails
 * its request, whose events are dropped (kv_watch_discard). */
typedef struct set_event {
    kv_op *op;
    const Kvstore__V1__SetRequest *in;
    uint64_t rev, expires, ttl;
    int found;
} set_event;

static int seen(void *ctx, const kv_entry *e)
{
    set_event *x = ctx;
    kv_watch_hub *h = x->op->watch;
    kv_meta now = { e->meta.create_revision, x->rev, e->meta.version + 1, x->expires };

    x->found = 1;
    kv_watch_put(h, x->rev, x->in->key.data, x->in->key.len, x->in->value.data,
                 x->in->value.len, &now, x->ttl, kv_watch_wants_prev(h) ? e : NULL);
    return 0;
}

kv_status kv_op_set(kv_op *op, const Kvstore__V1__SetRequest *in, Kvstore__V1__SetResponse *out)
{
    kv_status st = check_set(op, in);

    /* The condition first: a refused compare-and-set is told why. */
    if (st == KV_OK && SET_IF(in))
        st = check_mod_revision(op, &in->key, in->if_mod_revision);
    if (st == KV_OK)
        st = check_memory(op, in);
    if (st == KV_OK)
        st = expire_first(op, &in->key);
    if (st != KV_OK)
        return st;
    uint64_t expires = 0, ttl = in->ttl_ms;
    if (ttl) {
        expires = kv_op_now(op) + ttl;
    } else if (in->keep_ttl) {
        ProtobufCBinaryData v;
        kv_meta m;
        if (kv_op_lookup(op, &in->key, &v, &m) == KV_OK && m.expires_ms) {
            expires = m.expires_ms;
            ttl = kv_op_ttl_left(op, expires);
        }
    }
    uint64_t rev = kv_op_revision(op);
    int record = kv_watch_recording(op->watch);
    set_event x = { op, in, rev, expires, ttl, 0 };
    st = kv_engine_set_ttl(op->engine, in->key.data, in->key.len, in->value.data,
                           in->value.len, rev, expires, record ? seen : NULL, &x);
    if (st != KV_OK)
        return kv_op_engine_failed(op, st);
    if (record && !x.found) {
        kv_meta now = { rev, rev, 1, expires };
        kv_watch_put(op->watch, rev, in->key.data, in->key.len, in->value.data, in->value.len,
                     &now, ttl, NULL);
    }
    out->key = in->key;
    out->revision = rev;
    return KV_OK;
}

kv_status kv_op_touch(kv_op *op, const Kvstore__V1__TouchRequest *in,
                      Kvstore__V1__TouchResponse *out)
{
    ProtobufCBinaryData v;
    kv_meta m;
    kv_status st = check_key(op, &in->key);

    if (st == KV_OK)
        st = check_ttl(op, in->ttl_ms);
    if (st != KV_OK)
        return st;
    st = kv_op_lookup(op, &in->key, &v, &m);
    if (st == KV_OK)
        st = kv_engine_touch(op->engine, in->key.data, in->key.len,
                             in->ttl_ms ? kv_op_now(op) + in->ttl_ms : 0);
    if (st != KV_OK && st != KV_NOT_FOUND)
        return kv_op_engine_failed(op, st);
    out->found = st == KV_OK;
    return KV_OK;
}

kv_status kv_op_clear(kv_op *op, const Kvstore__V1__ClearRequest *in,
                      Kvstore__V1__ClearResponse *out)
{
    kv_status st = check_clear(op, in);

    if (st == KV_OK && CLEAR_IF(in))
        st = check_mod_revision(op, &in->key, in->if_mod_revision);
    if (st == KV_OK && op->in_txn) {    /* the old value must fit the answer */
        ProtobufCBinaryData v;
        kv_meta m;
        if (kv_op_lookup(op, &in->key, &v, &m) == KV_OK)
            st = check_fits(op, v.len);
    }
    if (st == KV_OK)
        st = expire_first(op, &in->key);
    if (st != KV_OK)
        return st;
    uint64_t rev = kv_op_revision(op);
    kv_meta was;
    st = kv_engine_unset_meta(op->engine, in->key.data, in->key.len, op->alloc, &out->value,
                              &was, rev);
    if (st != KV_OK && st != KV_NOT_FOUND)
        return kv_op_engine_failed(op, st);
    out->found = st == KV_OK;
    out->revision = out->found ? rev : 0;
    if (out->found && kv_watch_recording(op->watch)) {
        kv_entry e = { in->key.data, in->key.len, out->value.data, out->value.len, was };
        kv_watch_delete(op->watch, rev, in->key.data, in->key.len,
                        kv_watch_wants_prev(op->watch) ? &e : NULL, 0);
    }
    return KV_OK;
}

kv_status kv_op_select(kv_op *op, const ProtobufCBinaryData *start, const ProtobufCBinaryData *end,
                       const ProtobufCBinaryData *prefix, int required, kv_range *r)
{
    *r = (kv_range){ start->data, start->len, end->data, end->len };
    if (prefix->len && (start->len || end->len)) {
        op->why = "prefix cannot be given together with start or end";
        return KV_INVALID_ARGUMENT;
    }
    if (!prefix->len) {
        if (required && !start->len && !end->len) {
            op->why = "no keys selected: give prefix, start or end (start = \"\\x00\" selects "
                      "every key)";
            return KV_INVALID_ARGUMENT;
        }
        return KV_OK;
    }
    /* Every key that begins with P: [P, the first key after all of them),
     * which is P with its last byte below 0xff raised by one and what
     * follows it dropped; a P of only 0xff bytes has no such key. */
    size_t n = prefix->len;
    while (n && prefix->data[n - 1] == 0xff)
        n--;
    *r = (kv_range){ prefix->data, prefix->len, NULL, 0 };
    if (!n)
        return KV_OK;
    uint8_t *e = op->alloc->alloc(op->alloc->allocator_data, n);
    if (!e) {
        op->why = "server out of memory";
        return KV_RESOURCE_EXHAUSTED;
    }
    memcpy(e, prefix->data, n);
    e[n - 1]++;
    r->end = e;
    r->end_len = n;
    return KV_OK;
}

/* A field's key (one byte below field 16) and the varint of LEN. */
static inline size_t field_size(uint64_t len)
{
    return 1 + kv_varint_size(len);
}

static inline size_t number_size(uint64_t v)    /* 0 is not sent */
{
    return v ? field_size(v) : 0;
}

/* What a walk fills: the page so far. Its memory grows with what the
 * answer holds, not with the limit asked for (a Txn may hold 128 Ranges):
 * each KeyValue comes with its bytes in one arena block, and the array of
 * pointers doubles as it fills. */
typedef struct page {
    kv_op *op;
    Kvstore__V1__RangeResponse *out;
    size_t limit;               /* keys the page may hold */
    size_t room;                /* pointers out->kvs has room for */
    int keys_only;
    kv_status st;
} page;

/* Stops the walk for want of memory. */
static int page_oom(page *pg)
{
    pg->st = KV_RESOURCE_EXHAUSTED;
    pg->op->why = "server out of memory";
    return 1;
}

/* kv_entry_fn: copies one key (and value) into the page, unless the page
 * is full or its answer would pass the budget. */
static int page_add(void *ctx, const kv_entry *e)
{
    page *pg = ctx;
    kv_op *op = pg->op;
    ProtobufCAllocator *a = op->alloc;
    Kvstore__V1__RangeResponse *out = pg->out;
    size_t vlen = pg->keys_only ? 0 : e->vlen;

    if (kv_op_due(op, e->meta.expires_ms))
        return 0;               /* expired: gone for reads */
    if (out->n_kvs == pg->limit)
        return 1;
    uint64_t ttl = kv_op_ttl_left(op, e->meta.expires_ms);
    size_t body = field_size(e->klen) + e->klen + (vlen ? field_size(vlen) + vlen : 0) +
                  number_size(e->meta.create_revision) + number_size(e->meta.mod_revision) +
                  number_size(e->meta.version) + number_size(ttl);
    size_t need = field_size(body) + body;
    if (need > op->budget) {
        /* Alone, a Range with room for no key would page forever; in a
         * Txn it answers an empty page (more = true) and the Txn goes on. */
        if (!out->n_kvs && !op->in_txn)
            pg->st = kv_op_fail(op, KV_RESOURCE_EXHAUSTED, "the first key of the range needs %"
                                PRIu64 " bytes, more than the %" PRIu64 " an answer frame has "
                                "left (--max-frame-bytes); read it with Get or keys_only", need,
                                op->budget);
        return 1;
    }
    if (out->n_kvs == pg->room) {
        size_t room = pg->room ? pg->room * 2 : 64;
        Kvstore__V1__KeyValue **kvs = a->alloc(a->allocator_data, room * sizeof *kvs);
        if (!kvs)
            return page_oom(pg);
        if (out->n_kvs)
            memcpy(kvs, out->kvs, out->n_kvs * sizeof *kvs);
        out->kvs = kvs;
        pg->room = room;
    }
    Kvstore__V1__KeyValue *kv = a->alloc(a->allocator_data, sizeof *kv + e->klen + vlen);
    if (!kv)
        return page_oom(pg);
    uint8_t *bytes = (uint8_t *)(kv + 1);
    kvstore__v1__key_value__init(kv);
    memcpy(bytes, e->key, e->klen);
    kv->key = (ProtobufCBinaryData){ e->klen, bytes };
    if (vlen) {
        memcpy(bytes + e->klen, e->value, vlen);
        kv->value = (ProtobufCBinaryData){ vlen, bytes + e->klen };
    }
    kv->create_revision = e->meta.create_revision;
    kv->mod_revision = e->meta.mod_revision;
    kv->version = e->meta.version;
    kv->ttl_ms = ttl;
    out->kvs[out->n_kvs++] = kv;
    op->budget -= need;
    return 0;
}

kv_status kv_op_range(kv_op *op, const Kvstore__V1__RangeRequest *in,
                      Kvstore__V1__RangeResponse *out)
{
    kv_range r;
    uint64_t count;
    kv_status st = kv_op_select(op, &in->start, &in->end, &in->prefix, 0, &r);

    if (st != KV_OK)
        return st;
    out->revision = kv_engine_revision(op->engine);
    if ((st = kv_engine_count(op->engine, &r, &count)) != KV_OK)
        return kv_op_engine_failed(op, st);
    if (kv_expire_any_due(op)) {
        uint64_t due;
        if ((st = kv_expire_count(op, &r, count, &due)) != KV_OK)
            return st;
        count -= due < count ? due : count;
    }
    out->count = count;
    out->n_kvs = 0;
    if (in->count_only || !count) {
        out->more = 0;
        return KV_OK;
    }
    page pg = { op, out, in->limit && in->limit < KV_RANGE_MAX_PAGE ? in->limit
                                                                   : KV_RANGE_MAX_PAGE,
                0, in->keys_only, KV_OK };
    st = kv_engine_walk(op->engine, &r, in->reverse, !in->keys_only, page_add, &pg);
    if (st != KV_OK)
        return kv_op_engine_failed(op, st);
    if (pg.st != KV_OK)
        return pg.st;
    out->more = out->n_kvs < count;
    return KV_OK;
}

/* kv_entry_fn for a ClearRange that watchers see: each key removed. */
typedef struct removal {
    kv_op *op;
    uint64_t rev;
    int prev;
} removal;

static int record_removal(void *ctx, const kv_entry *e)
{
    removal *rm = ctx;

    kv_watch_delete(rm->op->watch, rm->rev, e->key, e->klen, rm->prev ? e : NULL, 0);
    return 0;
}

kv_status kv_op_clear_range(kv_op *op, const Kvstore__V1__ClearRangeRequest *in,
                            Kvstore__V1__ClearRangeResponse *out)
{
    kv_range r;
    uint64_t deleted = 0;
    kv_status st = kv_op_select(op, &in->start, &in->end, &in->prefix, 1, &r);

    if (st == KV_OK && !op->in_txn && kv_expire_any_due(op))
        st = kv_expire_range(op, &r);
    if (st != KV_OK)
        return st;
    uint64_t rev = kv_op_revision(op);
    removal rm = { op, rev, kv_watch_wants_prev(op->watch) };
    st = kv_watch_recording(op->watch)
             ? kv_engine_unset_range_each(op->engine, &r, rev, &deleted, record_removal, &rm)
             : kv_engine_unset_range(op->engine, &r, rev, &deleted);
    if (st != KV_OK)
        return kv_op_engine_failed(op, st);
    out->deleted = deleted;
    out->revision = deleted ? rev : 0;
    return KV_OK;
}
