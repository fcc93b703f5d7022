/* out.c - everything kvctl prints about a command: its result on stdout in
 * the simple or JSON format, its error as one line on stderr, and the exit
 * code it stands for. It does not run commands or parse input. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json.h>
#include <sodium.h>

#include "mem.h"
#include "out.h"
#include "stats.h"
#include "text.h"

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
    if (r->status == KV_NOT_FOUND
        && (cmd->op == KVCTL_OP_GET || cmd->op == KVCTL_OP_CLEAR))
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

/* "kvctl: get "k": NOT_FOUND: key not found" on stderr; "kvctl: auth:
 * UNAUTHENTICATED: wrong token" when authentication failed instead. */
static void print_error(const kvctl_cmd *cmd, const kvctl_result *r)
{
    char key[160] = "";

    if (kvctl_cmd_has_key(cmd->op) && !r->auth) {
        key[0] = ' ';
        kvctl_out_quote(cmd->key.data, cmd->key.len, key + 1, sizeof key - 1);
    }
    fprintf(stderr, "kvctl: %s%s: %s%s%s\n",
            r->auth ? "auth" : kvctl_cmd_name(cmd->op), key,
            kv_status_name(r->status), r->message && *r->message ? ": " : "",
            r->message ? r->message : "");
}

/* Writes a value (or ping's reply) from the server. Raw bytes, except on a
 * terminal, where anything but plain text goes in double quotes with
 * escapes, as redis-cli does: a stored ESC [31m must not turn the user's
 * terminal red, nor other escapes retitle or rewrite it. Scripts read a
 * pipe or a file, and get the bytes as stored. */
static void put_value(const kvctl_out *o, const kvctl_bytes *b)
{
    if (o->tty && !kvctl_text_is_plain(b->data, b->len))
        kvctl_text_put_quoted(o->fp, b->data, b->len);
    else if (b->len)
        fwrite(b->data, 1, b->len, o->fp);
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
    }
}

/* Adds FIELD = base64(B) to OBJ. */
static void json_add_base64(json_object *obj, const char *field,
                            const kvctl_bytes *b)
{
    size_t n = sodium_base64_ENCODED_LEN(b->len, sodium_base64_VARIANT_ORIGINAL);
    char *s = kvctl_mem_alloc(n);

    sodium_bin2base64(s, n, b->len ? b->data : (const unsigned char *)"", b->len,
                      sodium_base64_VARIANT_ORIGINAL);
    json_object_object_add(obj, field, json_object_new_string(s));
    free(s);
}

/* Prints OBJ on one line and frees it. */
static void json_print(FILE *fp, json_object *obj)
{
    fputs(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN
                                              | JSON_C_TO_STRING_NOSLASHESCAPE), fp);
    fputc('\n', fp);
    json_object_put(obj);
}

static void print_json(const kvctl_out *o, const kvctl_cmd *cmd,
                       const kvctl_result *r)
{
    json_object *obj = json_object_new_object();

    json_object_object_add(obj, "command",
                           json_object_new_string(kvctl_cmd_name(cmd->op)));
    if (kvctl_cmd_has_key(cmd->op))
        json_add_base64(obj, "key", &cmd->key);
    json_object_object_add(obj, "code",
                           json_object_new_string(kv_status_name(r->status)));
    if (r->status != KV_OK) {
        const char *msg = r->message ? r->message : "";
        size_t n = strlen(msg) + sizeof "auth: ";
        char *text = kvctl_mem_alloc(n);

        /* "auth: wrong token": the command never ran, authenticating its
         * connection failed (as on stderr). */
        snprintf(text, n, "%s%s", r->auth ? "auth: " : "", msg);
        json_object_object_add(obj, "message", json_object_new_string(text));
        free(text);
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
        break;
    case KVCTL_OP_SET:
        break;
    case KVCTL_OP_CLEAR:
        json_object_object_add(obj, "found", json_object_new_boolean(r->found));
        if (r->found)
            json_add_base64(obj, "value", &r->value);
        break;
    case KVCTL_OP_STATS:
        kvctl_stats_json(obj, r->stats);
        break;
    }
    json_print(o->fp, obj);
}

int kvctl_out_result(const kvctl_out *o, const kvctl_cmd *cmd,
                     const kvctl_result *r)
{
    if (o->format == KVCTL_FORMAT_JSON)
        print_json(o, cmd, r);
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
