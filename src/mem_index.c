/* mem_index.c - the memory engine's ordered index (mem_index.h): a B+tree
 * whose leaves hold item pointers in key order, linked both ways for walks
 * in either direction, and whose inner nodes hold, for every child, the
 * number of keys under it and (but the first) a separator: the engine's
 * own copy of a key, at or below every key of that child and above every
 * key of the one before. Owns the nodes and the separators, not the items.
 *
 * Why this shape. Memory first: the table and the items already take 98
 * of the 115 bytes a key allowed at 1M keys (engine_memory.c). A leaf
 * costs 8 bytes a key when full, since the items carry their keys; links
 * inside the items (a red-black or AVL tree: 24 bytes and more) would push
 * a 16/32-byte item out of its 64-byte chunk, and a skip list needs 1.33
 * pointers a key plus a level, and a width per link for counts. An
 * adaptive radix tree stores no key but needs a node or more per key at
 * these sizes. Counts next: Range answers the count of its whole range on
 * every page, so count() must not walk the range; with a count per child,
 * it is two descents, O(log n) (1M keys paged 1,000 at a time: 13 ms
 * in all). Separators are copies, so removing or moving an item never
 * leaves an inner node pointing at freed bytes. Keys are compared 8 bytes
 * at a time, inline (key_cmp).
 *
 * Fill. A full leaf first gives a few entries (up to SHIFT_MAX) to a
 * sibling under the same parent that has room, and splits only when
 * neither has: then in halves, except in the last leaf of the tree, which
 * splits where the new key goes (the first leaf likewise, mirrored): an
 * ascending load leaves every leaf full behind it. Inner nodes split the
 * same way. Measured at 1M keys (16-byte keys, 32-byte values; bytes a key
 * of RSS for the whole engine): splitting unevenly only for a key past the
 * last leaf's end, 106.5 ascending, 110.5 random, but 115 loaded into
 * kvstored by kvbench's 50 clients, whose Sets arrive a few dozen keys out
 * of order; splitting the last leaf where the key goes, 111 there (111.5
 * in a driver that mimics them); with the shift to a sibling, 106.4
 * ascending, 107.1 interleaved (kvstored: 106), 108.1 random, for some 80
 * instructions more a random insert (SHIFT_MAX 4: 107.9 interleaved, 108.4
 * random; 8: 107.5, 108.3; 16 chosen). Leaves of 62 and 254 pointers:
 * 107.1 and 106.1 ascending, 111.6 and 109.9 random (126: 106.5, 110.5),
 * and 254 costs more instructions and time an insert: 126 it is.
 *
 * Removals merge a node that falls under a quarter full into a neighbour
 * when both fit in three quarters of a node (no split right after), and
 * drop any subtree left with no keys. Merging allocates nothing, so a
 * removal cannot fail; inserting allocates first (every node and
 * separator a split cascade needs) and changes nothing when memory is out.
 * While held (an atomic batch), removals leave nodes be and full leaves
 * always split, never shift: leaves then only ever divide, so a key put
 * back by the batch's undo finds its leaf with the room it left. */
#include <stdlib.h>
#include <string.h>
#include "mem_index.h"

/* A leaf of 126 pointers is 1,032 bytes, a 1,040-byte malloc chunk. */
#define LEAF_CAP 126
#define INNER_CAP 64
/* A full leaf hands entries to a sibling with at least SHIFT_MIN free
 * slots, half of them, at most SHIFT_MAX (see shift_to_sibling). */
#define SHIFT_MIN 2
#define SHIFT_MAX 16
/* No tree gets this tall (64 children a node, 126 keys a leaf: the 5th
 * level holds 2^31 keys); a fixed path keeps descents allocation-free. */
#define MAX_HEIGHT 32

struct mem_leaf {
    mem_leaf *prev, *next;
    unsigned n;
    mem_item *items[LEAF_CAP];
};

typedef struct mem_sep {
    size_t len;
    uint8_t key[];
} mem_sep;

typedef struct mem_inner {
    unsigned n;                     /* children, 1..INNER_CAP */
    void *child[INNER_CAP];         /* mem_inner, or mem_leaf one level up
                                       from the leaves */
    uint64_t count[INNER_CAP];      /* keys under child[i] */
    mem_sep *sep[INNER_CAP];        /* sep[i], i >= 1: child i's keys are at
                                       or after it, child i-1's before it;
                                       sep[0] is NULL */
} mem_inner;

/* The way from the root to a leaf: node[l] at level l (0: the root) and
 * the child taken there. */
