/* slowlog.c - the slow log's ring; see slowlog.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dispatch.h"
#include "slowlog.h"

int kv_slowlog_init(kv_slowlog *l, uint64_t threshold_us, size_t cap)
{
    memset(l, 0, sizeof *l);
    l->threshold_ns = threshold_us * 1000;
    l->cap = cap;
    l->next_id = 1;
    if (cap && !(l->ring = calloc(cap, sizeof *l->ring)))
        return -1;
    return 0;
}

void kv_slowlog_free(kv_slowlog *l)
{
    free(l->ring);
    l->ring = NULL;
    l->cap = l->len = 0;
}

void kv_slowlog_add(kv_slowlog *l, unsigned method, const uint8_t *key, size_t klen,
                    uint64_t key_bytes, uint64_t ns, const char *peer, unsigned code)
{
    kv_slowlog_entry *e = &l->ring[l->next];
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    e->id = l->next_id++;
    e->unix_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    e->duration_us = ns / 1000;
    e->method = method;
    e->code = code;
    e->key_bytes = key ? key_bytes : 0;
    e->key_len = (uint8_t)(key ? (klen < KV_SLOWLOG_KEY_MAX ? klen : KV_SLOWLOG_KEY_MAX) : 0);
    if (e->key_len)
        memcpy(e->key, key, e->key_len);
    snprintf(e->peer, sizeof e->peer, "%s", peer ? peer : "");
    l->next = (l->next + 1) % l->cap;
    if (l->len < l->cap)
        l->len++;
    l->total++;
}

int kv_slowlog_get(const kv_slowlog *l, uint32_t limit, ProtobufCAllocator *alloc,
                   Kvstore__V1__SlowLogResponse *out)
{
    const ProtobufCServiceDescriptor *d = &kvstore__v1__kv__descriptor;
    size_t n = limit && limit < l->len ? limit : l->len;

    out->total = l->total;
    out->threshold_us = l->threshold_ns / 1000;
    out->capacity = l->cap;
    if (!n)
        return 0;
    Kvstore__V1__SlowLogEntry *es = alloc->alloc(alloc->allocator_data, n * sizeof *es);
    Kvstore__V1__SlowLogEntry **ep = alloc->alloc(alloc->allocator_data, n * sizeof *ep);
    if (!es || !ep)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const kv_slowlog_entry *e = &l->ring[(l->next + l->cap - 1 - i) % l->cap];
        Kvstore__V1__SlowLogEntry *o = &es[i];
        kvstore__v1__slow_log_entry__init(o);
        o->id = e->id;
        o->unix_ms = e->unix_ms;
        o->duration_us = e->duration_us;
        o->method = (char *)kv_dispatch_method_path(d, e->method);
        o->key.data = (uint8_t *)e->key;
        o->key.len = e->key_len;
        o->key_bytes = e->key_bytes;
        o->peer = (char *)e->peer;
        o->code = (Kvstore__V1__StatusCode)e->code;
        ep[i] = o;
    }
    out->n_entries = n;
    out->entries = ep;
    return 0;
}

void kv_slowlog_reset(kv_slowlog *l)
{
    l->len = l->next = 0;
    l->total = 0;
}

void kv_slowlog_report(const kv_slowlog *l, Kvstore__V1__StatsResponse *out)
{
    out->slowlog_length = l->len;
    out->slowlog_total = l->total;
}
