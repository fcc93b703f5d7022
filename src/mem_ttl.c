/* mem_ttl.c - the memory engine's deadline heap; see mem_ttl.h. */
#include <stdlib.h>
#include <string.h>
#include "mem_ttl.h"

/* The heap slot bytes of IT (it has a deadline). */
static uint8_t *slot_of(const mem_item *it)
{
    size_t klen;

    (void)mem_item_key(it, &klen);
    return mem_item_heap_slot((mem_item *)(uintptr_t)it, klen);
}

static size_t index_of(const mem_item *it)
{
    uint32_t i;

    memcpy(&i, slot_of(it), 4);
    return i;
}

/* Puts E at place I and tells its item. */
static void put(mem_ttl *t, size_t i, mem_ttl_entry e)
{
    uint32_t i32 = (uint32_t)i;

    t->heap[i] = e;
    memcpy(slot_of(e.item), &i32, 4);
}

/* Moves E, bound for place I, up while its parent's deadline is later. */
static void sift_up(mem_ttl *t, size_t i, mem_ttl_entry e)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (t->heap[parent].deadline <= e.deadline)
            break;
        put(t, i, t->heap[parent]);
        i = parent;
    }
    put(t, i, e);
}

/* Moves E, bound for place I, down while a child's deadline is earlier. */
static void sift_down(mem_ttl *t, size_t i, mem_ttl_entry e)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= t->n)
            break;
        if (c + 1 < t->n && t->heap[c + 1].deadline < t->heap[c].deadline)
            c++;
        if (t->heap[c].deadline >= e.deadline)
            break;
        put(t, i, t->heap[c]);
        i = c;
    }
    put(t, i, e);
}

void mem_ttl_free(mem_ttl *t)
{
    free(t->heap);
    *t = (mem_ttl){ 0 };
}

int mem_ttl_reserve(mem_ttl *t, size_t more)
{
    if (t->n + more <= t->cap)
        return 0;
    size_t cap = t->cap ? t->cap : 64;
    while (cap < t->n + more)
        cap *= 2;
    if (cap > UINT32_MAX)
        return -1;
    mem_ttl_entry *h = realloc(t->heap, cap * sizeof *h);
    if (!h)
        return -1;
    t->heap = h;
    t->cap = cap;
    return 0;
}

void mem_ttl_shrink(mem_ttl *t)
{
    if (t->cap <= 1024 || t->n >= t->cap / 4)
        return;
    size_t cap = t->cap / 2;
    mem_ttl_entry *h = realloc(t->heap, cap * sizeof *h);
    if (h) {
        t->heap = h;
        t->cap = cap;
    }
}

void mem_ttl_add(mem_ttl *t, mem_item *it)
{
    mem_item_view v;

    mem_item_open(it, &v);
    sift_up(t, t->n++, (mem_ttl_entry){ v.meta.expires_ms, it });
}

void mem_ttl_remove(mem_ttl *t, mem_item *it)
{
    size_t i = index_of(it);
    mem_ttl_entry last = t->heap[--t->n];

    if (i == t->n)
        return;
    /* The last entry fills the hole, then goes whichever way it must. */
    if (i > 0 && t->heap[(i - 1) / 2].deadline > last.deadline)
        sift_up(t, i, last);
    else
        sift_down(t, i, last);
}

void mem_ttl_changed(mem_ttl *t, mem_item *it)
{
    mem_item_view v;
    size_t i = index_of(it);

    mem_item_open(it, &v);
    mem_ttl_entry e = { v.meta.expires_ms, it };
    if (i > 0 && t->heap[(i - 1) / 2].deadline > e.deadline)
        sift_up(t, i, e);
    else
        sift_down(t, i, e);
}

static int walk_from(const mem_ttl *t, size_t i, uint64_t now,
                     int (*fn)(void *ctx, const mem_item *it), void *ctx)
{
    /* Depth is the heap's height (under 32): recursion is bounded. */
    if (i >= t->n || t->heap[i].deadline > now)
        return 0;
    int stop = fn(ctx, t->heap[i].item);
    if (!stop)
        stop = walk_from(t, 2 * i + 1, now, fn, ctx);
    if (!stop)
        stop = walk_from(t, 2 * i + 2, now, fn, ctx);
    return stop;
}

int mem_ttl_walk(const mem_ttl *t, uint64_t now, int (*fn)(void *ctx, const mem_item *it),
                 void *ctx)
{
    return walk_from(t, 0, now, fn, ctx);
}
