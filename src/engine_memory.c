/* engine_memory.c - the in-memory engine: an open-addressing hash table
 * owned by this file, holding one malloc'd item per key (mem_item.h: the
 * key, its revisions and the value), the table's resizing, the store's
 * revision, and the atomic batches' undo log; beside the table, an ordered
 * index of the same items (mem_index.c) for walks, counts and range
 * removals. Not thread-safe (see engine.h).
 *
 * Why by hand: the engine must hold millions of small entries within the
 * memory of Redis's dict and answer in a few cache misses. A slot here is
 * 16 bytes (full 64-bit xxh3 hash + item pointer), probed linearly, so a
 * lookup touches one cache line of slots and then the one item whose hash
 * matched; a resize rehashes from the stored hashes without touching items.
 * Deletion shifts the following run back (no tombstones), so probe runs
 * stay short under churn. Load factor is kept at or below 3/4.
 *
 * Measured: find() is about a third of the server's CPU at -P 16 over 100k
 * keys (perf), nearly all of it the cache miss on the slot and the one on
 * the item. Transparent huge pages for the slot array were tried (A/B,
 * 1M keys, GET -P 16) and showed no gain above this machine's noise.
 *
 * Resizing is incremental, as Redis's dict, because rehashing at once
 * stalls every client for the whole move: with bench/grow-latency, the
 * worst Get of a client while the store grows to 10M keys went from 230 ms
 * to 2.6 ms (medians of 3 runs; the same load without growth shows 8.5 ms
 * of this VM's own noise; Redis 9.2 ms), and outside a resize a Get costs
 * 2 instructions more (callgrind), a Set none. The table doubles when a
 * Set would pass 3/4 full and halves when a Clear leaves it under 1/8 (so
 * a few keys coming and going never resize it back and forth); while it
 * resizes, every Get, Set and Clear first moves RESIZE_STEP slots of the
 * old array into the new one. Keys are then looked up in the new table,
 * and in the old one if they are not there; new keys go to the new one
 * only. The old array is swept from its top down: a slot emptied that way
 * is always the last of its probe run, so the old table needs no deletion
 * fix-up, and a Clear in it is the ordinary backward shift. See
 * resize_start() for the one run that would wrap. No shrink starts while
 * a batch is open (undoing it may bring every removed key back).
 *
 * Order. Point lookups stay on the table; the index, a B+tree of item
 * pointers with key counts in its inner nodes (mem_index.c says why that
 * shape), serves walks, counts and range removals only, and a Set touches
 * it only when a key is created or removed, or its item moves in memory.
 * The budget was 115 bytes a key of RSS for 1M 16-byte keys with 32-byte
 * values (kvbench --sequential -n 1000000 -r 1000000 -d 32 -t set against
 * kvstored, VmRSS before and after): 98 before revisions and the index,
 * 106 now: the item 54 bytes in a 64-byte chunk (mem_item.h), 33.5 of
 * slots, 8.8 of index (Stats): leaves of 126 pointers in a 1,040-byte
 * chunk, ~94% full after this load's 50 interleaved clients, and 0.4 of
 * inner nodes and separators. Inserting the same keys in random order: 108. Once every
 * key has been written a second time, 123: with two revisions its item
 * takes 58 bytes and the 80-byte chunk (Redis: 149).
 *
 * Cost, callgrind, instructions a call inside the engine (a driver over
 * 100k keys of 16 bytes, 32-byte values; before -> after): Get (get_view
 * with its revisions) 160 -> 198; Set over a key written before, value of
 * the same length, 153 -> 229 (mem_item_rewrite's fast path: decoding and
 * writing all four varints anew, as a first version did, cost 85 more);
 * Set of a new key in ascending order 419 -> 665, in random order 419 ->
 * 1,415 (a descent of some 20 key compares, most of them a cache miss at
 * 1M keys: 0.24 -> 1.1 us a random insert there). Against kvstored (kvbench -c 50
 * -P 16 -n 100000 -d 3 -r 1000): mem_set 164 -> 252 a request, the whole
 * server's Set 1,456 -> 1,566; mem_get_view 134 -> 164, the whole Get
 * 1,557 -> 1,761, most of the rest the answer's revision fields. A paged
 * walk of 1M keys in pages of 1,000, each with the count of the whole
 * range, takes 13 ms; removing them all, 260 ms.
 *
 * Batches (batch_begin .. batch_end): all or none. Every write inside one
 * is logged (mem_undo): the item it replaced or removed stays allocated,
 * and an overwrite always makes a new item, so undoing is putting the old
 * pointers back in the table and the index, newest first, and freeing the
 * batch's own items; keeping is freeing the replaced ones. Undoing never
 * allocates (the log has room reserved before each write, the table has
 * the room the keys had, and the held index keeps its leaves: see
 * mem_index_hold), so it cannot fail halfway.
 *
 * Snapshots: reset() frees every item and starts again from a table of
 * the opening size; load() adds a key as a Set does (add_item), with the
 * meta it is given, or replaces one as a Touch does (replace_item).
 * Measured (1M keys of 16 bytes with 32-byte values, one process, the
 * engine alone): loads in key order 0.22 s, in a scrambled order 0.92 s
 * (the index descents miss the cache), a walk of them 10 ms, reset 58 ms.
 *
 * Its one runtime error is running out of memory, which only the refused
 * client would hear of: logged (log.h) at most once a minute, since memory
 * near its end comes and goes from one request to the next. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <xxhash.h>
#include "engine.h"
#include "log.h"
#include "mem_index.h"
#include "mem_item.h"
#include "mem_ttl.h"

#define MIN_CAPACITY 1024

/* Old slots moved by each Get, Set and Clear while a resize runs. A resize
 * must end before new keys fill the new table past 3/4, since none starts
 * while one runs: a growth of C slots leaves room for 3C/4 Sets (so 4/3
 * slots a request would do), a shrink from C (under C/8 keys, to C/2) for
 * C/4 (so 4). At 16 a resize ends after C/16 requests of any kind, each
 * paying 16 sequential slot reads and near-sequential writes. */
