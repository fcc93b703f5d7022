/* slowlog.h - the slow log: the last requests slower than a threshold,
 * kept in a bounded ring as Redis's SLOWLOG keeps them (newest first when
 * read; the oldest is overwritten). Written from the event loop only. */
#ifndef KV_SLOWLOG_H
#define KV_SLOWLOG_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include "kvstore/v1/kv.pb-c.h"

#define KV_SLOWLOG_KEY_MAX 64           /* bytes of a key kept */
#define KV_SLOWLOG_DEFAULT_US 10000     /* --slowlog-us */
#define KV_SLOWLOG_DEFAULT_LEN 128      /* --slowlog-max-len */

typedef struct kv_slowlog_entry {
    uint64_t id, unix_ms, duration_us, key_bytes;
    unsigned method;                    /* index in the service descriptor */
    unsigned code;                      /* the answer's status */
    uint8_t key_len;
    uint8_t key[KV_SLOWLOG_KEY_MAX];
    char peer[64];
} kv_slowlog_entry;

typedef struct kv_slowlog {
    uint64_t threshold_ns;              /* slower than this is logged; 0: all */
    size_t cap;                         /* ring size; 0: the log is off */
    kv_slowlog_entry *ring;
    size_t len, next;                   /* entries held; where the next goes */
    uint64_t total;                     /* logged since start or reset */
    uint64_t next_id;
} kv_slowlog;

/* Prepares L for requests slower than THRESHOLD_US, keeping the last CAP.
 * Returns 0, -1 when memory is out. */
int kv_slowlog_init(kv_slowlog *l, uint64_t threshold_us, size_t cap);
void kv_slowlog_free(kv_slowlog *l);

/* Whether a request of NS nanoseconds goes in the log. */
static inline int kv_slowlog_wants(const kv_slowlog *l, uint64_t ns)
{
    return l && l->cap && ns > l->threshold_ns;
}

/* Logs one slow request: METHOD's index, its KEY (KLEN bytes of it, of
 * KEY_BYTES in all; the first KV_SLOWLOG_KEY_MAX kept; may be NULL), NS,
 * PEER's text, its CODE. */
void kv_slowlog_add(kv_slowlog *l, unsigned method, const uint8_t *key, size_t klen,
                    uint64_t key_bytes, uint64_t ns, const char *peer, unsigned code);

/* Fills OUT with up to LIMIT entries (0: all), newest first, from ALLOC.
 * Returns 0, -1 when ALLOC is out of memory. */
int kv_slowlog_get(const kv_slowlog *l, uint32_t limit, ProtobufCAllocator *alloc,
                   Kvstore__V1__SlowLogResponse *out);

/* Empties the log (its total too); the ids go on increasing. */
void kv_slowlog_reset(kv_slowlog *l);

/* Stats' slowlog_length and slowlog_total. */
void kv_slowlog_report(const kv_slowlog *l, Kvstore__V1__StatsResponse *out);

#endif
