/* fuzz_client.c - libFuzzer harness for the client library's reading side:
 * the input is what a server sends, fed (kvc_feed, the code the socket
 * path runs) to a client that has two watches open and pipelined calls of
 * several kinds in flight, so frames, answers, stream frames and the
 * WatchResponses in them are all decoded and dispatched.
 *
 * The first byte picks the setup: bits 0-2 how many calls are in flight
 * (of Get, Set, Range, Touch, Txn, Stats, Clear, in that order), bit 3
 * whether a callback cancels its watch on its first frame, bit 4 whether
 * it tries calls it may not make. The rest is the server's bytes.
 *
 * Checked, besides what ASan and UBSan see: every call's closure runs
 * exactly once and in call order (by kv_client_free() at the latest);
 * each watch's callback gets only frames of its own watch_id, never runs
 * after the watch ended (a canceled frame or NULL), and has ended once
 * the client is freed; calls from a callback are refused. State is fresh
 * per input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <kvstore/client.h>
#include "frame.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CALLS 7

/* What one watch's callback saw. */
typedef struct watch_seen {
    uint64_t watch_id;      /* the server's id, as opened */
    int ended;
    int cancel_first;       /* cancel on the first frame */
    int try_calls;
    size_t frames;
} watch_seen;

static void on_frame(kv_client *c, uint64_t watch_id, const Kvstore__V1__WatchResponse *r,
                     void *arg)
{
    watch_seen *w = arg;

    if (w->ended || watch_id != w->watch_id)
        abort();
    if (!r) {
        w->ended = 1;
        return;
    }
    if (r->watch_id != w->watch_id)
        abort();
    /* Read every field, as a program would. */
    for (size_t i = 0; i < r->n_events; i++) {
        const Kvstore__V1__WatchEvent *e = r->events[i];
        volatile size_t sum = (size_t)e->type + (size_t)e->expired;
        if (e->kv)
            sum += e->kv->key.len + e->kv->value.len + (size_t)e->kv->mod_revision;
        if (e->prev_kv)
            sum += e->prev_kv->value.len;
        (void)sum;
    }
    if (r->canceled) {
        if (!r->cancel_reason)
            abort();
        w->ended = 1;
    }
    if (w->try_calls && (kv_client_get(c, "k", 1, NULL, NULL) != KV_FAILED_PRECONDITION
                         || kv_client_poll(c, 0) != KV_FAILED_PRECONDITION))
        abort();
    if (w->cancel_first && w->frames == 0 && !r->canceled) {
        /* Only queued from here: OK, or out of memory. */
        kv_status st = kv_client_watch_cancel(c, watch_id);
        if (st != KV_OK && st != KV_RESOURCE_EXHAUSTED)
            abort();
    }
    w->frames++;
}

/* One call in flight. */
typedef struct call_seen {
    int *order;             /* the next index expected, shared */
    int index;
    int called;
} call_seen;

static void on_answer(const ProtobufCMessage *m, void *data)
{
    call_seen *s = data;

    (void)m;
    if (s->called || *s->order != s->index)
        abort();
    s->called = 1;
    (*s->order)++;
}

/* Opens a watch on C whose answer (call ID, watch id WATCH_ID) the peer
 * PEER sends. Returns 0, or -1 when the setup itself failed. */
static int open_watch(kv_client *c, int peer, uint64_t id, uint64_t watch_id, watch_seen *w)
{
    Kvstore__V1__WatchResponse opened = KVSTORE__V1__WATCH_RESPONSE__INIT;
    Kvstore__V1__RpcResponse r = KVSTORE__V1__RPC_RESPONSE__INIT;
    Kvstore__V1__WatchRequest req = KVSTORE__V1__WATCH_REQUEST__INIT;
    uint8_t payload[16], frame[64];
    size_t n, pre;
    uint64_t got;

    opened.watch_id = watch_id;
    r.id = id;
    r.payload = (ProtobufCBinaryData){ kvstore__v1__watch_response__pack(&opened, payload),
                                       payload };
    n = kvstore__v1__rpc_response__get_packed_size(&r);
    pre = kv_frame_put_prefix(frame, (uint32_t)n);
    kvstore__v1__rpc_response__pack(&r, frame + pre);
    req.prefix = (ProtobufCBinaryData){ 1, (uint8_t *)"p" };
    w->watch_id = watch_id;
    if (write(peer, frame, pre + n) != (ssize_t)(pre + n)
        || kv_client_watch(c, &req, on_frame, w, &got) != KV_OK || got != watch_id)
        return -1;
    return 0;
}

