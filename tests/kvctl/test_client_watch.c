/* test_client_watch.c - the C client library's keys that expire and
 * watches (include/kvstore/client.h, protocol v2.1): the blocking helpers
 * and the watch callbacks against a real kvstored (support/fixture.c;
 * once per engine), and the rules of stream frames (dispatch by id,
 * unknown ids skipped, the canceled frame last, what a callback may do)
 * on frames made up here and fed to the client without a server
 * (kvc_feed). Every wait is for an event, with a generous deadline. The
 * server's own rules are its tests' to check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <kvstore/client.h>
#include "frame.h"
#include "internal.h"
#include "support/fixture.h"

#define B(s) ((ProtobufCBinaryData){ sizeof(s) - 1, (uint8_t *)(s) })
#define WAIT_MS 20000           /* the most any event may take to come */
#define MAX_EVENTS 64

/* What a watch's callback saw, copied out of the library's messages. */
typedef struct seen_event {
    int put;
    char key[32], value[32], prev[32];
    int has_prev, expired;
    uint64_t mod_revision, create_revision, version, ttl_ms;
} seen_event;

typedef struct watch_log {
    seen_event ev[MAX_EVENTS];
    size_t n;                   /* events */
    size_t frames;              /* callbacks with a frame */
    uint64_t watch_id;          /* as the callback was told */
    int canceled;               /* the canceled frame came ... */
    char reason[128];           /* ... with this reason */
    uint64_t compact_revision;
    int ended_null;             /* the callback ran with NULL ... */
    kv_status null_status;      /* ... kv_client_last_status() then */
    int after_end;              /* callbacks after the watch's end (a bug) */
    /* What to do in the callback, for the tests of its rules. */
    int cancel_at;              /* cancel on this frame (1-based); 0: never */
    kv_status cancel_status;
    kv_status get_status;       /* a kv_client_get() tried in the callback */
    kv_status poll_status;      /* a kv_client_poll() tried in the callback */
    int try_calls;
} watch_log;

static void copy_text(char *dst, size_t n, ProtobufCBinaryData b)
{
    snprintf(dst, n, "%.*s", (int)b.len, b.data ? (const char *)b.data : "");
}

