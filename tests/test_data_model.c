/* test_data_model.c - the v2 data model end to end (docs/PROTOCOL.md, Data
 * model): revisions, conditional writes, Range, ClearRange and Txn, each
 * rule against a real kvstored (support/fixture.c; once per engine). Calls
 * go through kv_client_call_raw with the generated messages, so these
 * tests check the wire contract rather than any client helper. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <kvstore/client.h>
#include "support/fixture.h"

typedef kv_fixture fixture;

#define B(s) ((ProtobufCBinaryData){ sizeof(s) - 1, (uint8_t *)(s) })
#define PATH(m) "/kvstore.v1.KV/" m

/* Calls METHOD with REQ; returns the status and, on OK, the answer
 * unpacked as OUT_DESC into *OUT (free with protobuf_c_message_free_unpacked). */
static kv_status call(kv_client *c, const char *method, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *out_desc, void *out)
{
    size_t n = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(n ? n : 1), *ans = NULL;
    size_t alen = 0;

    protobuf_c_message_pack(req, buf);
    kv_status st = kv_client_call_raw(c, method, buf, n, &ans, &alen);
    free(buf);
    if (st == KV_OK) {
        ProtobufCMessage *m = protobuf_c_message_unpack(out_desc, NULL, alen, ans);
        assert_non_null(m);
        *(ProtobufCMessage **)out = m;
    }
    free(ans);
    return st;
}

#define FREE(m) protobuf_c_message_free_unpacked(&(m)->base, NULL)

static Kvstore__V1__SetResponse *set_if(kv_client *c, ProtobufCBinaryData key,
                                        ProtobufCBinaryData value, int has_if, uint64_t if_rev,
                                        kv_status want)
{
    Kvstore__V1__SetRequest req = KVSTORE__V1__SET_REQUEST__INIT;
    Kvstore__V1__SetResponse *out = NULL;

    req.key = key;
    req.value = value;
    if (has_if) {
        req._if_mod_revision_case = KVSTORE__V1__SET_REQUEST___IF_MOD_REVISION_IF_MOD_REVISION;
        req.if_mod_revision = if_rev;
    }
    assert_int_equal(call(c, PATH("Set"), &req.base, &kvstore__v1__set_response__descriptor, &out),
                     want);
    return out;
}

/* Sets KEY and returns the revision the write made. */
static uint64_t set(kv_client *c, ProtobufCBinaryData key, ProtobufCBinaryData value)
{
    Kvstore__V1__SetResponse *r = set_if(c, key, value, 0, 0, KV_OK);
    uint64_t rev = r->revision;

    assert_memory_equal(r->key.data, key.data, key.len);
    FREE(r);
    return rev;
}

static Kvstore__V1__GetResponse *get(kv_client *c, ProtobufCBinaryData key, kv_status want)
{
    Kvstore__V1__GetRequest req = KVSTORE__V1__GET_REQUEST__INIT;
    Kvstore__V1__GetResponse *out = NULL;

    req.key = key;
    assert_int_equal(call(c, PATH("Get"), &req.base, &kvstore__v1__get_response__descriptor, &out),
                     want);
    return out;
}

static Kvstore__V1__ClearResponse *clear_if(kv_client *c, ProtobufCBinaryData key, int has_if,
                                            uint64_t if_rev, kv_status want)
{
    Kvstore__V1__ClearRequest req = KVSTORE__V1__CLEAR_REQUEST__INIT;
    Kvstore__V1__ClearResponse *out = NULL;

    req.key = key;
    if (has_if) {
        req._if_mod_revision_case = KVSTORE__V1__CLEAR_REQUEST___IF_MOD_REVISION_IF_MOD_REVISION;
        req.if_mod_revision = if_rev;
    }
    assert_int_equal(call(c, PATH("Clear"), &req.base, &kvstore__v1__clear_response__descriptor,
                          &out), want);
    return out;
}

static uint64_t store_revision(kv_client *c)
{
    Kvstore__V1__StatsRequest req = KVSTORE__V1__STATS_REQUEST__INIT;
    Kvstore__V1__StatsResponse *out = NULL;

    assert_int_equal(call(c, PATH("Stats"), &req.base, &kvstore__v1__stats_response__descriptor,
                          &out), KV_OK);
    uint64_t rev = out->revision;
    FREE(out);
    return rev;
}

static void assert_meta(kv_client *c, ProtobufCBinaryData key, uint64_t create, uint64_t mod,
                        uint64_t version)
{
    Kvstore__V1__GetResponse *g = get(c, key, KV_OK);

    assert_true(g->found);
    assert_int_equal(g->create_revision, create);
    assert_int_equal(g->mod_revision, mod);
    assert_int_equal(g->version, version);
    assert_true(g->revision >= mod);
    FREE(g);
}