/* Queues call I (its kind by I) on C for S. */
static void queue_call(kv_client *c, int i, call_seen *s)
{
    ProtobufCService *svc = kv_client_service(c);
    ProtobufCBinaryData key = { 1, (uint8_t *)"k" };

    switch (i) {
    case 0: {
        Kvstore__V1__GetRequest q = KVSTORE__V1__GET_REQUEST__INIT;
        q.key = key;
        kvstore__v1__kv__get(svc, &q, (Kvstore__V1__GetResponse_Closure)(void (*)(void))on_answer, s);
        break;
    }
    case 1: {
        Kvstore__V1__SetRequest q = KVSTORE__V1__SET_REQUEST__INIT;
        q.key = key;
        q.ttl_ms = 1000;
        kvstore__v1__kv__set(svc, &q, (Kvstore__V1__SetResponse_Closure)(void (*)(void))on_answer, s);
        break;
    }
    case 2: {
        Kvstore__V1__RangeRequest q = KVSTORE__V1__RANGE_REQUEST__INIT;
        q.prefix = key;
        kvstore__v1__kv__range(svc, &q,
                               (Kvstore__V1__RangeResponse_Closure)(void (*)(void))on_answer, s);
        break;
    }
    case 3: {
        Kvstore__V1__TouchRequest q = KVSTORE__V1__TOUCH_REQUEST__INIT;
        q.key = key;
        kvstore__v1__kv__touch(svc, &q,
                               (Kvstore__V1__TouchResponse_Closure)(void (*)(void))on_answer, s);
        break;
    }
    case 4: {
        Kvstore__V1__TxnRequest q = KVSTORE__V1__TXN_REQUEST__INIT;
        kvstore__v1__kv__txn(svc, &q, (Kvstore__V1__TxnResponse_Closure)(void (*)(void))on_answer, s);
        break;
    }
    case 5: {
        Kvstore__V1__StatsRequest q = KVSTORE__V1__STATS_REQUEST__INIT;
        kvstore__v1__kv__stats(svc, &q,
                               (Kvstore__V1__StatsResponse_Closure)(void (*)(void))on_answer, s);
        break;
    }
    default: {
        Kvstore__V1__ClearRequest q = KVSTORE__V1__CLEAR_REQUEST__INIT;
        q.key = key;
        kvstore__v1__kv__clear(svc, &q,
                               (Kvstore__V1__ClearResponse_Closure)(void (*)(void))on_answer, s);
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    watch_seen w[2];
    call_seen calls[MAX_CALLS];
    int sv[2], order = 0, ncalls;
    kv_client *c;

    if (size < 1 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return 0;
    memset(w, 0, sizeof w);
    ncalls = data[0] & 7;
    for (int i = 0; i < 2; i++) {
        w[i].cancel_first = (data[0] >> 3) & 1;
        w[i].try_calls = (data[0] >> 4) & 1;
    }
    c = kvc_adopt(sv[0], 1000);
    if (!c || open_watch(c, sv[1], 1, 41, &w[0]) < 0 || open_watch(c, sv[1], 2, 42, &w[1]) < 0)
        abort();    /* the setup is not what is fuzzed */
    /* Calls 3.. in flight: queued, never sent (the pipeline never ends). */
    kv_client_pipeline_begin(c);
    for (int i = 0; i < ncalls; i++) {
        calls[i] = (call_seen){ &order, i, 0 };
        queue_call(c, i, &calls[i]);
    }
    kvc_feed(c, data + 1, size - 1);
    kv_client_free(c);
    close(sv[1]);
    for (int i = 0; i < ncalls; i++)
        if (!calls[i].called)
            abort();
    if (!w[0].ended || !w[1].ended)
        abort();
    return 0;
}