#define RESIZE_STEP 16
_Static_assert(RESIZE_STEP >= 4, "a shrink must end before the new table is 3/4 full");

/* Slot arrays of MAP_MIN_BYTES or more come straight from mmap, so that
 * the swept part of an old array goes back to the kernel RELEASE_BYTES at
 * a time (madvise) instead of in one free() at the end of the resize: here
 * free() of a 128 MiB array took 5 ms, a 256 KiB madvise 0.03 ms. */
#define MAP_MIN_BYTES ((size_t)1 << 20)
#define RELEASE_BYTES ((size_t)256 << 10)

typedef struct mem_slot {
    uint64_t hash;
    mem_item *item;     /* NULL: empty */
} mem_slot;

#define RELEASE_SLOTS (RELEASE_BYTES / sizeof(mem_slot))

/* Entries of a batch's undo log kept allocated after it ends (4 KiB). */
#define UNDO_KEEP 256

typedef struct mem_table {
    mem_slot *slots;    /* NULL: no table */
    size_t mask;        /* capacity - 1; capacity is a power of two */
    int mapped;         /* slots came from mmap (else calloc) */
} mem_table;

/* One write of the open batch: the item it replaced or removed (WAS) and
 * the one it stored (NOW); WAS NULL: it created the key, NOW NULL: it
 * removed it. Both stay allocated until the batch ends, which frees the
 * WAS of each (kept) or the NOW (undone). */
typedef struct mem_undo {
    mem_item *was, *now;
} mem_undo;

/* The open batch (batch_begin .. batch_end): its undo log, and the
 * figures to restore when it is undone. */
typedef struct mem_batch {
    int open;
    mem_undo *log;
    size_t n, cap;
    size_t count;
    uint64_t data_bytes, item_bytes, revision;
} mem_batch;

typedef struct mem_engine {
    kv_engine base;
    mem_table cur;      /* every new key goes here */
    mem_table old;      /* while a resize runs (slots != NULL): the table
                           being emptied into cur */
    size_t old_count;   /* entries still in old */
    size_t old_end;     /* old's slots [0, old_end) are still to be swept;
                           those above are empty */
    size_t old_held;    /* old's slots [0, old_held) are still in memory;
                           always above old_end until the sweep ends */
    size_t min_capacity;    /* never shrink below this (the opening size) */
    size_t count;
    uint64_t data_bytes;
    uint64_t item_bytes;    /* sum of mem_item_size() of the items */
    uint64_t revision;      /* the store's (engine.h) */
    mem_index index;        /* every item, in key order */
    mem_ttl ttl;            /* every item with a deadline, earliest first */
    mem_batch batch;
    time_t oom_logged_at;   /* monotonic seconds; 0: never logged */
} mem_engine;

/* Operation OP found no memory. Returns the status it answers. */
static kv_status out_of_memory(mem_engine *m, const char *op)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!m->oom_logged_at || now.tv_sec - m->oom_logged_at >= 60) {
        kv_log(KV_LOG_ERROR, "engine memory: out of memory: %s refused (logged at most "
               "once a minute)", op);
        m->oom_logged_at = now.tv_sec ? now.tv_sec : 1;
    }
    return KV_RESOURCE_EXHAUSTED;
}

static inline uint64_t hash_key(const uint8_t *key, size_t klen)
{
    return XXH3_64bits(key, klen);
}

static size_t capacity(const mem_table *t)
{
    return t->mask + 1;
}

/* Gives T an empty array of CAP slots. Returns 0, or -1 when memory is out. */
static int table_alloc(mem_table *t, size_t cap)
{
    size_t bytes = cap * sizeof(mem_slot);

    t->mask = cap - 1;
    t->mapped = bytes >= MAP_MIN_BYTES;
    if (t->mapped) {
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        t->slots = p == MAP_FAILED ? NULL : p;
    } else {
        t->slots = calloc(cap, sizeof(mem_slot));
    }
    return t->slots ? 0 : -1;
}

static void table_free(mem_table *t)
{
    if (t->mapped)
        munmap(t->slots, capacity(t) * sizeof(mem_slot));
    else
        free(t->slots);
    t->slots = NULL;
}

/* Returns the slot of T holding KEY, or the empty slot where it would go. */
static mem_slot *find(const mem_table *t, const uint8_t *key, size_t klen, uint64_t h)
{
    size_t i = (size_t)h & t->mask;

    for (;;) {
        mem_slot *s = &t->slots[i];
        if (!s->item)
            return s;
        if (s->hash == h && mem_item_has_key(s->item, key, klen))
            return s;
        i = (i + 1) & t->mask;
    }
}

