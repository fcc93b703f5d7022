/* watch.c - the watchers and their index, recording a request's events,
 * and their delivery as stream frames, live or replayed from the history
 * (watch_log.h); see watch.h. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "arena.h"
#include "session.h"
#include "watch.h"
#include "watch_log.h"

/* A watcher is in four doubly linked lists at once (its index node's or
 * the ranges', its connection's, the hub's catching-up list while it
 * replays, the hub's list of all), each threaded through a pair of its
 * fields: one way to put it in and take it out of each. */
#define LIST_PUSH(head, w, next, prev)                                          \
    do {                                                                        \
        (w)->prev = NULL;                                                       \
        (w)->next = *(head);                                                    \
        if (*(head))                                                            \
            (*(head))->prev = (w);                                              \
        *(head) = (w);                                                          \
    } while (0)
#define LIST_UNLINK(head, w, next, prev)                                        \
    do {                                                                        \
        if ((w)->prev)                                                          \
            (w)->prev->next = (w)->next;                                        \
        else if (*(head) == (w))                                                \
            *(head) = (w)->next;                                                \
        if ((w)->next)                                                          \
            (w)->next->prev = (w)->prev;                                        \
        (w)->next = (w)->prev = NULL;                                           \
    } while (0)

/* What a watcher watches: one key, a prefix, or a range [start, end)
 * (end_len 0: no upper bound). */
typedef enum { W_KEY, W_PREFIX, W_RANGE } watch_kind;

/* A node of the index: the watchers of one key or of one prefix. */
typedef struct watch_node {
    uint64_t hash;
    watch_kind kind;
    size_t len;
    uint8_t *bytes;
    kv_watcher *first;          /* its watchers, through kv_watcher.node_next */
    struct watch_node *next;    /* in its bucket */
} watch_node;

struct kv_watcher {
    kv_watch_hub *hub;
    kv_watch_conn *conn;
    kv_call *call;              /* the kept Watch call: frames go through it */
    uint64_t id;
    watch_kind kind;
    uint8_t *start;             /* the key, the prefix, or the range's start */
    size_t start_len;
    uint8_t *end;               /* W_RANGE: the end; NULL: none */
    size_t end_len;
    int prev_kv;
    uint64_t min_rev;           /* events before this revision are not its */
    uint64_t next_rev;          /* catching up: the next revision to send
                                   from the history; 0: live */
    watch_node *node;           /* W_KEY, W_PREFIX: its node */
    kv_watcher *node_next, *node_prev;  /* in node->first, or the range list */
    kv_watcher *conn_next, *conn_prev;  /* in conn->first */
    kv_watcher *catch_next, *catch_prev;/* in hub->catching */
    kv_watcher *all_next, *all_prev;    /* in hub->all */
    int indexed;                /* live: in the index (else catching up) */
    unsigned pumped;            /* the pump round that last looked at it */
    const watch_event **batch;  /* this commit's events for it */
    size_t nbatch, batch_cap;
    int batch_failed;           /* an event did not fit its batch */
    kv_watcher *touched_next;   /* in hub->touched */
    int touched;
};

/* A watched prefix length and how many nodes have it. */
typedef struct prefix_len {
    size_t len;
    size_t nodes;
} prefix_len;

struct kv_watch_hub {
    kv_watch_state state;       /* must be first (watch.h) */
    int started;                /* a Watch came: the history is kept */
    kv_watch_config cfg;
    kv_engine *engine;
    wlog log;                   /* the history */
    watch_event *pending, **pending_tail;
    int pending_failed;         /* an event of the request could not be kept */
    /* the index */
    watch_node **buckets;
    size_t nbuckets, nnodes;
    prefix_len *lens;
    size_t nlens;
    uint32_t first[3][256];     /* nodes of keys ([W_KEY]) and of prefixes
                                   ([W_PREFIX]) by their first byte, and
                                   ranges ([W_RANGE]) by every first byte
                                   their keys may have: a write whose key
                                   starts with a byte nothing watched can
                                   start with looks nothing up (100 watchers
                                   of other prefixes cost a Set 177
                                   instructions before) */
    kv_watcher *ranges;
    kv_watcher *catching;       /* watchers catching up from the history */
    kv_watcher *all;            /* every watcher */
    kv_watcher *touched;        /* during a commit: watchers with events */
    unsigned pump_round;
    uint64_t next_id;
    uint64_t watchers;
    uint64_t events_sent;
    int wants_prev;             /* watchers with prev_kv */
    kv_arena scratch;           /* a frame's messages, reset after each */
};