static void record(kv_client *c, uint64_t watch_id, const Kvstore__V1__WatchResponse *r,
                   void *arg)
{
    watch_log *log = arg;

    if (log->canceled || log->ended_null)
        log->after_end++;
    log->watch_id = watch_id;
    if (!r) {
        log->ended_null = 1;
        log->null_status = kv_client_last_status(c);
        return;
    }
    log->frames++;
    assert_int_equal(r->watch_id, watch_id);
    for (size_t i = 0; i < r->n_events && log->n < MAX_EVENTS; i++) {
        const Kvstore__V1__WatchEvent *e = r->events[i];
        seen_event *s = &log->ev[log->n++];
        memset(s, 0, sizeof *s);
        s->put = e->type == KVSTORE__V1__WATCH_EVENT__TYPE__PUT;
        s->expired = e->expired;
        if (e->kv) {
            copy_text(s->key, sizeof s->key, e->kv->key);
            copy_text(s->value, sizeof s->value, e->kv->value);
            s->mod_revision = e->kv->mod_revision;
            s->create_revision = e->kv->create_revision;
            s->version = e->kv->version;
            s->ttl_ms = e->kv->ttl_ms;
        }
        if (e->prev_kv) {
            s->has_prev = 1;
            copy_text(s->prev, sizeof s->prev, e->prev_kv->value);
        }
    }
    if (r->canceled) {
        log->canceled = 1;
        snprintf(log->reason, sizeof log->reason, "%s", r->cancel_reason ? r->cancel_reason : "");
        log->compact_revision = r->compact_revision;
    }
    if (log->try_calls) {
        log->get_status = kv_client_get(c, "k", 1, NULL, NULL);
        log->poll_status = kv_client_poll(c, 0);
    }
    if (log->cancel_at && log->frames == (size_t)log->cancel_at)
        log->cancel_status = kv_client_watch_cancel(c, watch_id);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls C until LOG holds N events (or, with N 0, until the watch ended),
 * failing the test after WAIT_MS. */
static void wait_for(kv_client *c, watch_log *log, size_t n)
{
    int64_t deadline = now_ms() + WAIT_MS;

    while (n ? log->n < n : !(log->canceled || log->ended_null)) {
        kv_status st = kv_client_poll(c, 200);
        if (st != KV_OK && st != KV_DEADLINE_EXCEEDED)
            fail_msg("kv_client_poll: %s: %s", kv_status_name(st), kv_client_last_message(c));
        if (now_ms() > deadline)
            fail_msg("waited %d ms for %zu events, got %zu", WAIT_MS, n, log->n);
    }
}

/* A second connection to the fixture's server, for writes a watch sees. */
static kv_client *other_client(void **state)
{
    char err[256];
    kv_client *c = kv_client_connect(((kv_fixture *)*state)->srv.endpoint, KV_TEST_TIMEOUT_MS,
                                     err, sizeof err);
    if (!c)
        fail_msg("connect: %s", err);
    return c;
}

static Kvstore__V1__WatchRequest key_watch(const char *key)
{
    Kvstore__V1__WatchRequest req = KVSTORE__V1__WATCH_REQUEST__INIT;
    req.key = (ProtobufCBinaryData){ strlen(key), (uint8_t *)key };
    return req;
}

static Kvstore__V1__WatchRequest prefix_watch(const char *prefix)
{
    Kvstore__V1__WatchRequest req = KVSTORE__V1__WATCH_REQUEST__INIT;
    req.prefix = (ProtobufCBinaryData){ strlen(prefix), (uint8_t *)prefix };
    return req;
}

/* ---- keys that expire, against the server ---- */

static void ttl_set_and_get(void **state)
{
    kv_client *c = ((kv_fixture *)*state)->c;
    kv_client_revs revs;
    uint64_t ttl = 99, rev = 0, zero = 0;
    uint8_t *v;
    size_t vlen;

    assert_int_equal(kv_client_set_ttl(c, "k", 1, "v", 1, 60000, 0, NULL, &rev), KV_OK);
    assert_int_equal(rev, 1);
    assert_int_equal(kv_client_get_ttl(c, "k", 1, &v, &vlen, &revs, &ttl), KV_OK);
    assert_int_equal(vlen, 1);
    assert_memory_equal(v, "v", 1);
    free(v);
    assert_true(ttl > 0 && ttl <= 60000);
    assert_int_equal(revs.mod_revision, 1);

    /* keep_ttl keeps what is left; a plain set drops it. */
    assert_int_equal(kv_client_set_ttl(c, "k", 1, "v2", 2, 0, 1, NULL, NULL), KV_OK);
    assert_int_equal(kv_client_get_ttl(c, "k", 1, NULL, NULL, NULL, &ttl), KV_OK);
    assert_true(ttl > 0 && ttl <= 60000);
    kv_assert_value(c, "k", 1, "v2", 2);
    assert_int_equal(kv_client_set(c, "k", 1, "v3", 2), KV_OK);
    assert_int_equal(kv_client_get_ttl(c, "k", 1, NULL, NULL, NULL, &ttl), KV_OK);
    assert_int_equal(ttl, 0);
    /* keep_ttl on a key without one, and on a new key: none. */
    assert_int_equal(kv_client_set_ttl(c, "new", 3, "x", 1, 0, 1, NULL, NULL), KV_OK);
    assert_int_equal(kv_client_get_ttl(c, "new", 3, NULL, NULL, NULL, &ttl), KV_OK);
    assert_int_equal(ttl, 0);

    /* What the server refuses. */
    ttl = 7;
    rev = 7;
    assert_int_equal(kv_client_set_ttl(c, "k", 1, "v", 1, 1000, 1, NULL, &rev),
                     KV_INVALID_ARGUMENT);
    assert_int_equal(rev, 0);
    assert_int_equal(kv_client_set_ttl(c, "k", 1, "v", 1, KV_CLIENT_TTL_MAX_MS + 1, 0, NULL,
                                       NULL), KV_INVALID_ARGUMENT);
    assert_int_equal(kv_client_set_ttl(c, "k", 1, "v", 1, KV_CLIENT_TTL_MAX_MS, 0, NULL, NULL),
                     KV_OK);
    assert_int_equal(kv_client_get_ttl(c, "nope", 4, NULL, NULL, NULL, &ttl), KV_NOT_FOUND);
    assert_int_equal(ttl, 0);

    /* A lock: created only if absent, with a time to live. */
    assert_int_equal(kv_client_set_ttl(c, "lock", 4, "me", 2, 60000, 0, &zero, &rev), KV_OK);
    assert_int_equal(kv_client_set_ttl(c, "lock", 4, "you", 3, 60000, 0, &zero, &rev),
                     KV_FAILED_PRECONDITION);
    assert_int_equal(kv_client_get_ttl(c, "lock", 4, NULL, NULL, NULL, &ttl), KV_OK);
    assert_true(ttl > 0 && ttl <= 60000);
}

static void ttl_touch(void **state)
{
    kv_client *c = ((kv_fixture *)*state)->c;
    kv_client_revs before, after;
    uint64_t ttl;
    int found = 7;

    assert_int_equal(kv_client_touch(c, "absent", 6, 1000, &found), KV_OK);
    assert_false(found);
    assert_int_equal(kv_client_set(c, "k", 1, "v", 1), KV_OK);
    assert_int_equal(kv_client_get_rev(c, "k", 1, NULL, NULL, &before), KV_OK);
    assert_int_equal(kv_client_touch(c, "k", 1, 60000, &found), KV_OK);
    assert_true(found);
    assert_int_equal(kv_client_get_ttl(c, "k", 1, NULL, NULL, &after, &ttl), KV_OK);
    assert_true(ttl > 0 && ttl <= 60000);
    /* No new revision, the key's revisions as they were. */
    assert_int_equal(after.revision, before.revision);
    assert_int_equal(after.mod_revision, before.mod_revision);
    assert_int_equal(after.version, before.version);
    /* 0 removes it. */
    assert_int_equal(kv_client_touch(c, "k", 1, 0, NULL), KV_OK);
    assert_int_equal(kv_client_get_ttl(c, "k", 1, NULL, NULL, NULL, &ttl), KV_OK);
    assert_int_equal(ttl, 0);
    assert_int_equal(kv_client_touch(c, "k", 1, KV_CLIENT_TTL_MAX_MS + 1, &found),
                     KV_INVALID_ARGUMENT);
    assert_false(found);
}

/* A key with a short TTL goes, and a watch on it sees an expired DELETE. */
static void ttl_expiry(void **state)
{
    kv_client *c = ((kv_fixture *)*state)->c;
    kv_client *w = other_client(state);
    Kvstore__V1__WatchRequest req = key_watch("short");
    watch_log *log = calloc(1, sizeof *log);
    int64_t deadline;
    uint64_t rev;
    int found;

    assert_int_equal(kv_client_watch(w, &req, record, log, NULL), KV_OK);
    assert_int_equal(kv_client_set_ttl(c, "short", 5, "v", 1, 50, 0, NULL, &rev), KV_OK);
    wait_for(w, log, 2);
    assert_true(log->ev[0].put);
    assert_int_equal(log->ev[0].mod_revision, rev);
    assert_true(log->ev[0].ttl_ms > 0 && log->ev[0].ttl_ms <= 50);
    assert_false(log->ev[1].put);
    assert_true(log->ev[1].expired);
    assert_string_equal(log->ev[1].key, "short");
    assert_true(log->ev[1].mod_revision > rev);
    /* Gone for reads by now (it was gone at its deadline already). */
    deadline = now_ms() + WAIT_MS;
    while (kv_client_get(c, "short", 5, NULL, NULL) != KV_NOT_FOUND)
        assert_true(now_ms() < deadline);
    assert_int_equal(kv_client_touch(c, "short", 5, 1000, &found), KV_OK);
    assert_false(found);
    kv_client_free(w);
    assert_int_equal(log->ended_null, 1);
    free(log);
}

/* ---- watches, against the server ---- */

static void watch_put_then_delete(void **state)
{
    kv_client *c = ((kv_fixture *)*state)->c;
    kv_client *w = other_client(state);
    Kvstore__V1__WatchRequest req = key_watch("k");
    watch_log *log = calloc(1, sizeof *log);
    uint64_t id = 0, set_rev, clear_rev;
    int found;

    assert_int_equal(kv_client_watch(w, &req, record, log, &id), KV_OK);
    assert_true(id > 0);
    assert_int_equal(kv_client_set(c, "other", 5, "x", 1), KV_OK);    /* not watched */
    assert_int_equal(kv_client_set_rev(c, "k", 1, "v1", 2, &set_rev), KV_OK);
    assert_int_equal(kv_client_clear_rev(c, "k", 1, &found, NULL, NULL, &clear_rev), KV_OK);
    wait_for(w, log, 2);
    assert_int_equal(log->n, 2);
    assert_int_equal(log->watch_id, id);
    assert_true(log->ev[0].put);
    assert_string_equal(log->ev[0].key, "k");
    assert_string_equal(log->ev[0].value, "v1");
    assert_int_equal(log->ev[0].mod_revision, set_rev);
    assert_int_equal(log->ev[0].create_revision, set_rev);
    assert_int_equal(log->ev[0].version, 1);
    assert_int_equal(log->ev[0].ttl_ms, 0);
    assert_false(log->ev[1].put);
    assert_false(log->ev[1].expired);
    assert_string_equal(log->ev[1].key, "k");
    assert_int_equal(log->ev[1].mod_revision, clear_rev);
    assert_false(log->ev[0].has_prev);
    kv_client_free(w);
    assert_true(log->ended_null);
    assert_int_equal(log->null_status, KV_CANCELLED);    /* the client closed */
    assert_int_equal(log->after_end, 0);
    free(log);
}

typedef struct answered {
    int n;
    int order_ok;
    int events_seen[16];        /* log->n when each answer came */
    watch_log *log;
} answered;

static void on_get_counted(const Kvstore__V1__GetResponse *m, void *data)
{
    answered *a = data;
    if (m && a->n < 16) {
        char want[16];
        snprintf(want, sizeof want, "g%d", a->n);
        a->order_ok &= m->value.len == strlen(want) && memcmp(m->value.data, want, m->value.len) == 0;
        a->events_seen[a->n] = (int)a->log->n;
    }
    a->n++;
}

/* Stream frames are handed out while the client waits for any answer:
 * events of writes made (and answered) on another connection before a call
 * was sent come before that call's answer, in one stream. */
static void watch_during_other_calls(void **state)
{
    kv_client *c = ((kv_fixture *)*state)->c;
    kv_client *w = other_client(state);
    Kvstore__V1__WatchRequest req = prefix_watch("p/");
    watch_log *log = calloc(1, sizeof *log);
    answered a = { 0, 1, { 0 }, log };
    char key[8], val[8];

    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof key, "g%d", i);
        assert_int_equal(kv_client_set(c, key, strlen(key), key, strlen(key)), KV_OK);
    }
    assert_int_equal(kv_client_watch(w, &req, record, log, NULL), KV_OK);

    /* A blocking call on the watching connection. */
    assert_int_equal(kv_client_set(c, "p/1", 3, "a", 1), KV_OK);
    kv_assert_value(w, "g0", 2, "g0", 2);
    assert_int_equal(log->n, 1);
    assert_string_equal(log->ev[0].key, "p/1");

    /* Pipelined calls: the events of three more writes come among them. */
    for (int i = 2; i <= 4; i++) {
        snprintf(key, sizeof key, "p/%d", i);
        snprintf(val, sizeof val, "%d", i);
        assert_int_equal(kv_client_set(c, key, strlen(key), val, strlen(val)), KV_OK);
    }
    kv_client_pipeline_begin(w);
    for (int i = 0; i < 8; i++) {
        Kvstore__V1__GetRequest g = KVSTORE__V1__GET_REQUEST__INIT;
        snprintf(key, sizeof key, "g%d", i);
        g.key = (ProtobufCBinaryData){ strlen(key), (uint8_t *)key };
        kvstore__v1__kv__get(kv_client_service(w), &g, on_get_counted, &a);
    }
    assert_int_equal(kv_client_pipeline_end(w), KV_OK);
    assert_int_equal(a.n, 8);
    assert_true(a.order_ok);
    assert_int_equal(log->n, 4);
    assert_int_equal(a.events_seen[0], 4);  /* all before the first answer */
    for (int i = 1; i < 4; i++) {
        snprintf(key, sizeof key, "p/%d", i + 1);
        assert_string_equal(log->ev[i].key, key);
        assert_true(log->ev[i].mod_revision > log->ev[i - 1].mod_revision);
    }
    /* And the last call's status is its own, not a frame's. */
    assert_int_equal(kv_client_last_status(w), KV_OK);
    kv_client_free(w);
    free(log);
}

