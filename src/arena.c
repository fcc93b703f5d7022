/* arena.c - chunked bump allocator; see arena.h. Owns its chunks and
 * nothing else. Not thread-safe: one arena per event loop. */
#include <stdint.h>
#include <stdlib.h>
#include "arena.h"

struct kv_arena_chunk {
    struct kv_arena_chunk *next;
    size_t used, size;
    max_align_t data[];
};

#define ALIGN sizeof(max_align_t)

static void *pb_alloc(void *data, size_t size)
{
    return kv_arena_alloc(data, size);
}

static void pb_free(void *data, void *ptr)
{
    /* Freed all at once by kv_arena_reset(). */
    (void)data;
    (void)ptr;
}

static struct kv_arena_chunk *chunk_new(size_t size)
{
    struct kv_arena_chunk *c = malloc(sizeof *c + size);

    if (c) {
        c->next = NULL;
        c->used = 0;
        c->size = size;
    }
    return c;
}

static void chain_free(struct kv_arena_chunk *c)
{
    while (c) {
        struct kv_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
}

void kv_arena_init(kv_arena *a, size_t chunk_size)
{
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
    a->head = NULL;
    a->big = NULL;
    a->chunk_size = chunk_size;
    a->spilled = 0;
}

void *kv_arena_alloc(kv_arena *a, size_t size)
{
    struct kv_arena_chunk *c = a->head;
    size_t need = (size + ALIGN - 1) & ~(ALIGN - 1);

    if (need < size)
        return NULL;
    /* Large blocks get their own chunk so they never waste a regular one. */
    if (need > a->chunk_size / 4) {
        c = chunk_new(need);
        if (!c)
            return NULL;
        c->next = a->big;
        a->big = c;
        a->spilled = 1;
        return c->data;
    }
    if (!c || c->size - c->used < need) {
        c = chunk_new(a->chunk_size);
        if (!c)
            return NULL;
        if (a->head)
            a->spilled = 1;
        c->next = a->head;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += need;
    return p;
}

void kv_arena_reset(kv_arena *a)
{
    a->spilled = 0;
    chain_free(a->big);
    a->big = NULL;
    if (a->head) {
        chain_free(a->head->next);
        a->head->next = NULL;
        a->head->used = 0;
    }
}

void kv_arena_free(kv_arena *a)
{
    chain_free(a->big);
    chain_free(a->head);
    a->big = NULL;
    a->head = NULL;
    a->spilled = 0;
}