/* ---- the index -------------------------------------------------------- */

static uint64_t hash_bytes(watch_kind kind, const uint8_t *p, size_t n)
{
    return XXH3_64bits_withSeed(p, n, kind);
}

static watch_node **bucket_of(kv_watch_hub *h, uint64_t hash)
{
    return &h->buckets[hash & (h->nbuckets - 1)];
}

static watch_node *node_find(kv_watch_hub *h, watch_kind kind, const uint8_t *p, size_t n,
                             uint64_t hash)
{
    if (!h->nbuckets)
        return NULL;
    for (watch_node *x = *bucket_of(h, hash); x; x = x->next)
        if (x->hash == hash && x->kind == kind && x->len == n && memcmp(x->bytes, p, n) == 0)
            return x;
    return NULL;
}

static int grow_buckets(kv_watch_hub *h)
{
    size_t nb = h->nbuckets ? h->nbuckets * 2 : 64;
    watch_node **b = calloc(nb, sizeof *b);

    if (!b)
        return -1;
    for (size_t i = 0; i < h->nbuckets; i++) {
        for (watch_node *x = h->buckets[i], *next; x; x = next) {
            next = x->next;
            x->next = b[x->hash & (nb - 1)];
            b[x->hash & (nb - 1)] = x;
        }
    }
    free(h->buckets);
    h->buckets = b;
    h->nbuckets = nb;
    return 0;
}

/* Counts one more (DELTA 1) or one less (-1) node of prefix length LEN. */
static int count_len(kv_watch_hub *h, size_t len, int delta)
{
    for (size_t i = 0; i < h->nlens; i++) {
        if (h->lens[i].len != len)
            continue;
        if (delta > 0) {
            h->lens[i].nodes++;
        } else if (--h->lens[i].nodes == 0) {
            h->lens[i] = h->lens[--h->nlens];
        }
        return 0;
    }
    prefix_len *l = realloc(h->lens, (h->nlens + 1) * sizeof *l);
    if (!l)
        return -1;
    h->lens = l;
    h->lens[h->nlens++] = (prefix_len){ len, 1 };
    return 0;
}

/* Counts range watcher W (DELTA 1) or takes it off the count (-1) under
 * each first byte a key of [start, end) may have. */
static void count_range(kv_watch_hub *h, const kv_watcher *w, int delta)
{
    unsigned last = 255;

    if (w->end)     /* keys before end: first byte at most end's first */
        last = w->end[0];
    for (unsigned b = w->start[0]; b <= last; b++)
        h->first[W_RANGE][b] += (uint32_t)delta;
}

/* Puts W in the index. 0, or -1 when memory is out (W not in it). */
static int index_add(kv_watch_hub *h, kv_watcher *w)
{
    if (w->kind == W_RANGE) {
        LIST_PUSH(&h->ranges, w, node_next, node_prev);
        count_range(h, w, 1);
        return 0;
    }
    uint64_t hash = hash_bytes(w->kind, w->start, w->start_len);
    watch_node *x = node_find(h, w->kind, w->start, w->start_len, hash);
    if (!x) {
        if (h->nnodes >= h->nbuckets && grow_buckets(h) < 0)
            return -1;
        x = calloc(1, sizeof *x);
        if (!x)
            return -1;
        if (w->kind == W_PREFIX && count_len(h, w->start_len, 1) < 0) {
            free(x);
            return -1;
        }
        x->hash = hash;
        x->kind = w->kind;
        x->len = w->start_len;
        x->bytes = w->start;    /* the first watcher's copy; see index_remove */
        watch_node **b = bucket_of(h, hash);
        x->next = *b;
        *b = x;
        h->nnodes++;
        h->first[x->kind][x->bytes[0]]++;
    }
    w->node = x;
    LIST_PUSH(&x->first, w, node_next, node_prev);
    return 0;
}

