/* service.c - handlers of the KV service: validate, call the engine, answer.
 * Every handler either calls closure(response) or kv_call_fail() then
 * closure(NULL) before it returns (a handler that answers later uses
 * kv_call_defer(), see session.h). Response messages live on the stack:
 * the closure packs them before returning. */
#include <stdio.h>
#include <string.h>
#include <ev.h>
#include "service.h"
#include "session.h"
#include "ping_view.pb-c.h"
#include "log.h"
#include "rss.h"
#include "utf8.h"

#define SVC(svc) ((kv_service *)(svc))

/* Answers a failed engine call: the status and a reason for it, the
 * engine's own (copied into the request arena) when it gave one. */
static void fail_engine(kv_service *x, void *data, kv_status st)
{
    kv_call *call = data;
    const char *why = st == KV_NOT_FOUND ? NULL : kv_engine_last_error(x->env->engine);

    if (why) {
        size_t n = strlen(why) + 1;
        char *copy = call->alloc->alloc(call->alloc->allocator_data, n);
        if (copy) {
            memcpy(copy, why, n);
            kv_call_fail(data, st, copy);
            return;
        }
    }
    kv_call_fail(data, st, st == KV_NOT_FOUND ? "key not found"
                         : st == KV_RESOURCE_EXHAUSTED ? "server out of memory"
                         : st == KV_INVALID_ARGUMENT ? "key or value too large"
                         : "storage engine failure");
}

/* Fails the call with a formatted reason kept in the request arena. */
static void fail_fmt(void *data, kv_status st, const char *fmt, size_t a, size_t b)
{
    kv_call *call = data;
    char *msg = call->alloc->alloc(call->alloc->allocator_data, 160);

    if (msg)
        snprintf(msg, 160, fmt, a, b);
    kv_call_fail(data, st, msg ? msg : "request over a server limit");
}

/* Fails the call when KEY is empty or over the limit; returns whether it
 * did. */