/* Puts S, whose key T does not hold, in T's first free slot from its home. */
static void place(mem_table *t, mem_slot s)
{
    size_t i = (size_t)s.hash & t->mask;

    while (t->slots[i].item)
        i = (i + 1) & t->mask;
    t->slots[i] = s;
}

/* Moves the entry of old slot S (if any) into cur and empties S. */
static void move_slot(mem_engine *m, mem_slot *s)
{
    if (!s->item)
        return;
    place(&m->cur, *s);
    s->item = NULL;
    s->hash = 0;
    m->old_count--;
}

/* Begins a resize to CAP slots: cur becomes old, an empty array of CAP
 * becomes cur. Returns 0, or -1 (nothing changed) when memory is out. */
static int resize_start(mem_engine *m, size_t cap)
{
    mem_table t;

    if (table_alloc(&t, cap) < 0)
        return -1;
    m->old = m->cur;
    m->cur = t;
    m->old_count = m->count;
    m->old_end = m->old_held = capacity(&m->old);
    /* The sweep goes down from the top, so a run that wraps from the top
     * slots round to slot 0 would be cut at its start. Move the bottom
     * run now, whole: it is one probe run, as long as a lookup may walk. */
    for (size_t i = 0; m->old.slots[i].item; i++)
        move_slot(m, &m->old.slots[i]);
    return 0;
}

/* One step of a running resize: moves the next RESIZE_STEP old slots
 * (or, once old is empty, skips a release's worth), hands swept memory
 * back, and ends the resize when the sweep is done. */
static void resize_step(mem_engine *m)
{
    mem_table *o = &m->old;

    if (m->old_count) {
        size_t stop = m->old_end > RESIZE_STEP ? m->old_end - RESIZE_STEP : 0;
        while (m->old_end > stop)
            move_slot(m, &o->slots[--m->old_end]);
    } else {
        m->old_end = m->old_end > RELEASE_SLOTS ? m->old_end - RELEASE_SLOTS : 0;
    }
    if (!m->old_end) {
        table_free(o);
        return;
    }
    /* Strictly above old_end: the slot at old_end ends the last run a
     * Clear in old may shift, so it stays readable. */
    while (o->mapped && m->old_held - m->old_end > RELEASE_SLOTS) {
        m->old_held -= RELEASE_SLOTS;
        madvise(o->slots + m->old_held, RELEASE_BYTES, MADV_DONTNEED);
    }
}

/* lookup() while a resize runs: one step of it, then both tables. */
static mem_slot *lookup_resizing(mem_engine *m, const uint8_t *key, size_t klen, uint64_t h,
                                 mem_table **in)
{
    resize_step(m);
    mem_slot *s = find(&m->cur, key, klen, h);
    if (s->item || !m->old.slots)
        return s;
    /* Old keys live at or after their home, below old_end (resize_start
     * moved the one run that wrapped); a home above holds nothing. */
    if (((size_t)h & m->old.mask) >= m->old_end)
        return s;
    mem_slot *o = find(&m->old, key, klen, h);
    if (!o->item)
        return s;
    if (in)
        *in = &m->old;
    return o;
}

/* find() over the engine: the slot holding KEY, or the empty slot of cur
 * where it would go; its table in *IN unless IN is NULL. */
static inline mem_slot *lookup(mem_engine *m, const uint8_t *key, size_t klen, uint64_t h,
                               mem_table **in)
{
    if (in)
        *in = &m->cur;
    if (m->old.slots)
        return lookup_resizing(m, key, klen, h, in);
    return find(&m->cur, key, klen, h);
}

/* Empties slot S of T and shifts later members of its probe run back, so
 * that every entry stays reachable from its home slot without tombstones. */
static void remove_slot(mem_table *t, mem_slot *s)
{
    size_t hole = (size_t)(s - t->slots);
    size_t i = hole;

    for (;;) {
        i = (i + 1) & t->mask;
        mem_slot *n = &t->slots[i];
        if (!n->item)
            break;
        size_t home = (size_t)n->hash & t->mask;
        /* N may fill the hole only if its home is not inside (hole, i]. */
        if (((i - home) & t->mask) >= ((i - hole) & t->mask)) {
            t->slots[hole] = *n;
            hole = i;
        }
    }
    t->slots[hole].item = NULL;
    t->slots[hole].hash = 0;
}

/* Takes the entry of slot S of table IN out of the table (the item and
 * the index are the caller's). */
static void table_remove(mem_engine *m, mem_table *in, mem_slot *s)
{
    remove_slot(in, s);
    if (in == &m->old)
        m->old_count--;
    m->count--;
}

/* Halving leaves it under 1/4 full: far from both 3/4 and 1/8. Without
 * memory for the smaller array the table just stays as it is. Not while a
 * batch is open: undoing it may bring every removed key back. */
static void maybe_shrink(mem_engine *m)
{
    if (m->batch.open)
        return;     /* undoing may need the room (mem_ttl.h, the table) */
    mem_ttl_shrink(&m->ttl);
    if (!m->old.slots && m->count * 8 < capacity(&m->cur)
        && capacity(&m->cur) > m->min_capacity)
        (void)resize_start(m, capacity(&m->cur) / 2);
}