static void index_remove(kv_watch_hub *h, kv_watcher *w)
{
    kv_watcher **head = w->kind == W_RANGE ? &h->ranges : &w->node->first;

    LIST_UNLINK(head, w, node_next, node_prev);
    if (w->kind == W_RANGE) {
        count_range(h, w, -1);
        return;
    }
    watch_node *x = w->node;
    if (x->first) {
        x->bytes = x->first->start;     /* W's copy goes with W */
        return;
    }
    watch_node **p = bucket_of(h, x->hash);
    while (*p != x)
        p = &(*p)->next;
    *p = x->next;
    if (x->kind == W_PREFIX)
        (void)count_len(h, x->len, -1);
    h->nnodes--;
    h->first[x->kind][x->bytes[0]]--;
    free(x);
}

static int range_has(const kv_watcher *w, const uint8_t *key, size_t klen)
{
    if (kv_key_cmp(key, klen, w->start, w->start_len) < 0)
        return 0;
    return !w->end || kv_key_cmp(key, klen, w->end, w->end_len) < 0;
}

/* ---- events ------------------------------------------------------------ */

static void pending_free(kv_watch_hub *h)
{
    for (watch_event *e = h->pending, *next; e; e = next) {
        next = e->next;
        wlog_event_free(&h->log, e);
    }
    h->pending = NULL;
    h->pending_tail = &h->pending;
    h->pending_failed = 0;
}

/* Keeps h->state true to the watchers and the history. */
static void state_update(kv_watch_hub *h)
{
    int history = h->started && h->log.cap;

    h->state.recording = history || h->watchers;
    h->state.wants_prev = history || h->wants_prev;
}

static watch_event *event_new(kv_watch_hub *h, uint64_t rev, const uint8_t *key, size_t klen,
                              size_t vlen, const kv_entry *prev)
{
    size_t pvlen = prev && prev->value ? prev->vlen : 0;
    watch_event *e = wlog_event_alloc(&h->log, sizeof *e + klen + vlen + pvlen);

    if (!e) {
        h->pending_failed = 1;
        return NULL;
    }
    e->rev = rev;
    e->klen = klen;
    e->vlen = vlen;
    e->pvlen = pvlen;
    e->put = e->expired = 0;
    memcpy(EV_KEY(e), key, klen);
    e->has_prev = prev != NULL;
    if (prev) {
        e->prev_meta = prev->meta;
        if (pvlen)
            memcpy(EV_PREV(e), prev->value, pvlen);
    }
    e->next = NULL;
    *h->pending_tail = e;
    h->pending_tail = &e->next;
    return e;
}

void kv_watch_put(kv_watch_hub *h, uint64_t rev, const uint8_t *key, size_t klen,
                  const uint8_t *value, size_t vlen, const kv_meta *meta, uint64_t ttl_ms,
                  const kv_entry *prev)
{
    watch_event *e = event_new(h, rev, key, klen, vlen, prev);

    if (!e)
        return;
    e->put = 1;
    e->meta = *meta;
    e->ttl_ms = ttl_ms;
    if (vlen)
        memcpy(EV_VALUE(e), value, vlen);
}

void kv_watch_delete(kv_watch_hub *h, uint64_t rev, const uint8_t *key, size_t klen,
                     const kv_entry *prev, int expired)
{
    watch_event *e = event_new(h, rev, key, klen, 0, prev);

    if (e)
        e->expired = (uint8_t)expired;
}

void kv_watch_discard(kv_watch_hub *h)
{
    if (h)
        pending_free(h);
}

/* ---- frames ------------------------------------------------------------- */

static void *scratch(kv_watch_hub *h, size_t n)
{
    return kv_arena_alloc(&h->scratch, n);
}

