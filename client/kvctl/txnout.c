/* txnout.c - prints a txn's answer: which branch ran and, for each of its
 * operations, what it answered, matched with the operation that asked (the
 * request names the keys; the answers do not). Parsing the txn is txn.c's
 * job, running it exec.c's. */
#include <inttypes.h>

#include "listing.h"
#include "table.h"
#include "text.h"
#include "txn.h"
#include "txnout.h"

/* The operations of the branch that ran; *N their count, which is the
 * number of results the server sent (or fewer, if it sent fewer). */
static Kvstore__V1__TxnOp **ops_run(const kvctl_cmd *cmd, const kvctl_result *r, size_t *n)
{
    const Kvstore__V1__TxnRequest *t = cmd->txn;
    size_t nops = r->txn->succeeded ? t->n_success : t->n_failure;

    *n = nops < r->txn->n_results ? nops : r->txn->n_results;
    return r->txn->succeeded ? t->success : t->failure;
}

/* Writes the value of a get or clear in words: quoted, or - when absent. */
static void put_found(FILE *fp, int found, const ProtobufCBinaryData *value)
{
    if (found)
        kvctl_text_put_quoted(fp, value->data, value->len);
    else
        fputc('-', fp);
}

void kvctl_txnout_simple(const kvctl_out *o, const kvctl_cmd *cmd, const kvctl_result *r)
{
    const char *sep = o->lines ? " " : "\n";
    size_t n;

    (void)ops_run(cmd, r, &n);
    fputs(r->txn->succeeded ? "SUCCESS" : "FAILURE", o->fp);
    for (size_t i = 0; i < n; i++) {
        const Kvstore__V1__TxnOpResult *res = r->txn->results[i];
        fputs(sep, o->fp);
        switch (res->result_case) {
        case KVSTORE__V1__TXN_OP_RESULT__RESULT_GET:
            put_found(o->fp, res->get->found, &res->get->value);
            break;
        case KVSTORE__V1__TXN_OP_RESULT__RESULT_SET:
            fputs("OK", o->fp);
            break;
        case KVSTORE__V1__TXN_OP_RESULT__RESULT_CLEAR:
            put_found(o->fp, res->clear->found, &res->clear->value);
            break;
        case KVSTORE__V1__TXN_OP_RESULT__RESULT_RANGE:
            fputc('[', o->fp);
            kvctl_listing_words(o->fp, res->range);
            fputs(" ]", o->fp);
            break;
        case KVSTORE__V1__TXN_OP_RESULT__RESULT_CLEAR_RANGE:
            fprintf(o->fp, "%" PRIu64, res->clear_range->deleted);
            break;
        default:
            fputc('?', o->fp);
            break;
        }
    }
    fputc('\n', o->fp);
}

/* Adds the bytes B as FIELD to OBJ. */
static void add_bytes(json_object *obj, const char *field, const ProtobufCBinaryData *b)
{
    kvctl_out_json_bytes(obj, field, b->data, b->len);
}

static void add_number(json_object *obj, const char *field, uint64_t v)
{
    json_object_object_add(obj, field, json_object_new_uint64(v));
}

/* The JSON object of result RES of operation OP. */
static json_object *result_json(const Kvstore__V1__TxnOp *op, const Kvstore__V1__TxnOpResult *res)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "op", json_object_new_string(kvctl_txn_op_name(op)));
    if ((int)res->result_case != (int)op->op_case)
        return o;   /* the server answered another operation: show its name only */
    switch (res->result_case) {
    case KVSTORE__V1__TXN_OP_RESULT__RESULT_GET:
        add_bytes(o, "key", &op->get->key);
        json_object_object_add(o, "found", json_object_new_boolean(res->get->found));
        if (res->get->found) {
            add_bytes(o, "value", &res->get->value);
            add_number(o, "create_revision", res->get->create_revision);
            add_number(o, "mod_revision", res->get->mod_revision);
            add_number(o, "version", res->get->version);
            add_number(o, "ttl_ms", res->get->ttl_ms);
        }
        break;
    case KVSTORE__V1__TXN_OP_RESULT__RESULT_SET:
        add_bytes(o, "key", &op->set->key);
        add_number(o, "revision", res->set->revision);
        break;
    case KVSTORE__V1__TXN_OP_RESULT__RESULT_CLEAR:
        add_bytes(o, "key", &op->clear->key);
        json_object_object_add(o, "found", json_object_new_boolean(res->clear->found));
        if (res->clear->found)
            add_bytes(o, "value", &res->clear->value);
        add_number(o, "revision", res->clear->revision);
        break;
    case KVSTORE__V1__TXN_OP_RESULT__RESULT_RANGE:
        if (op->range->prefix.len) {
            add_bytes(o, "prefix", &op->range->prefix);
        } else {
            add_bytes(o, "start", &op->range->start);
            add_bytes(o, "end", &op->range->end);
        }
        json_object_object_add(o, "kvs", kvctl_listing_json_kvs(res->range, 0));
        add_number(o, "count", res->range->count);
        json_object_object_add(o, "more", json_object_new_boolean(res->range->more));
        break;
    case KVSTORE__V1__TXN_OP_RESULT__RESULT_CLEAR_RANGE:
        if (op->clear_range->prefix.len) {
            add_bytes(o, "prefix", &op->clear_range->prefix);
        } else {
            add_bytes(o, "start", &op->clear_range->start);
            add_bytes(o, "end", &op->clear_range->end);
        }
        add_number(o, "deleted", res->clear_range->deleted);
        add_number(o, "revision", res->clear_range->revision);
        break;
    default:
        break;
    }
    return o;
}

