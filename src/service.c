/* service.c - handlers of the KV service: each runs its operation (ops.c,
 * txn.c: checks, engine calls, revisions) and answers.
 * Every handler either calls closure(response) or kv_call_fail() then
 * closure(NULL) before it returns (a handler that answers later uses
 * kv_call_defer(), see session.h). Response messages live on the stack:
 * the closure packs them before returning. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <ev.h>
#include "backup.h"
#include "hotpack.h"
#include "ops.h"
#include "service.h"
#include "txn.h"
#include "session.h"
#include "ping_view.pb-c.h"
#include "log.h"
#include "slowlog.h"
#include "stats_report.h"
#include "utf8.h"

#define SVC(svc) ((kv_service *)(svc))

/* Answers the call that OP failed with ST. */
static void fail_op(void *data, const kv_op *op, kv_status st)
{
    kv_call_fail(data, st, op->why ? op->why : "request failed");
}

/* Runs a data model operation FN for one rpc (ops.h) and answers it: the
 * answer OUT, or the failure. The events its writes recorded go to the
 * watchers when it succeeded, and are dropped when it failed. */
#define RUN_OP(svc, fn, in, out, closure, data)                                 \
    do {                                                                        \
        kv_op op_;                                                              \
        kv_op_init(&op_, SVC(svc)->env, ((kv_call *)(data))->alloc);            \
        kv_status st_ = fn(&op_, in, out);                                      \
        if (st_ != KV_OK) {                                                     \
            kv_watch_discard(op_.watch);                                        \
            fail_op(data, &op_, st_);                                           \
            closure(NULL, data);                                                \
            return;                                                             \
        }                                                                       \
        if (kv_watch_recording(op_.watch))                                      \
            kv_watch_commit(op_.watch);                                         \
        closure(out, data);                                                     \
    } while (0)

/* Ping echoes its message byte for byte, which a PingRequest cannot give:
 * protoc-c unpacks a string into a NUL-terminated char *, so "ab\0cd"
 * would read as "ab". So Ping's request is unpacked as ping_view.proto's
 * PingView, the same field as bytes (the same wire encoding; see
 * ping_inputs), and the answer is packed through it too. The wire contract
 * stays `string`, so the message must be UTF-8: anything else is refused
 * rather than echoed into an answer that strict clients cannot decode. */
static void svc_ping(Kvstore__V1__KV_Service *svc, const Kvstore__V1__PingRequest *in,
                      Kvstore__V1__PingResponse_Closure closure, void *data)
{
    Kvstore__Server__PingView out = KVSTORE__SERVER__PING_VIEW__INIT;
    const Kvstore__Server__PingView *req = (const Kvstore__Server__PingView *)(const void *)in;

    size_t bad = kv_utf8_check(req->message.data, req->message.len);
    if (bad < req->message.len) {
        kv_op op;
        kv_op_init(&op, SVC(svc)->env, ((kv_call *)data)->alloc);
        fail_op(data, &op, kv_op_fail(&op, KV_INVALID_ARGUMENT, "Ping message is not valid "
                                      "UTF-8 (at byte %" PRIu64 " of %" PRIu64 "); it is a "
                                      "protobuf string", bad, req->message.len));
        closure(NULL, data);
        return;
    }
    out.message = req->message;
    if (out.message.len == 0) {
        out.message.data = (uint8_t *)"PONG";
        out.message.len = 4;
    }
    /* The closure (session.c's) packs by the message's own descriptor, so
     * a PingView goes out as the PingResponse it encodes identically. */
    closure((const Kvstore__V1__PingResponse *)(const void *)&out, data);
}

/* Get's value is a view of the engine's bytes (kv_op_get): the closure
 * packs the answer before anything can write to the engine. */
static void svc_get(Kvstore__V1__KV_Service *svc, const Kvstore__V1__GetRequest *in,
                     Kvstore__V1__GetResponse_Closure closure, void *data)
{
    Kvstore__V1__GetResponse out = KVSTORE__V1__GET_RESPONSE__INIT;

    RUN_OP(svc, kv_op_get, in, &out, closure, data);
}

static void svc_set(Kvstore__V1__KV_Service *svc, const Kvstore__V1__SetRequest *in,
                     Kvstore__V1__SetResponse_Closure closure, void *data)
{
    Kvstore__V1__SetResponse out = KVSTORE__V1__SET_RESPONSE__INIT;

    RUN_OP(svc, kv_op_set, in, &out, closure, data);
}