static int reject_key(kv_service *x, const ProtobufCBinaryData *key, void *data)
{
    if (key->len == 0) {
        kv_call_fail(data, KV_INVALID_ARGUMENT, "key must not be empty");
        return 1;
    }
    if (key->len > x->env->limits.max_key_bytes) {
        fail_fmt(data, KV_INVALID_ARGUMENT, "key of %zu bytes exceeds the limit of %zu bytes",
                 key->len, x->env->limits.max_key_bytes);
        return 1;
    }
    return 0;
}

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

    (void)svc;
    size_t bad = kv_utf8_check(req->message.data, req->message.len);
    if (bad < req->message.len) {
        fail_fmt(data, KV_INVALID_ARGUMENT, "Ping message is not valid UTF-8 (at byte %zu of "
                 "%zu); it is a protobuf string", bad, req->message.len);
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

static void svc_get(Kvstore__V1__KV_Service *svc, const Kvstore__V1__GetRequest *in,
                     Kvstore__V1__GetResponse_Closure closure, void *data)
{
    Kvstore__V1__GetResponse out = KVSTORE__V1__GET_RESPONSE__INIT;
    kv_call *call = data;

    if (reject_key(SVC(svc), &in->key, data)) {
        closure(NULL, data);
        return;
    }
    /* A view of the engine's bytes, not a copy: the closure packs the
     * answer before anything can write to the engine. */
    kv_status st = kv_engine_get_view(SVC(svc)->env->engine, in->key.data, in->key.len,
                                      call->alloc, &out.value, NULL);
    if (st != KV_OK) {
        fail_engine(SVC(svc), data, st);
        closure(NULL, data);
        return;
    }
    closure(&out, data);
}

/* Fails a Set whose value is over the limit, or that would take the engine
 * past --max-memory-bytes; returns whether it did. */
static int reject_value(kv_service *x, const Kvstore__V1__SetRequest *in, void *data)
{
    const kv_limits *l = &x->env->limits;

    if (in->value.len > l->max_value_bytes) {
        fail_fmt(data, KV_INVALID_ARGUMENT, "value of %zu bytes exceeds the limit of %zu bytes",
                 in->value.len, l->max_value_bytes);
        return 1;
    }
    if (l->max_memory_bytes) {
        kv_engine_stats es;
        kv_engine_stats_get(x->env->engine, &es);
        if (es.memory_bytes + in->key.len + in->value.len > l->max_memory_bytes) {
            fail_fmt(data, KV_RESOURCE_EXHAUSTED,
                     "memory limit reached: %zu of %zu bytes in use; Clear keys or raise --max-memory-bytes",
                     (size_t)es.memory_bytes, (size_t)l->max_memory_bytes);
            return 1;
        }
    }
    return 0;
}

static void svc_set(Kvstore__V1__KV_Service *svc, const Kvstore__V1__SetRequest *in,
                     Kvstore__V1__SetResponse_Closure closure, void *data)
{
    Kvstore__V1__SetResponse out = KVSTORE__V1__SET_RESPONSE__INIT;

    if (reject_key(SVC(svc), &in->key, data) || reject_value(SVC(svc), in, data)) {
        closure(NULL, data);
        return;
    }
    kv_status st = kv_engine_set(SVC(svc)->env->engine, in->key.data, in->key.len,
                                 in->value.data, in->value.len, 0);
    if (st != KV_OK) {
        fail_engine(SVC(svc), data, st);
        closure(NULL, data);
        return;
    }
    out.key = in->key;
    closure(&out, data);
}

static void svc_clear(Kvstore__V1__KV_Service *svc, const Kvstore__V1__ClearRequest *in,
                       Kvstore__V1__ClearResponse_Closure closure, void *data)
{
    Kvstore__V1__ClearResponse out = KVSTORE__V1__CLEAR_RESPONSE__INIT;
    kv_call *call = data;

    if (reject_key(SVC(svc), &in->key, data)) {
        closure(NULL, data);
        return;
    }
    kv_status st = kv_engine_unset(SVC(svc)->env->engine, in->key.data, in->key.len,
                                   call->alloc, &out.value, 0);
    if (st != KV_OK && st != KV_NOT_FOUND) {
        fail_engine(SVC(svc), data, st);
        closure(NULL, data);
        return;
    }
    out.found = st == KV_OK;
    closure(&out, data);
}

static void svc_stats(Kvstore__V1__KV_Service *svc, const Kvstore__V1__StatsRequest *in,
                       Kvstore__V1__StatsResponse_Closure closure, void *data)
{
    Kvstore__V1__StatsResponse out = KVSTORE__V1__STATS_RESPONSE__INIT;
    const ProtobufCServiceDescriptor *d = svc->base.descriptor;
    const kv_stats *st = SVC(svc)->env->stats;
    kv_call *call = data;
    kv_engine_stats es;
    unsigned n = d->n_methods < KV_STATS_MAX_METHODS ? d->n_methods : KV_STATS_MAX_METHODS;
    Kvstore__V1__MethodStats *ms = call->alloc->alloc(call->alloc->allocator_data, n * sizeof *ms);
    Kvstore__V1__MethodStats **msp = call->alloc->alloc(call->alloc->allocator_data, n * sizeof *msp);

    (void)in;
    if (!ms || !msp) {
        kv_call_fail(data, KV_RESOURCE_EXHAUSTED, "server out of memory");
        closure(NULL, data);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        size_t plen = strlen(d->name) + strlen(d->methods[i].name) + 3;
        char *path = call->alloc->alloc(call->alloc->allocator_data, plen);
        if (path)
            snprintf(path, plen, "/%s/%s", d->name, d->methods[i].name);
        kvstore__v1__method_stats__init(&ms[i]);
        ms[i].method = path ? path : (char *)d->methods[i].name;
        ms[i].calls = st->calls[i];
        ms[i].errors = st->call_errors[i];
        msp[i] = &ms[i];
    }
    kv_engine_stats_get(SVC(svc)->env->engine, &es);
    out.uptime_seconds = (uint64_t)(ev_time() - st->started);
    out.connections_current = st->conns_current;
    out.connections_total = st->conns_total;
    out.connections_rejected = st->conns_rejected;
    out.n_methods = n;
    out.methods = msp;
    out.requests_total = st->requests;
    out.errors_total = st->errors;
    out.keys = es.keys;
    out.data_bytes = es.data_bytes;
    out.engine_memory_bytes = es.memory_bytes;
    out.resident_memory_bytes = kv_rss_bytes();
    out.max_memory_bytes = SVC(svc)->env->limits.max_memory_bytes;
    out.engine_file_bytes = es.file_bytes;
    out.engine_map_bytes = es.map_bytes;
    out.engine_last_sync_unix_ms = es.last_sync_ms;
    out.engine_sync = (char *)(es.sync ? es.sync : "");
    out.input_buffer_bytes = st->input_bytes;
    out.output_buffer_bytes = st->output_bytes;
    out.connections_closed_output = st->conns_closed_output;
    out.auth_refused = SVC(svc)->env->guard ? SVC(svc)->env->guard->refused : 0;
    out.engine = (char *)SVC(svc)->env->engine->ops->name;
    out.version = (char *)KV_VERSION;
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
        x->hang_up = 1;
        kv_call_fail(data, KV_UNAUTHENTICATED, "wrong token; too many tries, closing the connection");
    } else {
        kv_call_fail(data, KV_UNAUTHENTICATED, "wrong token");
    }
    closure(NULL, data);
}

/* TODO(issue 13): Range, ClearRange and Txn, answered UNIMPLEMENTED until
 * their handlers land, so that no NULL handler is ever called. */
#define SVC_PENDING(name, Req, Resp)                                                \
    static void svc_##name(Kvstore__V1__KV_Service *svc, const Kvstore__V1__##Req *in, \
                           Kvstore__V1__##Resp##_Closure closure, void *data)        \
    {                                                                               \
        (void)svc;                                                                  \
        (void)in;                                                                   \
        kv_call_fail(data, KV_UNIMPLEMENTED, "not yet");                            \
        closure(NULL, data);                                                        \
    }
SVC_PENDING(range, RangeRequest, RangeResponse)
SVC_PENDING(clear_range, ClearRangeRequest, ClearRangeResponse)
SVC_PENDING(txn, TxnRequest, TxnResponse)

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
    x->inputs = service_inputs();
    if (env->handlers) {
        x->service = *env->handlers;
        x->service.base.invoke = svc_invoke;
        x->inputs = NULL;   /* other handlers read the proto's messages */
    }
    x->env = env;
}