/* Room in the open batch's log for N more writes (none needed outside a
 * batch). Returns 0, or -1 when memory is out. */
static int undo_reserve(mem_engine *m, size_t n)
{
    mem_batch *b = &m->batch;

    if (!b->open || b->cap - b->n >= n)
        return 0;
    size_t cap = b->cap ? b->cap : 16;
    while (cap - b->n < n)
        cap *= 2;
    mem_undo *log = realloc(b->log, cap * sizeof *log);
    if (!log)
        return -1;
    b->log = log;
    b->cap = cap;
    return 0;
}

/* A write is done: WAS replaced by NOW (either NULL, as mem_undo). Inside
 * a batch it is logged (undo_reserve made room), else WAS is freed. */
static void wrote(mem_engine *m, mem_item *was, mem_item *now, uint64_t rev)
{
    m->revision = rev;
    if (m->batch.open)
        m->batch.log[m->batch.n++] = (mem_undo){ was, now };
    else
        free(was);
}

static kv_status mem_open(const char *dir, const kv_engine_options *opts,
                          kv_engine **out, char *err, size_t errlen)
{
    mem_engine *m = calloc(1, sizeof *m);
    size_t cap = MIN_CAPACITY;

    (void)dir;
    (void)err;
    (void)errlen;
    if (!m)
        return KV_RESOURCE_EXHAUSTED;
    while (opts && cap / 4 * 3 < opts->expected_keys)
        cap *= 2;
    if (table_alloc(&m->cur, cap) < 0) {
        free(m);
        return KV_RESOURCE_EXHAUSTED;
    }
    m->base.ops = &kv_engine_memory;
    m->min_capacity = cap;
    mem_index_init(&m->index);
    *out = &m->base;
    return KV_OK;
}

/* Calls FN with IT (its value only WITH_VALUES). Returns FN's answer. */
static int visit(const mem_item *it, int with_values, kv_entry_fn fn, void *ctx)
{
    mem_item_view v;
    kv_entry entry;

    mem_item_open(it, &v);
    entry.key = v.key;
    entry.klen = v.klen;
    entry.value = with_values && v.vlen ? v.value : NULL;
    entry.vlen = v.vlen;
    entry.meta = v.meta;
    return fn(ctx, &entry);
}

/* A missing key's answer: NOT_FOUND, its revisions all zero (engine.h). */
static kv_status not_found(kv_meta *meta)
{
    if (meta)
        *meta = (kv_meta){ 0 };
    return KV_NOT_FOUND;
}

static kv_status mem_get(kv_engine *e, const uint8_t *key, size_t klen,
                         ProtobufCAllocator *alloc, ProtobufCBinaryData *value, kv_meta *meta)
{
    mem_engine *m = (mem_engine *)e;
    mem_slot *s = lookup(m, key, klen, hash_key(key, klen), NULL);
    mem_item_view v;

    if (!s->item)
        return not_found(meta);
    mem_item_open_tail(mem_item_tail(s->item, klen), &v);
    if (kv_engine_copy_out(alloc, v.value, v.vlen, value) != KV_OK)
        return out_of_memory(m, "Get");
    if (meta)
        *meta = v.meta;
    return KV_OK;
}

/* The item's own bytes: items move only when written (a slot holds a
 * pointer, so resizing moves pointers, not items). */
static kv_status mem_get_view(kv_engine *e, const uint8_t *key, size_t klen,
                              ProtobufCBinaryData *value, kv_meta *meta)
{
    mem_engine *m = (mem_engine *)e;
    mem_slot *s = lookup(m, key, klen, hash_key(key, klen), NULL);
    mem_item_view v;

    if (!s->item)
        return not_found(meta);
    mem_item_open_tail(mem_item_tail(s->item, klen), &v);
    value->len = v.vlen;
    value->data = v.vlen ? (uint8_t *)(uintptr_t)v.value : NULL;
    if (meta)
        *meta = v.meta;
    return KV_OK;
}

/* Rewrites IT's part after its KLEN-byte key (WAS, decoded) with HEAD and
 * the value, in place, keeping the deadline heap in step: the item stays
 * where it is, so the table and the index are untouched (a Set with a TTL
 * of a key that has one costs a heap sift, not a new item and an index
 * descent). Returns 0, or -1 with nothing changed when the heap has no
 * room for a first deadline. */
static int rewrite_in_place(mem_engine *m, mem_item *it, size_t klen, const mem_item_view *was,
                            const uint8_t *head, size_t headlen, const uint8_t *value,
                            size_t vlen, uint64_t expires)
{
    uint8_t place[4];

    if (expires && !was->meta.expires_ms && mem_ttl_reserve(&m->ttl, 1) < 0)
        return -1;
    if (was->meta.expires_ms && expires)
        memcpy(place, mem_item_heap_slot(it, klen), 4);    /* its heap place stays */
    else if (was->meta.expires_ms)
        mem_ttl_remove(&m->ttl, it);
    mem_item_put_tail(mem_item_tail(it, klen), head, headlen, value, vlen);
    if (was->meta.expires_ms && expires) {
        memcpy(mem_item_heap_slot(it, klen), place, 4);
        mem_ttl_changed(&m->ttl, it);
    } else if (expires) {
        mem_ttl_add(&m->ttl, it);
    }
    return 0;
}

