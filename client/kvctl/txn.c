/* txn.c - the little language of 'kvctl txn': reads its words into a
 * TxnRequest built of malloc'd generated messages, which it hands to the
 * caller (protobuf-c frees such a tree, as it frees one it unpacked). It
 * neither reads input (args.c splits, main.c reads stdin) nor sends. */
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "mem.h"
#include "out.h"
#include "txn.h"

/* A parse in progress over WORDS[0..N), at word I. */
typedef struct txn_reader {
    const kvctl_bytes *words;
    int n;
    int i;
    char *err;
    size_t errlen;
} txn_reader;

static int word_is(const kvctl_bytes *w, const char *s)
{
    return w->len == strlen(s) && memcmp(w->data, s, w->len) == 0;
}

/* Whether the next word is S. */
static int next_is(const txn_reader *r, const char *s)
{
    return r->i < r->n && word_is(&r->words[r->i], s);
}

/* Whether W is the word "then" or "else" after backslashes, and how many
 * in *SLASHES. */
static int is_branch_word(const kvctl_bytes *w, size_t *slashes)
{
    size_t n = 0;

    while (n < w->len && w->data[n] == '\\')
        n++;
    *slashes = n;
    return w->len - n == 4
           && (memcmp(w->data + n, "then", 4) == 0 || memcmp(w->data + n, "else", 4) == 0);
}

/* Takes the next word, an operand which WHAT names, of the compare or
 * operation CTX ("set"), into *W (a view of the word). A bare "then" or
 * "else" there is refused: the likelier mistake is an operand left out
 * ("then set k else get k" does not mean the value "else"), and one that is
 * really one of those words is written with one backslash more ("\else"),
 * which this drops. Returns 0, or -1 with "txn: WHAT missing after WHERE"
 * (no word left) or "txn: CTX: WHAT missing before 'else'" in the error. */
static int take(txn_reader *r, const char *what, const char *where, const char *ctx,
                kvctl_bytes *w)
{
    size_t slashes;

    if (r->i >= r->n) {
        snprintf(r->err, r->errlen, "txn: %s missing after %s", what, where);
        return -1;
    }
    *w = r->words[r->i];
    if (is_branch_word(w, &slashes)) {
        if (slashes == 0) {
            snprintf(r->err, r->errlen, "txn: %s: %s missing before '%.4s'", ctx, what,
                     (const char *)w->data);
            return -1;
        }
        w->data++;
        w->len--;
    }
    r->i++;
    return 0;
}

static ProtobufCBinaryData bytes_of(const kvctl_bytes *w)
{
    kvctl_bytes copy;

    kvctl_mem_bytes(&copy, w->data, w->len);
    return (ProtobufCBinaryData){ copy.len, copy.data };
}

/* Appends P to the array ARR of N pointers (the generated repeated field). */
#define APPEND(arr, n, p) do { \
        (arr) = kvctl_mem_realloc((arr), ((n) + 1) * sizeof *(arr)); \
        (arr)[(n)++] = (p); \
    } while (0)

