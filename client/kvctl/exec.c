/* exec.c - runs kvctl commands on a kv_client: through protoc-c's generated
 * KV stubs, pipelined between kv_client_pipeline_begin() and _end(), or,
 * for a range read page after page, a clear range and a txn, through the
 * library's blocking helpers; and keeps each answer in a kvctl_result,
 * but for a range's pages, which it hands to its caller's hook as they
 * come. It prints nothing and opens no connection; all protocol work is
 * the client library's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "mem.h"

/* One call in flight: where its answer goes, and its request, which lives
 * here until _end() in case the library keeps a pointer to it. */
typedef struct exec_slot {
    kv_client *c;
    kvctl_result *res;
    int called;     /* the closure ran */
    int answered;   /* ... with a response (not NULL) */
    union {
        Kvstore__V1__PingRequest ping;
        Kvstore__V1__GetRequest get;
        Kvstore__V1__SetRequest set;
        Kvstore__V1__ClearRequest clear;
        Kvstore__V1__StatsRequest stats;
        Kvstore__V1__TouchRequest touch;
    } req;
} exec_slot;

/* Records why the call of S failed, from the library's last status. */
static void slot_failed(exec_slot *s)
{
    kv_status st = kv_client_last_status(s->c);
    const char *msg = kv_client_last_message(s->c);

    s->res->status = st == KV_OK ? KV_UNKNOWN : st;
    s->res->message = kvctl_mem_strdup(msg && *msg ? msg : "call failed");
}

/* The common start of every closure: marks S called and records an answer
 * (M non-NULL) or the failure. Returns whether there is an answer. */
static int slot_answer(exec_slot *s, const void *m)
{
    s->called = 1;
    if (!m) {
        slot_failed(s);
        return 0;
    }
    s->answered = 1;
    s->res->status = KV_OK;
    return 1;
}

static void on_ping(const Kvstore__V1__PingResponse *m, void *data)
{
    exec_slot *s = data;

    if (!slot_answer(s, m))
        return;
    kvctl_mem_bytes(&s->res->value, m->message, m->message ? strlen(m->message) : 0);
}

static void on_get(const Kvstore__V1__GetResponse *m, void *data)
{
    exec_slot *s = data;

    if (!slot_answer(s, m))
        return;
    kvctl_mem_bytes(&s->res->value, m->value.data, m->value.len);
    s->res->revs = (kv_client_revs){ m->create_revision, m->mod_revision, m->version,
                                     m->revision };
    s->res->ttl_ms = m->ttl_ms;
}

/* A key Touch did not find is NOT_FOUND here, as for get: the command
 * exits 1 with an error line. */
static void on_touch(const Kvstore__V1__TouchResponse *m, void *data)
{
    exec_slot *s = data;

    if (!slot_answer(s, m))
        return;
    s->res->found = m->found;
    if (!m->found) {
        s->res->status = KV_NOT_FOUND;
        s->res->message = kvctl_mem_strdup("key not found");
    }
}

/* A conditional write answered OK with revision 0 came from a server
 * before protocol v2: it does not know if_mod_revision, skips it and
 * writes, answering as for a plain write. A v2 server's Set always makes a
 * revision (>= 1), and so does its Clear of a key it found. Records that
 * in S as UNIMPLEMENTED (the library's kv_client_cas says the same). */
static void slot_unchecked_write(exec_slot *s)
{
    s->res->status = KV_UNIMPLEMENTED;
    s->res->message = kvctl_mem_strdup("the server does not support conditional writes (a "
                                       "server before protocol v2): the write was applied "
                                       "without its check");
}

static void on_set(const Kvstore__V1__SetResponse *m, void *data)
{
    exec_slot *s = data;

    if (!slot_answer(s, m))
        return;
    if (s->req.set._if_mod_revision_case
            == KVSTORE__V1__SET_REQUEST___IF_MOD_REVISION_IF_MOD_REVISION
        && m->revision == 0) {
        slot_unchecked_write(s);
        return;
    }
    kvctl_mem_bytes(&s->res->value, m->key.data, m->key.len);
    s->res->revision = m->revision;
}