/* Set of KEY, held by OLD in slot S, when mem_set's fast path (see
 * mem_item_rewrite) could not: the item is rewritten in place when the new
 * one fits its chunk (and wastes at most half of it), else a new item
 * (always inside a batch, which keeps OLD for undo) takes OLD's place in
 * the table and in the index. Out of line, so that mem_set's fast path
 * has a small frame. */
static __attribute__((noinline)) kv_status overwrite(mem_engine *m, mem_slot *s,
                                                     const uint8_t *key, size_t klen,
                                                     const uint8_t *value, size_t vlen,
                                                     uint64_t rev, uint64_t expires)
{
    mem_item *old = s->item;
    uint8_t *tail = mem_item_tail(old, klen);
    mem_item_view was;
    mem_item_open_tail(tail, &was);
    size_t old_size = (size_t)(was.value + was.vlen - (const uint8_t *)old);
    kv_meta meta = { was.meta.create_revision, rev, was.meta.version + 1, expires };
    uint8_t head[MEM_ITEM_HEAD_MAX];
    size_t headlen = mem_item_head(head, vlen, &meta);
    size_t size = (size_t)(tail - (uint8_t *)old) + headlen + vlen;

    if (!m->batch.open
        && (size <= old_size ? size * 2 >= old_size : size <= malloc_usable_size(old))) {
        if (rewrite_in_place(m, old, klen, &was, head, headlen, value, vlen, expires) < 0)
            return out_of_memory(m, "Set");
        m->data_bytes = m->data_bytes + vlen - was.vlen;
        m->item_bytes = m->item_bytes + size - old_size;
        m->revision = rev;
        return KV_OK;
    }
    if (undo_reserve(m, 1) < 0 || (expires && mem_ttl_reserve(&m->ttl, 1) < 0))
        return out_of_memory(m, "Set");
    mem_item *it = malloc(size);
    if (!it)
        return out_of_memory(m, "Set");
    mem_item_put(it, key, klen, head, headlen, value, vlen);
    mem_index_replace(&m->index, old, it);
    if (was.meta.expires_ms)
        mem_ttl_remove(&m->ttl, old);
    if (expires)
        mem_ttl_add(&m->ttl, it);
    s->item = it;
    m->data_bytes = m->data_bytes + vlen - was.vlen;
    m->item_bytes = m->item_bytes + size - old_size;
    wrote(m, old, it, rev);
    return KV_OK;
}

/* Stores KEY, absent, with META and VALUE: slot S of cur is where it goes
 * (lookup's answer); the store's revision becomes REV. Operation OP's
 * status: KV_OK, or out of memory with nothing changed. Inlined into its
 * two callers, so that a Set of a new key pays no call for sharing it. */
static inline __attribute__((always_inline)) kv_status
add_item(mem_engine *m, mem_slot *s, const uint8_t *key, size_t klen, uint64_t h,
         const kv_meta *meta, const uint8_t *value, size_t vlen, uint64_t rev, const char *op)
{
    uint64_t expires = meta->expires_ms;

    if (undo_reserve(m, 1) < 0 || (expires && mem_ttl_reserve(&m->ttl, 1) < 0))
        return out_of_memory(m, op);
    /* During a resize cur cannot pass 3/4 (see RESIZE_STEP): no check. */
    if (!m->old.slots && (m->count + 1) * 4 > capacity(&m->cur) * 3) {
        if (resize_start(m, capacity(&m->cur) * 2) < 0)
            return out_of_memory(m, op);
        s = find(&m->cur, key, klen, h);
    }
    uint8_t head[MEM_ITEM_HEAD_MAX];
    size_t headlen = mem_item_head(head, vlen, meta);
    size_t size = mem_item_size(klen, vlen, headlen);
    mem_item *it = malloc(size);
    if (!it)
        return out_of_memory(m, op);
    mem_item_put(it, key, klen, head, headlen, value, vlen);
    if (mem_index_insert(&m->index, it) < 0) {
        free(it);
        return out_of_memory(m, op);
    }
    if (expires)
        mem_ttl_add(&m->ttl, it);
    s->hash = h;
    s->item = it;
    m->count++;
    m->data_bytes += klen + vlen;
    m->item_bytes += size;
    wrote(m, NULL, it, rev);
    return KV_OK;
}

/* Set of KEY, absent: slot S of cur is where it goes (see mem_set). */
static __attribute__((noinline)) kv_status insert(mem_engine *m, mem_slot *s,
                                                  const uint8_t *key, size_t klen, uint64_t h,
                                                  const uint8_t *value, size_t vlen, uint64_t rev,
                                                  uint64_t expires)
{
    kv_meta meta = { rev, rev, 1, expires };

    return add_item(m, s, key, klen, h, &meta, value, vlen, rev, "Set");
}

/* The hot path is an overwrite of a key written before with a value of
 * the same length: two varints and the value rewritten where they are. */