static void svc_clear(Kvstore__V1__KV_Service *svc, const Kvstore__V1__ClearRequest *in,
                       Kvstore__V1__ClearResponse_Closure closure, void *data)
{
    Kvstore__V1__ClearResponse out = KVSTORE__V1__CLEAR_RESPONSE__INIT;

    RUN_OP(svc, kv_op_clear, in, &out, closure, data);
}

static void svc_range(Kvstore__V1__KV_Service *svc, const Kvstore__V1__RangeRequest *in,
                       Kvstore__V1__RangeResponse_Closure closure, void *data)
{
    Kvstore__V1__RangeResponse out = KVSTORE__V1__RANGE_RESPONSE__INIT;

    RUN_OP(svc, kv_op_range, in, &out, closure, data);
}

static void svc_clear_range(Kvstore__V1__KV_Service *svc,
                             const Kvstore__V1__ClearRangeRequest *in,
                             Kvstore__V1__ClearRangeResponse_Closure closure, void *data)
{
    Kvstore__V1__ClearRangeResponse out = KVSTORE__V1__CLEAR_RANGE_RESPONSE__INIT;

    RUN_OP(svc, kv_op_clear_range, in, &out, closure, data);
}

static void svc_txn(Kvstore__V1__KV_Service *svc, const Kvstore__V1__TxnRequest *in,
                     Kvstore__V1__TxnResponse_Closure closure, void *data)
{
    Kvstore__V1__TxnResponse out = KVSTORE__V1__TXN_RESPONSE__INIT;

    RUN_OP(svc, kv_txn_run, in, &out, closure, data);
}

static void svc_stats(Kvstore__V1__KV_Service *svc, const Kvstore__V1__StatsRequest *in,
                       Kvstore__V1__StatsResponse_Closure closure, void *data)
{
    Kvstore__V1__StatsResponse out = KVSTORE__V1__STATS_RESPONSE__INIT;

    (void)in;
    if (kv_stats_report(SVC(svc)->env, ((kv_call *)data)->alloc, &out) < 0) {
        kv_call_fail(data, KV_RESOURCE_EXHAUSTED, "server out of memory");
        closure(NULL, data);
        return;
    }
    closure(&out, data);
}

/* Auth: checks the token, unless this address failed too often lately
 * (authguard.h): then the call is refused unchecked until its block ends,
 * so reconnecting buys no more guesses. */
static void svc_auth(Kvstore__V1__KV_Service *svc, const Kvstore__V1__AuthRequest *in,
                      Kvstore__V1__AuthResponse_Closure closure, void *data)
{
    Kvstore__V1__AuthResponse out = KVSTORE__V1__AUTH_RESPONSE__INIT;
    kv_service *x = SVC(svc);
    kv_auth_guard *guard = x->env->guard;
    double now = ev_time();

    if (!x->env->auth) {
        x->authenticated = 1;
        closure(&out, data);
        return;
    }
    double wait = guard ? kv_auth_guard_blocked(guard, &x->peer, now) : 0;
    if (wait > 0) {
        kv_call *call = data;
        char *msg = call->alloc->alloc(call->alloc->allocator_data, 160);
        guard->refused++;
        if (msg)
            snprintf(msg, 160, "too many failed Auth attempts from %s; retry in %.1f s",
                     x->peer.text, wait);
        kv_call_fail(data, KV_RESOURCE_EXHAUSTED, msg ? msg : "too many failed Auth attempts");
        closure(NULL, data);
        return;
    }
    if (kv_auth_check(x->env->auth, in->token.data, in->token.len)) {
        if (guard)
            kv_auth_guard_succeeded(guard, &x->peer);
        x->authenticated = 1;
        closure(&out, data);
        return;
    }
    double block = guard ? kv_auth_guard_failed(guard, &x->peer, now) : 0;
    if (block > 0)
        kv_log(KV_LOG_WARN, "too many failed Auth attempts from %s; refusing its Auth "
               "calls for %.0f s", x->peer.text, block);
    if (++x->auth_failures >= KV_AUTH_MAX_FAILURES) {
        x->hang_up = "too many failed Auth attempts";
        x->hang_up_reason = KV_CLOSE_AUTH;
        kv_call_fail(data, KV_UNAUTHENTICATED, "wrong token; too many tries, closing the connection");
    } else {
        kv_call_fail(data, KV_UNAUTHENTICATED, "wrong token");
    }
    closure(NULL, data);
}