/* E as a WatchEvent for W, in the scratch arena; NULL when memory is out. */
static Kvstore__V1__WatchEvent *event_message(kv_watch_hub *h, const kv_watcher *w,
                                              const watch_event *e)
{
    Kvstore__V1__WatchEvent *m = scratch(h, sizeof *m);
    Kvstore__V1__KeyValue *kv = scratch(h, sizeof *kv);

    if (!m || !kv)
        return NULL;
    kvstore__v1__watch_event__init(m);
    kvstore__v1__key_value__init(kv);
    kv->key = (ProtobufCBinaryData){ e->klen, (uint8_t *)EV_KEY(e) };
    if (e->put) {
        m->type = KVSTORE__V1__WATCH_EVENT__TYPE__PUT;
        kv->value = (ProtobufCBinaryData){ e->vlen, e->vlen ? (uint8_t *)EV_VALUE(e) : NULL };
        kv->create_revision = e->meta.create_revision;
        kv->mod_revision = e->meta.mod_revision;
        kv->version = e->meta.version;
        kv->ttl_ms = e->ttl_ms;
    } else {
        m->type = KVSTORE__V1__WATCH_EVENT__TYPE__DELETE;
        kv->mod_revision = e->rev;
        m->expired = e->expired;
    }
    m->kv = kv;
    if (w->prev_kv && e->has_prev) {
        Kvstore__V1__KeyValue *p = scratch(h, sizeof *p);
        if (!p)
            return NULL;
        kvstore__v1__key_value__init(p);
        p->key = kv->key;
        p->value = (ProtobufCBinaryData){ e->pvlen, e->pvlen ? (uint8_t *)EV_PREV(e) : NULL };
        p->create_revision = e->prev_meta.create_revision;
        p->mod_revision = e->prev_meta.mod_revision;
        p->version = e->prev_meta.version;
        m->prev_kv = p;
    }
    return m;
}

static void watcher_free(kv_watcher *w, const char *reason, uint64_t compact_revision);

/* Sends W one frame of EVENTS[0..N) (N 0: only the cancel, when REASON). */
static int send_frame(kv_watcher *w, Kvstore__V1__WatchEvent **events, size_t n,
                      const char *reason, uint64_t compact_revision)
{
    Kvstore__V1__WatchResponse r = KVSTORE__V1__WATCH_RESPONSE__INIT;

    r.watch_id = w->id;
    r.n_events = n;
    r.events = events;
    if (reason) {
        r.canceled = 1;
        r.cancel_reason = (char *)reason;
        r.compact_revision = compact_revision;
    }
    int rc = kv_call_stream(w->call, &r.base);
    if (rc == 0)
        w->hub->events_sent += n;
    return rc;
}

/* A rough size of E in a frame, to cut frames under the limit. */
static size_t event_size(const kv_watcher *w, const watch_event *e)
{
    return 64 + 2 * e->klen + e->vlen + (w->prev_kv && e->has_prev ? e->pvlen + 40 : 0);
}

/* Whether W's connection is over the unread cap. */
static int too_slow(const kv_watcher *w)
{
    const kv_session *s = w->call->session;

    return s && kv_session_unsent(s) > KV_WATCH_MAX_UNSENT;
}

static void cancel_conn(kv_watch_conn *conn, const char *reason);

/* Sends W one frame of EV[0..N), its messages built in the scratch arena
 * (reset after). Returns 0, or -1 when memory is out. */
static int send_events(kv_watcher *w, const watch_event *const *ev, size_t n)
{
    kv_watch_hub *h = w->hub;
    Kvstore__V1__WatchEvent **msgs = scratch(h, n * sizeof *msgs);
    int rc = msgs ? 0 : -1;

    for (size_t i = 0; i < n && rc == 0; i++)
        if (!(msgs[i] = event_message(h, w, ev[i])))
            rc = -1;
    if (rc == 0)
        rc = send_frame(w, msgs, n, NULL, 0);
    kv_arena_reset(&h->scratch);
    return rc;
}

