/* clients.c - kvctl's clients command: "clients" prints the server's
 * ClientList, a row per connection; "clients kill PEER" and "clients kill
 * --id N" send ClientKill. Owns the answers it decodes; opening the
 * connection and the raw call are conn.c's. */
#include <stdlib.h>
#include <string.h>

#include "clients.h"
#include "conn.h"
#include "dur.h"
#include "mem.h"
#include "table.h"

#define METHOD(m) "/kvstore.v1.KV/" m

static const char *const list_cols[] = { "ID", "PEER", "AGE", "IDLE", "REQUESTS", "IN",
                                         "OUT", "WATCHES", "" };

/* A duration cell: "250ms", "29.5s" (dur.h). */
static void dur_cell(kvctl_table *t, uint64_t ms)
{
    char buf[32];

    kvctl_dur_format(ms, buf, sizeof buf);
    kvctl_table_text(t, buf);
}

static void print_list(const kvctl_out *o, const Kvstore__V1__ClientListResponse *l)
{
    if (o->format == KVCTL_FORMAT_JSON) {
        json_object *obj = json_object_new_object(), *arr = json_object_new_array();
        for (size_t i = 0; i < l->n_clients; i++) {
            const Kvstore__V1__ClientInfo *c = l->clients[i];
            json_object *j = json_object_new_object();
            json_object_object_add(j, "id", json_object_new_uint64(c->id));
            json_object_object_add(j, "peer", json_object_new_string(c->peer));
            json_object_object_add(j, "age_ms", json_object_new_uint64(c->age_ms));
            json_object_object_add(j, "idle_ms", json_object_new_uint64(c->idle_ms));
            json_object_object_add(j, "requests", json_object_new_uint64(c->requests));
            json_object_object_add(j, "input_buffer_bytes",
                                   json_object_new_uint64(c->input_buffer_bytes));
            json_object_object_add(j, "output_buffer_bytes",
                                   json_object_new_uint64(c->output_buffer_bytes));
            json_object_object_add(j, "watches", json_object_new_uint64(c->watches));
            json_object_object_add(j, "authenticated", json_object_new_boolean(c->authenticated));
            json_object_object_add(j, "current", json_object_new_boolean(c->current));
            json_object_array_add(arr, j);
        }
        json_object_object_add(obj, "clients", arr);
        kvctl_out_json_line(o->fp, obj);
        return;
    }
    kvctl_table t;
    kvctl_table_init(&t, sizeof list_cols / sizeof *list_cols, list_cols);
    for (size_t i = 0; i < l->n_clients; i++) {
        const Kvstore__V1__ClientInfo *c = l->clients[i];
        kvctl_table_number(&t, c->id);
        kvctl_table_text(&t, c->peer);
        dur_cell(&t, c->age_ms);
        dur_cell(&t, c->idle_ms);
        kvctl_table_number(&t, c->requests);
        kvctl_table_number(&t, c->input_buffer_bytes);
        kvctl_table_number(&t, c->output_buffer_bytes);
        kvctl_table_number(&t, c->watches);
        kvctl_table_text(&t, c->current ? "(this kvctl)"
                             : c->authenticated ? "" : "(not authenticated)");
    }
    kvctl_table_print(&t, o->fp);
}

static void print_killed(const kvctl_out *o, uint64_t killed)
{
    if (o->format == KVCTL_FORMAT_JSON)
        fprintf(o->fp, "{\"command\":\"clients kill\",\"code\":\"OK\",\"killed\":%llu}\n",
                (unsigned long long)killed);
    else
        fprintf(o->fp, "killed %llu\n", (unsigned long long)killed);
}

int kvctl_clients_run(const kvctl_conf *conf, const kvctl_cmd *cmd, const kvctl_out *o)
{
    Kvstore__V1__ClientListRequest list = KVSTORE__V1__CLIENT_LIST_REQUEST__INIT;
    Kvstore__V1__ClientKillRequest kill = KVSTORE__V1__CLIENT_KILL_REQUEST__INIT;
    kvctl_result r;
    uint8_t *payload = NULL;
    size_t len = 0;
    kv_status st;

    if (cmd->clients_kill) {
        kill.peer = cmd->kill_peer ? cmd->kill_peer : (char *)"";
        kill.id = cmd->kill_id;
        st = kvctl_conn_call_once(conf, METHOD("ClientKill"), &kill.base, &payload, &len, &r);
    } else {
        st = kvctl_conn_call_once(conf, METHOD("ClientList"), &list.base, &payload, &len, &r);
    }
    if (st == KV_OK && cmd->clients_kill) {
        Kvstore__V1__ClientKillResponse *a =
            kvstore__v1__client_kill_response__unpack(NULL, len, payload);
        if (a)
            print_killed(o, a->killed);
        st = a ? KV_OK : KV_INTERNAL;
        if (a)
            kvstore__v1__client_kill_response__free_unpacked(a, NULL);
    } else if (st == KV_OK) {
        Kvstore__V1__ClientListResponse *a =
            kvstore__v1__client_list_response__unpack(NULL, len, payload);
        if (a)
            print_list(o, a);
        st = a ? KV_OK : KV_INTERNAL;
        if (a)
            kvstore__v1__client_list_response__free_unpacked(a, NULL);
    }
    free(payload);
    int code = kvctl_out_call_end(o, cmd, st, &r);
    return st == KV_NOT_FOUND ? KVCTL_EXIT_NOT_FOUND : code;   /* no such connection:
                                                                  as pkill's 1 */
}
