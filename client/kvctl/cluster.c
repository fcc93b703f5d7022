/* cluster.c - kvctl's cluster command: "status" asks every node it can
 * name (the -e endpoints, then the client address of each member they
 * report) for its ClusterStatus, one connection each, and prints a row per
 * node; "add", "remove" and "transfer" send MemberAdd, MemberRemove or
 * LeaderTransfer on one connection to the endpoints, which the client
 * library carries to the leader, and print the answer. Owns the answers
 * it decodes; opening connections is conn.c's. */
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "conn.h"
#include "mem.h"
#include "table.h"

#define METHOD(m) "/kvstore.v1.KV/" m

/* One node status asked: where, and what it answered (or why not). */
typedef struct node {
    char *endpoint;
    uint64_t expect_id;     /* the member id it was named for; 0: from -e */
    Kvstore__V1__ClusterStatusResponse *st;     /* NULL: no answer */
    kvctl_result why;       /* when st is NULL */
} node;

typedef struct nodes {
    node *v;
    size_t n;
} nodes;

/* Adds ENDPOINT (the first LEN bytes) to NS unless it is there already. */
static void nodes_add(nodes *ns, const char *endpoint, size_t len, uint64_t id)
{
    for (size_t i = 0; i < ns->n; i++)
        if (strlen(ns->v[i].endpoint) == len && memcmp(ns->v[i].endpoint, endpoint, len) == 0)
            return;
    ns->v = kvctl_mem_realloc(ns->v, (ns->n + 1) * sizeof *ns->v);
    memset(&ns->v[ns->n], 0, sizeof ns->v[ns->n]);
    ns->v[ns->n].endpoint = kvctl_mem_alloc(len + 1);
    memcpy(ns->v[ns->n].endpoint, endpoint, len);
    ns->v[ns->n].endpoint[len] = 0;
    ns->v[ns->n].expect_id = id;
    ns->n++;
}

/* Whether a node of NS[0..UPTO) answered as node ID. */
static int answered_as(const nodes *ns, size_t upto, uint64_t id)
{
    for (size_t i = 0; i < upto; i++)
        if (ns->v[i].st && ns->v[i].st->node_id == id)
            return 1;
    return 0;
}

/* Asks node N for its status, on a connection to it alone. */
static void ask(const kvctl_conf *conf, node *n)
{
    kvctl_conf one = *conf;
    Kvstore__V1__ClusterStatusRequest req = KVSTORE__V1__CLUSTER_STATUS_REQUEST__INIT;
    uint8_t *payload = NULL;
    size_t len = 0;
    kv_client *c;

    one.endpoint = n->endpoint;
    c = kvctl_conn_open(&one, &n->why);
    if (!c)
        return;
    if (kvctl_conn_call(c, METHOD("ClusterStatus"), &req.base, &payload, &len, &n->why) == KV_OK) {
        n->st = kvstore__v1__cluster_status_response__unpack(NULL, len, payload);
        if (!n->st) {
            n->why.status = KV_INTERNAL;
            n->why.message = kvctl_mem_strdup("the answer does not decode as "
                                              "ClusterStatusResponse");
        }
    }
    free(payload);
    kv_client_free(c);
}

/* The member of ST whose id is ID, or NULL. */
static const Kvstore__V1__Member *member(const Kvstore__V1__ClusterStatusResponse *st, uint64_t id)
{
    for (size_t i = 0; st && i < st->n_members; i++)
        if (st->members[i]->id == id)
            return st->members[i];
    return NULL;
}

static const char *status_cols[] = { "ID", "CLIENT", "RAFT", "ROLE", "LEADER", "TERM",
                                     "COMMIT", "APPLIED", "REVISION" };