static void watch_prev_and_replay(void **state)
{
    kv_client *c = ((kv_fixture *)*state)->c;
    kv_client *w = other_client(state);
    Kvstore__V1__WatchRequest req = key_watch("k"), starter = key_watch("none");
    watch_log *log = calloc(1, sizeof *log), *unused = calloc(1, sizeof *unused);
    uint64_t first;

    /* The server keeps history from the first watch on. */
    assert_int_equal(kv_client_watch(w, &starter, record, unused, NULL), KV_OK);
    assert_int_equal(kv_client_set_rev(c, "k", 1, "v1", 2, &first), KV_OK);
    assert_int_equal(kv_client_set(c, "k", 1, "v2", 2), KV_OK);
    assert_int_equal(kv_client_set(c, "k", 1, "v3", 2), KV_OK);
    /* From the first write on: the three, replayed, with prev_kv. */
    req.start_revision = first;
    req.prev_kv = 1;
    assert_int_equal(kv_client_watch(w, &req, record, log, NULL), KV_OK);
    assert_int_equal(kv_client_clear(c, "k", 1, NULL, NULL, NULL), KV_OK);
    wait_for(w, log, 4);
    assert_string_equal(log->ev[0].value, "v1");
    assert_false(log->ev[0].has_prev);      /* the key did not exist before */
    assert_string_equal(log->ev[1].value, "v2");
    assert_true(log->ev[1].has_prev);
    assert_string_equal(log->ev[1].prev, "v1");
    assert_string_equal(log->ev[2].prev, "v2");
    assert_false(log->ev[3].put);
    assert_true(log->ev[3].has_prev);
    assert_string_equal(log->ev[3].prev, "v3");
    kv_client_free(w);
    assert_int_equal(unused->n, 0);
    free(log);
    free(unused);
}

