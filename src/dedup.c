/* dedup.c - the outcomes of recent writes, per client; see dedup.h. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "clog.h"
#include "dedup.h"

struct kv_dedup_entry {
    kv_dedup_entry *next;       /* chain */
    kv_dedup_client *client;
    uint64_t hash;
    uint64_t seq;
    kv_status status;
    uint32_t response_len;
    uint32_t message_len;       /* without its NUL */
    uint8_t data[];             /* message and NUL, response */
};

struct kv_dedup_client {
    kv_dedup_client *next;      /* chain */
    kv_dedup_client *prev_in, *next_in;     /* in active or idle */
    int idle;                   /* in idle (no outcome left), else active */
    uint64_t hash;
    uint64_t floor;             /* the highest seq forgotten; 0: none */
    kv_dedup_entry **ring;      /* its outcomes, the oldest at head */
    size_t head, n, cap;
    uint8_t cid_len;
    uint8_t cid[KV_CLOG_MAX_CLIENT_ID];
};

static uint64_t entry_hash(const uint8_t *cid, size_t cidlen, uint64_t seq)
{
    return XXH3_64bits_withSeed(cid, cidlen, seq);
}

static size_t entry_size(const kv_dedup_entry *e)
{
    return sizeof *e + e->message_len + 1 + e->response_len;
}

static kv_dedup_list *list_of(kv_dedup *d, kv_dedup_client *c)
{
    return c->idle ? &d->idle : &d->active;
}

static void list_unlink(kv_dedup_list *l, kv_dedup_client *c)
{
    if (c->prev_in)
        c->prev_in->next_in = c->next_in;
    else
        l->first = c->next_in;
    if (c->next_in)
        c->next_in->prev_in = c->prev_in;
    else
        l->last = c->prev_in;
    c->prev_in = c->next_in = NULL;
}

static void list_push(kv_dedup_list *l, kv_dedup_client *c)
{
    c->prev_in = l->last;
    c->next_in = NULL;
    if (l->last)
        l->last->next_in = c;
    else
        l->first = c;
    l->last = c;
}

/* Moves C to the end of the active list (it just wrote) or of the idle
 * one (its last outcome went). */
static void move_to(kv_dedup *d, kv_dedup_client *c, int idle)
{
    list_unlink(list_of(d, c), c);
    c->idle = idle;
    list_push(list_of(d, c), c);
}

int kv_dedup_init(kv_dedup *d, size_t max)
{
    size_t nb = 16, nc = 16;

    memset(d, 0, sizeof *d);
    d->max = max ? max : 1;
    d->max_bytes = KV_DEDUP_MAX_BYTES;
    d->per_client = KV_DEDUP_PER_CLIENT;
    d->max_clients = KV_DEDUP_MAX_CLIENTS;
    while (nb < d->max)
        nb *= 2;
    while (nc < d->max_clients && nc < nb)
        nc *= 2;
    d->buckets = calloc(nb, sizeof *d->buckets);
    d->cbuckets = calloc(nc, sizeof *d->cbuckets);
    if (!d->buckets || !d->cbuckets) {
        kv_dedup_free(d);
        return -1;
    }
    d->mask = nb - 1;
    d->cmask = nc - 1;
    return 0;
}

static kv_dedup_client *client_find(const kv_dedup *d, const uint8_t *cid, size_t cidlen,
                                    uint64_t h)
{
    for (kv_dedup_client *c = d->cbuckets[h & d->cmask]; c; c = c->next)
        if (c->hash == h && c->cid_len == cidlen && memcmp(c->cid, cid, cidlen) == 0)
            return c;
    return NULL;
}

static kv_dedup_entry *entry_find(const kv_dedup *d, const kv_dedup_client *c, uint64_t seq,
                                  uint64_t h)
{
    for (kv_dedup_entry *e = d->buckets[h & d->mask]; e; e = e->next)
        if (e->hash == h && e->seq == seq && e->client == c)
            return e;
    return NULL;
}

/* Forgets C's oldest outcome; its seq raises C's floor. */
static void evict_oldest(kv_dedup *d, kv_dedup_client *c)
{
    kv_dedup_entry *e = c->ring[c->head], **pp = &d->buckets[e->hash & d->mask];

    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    if (e->seq > c->floor)
        c->floor = e->seq;
    d->bytes -= entry_size(e);
    free(e);
    c->ring[c->head] = NULL;
    c->head = (c->head + 1) % c->cap;
    c->n--;
    d->n--;
    if (!c->n)
        move_to(d, c, 1);
}

