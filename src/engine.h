/* engine.h - the storage engine interface: a table of function pointers,
 * engines registered by name, each with the same life: open(dir, options),
 * get, set, unset, ordered walks and counts over key ranges, atomic
 * batches, close; and each keeping the store's revisions (v2). A table rather than one compiled-in engine so
 * that an engine is picked at start (--engine) and tests run every live
 * suite once per engine against the same server.
 *
 * Thread-safety: an engine instance is NOT thread-safe; the server calls it
 * from its one event loop. Engines that can be shared across threads will
 * say so in their own file.
 *
 * Memory: keys and values passed in are borrowed for the call; the engine
 * copies what it keeps. They must not be views of the same engine's bytes
 * (get_view, walk): a write may move those before it has read them. Values handed back are copied into memory from the
 * caller's ProtobufCAllocator (the request arena), so they stay valid after
 * later writes and the caller frees them through that allocator. */
#ifndef KV_ENGINE_H
#define KV_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include <kvstore/status.h>

/* When an engine that keeps files makes accepted writes durable. The
 * zero value is the safe one. */
typedef enum kv_sync_mode {
    KV_SYNC_ALWAYS = 0,     /* before any answer (flush syncs: group commit) */
    KV_SYNC_BATCH,          /* at most every sync_interval_ms, after answers */
    KV_SYNC_NONE,           /* never; the OS writes back when it likes */
} kv_sync_mode;

/* The lmdb engine's map when --lmdb-map-size is not given. */
#define KV_LMDB_DEFAULT_MAP_BYTES ((uint64_t)1 << 30)

/* Options given to open(); fields an engine does not use are ignored. */
typedef struct kv_engine_options {
    size_t expected_keys;       /* sizing hint; 0 = engine's default */
    kv_sync_mode sync;          /* --sync */
    uint32_t sync_interval_ms;  /* --sync-interval-ms, for KV_SYNC_BATCH */
    uint64_t map_bytes;         /* --lmdb-map-size; 0 = engine's default */
} kv_engine_options;

/* The name of a sync mode ("always", "batch", "none"; static string). */
const char *kv_sync_mode_name(kv_sync_mode mode);

/* Parses a sync mode name. Returns 0, or -1 for an unknown NAME. */
int kv_sync_mode_parse(const char *name, kv_sync_mode *out);

typedef struct kv_engine kv_engine;
typedef struct kv_engine_view kv_engine_view;

/* Figures an engine reports about itself. */
typedef struct kv_engine_stats {
    uint64_t keys;          /* entries stored */
    uint64_t data_bytes;    /* sum of key and value lengths */
    uint64_t memory_bytes;  /* what the engine holds in RAM, overhead included
                               (lmdb: the bytes of its B-tree pages in use) */
    uint64_t file_bytes;    /* size of its files on disk; 0: no files */
    uint64_t map_bytes;     /* lmdb: the map size, the most the data may take */
    uint64_t last_sync_ms;  /* when writes were last made durable, ms since
                               the epoch; 0: not since open */
    const char *sync;       /* sync mode name (static), NULL: no files */
    uint64_t keys_with_ttl; /* v2.1: keys that have a deadline (due ones too) */
} kv_engine_stats;

/* What an engine keeps about a key besides its bytes: the data model's
 * revisions (docs/PROTOCOL.md, v2). A missing key reads as all zero. */
typedef struct kv_meta {
    uint64_t create_revision;   /* the revision of the write that created it */
    uint64_t mod_revision;      /* the revision of its last write */
    uint64_t version;           /* writes since it was created; 1 after the first */
    uint64_t expires_ms;        /* v2.1: when it expires, in ms on the engine's
                                   clock (kv_engine_now_ms); 0: never */
} kv_meta;

/* A key handed to a walk's callback: views of the engine's own bytes,
 * valid only until the callback returns. */
