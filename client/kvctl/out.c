/* out.c - everything kvctl prints about a command: its result on stdout in
 * the simple, JSON or table format, its error as one line on stderr, and
 * the exit code it stands for; a range's as its pages come, through the
 * page hook of exec.h. A range's keys are listing.c's to print, a txn's
 * results txnout.c's, stats' figures stats.c's. It does not run commands
 * or parse input. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json.h>
#include <sodium.h>

#include "dur.h"
#include "listing.h"
#include "mem.h"
#include "out.h"
#include "stats.h"
#include "table.h"
#include "text.h"
#include "txnout.h"

void kvctl_out_init(kvctl_out *o, kvctl_format format, int lines)
{
    o->fp = stdout;
    o->format = format;
    o->lines = lines;
    o->tty = isatty(STDOUT_FILENO);
}

int kvctl_out_exit_code(const kvctl_cmd *cmd, const kvctl_result *r)
{
    /* The library fails kv_client_auth_file() with INVALID_ARGUMENT only
     * for a token file it cannot use: a local problem, as a usage error. */
    if (r->auth && r->status == KV_INVALID_ARGUMENT)
        return KVCTL_EXIT_USAGE;
    if (r->status == KV_OK)
        return cmd->op == KVCTL_OP_CLEAR && !r->found ? KVCTL_EXIT_NOT_FOUND
                                                       : KVCTL_EXIT_OK;
    if (r->transport)
        return KVCTL_EXIT_UNREACHABLE;
    if (r->canceled)
        return KVCTL_EXIT_CANCELED;
    if (r->status == KV_FAILED_PRECONDITION && cmd->has_if_revision)
        return KVCTL_EXIT_CONFLICT;
    if (r->status == KV_NOT_FOUND && kvctl_cmd_has_key(cmd->op) && cmd->op != KVCTL_OP_SET)
        return KVCTL_EXIT_NOT_FOUND;
    return KVCTL_EXIT_SERVER;
}

