/* later.c - the answer-later KV service; see later.h. Owns the list of
 * kept calls; each call's memory is its own (kv_call.alloc). */
#include <stdlib.h>
#include <string.h>
#include "later.h"
#include "session.h"

#define MAX_KEPT 8192

typedef struct later_call {
    kv_call *call;
    ProtobufCClosure closure;
    int method;                 /* 'g', 's' or 'c' */
    int steps;                  /* taken so far */
    ProtobufCBinaryData key;    /* Get: copied into the call's memory */
} later_call;

static later_call kept[MAX_KEPT];
static size_t nkept, norphaned;

size_t later_waiting(void)
{
    return nkept;
}

size_t later_orphaned(void)
{
    return norphaned;
}

static void orphaned(kv_call *call, void *arg)
{
    (void)call;
    (void)arg;
    norphaned++;
}

/* Keeps the call DATA; answers it at once (out of memory) when it cannot. */
static void keep(void *data, ProtobufCClosure closure, int method, const ProtobufCBinaryData *key)
{
    kv_call *call = nkept < MAX_KEPT ? kv_call_defer(data) : NULL;

    if (!call) {
        kv_call_fail(data, KV_RESOURCE_EXHAUSTED, "cannot keep the call");
        closure(NULL, data);
        return;
    }
    later_call *k = &kept[nkept++];
    memset(k, 0, sizeof *k);
    k->call = call;
    k->closure = closure;
    k->method = method;
    call->on_close = orphaned;
    if (key) {
        uint8_t *copy = call->alloc->alloc(call->alloc->allocator_data, key->len + 4);
        if (copy) {
            memcpy(copy, "got:", 4);
            if (key->len)
                memcpy(copy + 4, key->data, key->len);
            k->key = (ProtobufCBinaryData){ key->len + 4, copy };
        }
    }
}

static void later_ping(Kvstore__V1__KV_Service *svc, const Kvstore__V1__PingRequest *in,
                       Kvstore__V1__PingResponse_Closure closure, void *data)
{
    Kvstore__V1__PingResponse out = KVSTORE__V1__PING_RESPONSE__INIT;

    (void)svc;
    (void)in;
    out.message = "now";
    closure(&out, data);
}

static void later_get(Kvstore__V1__KV_Service *svc, const Kvstore__V1__GetRequest *in,
                      Kvstore__V1__GetResponse_Closure closure, void *data)
{
    (void)svc;
    keep(data, (ProtobufCClosure)closure, 'g', &in->key);
}

static void later_set(Kvstore__V1__KV_Service *svc, const Kvstore__V1__SetRequest *in,
                      Kvstore__V1__SetResponse_Closure closure, void *data)
{
    (void)svc;
    (void)in;
    keep(data, (ProtobufCClosure)closure, 's', NULL);
}

static void later_clear(Kvstore__V1__KV_Service *svc, const Kvstore__V1__ClearRequest *in,
                        Kvstore__V1__ClearResponse_Closure closure, void *data)
{
    (void)svc;
    (void)in;
    keep(data, (ProtobufCClosure)closure, 'c', NULL);
}

static void later_stats(Kvstore__V1__KV_Service *svc, const Kvstore__V1__StatsRequest *in,
                        Kvstore__V1__StatsResponse_Closure closure, void *data)
{
    Kvstore__V1__StatsResponse out = KVSTORE__V1__STATS_RESPONSE__INIT;

    (void)svc;
    (void)in;
    closure(&out, data);
}

static void later_auth(Kvstore__V1__KV_Service *svc, const Kvstore__V1__AuthRequest *in,
                       Kvstore__V1__AuthResponse_Closure closure, void *data)
{
    Kvstore__V1__AuthResponse out = KVSTORE__V1__AUTH_RESPONSE__INIT;

    (void)svc;
    (void)in;
    closure(&out, data);
}

/* The v2 calls are not used by the session tests: each answers at once. */
#define LATER_UNUSED(name, Req, Resp)                                               \
    static void later_##name(Kvstore__V1__KV_Service *svc, const Kvstore__V1__##Req *in, \
                             Kvstore__V1__##Resp##_Closure closure, void *data)      \
    {                                                                               \
        (void)svc;                                                                  \
        (void)in;                                                                   \
        kv_call_fail(data, KV_UNIMPLEMENTED, "not in the session tests");           \
        closure(NULL, data);                                                        \
    }
LATER_UNUSED(range, RangeRequest, RangeResponse)
LATER_UNUSED(clear_range, ClearRangeRequest, ClearRangeResponse)
LATER_UNUSED(txn, TxnRequest, TxnResponse)
LATER_UNUSED(touch, TouchRequest, TouchResponse)
LATER_UNUSED(watch, WatchRequest, WatchResponse)
LATER_UNUSED(cancel_watch, CancelWatchRequest, CancelWatchResponse)
LATER_UNUSED(cluster_status, ClusterStatusRequest, ClusterStatusResponse)
LATER_UNUSED(member_add, MemberAddRequest, MemberAddResponse)
LATER_UNUSED(member_remove, MemberRemoveRequest, MemberRemoveResponse)
LATER_UNUSED(leader_transfer, LeaderTransferRequest, LeaderTransferResponse)
LATER_UNUSED(slow_log, SlowLogRequest, SlowLogResponse)
LATER_UNUSED(client_list, ClientListRequest, ClientListResponse)
LATER_UNUSED(client_kill, ClientKillRequest, ClientKillResponse)
LATER_UNUSED(snapshot, SnapshotRequest, SnapshotResponse)
LATER_UNUSED(snapshot_read, SnapshotReadRequest, SnapshotReadResponse)

const Kvstore__V1__KV_Service later_handlers = KVSTORE__V1__KV__INIT(later_);

void later_step(size_t i)
{
    later_call k = kept[i];

    if (k.method == 's' && k.steps == 0) {
        Kvstore__V1__SetResponse frame = KVSTORE__V1__SET_RESPONSE__INIT;
        frame.key = (ProtobufCBinaryData){ LATER_STREAM_LEN, (uint8_t *)LATER_STREAM };
        kv_call_send(k.call, &frame.base);     /* -1 once the connection is gone */
        kept[i].steps++;
        return;
    }
    memmove(&kept[i], &kept[i + 1], (nkept - i - 1) * sizeof kept[0]);
    nkept--;
    if (k.method == 'g') {
        Kvstore__V1__GetResponse out = KVSTORE__V1__GET_RESPONSE__INIT;
        out.value = k.key;
        k.closure(k.key.data ? &out.base : NULL, k.call);
    } else if (k.method == 's') {
        Kvstore__V1__SetResponse out = KVSTORE__V1__SET_RESPONSE__INIT;
        out.key = (ProtobufCBinaryData){ 5, (uint8_t *)"final" };
        k.closure(&out.base, k.call);
    } else {
        kv_call_fail(k.call, KV_NOT_FOUND, "later");
        k.closure(NULL, k.call);
    }
}

void later_finish_all(void)
{
    while (nkept)
        later_step(0);
}