static void on_clear(const Kvstore__V1__ClearResponse *m, void *data)
{
    exec_slot *s = data;

    if (!slot_answer(s, m))
        return;
    if (s->req.clear._if_mod_revision_case
            == KVSTORE__V1__CLEAR_REQUEST___IF_MOD_REVISION_IF_MOD_REVISION
        && m->found && m->revision == 0) {
        slot_unchecked_write(s);
        return;
    }
    s->res->found = m->found;
    s->res->revision = m->revision;
    kvctl_mem_bytes(&s->res->value, m->value.data, m->value.len);
}

/* The library frees M when this returns; packing and unpacking it again
 * is the simplest deep copy of a message with repeated submessages. */
static void on_stats(const Kvstore__V1__StatsResponse *m, void *data)
{
    exec_slot *s = data;
    size_t n;
    uint8_t *buf;

    if (!slot_answer(s, m))
        return;
    n = kvstore__v1__stats_response__get_packed_size(m);
    buf = kvctl_mem_alloc(n + 1);
    kvstore__v1__stats_response__pack(m, buf);
    s->res->stats = kvstore__v1__stats_response__unpack(NULL, n, buf);
    free(buf);
    if (!s->res->stats) {   /* out of memory, as protobuf-c cannot tell us otherwise */
        s->res->status = KV_INTERNAL;
        s->res->message = kvctl_mem_strdup("cannot copy the Stats answer");
    }
}

/* Queues the call of CMD in slot S. */
static void slot_send(exec_slot *s, ProtobufCService *svc, const kvctl_cmd *cmd)
{
    switch (cmd->op) {
    case KVCTL_OP_PING:
        kvstore__v1__ping_request__init(&s->req.ping);
        s->req.ping.message = cmd->message ? cmd->message : (char *)"";
        kvstore__v1__kv__ping(svc, &s->req.ping, on_ping, s);
        break;
    case KVCTL_OP_GET:
    case KVCTL_OP_TTL:
        kvstore__v1__get_request__init(&s->req.get);
        s->req.get.key.data = cmd->key.data;
        s->req.get.key.len = cmd->key.len;
        s->req.get.serializable = cmd->serializable;
        kvstore__v1__kv__get(svc, &s->req.get, on_get, s);
        break;
    case KVCTL_OP_SET:
        kvstore__v1__set_request__init(&s->req.set);
        s->req.set.key.data = cmd->key.data;
        s->req.set.key.len = cmd->key.len;
        s->req.set.value.data = cmd->value.data;
        s->req.set.value.len = cmd->value.len;
        s->req.set.ttl_ms = cmd->ttl_ms;
        s->req.set.keep_ttl = cmd->keep_ttl;
        if (cmd->has_if_revision) {
            s->req.set._if_mod_revision_case =
                KVSTORE__V1__SET_REQUEST___IF_MOD_REVISION_IF_MOD_REVISION;
            s->req.set.if_mod_revision = cmd->if_revision;
        }
        kvstore__v1__kv__set(svc, &s->req.set, on_set, s);
        break;
    case KVCTL_OP_CLEAR:
        kvstore__v1__clear_request__init(&s->req.clear);
        s->req.clear.key.data = cmd->key.data;
        s->req.clear.key.len = cmd->key.len;
        if (cmd->has_if_revision) {
            s->req.clear._if_mod_revision_case =
                KVSTORE__V1__CLEAR_REQUEST___IF_MOD_REVISION_IF_MOD_REVISION;
            s->req.clear.if_mod_revision = cmd->if_revision;
        }
        kvstore__v1__kv__clear(svc, &s->req.clear, on_clear, s);
        break;
    case KVCTL_OP_STATS:
        kvstore__v1__stats_request__init(&s->req.stats);
        kvstore__v1__kv__stats(svc, &s->req.stats, on_stats, s);
        break;
    case KVCTL_OP_TOUCH:
        kvstore__v1__touch_request__init(&s->req.touch);
        s->req.touch.key.data = cmd->key.data;
        s->req.touch.key.len = cmd->key.len;
        s->req.touch.ttl_ms = cmd->ttl_ms;
        kvstore__v1__kv__touch(svc, &s->req.touch, on_touch, s);
        break;
    case KVCTL_OP_RANGE:
    case KVCTL_OP_CLEAR_RANGE:
    case KVCTL_OP_TXN:
        break;      /* never pipelined: see run_blocking */
    case KVCTL_OP_WATCH:
    case KVCTL_OP_CLUSTER:
    case KVCTL_OP_SNAPSHOT:
    case KVCTL_OP_DUMP:
    case KVCTL_OP_LOAD:
        break;      /* never pipelined: see run_blocking */
    }
}

