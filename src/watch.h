/* watch.h - watching keys change (v2.1): the server's history of recent
 * events, the watchers of every connection indexed by what they watch,
 * and the delivery of each write's events to the watchers it concerns as
 * stream frames of their Watch call (session.h's kept calls).
 *
 * The writers (ops.c, txn.c, expire.c) record a request's events as it
 * runs (kv_watch_put, kv_watch_delete); the service commits them when the
 * request succeeded (kv_watch_commit: into the history, then out to the
 * watchers), or drops them when it failed (kv_watch_discard: an undone
 * Txn). Every event of one revision goes to a watcher in one frame.
 *
 * Watchers of one key or of a prefix are found through a hash table of
 * the keys and prefixes watched (a prefix looked up once per distinct
 * prefix length watched), so a write costs the watchers of other keys
 * nothing but those lookups; watchers of a general range [key, end) are
 * checked one by one (they are rare; said in PROTOCOL.md).
 *
 * A watch from a past revision is served from the history while the
 * connection keeps up (kv_watch_pump, each loop turn), then goes live.
 * Memory is bounded everywhere: the history by event count and bytes, a
 * connection's unread stream by a cap past which its watches are canceled.
 * Not thread-safe; one per server, used from its loop. */
#ifndef KV_WATCH_H
#define KV_WATCH_H

#include <stddef.h>
#include <stdint.h>
#include "engine.h"
#include "kvstore/v1/kv.pb-c.h"

struct kv_call;
struct kv_session;

/* Defaults and fixed limits (documented in PROTOCOL.md and --help). */
#define KV_WATCH_DEFAULT_HISTORY 10000u
#define KV_WATCH_HISTORY_MAX_BYTES ((size_t)64 << 20)
#define KV_WATCH_MAX_PER_CONN 1024u
#define KV_WATCH_MAX_UNSENT ((size_t)8 << 20)

typedef struct kv_watch_config {
    size_t history_events;      /* --watch-history: events kept; 0 = none */
    size_t history_bytes;       /* bytes they may hold */
    size_t max_frame_bytes;     /* a stream frame's payload stays under this
                                   unless one event alone is larger */
} kv_watch_config;

typedef struct kv_watch_hub kv_watch_hub;
typedef struct kv_watcher kv_watcher;

/* A connection's watches: in its kv_service, zeroed at start. */
typedef struct kv_watch_conn {
    kv_watcher *first;
    size_t n;
} kv_watch_conn;

/* Figures for Stats. */
typedef struct kv_watch_stats {
    uint64_t watchers;          /* open */
    uint64_t events_sent;       /* events delivered in stream frames */
    uint64_t oldest;            /* the oldest revision a watch may start at */
} kv_watch_stats;

/* A new hub for ENGINE. Its history starts with the first Watch, at the
 * engine's revision then. NULL when memory is out. */
kv_watch_hub *kv_watch_hub_new(const kv_watch_config *cfg, kv_engine *engine);

/* The store jumped to another state without writes (a cluster's node
 * loaded a snapshot): every watch is canceled with REASON and
 * compact_revision the revision after the store's now, and the history is
 * dropped, since the events between are not known here. */
void kv_watch_jump(kv_watch_hub *h, const char *reason);

/* Frees the hub. Connections must have ended their watches first. */
void kv_watch_hub_free(kv_watch_hub *h);

/* What the writers ask of the hub before every write, inline: the
 * first member of the hub (watch.c keeps it current). */
typedef struct kv_watch_state {
    int recording;      /* writes must be recorded: someone watches, or a
                           history is kept (from the first Watch on) */
    int wants_prev;     /* events must carry the key as it was (PREV):
                           the history is kept, or a watcher asked prev_kv */
} kv_watch_state;

/* Whether writes must be recorded now. When not, the writers skip
 * kv_watch_put/delete altogether. A server that nobody has watched since
 * it started keeps no history: a Set costs what it did before watches. */
static inline int kv_watch_recording(const kv_watch_hub *h)
{
    return h && ((const kv_watch_state *)(const void *)h)->recording;
}

/* Whether the writers must hand the key as it was with each event. */
static inline int kv_watch_wants_prev(const kv_watch_hub *h)
{
    return h && ((const kv_watch_state *)(const void *)h)->wants_prev;
}

/* Records, for the request running, that KEY was set at REV to VALUE
 * with META (its revisions and version after the write) and a TTL of
 * TTL_MS (0: none); PREV is the key before (NULL: it did not exist;
 * borrowed for the call). */
void kv_watch_put(kv_watch_hub *h, uint64_t rev, const uint8_t *key, size_t klen,
                  const uint8_t *value, size_t vlen, const kv_meta *meta, uint64_t ttl_ms,
                  const kv_entry *prev);

/* Records that KEY was removed at REV (EXPIRED: by expiry); PREV is the
 * key before, or NULL when not kept. */
void kv_watch_delete(kv_watch_hub *h, uint64_t rev, const uint8_t *key, size_t klen,
                     const kv_entry *prev, int expired);

/* The request succeeded: its events go into the history and to the
 * watchers. */
void kv_watch_commit(kv_watch_hub *h);

/* The request failed and undid its writes: its events are dropped. */
void kv_watch_discard(kv_watch_hub *h);

/* Opens a watch for REQ on the connection of CALL, a call its handler
 * kept (kv_call_defer) and whose answer has not been sent: sends the
 * answer (WatchResponse with the new watch_id), then whatever the watch
 * must send at once (the compacted case: its last frame). Returns KV_OK
 * (the hub owns CALL from then on), or an error with *WHY (static) for a
 * request that is refused, CALL untouched (answer it with the error). */
kv_status kv_watch_open(kv_watch_hub *h, kv_watch_conn *conn, struct kv_call *call,
                        const Kvstore__V1__WatchRequest *req, uint64_t revision,
                        const char **why);

/* Ends the watch ID of CONN: its last frame says canceled. KV_OK, or
 * KV_NOT_FOUND when CONN has no such watch. */
kv_status kv_watch_cancel(kv_watch_hub *h, kv_watch_conn *conn, uint64_t id);

/* Sends what watches catching up from the history may send now (their
 * connections keeping up). Called each loop turn. */
void kv_watch_pump(kv_watch_hub *h);

/* Whether some watch is catching up (kv_watch_pump has work). */
int kv_watch_catching_up(const kv_watch_hub *h);

/* Fills *ST from H (NULL: a server without watches, all zero). */
void kv_watch_stats_get(const kv_watch_hub *h, kv_watch_stats *st);

#endif