/* Sends W the events EV[0..N) of one revision (or of several, when
 * catching up), in frames under the frame limit. The unread cap is
 * checked before every frame: one request's events (a ClearRange of many
 * keys) must not pass it either. Returns 0, or -1 when W was canceled
 * (and freed). */
static int deliver(kv_watcher *w, const watch_event *const *ev, size_t n)
{
    size_t max = w->hub->cfg.max_frame_bytes;
    size_t limit = max > 256 ? max - 128 : 128;

    for (size_t first = 0, i = 0; first < n; first = i) {
        size_t size = event_size(w, ev[i++]);
        while (i < n && size + event_size(w, ev[i]) <= limit)
            size += event_size(w, ev[i++]);
        if (too_slow(w)) {
            cancel_conn(w->conn, "watcher too slow: more than 8 MiB of its stream unread; "
                        "its watches are canceled");
            return -1;
        }
        if (send_events(w, ev + first, i - first) < 0) {
            watcher_free(w, "server out of memory for this watch's events", 0);
            return -1;
        }
    }
    return 0;
}

/* ---- the history ------------------------------------------------------- */

/* The first Watch since the server started: from now on every write is
 * kept (the ring is made now, so a server nobody watches holds none), the
 * history beginning after REVISION. Returns 0, or -1 when memory is out
 * (nothing started). */
static int history_start(kv_watch_hub *h, uint64_t revision)
{
    if (wlog_start(&h->log) < 0)
        return -1;
    if (h->log.compacted < revision)
        h->log.compacted = revision;
    h->started = 1;
    state_update(h);
    return 0;
}

/* ---- delivery ---------------------------------------------------------- */

/* Events a watcher's batch keeps room for between writes. */
#define BATCH_KEEP 256u

static int batch_push(kv_watcher *w, const watch_event *e)
{
    if (w->nbatch == w->batch_cap) {
        size_t cap = w->batch_cap ? w->batch_cap * 2 : 8;
        const watch_event **b = realloc(w->batch, cap * sizeof *b);
        if (!b)
            return -1;
        w->batch = b;
        w->batch_cap = cap;
    }
    w->batch[w->nbatch++] = e;
    return 0;
}

/* Adds E to the batch of W, a live watcher, if W wants it. */
static void offer(kv_watch_hub *h, kv_watcher *w, const watch_event *e)
{
    if (e->rev < w->min_rev || w->batch_failed)
        return;
    if (batch_push(w, e) < 0)
        w->batch_failed = 1;    /* canceled in kv_watch_commit */
    if (!w->touched) {
        w->touched = 1;
        w->touched_next = h->touched;
        h->touched = w;
    }
}

/* The watchers of E's key: of the key, of its prefixes, of ranges. */
static void match(kv_watch_hub *h, const watch_event *e)
{
    const uint8_t *key = EV_KEY(e);
    watch_node *x = h->first[W_KEY][key[0]]
                        ? node_find(h, W_KEY, key, e->klen, hash_bytes(W_KEY, key, e->klen))
                        : NULL;

    for (kv_watcher *w = x ? x->first : NULL; w; w = w->node_next)
        offer(h, w, e);
    for (size_t i = 0; i < h->nlens && h->first[W_PREFIX][key[0]]; i++) {
        size_t len = h->lens[i].len;
        if (len > e->klen)
            continue;
        x = node_find(h, W_PREFIX, key, len, hash_bytes(W_PREFIX, key, len));
        for (kv_watcher *w = x ? x->first : NULL; w; w = w->node_next)
            offer(h, w, e);
    }
    for (kv_watcher *w = h->first[W_RANGE][key[0]] ? h->ranges : NULL; w; w = w->node_next)
        if (range_has(w, key, e->klen))
            offer(h, w, e);
}