typedef struct kv_entry {
    const uint8_t *key;
    size_t klen;
    const uint8_t *value;       /* NULL when empty, or when the walk was
                                   asked for keys only */
    size_t vlen;                /* the value's length, even for keys only */
    kv_meta meta;
} kv_entry;

/* Keys K with START <= K < END in byte order (memcmp, a shorter key first
 * on a tie). START_LEN 0: from the first key; END_LEN 0: no upper bound.
 * Borrowed for the call. */
typedef struct kv_range {
    const uint8_t *start;
    size_t start_len;
    const uint8_t *end;
    size_t end_len;
} kv_range;

/* A walk's callback: called once per key, in order. Returns 0 to go on,
 * nonzero to stop the walk there. It must not call the engine. */
typedef int (*kv_entry_fn)(void *ctx, const kv_entry *entry);

/* Revisions, for every write below: REV is the revision the write makes,
 * never below the engine's revision(). A write that changes something sets
 * the store's revision to REV; a new key gets {REV, REV, 1}, an existing
 * one keeps its create_revision, takes mod_revision REV and one more
 * version. Writes that change nothing (a missing key unset, an empty
 * range) leave the revision alone. The service gives every write of one
 * request the same REV (a Txn, a ClearRange), and every request that
 * changes data revision() + 1: so the same writes in the same order leave
 * every engine, on every node, with the same keys and revisions.
 *
 * Expiry (v2.1): a key may carry a deadline, meta.expires_ms, in ms on the
 * instance's clock (struct kv_engine's clock). Engines only store
 * deadlines and find the keys whose deadline has come (walk_expiring):
 * they never hide or remove a key by themselves. Which keys count as
 * gone, and when they are removed (at a revision, as any write), is
 * decided in one place above them (expire.c), so that in a cluster only
 * the leader decides it. */