static void svc_touch(Kvstore__V1__KV_Service *svc, const Kvstore__V1__TouchRequest *in,
                       Kvstore__V1__TouchResponse_Closure closure, void *data)
{
    Kvstore__V1__TouchResponse out = KVSTORE__V1__TOUCH_RESPONSE__INIT;

    RUN_OP(svc, kv_op_touch, in, &out, closure, data);
}

/* Watch keeps its call: the hub answers it (the watch_id) and sends its
 * stream frames from then on (watch.h). */
static void svc_watch(Kvstore__V1__KV_Service *svc, const Kvstore__V1__WatchRequest *in,
                       Kvstore__V1__WatchResponse_Closure closure, void *data)
{
    kv_service *x = SVC(svc);
    kv_watch_hub *h = x->env->watch;
    const char *why = "server out of memory";
    kv_status st = KV_RESOURCE_EXHAUSTED;
    kv_call *call;

    if (!h) {
        kv_call_fail(data, KV_UNIMPLEMENTED, "this server keeps no watches");
        closure(NULL, data);
        return;
    }
    if (!(call = kv_call_defer(data))) {
        kv_call_fail(data, st, why);
        closure(NULL, data);
        return;
    }
    st = kv_watch_open(h, &x->watches, call, in, kv_engine_revision(x->env->engine), &why);
    if (st != KV_OK) {
        kv_call_fail(call, st, why);
        closure(NULL, call);
    }
}

static void svc_cancel_watch(Kvstore__V1__KV_Service *svc,
                              const Kvstore__V1__CancelWatchRequest *in,
                              Kvstore__V1__CancelWatchResponse_Closure closure, void *data)
{
    Kvstore__V1__CancelWatchResponse out = KVSTORE__V1__CANCEL_WATCH_RESPONSE__INIT;
    kv_service *x = SVC(svc);

    if (!x->env->watch || kv_watch_cancel(x->env->watch, &x->watches, in->watch_id) != KV_OK) {
        kv_op op;
        kv_op_init(&op, x->env, ((kv_call *)data)->alloc);
        fail_op(data, &op, kv_op_fail(&op, KV_NOT_FOUND, "no watch %" PRIu64 " on this "
                                      "connection (it has %" PRIu64 " open)", in->watch_id,
                                      (uint64_t)x->watches.n));
        closure(NULL, data);
        return;
    }
    closure(&out, data);
}

/* The cluster rpcs on a server started without --node-id: ClusterStatus
 * says so (node_id 0), the membership changes are refused. */
static void svc_cluster_status(Kvstore__V1__KV_Service *svc,
                               const Kvstore__V1__ClusterStatusRequest *in,
                               Kvstore__V1__ClusterStatusResponse_Closure closure, void *data)
{
    Kvstore__V1__ClusterStatusResponse out = KVSTORE__V1__CLUSTER_STATUS_RESPONSE__INIT;

    (void)in;
    out.revision = kv_engine_revision(SVC(svc)->env->engine);
    closure(&out, data);
}

#define NOT_A_CLUSTER(name, Req, Resp)                                                   \
    static void svc_##name(Kvstore__V1__KV_Service *svc, const Kvstore__V1__##Req *in,  \
                           Kvstore__V1__##Resp##_Closure closure, void *data)           \
    {                                                                                   \
        (void)svc;                                                                      \
        (void)in;                                                                       \
        kv_call_fail(data, KV_FAILED_PRECONDITION, "this server is not a cluster member " \
                     "(started without --node-id)");                                    \
        closure(NULL, data);                                                            \
    }
NOT_A_CLUSTER(member_add, MemberAddRequest, MemberAddResponse)
NOT_A_CLUSTER(member_remove, MemberRemoveRequest, MemberRemoveResponse)
NOT_A_CLUSTER(leader_transfer, LeaderTransferRequest, LeaderTransferResponse)