static void revisions_count_every_change_and_only_changes(void **state)
{
    fixture *f = *state;

    assert_int_equal(store_revision(f->c), 0);
    assert_int_equal(set(f->c, B("a"), B("1")), 1);
    assert_meta(f->c, B("a"), 1, 1, 1);
    assert_int_equal(set(f->c, B("a"), B("1")), 2);     /* the same value is a write */
    assert_int_equal(set(f->c, B("b"), B("x")), 3);
    assert_meta(f->c, B("a"), 1, 2, 2);

    Kvstore__V1__GetResponse *g = get(f->c, B("b"), KV_OK);
    assert_int_equal(g->revision, 3);
    assert_int_equal(g->value.len, 1);
    FREE(g);

    Kvstore__V1__ClearResponse *c = clear_if(f->c, B("a"), 0, 0, KV_OK);
    assert_true(c->found);
    assert_int_equal(c->revision, 4);
    assert_memory_equal(c->value.data, "1", 1);
    FREE(c);
    c = clear_if(f->c, B("a"), 0, 0, KV_OK);      /* nothing to clear: no revision */
    assert_false(c->found);
    assert_int_equal(c->revision, 0);
    FREE(c);
    assert_int_equal(store_revision(f->c), 4);
    get(f->c, B("a"), KV_NOT_FOUND);
    /* Created again: it starts over. */
    assert_int_equal(set(f->c, B("a"), B("2")), 5);
    assert_meta(f->c, B("a"), 5, 5, 1);
}

static void conditional_writes_hold_or_change_nothing(void **state)
{
    fixture *f = *state;
    Kvstore__V1__SetResponse *s;
    Kvstore__V1__ClearResponse *c;

    s = set_if(f->c, B("k"), B("v1"), 1, 0, KV_OK);        /* create-only */
    assert_int_equal(s->revision, 1);
    FREE(s);
    set_if(f->c, B("k"), B("v2"), 1, 0, KV_FAILED_PRECONDITION);
    assert_non_null(strstr(kv_client_last_message(f->c), "mod_revision is 1"));
    set_if(f->c, B("k"), B("v2"), 1, 7, KV_FAILED_PRECONDITION);
    assert_int_equal(store_revision(f->c), 1);
    kv_assert_value(f->c, "k", 1, "v1", 2);
    s = set_if(f->c, B("k"), B("v2"), 1, 1, KV_OK);
    assert_int_equal(s->revision, 2);
    FREE(s);
    set_if(f->c, B("other"), B("x"), 1, 2, KV_FAILED_PRECONDITION);   /* absent: 0 */
    assert_non_null(strstr(kv_client_last_message(f->c), "does not exist"));

    clear_if(f->c, B("k"), 1, 1, KV_FAILED_PRECONDITION);
    assert_int_equal(store_revision(f->c), 2);
    c = clear_if(f->c, B("k"), 1, 2, KV_OK);
    assert_true(c->found);
    assert_int_equal(c->revision, 3);
    FREE(c);
    c = clear_if(f->c, B("k"), 1, 0, KV_OK);      /* absent, as asked: nothing changes */
    assert_false(c->found);
    assert_int_equal(c->revision, 0);
    FREE(c);
    assert_int_equal(store_revision(f->c), 3);
}

/* Range with the given fields; the answer. */
typedef struct range_args {
    ProtobufCBinaryData start, end, prefix;
    uint32_t limit;
    int keys_only, count_only, reverse;
} range_args;

static Kvstore__V1__RangeResponse *range(kv_client *c, const range_args *a, kv_status want)
{
    Kvstore__V1__RangeRequest req = KVSTORE__V1__RANGE_REQUEST__INIT;
    Kvstore__V1__RangeResponse *out = NULL;

    req.start = a->start;
    req.end = a->end;
    req.prefix = a->prefix;
    req.limit = a->limit;
    req.keys_only = a->keys_only;
    req.count_only = a->count_only;
    req.reverse = a->reverse;
    assert_int_equal(call(c, PATH("Range"), &req.base, &kvstore__v1__range_response__descriptor,
                          &out), want);
    return out;
}

static void assert_key(const Kvstore__V1__KeyValue *kv, ProtobufCBinaryData want)
{
    assert_int_equal(kv->key.len, want.len);
    assert_memory_equal(kv->key.data, want.data, want.len);
}

/* In byte order; the value of each is its key reversed, so a wrong value
 * shows. */
static const ProtobufCBinaryData ordered[] = {
    { 2, (uint8_t *)"\x00z" }, { 1, (uint8_t *)"a" }, { 2, (uint8_t *)"a\x00" },
    { 2, (uint8_t *)"ab" }, { 3, (uint8_t *)"abc" }, { 3, (uint8_t *)"ab\xff" },
    { 1, (uint8_t *)"b" }, { 2, (uint8_t *)"b\xff" }, { 1, (uint8_t *)"\xff" },
    { 2, (uint8_t *)"\xff\xff" },
};
#define N_ORDERED (sizeof ordered / sizeof ordered[0])

static void store_ordered(kv_client *c)
{
    /* Stored out of order, so the order seen is the server's. */
    for (size_t i = 0; i < N_ORDERED; i++)
        set(c, ordered[(i * 7) % N_ORDERED], ordered[(i * 7) % N_ORDERED]);
}