typedef struct kv_engine_ops {
    const char *name;   /* what --engine selects, e.g. "memory" */
    int clock;          /* the default clock of deadlines (clock_gettime's
                           id), copied into each instance's e->clock at
                           open: CLOCK_MONOTONIC for an engine that forgets
                           at exit, CLOCK_REALTIME for one whose deadlines
                           must hold across restarts */

    /* Opens an instance keeping its files in DIR (may be NULL for engines
     * with no files). Returns KV_OK and *OUT, or an error with a one-line
     * reason in ERR. The instance is freed by close(). */
    kv_status (*open)(const char *dir, const kv_engine_options *opts,
                      kv_engine **out, char *err, size_t errlen);

    /* KV_OK with a copy of the value in *VALUE (allocated from ALLOC; data
     * is NULL when the value is empty) and the key's revisions in *META
     * (skipped when META is NULL), or KV_NOT_FOUND. */
    kv_status (*get)(kv_engine *e, const uint8_t *key, size_t klen,
                     ProtobufCAllocator *alloc, ProtobufCBinaryData *value, kv_meta *meta);

    /* Optional. KV_OK with *VALUE pointing at the engine's own bytes of the
     * value (data NULL when empty) and *META as get's, or KV_NOT_FOUND. The
     * bytes are valid until the next call that writes (set, unset,
     * unset_range, batch_end, flush, close): for a caller that uses them at
     * once, as Get packs its answer before it returns, which saves copying
     * every value read. NULL: get() only. */
    kv_status (*get_view)(kv_engine *e, const uint8_t *key, size_t klen,
                          ProtobufCBinaryData *value, kv_meta *meta);

    /* Stores VALUE under KEY at revision REV (see above), replacing any old
     * value, with the deadline EXPIRES (0: none; it replaces the old one).
     * When SEEN is not NULL and the key existed, SEEN(CTX, old entry) is
     * called once, with the old value and meta, before they are replaced
     * (its return value is ignored): what a watch's prev_kv needs, without
     * a lookup of its own. KV_OK, or KV_RESOURCE_EXHAUSTED when memory is
     * out (the old value, deadline and revisions are kept; SEEN may have
     * been called). */
    kv_status (*set)(kv_engine *e, const uint8_t *key, size_t klen,
                     const uint8_t *value, size_t vlen, uint64_t rev, uint64_t expires,
                     kv_entry_fn seen, void *ctx);

    /* Sets KEY's deadline to EXPIRES (0: none), changing nothing else: not
     * its value, not its revisions, not the store's revision. KV_OK,
     * KV_NOT_FOUND, or KV_RESOURCE_EXHAUSTED with nothing changed. Not
     * inside a batch. */
    kv_status (*touch)(kv_engine *e, const uint8_t *key, size_t klen, uint64_t expires);

    /* Removes KEY at revision REV. KV_OK with the old value copied into
     * *OLD from ALLOC (skipped when OLD is NULL) and its meta in *OLD_META
     * (skipped when NULL), or KV_NOT_FOUND when it was absent (the
     * revision does not move). */
    kv_status (*unset)(kv_engine *e, const uint8_t *key, size_t klen,
                       ProtobufCAllocator *alloc, ProtobufCBinaryData *old,
                       kv_meta *old_meta, uint64_t rev);

    /* Removes every key of R at revision REV; their number in *DELETED.
     * When FN is not NULL it is called for each key removed, in key order,
     * with its value and meta, before the removal (return value ignored).
     * KV_OK, or an error with nothing removed (FN may have been called). */
    kv_status (*unset_range)(kv_engine *e, const kv_range *r, uint64_t rev,
                             uint64_t *deleted, kv_entry_fn fn, void *ctx);

    /* The store's revision: that of the last write that changed data, 0 on
     * a new store. Engines that keep files keep it across restarts. */
    uint64_t (*revision)(kv_engine *e);

    /* Calls FN for the keys of R in ascending order (descending when
     * REVERSE), until FN returns nonzero or the keys run out. Values are
     * handed over only WITH_VALUES (else entry->value is NULL). KV_OK, or an
     * engine error (FN may have seen some keys). */
    kv_status (*walk)(kv_engine *e, const kv_range *r, int reverse, int with_values,
                      kv_entry_fn fn, void *ctx);

    /* The number of keys in R in *N. KV_OK, or an engine error. */
    kv_status (*count)(kv_engine *e, const kv_range *r, uint64_t *n);

    /* Calls FN for every key whose deadline is at or before NOW (and not
     * 0), once each, in no particular order (roughly earliest first),
     * until FN returns nonzero or they run out; values only WITH_VALUES,
     * as walk. KV_OK, or an engine error. */
    kv_status (*walk_expiring)(kv_engine *e, uint64_t now, int with_values,
                               kv_entry_fn fn, void *ctx);

    /* The earliest deadline of any key, 0 when no key has one. */
    uint64_t (*next_deadline)(kv_engine *e);

    /* An atomic batch, for a Txn: the writes between batch_begin and
     * batch_end apply all or none. batch_end with KEEP 0 undoes every
     * write since batch_begin (values, revisions and the store's
     * revision) as if it had never been made, and returns KV_OK; with
     * KEEP 1 it keeps them and returns KV_OK, or an error having undone
     * them. Reads inside a batch see its writes. Batches do not nest.
     * batch_begin: KV_OK, or an error with no batch open. */
    kv_status (*batch_begin)(kv_engine *e);
    kv_status (*batch_end)(kv_engine *e, int keep);

    /* Empties the store and sets its revision to REV, as one step: every
     * key and every deadline removed (revision() == REV, next_deadline()
     * == 0, no keys in stats). For installing a snapshot (then load()).
     * Writes nothing a watch would see (engines keep no events). Not
     * inside a batch (KV_FAILED_PRECONDITION). Engines that keep files
     * commit it, and the writes accepted before it, and sync them, before
     * returning: durable once it returns, whatever --sync says. KV_OK, or
     * an error with the store as it was; for an engine with files whose
     * commit failed, as last committed (writes accepted before the reset
     * lost with it, so the next flush fails). No key is removed one by
     * one: LMDB drops its trees (mdb_drop), memory frees its items. */
    kv_status (*reset)(kv_engine *e, uint64_t rev);

    /* Stores ENTRY's key and value with exactly ENTRY->meta (revisions,
     * version and deadline; expires_ms 0: none), replacing the key and its
     * deadline if it is there; the store's revision becomes
     * max(revision(), meta.mod_revision). For loading a snapshot after
     * reset(), in any key order (key order is fastest). ENTRY and its
     * bytes are borrowed for the call. Not inside a batch. KV_OK;
     * KV_INVALID_ARGUMENT for meta no write could have made
     * (create_revision or version 0, mod_revision below create_revision)
     * or a key the engine cannot store, with nothing changed;
     * KV_RESOURCE_EXHAUSTED when memory (or the LMDB map) is out, the old
     * key kept; KV_FAILED_PRECONDITION inside a batch. LMDB groups loads
     * in the turn's write transaction, as set: durable at flush(). */
    kv_status (*load)(kv_engine *e, const kv_entry *entry);

    /* Optional: a consistent read-only view of the store, for serializing
     * a snapshot on another thread while the loop goes on writing. NULL in
     * an engine that has none (memory: the caller walks on the loop).
     *
     * snapshot_begin, on the loop's thread like every other op: commits
     * the turn's accepted writes (as flush() would; synced as --sync says)
     * and returns in *OUT a view of the store as they left it, its
     * revision in (*OUT)->revision. KV_OK; KV_FAILED_PRECONDITION inside a
     * batch; an engine error (the commit's failure: as flush's, the next
     * flush fails). Freed by snapshot_end.
     *
     * snapshot_walk: calls FN for the keys of R in the view, ascending,
     * with values and meta (deadlines included), until FN returns nonzero;
     * entries are valid until FN returns. KV_OK or an engine error. Safe on
     * any one thread at a time for a view, while the loop calls the engine
     * (writes, flush, reset included): the view reads through its own
     * LMDB read transaction, which sees none of them. FN must not call
     * the engine. May be called more than once (e.g. in chunks).
     *
     * snapshot_end: frees the view; from the thread that walked it, or any
     * thread once no walk runs, and always before close(). While a view
     * lives LMDB cannot reuse the pages that later writes free, so the
     * file grows with what is written meanwhile: end it soon. */
    kv_status (*snapshot_begin)(kv_engine *e, kv_engine_view **out);
    kv_status (*snapshot_walk)(kv_engine_view *v, const kv_range *r, kv_entry_fn fn, void *ctx);
    void (*snapshot_end)(kv_engine_view *v);

    /* Makes every write accepted so far as durable as the engine promises
     * (e.g. commits and syncs the writes of this loop turn as one group).
     * The server calls it once per loop turn before sending any answer, and
     * sends none if it fails. NULL for engines with nothing to flush. */
    kv_status (*flush)(kv_engine *e);

    /* Seconds until sync() should run for writes that flush() committed but
     * left unsynced (--sync batch); negative when nothing waits. The server
     * asks after each flush and after each sync, and arms one timer. NULL
     * for engines that never defer a sync. */
    double (*sync_delay)(kv_engine *e);

    /* Makes every committed write durable now. NULL when sync_delay is. */
    kv_status (*sync)(kv_engine *e);

    /* A one-line reason for the last call that failed, or NULL when the
     * generic reason for its status says enough. Engine-owned, valid until
     * the next call. NULL: the engine never has more to say. */
    const char *(*last_error)(kv_engine *e);

    /* Fills in *ST what the engine has; kv_engine_stats_get zeroes it first. */
    void (*stats)(kv_engine *e, kv_engine_stats *st);

    /* Flushes what needs flushing and frees the instance. */
    kv_status (*close)(kv_engine *e);
} kv_engine_ops;

