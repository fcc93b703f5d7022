/* txn.c - Txn: compares, then one branch of operations, as one atomic
 * write (docs/PROTOCOL.md, Txn). Checks the whole request before running
 * anything, evaluates the compares on one state, and runs the branch in
 * an engine batch (engine.h) so that a failure half way undoes it all.
 * The operations themselves are ops.c's. */
#include <inttypes.h>
#include <string.h>
#include "ops.h"
#include "expire.h"
#include "txn.h"

/* The most a length-delimited field's key and length take (a key below
 * field 16, a length of up to 5 bytes). */
#define FIELD_HEAD_MAX 6u
/* What a Range result takes besides its keys: its entry in results and
 * its field in the TxnOpResult, then more, count and revision. */
#define RANGE_RESULT_FIXED (2 * FIELD_HEAD_MAX + 2 + 2 * (1 + 10))

typedef Kvstore__V1__TxnOp TxnOp;
typedef Kvstore__V1__TxnOpResult TxnOpResult;

/* The keys an operation writes: one key, or a range. */
typedef struct write_set {
    int point;                  /* one key (r.start) */
    kv_range r;
} write_set;

/* Whether two write sets share a key. */
static int overlap(const write_set *a, const write_set *b)
{
    if (a->point && b->point)
        return kv_key_cmp(a->r.start, a->r.start_len, b->r.start, b->r.start_len) == 0;
    if (a->point)
        return kv_range_has(&b->r, a->r.start, a->r.start_len);
    if (b->point)
        return kv_range_has(&a->r, b->r.start, b->r.start_len);
    /* [s1, e1) and [s2, e2) meet when each starts before the other ends
     * (an empty end: no end) and neither is empty. */
    const kv_range *x = &a->r, *y = &b->r;
    if (y->end_len && kv_key_cmp(x->start, x->start_len, y->end, y->end_len) >= 0)
        return 0;
    if (x->end_len && kv_key_cmp(y->start, y->start_len, x->end, x->end_len) >= 0)
        return 0;
    if (x->end_len && kv_key_cmp(x->start, x->start_len, x->end, x->end_len) >= 0)
        return 0;
    if (y->end_len && kv_key_cmp(y->start, y->start_len, y->end, y->end_len) >= 0)
        return 0;
    return 1;
}

/* Checks every operation of one branch as it would be checked alone, and
 * that no two of its writes touch the same key. Returns KV_OK, or
 * KV_INVALID_ARGUMENT with op->why; *WRITES says whether it writes. */
static kv_status check_branch(kv_op *op, TxnOp *const *ops, size_t n, int success,
                              int *writes)
{
    write_set ws[KV_TXN_MAX_OPS];
    size_t write_index[KV_TXN_MAX_OPS];     /* of ws[i] among the ops */
    size_t nws = 0;
    kv_status st = KV_OK;

    *writes = 0;
    if (n > KV_TXN_MAX_OPS)
        return kv_op_fail(op, KV_INVALID_ARGUMENT, "a Txn branch holds %" PRIu64
                          " operations; the limit is %" PRIu64, n, KV_TXN_MAX_OPS);
    for (size_t i = 0; i < n && st == KV_OK; i++) {
        const TxnOp *t = ops[i];
        write_set *w = &ws[nws];
        write_index[nws] = i;
        switch (t->op_case) {
        case KVSTORE__V1__TXN_OP__OP_GET:
            st = kv_op_check_key(op, &t->get->key);
            break;
        case KVSTORE__V1__TXN_OP__OP_SET:
            st = kv_op_check_set(op, t->set);
            *w = (write_set){ 1, { t->set->key.data, t->set->key.len, NULL, 0 } };
            nws++;
            break;
        case KVSTORE__V1__TXN_OP__OP_CLEAR:
            st = kv_op_check_clear(op, t->clear);
            *w = (write_set){ 1, { t->clear->key.data, t->clear->key.len, NULL, 0 } };
            nws++;
            break;
        case KVSTORE__V1__TXN_OP__OP_RANGE:
            st = kv_op_select(op, &t->range->start, &t->range->end, &t->range->prefix, 0,
                              &w->r);
            break;
        case KVSTORE__V1__TXN_OP__OP_CLEAR_RANGE:
            st = kv_op_select(op, &t->clear_range->start, &t->clear_range->end,
                              &t->clear_range->prefix, 1, &w->r);
            w->point = 0;
            nws++;
            break;
        default:
            op->why = "a TxnOp holds no operation";
            st = KV_INVALID_ARGUMENT;
            break;
        }
        if (st == KV_OK && nws && w == &ws[nws - 1]) {
            for (size_t j = 0; j + 1 < nws; j++)
                if (overlap(&ws[j], w))
                    return kv_op_fail(op, KV_INVALID_ARGUMENT, success
                        ? "a Txn may write a key only once: success operations %" PRIu64
                          " and %" PRIu64 " (counted from 0) both write one"
                        : "a Txn may write a key only once: failure operations %" PRIu64
                          " and %" PRIu64 " (counted from 0) both write one",
                        write_index[j], i);
        }
    }
    *writes = nws > 0;
    return st;
}

