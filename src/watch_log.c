/* watch_log.c - event records, their pool, and the history ring; see
 * watch_log.h. */
#include <stdlib.h>
#include "watch_log.h"

/* Events of small keys and values take a block of this size from the
 * pool: every write records one while a history is kept, and malloc and
 * free cost a Set some 120 instructions (callgrind) where the pool's free
 * list costs a few. The pool grows to what the history holds and a little
 * more, POOL_CHUNK blocks at a time. */
#define POOL_BLOCK 256u
#define POOL_CHUNK 64u
#define POOL_SLACK 16u          /* chunks beyond the history's */

void wlog_init(wlog *l, size_t events, size_t max_bytes, uint64_t compacted)
{
    *l = (wlog){ 0 };
    l->cap = events;
    l->max_bytes = max_bytes;
    l->compacted = compacted;
    l->max_chunks = events / POOL_CHUNK + POOL_SLACK;
}

void wlog_free(wlog *l)
{
    wlog_cut(l, 0);
    free(l->ring);
    for (size_t i = 0; i < l->nchunks; i++)
        free(l->chunks[i]);
    free(l->chunks);
    *l = (wlog){ 0 };
}

int wlog_start(wlog *l)
{
    if (l->cap && !l->ring && !(l->ring = calloc(l->cap, sizeof *l->ring)))
        return -1;
    return 0;
}

static watch_event *unpooled(size_t size)
{
    watch_event *e = malloc(size);

    if (e)
        e->pooled = 0;
    return e;
}

watch_event *wlog_event_alloc(wlog *l, size_t size)
{
    if (size > POOL_BLOCK || (!l->pool && l->nchunks >= l->max_chunks))
        return unpooled(size);
    if (!l->pool) {
        void **chunks = realloc(l->chunks, (l->nchunks + 1) * sizeof *chunks);
        if (!chunks)
            return NULL;
        l->chunks = chunks;
        uint8_t *c = malloc((size_t)POOL_BLOCK * POOL_CHUNK);
        if (!c)
            return NULL;
        l->chunks[l->nchunks++] = c;
        for (size_t i = 0; i < POOL_CHUNK; i++) {
            watch_event *e = (watch_event *)(void *)(c + i * POOL_BLOCK);
            e->next = l->pool;
            l->pool = e;
        }
    }
    watch_event *e = l->pool;
    l->pool = e->next;
    e->pooled = 1;
    return e;
}

void wlog_event_free(wlog *l, watch_event *e)
{
    if (!e->pooled) {
        free(e);
        return;
    }
    e->next = l->pool;
    l->pool = e;
}

static void dropped(wlog *l, uint64_t rev)
{
    if (rev > l->compacted)
        l->compacted = rev;
}

static void drop_oldest(wlog *l)
{
    watch_event *e = l->ring[l->head];

    dropped(l, e->rev);
    l->bytes -= EV_SIZE(e);
    wlog_event_free(l, e);
    l->head = (l->head + 1) % l->cap;
    l->n--;
}

void wlog_cut(wlog *l, uint64_t rev)
{
    while (l->n)
        drop_oldest(l);
    dropped(l, rev);
}

void wlog_add(wlog *l, watch_event *e)
{
    size_t size = EV_SIZE(e);

    if (!l->ring || size > l->max_bytes) {
        /* Not kept: a replay through its revision cannot be served, so
         * what came before it goes too. */
        wlog_cut(l, e->rev);
        wlog_event_free(l, e);
        return;
    }
    while (l->n && (l->n == l->cap || l->bytes + size > l->max_bytes))
        drop_oldest(l);
    l->ring[(l->head + l->n) % l->cap] = e;
    l->n++;
    l->bytes += size;
}

size_t wlog_find(const wlog *l, uint64_t rev)
{
    size_t lo = 0, hi = l->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (wlog_at(l, mid)->rev < rev)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
