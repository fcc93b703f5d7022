/* engine_memory.c - the in-memory engine: an open-addressing hash table
 * owned by this file, holding one malloc'd item (key and value side by
 * side) per entry, and the table's resizing. Not thread-safe (see engine.h).
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
 * resize_start() for the one run that would wrap.
 *
 * Its one runtime error is running out of memory, which only the refused
 * client would hear of: logged (log.h) at most once a minute, since memory
 * near its end comes and goes from one request to the next. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <xxhash.h>
#include "engine.h"
#include "log.h"

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

typedef struct mem_item {
    uint32_t klen, vlen;
    uint8_t data[];     /* klen key bytes, then vlen value bytes */
} mem_item;

typedef struct mem_slot {
    uint64_t hash;
    mem_item *item;     /* NULL: empty */
} mem_slot;

#define RELEASE_SLOTS (RELEASE_BYTES / sizeof(mem_slot))

typedef struct mem_table {
    mem_slot *slots;    /* NULL: no table */
    size_t mask;        /* capacity - 1; capacity is a power of two */
    int mapped;         /* slots came from mmap (else calloc) */
} mem_table;

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
    uint64_t item_bytes;
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
        if (s->hash == h && s->item->klen == klen && memcmp(s->item->data, key, klen) == 0)
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

static size_t item_size(size_t klen, size_t vlen)
{
    return sizeof(mem_item) + klen + vlen;
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
    *out = &m->base;
    return KV_OK;
}

static kv_status mem_get(kv_engine *e, const uint8_t *key, size_t klen,
                         ProtobufCAllocator *alloc, ProtobufCBinaryData *value, kv_meta *meta)
{
    if (meta)
        *meta = (kv_meta){ 0 };     /* TODO(issue 13): revisions */
    mem_engine *m = (mem_engine *)e;
    mem_slot *s = lookup(m, key, klen, hash_key(key, klen), NULL);

    if (!s->item)
        return KV_NOT_FOUND;
    if (kv_engine_copy_out(alloc, s->item->data + klen, s->item->vlen, value) != KV_OK)
        return out_of_memory(m, "Get");
    return KV_OK;
}

/* The item's own bytes: items move only when written (a slot holds a
 * pointer, so resizing moves pointers, not items). */
static kv_status mem_get_view(kv_engine *e, const uint8_t *key, size_t klen,
                              ProtobufCBinaryData *value, kv_meta *meta)
{
    if (meta)
        *meta = (kv_meta){ 0 };     /* TODO(issue 13): revisions */
    mem_engine *m = (mem_engine *)e;
    mem_slot *s = lookup(m, key, klen, hash_key(key, klen), NULL);

    if (!s->item)
        return KV_NOT_FOUND;
    value->len = s->item->vlen;
    value->data = value->len ? s->item->data + klen : NULL;
    return KV_OK;
}

static kv_status mem_set(kv_engine *e, const uint8_t *key, size_t klen,
                         const uint8_t *value, size_t vlen, uint64_t rev)
{
    (void)rev;
    mem_engine *m = (mem_engine *)e;
    uint64_t h = hash_key(key, klen);

    if (klen > UINT32_MAX || vlen > UINT32_MAX)
        return KV_INVALID_ARGUMENT;
    mem_slot *s = lookup(m, key, klen, h, NULL);
    mem_item *old = s->item;

    /* During a resize cur cannot pass 3/4 (see RESIZE_STEP): no check. */
    if (!old && !m->old.slots && (m->count + 1) * 4 > capacity(&m->cur) * 3) {
        if (resize_start(m, capacity(&m->cur) * 2) < 0)
            return out_of_memory(m, "Set");
        s = find(&m->cur, key, klen, h);
    }
    /* Same size: overwrite in place, no allocation. */
    if (old && old->vlen == vlen) {
        memcpy(old->data + klen, value, vlen);
        return KV_OK;
    }
    mem_item *it = malloc(item_size(klen, vlen));
    if (!it)
        return out_of_memory(m, "Set");
    it->klen = (uint32_t)klen;
    it->vlen = (uint32_t)vlen;
    memcpy(it->data, key, klen);
    if (vlen)
        memcpy(it->data + klen, value, vlen);
    if (old) {
        m->data_bytes -= old->klen + old->vlen;
        m->item_bytes -= item_size(old->klen, old->vlen);
        free(old);
    } else {
        m->count++;
        s->hash = h;
    }
    s->item = it;
    m->data_bytes += klen + vlen;
    m->item_bytes += item_size(klen, vlen);
    return KV_OK;
}

static kv_status mem_unset(kv_engine *e, const uint8_t *key, size_t klen,
                           ProtobufCAllocator *alloc, ProtobufCBinaryData *old, uint64_t rev)
{
    (void)rev;
    mem_engine *m = (mem_engine *)e;
    mem_table *in;
    mem_slot *s = lookup(m, key, klen, hash_key(key, klen), &in);
    mem_item *it = s->item;

    if (!it)
        return KV_NOT_FOUND;
    if (old && kv_engine_copy_out(alloc, it->data + klen, it->vlen, old) != KV_OK)
        return out_of_memory(m, "Clear");   /* nothing removed */
    remove_slot(in, s);
    if (in == &m->old)
        m->old_count--;
    m->count--;
    m->data_bytes -= it->klen + it->vlen;
    m->item_bytes -= item_size(it->klen, it->vlen);
    free(it);
    /* Halving leaves it under 1/4 full: far from both 3/4 and 1/8. Without
     * memory for the smaller array the table just stays as it is. */
    if (!m->old.slots && m->count * 8 < capacity(&m->cur) && capacity(&m->cur) > m->min_capacity)
        (void)resize_start(m, capacity(&m->cur) / 2);
    return KV_OK;
}

static void mem_stats(kv_engine *e, kv_engine_stats *st)
{
    mem_engine *m = (mem_engine *)e;

    st->keys = m->count;
    st->data_bytes = m->data_bytes;
    st->memory_bytes = m->item_bytes + capacity(&m->cur) * sizeof(mem_slot);
    if (m->old.slots)
        st->memory_bytes += m->old_held * sizeof(mem_slot);
}

static kv_status mem_close(kv_engine *e)
{
    mem_engine *m = (mem_engine *)e;

    for (size_t i = 0; i <= m->cur.mask; i++)
        free(m->cur.slots[i].item);
    table_free(&m->cur);
    if (m->old.slots) {
        for (size_t i = 0; i < m->old_end; i++)
            free(m->old.slots[i].item);
        table_free(&m->old);
    }
    free(m);
    return KV_OK;
}

const kv_engine_ops kv_engine_memory = {
    .name = "memory",
    .open = mem_open,
    .get = mem_get,
    .get_view = mem_get_view,
    .set = mem_set,
    .unset = mem_unset,
    .unset_range = kv_engine_stub_unset_range,
    .revision = kv_engine_stub_revision,
    .walk = kv_engine_stub_walk,
    .count = kv_engine_stub_count,
    .batch_begin = kv_engine_stub_batch_begin,
    .batch_end = kv_engine_stub_batch_end,
    .stats = mem_stats,
    .close = mem_close,
};