void kv_watch_commit(kv_watch_hub *h)
{
    if (!h || !h->pending)
        return;
    if (h->pending_failed) {
        /* An event is missing: no watcher may go on as if it had seen
         * everything, nor a replay read past the gap. */
        uint64_t rev = h->pending->rev;
        pending_free(h);
        wlog_cut(&h->log, rev);
        while (h->all)
            watcher_free(h->all, "server out of memory for watch events", 0);
        return;
    }
    if (h->watchers)
        for (watch_event *e = h->pending; e; e = e->next)
            match(h, e);
    /* Delivering may cancel watchers (a slow connection's, all of them):
     * watcher_free takes them off this list. */
    while (h->touched) {
        kv_watcher *w = h->touched;
        h->touched = w->touched_next;
        w->touched = 0;
        size_t n = w->nbatch;
        w->nbatch = 0;
        if (w->batch_failed) {
            watcher_free(w, "server out of memory for this watch's events", 0);
        } else if (deliver(w, w->batch, n) == 0 && w->batch_cap > BATCH_KEEP) {
            free(w->batch);         /* a large write's: not kept for the next */
            w->batch = NULL;
            w->batch_cap = 0;
        }
    }
    for (watch_event *e = h->pending, *next; e; e = next) {
        next = e->next;
        wlog_add(&h->log, e);
    }
    h->pending = NULL;
    h->pending_tail = &h->pending;
}

/* ---- watchers ---------------------------------------------------------- */

/* Takes W out of every list and frees it, leaving its call alone. */
static void watcher_drop(kv_watcher *w)
{
    kv_watch_hub *h = w->hub;

    if (w->indexed)
        index_remove(h, w);
    else
        LIST_UNLINK(&h->catching, w, catch_next, catch_prev);
    if (w->touched) {
        kv_watcher **p = &h->touched;
        while (*p != w)
            p = &(*p)->touched_next;
        *p = w->touched_next;
    }
    LIST_UNLINK(&h->all, w, all_next, all_prev);
    LIST_UNLINK(&w->conn->first, w, conn_next, conn_prev);
    w->conn->n--;
    h->watchers--;
    h->wants_prev -= w->prev_kv;
    state_update(h);
    w->call->on_close = NULL;
    free(w->batch);
    free(w->start);
    free(w);
}

/* Ends W: with REASON, its last frame says canceled first (when its
 * connection is still there); then its call and W are freed. */
static void watcher_free(kv_watcher *w, const char *reason, uint64_t compact_revision)
{
    kv_call *call = w->call;

    if (reason && call->session)
        (void)send_frame(w, NULL, 0, reason, compact_revision);
    watcher_drop(w);
    kv_call_end(call);
}

static void cancel_conn(kv_watch_conn *conn, const char *reason)
{
    while (conn->first)
        watcher_free(conn->first, reason, 0);
}

/* kv_call.on_close: the connection is gone. */
static void watcher_closed(kv_call *call, void *arg)
{
    (void)call;
    watcher_free(arg, NULL, 0);
}

/* Reads REQ's selection into W (copies in one block). */
static kv_status select_keys(kv_watcher *w, const Kvstore__V1__WatchRequest *req,
                             const char **why)
{
    const ProtobufCBinaryData *a = &req->key, *b = &req->end, *p = &req->prefix;

    if (p->len && (a->len || b->len)) {
        *why = "prefix cannot be given together with key or end";
        return KV_INVALID_ARGUMENT;
    }
    if (!p->len && !a->len) {
        *why = b->len ? "end needs a key (the range's start)"
                      : "nothing to watch: give key, key and end, or prefix";
        return KV_INVALID_ARGUMENT;
    }
    const ProtobufCBinaryData *first = p->len ? p : a;
    int unbounded = b->len == 1 && b->data[0] == 0;     /* etcd's "\0": no end */
    size_t elen = b->len && !unbounded ? b->len : 0;
    w->start = malloc(first->len + elen);
    if (!w->start) {
        *why = "server out of memory";
        return KV_RESOURCE_EXHAUSTED;
    }
    memcpy(w->start, first->data, first->len);
    w->start_len = first->len;
    w->kind = p->len ? W_PREFIX : b->len ? W_RANGE : W_KEY;
    if (elen) {
        w->end = w->start + first->len;
        memcpy(w->end, b->data, elen);
        w->end_len = elen;
    }
    return KV_OK;
}