void kvctl_txnout_json(json_object *obj, const kvctl_cmd *cmd, const kvctl_result *r)
{
    json_object *results = json_object_new_array();
    size_t n;
    Kvstore__V1__TxnOp **ops = ops_run(cmd, r, &n);

    json_object_object_add(obj, "succeeded", json_object_new_boolean(r->txn->succeeded));
    for (size_t i = 0; i < n; i++)
        json_object_array_add(results, result_json(ops[i], r->txn->results[i]));
    json_object_object_add(obj, "results", results);
    add_number(obj, "revision", r->txn->revision);
}

/* Adds the row of result RES of operation OP to T, but for a range: a row
 * per key (listing.c). */
static void result_row(kvctl_table *t, const Kvstore__V1__TxnOp *op,
                       const Kvstore__V1__TxnOpResult *res)
{
    const char *name = kvctl_txn_op_name(op);
    char deleted[40];

    if ((int)res->result_case != (int)op->op_case)
        return;
    switch (res->result_case) {
    case KVSTORE__V1__TXN_OP_RESULT__RESULT_GET:
        kvctl_table_text(t, name);
        kvctl_table_bytes(t, op->get->key.data, op->get->key.len);
        if (!res->get->found) {
            kvctl_table_text(t, "(absent)");
            break;
        }
        kvctl_table_bytes(t, res->get->value.data, res->get->value.len);
        kvctl_table_number(t, res->get->create_revision);
        kvctl_table_number(t, res->get->mod_revision);
        kvctl_table_number(t, res->get->version);
        break;
    case KVSTORE__V1__TXN_OP_RESULT__RESULT_SET:
        kvctl_table_text(t, name);
        kvctl_table_bytes(t, op->set->key.data, op->set->key.len);
        for (int i = 0; i < 4; i++)
            kvctl_table_text(t, "");
        kvctl_table_number(t, res->set->revision);
        break;
    case KVSTORE__V1__TXN_OP_RESULT__RESULT_CLEAR:
        kvctl_table_text(t, name);
        kvctl_table_bytes(t, op->clear->key.data, op->clear->key.len);
        if (res->clear->found)
            kvctl_table_bytes(t, res->clear->value.data, res->clear->value.len);
        else
            kvctl_table_text(t, "(absent)");
        for (int i = 0; i < 3; i++)
            kvctl_table_text(t, "");
        kvctl_table_number(t, res->clear->revision);
        break;
    case KVSTORE__V1__TXN_OP_RESULT__RESULT_RANGE:
        kvctl_listing_txn_rows(t, name, res->range);
        if (res->range->n_kvs == 0) {
            kvctl_table_text(t, name);
            kvctl_table_text(t, "");
            kvctl_table_text(t, "(no keys)");
        }
        break;
    case KVSTORE__V1__TXN_OP_RESULT__RESULT_CLEAR_RANGE:
        kvctl_table_text(t, name);
        kvctl_table_text(t, "");
        snprintf(deleted, sizeof deleted, "%" PRIu64 " deleted", res->clear_range->deleted);
        kvctl_table_text(t, deleted);
        for (int i = 0; i < 3; i++)
            kvctl_table_text(t, "");
        kvctl_table_number(t, res->clear_range->revision);
        break;
    default:
        return;
    }
    /* Complete a short row, so the next one starts in the first column. */
    while (t->ncells % t->ncols)
        kvctl_table_text(t, "");
}

void kvctl_txnout_table(FILE *fp, const kvctl_cmd *cmd, const kvctl_result *r)
{
    static const char *const cols[] = { "OP", "KEY", "VALUE", "CREATE", "MOD", "VERSION",
                                        "REVISION" };
    kvctl_table t;
    size_t n;
    Kvstore__V1__TxnOp **ops = ops_run(cmd, r, &n);

    fprintf(fp, "%s\n", r->txn->succeeded ? "SUCCESS" : "FAILURE");
    if (n) {
        kvctl_table_init(&t, 7, cols);
        for (size_t i = 0; i < n; i++)
            result_row(&t, ops[i], r->txn->results[i]);
        kvctl_table_print(&t, fp);
    }
    fprintf(fp, "revision %" PRIu64 "\n", r->txn->revision);
}