static void print_status_table(const kvctl_out *o, const nodes *ns)
{
    kvctl_table t;

    kvctl_table_init(&t, sizeof status_cols / sizeof *status_cols, status_cols);
    for (size_t i = 0; i < ns->n; i++) {
        const node *n = &ns->v[i];
        const Kvstore__V1__ClusterStatusResponse *st = n->st;
        const Kvstore__V1__Member *m = st ? member(st, st->node_id) : NULL;
        if (!st) {
            if (n->expect_id)
                kvctl_table_number(&t, n->expect_id);
            else
                kvctl_table_text(&t, "-");
            kvctl_table_text(&t, n->endpoint);
            kvctl_table_text(&t, "-");
            kvctl_table_text(&t, "unreachable");
            continue;       /* the row ends short: empty cells */
        }
        kvctl_table_number(&t, st->node_id);
        kvctl_table_text(&t, n->endpoint);
        kvctl_table_text(&t, m && m->raft_address && *m->raft_address ? m->raft_address : "-");
        kvctl_table_text(&t, st->role && *st->role ? st->role : "-");
        kvctl_table_text(&t, st->leader_id && st->leader_id == st->node_id ? "*" : "");
        kvctl_table_number(&t, st->term);
        kvctl_table_number(&t, st->commit_index);
        kvctl_table_number(&t, st->applied_index);
        kvctl_table_number(&t, st->revision);
    }
    kvctl_table_print(&t, o->fp);
}

static void print_status_json(const kvctl_out *o, const nodes *ns)
{
    json_object *obj = json_object_new_object(), *arr = json_object_new_array();

    json_object_object_add(obj, "command", json_object_new_string("cluster status"));
    for (size_t i = 0; i < ns->n; i++) {
        const node *n = &ns->v[i];
        const Kvstore__V1__ClusterStatusResponse *st = n->st;
        const Kvstore__V1__Member *m = st ? member(st, st->node_id) : NULL;
        json_object *j = json_object_new_object();
        json_object_object_add(j, "endpoint", json_object_new_string(n->endpoint));
        if (!st) {
            json_object *e = json_object_new_object();
            json_object_object_add(j, "id", json_object_new_uint64(n->expect_id));
            json_object_object_add(e, "code", json_object_new_string(kv_status_name(n->why.status)));
            json_object_object_add(e, "message", json_object_new_string(n->why.message ? n->why.message : ""));
            json_object_object_add(j, "error", e);
            json_object_array_add(arr, j);
            continue;
        }
        json_object_object_add(j, "id", json_object_new_uint64(st->node_id));
        json_object_object_add(j, "client_address",
                               json_object_new_string(m && m->client_address ? m->client_address : ""));
        json_object_object_add(j, "raft_address",
                               json_object_new_string(m && m->raft_address ? m->raft_address : ""));
        json_object_object_add(j, "role", json_object_new_string(st->role ? st->role : ""));
        json_object_object_add(j, "leader", json_object_new_boolean(st->leader_id
                                                                    && st->leader_id == st->node_id));
        json_object_object_add(j, "term", json_object_new_uint64(st->term));
        json_object_object_add(j, "commit_index", json_object_new_uint64(st->commit_index));
        json_object_object_add(j, "applied_index", json_object_new_uint64(st->applied_index));
        json_object_object_add(j, "revision", json_object_new_uint64(st->revision));
        json_object_array_add(arr, j);
    }
    json_object_object_add(obj, "nodes", arr);
    fputs(json_object_to_json_string_ext(obj, KVCTL_JSON_FLAGS), o->fp);
    fputc('\n', o->fp);
    json_object_put(obj);
}

