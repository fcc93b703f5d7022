/* dedup.h - the outcomes of recent writes by (client_id, seq), so that a
 * client's retry of a write is applied at most once and answered with the
 * first outcome (RpcRequest.client_id and seq, PROTOCOL.md "Cluster").
 *
 * Part of the replicated state: every node adds the same outcomes in the
 * same order as it applies the log, and forgets them in that order, the
 * oldest first, once the table holds its maximum of outcomes or of bytes;
 * snapshots carry it. Nothing here reads a clock, so every node's table is
 * the same at the same log index.
 *
 * Why by hand: a chained hash over a FIFO ring is a few dozen lines, and
 * the eviction order must be the apply order, which no general-purpose
 * cache in Debian's archive promises. */
#ifndef KV_DEDUP_H
#define KV_DEDUP_H

#include <stddef.h>
#include <stdint.h>
#include <kvstore/status.h>
#include "buf.h"

/* The default of --dedup-window: outcomes remembered. */
#define KV_DEDUP_DEFAULT_ENTRIES 262144u
/* At most this many bytes of remembered answers (responses and messages). */
#define KV_DEDUP_MAX_BYTES ((size_t)64 << 20)

typedef struct kv_dedup_entry kv_dedup_entry;

/* An outcome found: views of the table's bytes, valid until the next add. */
typedef struct kv_dedup_outcome {
    kv_status status;
    const char *message;        /* NUL-terminated; "" when none */
    const uint8_t *response;    /* the packed response message (status OK) */
    size_t response_len;
} kv_dedup_outcome;

typedef struct kv_dedup {
    kv_dedup_entry **buckets;   /* private: chains by hash */
    size_t mask;
    kv_dedup_entry **ring;      /* private: entries in the order added */
    size_t cap, head, n;        /* private: ring size, oldest, how many */
    size_t bytes;               /* read-only: bytes held by the entries */
    size_t max_bytes;
} kv_dedup;

/* Prepares D for at most MAX outcomes (at least 1). Returns 0, or -1 when
 * memory is out. */
int kv_dedup_init(kv_dedup *d, size_t max);

/* Forgets every outcome; D stays usable. */
void kv_dedup_clear(kv_dedup *d);

void kv_dedup_free(kv_dedup *d);

/* The outcome of (CID, SEQ) in *OUT: 1 when remembered, 0 when not. */
int kv_dedup_find(const kv_dedup *d, const uint8_t *cid, size_t cidlen, uint64_t seq,
                  kv_dedup_outcome *out);

/* Remembers the outcome of (CID, SEQ): STATUS, MESSAGE (may be NULL) and
 * the packed RESPONSE (LEN bytes; may be NULL), copied. The oldest
 * outcomes are forgotten to make room. Returns 0, or -1 when memory is out
 * (then nothing was added: the only cost is that a retry would be applied
 * again, as after the outcome was forgotten). */
int kv_dedup_add(kv_dedup *d, const uint8_t *cid, size_t cidlen, uint64_t seq,
                 kv_status status, const char *message, const uint8_t *response, size_t len);

/* Snapshots: appends every outcome, oldest first, to B (0, or -1 when
 * memory is out); reads them back from [*P, END) into an emptied D,
 * moving *P past them (0, or -1 for malformed bytes or memory out). */
int kv_dedup_encode(const kv_dedup *d, kv_buf *b);
int kv_dedup_decode(kv_dedup *d, const uint8_t **p, const uint8_t *end);

#endif
