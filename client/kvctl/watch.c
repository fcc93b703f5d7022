/* watch.c - runs kvctl watch: opens the watch through the client library
 * (kv_client_watch), waits for its frames (kv_client_poll) until SIGINT
 * or its end, and says how it ended. The events are printed by
 * watchout.c as they come, the end by out.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "watch.h"
#include "watchout.h"

/* How long one kv_client_poll() may wait. SIGINT interrupts the wait, but
 * one that comes just before it starts is seen at the next look: this is
 * the most Ctrl-C can take to be noticed. */
enum { POLL_MS = 500 };

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* A watch being run: the callback's ARG. It lives until the watch's last
 * callback, which may come after kvctl_watch_run() returned (from
 * kv_client_free()): then DETACHED is set and that callback frees it. */
typedef struct watching {
    const kvctl_out *o;
    kvctl_result *r;        /* NULL once detached */
    int ended;              /* the watch's last callback has run */
    int canceling;          /* kvctl sent CancelWatch: its end is no error */
    int write_failed;
    int detached;
} watching;

/* Records in R the failure ST of C's last call or of the connection. */
static void record_failure(kvctl_result *r, kv_client *c, kv_status st)
{
    const char *msg = kv_client_last_message(c);

    r->status = st;
    free(r->message);
    r->message = kvctl_mem_strdup(msg && *msg ? msg : "watch failed");
    r->transport = st == KV_UNAVAILABLE || st == KV_DEADLINE_EXCEEDED;
}

/* Records in R that the server ended the watch, as RESP says. */
static void record_cancel(kvctl_result *r, const Kvstore__V1__WatchResponse *resp)
{
    const char *reason = resp->cancel_reason && *resp->cancel_reason ? resp->cancel_reason
                                                                      : "canceled by the server";
    size_t n = strlen(reason) + 64;

    r->status = KV_CANCELLED;
    r->canceled = 1;
    r->revision = resp->compact_revision;
    free(r->message);
    r->message = kvctl_mem_alloc(n);
    if (resp->compact_revision)
        snprintf(r->message, n, "%s (compact_revision %llu)", reason,
                 (unsigned long long)resp->compact_revision);
    else
        snprintf(r->message, n, "%s", reason);
}

/* The watch's callback (kv_client_watch_fn). */
static void on_frame(kv_client *c, uint64_t watch_id, const Kvstore__V1__WatchResponse *resp,
                     void *arg)
{
    watching *w = arg;

    (void)watch_id;
    if (w->detached) {
        if (!resp || resp->canceled)
            free(w);
        return;
    }
    if (!resp) {
        w->ended = 1;
        if (kv_client_last_status(c) != KV_OK)
            record_failure(w->r, c, kv_client_last_status(c));
        return;
    }
    if (!w->write_failed && kvctl_watchout_events(w->o, resp) < 0)
        w->write_failed = 1;
    if (resp->canceled) {
        w->ended = 1;
        if (!w->canceling)
            record_cancel(w->r, resp);
    }
}

/* The WatchRequest of CMD, pointing into CMD. */
static Kvstore__V1__WatchRequest watch_request(const kvctl_cmd *cmd)
{
    Kvstore__V1__WatchRequest req = KVSTORE__V1__WATCH_REQUEST__INIT;
    /* Keys are never empty: "\x00" is the first possible one, and as the
     * end it means no end (etcd's convention). */
    static const ProtobufCBinaryData zero = { 1, (uint8_t *)"" };

    if (cmd->all) {
        req.key = zero;
        req.end = zero;
    } else if (cmd->prefix) {
        req.prefix = (ProtobufCBinaryData){ cmd->key.len, cmd->key.data };
    } else if (cmd->range) {
        req.key = cmd->key.len ? (ProtobufCBinaryData){ cmd->key.len, cmd->key.data } : zero;
        req.end = cmd->end.len ? (ProtobufCBinaryData){ cmd->end.len, cmd->end.data } : zero;
    } else {
        req.key = (ProtobufCBinaryData){ cmd->key.len, cmd->key.data };
    }
    req.start_revision = cmd->start_revision;
    req.prev_kv = cmd->prev_kv;
    return req;
}

void kvctl_watch_run(kv_client *c, const kvctl_cmd *cmd, const kvctl_out *o, int keep,
                     kvctl_result *r)
{
    Kvstore__V1__WatchRequest req = watch_request(cmd);
    struct sigaction sa, old;
    watching *w = kvctl_mem_alloc(sizeof *w);
    uint64_t id;
    kv_status st;

    memset(r, 0, sizeof *r);
    *w = (watching){ .o = o, .r = r };
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;     /* no SA_RESTART: the wait must end */
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old);

    st = kv_client_watch(c, &req, on_frame, w, &id);
    if (st != KV_OK) {
        record_failure(r, c, st);   /* the callback never runs */
        free(w);
        sigaction(SIGINT, &old, NULL);
        return;
    }
    /* Its first frames may have come with the answer, its end too. */
    while (!w->ended && !interrupted && !w->write_failed) {
        st = kv_client_poll(c, POLL_MS);
        if (st != KV_OK && st != KV_DEADLINE_EXCEEDED && st != KV_CANCELLED && !w->ended) {
            record_failure(r, c, st);   /* not expected: the watch is open */
            break;
        }
    }
    if (!w->ended && keep) {
        w->canceling = 1;
        kv_client_watch_cancel(c, id);
    }
    sigaction(SIGINT, &old, NULL);
    if (w->ended) {
        free(w);
    } else {
        w->r = NULL;
        w->detached = 1;
    }
}