static void range_reads_in_byte_order_and_pages(void **state)
{
    fixture *f = *state;
    range_args a = { 0 };

    store_ordered(f->c);
    Kvstore__V1__RangeResponse *r = range(f->c, &a, KV_OK);
    assert_int_equal(r->n_kvs, N_ORDERED);
    assert_int_equal(r->count, N_ORDERED);
    assert_false(r->more);
    assert_int_equal(r->revision, N_ORDERED);
    for (size_t i = 0; i < N_ORDERED; i++) {
        assert_key(r->kvs[i], ordered[i]);
        assert_memory_equal(r->kvs[i]->value.data, ordered[i].data, ordered[i].len);
        assert_int_equal(r->kvs[i]->version, 1);
        assert_int_equal(r->kvs[i]->create_revision, r->kvs[i]->mod_revision);
    }
    FREE(r);

    /* Forward pages of 3: start = last key + "\0". */
    uint8_t next[8];
    size_t seen = 0;
    a.limit = 3;
    for (;;) {
        r = range(f->c, &a, KV_OK);
        assert_int_equal(r->count, N_ORDERED - seen);
        for (size_t i = 0; i < r->n_kvs; i++)
            assert_key(r->kvs[i], ordered[seen + i]);
        seen += r->n_kvs;
        int more = r->more;
        if (r->n_kvs) {
            const Kvstore__V1__KeyValue *last = r->kvs[r->n_kvs - 1];
            memcpy(next, last->key.data, last->key.len);
            next[last->key.len] = 0;
            a.start = (ProtobufCBinaryData){ last->key.len + 1, next };
        }
        assert_int_equal(more, seen < N_ORDERED);
        FREE(r);
        if (!more)
            break;
    }
    assert_int_equal(seen, N_ORDERED);

    /* Backward pages of 4: end = last key. */
    range_args b = { .limit = 4, .reverse = 1 };
    uint8_t end[8];
    seen = 0;
    for (int more = 1; more;) {
        r = range(f->c, &b, KV_OK);
        for (size_t i = 0; i < r->n_kvs; i++)
            assert_key(r->kvs[i], ordered[N_ORDERED - 1 - seen - i]);
        seen += r->n_kvs;
        more = r->more;
        if (r->n_kvs) {
            const Kvstore__V1__KeyValue *last = r->kvs[r->n_kvs - 1];
            memcpy(end, last->key.data, last->key.len);
            b.end = (ProtobufCBinaryData){ last->key.len, end };
        }
        FREE(r);
    }
    assert_int_equal(seen, N_ORDERED);
}

static void range_selects_by_bounds_and_prefix(void **state)
{
    fixture *f = *state;
    Kvstore__V1__RangeResponse *r;

    store_ordered(f->c);
    range_args a = { .start = B("a\x00"), .end = B("b") };      /* [a\0, b) */
    r = range(f->c, &a, KV_OK);
    assert_int_equal(r->n_kvs, 4);
    assert_key(r->kvs[0], ordered[2]);
    assert_key(r->kvs[3], ordered[5]);
    FREE(r);

    range_args p = { .prefix = B("ab") };
    r = range(f->c, &p, KV_OK);
    assert_int_equal(r->n_kvs, 3);          /* ab, abc, ab\xff */
    assert_key(r->kvs[2], B("ab\xff"));
    FREE(r);

    range_args ff = { .prefix = B("\xff") };     /* no key after the prefix */
    r = range(f->c, &ff, KV_OK);
    assert_int_equal(r->n_kvs, 2);
    FREE(r);

    range_args k = { .prefix = B("a"), .keys_only = 1 };
    r = range(f->c, &k, KV_OK);
    assert_int_equal(r->n_kvs, 5);
    for (size_t i = 0; i < r->n_kvs; i++)
        assert_int_equal(r->kvs[i]->value.len, 0);
    FREE(r);

    range_args c = { .prefix = B("a"), .count_only = 1 };
    r = range(f->c, &c, KV_OK);
    assert_int_equal(r->n_kvs, 0);
    assert_int_equal(r->count, 5);
    FREE(r);

    range_args backwards = { .start = B("b"), .end = B("a") };  /* end before start */
    r = range(f->c, &backwards, KV_OK);
    assert_int_equal(r->n_kvs, 0);
    assert_int_equal(r->count, 0);
    assert_false(r->more);
    FREE(r);

    range_args bad = { .prefix = B("a"), .start = B("a") };
    range(f->c, &bad, KV_INVALID_ARGUMENT);
    assert_non_null(strstr(kv_client_last_message(f->c), "prefix"));
    range_args bad2 = { .prefix = B("a"), .end = B("z") };
    range(f->c, &bad2, KV_INVALID_ARGUMENT);
}

static int setup_small_frames(void **state)
{
    static const char *const extra[] = { "--max-frame-bytes", "4096", NULL };
    return kv_fixture_start(state, extra);
}