static void watch_cancel(void **state)
{
    kv_client *c = ((kv_fixture *)*state)->c;
    kv_client *w = other_client(state);
    Kvstore__V1__WatchRequest req = key_watch("k");
    watch_log *log = calloc(1, sizeof *log);
    uint64_t id;

    assert_int_equal(kv_client_watch(w, &req, record, log, &id), KV_OK);
    assert_int_equal(kv_client_set(c, "k", 1, "v", 1), KV_OK);
    wait_for(w, log, 1);
    /* The canceled frame comes before the answer: seen when it returns. */
    assert_int_equal(kv_client_watch_cancel(w, id), KV_OK);
    assert_true(log->canceled);
    assert_string_equal(log->reason, "canceled by CancelWatch");
    /* Forgotten: nothing to wait for, later writes unseen, no second end. */
    assert_int_equal(kv_client_poll(w, 0), KV_FAILED_PRECONDITION);
    assert_int_equal(kv_client_set(c, "k", 1, "v2", 2), KV_OK);
    kv_assert_value(w, "k", 1, "v2", 2);
    assert_int_equal(log->n, 1);
    assert_int_equal(kv_client_watch_cancel(w, id), KV_NOT_FOUND);
    kv_client_free(w);
    assert_int_equal(log->after_end, 0);
    assert_false(log->ended_null);
    free(log);
}

