/* dedup.c - outcomes of recent writes by (client_id, seq); see dedup.h. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "clog.h"
#include "dedup.h"

struct kv_dedup_entry {
    kv_dedup_entry *next;       /* chain */
    uint64_t hash;
    uint64_t seq;
    kv_status status;
    uint32_t response_len;
    uint32_t message_len;       /* without its NUL */
    uint8_t cid_len;
    uint8_t data[];             /* client_id, message and NUL, response */
};

static uint64_t hash_of(const uint8_t *cid, size_t cidlen, uint64_t seq)
{
    return XXH3_64bits_withSeed(cid, cidlen, seq);
}

static size_t entry_size(const kv_dedup_entry *e)
{
    return sizeof *e + e->cid_len + e->message_len + 1 + e->response_len;
}

int kv_dedup_init(kv_dedup *d, size_t max)
{
    size_t nb = 16;

    memset(d, 0, sizeof *d);
    if (!max)
        max = 1;
    while (nb < max)
        nb *= 2;
    d->buckets = calloc(nb, sizeof *d->buckets);
    d->ring = calloc(max, sizeof *d->ring);
    if (!d->buckets || !d->ring) {
        kv_dedup_free(d);
        return -1;
    }
    d->mask = nb - 1;
    d->cap = max;
    d->max_bytes = KV_DEDUP_MAX_BYTES;
    return 0;
}

/* Forgets the oldest outcome. */
static void evict(kv_dedup *d)
{
    kv_dedup_entry *e = d->ring[d->head], **pp = &d->buckets[e->hash & d->mask];

    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    d->bytes -= entry_size(e);
    free(e);
    d->ring[d->head] = NULL;
    d->head = (d->head + 1) % d->cap;
    d->n--;
}

void kv_dedup_clear(kv_dedup *d)
{
    while (d->n)
        evict(d);
    d->head = 0;
}

void kv_dedup_free(kv_dedup *d)
{
    if (d->ring)
        kv_dedup_clear(d);
    free(d->buckets);
    free(d->ring);
    memset(d, 0, sizeof *d);
}

static const kv_dedup_entry *lookup(const kv_dedup *d, const uint8_t *cid, size_t cidlen,
                                    uint64_t seq, uint64_t h)
{
    for (const kv_dedup_entry *e = d->buckets[h & d->mask]; e; e = e->next)
        if (e->hash == h && e->seq == seq && e->cid_len == cidlen
            && memcmp(e->data, cid, cidlen) == 0)
            return e;
    return NULL;
}

int kv_dedup_find(const kv_dedup *d, const uint8_t *cid, size_t cidlen, uint64_t seq,
                  kv_dedup_outcome *out)
{
    const kv_dedup_entry *e = d->n ? lookup(d, cid, cidlen, seq, hash_of(cid, cidlen, seq)) : NULL;

    if (!e)
        return 0;
    out->status = e->status;
    out->message = (const char *)e->data + e->cid_len;
    out->response = e->data + e->cid_len + e->message_len + 1;
    out->response_len = e->response_len;
    return 1;
}

int kv_dedup_add(kv_dedup *d, const uint8_t *cid, size_t cidlen, uint64_t seq,
                 kv_status status, const char *message, const uint8_t *response, size_t len)
{
    size_t mlen = message ? strlen(message) : 0;
    uint64_t h = hash_of(cid, cidlen, seq);

    if (cidlen > KV_CLOG_MAX_CLIENT_ID || len > UINT32_MAX || mlen > UINT32_MAX)
        return -1;
    if (lookup(d, cid, cidlen, seq, h))
        return 0;   /* the first outcome stands */
    kv_dedup_entry *e = malloc(sizeof *e + cidlen + mlen + 1 + len);
    if (!e)
        return -1;
    e->hash = h;
    e->seq = seq;
    e->status = status;
    e->cid_len = (uint8_t)cidlen;
    e->message_len = (uint32_t)mlen;
    e->response_len = (uint32_t)len;
    memcpy(e->data, cid, cidlen);
    if (mlen)
        memcpy(e->data + cidlen, message, mlen);
    e->data[cidlen + mlen] = 0;
    if (len)
        memcpy(e->data + cidlen + mlen + 1, response, len);
    while (d->n && (d->n == d->cap || d->bytes + entry_size(e) > d->max_bytes))
        evict(d);
    e->next = d->buckets[h & d->mask];
    d->buckets[h & d->mask] = e;
    d->ring[(d->head + d->n) % d->cap] = e;
    d->n++;
    d->bytes += entry_size(e);
    return 0;
}

int kv_dedup_encode(const kv_dedup *d, kv_buf *b)
{
    if (kv_clog_put_varint(b, d->n) < 0)
        return -1;
    for (size_t i = 0; i < d->n; i++) {
        const kv_dedup_entry *e = d->ring[(d->head + i) % d->cap];
        if (kv_clog_put_bytes(b, e->data, e->cid_len) < 0 || kv_clog_put_varint(b, e->seq) < 0
            || kv_clog_put_varint(b, (uint64_t)e->status) < 0
            || kv_clog_put_bytes(b, e->data + e->cid_len, e->message_len) < 0
            || kv_clog_put_bytes(b, e->data + e->cid_len + e->message_len + 1,
                                 e->response_len) < 0)
            return -1;
    }
    return 0;
}

int kv_dedup_decode(kv_dedup *d, const uint8_t **p, const uint8_t *end)
{
    uint64_t n, seq, status;

    kv_dedup_clear(d);
    if (kv_clog_get_varint(p, end, &n) != 1)
        return -1;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *cid, *msg, *resp;
        size_t cidlen, mlen, rlen;
        char text[256];
        if (kv_clog_get_bytes(p, end, &cid, &cidlen) != 1 || kv_clog_get_varint(p, end, &seq) != 1
            || kv_clog_get_varint(p, end, &status) != 1
            || kv_clog_get_bytes(p, end, &msg, &mlen) != 1
            || kv_clog_get_bytes(p, end, &resp, &rlen) != 1 || status > KV_UNAUTHENTICATED)
            return -1;
        /* Messages are short reasons; one cut to fit is still a reason. */
        if (mlen >= sizeof text)
            mlen = sizeof text - 1;
        memcpy(text, msg, mlen);
        text[mlen] = 0;
        if (kv_dedup_add(d, cid, cidlen, seq, (kv_status)status, text, resp, rlen) < 0)
            return -1;
    }
    return 0;
}