static kv_status mem_set(kv_engine *e, const uint8_t *key, size_t klen,
                         const uint8_t *value, size_t vlen, uint64_t rev, uint64_t expires,
                         kv_entry_fn seen, void *ctx)
{
    mem_engine *m = (mem_engine *)e;
    uint64_t h = hash_key(key, klen);
    mem_slot *s = lookup(m, key, klen, h, NULL);

    if (!s->item)
        return insert(m, s, key, klen, h, value, vlen, rev, expires);
    if (seen)
        (void)visit(s->item, 1, seen, ctx);
    if (!m->batch.open && !expires
        && mem_item_rewrite(mem_item_tail(s->item, klen), value, vlen, rev)) {
        m->revision = rev;
        return KV_OK;
    }
    return overwrite(m, s, key, klen, value, vlen, rev, expires);
}

/* Takes IT, whose key is KEY and whose slot is S of table IN, out of the
 * table and the index; its bytes are the caller's to free or keep. */
static void remove_item(mem_engine *m, mem_table *in, mem_slot *s, const mem_item *it,
                        const uint8_t *key, size_t klen)
{
    mem_item_view v;

    mem_item_open_tail(mem_item_tail((mem_item *)(uintptr_t)it, klen), &v);
    if (v.meta.expires_ms)
        mem_ttl_remove(&m->ttl, (mem_item *)(uintptr_t)it);
    table_remove(m, in, s);
    mem_index_remove(&m->index, key, klen);
    m->data_bytes -= klen + v.vlen;
    m->item_bytes -= (size_t)(v.value + v.vlen - (const uint8_t *)it);
}

static kv_status mem_unset(kv_engine *e, const uint8_t *key, size_t klen,
                           ProtobufCAllocator *alloc, ProtobufCBinaryData *old,
                           kv_meta *old_meta, uint64_t rev)
{
    mem_engine *m = (mem_engine *)e;
    mem_table *in;
    mem_slot *s = lookup(m, key, klen, hash_key(key, klen), &in);
    mem_item *it = s->item;
    mem_item_view v;

    if (!it)
        return not_found(old_meta);
    mem_item_open_tail(mem_item_tail(it, klen), &v);
    if (old && kv_engine_copy_out(alloc, v.value, v.vlen, old) != KV_OK)
        return out_of_memory(m, "Clear");   /* nothing removed */
    if (old_meta)
        *old_meta = v.meta;
    if (undo_reserve(m, 1) < 0)
        return out_of_memory(m, "Clear");
    remove_item(m, in, s, it, key, klen);
    wrote(m, it, NULL, rev);
    maybe_shrink(m);
    return KV_OK;
}

static kv_status mem_count(kv_engine *e, const kv_range *r, uint64_t *n)
{
    mem_engine *m = (mem_engine *)e;

    *n = 0;
    if (r->start_len && r->end_len && kv_key_cmp(r->start, r->start_len, r->end, r->end_len) >= 0)
        return KV_OK;
    uint64_t hi = r->end_len ? mem_index_rank(&m->index, r->end, r->end_len) : m->index.count;
    *n = hi - mem_index_rank(&m->index, r->start, r->start_len);
    return KV_OK;
}

/* Removes the keys of R one by one from its start. Outside a batch each
 * removal may merge index nodes, so each begins with a fresh descent
 * (O(log n) a key); inside one the index is held and its nodes stay, so
 * the next key is where the last one was (a descent would walk over the
 * leaves emptied so far, quadratic in a large range). */
static kv_status mem_unset_range(kv_engine *e, const kv_range *r, uint64_t rev,
                                 uint64_t *deleted, kv_entry_fn fn, void *ctx)
{
    mem_engine *m = (mem_engine *)e;
    uint64_t n;

    *deleted = 0;
    (void)mem_count(e, r, &n);
    if (!n)
        return KV_OK;
    if (n > SIZE_MAX / sizeof(mem_undo) || undo_reserve(m, (size_t)n) < 0)
        return out_of_memory(m, "ClearRange");
    mem_index_pos pos = mem_index_seek(&m->index, r->start, r->start_len);
    for (uint64_t i = 0; i < n; i++) {
        if (i && !m->batch.open)
            pos = mem_index_seek(&m->index, r->start, r->start_len);
        else if (i)
            mem_index_settle(&pos);
        mem_item *it = mem_index_at(pos);
        size_t klen;
        const uint8_t *key = mem_item_key(it, &klen);
        mem_table *in;
        mem_slot *s = lookup(m, key, klen, hash_key(key, klen), &in);
        if (fn)
            (void)visit(it, 1, fn, ctx);
        remove_item(m, in, s, it, key, klen);
        wrote(m, it, NULL, rev);
    }
    *deleted = n;
    maybe_shrink(m);
    return KV_OK;
}

static uint64_t mem_revision(kv_engine *e)
{
    return ((mem_engine *)e)->revision;
}

static kv_status mem_walk(kv_engine *e, const kv_range *r, int reverse, int with_values,
                          kv_entry_fn fn, void *ctx)
{
    mem_engine *m = (mem_engine *)e;
    mem_index_pos pos;
    mem_item *it;

    if (!reverse) {
        pos = mem_index_seek(&m->index, r->start, r->start_len);
        while ((it = mem_index_at(pos))
               && (!r->end_len || mem_item_cmp(it, r->end, r->end_len) < 0)
               && !visit(it, with_values, fn, ctx))
            mem_index_next(&pos);
        return KV_OK;
    }
    pos = mem_index_seek_before(&m->index, r->end, r->end_len);
    while ((it = mem_index_at(pos))
           && (!r->start_len || mem_item_cmp(it, r->start, r->start_len) >= 0)
           && !visit(it, with_values, fn, ctx))
        mem_index_prev(&pos);
    return KV_OK;
}