/* A callback may cancel its own watch (the CancelWatch goes out with the
 * next read) and may not make calls. */
static void watch_cancel_from_callback(void **state)
{
    kv_client *c = ((kv_fixture *)*state)->c;
    kv_client *w = other_client(state);
    Kvstore__V1__WatchRequest req = prefix_watch("q/");
    watch_log *log = calloc(1, sizeof *log);

    log->cancel_at = 1;
    log->try_calls = 1;
    assert_int_equal(kv_client_watch(w, &req, record, log, NULL), KV_OK);
    assert_int_equal(kv_client_set(c, "q/1", 3, "a", 1), KV_OK);
    wait_for(w, log, 0);
    assert_int_equal(log->cancel_status, KV_OK);
    assert_int_equal(log->get_status, KV_FAILED_PRECONDITION);
    assert_int_equal(log->poll_status, KV_FAILED_PRECONDITION);
    assert_true(log->canceled);
    assert_int_equal(log->n, 1);
    /* The connection goes on. */
    kv_assert_value(w, "q/1", 3, "a", 1);
    kv_client_free(w);
    assert_int_equal(log->after_end, 0);
    free(log);
}

static int setup_short_history(void **state)
{
    static const char *const extra[] = { "--watch-history", "2", NULL };
    return kv_fixture_start(state, extra);
}

/* Starting before what the server keeps: the watch opens, then its first
 * frame cancels it with compact_revision (the oldest revision kept: at
 * most the one after the last write, as a server with no history yet,
 * which starts keeping it at the first watch, says). */