/* Every engine instance starts with this, so kv_engine_* can dispatch. */
struct kv_engine {
    const kv_engine_ops *ops;
    size_t max_key_bytes;   /* read-only: the longest key the engine can
                               store; 0 = no limit of its own */
    int clock;              /* read-only: the clock of this instance's
                               deadlines, ops->clock from kv_engine_open
                               unless kv_engine_set_clock changed it */
    uint64_t syncs;         /* read-only: times the engine made writes
                               durable since it opened (a commit that
                               syncs, a sync); the server times the calls
                               that change it (stats.syncs) */
};

/* A view (snapshot_begin) starts with this; the rest is its engine's. */
struct kv_engine_view {
    kv_engine *engine;
    uint64_t revision;      /* read-only: the store's revision in the view */
};

/* Opens the engine registered as NAME. Returns as ops->open does;
 * KV_INVALID_ARGUMENT with a message listing the engines for an unknown
 * NAME. */
kv_status kv_engine_open(const char *name, const char *dir,
                         const kv_engine_options *opts, kv_engine **out,
                         char *err, size_t errlen);

/* Puts E's deadlines on CLOCK (a clock_gettime id): a cluster, whose
 * leader stamps each entry with its wall-clock time for every node to
 * apply, sets CLOCK_REALTIME. Call it right after kv_engine_open, before
 * any write: deadlines already stored are not converted. An engine whose
 * deadlines persist is on CLOCK_REALTIME already. */