/* Checks one compare: its key, and a target and an op the contract has. */
static kv_status check_compare(kv_op *op, const Kvstore__V1__Compare *c)
{
    kv_status st = kv_op_check_key(op, &c->key);

    if (st != KV_OK)
        return st;
    if ((unsigned)c->target > KVSTORE__V1__COMPARE__TARGET__VERSION)
        return kv_op_fail(op, KV_INVALID_ARGUMENT, "Compare.target %" PRIu64 " is not one of "
                          "VALUE, MOD_REVISION, CREATE_REVISION, VERSION (0-%" PRIu64 ")",
                          (uint64_t)(unsigned)c->target, KVSTORE__V1__COMPARE__TARGET__VERSION);
    if ((unsigned)c->op > KVSTORE__V1__COMPARE__OP__GREATER)
        return kv_op_fail(op, KV_INVALID_ARGUMENT, "Compare.op %" PRIu64 " is not one of "
                          "EQUAL, NOT_EQUAL, LESS, GREATER (0-%" PRIu64 ")",
                          (uint64_t)(unsigned)c->op, KVSTORE__V1__COMPARE__OP__GREATER);
    return KV_OK;
}

/* Whether compare C holds now, in *HOLDS. A missing key has revisions
 * and version 0, and no value: every VALUE compare on it fails. */
static kv_status compare_holds(kv_op *op, const Kvstore__V1__Compare *c, int *holds)
{
    ProtobufCBinaryData v;
    kv_meta m = { 0 };
    int cmp;
    kv_status st = kv_op_lookup(op, &c->key, &v, &m);

    if (st != KV_OK && st != KV_NOT_FOUND)
        return kv_op_engine_failed(op, st);
    if (c->target == KVSTORE__V1__COMPARE__TARGET__VALUE) {
        if (st == KV_NOT_FOUND) {
            *holds = 0;
            return KV_OK;
        }
        cmp = kv_key_cmp(v.data, v.len, c->value.data, c->value.len);
    } else {
        uint64_t have = c->target == KVSTORE__V1__COMPARE__TARGET__MOD_REVISION ? m.mod_revision
                      : c->target == KVSTORE__V1__COMPARE__TARGET__CREATE_REVISION
                      ? m.create_revision : m.version;
        cmp = have < c->number ? -1 : have > c->number;
    }
    switch (c->op) {
    case KVSTORE__V1__COMPARE__OP__EQUAL:       *holds = cmp == 0; break;
    case KVSTORE__V1__COMPARE__OP__NOT_EQUAL:   *holds = cmp != 0; break;
    case KVSTORE__V1__COMPARE__OP__LESS:        *holds = cmp < 0; break;
    default:                                    *holds = cmp > 0; break;
    }
    return KV_OK;
}

/* Runs operation T into result R, lowering op->budget by what R takes
 * when packed; a Range page is cut to fit what is left (its own fields
 * were set aside by kv_txn_run). */
static kv_status run_op(kv_op *op, const TxnOp *t, TxnOpResult *r)
{
    ProtobufCAllocator *a = op->alloc;
    kv_status st;

    kvstore__v1__txn_op_result__init(r);
#define RESULT(field, Type, init, CASE, fn, arg)                                  \
    do {                                                                          \
        Kvstore__V1__##Type *out = a->alloc(a->allocator_data, sizeof *out);       \
        if (!out)                                                                 \
            goto oom;                                                             \
        kvstore__v1__##init##__init(out);                                         \
        r->result_case = KVSTORE__V1__TXN_OP_RESULT__RESULT_##CASE;                \
        r->field = out;                                                           \
        st = fn(op, t->arg, out);                                                 \
    } while (0)
    switch (t->op_case) {
    case KVSTORE__V1__TXN_OP__OP_GET:
        RESULT(get, GetResponse, get_response, GET, kv_op_get, get);
        break;
    case KVSTORE__V1__TXN_OP__OP_SET:
        RESULT(set, SetResponse, set_response, SET, kv_op_set, set);
        break;
    case KVSTORE__V1__TXN_OP__OP_CLEAR:
        RESULT(clear, ClearResponse, clear_response, CLEAR, kv_op_clear, clear);
        break;
    case KVSTORE__V1__TXN_OP__OP_RANGE:
        RESULT(range, RangeResponse, range_response, RANGE, kv_op_range, range);
        break;
    default:
        RESULT(clear_range, ClearRangeResponse, clear_range_response, CLEAR_RANGE,
               kv_op_clear_range, clear_range);
        break;
    }
#undef RESULT
    if (st != KV_OK || t->op_case == KVSTORE__V1__TXN_OP__OP_RANGE)
        return st;
    size_t need = protobuf_c_message_get_packed_size(&r->base) + FIELD_HEAD_MAX;
    if (need > op->budget)
        return kv_op_fail(op, KV_RESOURCE_EXHAUSTED, "the Txn's answer would pass the frame "
                          "limit (--max-frame-bytes) at %" PRIu64 " bytes more; %" PRIu64
                          " were left", need, op->budget);
    op->budget -= need;
    return KV_OK;
oom:
    op->why = "server out of memory";
    return KV_RESOURCE_EXHAUSTED;
}