static void watch_compacted(void **state)
{
    kv_client *c = ((kv_fixture *)*state)->c;
    Kvstore__V1__WatchRequest req = prefix_watch("c/");
    watch_log *log = calloc(1, sizeof *log);
    char key[8];
    uint64_t id;

    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "c/%d", i);
        assert_int_equal(kv_client_set(c, key, strlen(key), "v", 1), KV_OK);
    }
    req.start_revision = 1;
    assert_int_equal(kv_client_watch(c, &req, record, log, &id), KV_OK);
    assert_true(id > 0);
    if (!log->canceled)
        wait_for(c, log, 0);
    assert_true(log->canceled);
    assert_int_equal(log->n, 0);
    assert_true(log->compact_revision > 1);
    assert_true(log->compact_revision <= 11);
    assert_true(log->reason[0] != 0);
    assert_int_equal(kv_client_poll(c, 0), KV_FAILED_PRECONDITION);
    free(log);
}

/* The server going away ends every watch: with NULL and the reason when
 * the connection closes under it (or by a canceled frame, should the
 * server send one as it stops). */
static void watch_connection_lost(void **state)
{
    kv_fixture *f = *state;
    kv_client *c = f->c;
    Kvstore__V1__WatchRequest req = key_watch("k");
    watch_log log[2];
    int64_t deadline = now_ms() + WAIT_MS;

    memset(log, 0, sizeof log);
    for (int i = 0; i < 2; i++)
        assert_int_equal(kv_client_watch(c, &req, record, &log[i], NULL), KV_OK);
    assert_int_equal(kv_test_server_stop(&f->srv), 0);
    f->srv.pid = 0;     /* for teardown_stopped */
    while (!(log[0].ended_null || log[0].canceled) || !(log[1].ended_null || log[1].canceled)) {
        kv_status st = kv_client_poll(c, 200);
        assert_true(st == KV_OK || st == KV_DEADLINE_EXCEEDED || st == KV_UNAVAILABLE);
        assert_true(now_ms() < deadline);
    }
    for (int i = 0; i < 2; i++)
        if (log[i].ended_null)
            assert_int_equal(log[i].null_status, KV_UNAVAILABLE);
    assert_int_equal(kv_client_get(c, "k", 1, NULL, NULL), KV_UNAVAILABLE);
    assert_int_equal(kv_client_poll(c, 0), KV_UNAVAILABLE);
    kv_client_free(c);
    f->c = NULL;
    assert_int_equal(log[0].after_end + log[1].after_end, 0);
}

/* kv_fixture_teardown for a test that may have stopped the server itself
 * (then srv.pid is 0). */
static int teardown_stopped(void **state)
{
    kv_fixture *f = *state;

    if (f->srv.pid > 0)
        return kv_fixture_teardown(state);
    kv_client_free(f->c);
    free(f);
    return 0;
}

static void watch_refused(void **state)
{
    kv_client *c = ((kv_fixture *)*state)->c;
    Kvstore__V1__WatchRequest req = KVSTORE__V1__WATCH_REQUEST__INIT;
    watch_log log = { 0 };
    uint64_t id = 9;

    /* Nothing selected. */
    assert_int_equal(kv_client_watch(c, &req, record, &log, &id), KV_INVALID_ARGUMENT);
    assert_int_equal(id, 0);
    assert_int_equal(kv_client_poll(c, 0), KV_FAILED_PRECONDITION);
    assert_int_equal(kv_client_watch_cancel(c, 12345), KV_NOT_FOUND);
    assert_int_equal(log.frames + (size_t)log.ended_null, 0);
}

/* ---- stream frames fed without a server (kvc_feed) ---- */

/* Frames RpcResponse{ID, CODE, STREAM, PAYLOAD} into OUT; returns its size. */
static size_t put_frame(uint8_t *out, uint64_t id, int code, int stream,
                        const ProtobufCMessage *payload)
{
    Kvstore__V1__RpcResponse r = KVSTORE__V1__RPC_RESPONSE__INIT;
    uint8_t body[1024];
    size_t n, pre;

    r.id = id;
    r.code = (Kvstore__V1__StatusCode)code;
    r.stream = stream;
    r.message = code ? (char *)"stream failed" : (char *)"";
    if (payload) {
        r.payload.len = protobuf_c_message_pack(payload, body);
        r.payload.data = body;
    }
    n = kvstore__v1__rpc_response__get_packed_size(&r);
    pre = kv_frame_put_prefix(out, (uint32_t)n);
    kvstore__v1__rpc_response__pack(&r, out + pre);
    return pre + n;
}

