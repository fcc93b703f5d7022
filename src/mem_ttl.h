/* mem_ttl.h - the memory engine's deadline heap: every item that has a
 * deadline, in a binary min-heap by deadline, each item holding its own
 * place in the heap (mem_item.h), so that the earliest deadline is read in
 * O(1), the keys whose deadline has come are found without looking at the
 * others, and a key's entry is removed or moved in O(log n) when it is
 * written, touched or cleared. Holds pointers only; the items are the
 * engine's.
 *
 * Why a heap with back-pointers rather than Redis's sampling of a second
 * dict: the server must hide every expired key from counts at once, so it
 * needs all keys past their deadline, exactly; a heap gives them as a
 * subtree at its root (mem_ttl_walk), for 16 bytes a key with a deadline
 * and 4 in its item. Not thread-safe. */
#ifndef KV_MEM_TTL_H
#define KV_MEM_TTL_H

#include <stddef.h>
#include <stdint.h>
#include "mem_item.h"

typedef struct mem_ttl_entry {
    uint64_t deadline;
    mem_item *item;
} mem_ttl_entry;

/* The heap. Fields are read-only outside mem_ttl.c; zeroed is empty. */
typedef struct mem_ttl {
    mem_ttl_entry *heap;
    size_t n, cap;
} mem_ttl;

/* Frees the heap's array (not the items). */
void mem_ttl_free(mem_ttl *t);

/* Makes room for MORE entries beyond those held, so that the adds after
 * it cannot fail. Returns 0, or -1 when memory is out (nothing changed). */
int mem_ttl_reserve(mem_ttl *t, size_t more);

/* Gives back room when the heap holds under a quarter of what it has
 * room for (a mass expiry is over). Not while adds must not fail. */
void mem_ttl_shrink(mem_ttl *t);

/* Adds IT, an item with a deadline (its heap slot, mem_item_heap_slot),
 * not yet in the heap. Room must have been reserved. */
void mem_ttl_add(mem_ttl *t, mem_item *it);

/* Removes IT, which is in the heap. Allocates nothing. */
void mem_ttl_remove(mem_ttl *t, mem_item *it);

/* IT, in the heap, has a new deadline (its heap place kept in its new
 * bytes): its entry moves to where the new deadline puts it. */
void mem_ttl_changed(mem_ttl *t, mem_item *it);

/* The earliest deadline, 0 when the heap is empty. */
static inline uint64_t mem_ttl_next(const mem_ttl *t)
{
    return t->n ? t->heap[0].deadline : 0;
}

/* Calls FN(CTX, item) for every item whose deadline is at or before NOW,
 * parents before children (so roughly earliest first), until FN returns
 * nonzero. Returns that, or 0. FN must not change the heap. */
int mem_ttl_walk(const mem_ttl *t, uint64_t now, int (*fn)(void *ctx, const mem_item *it),
                 void *ctx);

#endif