void kvctl_out_quote(const uint8_t *data, size_t len, char *buf, size_t buflen)
{
    size_t o = 0, i;

    if (buflen < 8) {
        if (buflen)
            buf[0] = 0;
        return;
    }
    buf[o++] = '"';
    for (i = 0; i < len; i++) {
        char esc[5];
        size_t n = kvctl_text_escape(data[i], esc);

        if (o + n + 5 > buflen)   /* room for "..." and NUL */
            break;
        memcpy(buf + o, esc, n);
        o += n;
    }
    buf[o++] = '"';
    if (i < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = 0;
}

/* The command word of CMD ("get" for get --prefix too). */
static const char *name_of(const kvctl_cmd *cmd)
{
    return cmd->name ? cmd->name : kvctl_cmd_name(cmd->op);
}

/* "kvctl: get "k": NOT_FOUND: key not found" on stderr; "kvctl: auth:
 * UNAUTHENTICATED: wrong token" when authentication failed instead. */
static void print_error(const kvctl_cmd *cmd, const kvctl_result *r)
{
    char key[400] = "";

    if (!r->auth) {
        kvctl_cmd_target(cmd, key + 1, sizeof key - 1);
        if (key[1])
            key[0] = ' ';
    }
    fprintf(stderr, "kvctl: %s%s: %s%s%s\n",
            r->auth ? "auth" : name_of(cmd), key,
            kv_status_name(r->status), r->message && *r->message ? ": " : "",
            r->message ? r->message : "");
}

/* Writes a value (or ping's reply) from the server. Raw bytes, except on a
 * terminal, where anything but plain text goes in double quotes with
 * escapes, as redis-cli does: a stored ESC [31m must not turn the user's
 * terminal red, nor other escapes retitle or rewrite it. Scripts read a
 * pipe or a file, and get the bytes as stored. */
void kvctl_out_value(const kvctl_out *o, const uint8_t *data, size_t len)
{
    if (o->tty && !kvctl_text_is_plain(data, len))
        kvctl_text_put_quoted(o->fp, data, len);
    else if (len)
        fwrite(data, 1, len, o->fp);
}

static void put_value(const kvctl_out *o, const kvctl_bytes *b)
{
    kvctl_out_value(o, b->data, b->len);
}

static void print_simple(const kvctl_out *o, const kvctl_cmd *cmd,
                         const kvctl_result *r)
{
    int newline = o->lines || o->tty;

    if (r->status != KV_OK) {
        if (o->lines)
            fputc('\n', o->fp);
        return;
    }
    switch (cmd->op) {
    case KVCTL_OP_PING:
        put_value(o, &r->value);
        fputc('\n', o->fp);
        break;
    case KVCTL_OP_SET:
        fputs("OK\n", o->fp);
        break;
    case KVCTL_OP_GET:
        put_value(o, &r->value);
        if (newline)
            fputc('\n', o->fp);
        break;
    case KVCTL_OP_CLEAR:
        if (r->found)
            put_value(o, &r->value);
        if ((r->found && newline) || (!r->found && o->lines))
            fputc('\n', o->fp);
        break;
    case KVCTL_OP_STATS:
        kvctl_stats_print(o->fp, r->stats, o->lines);
        break;
    case KVCTL_OP_RANGE:
        kvctl_listing_simple(o, cmd, r);
        break;
    case KVCTL_OP_CLEAR_RANGE:
        fprintf(o->fp, "%llu\n", (unsigned long long)r->deleted);
        break;
    case KVCTL_OP_TXN:
        kvctl_txnout_simple(o, cmd, r);
        break;
    case KVCTL_OP_TOUCH:
        fputs("OK\n", o->fp);
        break;
    case KVCTL_OP_TTL: {
        char dur[32];
        kvctl_dur_format(r->ttl_ms, dur, sizeof dur);
        fprintf(o->fp, "%s\n", r->ttl_ms ? dur : "none");
        break;
    }
    case KVCTL_OP_WATCH:
    case KVCTL_OP_CLUSTER:
    case KVCTL_OP_SNAPSHOT:
    case KVCTL_OP_DUMP:
    case KVCTL_OP_LOAD:
        break;      /* its events went out as they came (watchout.h) */
    }
}

/* -w table: the result in columns with its revisions. Ping, stats, touch,
 * ttl and watch, which have none, print as in the simple format. */
static void print_table(const kvctl_out *o, const kvctl_cmd *cmd, const kvctl_result *r)
{
    static const char *const get_cols[] = { "KEY", "VALUE", "CREATE", "MOD", "VERSION", "TTL" };
    static const char *const set_cols[] = { "KEY", "REVISION" };
    static const char *const clear_cols[] = { "KEY", "VALUE", "REVISION" };
    static const char *const clear_range_cols[] = { "DELETED", "REVISION" };
    kvctl_table t;

    if (r->status != KV_OK || cmd->op == KVCTL_OP_PING || cmd->op == KVCTL_OP_STATS
        || cmd->op == KVCTL_OP_TOUCH || cmd->op == KVCTL_OP_TTL || cmd->op == KVCTL_OP_WATCH) {
        print_simple(&(kvctl_out){ o->fp, KVCTL_FORMAT_SIMPLE, o->lines, o->tty }, cmd, r);
        return;
    }
    switch (cmd->op) {
    case KVCTL_OP_GET:
        /* The TTL column only for a key that expires: the others print as
         * they always did. */
        kvctl_table_init(&t, r->ttl_ms ? 6 : 5, get_cols);
        kvctl_table_bytes(&t, cmd->key.data, cmd->key.len);
        kvctl_table_bytes(&t, r->value.data, r->value.len);
        kvctl_table_number(&t, r->revs.create_revision);
        kvctl_table_number(&t, r->revs.mod_revision);
        kvctl_table_number(&t, r->revs.version);
        if (r->ttl_ms) {
            char dur[32];
            kvctl_dur_format(r->ttl_ms, dur, sizeof dur);
            kvctl_table_text(&t, dur);
        }
        kvctl_table_print(&t, o->fp);
        fprintf(o->fp, "revision %llu\n", (unsigned long long)r->revs.revision);
        break;
    case KVCTL_OP_SET:
        kvctl_table_init(&t, 2, set_cols);
        kvctl_table_bytes(&t, cmd->key.data, cmd->key.len);
        kvctl_table_number(&t, r->revision);
        kvctl_table_print(&t, o->fp);
        break;
    case KVCTL_OP_CLEAR:
        if (!r->found)
            break;      /* as the simple format: nothing, exit 1 */
        kvctl_table_init(&t, 3, clear_cols);
        kvctl_table_bytes(&t, cmd->key.data, cmd->key.len);
        kvctl_table_bytes(&t, r->value.data, r->value.len);
        kvctl_table_number(&t, r->revision);
        kvctl_table_print(&t, o->fp);
        break;
    case KVCTL_OP_CLEAR_RANGE:
        kvctl_table_init(&t, 2, clear_range_cols);
        kvctl_table_number(&t, r->deleted);
        kvctl_table_number(&t, r->revision);
        kvctl_table_print(&t, o->fp);
        break;
    case KVCTL_OP_RANGE:
        kvctl_listing_table(o->fp, cmd, r);
        break;
    case KVCTL_OP_TXN:
        kvctl_txnout_table(o->fp, cmd, r);
        break;
    default:
        break;
    }
}

void kvctl_out_json_bytes(json_object *obj, const char *field, const uint8_t *data,
                          size_t len)
{
    size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *s = kvctl_mem_alloc(n);

    sodium_bin2base64(s, n, len ? data : (const unsigned char *)"", len,
                      sodium_base64_VARIANT_ORIGINAL);
    json_object_object_add(obj, field, json_object_new_string(s));
    free(s);
}

/* Adds FIELD = base64(B) to OBJ. */
static void json_add_base64(json_object *obj, const char *field,
                            const kvctl_bytes *b)
{
    kvctl_out_json_bytes(obj, field, b->data, b->len);
}

/* Adds the range CMD selects to OBJ: "all", "prefix", or "start" and "end". */
static void json_add_selector(json_object *obj, const kvctl_cmd *cmd)
{
    if (cmd->all) {
        json_object_object_add(obj, "all", json_object_new_boolean(1));
    } else if (cmd->prefix) {
        json_add_base64(obj, "prefix", &cmd->key);
    } else {
        json_add_base64(obj, "start", &cmd->key);
        json_add_base64(obj, "end", &cmd->end);
    }
}

/* Prints OBJ on one line and frees it. */
static void json_print(FILE *fp, json_object *obj)
{
    fputs(json_object_to_json_string_ext(obj, KVCTL_JSON_FLAGS), fp);
    fputc('\n', fp);
    json_object_put(obj);
}

/* The start of the JSON object of R, the result of CMD: "command", what
 * it is about, "code". */
static json_object *json_start(const kvctl_cmd *cmd, const kvctl_result *r)
{
    json_object *obj = json_object_new_object();

    json_object_object_add(obj, "command", json_object_new_string(name_of(cmd)));
    if (kvctl_cmd_has_key(cmd->op)
        || (cmd->op == KVCTL_OP_WATCH && !cmd->prefix && !cmd->range && !cmd->all))
        json_add_base64(obj, "key", &cmd->key);
    else if (cmd->op == KVCTL_OP_RANGE || cmd->op == KVCTL_OP_CLEAR_RANGE
             || cmd->op == KVCTL_OP_WATCH)
        json_add_selector(obj, cmd);
    json_object_object_add(obj, "code",
                           json_object_new_string(kv_status_name(r->status)));
    return obj;
}

/* Adds "message": why R failed, to OBJ. */
static void json_add_message(json_object *obj, const kvctl_result *r)
{
    const char *msg = r->message ? r->message : "";
    size_t n = strlen(msg) + sizeof "auth: ";
    char *text = kvctl_mem_alloc(n);

    /* "auth: wrong token": the command never ran, authenticating its
     * connection failed (as on stderr). */
    snprintf(text, n, "%s%s", r->auth ? "auth: " : "", msg);
    json_object_object_add(obj, "message", json_object_new_string(text));
    free(text);
}

/* Prints OBJ, a JSON object, without the brace that ends it (SKIP_END)
 * or the one that starts it (!SKIP_END), and frees it: the pieces of an
 * object printed in parts, byte for byte as json_print() prints it whole. */
static void json_print_part(FILE *fp, json_object *obj, int skip_end)
{
    const char *s = json_object_to_json_string_ext(obj, KVCTL_JSON_FLAGS);
    size_t n = strlen(s);

    if (skip_end)
        fwrite(s, 1, n - 1, fp);
    else
        fputs(s + 1, fp);
    json_object_put(obj);
}

int kvctl_out_page(void *out, const kvctl_cmd *cmd, kvctl_result *r,
                   const Kvstore__V1__RangeResponse *page)
{
    const kvctl_out *o = out;

    if (o->format == KVCTL_FORMAT_TABLE || cmd->count_only)
        return 0;
    if (o->format == KVCTL_FORMAT_JSON) {
        if (!r->streamed) {
            /* As print_json() and kvctl_listing_json() would put it. */
            json_print_part(o->fp, json_start(cmd, r), 1);
            fputs(",\"kvs\":[", o->fp);
        }
        kvctl_listing_json_page(o->fp, cmd, page, &r->shown);
    } else {
        kvctl_listing_simple_page(o, cmd, page, &r->shown);
    }
    r->streamed = 1;
    return 1;
}

/* Ends the JSON object of the range R that kvctl_out_page() started: the
 * rest of what kvctl_listing_json() adds, and, when a later page failed,
 * "more": true and "error" (the object already says "code": "OK"). */
static void json_range_end(const kvctl_out *o, const kvctl_result *r)
{
    json_object *rest = json_object_new_object();

    json_object_object_add(rest, "count", json_object_new_uint64(r->count));
    json_object_object_add(rest, "more", json_object_new_boolean(r->more
                                                                 || r->status != KV_OK));
    json_object_object_add(rest, "revision", json_object_new_uint64(r->revision));
    if (r->status != KV_OK) {
        json_object *error = json_object_new_object();
        json_object_object_add(error, "code",
                               json_object_new_string(kv_status_name(r->status)));
        json_add_message(error, r);
        json_object_object_add(rest, "error", error);
    }
    fputc(']', o->fp);
    fputc(',', o->fp);
    json_print_part(o->fp, rest, 0);
    fputc('\n', o->fp);
}

static void print_json(const kvctl_out *o, const kvctl_cmd *cmd,
                       const kvctl_result *r)
{
    json_object *obj;

    if (cmd->op == KVCTL_OP_RANGE && r->streamed) {
        json_range_end(o, r);
        return;
    }
    if (cmd->op == KVCTL_OP_WATCH && r->status == KV_OK)
        return;     /* its events went out as they came (watchout.h) */
    obj = json_start(cmd, r);
    if (r->status != KV_OK) {
        json_add_message(obj, r);
        if (r->canceled && r->revision)
            json_object_object_add(obj, "compact_revision", json_object_new_uint64(r->revision));
        json_print(o->fp, obj);
        return;
    }
    switch (cmd->op) {
    case KVCTL_OP_PING:
        json_object_object_add(obj, "reply",
                               json_object_new_string_len((const char *)r->value.data,
                                                          (int)r->value.len));
        break;
    case KVCTL_OP_GET:
        json_add_base64(obj, "value", &r->value);
        json_object_object_add(obj, "create_revision",
                               json_object_new_uint64(r->revs.create_revision));
        json_object_object_add(obj, "mod_revision", json_object_new_uint64(r->revs.mod_revision));
        json_object_object_add(obj, "version", json_object_new_uint64(r->revs.version));
        json_object_object_add(obj, "revision", json_object_new_uint64(r->revs.revision));
        json_object_object_add(obj, "ttl_ms", json_object_new_uint64(r->ttl_ms));
        break;
    case KVCTL_OP_TTL:
        json_object_object_add(obj, "ttl_ms", json_object_new_uint64(r->ttl_ms));
        break;
    case KVCTL_OP_TOUCH:
        json_object_object_add(obj, "found", json_object_new_boolean(r->found));
        break;
    case KVCTL_OP_SET:
        json_object_object_add(obj, "revision", json_object_new_uint64(r->revision));
        break;
    case KVCTL_OP_CLEAR:
        json_object_object_add(obj, "found", json_object_new_boolean(r->found));
        if (r->found)
            json_add_base64(obj, "value", &r->value);
        json_object_object_add(obj, "revision", json_object_new_uint64(r->revision));
        break;
    case KVCTL_OP_STATS:
        kvctl_stats_json(obj, r->stats);
        break;
    case KVCTL_OP_RANGE:
        kvctl_listing_json(obj, cmd, r);
        break;
    case KVCTL_OP_CLEAR_RANGE:
        json_object_object_add(obj, "deleted", json_object_new_uint64(r->deleted));
        json_object_object_add(obj, "revision", json_object_new_uint64(r->revision));
        break;
    case KVCTL_OP_TXN:
        kvctl_txnout_json(obj, cmd, r);
        break;
    case KVCTL_OP_WATCH:
    case KVCTL_OP_CLUSTER:
    case KVCTL_OP_SNAPSHOT:
    case KVCTL_OP_DUMP:
    case KVCTL_OP_LOAD:
        break;
    }
    json_print(o->fp, obj);
}

int kvctl_out_result(const kvctl_out *o, const kvctl_cmd *cmd,
                     const kvctl_result *r)
{
    if (o->format == KVCTL_FORMAT_JSON)
        print_json(o, cmd, r);
    else if (o->format == KVCTL_FORMAT_TABLE)
        print_table(o, cmd, r);
    else
        print_simple(o, cmd, r);
    if (r->status != KV_OK) {
        fflush(o->fp);   /* keep stdout and stderr in order on a terminal */
        print_error(cmd, r);
    }
    return kvctl_out_exit_code(cmd, r);
}

void kvctl_out_usage(const kvctl_out *o, const char *name, const char *reason)
{
    if (o->lines) {
        if (o->format == KVCTL_FORMAT_JSON) {
            json_object *obj = json_object_new_object();
            json_object_object_add(obj, "command",
                                   name ? json_object_new_string(name) : NULL);
            json_object_object_add(obj, "code", json_object_new_string("USAGE"));
            json_object_object_add(obj, "message", json_object_new_string(reason));
            json_print(o->fp, obj);
        } else {
            fputc('\n', o->fp);
        }
        fflush(o->fp);
    }
    fprintf(stderr, "kvctl: %s\n", reason);
}