/* A WatchResponse frame for watch WATCH_ID of call ID, one PUT of KEY. */
static size_t event_frame(uint8_t *out, uint64_t id, uint64_t watch_id, const char *key,
                          int canceled)
{
    Kvstore__V1__KeyValue kv = KVSTORE__V1__KEY_VALUE__INIT;
    Kvstore__V1__WatchEvent ev = KVSTORE__V1__WATCH_EVENT__INIT, *evs[1] = { &ev };
    Kvstore__V1__WatchResponse wr = KVSTORE__V1__WATCH_RESPONSE__INIT;

    kv.key = (ProtobufCBinaryData){ strlen(key), (uint8_t *)key };
    kv.value = B("v");
    kv.mod_revision = 7;
    ev.kv = &kv;
    wr.watch_id = watch_id;
    wr.events = evs;
    wr.n_events = canceled ? 0 : 1;
    wr.canceled = canceled;
    wr.cancel_reason = canceled ? (char *)"gone" : (char *)"";
    return put_frame(out, id, 0, 1, &wr.base);
}

/* A client on a socket pair whose server end is *PEER, with the answers
 * of two Watch calls (ids 1 and 2, watch ids 41 and 42) waiting there, and
 * both watches opened, recording into LOG1 and LOG2. */
static kv_client *fed_client(int *peer, watch_log *log1, watch_log *log2)
{
    Kvstore__V1__WatchResponse opened = KVSTORE__V1__WATCH_RESPONSE__INIT;
    Kvstore__V1__WatchRequest req = prefix_watch("p");
    uint8_t buf[256];
    size_t n;
    int sv[2];
    uint64_t id;
    kv_client *c;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    c = kvc_adopt(sv[0], KV_TEST_TIMEOUT_MS);
    assert_non_null(c);
    /* Each answer written before its call, so it waits there: a frame
     * read while no call is in flight would break the connection. */
    opened.watch_id = 41;
    n = put_frame(buf, 1, 0, 0, &opened.base);
    assert_int_equal(write(sv[1], buf, n), (ssize_t)n);
    assert_int_equal(kv_client_watch(c, &req, record, log1, &id), KV_OK);
    assert_int_equal(id, 41);
    opened.watch_id = 42;
    n = put_frame(buf, 2, 0, 0, &opened.base);
    assert_int_equal(write(sv[1], buf, n), (ssize_t)n);
    assert_int_equal(kv_client_watch(c, &req, record, log2, &id), KV_OK);
    assert_int_equal(id, 42);
    *peer = sv[1];
    return c;
}

static void fed_frames_go_by_id(void **state)
{
    watch_log log1 = { 0 }, log2 = { 0 };
    uint8_t buf[512];
    size_t n;
    int peer;
    kv_client *c = fed_client(&peer, &log1, &log2);

    (void)state;
    /* Two events for watch 2, one for watch 1, one for no watch. */
    n = event_frame(buf, 2, 42, "a", 0);
    n += event_frame(buf + n, 1, 41, "b", 0);
    n += event_frame(buf + n, 99, 41, "c", 0);
    n += event_frame(buf + n, 2, 42, "d", 0);
    /* Fed a byte at a time: a frame is handled once whole. */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(kvc_feed(c, buf + i, 1), KV_OK);
    assert_int_equal(log2.n, 2);
    assert_string_equal(log2.ev[0].key, "a");
    assert_string_equal(log2.ev[1].key, "d");
    assert_int_equal(log1.n, 1);
    assert_string_equal(log1.ev[0].key, "b");
    assert_int_equal(log1.watch_id, 41);

    /* The canceled frame ends watch 1; what follows for it is skipped. */
    n = event_frame(buf, 1, 41, "", 1);
    n += event_frame(buf + n, 1, 41, "late", 0);
    assert_int_equal(kvc_feed(c, buf, n), KV_OK);
    assert_true(log1.canceled);
    assert_string_equal(log1.reason, "gone");
    assert_int_equal(log1.n, 1);

    /* An error in a stream ends that watch with NULL and its status. */
    n = put_frame(buf, 2, KV_RESOURCE_EXHAUSTED, 1, NULL);
    assert_int_equal(kvc_feed(c, buf, n), KV_OK);
    assert_true(log2.ended_null);
    assert_int_equal(log2.null_status, KV_RESOURCE_EXHAUSTED);
    assert_int_equal(kv_client_last_status(c), KV_OK);     /* kept across the callback */
    kv_client_free(c);
    close(peer);
    assert_int_equal(log1.after_end + log2.after_end, 0);
}