kv_status kv_watch_open(kv_watch_hub *h, kv_watch_conn *conn, kv_call *call,
                        const Kvstore__V1__WatchRequest *req, uint64_t revision,
                        const char **why)
{
    if (conn->n >= KV_WATCH_MAX_PER_CONN) {
        *why = "too many watches on this connection (at most 1024); cancel some first";
        return KV_RESOURCE_EXHAUSTED;
    }
    kv_watcher *w = calloc(1, sizeof *w);
    if (!w) {
        *why = "server out of memory";
        return KV_RESOURCE_EXHAUSTED;
    }
    kv_status st = select_keys(w, req, why);
    if (st != KV_OK) {
        free(w);
        return st;
    }
    if (!h->started && history_start(h, revision) < 0) {
        free(w->start);
        free(w);
        *why = "server out of memory for the watch history (--watch-history)";
        return KV_RESOURCE_EXHAUSTED;
    }
    w->hub = h;
    w->conn = conn;
    w->call = call;
    w->prev_kv = req->prev_kv;
    w->min_rev = req->start_revision ? req->start_revision : revision + 1;
    /* From the past: the history holds what came after `compacted`; with
     * no history, nothing before now is kept. */
    if (!h->log.cap && h->log.compacted < revision)
        h->log.compacted = revision;
    int compacted = req->start_revision && req->start_revision <= revision &&
                    req->start_revision <= h->log.compacted;
    if (req->start_revision && req->start_revision <= revision && !compacted)
        w->next_rev = req->start_revision;
    if (!w->next_rev && index_add(h, w) < 0) {
        free(w->start);
        free(w);
        *why = "server out of memory";
        return KV_RESOURCE_EXHAUSTED;
    }
    w->indexed = !w->next_rev;
    w->id = ++h->next_id;
    LIST_PUSH(&h->all, w, all_next, all_prev);
    LIST_PUSH(&conn->first, w, conn_next, conn_prev);
    conn->n++;
    h->watchers++;
    h->wants_prev += w->prev_kv;
    state_update(h);
    if (w->next_rev)
        LIST_PUSH(&h->catching, w, catch_next, catch_prev);
    call->on_close = watcher_closed;
    call->on_close_arg = w;

    Kvstore__V1__WatchResponse r = KVSTORE__V1__WATCH_RESPONSE__INIT;
    r.watch_id = w->id;
    if (kv_call_send(call, &r.base) < 0) {
        watcher_drop(w);    /* the handler answers the call with the error */
        *why = "server out of memory for the answer";
        return KV_RESOURCE_EXHAUSTED;
    }
    if (compacted)
        watcher_free(w, "start_revision is older than the history kept (--watch-history): "
                     "the events it asks for were dropped; compact_revision is the oldest "
                     "revision a watch may start at", h->log.compacted + 1);
    else if (w->next_rev)
        kv_watch_pump(h);
    return KV_OK;
}

kv_status kv_watch_cancel(kv_watch_hub *h, kv_watch_conn *conn, uint64_t id)
{
    (void)h;
    for (kv_watcher *w = conn->first; w; w = w->conn_next) {
        if (w->id == id) {
            watcher_free(w, "canceled by CancelWatch", 0);
            return KV_OK;
        }
    }
    return KV_NOT_FOUND;
}

/* How much a catching-up watcher may leave unread before it waits. */
#define CATCH_UP_PAUSE ((size_t)1 << 20)

/* Sends W what the history has for it while its connection keeps up;
 * then it goes live. */