/* Forgets C altogether: its outcomes and its floor. */
static void drop_client(kv_dedup *d, kv_dedup_client *c)
{
    kv_dedup_client **pp = &d->cbuckets[c->hash & d->cmask];

    while (c->n)
        evict_oldest(d, c);
    list_unlink(list_of(d, c), c);
    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    free(c->ring);
    free(c);
    d->clients--;
}

void kv_dedup_clear(kv_dedup *d)
{
    while (d->active.first)
        drop_client(d, d->active.first);
    while (d->idle.first)
        drop_client(d, d->idle.first);
}

void kv_dedup_free(kv_dedup *d)
{
    if (d->buckets && d->cbuckets)
        kv_dedup_clear(d);
    free(d->buckets);
    free(d->cbuckets);
    memset(d, 0, sizeof *d);
}

int kv_dedup_find(const kv_dedup *d, const uint8_t *cid, size_t cidlen, uint64_t seq,
                  kv_dedup_outcome *out)
{
    const kv_dedup_client *c = d->clients ? client_find(d, cid, cidlen, XXH3_64bits(cid, cidlen))
                                          : NULL;
    const kv_dedup_entry *e = c && c->n ? entry_find(d, c, seq, entry_hash(cid, cidlen, seq))
                                        : NULL;

    if (!e)
        return c && seq <= c->floor ? -1 : 0;
    out->status = e->status;
    out->message = (const char *)e->data;
    out->response = e->data + e->message_len + 1;
    out->response_len = e->response_len;
    return 1;
}

/* The client CID, made (in the idle list, floor 0) when unknown; NULL when
 * memory is out. */
static kv_dedup_client *client_get(kv_dedup *d, const uint8_t *cid, size_t cidlen)
{
    uint64_t h = XXH3_64bits(cid, cidlen);
    kv_dedup_client *c = client_find(d, cid, cidlen, h);

    if (c)
        return c;
    if (d->clients >= d->max_clients)
        drop_client(d, d->idle.first ? d->idle.first : d->active.first);
    if (!(c = calloc(1, sizeof *c)))
        return NULL;
    c->hash = h;
    c->cid_len = (uint8_t)cidlen;
    memcpy(c->cid, cid, cidlen);
    c->idle = 1;
    list_push(&d->idle, c);
    c->next = d->cbuckets[h & d->cmask];
    d->cbuckets[h & d->cmask] = c;
    d->clients++;
    return c;
}

/* Appends E to C's outcomes (room made by the caller). */
static int ring_push(kv_dedup_client *c, kv_dedup_entry *e)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        kv_dedup_entry **ring = malloc(cap * sizeof *ring);
        if (!ring)
            return -1;
        for (size_t i = 0; i < c->n; i++)
            ring[i] = c->ring[(c->head + i) % c->cap];
        free(c->ring);
        c->ring = ring;
        c->head = 0;
        c->cap = cap;
    }
    c->ring[(c->head + c->n) % c->cap] = e;
    c->n++;
    return 0;
}

/* Adds the outcome without making room: for add and decode. */
static int put(kv_dedup *d, kv_dedup_client *c, uint64_t seq, kv_status status,
               const char *message, size_t mlen, const uint8_t *response, size_t len)
{
    uint64_t h = entry_hash(c->cid, c->cid_len, seq);
    kv_dedup_entry *e;

    if (len > UINT32_MAX || mlen > UINT32_MAX || !(e = malloc(sizeof *e + mlen + 1 + len)))
        return -1;
    e->client = c;
    e->hash = h;
    e->seq = seq;
    e->status = status;
    e->message_len = (uint32_t)mlen;
    e->response_len = (uint32_t)len;
    if (mlen)
        memcpy(e->data, message, mlen);
    e->data[mlen] = 0;
    if (len)
        memcpy(e->data + mlen + 1, response, len);
    if (ring_push(c, e) < 0) {
        free(e);
        return -1;
    }
    e->next = d->buckets[h & d->mask];
    d->buckets[h & d->mask] = e;
    d->n++;
    d->bytes += entry_size(e);
    if (c->idle)
        move_to(d, c, 0);
    return 0;
}

