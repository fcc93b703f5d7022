/* exec.c - handlers of the KV service: validate, call the engine, answer.
 * Every handler either calls closure(response) or kv_call_fail() then
 * closure(NULL). Response messages live on the stack: the closure packs
 * them before returning. */
#include "exec.h"
#include "dispatch.h"

#define EXEC(svc) ((kv_exec *)(svc))

/* Answers a failed engine call: the status and a reason for it. */
static void fail_engine(void *data, kv_status st)
{
    kv_call_fail(data, st, st == KV_NOT_FOUND ? "key not found"
                         : st == KV_RESOURCE_EXHAUSTED ? "server out of memory"
                         : st == KV_INVALID_ARGUMENT ? "key or value too large"
                         : "storage engine failure");
}

/* Fails the call when KEY is empty; returns whether it did. */
static int reject_empty_key(const ProtobufCBinaryData *key, void *data)
{
    if (key->len > 0)
        return 0;
    kv_call_fail(data, KV_INVALID_ARGUMENT, "key must not be empty");
    return 1;
}

static void exec_ping(Kvstore__V1__KV_Service *svc, const Kvstore__V1__PingRequest *in,
                      Kvstore__V1__PingResponse_Closure closure, void *data)
{
    Kvstore__V1__PingResponse out = KVSTORE__V1__PING_RESPONSE__INIT;

    (void)svc;
    out.message = in->message[0] ? in->message : (char *)"PONG";
    closure(&out, data);
}

static void exec_get(Kvstore__V1__KV_Service *svc, const Kvstore__V1__GetRequest *in,
                     Kvstore__V1__GetResponse_Closure closure, void *data)
{
    Kvstore__V1__GetResponse out = KVSTORE__V1__GET_RESPONSE__INIT;
    kv_call *call = data;

    if (reject_empty_key(&in->key, data)) {
        closure(NULL, data);
        return;
    }
    kv_status st = kv_engine_get(EXEC(svc)->engine, in->key.data, in->key.len,
                                 call->alloc, &out.value);
    if (st != KV_OK) {
        fail_engine(data, st);
        closure(NULL, data);
        return;
    }
    closure(&out, data);
}

static void exec_set(Kvstore__V1__KV_Service *svc, const Kvstore__V1__SetRequest *in,
                     Kvstore__V1__SetResponse_Closure closure, void *data)
{
    Kvstore__V1__SetResponse out = KVSTORE__V1__SET_RESPONSE__INIT;

    if (reject_empty_key(&in->key, data)) {
        closure(NULL, data);
        return;
    }
    kv_status st = kv_engine_set(EXEC(svc)->engine, in->key.data, in->key.len,
                                 in->value.data, in->value.len);
    if (st != KV_OK) {
        fail_engine(data, st);
        closure(NULL, data);
        return;
    }
    out.key = in->key;
    closure(&out, data);
}

static void exec_clear(Kvstore__V1__KV_Service *svc, const Kvstore__V1__ClearRequest *in,
                       Kvstore__V1__ClearResponse_Closure closure, void *data)
{
    Kvstore__V1__ClearResponse out = KVSTORE__V1__CLEAR_RESPONSE__INIT;
    kv_call *call = data;

    if (reject_empty_key(&in->key, data)) {
        closure(NULL, data);
        return;
    }
    kv_status st = kv_engine_unset(EXEC(svc)->engine, in->key.data, in->key.len,
                                   call->alloc, &out.value);
    if (st != KV_OK && st != KV_NOT_FOUND) {
        fail_engine(data, st);
        closure(NULL, data);
        return;
    }
    out.found = st == KV_OK;
    closure(&out, data);
}

void kv_exec_init(kv_exec *x, kv_engine *engine)
{
    kvstore__v1__kv__init(&x->service, NULL);
    x->service.ping = exec_ping;
    x->service.get = exec_get;
    x->service.set = exec_set;
    x->service.clear = exec_clear;
    x->engine = engine;
}