/* Whether CMD runs on its own, through a blocking helper. */
static int is_blocking(const kvctl_cmd *cmd)
{
    return cmd->op == KVCTL_OP_RANGE || cmd->op == KVCTL_OP_CLEAR_RANGE
           || cmd->op == KVCTL_OP_TXN || cmd->op == KVCTL_OP_WATCH
           || kvctl_cmd_runs_alone(cmd->op);
}

/* Records in RES the failure ST of a blocking helper on C. */
static void blocking_failed(kv_client *c, kv_status st, kvctl_result *res)
{
    const char *msg = kv_client_last_message(c);

    res->status = st;
    res->message = kvctl_mem_strdup(msg && *msg ? msg : "call failed");
    /* The server never answers these two: they come from the connection. */
    res->transport = st == KV_UNAVAILABLE || st == KV_DEADLINE_EXCEEDED;
}

/* The range CMD selects, as a RangeRequest pointing into CMD. */
static Kvstore__V1__RangeRequest range_request(const kvctl_cmd *cmd)
{
    Kvstore__V1__RangeRequest req = KVSTORE__V1__RANGE_REQUEST__INIT;

    if (cmd->prefix) {
        req.prefix = (ProtobufCBinaryData){ cmd->key.len, cmd->key.data };
    } else {
        req.start = (ProtobufCBinaryData){ cmd->key.len, cmd->key.data };
        req.end = (ProtobufCBinaryData){ cmd->end.len, cmd->end.data };
    }
    req.keys_only = cmd->keys_only;
    req.count_only = cmd->count_only;
    req.reverse = cmd->reverse;
    req.serializable = cmd->serializable;
    return req;
}

/* Reads the range of CMD page after page until its end or cmd->limit
 * keys, handing each page to HOOKS as it comes (and freeing it, unless the
 * hook keeps it in RES): so that a range of any size takes the memory of
 * one page, not of all of them. */
static void run_range(kv_client *c, const kvctl_cmd *cmd, kvctl_result *res,
                      const kvctl_exec_hooks *hooks)
{
    Kvstore__V1__RangeRequest req = range_request(cmd);
    uint64_t left = cmd->limit;
    uint8_t *bounds = NULL;
    kv_status st;

    for (int first = 1;; first = 0) {
        Kvstore__V1__RangeResponse *page;
        int taken = 0, next = 0, last = 0;
        /* The limit is per page: ask for what is left of --limit. */
        req.limit = left > UINT32_MAX ? 0 : (uint32_t)left;
        st = kv_client_range(c, &req, &page);
        if (st != KV_OK) {
            blocking_failed(c, st, res);
            break;
        }
        if (first) {
            res->count = page->count;
            res->revision = page->revision;
        }
        if (hooks && hooks->page)
            taken = hooks->page(hooks->arg, cmd, res, page);
        if (cmd->limit) {
            left -= page->n_kvs < left ? page->n_kvs : left;
            if (left == 0) {
                res->more = page->more;
                last = 1;
            }
        }
        if (!last) {
            next = kv_client_range_next(&req, page, &bounds);
            if (next < 0) {
                fputs("kvctl: out of memory\n", stderr);
                exit(KVCTL_EXIT_USAGE);
            }
        }
        if (taken) {
            kvstore__v1__range_response__free_unpacked(page, NULL);
        } else {
            res->pages = kvctl_mem_realloc(res->pages, (res->npages + 1) * sizeof *res->pages);
            res->pages[res->npages++] = page;
        }
        if (!next)
            break;
    }
    free(bounds);
}

/* Runs CMD, which is_blocking(), on C into RES; a range's pages go to
 * HOOKS. */