/* A page stops before its answer would pass the frame limit. */
static void range_pages_stay_within_the_frame_limit(void **state)
{
    fixture *f = *state;
    uint8_t value[1000];
    char key[16];

    memset(value, 'v', sizeof value);
    for (int i = 0; i < 10; i++) {
        int n = snprintf(key, sizeof key, "key%02d", i);
        set(f->c, (ProtobufCBinaryData){ (size_t)n, (uint8_t *)key },
            (ProtobufCBinaryData){ sizeof value, value });
    }
    range_args a = { 0 };
    Kvstore__V1__RangeResponse *r = range(f->c, &a, KV_OK);
    assert_true(r->n_kvs >= 1 && r->n_kvs < 4);
    assert_true(r->more);
    assert_int_equal(r->count, 10);
    assert_true(protobuf_c_message_get_packed_size(&r->base) <= 4096);
    FREE(r);
    range_args k = { .keys_only = 1 };
    r = range(f->c, &k, KV_OK);
    assert_int_equal(r->n_kvs, 10);
    FREE(r);
}

static Kvstore__V1__TxnResponse *txn_commit_raw(kv_client *c, const Kvstore__V1__TxnRequest *req,
                                                kv_status want);

/* Inside a Txn too, a Range page is cut to what the frame has left: the
 * Txn answers with a short page (more = true), never fails for it. */
static void txn_range_pages_are_cut_not_refused(void **state)
{
    fixture *f = *state;
    char key[16], value[64];

    for (int i = 0; i < 100; i++) {
        int kl = snprintf(key, sizeof key, "key%03d", i);
        int vl = 16 + i % 24;
        memset(value, 'a' + i % 26, (size_t)vl);
        set(f->c, (ProtobufCBinaryData){ (size_t)kl, (uint8_t *)key },
            (ProtobufCBinaryData){ (size_t)vl, (uint8_t *)value });
    }
    Kvstore__V1__RangeRequest rr = KVSTORE__V1__RANGE_REQUEST__INIT;
    Kvstore__V1__TxnOp op = KVSTORE__V1__TXN_OP__INIT, *ops[3] = { &op, &op, &op };
    Kvstore__V1__TxnRequest req = KVSTORE__V1__TXN_REQUEST__INIT;
    op.op_case = KVSTORE__V1__TXN_OP__OP_RANGE;
    op.range = &rr;
    req.success = ops;
    for (size_t n = 1; n <= 3; n++) {
        req.n_success = n;
        Kvstore__V1__TxnResponse *r = txn_commit_raw(f->c, &req, KV_OK);
        assert_int_equal(r->n_results, n);
        size_t last = r->n_results - 1;
        assert_true(r->results[last]->range->more);
        assert_int_equal(r->results[last]->range->count, 100);
        assert_true(protobuf_c_message_get_packed_size(&r->base) <= 4096);
        FREE(r);
    }
}

static Kvstore__V1__ClearRangeResponse *clear_range(kv_client *c, ProtobufCBinaryData start,
                                                    ProtobufCBinaryData end,
                                                    ProtobufCBinaryData prefix, kv_status want)
{
    Kvstore__V1__ClearRangeRequest req = KVSTORE__V1__CLEAR_RANGE_REQUEST__INIT;
    Kvstore__V1__ClearRangeResponse *out = NULL;

    req.start = start;
    req.end = end;
    req.prefix = prefix;
    assert_int_equal(call(c, PATH("ClearRange"), &req.base,
                          &kvstore__v1__clear_range_response__descriptor, &out), want);
    return out;
}

static void clear_range_is_one_write_and_needs_a_selector(void **state)
{
    fixture *f = *state;
    const ProtobufCBinaryData none = { 0, NULL };
    Kvstore__V1__ClearRangeResponse *r;

    store_ordered(f->c);
    clear_range(f->c, none, none, none, KV_INVALID_ARGUMENT);
    assert_non_null(strstr(kv_client_last_message(f->c), "no keys selected"));
    clear_range(f->c, B("a"), none, B("a"), KV_INVALID_ARGUMENT);
    assert_int_equal(store_revision(f->c), N_ORDERED);

    r = clear_range(f->c, none, none, B("ab"), KV_OK);
    assert_int_equal(r->deleted, 3);
    assert_int_equal(r->revision, N_ORDERED + 1);
    FREE(r);
    get(f->c, B("abc"), KV_NOT_FOUND);
    kv_assert_value(f->c, "a\x00", 2, "a\x00", 2);

    r = clear_range(f->c, none, none, B("ab"), KV_OK);     /* nothing left: no revision */
    assert_int_equal(r->deleted, 0);
    assert_int_equal(r->revision, 0);
    FREE(r);
    assert_int_equal(store_revision(f->c), N_ORDERED + 1);

    r = clear_range(f->c, B("b"), B("\xff"), none, KV_OK);   /* [b, \xff) */
    assert_int_equal(r->deleted, 2);
    FREE(r);
    kv_assert_value(f->c, "\xff", 1, "\xff", 1);

    r = clear_range(f->c, B("\x00"), none, none, KV_OK);     /* everything */
    assert_int_equal(r->deleted, N_ORDERED - 5);
    assert_int_equal(r->revision, N_ORDERED + 3);
    FREE(r);
    range_args all = { .count_only = 1 };
    Kvstore__V1__RangeResponse *left = range(f->c, &all, KV_OK);
    assert_int_equal(left->count, 0);
    FREE(left);
}