/* A decimal uint64 in W. Returns 0, or -1 with the error set. */
static int number_of(txn_reader *r, const kvctl_bytes *w, const char *what, uint64_t *out)
{
    uint64_t v = 0;
    char quoted[64];

    for (size_t i = 0; i < w->len; i++) {
        unsigned d = (unsigned)w->data[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            goto bad;
        v = v * 10 + d;
    }
    if (w->len == 0)
        goto bad;
    *out = v;
    return 0;
bad:
    kvctl_out_quote(w->data, w->len, quoted, sizeof quoted);
    snprintf(r->err, r->errlen, "txn: %s compares a number, not %s", what, quoted);
    return -1;
}

/* Reads one COMPARE. Returns 0, or -1 with the error set. */
static int read_compare(txn_reader *r, Kvstore__V1__TxnRequest *t)
{
    static const struct { const char *word; Kvstore__V1__Compare__Target target; } targets[] = {
        { "value", KVSTORE__V1__COMPARE__TARGET__VALUE },
        { "mod", KVSTORE__V1__COMPARE__TARGET__MOD_REVISION },
        { "create", KVSTORE__V1__COMPARE__TARGET__CREATE_REVISION },
        { "version", KVSTORE__V1__COMPARE__TARGET__VERSION },
    };
    static const struct { const char *word; Kvstore__V1__Compare__Op op; } ops[] = {
        { "=", KVSTORE__V1__COMPARE__OP__EQUAL }, { "==", KVSTORE__V1__COMPARE__OP__EQUAL },
        { "!=", KVSTORE__V1__COMPARE__OP__NOT_EQUAL }, { "<", KVSTORE__V1__COMPARE__OP__LESS },
        { ">", KVSTORE__V1__COMPARE__OP__GREATER },
    };
    const kvctl_bytes *tw = &r->words[r->i++];
    kvctl_bytes key, cmp, operand;
    Kvstore__V1__Compare *c;
    char quoted[64];
    size_t ti, oi;

    for (ti = 0; ti < sizeof targets / sizeof targets[0]; ti++)
        if (word_is(tw, targets[ti].word))
            break;
    if (ti == sizeof targets / sizeof targets[0]) {
        kvctl_out_quote(tw->data, tw->len, quoted, sizeof quoted);
        snprintf(r->err, r->errlen, "txn: a compare starts with value, mod, create or "
                 "version, not %s (or 'then' is missing)", quoted);
        return -1;
    }
    if (take(r, "KEY", targets[ti].word, targets[ti].word, &key) < 0
        || take(r, "=, !=, < or >", "the KEY", targets[ti].word, &cmp) < 0)
        return -1;
    for (oi = 0; oi < sizeof ops / sizeof ops[0]; oi++)
        if (word_is(&cmp, ops[oi].word))
            break;
    if (oi == sizeof ops / sizeof ops[0]) {
        kvctl_out_quote(cmp.data, cmp.len, quoted, sizeof quoted);
        snprintf(r->err, r->errlen, "txn: a compare's CMP is =, !=, < or >, not %s", quoted);
        return -1;
    }
    if (take(r, ti == 0 ? "VALUE" : "N", ops[oi].word, targets[ti].word, &operand) < 0)
        return -1;
    c = kvctl_mem_alloc(sizeof *c);
    kvstore__v1__compare__init(c);
    APPEND(t->compare, t->n_compare, c);
    c->key = bytes_of(&key);
    c->target = targets[ti].target;
    c->op = ops[oi].op;
    if (ti == 0)
        c->value = bytes_of(&operand);
    else if (number_of(r, &operand, targets[ti].word, &c->number) < 0)
        return -1;
    return 0;
}

/* The operations, with the arguments each takes. */
typedef enum op_kind { GET, SET, CLEAR, RANGE, GET_PREFIX, CLEAR_RANGE, CLEAR_PREFIX } op_kind;

static const struct op_syntax {
    const char *word;
    int nargs;
    const char *arg1, *arg2;
} op_syntax[] = {
    [GET] = { "get", 1, "KEY", NULL },
    [SET] = { "set", 2, "KEY", "VALUE" },
    [CLEAR] = { "clear", 1, "KEY", NULL },
    [RANGE] = { "range", 2, "START", "END" },
    [GET_PREFIX] = { "get-prefix", 1, "PREFIX", NULL },
    [CLEAR_RANGE] = { "clear-range", 2, "START", "END" },
    [CLEAR_PREFIX] = { "clear-prefix", 1, "PREFIX", NULL },
};

/* Builds the TxnOp of KIND from its arguments A and B (B unused when
 * KIND takes one). */
static Kvstore__V1__TxnOp *make_op(op_kind kind, const kvctl_bytes *a, const kvctl_bytes *b)
{
    Kvstore__V1__TxnOp *op = kvctl_mem_alloc(sizeof *op);

    kvstore__v1__txn_op__init(op);
    switch (kind) {
    case GET:
        op->op_case = KVSTORE__V1__TXN_OP__OP_GET;
        op->get = kvctl_mem_alloc(sizeof *op->get);
        kvstore__v1__get_request__init(op->get);
        op->get->key = bytes_of(a);
        break;
    case SET:
        op->op_case = KVSTORE__V1__TXN_OP__OP_SET;
        op->set = kvctl_mem_alloc(sizeof *op->set);
        kvstore__v1__set_request__init(op->set);
        op->set->key = bytes_of(a);
        op->set->value = bytes_of(b);
        break;
    case CLEAR:
        op->op_case = KVSTORE__V1__TXN_OP__OP_CLEAR;
        op->clear = kvctl_mem_alloc(sizeof *op->clear);
        kvstore__v1__clear_request__init(op->clear);
        op->clear->key = bytes_of(a);
        break;
    case RANGE:
    case GET_PREFIX:
        op->op_case = KVSTORE__V1__TXN_OP__OP_RANGE;
        op->range = kvctl_mem_alloc(sizeof *op->range);
        kvstore__v1__range_request__init(op->range);
        if (kind == GET_PREFIX) {
            op->range->prefix = bytes_of(a);
        } else {
            op->range->start = bytes_of(a);
            op->range->end = bytes_of(b);
        }
        break;
    case CLEAR_RANGE:
    case CLEAR_PREFIX:
        op->op_case = KVSTORE__V1__TXN_OP__OP_CLEAR_RANGE;
        op->clear_range = kvctl_mem_alloc(sizeof *op->clear_range);
        kvstore__v1__clear_range_request__init(op->clear_range);
        if (kind == CLEAR_PREFIX) {
            op->clear_range->prefix = bytes_of(a);
        } else {
            op->clear_range->start = bytes_of(a);
            op->clear_range->end = bytes_of(b);
        }
        break;
    }
    return op;
}

/* Reads one OP into the array *OPS of *N. Returns 0, or -1 with the error set. */
static int read_op(txn_reader *r, Kvstore__V1__TxnOp ***ops, size_t *n)
{
    const kvctl_bytes *w = &r->words[r->i++];
    kvctl_bytes a, b = { NULL, 0 };
    char quoted[64], where[64];
    size_t k;

    for (k = 0; k < sizeof op_syntax / sizeof op_syntax[0]; k++)
        if (word_is(w, op_syntax[k].word))
            break;
    if (k == sizeof op_syntax / sizeof op_syntax[0]) {
        kvctl_out_quote(w->data, w->len, quoted, sizeof quoted);
        snprintf(r->err, r->errlen, "txn: an operation is get, set, clear, range, get-prefix, "
                 "clear-range or clear-prefix, not %s", quoted);
        return -1;
    }
    if (take(r, op_syntax[k].arg1, op_syntax[k].word, op_syntax[k].word, &a) < 0)
        return -1;
    snprintf(where, sizeof where, "%s %s", op_syntax[k].word, op_syntax[k].arg1);
    if (op_syntax[k].nargs == 2
        && take(r, op_syntax[k].arg2, where, op_syntax[k].word, &b) < 0)
        return -1;
    APPEND(*ops, *n, make_op((op_kind)k, &a, &b));
    return 0;
}

int kvctl_txn_parse(const kvctl_bytes *words, int n, Kvstore__V1__TxnRequest **out,
                    char *err, size_t errlen)
{
    txn_reader r = { words, n, 0, err, errlen };
    Kvstore__V1__TxnRequest *t = kvctl_mem_alloc(sizeof *t);

    kvstore__v1__txn_request__init(t);
    /* "txn -- ...", as other commands take "--" before their operands. */
    if (next_is(&r, "--"))
        r.i++;
    while (r.i < n && !next_is(&r, "then"))
        if (read_compare(&r, t) < 0)
            goto err;
    if (r.i == n) {
        snprintf(err, errlen, "txn: missing 'then' (the words are [COMPARE...] then "
                 "[OP...] [else [OP...]])");
        goto err;
    }
    r.i++;
    while (r.i < n && !next_is(&r, "else"))
        if (read_op(&r, &t->success, &t->n_success) < 0)
            goto err;
    if (r.i < n) {
        r.i++;
        while (r.i < n)
            if (read_op(&r, &t->failure, &t->n_failure) < 0)
                goto err;
    }
    *out = t;
    return 0;
err:
    kvctl_txn_free(t);
    *out = NULL;
    return -1;
}

int kvctl_txn_parse_text(const uint8_t *text, size_t len, Kvstore__V1__TxnRequest **out,
                         char *err, size_t errlen)
{
    kvctl_bytes *words;
    char why[256];
    int n = kvctl_args_split((const char *)text, len, &words, why, sizeof why), rc;

    if (n < 0) {
        snprintf(err, errlen, "txn: %s", why);
        *out = NULL;
        return -1;
    }
    rc = kvctl_txn_parse(words, n, out, err, errlen);
    kvctl_args_free(words, n);
    return rc;
}

void kvctl_txn_free(Kvstore__V1__TxnRequest *txn)
{
    /* Every part was malloc'd, as protobuf-c's default allocator does. */
    if (txn)
        kvstore__v1__txn_request__free_unpacked(txn, NULL);
}

const char *kvctl_txn_op_name(const Kvstore__V1__TxnOp *op)
{
    switch (op->op_case) {
    case KVSTORE__V1__TXN_OP__OP_GET:
        return "get";
    case KVSTORE__V1__TXN_OP__OP_SET:
        return "set";
    case KVSTORE__V1__TXN_OP__OP_CLEAR:
        return "clear";
    case KVSTORE__V1__TXN_OP__OP_RANGE:
        return op->range->prefix.len ? "get-prefix" : "range";
    case KVSTORE__V1__TXN_OP__OP_CLEAR_RANGE:
        return op->clear_range->prefix.len ? "clear-prefix" : "clear-range";
    default:
        return "?";
    }
}