static void run_blocking(kv_client *c, const kvctl_cmd *cmd, kvctl_result *res,
                         const kvctl_exec_hooks *hooks)
{
    kv_status st = KV_OK;

    if (cmd->op == KVCTL_OP_RANGE) {
        run_range(c, cmd, res, hooks);
        return;
    }
    if (cmd->op == KVCTL_OP_CLEAR_RANGE) {
        Kvstore__V1__ClearRangeRequest req = KVSTORE__V1__CLEAR_RANGE_REQUEST__INIT;
        if (cmd->all) {
            /* Keys are never empty: "\x00" is the first possible one. */
            req.start = (ProtobufCBinaryData){ 1, (uint8_t *)"" };
        } else if (cmd->prefix) {
            req.prefix = (ProtobufCBinaryData){ cmd->key.len, cmd->key.data };
        } else {
            req.start = (ProtobufCBinaryData){ cmd->key.len, cmd->key.data };
            req.end = (ProtobufCBinaryData){ cmd->end.len, cmd->end.data };
        }
        st = kv_client_clear_range(c, &req, &res->deleted, &res->revision);
    } else if (cmd->op == KVCTL_OP_TXN) {
        st = kv_client_txn(c, cmd->txn, &res->txn);
    } else if (cmd->op == KVCTL_OP_WATCH || kvctl_cmd_runs_alone(cmd->op)) {
        res->status = KV_INTERNAL;
        res->message = kvctl_mem_strdup("a watch, a cluster or a backup command runs on its "
                                        "own (kvctl_watch_run, kvctl_cluster_run, "
                                        "kvctl_backup_run, kvctl_load_run)");
        return;
    }
    if (st != KV_OK)
        blocking_failed(c, st, res);
    else
        res->status = KV_OK;
}

/* Runs the pipelined commands CMDS[0..N) on C. Returns what
 * kv_client_pipeline_end() returned. */
static kv_status run_pipelined(kv_client *c, const kvctl_cmd *cmds, kvctl_result *res,
                               size_t n)
{
    ProtobufCService *svc = kv_client_service(c);
    exec_slot *slots = kvctl_mem_alloc(n * sizeof *slots);
    kv_status st;

    memset(slots, 0, n * sizeof *slots);
    kv_client_pipeline_begin(c);
    for (size_t i = 0; i < n; i++) {
        slots[i].c = c;
        slots[i].res = &res[i];
        slot_send(&slots[i], svc, &cmds[i]);
    }
    st = kv_client_pipeline_end(c);

    for (size_t i = 0; i < n; i++)
        if (!slots[i].called) {   /* the library promises this never happens */
            res[i].status = st != KV_OK ? st : KV_UNKNOWN;
            res[i].transport = 1;
            res[i].message = kvctl_mem_strdup("the client library returned no answer");
        }
    /* After a transport failure, the calls it cut off failed with
     * UNAVAILABLE (connection lost) or DEADLINE_EXCEEDED. Other failures
     * are the server's answers, even when _end() reports one of them
     * (it returns RESOURCE_EXHAUSTED when the server refused a frame and
     * closed the connection). */
    if (st != KV_OK)
        for (size_t i = 0; i < n; i++)
            if (!slots[i].answered && (res[i].status == KV_UNAVAILABLE
                                       || res[i].status == KV_DEADLINE_EXCEEDED))
                res[i].transport = 1;
    free(slots);
    return st;
}

kv_status kvctl_exec_run(kv_client *c, const kvctl_cmd *cmds,
                         kvctl_result *res, size_t n, const kvctl_exec_hooks *hooks)
{
    kv_status first = KV_OK;

    memset(res, 0, n * sizeof *res);
    for (size_t i = 0; i < n;) {
        kv_status st = KV_OK;
        size_t j = i + 1;
        if (is_blocking(&cmds[i])) {
            run_blocking(c, &cmds[i], &res[i], hooks);
            if (res[i].transport)
                st = res[i].status;
        } else {
            while (j < n && !is_blocking(&cmds[j]))
                j++;
            st = run_pipelined(c, cmds + i, res + i, j - i);
        }
        if (first == KV_OK)
            first = st;
        for (; i < j; i++)
            if (hooks && hooks->done)
                hooks->done(hooks->arg, i);
    }
    return first;
}

void kvctl_exec_fail(kvctl_result *res, const kvctl_result *why)
{
    memset(res, 0, sizeof *res);
    res->status = why->status;
    res->transport = why->transport;
    res->auth = why->auth;
    res->message = kvctl_mem_strdup(why->message ? why->message : "");
}

void kvctl_exec_result_clear(kvctl_result *res)
{
    free(res->message);
    free(res->value.data);
    if (res->stats)
        kvstore__v1__stats_response__free_unpacked(res->stats, NULL);
    for (size_t i = 0; i < res->npages; i++)
        kvstore__v1__range_response__free_unpacked(res->pages[i], NULL);
    free(res->pages);
    if (res->txn)
        kvstore__v1__txn_response__free_unpacked(res->txn, NULL);
    memset(res, 0, sizeof *res);
}