void kv_engine_set_clock(kv_engine *e, int clock);

/* For engines: copies P[0..N) into memory from ALLOC as get/unset hand
 * values back (an empty value stays data = NULL). KV_OK, or
 * KV_RESOURCE_EXHAUSTED when ALLOC has no memory. */
kv_status kv_engine_copy_out(ProtobufCAllocator *alloc, const void *p, size_t n,
                             ProtobufCBinaryData *out);

/* For engines: whether M is meta some sequence of writes could have given
 * a key, as load() requires: create_revision and version at least 1,
 * mod_revision not below create_revision. */
int kv_meta_valid(const kv_meta *m);

/* For engines and their callers: whether KEY (KLEN bytes) lies in R. */
int kv_range_has(const kv_range *r, const uint8_t *key, size_t klen);

/* Byte order of keys: memcmp, a shorter key first on a tie. <0, 0, >0. */
int kv_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* The registered engine names, comma-separated (static string). */
const char *kv_engine_names(void);

/* Returns 1 when NAME is the name of an engine, else 0. */
int kv_engine_known(const char *name);

static inline kv_status kv_engine_get(kv_engine *e, const uint8_t *k, size_t kl,
                                      ProtobufCAllocator *a, ProtobufCBinaryData *v, kv_meta *m)
{ return e->ops->get(e, k, kl, a, v, m); }
/* get_view() where the engine has it, else get() into memory from A: a
 * value to use before the next write (see get_view). */
