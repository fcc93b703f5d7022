/* engine.c - the registry of storage engines by name, and the names of the
 * sync modes. Add an engine by adding its ops table to `engines`. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "engine.h"

static const kv_engine_ops *const engines[] = {
    &kv_engine_memory,
    &kv_engine_lmdb,
};

static const char *const sync_names[] = { "always", "batch", "none" };

#define N_ENGINES (sizeof engines / sizeof engines[0])

const char *kv_engine_names(void)
{
    static char names[256];

    if (!names[0]) {
        for (size_t i = 0; i < N_ENGINES; i++) {
            if (i)
                strncat(names, ", ", sizeof names - strlen(names) - 1);
            strncat(names, engines[i]->name, sizeof names - strlen(names) - 1);
        }
    }
    return names;
}

int kv_engine_known(const char *name)
{
    for (size_t i = 0; i < N_ENGINES; i++)
        if (strcmp(engines[i]->name, name) == 0)
            return 1;
    return 0;
}

kv_status kv_engine_open(const char *name, const char *dir,
                         const kv_engine_options *opts, kv_engine **out,
                         char *err, size_t errlen)
{
    for (size_t i = 0; i < N_ENGINES; i++) {
        if (strcmp(engines[i]->name, name) != 0)
            continue;
        kv_status st = engines[i]->open(dir, opts, out, err, errlen);
        if (st == KV_OK)
            (*out)->clock = engines[i]->clock;
        return st;
    }
    snprintf(err, errlen, "unknown engine \"%s\" (have: %s)", name, kv_engine_names());
    return KV_INVALID_ARGUMENT;
}

const char *kv_sync_mode_name(kv_sync_mode mode)
{
    if ((size_t)mode >= sizeof sync_names / sizeof sync_names[0])
        return "?";
    return sync_names[mode];
}

int kv_sync_mode_parse(const char *name, kv_sync_mode *out)
{
    for (size_t i = 0; i < sizeof sync_names / sizeof sync_names[0]; i++) {
        if (strcmp(sync_names[i], name) == 0) {
            *out = (kv_sync_mode)i;
            return 0;
        }
    }
    return -1;
}

kv_status kv_engine_copy_out(ProtobufCAllocator *alloc, const void *p, size_t n,
                             ProtobufCBinaryData *out)
{
    out->len = n;
    out->data = NULL;
    if (n == 0)
        return KV_OK;
    out->data = alloc->alloc(alloc->allocator_data, n);
    if (!out->data)
        return KV_RESOURCE_EXHAUSTED;
    memcpy(out->data, p, n);
    return KV_OK;
}

int kv_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    /* Not memcmp of 0 bytes: an empty value's data may be NULL. */
    int c = n ? memcmp(a, b, n) : 0;

    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

int kv_meta_valid(const kv_meta *m)
{
    return m->create_revision >= 1 && m->version >= 1 && m->mod_revision >= m->create_revision;
}

int kv_range_has(const kv_range *r, const uint8_t *key, size_t klen)
{
    if (r->start_len && kv_key_cmp(key, klen, r->start, r->start_len) < 0)
        return 0;
    return !r->end_len || kv_key_cmp(key, klen, r->end, r->end_len) < 0;
}

uint64_t kv_engine_now_ms(const kv_engine *e)
{
    struct timespec ts;

    clock_gettime(e->clock, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void kv_engine_set_clock(kv_engine *e, int clock)
{
    e->clock = clock;
}