/* Removes the expired keys the branch OPS[0..N) writes, each removal a
 * write of its own before the Txn's (expire.h): inside the batch the keys
 * are then simply absent. */
static kv_status expire_branch(kv_op *op, TxnOp *const *ops, size_t n)
{
    kv_status st = KV_OK;

    if (!kv_expire_any_due(op))
        return KV_OK;
    for (size_t i = 0; i < n && st == KV_OK; i++) {
        const TxnOp *t = ops[i];
        if (t->op_case == KVSTORE__V1__TXN_OP__OP_SET) {
            st = kv_expire_key(op, &t->set->key);
        } else if (t->op_case == KVSTORE__V1__TXN_OP__OP_CLEAR) {
            st = kv_expire_key(op, &t->clear->key);
        } else if (t->op_case == KVSTORE__V1__TXN_OP__OP_CLEAR_RANGE) {
            const Kvstore__V1__ClearRangeRequest *c = t->clear_range;
            kv_range r;
            if ((st = kv_op_select(op, &c->start, &c->end, &c->prefix, 1, &r)) == KV_OK)
                st = kv_expire_range(op, &r);
        }
    }
    return st;
}

kv_status kv_txn_run(kv_op *op, const Kvstore__V1__TxnRequest *in, Kvstore__V1__TxnResponse *out)
{
    int writes_s, writes_f, holds = 1;
    kv_status st;

    op->in_txn = 1;
    if (in->n_compare > KV_TXN_MAX_COMPARES)
        return kv_op_fail(op, KV_INVALID_ARGUMENT, "a Txn holds %" PRIu64 " compares; the "
                          "limit is %" PRIu64, in->n_compare, KV_TXN_MAX_COMPARES);
    for (size_t i = 0; i < in->n_compare; i++)
        if ((st = check_compare(op, in->compare[i])) != KV_OK)
            return st;
    if ((st = check_branch(op, in->success, in->n_success, 1, &writes_s)) != KV_OK ||
        (st = check_branch(op, in->failure, in->n_failure, 0, &writes_f)) != KV_OK)
        return st;

    for (size_t i = 0; i < in->n_compare && holds; i++)
        if ((st = compare_holds(op, in->compare[i], &holds)) != KV_OK)
            return st;
    TxnOp *const *ops = holds ? in->success : in->failure;
    size_t n = holds ? in->n_success : in->n_failure;
    int writes = holds ? writes_s : writes_f;

    out->succeeded = holds;
    out->results = op->alloc->alloc(op->alloc->allocator_data, (n ? n : 1) * sizeof *out->results);
    TxnOpResult *results = op->alloc->alloc(op->alloc->allocator_data,
                                            (n ? n : 1) * sizeof *results);
    if (!out->results || !results) {
        op->why = "server out of memory";
        return KV_RESOURCE_EXHAUSTED;
    }
    /* A Range's page is cut to the budget it finds, so what every Range
     * result takes besides its keys is set aside first: a later Range then
     * still has room for its own fields, if for no key (more = true). */
    size_t ranges = 0;
    for (size_t i = 0; i < n; i++)
        ranges += ops[i]->op_case == KVSTORE__V1__TXN_OP__OP_RANGE;
    if (ranges * RANGE_RESULT_FIXED > op->budget)
        return kv_op_fail(op, KV_RESOURCE_EXHAUSTED, "the Txn's answer would pass the frame "
                          "limit (--max-frame-bytes): its Ranges alone need %" PRIu64
                          " bytes; %" PRIu64 " are left", ranges * RANGE_RESULT_FIXED,
                          op->budget);
    op->budget -= ranges * RANGE_RESULT_FIXED;
    if (writes && (st = expire_branch(op, ops, n)) != KV_OK)
        return st;
    if (writes && (st = kv_engine_batch_begin(op->engine)) != KV_OK)
        return kv_op_engine_failed(op, st);
    (void)kv_op_revision(op);           /* one for every write, fixed now */
    for (size_t i = 0; i < n; i++) {
        if ((st = run_op(op, ops[i], &results[i])) != KV_OK) {
            if (writes)
                (void)kv_engine_batch_end(op->engine, 0);
            return st;
        }
        out->results[i] = &results[i];
    }
    out->n_results = n;
    if (writes && (st = kv_engine_batch_end(op->engine, 1)) != KV_OK)
        return kv_op_engine_failed(op, st);
    out->revision = kv_engine_revision(op->engine);
    return KV_OK;
}
