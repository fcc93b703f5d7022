/* arena.h - a bump allocator for the request path.
 *
 * Everything one batch of requests needs (unpacked messages, values copied
 * out of the engine, packed payloads) comes from an arena that is reset
 * after the batch, so the steady state does no malloc per request. The
 * arena is also a ProtobufCAllocator, so protobuf-c unpacks into it. */
#ifndef KV_ARENA_H
#define KV_ARENA_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

struct kv_arena_chunk;

typedef struct kv_arena {
    ProtobufCAllocator pb;          /* read-only: hands allocations to protobuf-c */
    struct kv_arena_chunk *head;    /* private: current chunk, chained to older ones */
    struct kv_arena_chunk *big;     /* private: oversized blocks, freed on reset */
    size_t chunk_size;              /* private: size of a regular chunk */
    int spilled;                    /* read-only: holds more than one chunk (an
                                       oversized block, or chunks chained): worth
                                       a reset as soon as what it holds is no
                                       longer used */
} kv_arena;

/* Prepares A with chunks of CHUNK_SIZE bytes (no allocation yet). */
void kv_arena_init(kv_arena *a, size_t chunk_size);

/* Returns SIZE bytes aligned for any type, or NULL when memory is out.
 * Memory stays valid until kv_arena_reset() or kv_arena_free(). */
void *kv_arena_alloc(kv_arena *a, size_t size);

/* Forgets every allocation; keeps one chunk for reuse. */
void kv_arena_reset(kv_arena *a);



/* Releases all memory of A. */
void kv_arena_free(kv_arena *a);

#endif