static int run_status(const kvctl_conf *conf, const kvctl_out *o)
{
    const char *list = kvctl_conn_name(conf);
    nodes ns = { 0 };
    size_t answered = 0, clusters = 0;

    for (const char *s = list;; s++) {
        size_t len = strcspn(s, ",");
        nodes_add(&ns, s, len, 0);
        s += len;
        if (!*s)
            break;
    }
    /* The list grows as answers name members; each is asked once. */
    for (size_t i = 0; i < ns.n; i++) {
        if (ns.v[i].expect_id && answered_as(&ns, i, ns.v[i].expect_id))
            continue;
        ask(conf, &ns.v[i]);
        const Kvstore__V1__ClusterStatusResponse *st = ns.v[i].st;
        if (!st)
            continue;
        answered++;
        clusters += st->node_id != 0;
        for (size_t k = 0; k < st->n_members; k++) {
            const Kvstore__V1__Member *m = st->members[k];
            if (m->client_address && *m->client_address && !answered_as(&ns, i + 1, m->id))
                nodes_add(&ns, m->client_address, strlen(m->client_address), m->id);
        }
    }
    /* Members skipped because another row answered for their id. */
    size_t kept = 0;
    for (size_t i = 0; i < ns.n; i++) {
        if (!ns.v[i].st && ns.v[i].expect_id && answered_as(&ns, ns.n, ns.v[i].expect_id)) {
            free(ns.v[i].endpoint);
            kvctl_exec_result_clear(&ns.v[i].why);
            continue;
        }
        ns.v[kept++] = ns.v[i];
    }
    ns.n = kept;
    if (o->format == KVCTL_FORMAT_JSON)
        print_status_json(o, &ns);
    else if (answered && !clusters)
        for (size_t i = 0; i < ns.n; i++)
            if (ns.v[i].st)
                fprintf(o->fp, "%s: a single server, not a cluster (revision %llu)\n",
                        ns.v[i].endpoint, (unsigned long long)ns.v[i].st->revision);
            else
                fprintf(o->fp, "%s: unreachable\n", ns.v[i].endpoint);
    else
        print_status_table(o, &ns);
    for (size_t i = 0; i < ns.n; i++) {
        if (!ns.v[i].st && ns.v[i].why.message)
            fprintf(stderr, "kvctl: cluster status: %s: %s: %s\n", ns.v[i].endpoint,
                    kv_status_name(ns.v[i].why.status), ns.v[i].why.message);
        if (ns.v[i].st)
            kvstore__v1__cluster_status_response__free_unpacked(ns.v[i].st, NULL);
        kvctl_exec_result_clear(&ns.v[i].why);
        free(ns.v[i].endpoint);
    }
    free(ns.v);
    return answered ? KVCTL_EXIT_OK : KVCTL_EXIT_UNREACHABLE;
}

static const char *member_cols[] = { "ID", "RAFT", "CLIENT", "ROLE", "LEADER" };

/* Prints the members of a MemberAdd or MemberRemove answer. */
static void print_members(const kvctl_out *o, Kvstore__V1__Member **v, size_t n,
                          const char *command)
{
    if (o->format == KVCTL_FORMAT_JSON) {
        json_object *obj = json_object_new_object(), *arr = json_object_new_array();
        json_object_object_add(obj, "command", json_object_new_string(command));
        json_object_object_add(obj, "code", json_object_new_string("OK"));
        for (size_t i = 0; i < n; i++) {
            json_object *j = json_object_new_object();
            json_object_object_add(j, "id", json_object_new_uint64(v[i]->id));
            json_object_object_add(j, "raft_address", json_object_new_string(v[i]->raft_address));
            json_object_object_add(j, "client_address",
                                   json_object_new_string(v[i]->client_address));
            json_object_object_add(j, "role", json_object_new_string(v[i]->role));
            json_object_object_add(j, "leader", json_object_new_boolean(v[i]->leader));
            json_object_array_add(arr, j);
        }
        json_object_object_add(obj, "members", arr);
        fputs(json_object_to_json_string_ext(obj, KVCTL_JSON_FLAGS), o->fp);
        fputc('\n', o->fp);
        json_object_put(obj);
        return;
    }
    kvctl_table t;
    kvctl_table_init(&t, sizeof member_cols / sizeof *member_cols, member_cols);
    for (size_t i = 0; i < n; i++) {
        kvctl_table_number(&t, v[i]->id);
        kvctl_table_text(&t, v[i]->raft_address);
        kvctl_table_text(&t, *v[i]->client_address ? v[i]->client_address : "-");
        kvctl_table_text(&t, v[i]->role);
        kvctl_table_text(&t, v[i]->leader ? "*" : "");
    }
    kvctl_table_print(&t, o->fp);
}