/* Makes the table fit its bounds again, sparing KEEP's newest outcome. */
static void trim(kv_dedup *d, const kv_dedup_client *keep)
{
    while ((d->n > d->max || d->bytes > d->max_bytes) && d->active.first
           && !(d->active.first == keep && keep->n == 1))
        evict_oldest(d, d->active.first);
}

int kv_dedup_add(kv_dedup *d, const uint8_t *cid, size_t cidlen, uint64_t seq,
                 kv_status status, const char *message, const uint8_t *response, size_t len)
{
    if (cidlen > KV_CLOG_MAX_CLIENT_ID)
        return -1;
    kv_dedup_client *c = client_get(d, cid, cidlen);
    if (!c)
        return -1;
    if (c->n && entry_find(d, c, seq, entry_hash(cid, cidlen, seq)))
        return 0;   /* the first outcome stands */
    if (c->n >= d->per_client)
        evict_oldest(d, c);
    if (put(d, c, seq, status, message, message ? strlen(message) : 0, response, len) < 0)
        return -1;
    move_to(d, c, 0);   /* the most recent writer */
    trim(d, c);
    return 0;
}

static int encode_list(const kv_dedup_list *l, size_t n, kv_buf *b)
{
    if (kv_clog_put_varint(b, n) < 0)
        return -1;
    for (const kv_dedup_client *c = l->first; c; c = c->next_in) {
        if (kv_clog_put_bytes(b, c->cid, c->cid_len) < 0 || kv_clog_put_varint(b, c->floor) < 0
            || kv_clog_put_varint(b, c->n) < 0)
            return -1;
        for (size_t i = 0; i < c->n; i++) {
            const kv_dedup_entry *e = c->ring[(c->head + i) % c->cap];
            if (kv_clog_put_varint(b, e->seq) < 0 || kv_clog_put_varint(b, (uint64_t)e->status) < 0
                || kv_clog_put_bytes(b, e->data, e->message_len) < 0
                || kv_clog_put_bytes(b, e->data + e->message_len + 1, e->response_len) < 0)
                return -1;
        }
    }
    return 0;
}

static size_t list_len(const kv_dedup_list *l)
{
    size_t n = 0;

    for (const kv_dedup_client *c = l->first; c; c = c->next_in)
        n++;
    return n;
}

/* The active clients then the idle ones, each list in its order: what
 * decides which outcome goes next, the same on every node. */
int kv_dedup_encode(const kv_dedup *d, kv_buf *b)
{
    if (encode_list(&d->active, list_len(&d->active), b) < 0)
        return -1;
    return encode_list(&d->idle, list_len(&d->idle), b);
}

static int decode_list(kv_dedup *d, const uint8_t **p, const uint8_t *end)
{
    uint64_t clients, floor, n, seq, status;

    if (kv_clog_get_varint(p, end, &clients) != 1)
        return -1;
    for (uint64_t i = 0; i < clients; i++) {
        const uint8_t *cid;
        size_t cidlen;
        if (kv_clog_get_bytes(p, end, &cid, &cidlen) != 1 || cidlen > KV_CLOG_MAX_CLIENT_ID
            || kv_clog_get_varint(p, end, &floor) != 1 || kv_clog_get_varint(p, end, &n) != 1)
            return -1;
        kv_dedup_client *c = client_get(d, cid, cidlen);
        if (!c || c->n || c->floor)
            return -1;      /* memory out, or a client twice */
        c->floor = floor;
        for (uint64_t k = 0; k < n; k++) {
            const uint8_t *msg, *resp;
            size_t mlen, rlen;
            if (kv_clog_get_varint(p, end, &seq) != 1 || kv_clog_get_varint(p, end, &status) != 1
                || kv_clog_get_bytes(p, end, &msg, &mlen) != 1
                || kv_clog_get_bytes(p, end, &resp, &rlen) != 1 || status > KV_UNAUTHENTICATED
                || memchr(msg, 0, mlen)
                || put(d, c, seq, (kv_status)status, (const char *)msg, mlen, resp, rlen) < 0)
                return -1;
        }
        /* In the list it was in, at its place: the lists come in order. */
        move_to(d, c, c->n == 0);
    }
    return 0;
}

int kv_dedup_decode(kv_dedup *d, const uint8_t **p, const uint8_t *end)
{
    kv_dedup_clear(d);
    if (decode_list(d, p, end) < 0 || decode_list(d, p, end) < 0) {
        kv_dedup_clear(d);
        return -1;
    }
    trim(d, NULL);
    return 0;
}