/* Txn building blocks: ops and compares on the stack of the test. */
typedef struct txn_builder {
    Kvstore__V1__TxnRequest req;
    Kvstore__V1__Compare cmp[8], *cmpp[8];
    Kvstore__V1__TxnOp ops[2][200], *opp[2][200];
    Kvstore__V1__GetRequest gets[2][200];
    Kvstore__V1__SetRequest sets[2][200];
    Kvstore__V1__ClearRequest clears[2][200];
    Kvstore__V1__RangeRequest ranges[2][8];
    Kvstore__V1__ClearRangeRequest clear_ranges[2][8];
} txn_builder;

static txn_builder *txn_new(void)
{
    txn_builder *t = calloc(1, sizeof *t);

    kvstore__v1__txn_request__init(&t->req);
    t->req.compare = t->cmpp;
    t->req.success = t->opp[0];
    t->req.failure = t->opp[1];
    return t;
}

static void txn_compare(txn_builder *t, ProtobufCBinaryData key, Kvstore__V1__Compare__Target target,
                        Kvstore__V1__Compare__Op op, ProtobufCBinaryData value, uint64_t number)
{
    Kvstore__V1__Compare *c = &t->cmp[t->req.n_compare];

    kvstore__v1__compare__init(c);
    c->key = key;
    c->target = target;
    c->op = op;
    c->value = value;
    c->number = number;
    t->cmpp[t->req.n_compare++] = c;
}

static Kvstore__V1__TxnOp *txn_op(txn_builder *t, int failure)
{
    size_t *n = failure ? &t->req.n_failure : &t->req.n_success;
    Kvstore__V1__TxnOp *op = &t->ops[failure][*n];

    kvstore__v1__txn_op__init(op);
    t->opp[failure][(*n)++] = op;
    return op;
}

static void txn_get(txn_builder *t, int failure, ProtobufCBinaryData key)
{
    size_t i = failure ? t->req.n_failure : t->req.n_success;
    Kvstore__V1__TxnOp *op = txn_op(t, failure);
    Kvstore__V1__GetRequest *g = &t->gets[failure][i];

    kvstore__v1__get_request__init(g);
    g->key = key;
    op->op_case = KVSTORE__V1__TXN_OP__OP_GET;
    op->get = g;
}

static Kvstore__V1__SetRequest *txn_set(txn_builder *t, int failure, ProtobufCBinaryData key,
                                        ProtobufCBinaryData value)
{
    size_t i = failure ? t->req.n_failure : t->req.n_success;
    Kvstore__V1__TxnOp *op = txn_op(t, failure);
    Kvstore__V1__SetRequest *s = &t->sets[failure][i];

    kvstore__v1__set_request__init(s);
    s->key = key;
    s->value = value;
    op->op_case = KVSTORE__V1__TXN_OP__OP_SET;
    op->set = s;
    return s;
}

static void txn_clear(txn_builder *t, int failure, ProtobufCBinaryData key)
{
    size_t i = failure ? t->req.n_failure : t->req.n_success;
    Kvstore__V1__TxnOp *op = txn_op(t, failure);
    Kvstore__V1__ClearRequest *c = &t->clears[failure][i];

    kvstore__v1__clear_request__init(c);
    c->key = key;
    op->op_case = KVSTORE__V1__TXN_OP__OP_CLEAR;
    op->clear = c;
}

static void txn_range(txn_builder *t, int failure, ProtobufCBinaryData prefix)
{
    size_t i = (failure ? t->req.n_failure : t->req.n_success) % 8;
    Kvstore__V1__TxnOp *op = txn_op(t, failure);
    Kvstore__V1__RangeRequest *r = &t->ranges[failure][i];

    kvstore__v1__range_request__init(r);
    r->prefix = prefix;
    op->op_case = KVSTORE__V1__TXN_OP__OP_RANGE;
    op->range = r;
}

static void txn_clear_range(txn_builder *t, int failure, ProtobufCBinaryData prefix)
{
    size_t i = (failure ? t->req.n_failure : t->req.n_success) % 8;
    Kvstore__V1__TxnOp *op = txn_op(t, failure);
    Kvstore__V1__ClearRangeRequest *r = &t->clear_ranges[failure][i];

    kvstore__v1__clear_range_request__init(r);
    r->prefix = prefix;
    op->op_case = KVSTORE__V1__TXN_OP__OP_CLEAR_RANGE;
    op->clear_range = r;
}

static Kvstore__V1__TxnResponse *txn_commit_raw(kv_client *c, const Kvstore__V1__TxnRequest *req,
                                                kv_status want)
{
    Kvstore__V1__TxnResponse *out = NULL;

    assert_int_equal(call(c, PATH("Txn"), &req->base, &kvstore__v1__txn_response__descriptor,
                          &out), want);
    return out;
}

static Kvstore__V1__TxnResponse *txn_commit(kv_client *c, txn_builder *t, kv_status want)
{
    Kvstore__V1__TxnResponse *out = txn_commit_raw(c, &t->req, want);

    free(t);
    return out;
}

#define T(x) KVSTORE__V1__COMPARE__TARGET__##x
#define OP(x) KVSTORE__V1__COMPARE__OP__##x
static const ProtobufCBinaryData NONE = { 0, NULL };