static kv_status mem_batch_begin(kv_engine *e)
{
    mem_engine *m = (mem_engine *)e;
    mem_batch *b = &m->batch;

    if (b->open)
        return KV_FAILED_PRECONDITION;
    b->open = 1;
    b->n = 0;
    b->count = m->count;
    b->data_bytes = m->data_bytes;
    b->item_bytes = m->item_bytes;
    b->revision = m->revision;
    mem_index_hold(&m->index, 1);
    return KV_OK;
}

static int has_deadline(mem_item *it)
{
    size_t klen;

    (void)mem_item_key(it, &klen);
    return mem_item_heap_slot(it, klen) != NULL;
}

/* Undoes write U of the open batch, the last not yet undone: nothing
 * allocates. A key it removed goes back into the table (which cannot be
 * fuller than before the removal: no shrink starts inside a batch) and
 * into the index, whose held leaves still have its room (mem_index.h). */
static void undo_write(mem_engine *m, const mem_undo *u)
{
    size_t klen;
    const uint8_t *key = mem_item_key(u->now ? u->now : u->was, &klen);
    uint64_t h = hash_key(key, klen);
    mem_table *in;
    mem_slot *s = lookup(m, key, klen, h, &in);

    /* The heap has the room: undone in reverse, it never holds more
     * entries than it did at some point of the batch. */
    if (u->now && has_deadline(u->now))
        mem_ttl_remove(&m->ttl, u->now);
    if (u->was && has_deadline(u->was))
        mem_ttl_add(&m->ttl, u->was);
    if (u->was && u->now) {
        s->item = u->was;
        mem_index_replace(&m->index, u->now, u->was);
    } else if (u->now) {
        table_remove(m, in, s);
        mem_index_remove(&m->index, key, klen);
    } else {
        s->hash = h;
        s->item = u->was;
        m->count++;
        if (mem_index_insert(&m->index, u->was) < 0)
            kv_log(KV_LOG_ERROR, "engine memory: a batch's undo found no room in the index");
    }
}

static kv_status mem_batch_end(kv_engine *e, int keep)
{
    mem_engine *m = (mem_engine *)e;
    mem_batch *b = &m->batch;

    if (!b->open)
        return KV_FAILED_PRECONDITION;
    if (!keep) {
        for (size_t i = b->n; i-- > 0;)
            undo_write(m, &b->log[i]);
        m->count = b->count;
        m->data_bytes = b->data_bytes;
        m->item_bytes = b->item_bytes;
        m->revision = b->revision;
    }
    b->open = 0;
    mem_index_hold(&m->index, 0);
    /* Merge what the held removals left underfull: kept, the batch's
     * removals; undone, the keys it had created. Then free the dead. */
    for (size_t i = 0; i < b->n; i++) {
        const mem_undo *u = &b->log[i];
        const mem_item *gone = keep ? (u->now ? NULL : u->was) : (u->was ? NULL : u->now);
        if (gone) {
            size_t klen;
            const uint8_t *key = mem_item_key(gone, &klen);
            mem_index_tidy(&m->index, key, klen);
        }
    }
    for (size_t i = 0; i < b->n; i++)
        free(keep ? b->log[i].was : b->log[i].now);
    b->n = 0;
    /* A Txn's few writes keep their log; a large range's is given back. */
    if (b->cap > UNDO_KEEP) {
        free(b->log);
        b->log = NULL;
        b->cap = 0;
    }
    maybe_shrink(m);
    return KV_OK;
}

static void mem_stats(kv_engine *e, kv_engine_stats *st)
{
    mem_engine *m = (mem_engine *)e;

    st->keys = m->count;
    st->data_bytes = m->data_bytes;
    st->memory_bytes = m->item_bytes + capacity(&m->cur) * sizeof(mem_slot) + m->index.bytes
                       + m->batch.cap * sizeof(mem_undo) + m->ttl.cap * sizeof(mem_ttl_entry);
    st->keys_with_ttl = m->ttl.n;
    if (m->old.slots)
        st->memory_bytes += m->old_held * sizeof(mem_slot);
}

/* Frees every item, in either table (not the tables). */
static void free_items(mem_engine *m)
{
    for (size_t i = 0; i <= m->cur.mask; i++)
        free(m->cur.slots[i].item);
    for (size_t i = 0; m->old.slots && i < m->old_end; i++)
        free(m->old.slots[i].item);
}

static kv_status mem_close(kv_engine *e)
{
    mem_engine *m = (mem_engine *)e;

    if (m->batch.open)
        (void)mem_batch_end(e, 0);
    free_items(m);
    table_free(&m->cur);
    if (m->old.slots)
        table_free(&m->old);
    mem_index_free(&m->index);
    mem_ttl_free(&m->ttl);
    free(m->batch.log);
    free(m);
    return KV_OK;
}

/* Puts a new item for KEY with META and VALUE (which may lie in the old
 * item) where the item of slot S was, WAS decoded, in the table, the
 * index and the heap, and frees the old one: never inside a batch. The
 * store's revision is the caller's. Operation OP's status: KV_OK, or out
 * of memory with nothing changed. */