typedef struct mem_path {
    mem_inner *node[MAX_HEIGHT];
    unsigned idx[MAX_HEIGHT];
    mem_leaf *leaf;
} mem_path;

/* kv_key_cmp() inlined, eight bytes at a time: a descent compares keys
 * some 20 times at 1M keys, and memcmp through a call into engine.c cost
 * a new key 800 instructions of the 1,600 (callgrind, 16-byte keys). */
static inline int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen, i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            x = __builtin_bswap64(x);
            y = __builtin_bswap64(y);
#endif
            return x < y ? -1 : 1;
        }
    }
    for (; i < n; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return alen < blen ? -1 : alen > blen;
}

static int sep_cmp(const mem_sep *s, const uint8_t *key, size_t klen)
{
    return key_cmp(s->key, s->len, key, klen);
}

static int item_cmp(const mem_item *it, const uint8_t *key, size_t klen)
{
    size_t n;
    const uint8_t *p = mem_item_key(it, &n);

    return key_cmp(p, n, key, klen);
}

/* A copy of IT's key as a separator, or NULL when memory is out. */
static mem_sep *sep_new(mem_index *ix, const mem_item *it)
{
    size_t klen;
    const uint8_t *key = mem_item_key(it, &klen);
    mem_sep *s = malloc(sizeof *s + klen);

    if (!s)
        return NULL;
    s->len = klen;
    memcpy(s->key, key, klen);
    ix->bytes += sizeof *s + klen;
    return s;
}

static void sep_free(mem_index *ix, mem_sep *s)
{
    if (!s)
        return;
    ix->bytes -= sizeof *s + s->len;
    free(s);
}

/* The child of IN whose range holds KEY: the last with a separator at or
 * below it (KLEN 0: before every key, the first). */
