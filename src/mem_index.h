/* mem_index.h - the memory engine's ordered index: a B+tree of item
 * pointers in key order (kv_key_cmp), with the number of keys under every
 * child, so that walks start anywhere in O(log n) and counts of any range
 * cost O(log n). It holds pointers only: the items are the engine's
 * (mem_item.h), which allocates and frees them. Not thread-safe. */
#ifndef KV_MEM_INDEX_H
#define KV_MEM_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include "mem_item.h"

typedef struct mem_leaf mem_leaf;

/* The index. Fields are private; zeroed (or mem_index_init) is empty. */
typedef struct mem_index {
    void *root;         /* a mem_leaf at height 0, else an inner node;
                           NULL when the index has never held a key */
    unsigned height;    /* inner levels above the leaves */
    int held;           /* see mem_index_hold */
    uint64_t count;     /* items */
    size_t bytes;       /* the nodes' and separators' bytes */
} mem_index;

/* A position: the item at LEAF's slot I, or none when LEAF is NULL.
 * Valid until the next insert or removal. */
typedef struct mem_index_pos {
    mem_leaf *leaf;
    unsigned i;
} mem_index_pos;

void mem_index_init(mem_index *ix);

/* Frees the nodes (not the items they point at). */
void mem_index_free(mem_index *ix);

/* Adds IT, whose key the index does not hold. Returns 0, or -1 when
 * memory is out (the index unchanged). Keeps IT's pointer, not a copy:
 * IT must stay where it is until removed or replaced. */
int mem_index_insert(mem_index *ix, mem_item *it);

/* Removes the item whose key is KEY (KLEN bytes), which the index holds,
 * and merges nodes left underfull unless the index is held. Allocates
 * nothing, so it cannot fail. */
void mem_index_remove(mem_index *ix, const uint8_t *key, size_t klen);

/* Points the entry of OLD at IT instead: same key, a new place in memory.
 * OLD must still be readable (it is freed after). */
void mem_index_replace(mem_index *ix, const mem_item *old, mem_item *it);

/* HOLD 1: until released, removals leave nodes as they are and a full
 * leaf always splits (never hands entries to a sibling), so leaves only
 * ever divide: a key removed while held, put back once everything done
 * after its removal is undone, finds its leaf with the room it left, and
 * that insert allocates nothing (an atomic batch's undo cannot fail).
 * HOLD 0 releases; then mem_index_tidy() each key removed while held. */
void mem_index_hold(mem_index *ix, int hold);

/* Merges the nodes on the path to KEY that removals left underfull. */
void mem_index_tidy(mem_index *ix, const uint8_t *key, size_t klen);

/* The position of the first item with a key at or after KEY (KLEN 0: the
 * first item); none past the end. */
mem_index_pos mem_index_seek(const mem_index *ix, const uint8_t *key, size_t klen);

/* The position of the last item with a key before KEY (KLEN 0: the last
 * item); none before the start. */
mem_index_pos mem_index_seek_before(const mem_index *ix, const uint8_t *key, size_t klen);

/* The item at POS, or NULL when none. */
mem_item *mem_index_at(mem_index_pos pos);

/* POS after the removal of its item from a held index (mem_index_hold),
 * whose nodes stay where they were: the position of the item that came
 * next, or none. */
void mem_index_settle(mem_index_pos *pos);

/* The next and the previous position (none past either end). */
void mem_index_next(mem_index_pos *pos);
void mem_index_prev(mem_index_pos *pos);

/* The number of items with keys before KEY (KLEN 0: none are). */
uint64_t mem_index_rank(const mem_index *ix, const uint8_t *key, size_t klen);

#endif