static void txn_runs_success_when_every_compare_holds(void **state)
{
    fixture *f = *state;
    txn_builder *t;
    Kvstore__V1__TxnResponse *r;

    set(f->c, B("acct/a"), B("10"));        /* rev 1 */
    set(f->c, B("acct/b"), B("5"));         /* rev 2 */
    set(f->c, B("acct/a"), B("12"));        /* rev 3: a version 2 */

    t = txn_new();
    txn_compare(t, B("acct/a"), T(VALUE), OP(EQUAL), B("12"), 0);
    txn_compare(t, B("acct/a"), T(MOD_REVISION), OP(EQUAL), NONE, 3);
    txn_compare(t, B("acct/a"), T(CREATE_REVISION), OP(LESS), NONE, 2);
    txn_compare(t, B("acct/a"), T(VERSION), OP(GREATER), NONE, 1);
    txn_compare(t, B("acct/b"), T(VALUE), OP(NOT_EQUAL), B("6"), 0);
    txn_compare(t, B("acct/b"), T(VALUE), OP(LESS), B("50"), 0);     /* byte order: "5" < "50" */
    txn_set(t, 0, B("acct/a"), B("7"));
    txn_set(t, 0, B("acct/c"), B("new"));
    txn_get(t, 0, B("acct/a"));                 /* sees the Set before it */
    txn_get(t, 0, B("acct/missing"));
    txn_range(t, 0, B("acct/"));
    txn_clear(t, 0, B("acct/b"));
    txn_set(t, 1, B("failure"), B("ran"));
    r = txn_commit(f->c, t, KV_OK);

    assert_true(r->succeeded);
    assert_int_equal(r->revision, 4);
    assert_int_equal(r->n_results, 6);
    assert_int_equal(r->results[0]->result_case, KVSTORE__V1__TXN_OP_RESULT__RESULT_SET);
    assert_int_equal(r->results[0]->set->revision, 4);
    assert_int_equal(r->results[1]->set->revision, 4);
    Kvstore__V1__GetResponse *g = r->results[2]->get;
    assert_true(g->found);
    assert_memory_equal(g->value.data, "7", 1);
    assert_int_equal(g->mod_revision, 4);
    assert_int_equal(g->version, 3);
    assert_int_equal(g->create_revision, 1);
    assert_false(r->results[3]->get->found);
    assert_int_equal(r->results[3]->get->value.len, 0);
    assert_int_equal(r->results[3]->get->mod_revision, 0);
    Kvstore__V1__RangeResponse *rg = r->results[4]->range;
    assert_int_equal(rg->count, 3);                     /* a, b, c: b not yet cleared */
    assert_key(rg->kvs[2], B("acct/c"));
    assert_int_equal(rg->kvs[2]->create_revision, 4);
    assert_true(r->results[5]->clear->found);
    assert_int_equal(r->results[5]->clear->revision, 4);
    FREE(r);

    assert_int_equal(store_revision(f->c), 4);      /* one revision for all of it */
    assert_meta(f->c, B("acct/c"), 4, 4, 1);
    get(f->c, B("acct/b"), KV_NOT_FOUND);
    get(f->c, B("failure"), KV_NOT_FOUND);
}

static void txn_runs_failure_when_a_compare_fails(void **state)
{
    fixture *f = *state;
    txn_builder *t;
    Kvstore__V1__TxnResponse *r;

    set(f->c, B("lock"), B("me"));              /* rev 1 */
    /* A missing key: VALUE compares are false, even NOT_EQUAL; its
     * revisions and version are 0. */
    t = txn_new();
    txn_compare(t, B("nokey"), T(VERSION), OP(EQUAL), NONE, 0);
    txn_compare(t, B("nokey"), T(CREATE_REVISION), OP(EQUAL), NONE, 0);
    txn_compare(t, B("nokey"), T(VALUE), OP(NOT_EQUAL), B("x"), 0);
    txn_set(t, 0, B("s"), B("1"));
    txn_get(t, 1, B("lock"));
    txn_set(t, 1, B("f"), B("1"));
    r = txn_commit(f->c, t, KV_OK);
    assert_false(r->succeeded);
    assert_int_equal(r->n_results, 2);
    assert_memory_equal(r->results[0]->get->value.data, "me", 2);
    assert_int_equal(r->results[0]->get->revision, 1);
    assert_int_equal(r->results[1]->set->revision, 2);
    assert_int_equal(r->revision, 2);
    FREE(r);
    get(f->c, B("s"), KV_NOT_FOUND);
    kv_assert_value(f->c, "f", 1, "1", 1);

    /* An empty compare list holds; a read-only Txn moves no revision. */
    t = txn_new();
    txn_get(t, 0, B("f"));
    txn_range(t, 0, NONE);
    r = txn_commit(f->c, t, KV_OK);
    assert_true(r->succeeded);
    assert_int_equal(r->revision, 2);
    assert_int_equal(r->results[1]->range->count, 2);
    FREE(r);

    /* A branch whose writes change nothing moves no revision either. */
    t = txn_new();
    txn_clear(t, 0, B("nokey"));
    txn_clear_range(t, 0, B("zzz"));
    r = txn_commit(f->c, t, KV_OK);
    assert_false(r->results[0]->clear->found);
    assert_int_equal(r->results[0]->clear->revision, 0);
    assert_int_equal(r->results[1]->clear_range->deleted, 0);
    assert_int_equal(r->revision, 2);
    FREE(r);
    assert_int_equal(store_revision(f->c), 2);
}

