/* slowlog.c - kvctl's slowlog command: one SlowLog call, its entries
 * printed as a table (or JSON). Owns the answer it decodes. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "mem.h"
#include "slowlog.h"
#include "table.h"

static const char *cols[] = { "ID", "TIME", "DURATION", "METHOD", "KEY", "PEER", "CODE" };

/* The method's name without its service ("/kvstore.v1.KV/Get" -> "Get"). */
static const char *short_method(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;

    return slash ? slash + 1 : path ? path : "";
}

/* The entry's time, UTC, to the millisecond: 2026-11-26T10:00:00.123Z. */
static void utc(uint64_t unix_ms, char *buf, size_t len)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    char s[32];

    gmtime_r(&t, &tm);
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03uZ", s, (unsigned)(unix_ms % 1000));
}

static void print_table(const kvctl_out *o, const Kvstore__V1__SlowLogResponse *a)
{
    kvctl_table t;
    char buf[64];

    fprintf(o->fp, "slow log: %zu of %llu logged (requests over %llu us, the last %llu kept)\n",
            a->n_entries, (unsigned long long)a->total, (unsigned long long)a->threshold_us,
            (unsigned long long)a->capacity);
    if (!a->n_entries)
        return;
    kvctl_table_init(&t, sizeof cols / sizeof *cols, cols);
    for (size_t i = 0; i < a->n_entries; i++) {
        const Kvstore__V1__SlowLogEntry *e = a->entries[i];
        kvctl_table_number(&t, e->id);
        utc(e->unix_ms, buf, sizeof buf);
        kvctl_table_text(&t, buf);
        snprintf(buf, sizeof buf, "%llu us", (unsigned long long)e->duration_us);
        kvctl_table_text(&t, buf);
        kvctl_table_text(&t, short_method(e->method));
        if (e->key_bytes > e->key.len) {
            /* Cut: its first bytes, quoted, and its whole length. */
            char key[300];
            kvctl_out_quote(e->key.data, e->key.len, key, sizeof key);
            snprintf(key + strlen(key), sizeof key - strlen(key), "... (%llu bytes)",
                     (unsigned long long)e->key_bytes);
            kvctl_table_text(&t, key);
        } else if (e->key_bytes) {
            kvctl_table_bytes(&t, e->key.data, e->key.len);
        } else {
            kvctl_table_text(&t, "-");
        }
        kvctl_table_text(&t, e->peer);
        kvctl_table_text(&t, kv_status_name((kv_status)e->code));
    }
    kvctl_table_print(&t, o->fp);
}

static void print_json(const kvctl_out *o, const Kvstore__V1__SlowLogResponse *a)
{
    json_object *obj = json_object_new_object(), *arr = json_object_new_array();

    json_object_object_add(obj, "command", json_object_new_string("slowlog"));
    json_object_object_add(obj, "threshold_us", json_object_new_uint64(a->threshold_us));
    json_object_object_add(obj, "capacity", json_object_new_uint64(a->capacity));
    json_object_object_add(obj, "total", json_object_new_uint64(a->total));
    for (size_t i = 0; i < a->n_entries; i++) {
        const Kvstore__V1__SlowLogEntry *e = a->entries[i];
        json_object *j = json_object_new_object();
        json_object_object_add(j, "id", json_object_new_uint64(e->id));
        json_object_object_add(j, "unix_ms", json_object_new_uint64(e->unix_ms));
        json_object_object_add(j, "duration_us", json_object_new_uint64(e->duration_us));
        json_object_object_add(j, "method", json_object_new_string(e->method));
        kvctl_out_json_bytes(j, "key", e->key.data, e->key.len);
        json_object_object_add(j, "key_bytes", json_object_new_uint64(e->key_bytes));
        json_object_object_add(j, "peer", json_object_new_string(e->peer));
        json_object_object_add(j, "code", json_object_new_string(kv_status_name((kv_status)e->code)));
        json_object_array_add(arr, j);
    }
    json_object_object_add(obj, "entries", arr);
    fputs(json_object_to_json_string_ext(obj, KVCTL_JSON_FLAGS), o->fp);
    fputc('\n', o->fp);
    json_object_put(obj);
}

int kvctl_slowlog_run(const kvctl_conf *conf, const kvctl_cmd *cmd, const kvctl_out *o)
{
    Kvstore__V1__SlowLogRequest req = KVSTORE__V1__SLOW_LOG_REQUEST__INIT;
    Kvstore__V1__SlowLogResponse *a = NULL;
    kvctl_result r;
    uint8_t *payload;
    size_t len;

    req.limit = cmd->limit > UINT32_MAX ? UINT32_MAX : (uint32_t)cmd->limit;
    req.reset = cmd->reset;
    kv_status st = kvctl_conn_call_once(conf, "/kvstore.v1.KV/SlowLog", &req.base, &payload,
                                        &len, &r);
    if (st == KV_OK && !(a = kvstore__v1__slow_log_response__unpack(NULL, len, payload))) {
        st = r.status = KV_INTERNAL;
        r.message = kvctl_mem_strdup("the answer does not decode as SlowLogResponse");
    }
    free(payload);
    if (a) {
        if (o->format == KVCTL_FORMAT_JSON)
            print_json(o, a);
        else
            print_table(o, a);
        if (cmd->reset && o->format != KVCTL_FORMAT_JSON)
            fprintf(o->fp, "slow log emptied\n");
        kvstore__v1__slow_log_response__free_unpacked(a, NULL);
    }
    int code = st == KV_OK ? KVCTL_EXIT_OK : kvctl_out_result(o, cmd, &r);
    kvctl_exec_result_clear(&r);
    return code;
}