static inline kv_status kv_engine_get_view(kv_engine *e, const uint8_t *k, size_t kl,
                                           ProtobufCAllocator *a, ProtobufCBinaryData *v,
                                           kv_meta *m)
{ return e->ops->get_view ? e->ops->get_view(e, k, kl, v, m) : e->ops->get(e, k, kl, a, v, m); }
static inline kv_status kv_engine_set(kv_engine *e, const uint8_t *k, size_t kl,
                                      const uint8_t *v, size_t vl, uint64_t rev)
{ return e->ops->set(e, k, kl, v, vl, rev, 0, NULL, NULL); }
static inline kv_status kv_engine_set_ttl(kv_engine *e, const uint8_t *k, size_t kl,
                                          const uint8_t *v, size_t vl, uint64_t rev,
                                          uint64_t expires, kv_entry_fn seen, void *ctx)
{ return e->ops->set(e, k, kl, v, vl, rev, expires, seen, ctx); }
static inline kv_status kv_engine_touch(kv_engine *e, const uint8_t *k, size_t kl,
                                        uint64_t expires)
{ return e->ops->touch(e, k, kl, expires); }
static inline kv_status kv_engine_walk_expiring(kv_engine *e, uint64_t now, int with_values,
                                                kv_entry_fn fn, void *ctx)
{ return e->ops->walk_expiring(e, now, with_values, fn, ctx); }
static inline uint64_t kv_engine_next_deadline(kv_engine *e)
{ return e->ops->next_deadline(e); }
/* Now on E's clock (e->clock), in ms. */
uint64_t kv_engine_now_ms(const kv_engine *e);
static inline kv_status kv_engine_unset(kv_engine *e, const uint8_t *k, size_t kl,
                                        ProtobufCAllocator *a, ProtobufCBinaryData *old,
                                        uint64_t rev)
{ return e->ops->unset(e, k, kl, a, old, NULL, rev); }
static inline kv_status kv_engine_unset_meta(kv_engine *e, const uint8_t *k, size_t kl,
                                             ProtobufCAllocator *a, ProtobufCBinaryData *old,
                                             kv_meta *old_meta, uint64_t rev)
{ return e->ops->unset(e, k, kl, a, old, old_meta, rev); }
static inline kv_status kv_engine_unset_range(kv_engine *e, const kv_range *r, uint64_t rev,
                                              uint64_t *deleted)
{ return e->ops->unset_range(e, r, rev, deleted, NULL, NULL); }
static inline kv_status kv_engine_unset_range_each(kv_engine *e, const kv_range *r,
                                                   uint64_t rev, uint64_t *deleted,
                                                   kv_entry_fn fn, void *ctx)
{ return e->ops->unset_range(e, r, rev, deleted, fn, ctx); }
static inline uint64_t kv_engine_revision(kv_engine *e)
{ return e->ops->revision(e); }
static inline kv_status kv_engine_walk(kv_engine *e, const kv_range *r, int reverse,
                                       int with_values, kv_entry_fn fn, void *ctx)
{ return e->ops->walk(e, r, reverse, with_values, fn, ctx); }
static inline kv_status kv_engine_count(kv_engine *e, const kv_range *r, uint64_t *n)
{ return e->ops->count(e, r, n); }
static inline kv_status kv_engine_reset(kv_engine *e, uint64_t rev)
{ return e->ops->reset(e, rev); }
static inline kv_status kv_engine_load(kv_engine *e, const kv_entry *entry)
{ return e->ops->load(e, entry); }
/* snapshot_begin, or KV_UNIMPLEMENTED where the engine has no views. */
static inline kv_status kv_engine_snapshot_begin(kv_engine *e, kv_engine_view **out)
{ return e->ops->snapshot_begin ? e->ops->snapshot_begin(e, out) : KV_UNIMPLEMENTED; }
static inline kv_status kv_engine_snapshot_walk(kv_engine_view *v, const kv_range *r,
                                                kv_entry_fn fn, void *ctx)
{ return v->engine->ops->snapshot_walk(v, r, fn, ctx); }
static inline void kv_engine_snapshot_end(kv_engine_view *v)
{ v->engine->ops->snapshot_end(v); }
static inline kv_status kv_engine_batch_begin(kv_engine *e)
{ return e->ops->batch_begin(e); }
static inline kv_status kv_engine_batch_end(kv_engine *e, int keep)
{ return e->ops->batch_end(e, keep); }
static inline void kv_engine_stats_get(kv_engine *e, kv_engine_stats *st)
{ *st = (kv_engine_stats){ 0 }; e->ops->stats(e, st); }
static inline kv_status kv_engine_close(kv_engine *e)
{ return e->ops->close(e); }
static inline const char *kv_engine_last_error(kv_engine *e)
{ return e->ops->last_error ? e->ops->last_error(e) : NULL; }

/* The engines. */
extern const kv_engine_ops kv_engine_memory;
extern const kv_engine_ops kv_engine_lmdb;

#endif