/* A refused Txn applies nothing and moves no revision. */
static void assert_txn_refused(kv_client *c, txn_builder *t, const char *why)
{
    uint64_t rev = store_revision(c);

    txn_commit(c, t, KV_INVALID_ARGUMENT);
    if (why && !strstr(kv_client_last_message(c), why))
        fail_msg("expected \"%s\" in \"%s\"", why, kv_client_last_message(c));
    assert_int_equal(store_revision(c), rev);
    get(c, B("first"), KV_NOT_FOUND);
}

static void txn_refuses_bad_requests_whole(void **state)
{
    fixture *f = *state;
    txn_builder *t;
    char big[70000];

    set(f->c, B("p/1"), B("x"));

    t = txn_new();                              /* one key written twice */
    txn_set(t, 0, B("first"), B("1"));
    txn_set(t, 0, B("dup"), B("1"));
    txn_clear(t, 0, B("dup"));
    assert_txn_refused(f->c, t, "only once");

    t = txn_new();                              /* a Set inside a ClearRange */
    txn_set(t, 0, B("first"), B("1"));
    txn_clear_range(t, 0, B("p/"));
    txn_set(t, 0, B("p/2"), B("1"));
    assert_txn_refused(f->c, t, "only once");

    t = txn_new();                              /* in the branch that does not run */
    txn_compare(t, B("p/1"), T(VALUE), OP(EQUAL), B("x"), 0);
    txn_set(t, 0, B("first"), B("1"));
    txn_set(t, 1, B("k"), B("1"));
    txn_set(t, 1, B("k"), B("2"));
    assert_txn_refused(f->c, t, "only once");

    t = txn_new();                              /* a conditional write */
    txn_set(t, 0, B("first"), B("1"));
    Kvstore__V1__SetRequest *s = txn_set(t, 0, B("cond"), B("1"));
    s->_if_mod_revision_case = KVSTORE__V1__SET_REQUEST___IF_MOD_REVISION_IF_MOD_REVISION;
    assert_txn_refused(f->c, t, "if_mod_revision");

    t = txn_new();                              /* a key over the limit */
    memset(big, 'k', sizeof big);
    txn_set(t, 0, B("first"), B("1"));
    txn_get(t, 0, (ProtobufCBinaryData){ sizeof big, (uint8_t *)big });
    assert_txn_refused(f->c, t, "exceeds the limit");

    t = txn_new();                              /* an empty key */
    txn_set(t, 0, B("first"), B("1"));
    txn_clear(t, 0, NONE);
    assert_txn_refused(f->c, t, "empty");

    t = txn_new();                              /* a ClearRange with no selector */
    txn_set(t, 0, B("first"), B("1"));
    txn_clear_range(t, 0, NONE);
    assert_txn_refused(f->c, t, "no keys selected");

    t = txn_new();                              /* a TxnOp with nothing in it */
    txn_set(t, 0, B("first"), B("1"));
    txn_op(t, 0);
    assert_txn_refused(f->c, t, "no operation");

    t = txn_new();                              /* an unknown compare op */
    txn_compare(t, B("p/1"), T(VALUE), (Kvstore__V1__Compare__Op)9, B("x"), 0);
    txn_set(t, 0, B("first"), B("1"));
    assert_txn_refused(f->c, t, "Compare.op");

    t = txn_new();                              /* 129 operations */
    char keys[129][8];
    txn_set(t, 0, B("first"), B("1"));
    for (int i = 1; i < 129; i++) {
        int n = snprintf(keys[i], sizeof keys[i], "m%d", i);
        txn_get(t, 0, (ProtobufCBinaryData){ (size_t)n, (uint8_t *)keys[i] });
    }
    assert_txn_refused(f->c, t, "limit is 128");

    /* 128 is allowed. */
    t = txn_new();
    for (int i = 1; i < 129; i++) {
        int n = snprintf(keys[i], sizeof keys[i], "m%d", i);
        txn_set(t, 0, (ProtobufCBinaryData){ (size_t)n, (uint8_t *)keys[i] }, B("v"));
    }
    Kvstore__V1__TxnResponse *r = txn_commit(f->c, t, KV_OK);
    assert_int_equal(r->n_results, 128);
    assert_int_equal(r->revision, 2);
    FREE(r);
}

static int setup_memory_limit(void **state)
{
    static const char *const extra[] = { "--max-memory-bytes", "300000", NULL };
    return kv_fixture_start(state, extra);
}

/* An operation that fails half way (the memory limit) undoes the ones
 * before it: all or nothing. */