/* SlowLog: this node's slow log, newest first; reset empties it after. */
static void svc_slow_log(Kvstore__V1__KV_Service *svc, const Kvstore__V1__SlowLogRequest *in,
                         Kvstore__V1__SlowLogResponse_Closure closure, void *data)
{
    Kvstore__V1__SlowLogResponse out = KVSTORE__V1__SLOW_LOG_RESPONSE__INIT;
    kv_slowlog *l = SVC(svc)->env->slowlog;

    if (l && kv_slowlog_get(l, in->limit, ((kv_call *)data)->alloc, &out) < 0) {
        kv_call_fail(data, KV_RESOURCE_EXHAUSTED, "server out of memory");
        closure(NULL, data);
        return;
    }
    closure(&out, data);    /* packed now: the reset below cannot reach it */
    if (l && in->reset)
        kv_slowlog_reset(l);
}

static void svc_client_list(Kvstore__V1__KV_Service *svc, const Kvstore__V1__ClientListRequest *in,
                            Kvstore__V1__ClientListResponse_Closure closure, void *data)
{
    Kvstore__V1__ClientListResponse out = KVSTORE__V1__CLIENT_LIST_RESPONSE__INIT;
    const kv_service_clients *h = SVC(svc)->env->clients;

    (void)in;
    if (!h) {
        kv_call_fail(data, KV_UNIMPLEMENTED, "this server keeps no client list");
        closure(NULL, data);
        return;
    }
    if (h->list(h->arg, SVC(svc), ((kv_call *)data)->alloc, &out) < 0) {
        kv_call_fail(data, KV_RESOURCE_EXHAUSTED, "server out of memory");
        closure(NULL, data);
        return;
    }
    closure(&out, data);
}

/* Other connections close at once; the asking one answers first, then
 * hangs up (as Redis's CLIENT KILL of itself). */
static void svc_client_kill(Kvstore__V1__KV_Service *svc, const Kvstore__V1__ClientKillRequest *in,
                            Kvstore__V1__ClientKillResponse_Closure closure, void *data)
{
    Kvstore__V1__ClientKillResponse out = KVSTORE__V1__CLIENT_KILL_RESPONSE__INIT;
    kv_service *x = SVC(svc);
    const kv_service_clients *h = x->env->clients;
    const char *peer = in->peer && *in->peer ? in->peer : NULL;
    int self_hit = 0;

    if (!h) {
        kv_call_fail(data, KV_UNIMPLEMENTED, "this server keeps no client list");
        closure(NULL, data);
        return;
    }
    if (!peer && !in->id) {
        kv_call_fail(data, KV_INVALID_ARGUMENT, "ClientKill needs a peer (HOST:PORT) or an id");
        closure(NULL, data);
        return;
    }
    /* The peer is echoed in the answer's message, a protobuf string: bytes
     * that are not UTF-8 would make the answer undecodable by a strict
     * client (no peer's text has them anyway), and a long one is cut. */
    if (peer && kv_utf8_check((const uint8_t *)peer, strlen(peer)) < strlen(peer)) {
        kv_call_fail(data, KV_INVALID_ARGUMENT, "ClientKill peer is not valid UTF-8; it is a "
                     "protobuf string (HOST:PORT)");
        closure(NULL, data);
        return;
    }
    out.killed = h->kill(h->arg, x, peer, peer ? 0 : in->id, &self_hit);
    if (!out.killed) {
        ProtobufCAllocator *alloc = ((kv_call *)data)->alloc;
        size_t plen = peer ? strlen(peer) : 0, len = 48 + (plen > 64 ? 64 : plen);
        char *msg = alloc->alloc(alloc->allocator_data, len);
        if (msg && peer && plen <= 64)
            snprintf(msg, len, "no connection from %s", peer);
        else if (msg && peer)
            snprintf(msg, len, "no connection from that peer (%zu bytes)", plen);
        else if (msg)
            snprintf(msg, len, "no connection numbered %" PRIu64, in->id);
        kv_call_fail(data, KV_NOT_FOUND, msg ? msg : "no such connection");
        closure(NULL, data);
        return;
    }
    if (self_hit) {
        x->hang_up = "killed by ClientKill";
        x->hang_up_reason = KV_CLOSE_KILLED;
    }
    closure(&out, data);
}