static void catch_up(kv_watch_hub *h, kv_watcher *w)
{
    const watch_event **ev = NULL;
    size_t cap = 0;

    for (;;) {
        if (w->next_rev <= h->log.compacted) {
            watcher_free(w, "the watch fell behind the history kept (--watch-history): the "
                         "events it was still to read were dropped", h->log.compacted + 1);
            break;
        }
        size_t i = wlog_find(&h->log, w->next_rev);
        if (i == h->log.n) {                    /* up to date: live from now */
            if (index_add(h, w) < 0) {
                watcher_free(w, "server out of memory", 0);
                break;
            }
            LIST_UNLINK(&h->catching, w, catch_next, catch_prev);
            w->indexed = 1;
            w->min_rev = w->next_rev;
            w->next_rev = 0;
            break;
        }
        if (w->call->session && kv_session_unsent(w->call->session) > CATCH_UP_PAUSE)
            break;
        /* One revision's events of W's keys. */
        uint64_t rev = wlog_at(&h->log, i)->rev;
        size_t n = 0;
        for (; i < h->log.n && wlog_at(&h->log, i)->rev == rev; i++) {
            const watch_event *e = wlog_at(&h->log, i);
            int mine = w->kind == W_KEY ? e->klen == w->start_len &&
                                          memcmp(EV_KEY(e), w->start, e->klen) == 0
                     : w->kind == W_PREFIX ? e->klen >= w->start_len &&
                                             memcmp(EV_KEY(e), w->start, w->start_len) == 0
                     : range_has(w, EV_KEY(e), e->klen);
            if (!mine)
                continue;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                const watch_event **b = realloc(ev, nc * sizeof *b);
                if (!b) {
                    watcher_free(w, "server out of memory", 0);
                    free(ev);
                    return;
                }
                ev = b;
                cap = nc;
            }
            ev[n++] = e;
        }
        w->next_rev = rev + 1;
        if (n && deliver(w, ev, n) < 0)
            break;
    }
    free(ev);
}

void kv_watch_pump(kv_watch_hub *h)
{
    /* catch_up may free any watcher of the connection it serves (a slow
     * one's), so the list is looked at afresh each time, skipping those
     * this round has seen. */
    unsigned round = ++h->pump_round;

    for (;;) {
        kv_watcher *w = h->catching;
        while (w && w->pumped == round)
            w = w->catch_next;
        if (!w)
            return;
        w->pumped = round;
        catch_up(h, w);
    }
}

int kv_watch_catching_up(const kv_watch_hub *h)
{
    return h && h->catching != NULL;
}

/* ---- the hub ----------------------------------------------------------- */

kv_watch_hub *kv_watch_hub_new(const kv_watch_config *cfg, kv_engine *engine)
{
    kv_watch_hub *h = calloc(1, sizeof *h);

    if (!h)
        return NULL;
    h->cfg = *cfg;
    h->engine = engine;
    wlog_init(&h->log, cfg->history_events, cfg->history_bytes, kv_engine_revision(engine));
    h->pending_tail = &h->pending;
    kv_arena_init(&h->scratch, 16 << 10);
    return h;
}

void kv_watch_hub_free(kv_watch_hub *h)
{
    if (!h)
        return;
    pending_free(h);
    wlog_free(&h->log);
    for (size_t i = 0; i < h->nbuckets; i++) {
        for (watch_node *x = h->buckets[i], *next; x; x = next) {
            next = x->next;
            free(x);
        }
    }
    free(h->buckets);
    free(h->lens);
    kv_arena_free(&h->scratch);
    free(h);
}

void kv_watch_jump(kv_watch_hub *h, const char *reason)
{
    if (!h)
        return;
    uint64_t rev = kv_engine_revision(h->engine);
    pending_free(h);
    wlog_cut(&h->log, rev);
    while (h->all)
        watcher_free(h->all, reason, rev + 1);
}

void kv_watch_stats_get(const kv_watch_hub *h, kv_watch_stats *st)
{
    st->watchers = h ? h->watchers : 0;
    st->events_sent = h ? h->events_sent : 0;
    st->oldest = 0;
    if (!h)
        return;
    /* Without a history (none kept, or no Watch yet) nothing before now
     * is available: the next revision is the oldest a watch may ask. */
    uint64_t compacted = h->log.compacted;
    uint64_t now = kv_engine_revision(h->engine);
    if ((!h->started || !h->log.cap) && compacted < now)
        compacted = now;
    st->oldest = compacted + 1;
}