static kv_status replace_item(mem_engine *m, mem_slot *s, const mem_item_view *was,
                              const uint8_t *key, size_t klen, const kv_meta *meta,
                              const uint8_t *value, size_t vlen, const char *op)
{
    mem_item *old = s->item;
    uint8_t head[MEM_ITEM_HEAD_MAX];
    size_t headlen = mem_item_head(head, vlen, meta);
    size_t size = mem_item_size(klen, vlen, headlen);
    mem_item *it = meta->expires_ms && mem_ttl_reserve(&m->ttl, 1) < 0 ? NULL : malloc(size);

    if (!it)
        return out_of_memory(m, op);
    mem_item_put(it, key, klen, head, headlen, value, vlen);
    mem_index_replace(&m->index, old, it);
    if (was->meta.expires_ms)
        mem_ttl_remove(&m->ttl, old);
    if (meta->expires_ms)
        mem_ttl_add(&m->ttl, it);
    s->item = it;
    m->data_bytes = m->data_bytes + vlen - was->vlen;
    m->item_bytes = m->item_bytes + size - was->size;
    free(old);
    return KV_OK;
}

/* A new deadline is a new item (the deadline's bytes sit before the
 * revisions). Never inside a batch (engine.h). */
static kv_status mem_touch(kv_engine *e, const uint8_t *key, size_t klen, uint64_t expires)
{
    mem_engine *m = (mem_engine *)e;
    mem_slot *s = lookup(m, key, klen, hash_key(key, klen), NULL);
    mem_item_view v;

    if (!s->item)
        return KV_NOT_FOUND;
    mem_item_open(s->item, &v);
    if (v.meta.expires_ms == expires)
        return KV_OK;
    kv_meta meta = v.meta;
    meta.expires_ms = expires;
    return replace_item(m, s, &v, key, klen, &meta, v.value, v.vlen, "Touch");
}

/* A snapshot's key: a new key goes in as a Set's would, an existing one
 * is replaced as a Touch replaces it, with the meta given. */
static kv_status mem_load(kv_engine *e, const kv_entry *en)
{
    mem_engine *m = (mem_engine *)e;
    uint64_t rev = en->meta.mod_revision > m->revision ? en->meta.mod_revision : m->revision;
    uint64_t h = hash_key(en->key, en->klen);
    mem_slot *s;
    mem_item_view was;
    kv_status st;

    if (m->batch.open)
        return KV_FAILED_PRECONDITION;
    if (!kv_meta_valid(&en->meta))
        return KV_INVALID_ARGUMENT;
    s = lookup(m, en->key, en->klen, h, NULL);
    if (!s->item)
        return add_item(m, s, en->key, en->klen, h, &en->meta, en->value, en->vlen, rev, "load");
    mem_item_open(s->item, &was);
    st = replace_item(m, s, &was, en->key, en->klen, &en->meta, en->value, en->vlen, "load");
    if (st == KV_OK)
        m->revision = rev;
    return st;
}

/* A new table first, the only allocation: without it, nothing changes. */
static kv_status mem_reset(kv_engine *e, uint64_t rev)
{
    mem_engine *m = (mem_engine *)e;
    mem_table fresh;

    if (m->batch.open)
        return KV_FAILED_PRECONDITION;
    if (table_alloc(&fresh, m->min_capacity) < 0)
        return out_of_memory(m, "reset");
    free_items(m);
    table_free(&m->cur);
    if (m->old.slots)
        table_free(&m->old);
    m->cur = fresh;
    m->old_count = m->old_end = m->old_held = 0;
    m->count = 0;
    m->data_bytes = m->item_bytes = 0;
    m->revision = rev;
    mem_index_free(&m->index);
    mem_index_init(&m->index);
    mem_ttl_free(&m->ttl);
    return KV_OK;
}

typedef struct expiring_walk {
    int with_values;
    kv_entry_fn fn;
    void *ctx;
} expiring_walk;

static int expiring_visit(void *ctx, const mem_item *it)
{
    expiring_walk *w = ctx;

    return visit(it, w->with_values, w->fn, w->ctx);
}

static kv_status mem_walk_expiring(kv_engine *e, uint64_t now, int with_values,
                                   kv_entry_fn fn, void *ctx)
{
    expiring_walk w = { with_values, fn, ctx };

    (void)mem_ttl_walk(&((mem_engine *)e)->ttl, now, expiring_visit, &w);
    return KV_OK;
}

static uint64_t mem_next_deadline(kv_engine *e)
{
    return mem_ttl_next(&((mem_engine *)e)->ttl);
}

const kv_engine_ops kv_engine_memory = {
    .name = "memory",
    .clock = CLOCK_MONOTONIC,
    .touch = mem_touch,
    .walk_expiring = mem_walk_expiring,
    .next_deadline = mem_next_deadline,
    .reset = mem_reset,
    .load = mem_load,
    .open = mem_open,
    .get = mem_get,
    .get_view = mem_get_view,
    .set = mem_set,
    .unset = mem_unset,
    .unset_range = mem_unset_range,
    .revision = mem_revision,
    .walk = mem_walk,
    .count = mem_count,
    .batch_begin = mem_batch_begin,
    .batch_end = mem_batch_end,
    .stats = mem_stats,
    .close = mem_close,
};
