/* engine.h - the storage engine interface: a table of function pointers,
 * engines registered by name (the lifecycle of the seed's Storage trait:
 * open(dir, options), get, set, unset, close).
 *
 * Thread-safety: an engine instance is NOT thread-safe; the server calls it
 * from its one event loop. Engines that can be shared across threads will
 * say so in their own file.
 *
 * Memory: keys and values passed in are borrowed for the call; the engine
 * copies what it keeps. Values handed back are copied into memory from the
 * caller's ProtobufCAllocator (the request arena), so they stay valid after
 * later writes and the caller frees them through that allocator. */
#ifndef KV_ENGINE_H
#define KV_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include <kvstore/status.h>

/* Options given to open(); fields an engine does not use are ignored. */
typedef struct kv_engine_options {
    size_t expected_keys;   /* sizing hint; 0 = engine's default */
} kv_engine_options;

typedef struct kv_engine kv_engine;

/* Figures an engine reports about itself. */
typedef struct kv_engine_stats {
    uint64_t keys;          /* entries stored */
    uint64_t data_bytes;    /* sum of key and value lengths */
    uint64_t memory_bytes;  /* what the engine holds in RAM, overhead included */
} kv_engine_stats;

typedef struct kv_engine_ops {
    const char *name;   /* what --engine selects, e.g. "memory" */

    /* Opens an instance keeping its files in DIR (may be NULL for engines
     * with no files). Returns KV_OK and *OUT, or an error with a one-line
     * reason in ERR. The instance is freed by close(). */
    kv_status (*open)(const char *dir, const kv_engine_options *opts,
                      kv_engine **out, char *err, size_t errlen);

    /* KV_OK with a copy of the value in *VALUE (allocated from ALLOC; data
     * is NULL when the value is empty), or KV_NOT_FOUND. */
    kv_status (*get)(kv_engine *e, const uint8_t *key, size_t klen,
                     ProtobufCAllocator *alloc, ProtobufCBinaryData *value);

    /* Stores VALUE under KEY, replacing any old value. KV_OK, or
     * KV_RESOURCE_EXHAUSTED when memory is out (the old value is kept). */
    kv_status (*set)(kv_engine *e, const uint8_t *key, size_t klen,
                     const uint8_t *value, size_t vlen);

    /* Removes KEY. KV_OK with the old value copied into *OLD from ALLOC
     * (skipped when OLD is NULL), or KV_NOT_FOUND when it was absent. */
    kv_status (*unset)(kv_engine *e, const uint8_t *key, size_t klen,
                       ProtobufCAllocator *alloc, ProtobufCBinaryData *old);

    /* Makes every write accepted so far as durable as the engine promises
     * (e.g. commits and syncs the writes of this loop turn as one group).
     * The server calls it once per loop turn before sending any answer, and
     * sends none if it fails. NULL for engines with nothing to flush. */
    kv_status (*flush)(kv_engine *e);

    /* Fills *ST. */
    void (*stats)(kv_engine *e, kv_engine_stats *st);

    /* Flushes what needs flushing and frees the instance. */
    kv_status (*close)(kv_engine *e);
} kv_engine_ops;

/* Every engine instance starts with this, so kv_engine_* can dispatch. */
struct kv_engine {
    const kv_engine_ops *ops;
};

/* Opens the engine registered as NAME. Returns as ops->open does;
 * KV_INVALID_ARGUMENT with a message listing the engines for an unknown
 * NAME. */
kv_status kv_engine_open(const char *name, const char *dir,
                         const kv_engine_options *opts, kv_engine **out,
                         char *err, size_t errlen);

/* The registered engine names, comma-separated (static string). */
const char *kv_engine_names(void);

static inline kv_status kv_engine_get(kv_engine *e, const uint8_t *k, size_t kl,
                                      ProtobufCAllocator *a, ProtobufCBinaryData *v)
{ return e->ops->get(e, k, kl, a, v); }
static inline kv_status kv_engine_set(kv_engine *e, const uint8_t *k, size_t kl,
                                      const uint8_t *v, size_t vl)
{ return e->ops->set(e, k, kl, v, vl); }
static inline kv_status kv_engine_unset(kv_engine *e, const uint8_t *k, size_t kl,
                                        ProtobufCAllocator *a, ProtobufCBinaryData *old)
{ return e->ops->unset(e, k, kl, a, old); }
static inline void kv_engine_stats_get(kv_engine *e, kv_engine_stats *st)
{ e->ops->stats(e, st); }
static inline kv_status kv_engine_close(kv_engine *e)
{ return e->ops->close(e); }

/* The engines. */
extern const kv_engine_ops kv_engine_memory;

#endif