static unsigned child_for(const mem_inner *in, const uint8_t *key, size_t klen)
{
    unsigned lo = 1, hi = klen ? in->n : 1;

    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (sep_cmp(in->sep[mid], key, klen) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo - 1;
}

/* The first slot of L whose key is at or after KEY (L->n: none). */
static unsigned leaf_lower(const mem_leaf *l, const uint8_t *key, size_t klen)
{
    unsigned lo = 0, hi = klen ? l->n : 0;

    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (item_cmp(l->items[mid], key, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Fills P with the way to the leaf whose range holds KEY (the root must
 * be there). */
static void descend(const mem_index *ix, const uint8_t *key, size_t klen, mem_path *p)
{
    void *node = ix->root;

    for (unsigned l = 0; l < ix->height; l++) {
        mem_inner *in = node;
        p->node[l] = in;
        p->idx[l] = child_for(in, key, klen);
        node = in->child[p->idx[l]];
    }
    p->leaf = node;
}

/* Fills P with the way to the last leaf when KEY goes after every key
 * (ascending loads: one compare instead of a descent's twenty). Returns 1,
 * or 0 with P undefined. */
static int descend_to_append(const mem_index *ix, const uint8_t *key, size_t klen, mem_path *p)
{
    void *node = ix->root;

    for (unsigned l = 0; l < ix->height; l++) {
        mem_inner *in = node;
        p->node[l] = in;
        p->idx[l] = in->n - 1;
        node = in->child[in->n - 1];
    }
    p->leaf = node;
    return p->leaf->n && item_cmp(p->leaf->items[p->leaf->n - 1], key, klen) < 0;
}

void mem_index_init(mem_index *ix)
{
    *ix = (mem_index){ 0 };
}

/* Frees NODE, LEVELS levels above the leaves, and all under it, taking its
 * leaves out of the list. */
static void free_subtree(mem_index *ix, void *node, unsigned levels)
{
    if (!levels) {
        mem_leaf *l = node;
        if (l->prev)
            l->prev->next = l->next;
        if (l->next)
            l->next->prev = l->prev;
        ix->bytes -= sizeof *l;
        free(l);
        return;
    }
    mem_inner *in = node;
    for (unsigned i = 0; i < in->n; i++) {
        free_subtree(ix, in->child[i], levels - 1);
        sep_free(ix, in->sep[i]);
    }
    ix->bytes -= sizeof *in;
    free(in);
}

void mem_index_free(mem_index *ix)
{
    if (ix->root)
        free_subtree(ix, ix->root, ix->height);
    ix->root = NULL;
    ix->height = 0;
    ix->count = 0;
}

/* Where CAP + 1 entries split, the new one at POS: the left node keeps
 * the entries before the returned index. In halves, except at the edges
 * of the tree. In the last node of its level (RIGHT_EDGE), an entry in its
 * second half splits it there: the left keeps what came before and stays
 * as full (an ascending load, pure or with 50 clients' Sets interleaved,
 * never comes back to it), the right starts with the new entry; in the
 * first node (LEFT_EDGE) likewise for a descending load. */
static unsigned split_point(unsigned cap, unsigned pos, int right_edge, int left_edge)
{
    unsigned half = (cap + 1) / 2;

    if (right_edge && pos >= half)
        return pos;
    if (left_edge && pos < half)
        return pos + 1;
    return half;
}

/* Puts child C (COUNT keys, separator S) at slot I of IN, which has room. */
static void inner_insert_at(mem_inner *in, unsigned i, void *c, uint64_t count, mem_sep *s)
{
    unsigned move = in->n - i;

    memmove(&in->child[i + 1], &in->child[i], move * sizeof in->child[0]);
    memmove(&in->count[i + 1], &in->count[i], move * sizeof in->count[0]);
    memmove(&in->sep[i + 1], &in->sep[i], move * sizeof in->sep[0]);
    in->child[i] = c;
    in->count[i] = count;
    in->sep[i] = s;
    in->n++;
}

static uint64_t inner_total(const mem_inner *in)
{
    uint64_t t = 0;

    for (unsigned i = 0; i < in->n; i++)
        t += in->count[i];
    return t;
}

/* Instead of a split: the full leaf P->leaf, its entries and the new one
 * in ALL (LEAF_CAP + 1), gives its last few to its right sibling, or its
 * first few to its left one, when that sibling under the same parent has
 * room; the separator between them becomes a copy of the new boundary key.
 * Returns 0, or -1 when no sibling can take them (or memory for the
 * separator is out): then the leaf splits. Never while the index is held:
 * a batch's undo counts on leaves that only ever split (mem_index_hold). */
static int shift_to_sibling(mem_index *ix, mem_path *p, mem_item **all)
{
    unsigned h = ix->height;

    if (ix->held || !h)
        return -1;
    mem_inner *in = p->node[h - 1];
    unsigned ci = p->idx[h - 1], m;
    mem_leaf *leaf = p->leaf, *sib;
    mem_sep *s;

    if (ci + 1 < in->n && LEAF_CAP - (sib = in->child[ci + 1])->n >= SHIFT_MIN) {
        m = (LEAF_CAP - sib->n + 1) / 2;
        m = m < SHIFT_MAX ? m : SHIFT_MAX;
        if (!(s = sep_new(ix, all[LEAF_CAP + 1 - m])))
            return -1;
        memmove(sib->items + m, sib->items, sib->n * sizeof sib->items[0]);
        memcpy(sib->items, all + LEAF_CAP + 1 - m, m * sizeof all[0]);
        leaf->n = LEAF_CAP + 1 - m;
        memcpy(leaf->items, all, leaf->n * sizeof all[0]);
        ci++;
    } else if (ci > 0 && LEAF_CAP - (sib = in->child[ci - 1])->n >= SHIFT_MIN) {
        m = (LEAF_CAP - sib->n + 1) / 2;
        m = m < SHIFT_MAX ? m : SHIFT_MAX;
        if (!(s = sep_new(ix, all[m])))
            return -1;
        memcpy(sib->items + sib->n, all, m * sizeof all[0]);
        leaf->n = LEAF_CAP + 1 - m;
        memcpy(leaf->items, all + m, leaf->n * sizeof all[0]);
    } else {
        return -1;
    }
    sib->n += m;
    /* CI is now the right one of the two. */
    sep_free(ix, in->sep[ci]);
    in->sep[ci] = s;
    in->count[ci - 1] = ((mem_leaf *)in->child[ci - 1])->n;
    in->count[ci] = ((mem_leaf *)in->child[ci])->n;
    for (unsigned l = 0; l + 1 < h; l++)
        p->node[l]->count[p->idx[l]]++;
    ix->count++;
    return 0;
}

/* The slow part of an insert: leaf P->leaf is full. Allocates the nodes
 * and the separator the split cascade needs, then splits. 0 or -1. */
static int insert_split(mem_index *ix, mem_path *p, unsigned pos, mem_item *it)
{
    mem_leaf *leaf = p->leaf;
    unsigned h = ix->height, splits = 0;
    int right_edge[MAX_HEIGHT], left_edge[MAX_HEIGHT];

    /* Full inner nodes right above the leaf split too; all of them: a new root. */
    while (splits < h && p->node[h - 1 - splits]->n == INNER_CAP)
        splits++;
    unsigned fresh_n = splits + (splits == h);
    if (h + 1 >= MAX_HEIGHT && splits == h)
        return -1;
    for (unsigned l = 0; l < h; l++) {
        right_edge[l] = l == 0 || (right_edge[l - 1] && p->idx[l - 1] == p->node[l - 1]->n - 1);
        left_edge[l] = l == 0 || (left_edge[l - 1] && p->idx[l - 1] == 0);
    }

    mem_item *all[LEAF_CAP + 1];
    memcpy(all, leaf->items, pos * sizeof all[0]);
    all[pos] = it;
    memcpy(all + pos + 1, leaf->items + pos, (LEAF_CAP - pos) * sizeof all[0]);
    if (shift_to_sibling(ix, p, all) == 0)
        return 0;
    unsigned nl = split_point(LEAF_CAP, pos, !leaf->next, !leaf->prev);

    mem_leaf *right = malloc(sizeof *right);
    mem_sep *sep = right ? sep_new(ix, all[nl]) : NULL;
    mem_inner *fresh[MAX_HEIGHT];
    unsigned got = 0;
    if (sep)
        while (got < fresh_n && (fresh[got] = malloc(sizeof(mem_inner))))
            got++;
    if (!sep || got < fresh_n) {
        while (got)
            free(fresh[--got]);
        sep_free(ix, sep);
        free(right);
        return -1;
    }
    ix->bytes += sizeof *right + fresh_n * sizeof(mem_inner);

    leaf->n = nl;
    memcpy(leaf->items, all, nl * sizeof all[0]);
    right->n = LEAF_CAP + 1 - nl;
    memcpy(right->items, all + nl, right->n * sizeof all[0]);
    right->prev = leaf;
    right->next = leaf->next;
    if (leaf->next)
        leaf->next->prev = right;
    leaf->next = right;

    /* Carry (separator, right node) up while the parents split too. */
    void *rnode = right;
    mem_sep *rsep = sep;
    uint64_t lcount = leaf->n, rcount = right->n;
    unsigned f = 0;
    for (unsigned l = h; l-- > 0;) {
        mem_inner *in = p->node[l];
        unsigned ci = p->idx[l];
        if (!rnode) {
            in->count[ci]++;
            continue;
        }
        in->count[ci] = lcount;
        if (in->n < INNER_CAP) {
            inner_insert_at(in, ci + 1, rnode, rcount, rsep);
            rnode = NULL;
            continue;
        }
        void *child[INNER_CAP + 1];
        uint64_t count[INNER_CAP + 1];
        mem_sep *seps[INNER_CAP + 1];
        unsigned at = ci + 1;
        memcpy(child, in->child, at * sizeof child[0]);
        memcpy(count, in->count, at * sizeof count[0]);
        memcpy(seps, in->sep, at * sizeof seps[0]);
        child[at] = rnode;
        count[at] = rcount;
        seps[at] = rsep;
        memcpy(child + at + 1, in->child + at, (INNER_CAP - at) * sizeof child[0]);
        memcpy(count + at + 1, in->count + at, (INNER_CAP - at) * sizeof count[0]);
        memcpy(seps + at + 1, in->sep + at, (INNER_CAP - at) * sizeof seps[0]);
        unsigned k = split_point(INNER_CAP, at, right_edge[l], left_edge[l]);
        mem_inner *r = fresh[f++];
        in->n = k;
        memcpy(in->child, child, k * sizeof child[0]);
        memcpy(in->count, count, k * sizeof count[0]);
        memcpy(in->sep, seps, k * sizeof seps[0]);
        r->n = INNER_CAP + 1 - k;
        memcpy(r->child, child + k, r->n * sizeof child[0]);
        memcpy(r->count, count + k, r->n * sizeof count[0]);
        memcpy(r->sep, seps + k, r->n * sizeof seps[0]);
        rsep = r->sep[0];       /* moves up: r's lower bound in the parent */
        r->sep[0] = NULL;
        rnode = r;
        lcount = inner_total(in);
        rcount = inner_total(r);
    }
    if (rnode) {
        mem_inner *root = fresh[f];
        root->n = 2;
        root->child[0] = ix->root;
        root->child[1] = rnode;
        root->count[0] = lcount;
        root->count[1] = rcount;
        root->sep[0] = NULL;
        root->sep[1] = rsep;
        ix->root = root;
        ix->height++;
    }
    ix->count++;
    return 0;
}

int mem_index_insert(mem_index *ix, mem_item *it)
{
    size_t klen;
    const uint8_t *key = mem_item_key(it, &klen);
    mem_path p;

    if (!ix->root) {
        mem_leaf *l = malloc(sizeof *l);
        if (!l)
            return -1;
        l->prev = l->next = NULL;
        l->n = 1;
        l->items[0] = it;
        ix->root = l;
        ix->height = 0;
        ix->count = 1;
        ix->bytes += sizeof *l;
        return 0;
    }
    unsigned pos;
    if (!descend_to_append(ix, key, klen, &p)) {
        descend(ix, key, klen, &p);
        pos = leaf_lower(p.leaf, key, klen);
    } else {
        pos = p.leaf->n;
    }
    mem_leaf *leaf = p.leaf;
    if (leaf->n == LEAF_CAP)
        return insert_split(ix, &p, pos, it);
    memmove(&leaf->items[pos + 1], &leaf->items[pos], (leaf->n - pos) * sizeof leaf->items[0]);
    leaf->items[pos] = it;
    leaf->n++;
    for (unsigned l = 0; l < ix->height; l++)
        p.node[l]->count[p.idx[l]]++;
    ix->count++;
    return 0;
}

/* Takes child I out of IN (not freeing it); its separator is freed when
 * FREE_SEP (else it has moved elsewhere). The first child's removal drops
 * the second's separator, as the first has none. */
static void inner_remove_at(mem_index *ix, mem_inner *in, unsigned i, int free_sep)
{
    if (i == 0 && in->n > 1) {
        sep_free(ix, in->sep[1]);
        in->sep[1] = NULL;
    } else if (free_sep) {
        sep_free(ix, in->sep[i]);
    }
    unsigned move = in->n - i - 1;
    memmove(&in->child[i], &in->child[i + 1], move * sizeof in->child[0]);
    memmove(&in->count[i], &in->count[i + 1], move * sizeof in->count[0]);
    memmove(&in->sep[i], &in->sep[i + 1], move * sizeof in->sep[0]);
    in->n--;
}

static unsigned node_n(const void *node, int leaf)
{
    return leaf ? ((const mem_leaf *)node)->n : ((const mem_inner *)node)->n;
}

/* Merges child I + 1 of IN into child I (LEAF: they are leaves). */
static void merge_children(mem_index *ix, mem_inner *in, unsigned i, int leaf)
{
    if (leaf) {
        mem_leaf *a = in->child[i], *b = in->child[i + 1];
        memcpy(a->items + a->n, b->items, b->n * sizeof b->items[0]);
        a->n += b->n;
        in->count[i] += in->count[i + 1];
        inner_remove_at(ix, in, i + 1, 1);
        free_subtree(ix, b, 0);
        return;
    }
    mem_inner *a = in->child[i], *b = in->child[i + 1];
    /* b's lower bound comes down from IN to stand before b's first child. */
    b->sep[0] = in->sep[i + 1];
    memcpy(a->child + a->n, b->child, b->n * sizeof b->child[0]);
    memcpy(a->count + a->n, b->count, b->n * sizeof b->count[0]);
    memcpy(a->sep + a->n, b->sep, b->n * sizeof b->sep[0]);
    a->n += b->n;
    in->count[i] += in->count[i + 1];
    inner_remove_at(ix, in, i + 1, 0);
    ix->bytes -= sizeof *b;
    free(b);
}

/* Child CI of IN (LEAF: a leaf) after a removal under it: dropped when it
 * holds no keys and has a sibling; merged into a sibling when under a
 * quarter full and the two fit in three quarters of a node. */
static void tidy_child(mem_index *ix, mem_inner *in, unsigned ci, int leaf, unsigned levels)
{
    unsigned cap = leaf ? LEAF_CAP : INNER_CAP;
    unsigned n = node_n(in->child[ci], leaf);

    if (in->n < 2)
        return;
    if (in->count[ci] == 0) {
        void *c = in->child[ci];
        inner_remove_at(ix, in, ci, 1);
        free_subtree(ix, c, levels);
        return;
    }
    if (n >= cap / 4)
        return;
    if (ci > 0 && node_n(in->child[ci - 1], leaf) + n <= cap * 3 / 4)
        merge_children(ix, in, ci - 1, leaf);
    else if (ci + 1 < in->n && node_n(in->child[ci + 1], leaf) + n <= cap * 3 / 4)
        merge_children(ix, in, ci, leaf);
}

/* Tidies every node on P from the leaf up, then the root. */
static void tidy_path(mem_index *ix, mem_path *p)
{
    for (unsigned l = ix->height; l-- > 0;)
        tidy_child(ix, p->node[l], p->idx[l], l == ix->height - 1, ix->height - 1 - l);
    if (!ix->count) {
        mem_index_free(ix);
        return;
    }
    while (ix->height && ((mem_inner *)ix->root)->n == 1) {
        mem_inner *old = ix->root;
        ix->root = old->child[0];
        ix->height--;
        ix->bytes -= sizeof *old;
        free(old);
    }
}

void mem_index_remove(mem_index *ix, const uint8_t *key, size_t klen)
{
    mem_path p;

    descend(ix, key, klen, &p);
    mem_leaf *leaf = p.leaf;
    unsigned pos = leaf_lower(leaf, key, klen);
    memmove(&leaf->items[pos], &leaf->items[pos + 1], (leaf->n - pos - 1) * sizeof leaf->items[0]);
    leaf->n--;
    for (unsigned l = 0; l < ix->height; l++)
        p.node[l]->count[p.idx[l]]--;
    ix->count--;
    if (!ix->held)
        tidy_path(ix, &p);
}

void mem_index_replace(mem_index *ix, const mem_item *old, mem_item *it)
{
    size_t klen;
    const uint8_t *key = mem_item_key(old, &klen);
    mem_path p;

    descend(ix, key, klen, &p);
    p.leaf->items[leaf_lower(p.leaf, key, klen)] = it;
}

void mem_index_hold(mem_index *ix, int hold)
{
    ix->held = hold;
}

void mem_index_tidy(mem_index *ix, const uint8_t *key, size_t klen)
{
    mem_path p;

    if (!ix->root)
        return;
    descend(ix, key, klen, &p);
    tidy_path(ix, &p);
}

/* The first position at or after slot I of L, skipping empty leaves. */
static mem_index_pos pos_from(mem_leaf *l, unsigned i)
{
    while (l && i >= l->n) {
        l = l->next;
        i = 0;
    }
    return (mem_index_pos){ l, i };
}

/* The last position before slot I of L, skipping empty leaves. */
static mem_index_pos pos_before(mem_leaf *l, unsigned i)
{
    while (l && i == 0) {
        l = l->prev;
        i = l ? l->n : 0;
    }
    return (mem_index_pos){ l, l ? i - 1 : 0 };
}

mem_index_pos mem_index_seek(const mem_index *ix, const uint8_t *key, size_t klen)
{
    mem_path p;

    if (!ix->root)
        return (mem_index_pos){ NULL, 0 };
    descend(ix, key, klen, &p);
    return pos_from(p.leaf, klen ? leaf_lower(p.leaf, key, klen) : 0);
}

mem_index_pos mem_index_seek_before(const mem_index *ix, const uint8_t *key, size_t klen)
{
    if (!ix->root)
        return (mem_index_pos){ NULL, 0 };
    if (klen) {
        mem_path p;
        descend(ix, key, klen, &p);
        return pos_before(p.leaf, leaf_lower(p.leaf, key, klen));
    }
    void *node = ix->root;
    for (unsigned l = 0; l < ix->height; l++) {
        mem_inner *in = node;
        node = in->child[in->n - 1];
    }
    mem_leaf *leaf = node;
    return pos_before(leaf, leaf->n);
}

mem_item *mem_index_at(mem_index_pos pos)
{
    return pos.leaf ? pos.leaf->items[pos.i] : NULL;
}

void mem_index_next(mem_index_pos *pos)
{
    *pos = pos_from(pos->leaf, pos->i + 1);
}

void mem_index_settle(mem_index_pos *pos)
{
    *pos = pos_from(pos->leaf, pos->i);
}

void mem_index_prev(mem_index_pos *pos)
{
    *pos = pos_before(pos->leaf, pos->i);
}

uint64_t mem_index_rank(const mem_index *ix, const uint8_t *key, size_t klen)
{
    uint64_t r = 0;
    void *node = ix->root;

    if (!node || !klen)
        return 0;
    for (unsigned l = 0; l < ix->height; l++) {
        mem_inner *in = node;
        unsigned c = child_for(in, key, klen);
        for (unsigned i = 0; i < c; i++)
            r += in->count[i];
        node = in->child[c];
    }
    return r + leaf_lower(node, key, klen);
}