static void txn_failing_half_way_applies_nothing(void **state)
{
    fixture *f = *state;
    static uint8_t big[400000];
    txn_builder *t;

    set(f->c, B("keep"), B("old"));
    t = txn_new();
    txn_set(t, 0, B("keep"), B("new"));
    txn_clear(t, 0, B("gone?"));
    txn_set(t, 0, B("created"), B("1"));
    txn_set(t, 0, B("huge"), (ProtobufCBinaryData){ sizeof big, big });
    txn_commit(f->c, t, KV_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(kv_client_last_message(f->c), "memory limit"));
    kv_assert_value(f->c, "keep", 4, "old", 3);
    assert_meta(f->c, B("keep"), 1, 1, 1);
    get(f->c, B("created"), KV_NOT_FOUND);
    assert_int_equal(store_revision(f->c), 1);
    /* And the store goes on. */
    assert_int_equal(set(f->c, B("after"), B("1")), 2);
}

static int setup_2m_frames(void **state)
{
    static const char *const extra[] = { "--max-frame-bytes", "2M", NULL };
    static char asan[512];

    /* Under AddressSanitizer, freed memory waits in a quarantine (256 MiB)
     * before it is reused, which would read as growth here; without ASan
     * the option is ignored. */
    const char *was = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "%s%squarantine_size_mb=0", was ? was : "", was ? ":" : "");
    setenv("ASAN_OPTIONS", asan, 1);
    return kv_fixture_start(state, extra);
}

/* The most resident memory process PID has had (VmHWM), in bytes; 0 when
 * unknown (a server under valgrind: then the test cannot judge). */
static uint64_t peak_rss(pid_t pid)
{
    char path[64], line[256];
    unsigned long long kb = 0;

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
            break;
    fclose(fp);
    return (uint64_t)kb * 1024;
}

static void count_refusal(const Kvstore__V1__TxnResponse *r, void *data)
{
    if (!r)
        (*(int *)data)++;
}

/* Txns whose answers would pass the frame limit are refused before they
 * copy what does not fit, and what a refused one did copy is given back
 * before the next request: 200 of them pipelined (each asking for three
 * values of 1 MiB under a 2 MiB frame) leave the server's memory where it
 * was, where they used to hold 2 MiB each until the last was answered. */
static void refused_txns_pipelined_keep_memory_bounded(void **state)
{
    fixture *f = *state;
    static uint8_t value[1 << 20];
    Kvstore__V1__GetRequest gets[3] = { KVSTORE__V1__GET_REQUEST__INIT,
                                        KVSTORE__V1__GET_REQUEST__INIT,
                                        KVSTORE__V1__GET_REQUEST__INIT };
    Kvstore__V1__TxnOp ops[3] = { KVSTORE__V1__TXN_OP__INIT, KVSTORE__V1__TXN_OP__INIT,
                                  KVSTORE__V1__TXN_OP__INIT };
    Kvstore__V1__TxnOp *opp[3] = { &ops[0], &ops[1], &ops[2] };
    Kvstore__V1__TxnRequest req = KVSTORE__V1__TXN_REQUEST__INIT;
    const char *keys[3] = { "big1", "big2", "big3" };
    int refused = 0;

    for (int i = 0; i < 3; i++) {
        memset(value, 'a' + i, sizeof value);
        set(f->c, (ProtobufCBinaryData){ 4, (uint8_t *)keys[i] },
            (ProtobufCBinaryData){ sizeof value, value });
        gets[i].key = (ProtobufCBinaryData){ 4, (uint8_t *)keys[i] };
        ops[i].op_case = KVSTORE__V1__TXN_OP__OP_GET;
        ops[i].get = &gets[i];
    }
    req.success = opp;
    req.n_success = 3;
    uint64_t before = peak_rss(f->srv.pid);
    kv_client_pipeline_begin(f->c);
    for (int i = 0; i < 200; i++)
        kvstore__v1__kv__txn(kv_client_service(f->c), &req, count_refusal, &refused);
    assert_int_equal(kv_client_pipeline_end(f->c), KV_OK);
    assert_int_equal(refused, 200);
    uint64_t after = peak_rss(f->srv.pid);
    if (after > before + (64u << 20))
        fail_msg("peak resident memory grew from %llu to %llu bytes", (unsigned long long)before,
                 (unsigned long long)after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(revisions_count_every_change_and_only_changes,
                                        kv_fixture_setup, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(conditional_writes_hold_or_change_nothing,
                                        kv_fixture_setup, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(range_reads_in_byte_order_and_pages,
                                        kv_fixture_setup, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(range_selects_by_bounds_and_prefix,
                                        kv_fixture_setup, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(range_pages_stay_within_the_frame_limit,
                                        setup_small_frames, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(clear_range_is_one_write_and_needs_a_selector,
                                        kv_fixture_setup, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(txn_runs_success_when_every_compare_holds,
                                        kv_fixture_setup, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(txn_runs_failure_when_a_compare_fails,
                                        kv_fixture_setup, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(txn_refuses_bad_requests_whole,
                                        kv_fixture_setup, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(txn_failing_half_way_applies_nothing,
                                        setup_memory_limit, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(txn_range_pages_are_cut_not_refused,
                                        setup_small_frames, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(refused_txns_pipelined_keep_memory_bounded,
                                        setup_2m_frames, kv_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
