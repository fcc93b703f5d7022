/* watch.c - the watches of a connection: opening one (kv_client_watch),
 * handing each stream frame to its callback, and ending them (a canceled
 * frame, kv_client_watch_cancel, a lost connection). Owns the list of
 * watches; reading frames and waiting for them (kv_client_poll) are
 * client.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <kvstore/client.h>
#include "internal.h"

/* The index of the watch whose Watch call had id CALL_ID (BY_CALL) or
 * whose server id is WATCH_ID, or -1. */
static long find(const kvc_watches *w, uint64_t id, int by_call)
{
    for (size_t i = 0; i < w->n; i++)
        if ((by_call ? w->v[i].call_id : w->v[i].watch_id) == id)
            return (long)i;
    return -1;
}

/* Drops entry I, keeping the others in order. */
static void drop(kvc_watches *w, long i)
{
    memmove(&w->v[i], &w->v[i + 1], (w->n - (size_t)i - 1) * sizeof *w->v);
    w->n--;
}

/* Runs the callback of WT with RESP. When ST is not KV_OK, C's last
 * status is ST and MSG during the call; either way the status of the call
 * that was reading is back afterwards. */
static void call_back(kv_client *c, const kvc_watch *wt, const Kvstore__V1__WatchResponse *resp,
                      kv_status st, const char *msg)
{
    kvc_watches *w = kvc_watches_of(c);
    kv_status kept = kv_client_last_status(c);
    char kept_msg[512];

    snprintf(kept_msg, sizeof kept_msg, "%s", kv_client_last_message(c));
    if (st != KV_OK)
        kvc_set_status(c, st, "%s", msg);
    w->calling++;
    wt->fn(c, wt->watch_id, resp, wt->arg);
    w->calling--;
    kvc_set_status(c, kept, "%s", kept_msg);
}

int kvc_watch_frame(kv_client *c, const Kvstore__V1__RpcResponse *r)
{
    kvc_watches *w = kvc_watches_of(c);
    long i = find(w, r->id, 1);
    Kvstore__V1__WatchResponse *resp;
    kvc_watch wt;

    if (i < 0)
        return 0;
    wt = w->v[i];
    if (r->code != KVSTORE__V1__STATUS_CODE__OK) {
        /* Not in the protocol, but an error ends a stream in gRPC: end the
         * watch with it rather than breaking the connection. */
        drop(w, i);
        w->delivered++;
        call_back(c, &wt, NULL, (kv_status)r->code, r->message);
        return 0;
    }
    resp = kvstore__v1__watch_response__unpack(NULL, r->payload.len, r->payload.data);
    if (!resp || resp->watch_id != wt.watch_id) {
        if (resp)
            kvstore__v1__watch_response__free_unpacked(resp, NULL);
        return -1;
    }
    /* Forgotten before the callback runs: a cancel from it finds nothing. */
    if (resp->canceled)
        drop(w, i);
    w->delivered++;
    call_back(c, &wt, resp, KV_OK, NULL);
    kvstore__v1__watch_response__free_unpacked(resp, NULL);
    return 0;
}

void kvc_watch_end_all(kv_client *c)
{
    kvc_watches *w = kvc_watches_of(c);
    kvc_watch *v = w->v;
    size_t n = w->n;

    /* Detached first: the callbacks see a client with no watches. */
    w->v = NULL;
    w->n = w->cap = 0;
    for (size_t i = 0; i < n; i++)
        call_back(c, &v[i], NULL, KV_OK, NULL);
    free(v);
}

/* A Watch call in flight: what its closure needs to add the watch. */
typedef struct opening {
    kv_client *c;
    uint64_t call_id;       /* set as soon as the call is queued */
    kv_client_watch_fn fn;
    void *arg;
    uint64_t watch_id;      /* the answer's; 0 until then */
    int zero;               /* the server answered watch_id 0 */
} opening;

/* Closure of the Watch call: adds the watch at once, since its stream
 * frames may follow in the same read. Room was made before the call. */
static void on_watch(const ProtobufCMessage *msg, void *data)
{
    const Kvstore__V1__WatchResponse *m = (const Kvstore__V1__WatchResponse *)msg;
    opening *o = data;
    kvc_watches *w;

    if (!m)
        return;
    if (m->watch_id == 0) {
        o->zero = 1;
        return;
    }
    w = kvc_watches_of(o->c);
    w->v[w->n++] = (kvc_watch){ o->call_id, m->watch_id, o->fn, o->arg };
    o->watch_id = m->watch_id;
}

kv_status kv_client_watch(kv_client *c, const Kvstore__V1__WatchRequest *req,
                          kv_client_watch_fn fn, void *arg, uint64_t *watch_id)
{
    kvc_watches *w = kvc_watches_of(c);
    opening o = { c, 0, fn, arg, 0, 0 };
    kv_status st;

    if (watch_id)
        *watch_id = 0;
    if (kvc_refuse_in_callback(c))
        return KV_FAILED_PRECONDITION;
    if (!fn) {
        kvc_set_status(c, KV_INVALID_ARGUMENT, "kv_client_watch needs a callback");
        return KV_INVALID_ARGUMENT;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4;
        kvc_watch *v = realloc(w->v, cap * sizeof *v);
        if (!v) {
            kvc_set_status(c, KV_RESOURCE_EXHAUSTED, "client out of memory");
            return KV_RESOURCE_EXHAUSTED;
        }
        w->v = v;
        w->cap = cap;
    }
    st = kvc_call(c, "Watch", &req->base, on_watch, &o, 1, &o.call_id);
    if (o.watch_id) {
        if (watch_id)
            *watch_id = o.watch_id;
        kvc_set_status(c, KV_OK, NULL);
        return KV_OK;
    }
    if (o.zero) {
        kvc_set_status(c, KV_INTERNAL, "the server answered Watch with watch_id 0");
        return KV_INTERNAL;
    }
    st = kv_client_last_status(c);
    return st != KV_OK ? st : KV_INTERNAL;
}

/* Closures of CancelWatch: from a callback nobody waits for the answer;
 * otherwise *DATA says whether it was OK. */
static void on_cancel_queued(const ProtobufCMessage *msg, void *data)
{
    (void)msg;
    (void)data;
}

static void on_cancel(const ProtobufCMessage *msg, void *data)
{
    if (msg)
        *(int *)data = 1;
}

kv_status kv_client_watch_cancel(kv_client *c, uint64_t watch_id)
{
    Kvstore__V1__CancelWatchRequest req = KVSTORE__V1__CANCEL_WATCH_REQUEST__INIT;
    kvc_watches *w = kvc_watches_of(c);
    kv_status st;
    long i;
    int ok = 0;

    req.watch_id = watch_id;
    if (w->calling)
        return kvc_call(c, "CancelWatch", &req.base, on_cancel_queued, NULL, 0, NULL);
    kvc_call(c, "CancelWatch", &req.base, on_cancel, &ok, 1, NULL);
    if (!ok) {
        st = kv_client_last_status(c);
        return st != KV_OK ? st : KV_INTERNAL;
    }
    /* The canceled frame comes before the answer, and has dropped the
     * watch; a server that skipped it still ended the watch. */
    i = find(w, watch_id, 0);
    if (i >= 0) {
        kvc_watch wt = w->v[i];
        char msg[96];
        drop(w, i);
        snprintf(msg, sizeof msg, "the server ended watch %llu without its canceled frame",
                 (unsigned long long)watch_id);
        call_back(c, &wt, NULL, KV_INTERNAL, msg);
    }
    kvc_set_status(c, KV_OK, NULL);
    return KV_OK;
}
