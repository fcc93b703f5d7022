/* watch_log.h - what watches remember of writes: the event records (a
 * key, its new value, the value before, their revisions), and the history,
 * a ring of the latest events in revision order bounded by count and bytes,
 * which keeps the newest revision it has dropped (a watch from before it
 * is compacted). Events come from a pool sized to the history, as every
 * write records one while a history is kept. Knows no watcher; watch.c
 * records, delivers and replays through it. Not thread-safe. */
#ifndef KV_WATCH_LOG_H
#define KV_WATCH_LOG_H

#include <stddef.h>
#include <stdint.h>
#include "engine.h"

/* One event, with its bytes: key, value (PUT), the previous value. */
typedef struct watch_event {
    uint64_t rev;
    uint64_t ttl_ms;            /* PUT: the TTL the write gave */
    kv_meta meta;               /* PUT: the key after the write */
    kv_meta prev_meta;
    size_t klen, vlen, pvlen;
    uint8_t put, expired, has_prev;
    uint8_t pooled;             /* private: a block of the pool */
    struct watch_event *next;   /* the owner's (a pending list) until it is
                                   given to the log */
    uint8_t bytes[];            /* key, value, previous value */
} watch_event;

#define EV_KEY(e) ((e)->bytes)
#define EV_VALUE(e) ((e)->bytes + (e)->klen)
#define EV_PREV(e) ((e)->bytes + (e)->klen + (e)->vlen)
#define EV_SIZE(e) (sizeof(watch_event) + (e)->klen + (e)->vlen + (e)->pvlen)

/* The log. Fields are read-only outside watch_log.c. */
typedef struct wlog {
    watch_event **ring;         /* oldest first: ring[(head + i) % cap], i < n;
                                   NULL until wlog_start */
    size_t cap, head, n;
    size_t bytes, max_bytes;
    uint64_t compacted;         /* the newest revision an event was dropped
                                   of (or that came before the history) */
    watch_event *pool;          /* free blocks */
    void **chunks;              /* the pool's memory */
    size_t nchunks, max_chunks;
} wlog;

/* Prepares L for at most EVENTS events (0: none kept) of MAX_BYTES bytes
 * in all, every revision up to COMPACTED counting as dropped. Allocates
 * nothing. */
void wlog_init(wlog *l, size_t events, size_t max_bytes, uint64_t compacted);

/* Frees the events kept and the pool. */
void wlog_free(wlog *l);

/* Makes the ring, so that events can be kept. Returns 0, or -1 when
 * memory is out. */
int wlog_start(wlog *l);

/* An event of SIZE bytes (header included), uninitialised; from the pool
 * when it fits a block and the pool may grow, else malloc'd (so that the
 * events of one large write go back to the system once dropped). NULL
 * when memory is out. */
watch_event *wlog_event_alloc(wlog *l, size_t size);

/* Frees an event that the log does not hold. */
void wlog_event_free(wlog *l, watch_event *e);

/* Keeps E (the log takes it; its revision at or after every kept one),
 * dropping the oldest as needed; with no ring, or too large to keep, E is
 * freed and counts as dropped (and everything before it too). */
void wlog_add(wlog *l, watch_event *e);

/* Drops every event kept, up to REV counting as dropped. */
void wlog_cut(wlog *l, uint64_t rev);

/* The place of the first event with a revision at or after REV (n when
 * none). */
size_t wlog_find(const wlog *l, uint64_t rev);

/* The event at place I (I < n). */
static inline watch_event *wlog_at(const wlog *l, size_t i)
{
    return l->ring[(l->head + i) % l->cap];
}

#endif