static void fed_bad_stream_frame_breaks_the_connection(void **state)
{
    watch_log log1 = { 0 }, log2 = { 0 };
    uint8_t buf[256];
    size_t n;
    int peer;
    kv_client *c = fed_client(&peer, &log1, &log2);

    (void)state;
    /* The payload names another watch than its call's. */
    n = event_frame(buf, 1, 42, "x", 0);
    assert_int_equal(kvc_feed(c, buf, n), KV_INTERNAL);
    assert_true(log1.ended_null && log2.ended_null);
    assert_int_equal(log1.null_status, KV_INTERNAL);
    assert_int_equal(log1.n, 0);
    assert_int_equal(kv_client_get(c, "k", 1, NULL, NULL), KV_UNAVAILABLE);
    kv_client_free(c);
    close(peer);
    assert_int_equal(log1.after_end + log2.after_end, 0);
}

/* A cancel asked from a callback goes out with the next read. */
static void fed_cancel_from_callback(void **state)
{
    watch_log log1 = { 0 }, log2 = { 0 };
    uint8_t buf[256];
    size_t n, off, len;
    ssize_t got;
    int peer;
    kv_client *c;
    Kvstore__V1__RpcRequest *req;
    Kvstore__V1__CancelWatchRequest *cw;

    (void)state;
    log1.cancel_at = 1;
    log1.try_calls = 1;
    c = fed_client(&peer, &log1, &log2);
    n = event_frame(buf, 1, 41, "a", 0);
    assert_int_equal(kvc_feed(c, buf, n), KV_OK);
    assert_int_equal(log1.cancel_status, KV_OK);
    assert_int_equal(log1.get_status, KV_FAILED_PRECONDITION);
    assert_int_equal(log1.poll_status, KV_FAILED_PRECONDITION);
    assert_int_equal(kv_client_poll(c, 0), KV_DEADLINE_EXCEEDED);   /* writes it */
    got = read(peer, buf, sizeof buf);
    assert_true(got > 0);
    /* The two Watch calls, then CancelWatch{41} as call 3. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(kv_frame_decode(buf, (size_t)got, sizeof buf, &off, &len), KV_FRAME_OK);
        req = kvstore__v1__rpc_request__unpack(NULL, len, buf + off);
        assert_non_null(req);
        if (i == 2) {
            assert_int_equal(req->id, 3);
            assert_string_equal(req->method, "/kvstore.v1.KV/CancelWatch");
            cw = kvstore__v1__cancel_watch_request__unpack(NULL, req->payload.len,
                                                            req->payload.data);
            assert_non_null(cw);
            assert_int_equal(cw->watch_id, 41);
            kvstore__v1__cancel_watch_request__free_unpacked(cw, NULL);
        }
        kvstore__v1__rpc_request__free_unpacked(req, NULL);
        memmove(buf, buf + off + len, (size_t)got - off - len);
        got -= (ssize_t)(off + len);
    }
    kv_client_free(c);
    close(peer);
    assert_true(log1.ended_null && log2.ended_null);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ttl_set_and_get, kv_fixture_setup, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(ttl_touch, kv_fixture_setup, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(ttl_expiry, kv_fixture_setup, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(watch_put_then_delete, kv_fixture_setup,
                                        kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(watch_during_other_calls, kv_fixture_setup,
                                        kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(watch_prev_and_replay, kv_fixture_setup,
                                        kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(watch_cancel, kv_fixture_setup, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(watch_cancel_from_callback, kv_fixture_setup,
                                        kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(watch_compacted, setup_short_history,
                                        kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(watch_refused, kv_fixture_setup, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(watch_connection_lost, kv_fixture_setup,
                                        teardown_stopped),
        cmocka_unit_test(fed_frames_go_by_id),
        cmocka_unit_test(fed_bad_stream_frame_breaks_the_connection),
        cmocka_unit_test(fed_cancel_from_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