/* Sends the membership change CMD to the leader and prints the answer. */
static int run_change(const kvctl_conf *conf, const kvctl_cmd *cmd, const kvctl_out *o)
{
    static const char *const names[] = { [KVCTL_CLUSTER_ADD] = "cluster add",
                                         [KVCTL_CLUSTER_REMOVE] = "cluster remove",
                                         [KVCTL_CLUSTER_TRANSFER] = "cluster transfer" };
    Kvstore__V1__MemberAddRequest add = KVSTORE__V1__MEMBER_ADD_REQUEST__INIT;
    Kvstore__V1__MemberRemoveRequest remove = KVSTORE__V1__MEMBER_REMOVE_REQUEST__INIT;
    Kvstore__V1__LeaderTransferRequest transfer = KVSTORE__V1__LEADER_TRANSFER_REQUEST__INIT;
    kvctl_result r;
    uint8_t *payload = NULL;
    size_t len = 0;
    kv_client *c = kvctl_conn_open(conf, &r);
    kv_status st = KV_UNAVAILABLE;

    if (c) {
        memset(&r, 0, sizeof r);
        if (cmd->cluster == KVCTL_CLUSTER_ADD) {
            add.id = cmd->member_id;
            add.raft_address = cmd->raft_addr;
            add.client_address = cmd->client_addr ? cmd->client_addr : (char *)"";
            st = kvctl_conn_call(c, METHOD("MemberAdd"), &add.base, &payload, &len, &r);
        } else if (cmd->cluster == KVCTL_CLUSTER_REMOVE) {
            remove.id = cmd->member_id;
            st = kvctl_conn_call(c, METHOD("MemberRemove"), &remove.base, &payload, &len, &r);
        } else {
            transfer.id = cmd->member_id;
            st = kvctl_conn_call(c, METHOD("LeaderTransfer"), &transfer.base, &payload, &len, &r);
        }
        kv_client_free(c);
    }
    if (st == KV_OK && cmd->cluster == KVCTL_CLUSTER_TRANSFER) {
        Kvstore__V1__LeaderTransferResponse *a =
            kvstore__v1__leader_transfer_response__unpack(NULL, len, payload);
        if (a && o->format == KVCTL_FORMAT_JSON)
            fprintf(o->fp, "{\"command\":\"cluster transfer\",\"code\":\"OK\",\"leader_id\":%llu}\n",
                    (unsigned long long)a->leader_id);
        else if (a)
            fprintf(o->fp, "leader: %llu\n", (unsigned long long)a->leader_id);
        st = a ? KV_OK : KV_INTERNAL;
        if (a)
            kvstore__v1__leader_transfer_response__free_unpacked(a, NULL);
    } else if (st == KV_OK) {
        /* MemberAddResponse and MemberRemoveResponse are alike on the
         * wire: field 1, the members. */
        Kvstore__V1__MemberAddResponse *a =
            kvstore__v1__member_add_response__unpack(NULL, len, payload);
        if (a)
            print_members(o, a->members, a->n_members, names[cmd->cluster]);
        st = a ? KV_OK : KV_INTERNAL;
        if (a)
            kvstore__v1__member_add_response__free_unpacked(a, NULL);
    }
    free(payload);
    if (st == KV_INTERNAL && !r.message) {
        r.status = KV_INTERNAL;
        r.message = kvctl_mem_strdup("the answer does not decode");
    }
    int code = st == KV_OK ? KVCTL_EXIT_OK : kvctl_out_result(o, cmd, &r);
    kvctl_exec_result_clear(&r);
    return code;
}

int kvctl_cluster_run(const kvctl_conf *conf, const kvctl_cmd *cmd, const kvctl_out *o)
{
    return cmd->cluster == KVCTL_CLUSTER_STATUS ? run_status(conf, o) : run_change(conf, cmd, o);
}