/* Snapshot and SnapshotRead: backup.c's, on this connection's copies. */
static void svc_snapshot(Kvstore__V1__KV_Service *svc, const Kvstore__V1__SnapshotRequest *in,
                         Kvstore__V1__SnapshotResponse_Closure closure, void *data)
{
    kv_service *x = SVC(svc);

    (void)in;
    if (!x->env->backups) {
        kv_call_fail(data, KV_UNIMPLEMENTED, "this server takes no snapshots");
        closure(NULL, data);
        return;
    }
    kv_backup_snapshot(x->env->backups, &x->backups, closure, data);
}

static void svc_snapshot_read(Kvstore__V1__KV_Service *svc,
                              const Kvstore__V1__SnapshotReadRequest *in,
                              Kvstore__V1__SnapshotReadResponse_Closure closure, void *data)
{
    kv_service *x = SVC(svc);

    if (!x->env->backups) {
        kv_call_fail(data, KV_UNIMPLEMENTED, "this server takes no snapshots");
        closure(NULL, data);
        return;
    }
    kv_backup_read(x->env->backups, &x->backups, in, x->env->limits.max_frame_bytes, closure,
                   data);
}

void kv_service_close(kv_service *x)
{
    if (x->backups)
        kv_backup_close(x->env->backups, &x->backups);
}

/* ProtobufCService.invoke: the authentication gate, then the handler. */
static void svc_invoke(ProtobufCService *svc, unsigned index, const ProtobufCMessage *in,
                        ProtobufCClosure closure, void *data)
{
    kv_service *x = SVC(svc);

    if (x->env->auth && !x->authenticated && strcmp(svc->descriptor->methods[index].name, "Auth") != 0) {
        kv_call_fail(data, KV_UNAUTHENTICATED,
                     "authenticate first: call /kvstore.v1.KV/Auth with the server's token");
        closure(NULL, data);
        return;
    }
    if (x->env->router && x->env->router->route(x->env->router->arg, svc, index, in, closure, data))
        return;
    protobuf_c_service_invoke_internal(svc, index, in, closure, data);
}

/* The messages requests are unpacked as, per method, where it is not the
 * proto's own: Ping's as a PingView (see svc_ping). Filled on first use
 * from the descriptor, so the method's index is looked up, not assumed. */
static const ProtobufCMessageDescriptor *ping_inputs[KV_STATS_MAX_METHODS];

static const ProtobufCMessageDescriptor *const *service_inputs(void)
{
    const ProtobufCServiceDescriptor *d = &kvstore__v1__kv__descriptor;
    static int filled;

    if (!filled) {
        filled = 1;
        for (unsigned i = 0; i < d->n_methods && i < KV_STATS_MAX_METHODS; i++)
            if (strcmp(d->methods[i].name, "Ping") == 0)
                ping_inputs[i] = &kvstore__server__ping_view__descriptor;
    }
    return ping_inputs;
}

void kv_service_init(kv_service *x, const kv_service_env *env, const kv_peer *peer)
{
    kv_hotpack_use(1);
    memset(x, 0, sizeof *x);
    if (peer)
        x->peer = *peer;
    else
        kv_peer_from_sockaddr(&x->peer, NULL, 0);
    kvstore__v1__kv__init(&x->service, NULL);
    x->service.base.invoke = svc_invoke;
    x->service.ping = svc_ping;
    x->service.get = svc_get;
    x->service.set = svc_set;
    x->service.clear = svc_clear;
    x->service.stats = svc_stats;
    x->service.auth = svc_auth;
    x->service.range = svc_range;
    x->service.clear_range = svc_clear_range;
    x->service.txn = svc_txn;
    x->service.touch = svc_touch;
    x->service.watch = svc_watch;
    x->service.cancel_watch = svc_cancel_watch;
    x->service.cluster_status = svc_cluster_status;
    x->service.member_add = svc_member_add;
    x->service.member_remove = svc_member_remove;
    x->service.leader_transfer = svc_leader_transfer;
    x->service.slow_log = svc_slow_log;
    x->service.client_list = svc_client_list;
    x->service.client_kill = svc_client_kill;
    x->service.snapshot = svc_snapshot;
    x->service.snapshot_read = svc_snapshot_read;
    x->inputs = service_inputs();
    if (env->handlers) {
        x->service = *env->handlers;
        x->service.base.invoke = svc_invoke;
        x->inputs = NULL;   /* other handlers read the proto's messages */
    }
    x->env = env;
}
