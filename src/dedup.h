/* dedup.h - the outcomes of recent writes by (client_id, seq), so that a
 * client's retry of a write is applied at most once and answered with the
 * first outcome (RpcRequest.client_id and seq, PROTOCOL.md "Cluster").
 *
 * Kept per client, as Raft's dissertation keeps client sessions (section
 * 6.3): each client's last KV_DEDUP_PER_CLIENT outcomes, so that a busy
 * client's retries are not pushed out by other clients' writes; past that,
 * a client's oldest outcome makes way, and its seq becomes the client's
 * floor: a retry at or below the floor that is not remembered is answered
 * "forgotten" (ABORTED) rather than applied again. All clients together
 * keep at most MAX outcomes and KV_DEDUP_MAX_BYTES of answers: past
 * those, the oldest outcome of the client that wrote least recently goes.
 * At most KV_DEDUP_MAX_CLIENTS clients are known: past that, the client
 * known longest without an outcome (then the least recent) is dropped
 * with its floor, and only a retry of one of its writes older than that
 * would be applied again.
 *
 * Part of the replicated state: every node adds the same outcomes in the
 * same order as it applies the log, and forgets them in the same order;
 * snapshots carry the table, orders included. Nothing here reads a clock.
 *
 * Why by hand: two chained hashes and two lists, with an eviction order
 * that must be the apply order; no cache in Debian's archive promises
 * that. */
#ifndef KV_DEDUP_H
#define KV_DEDUP_H

#include <stddef.h>
#include <stdint.h>
#include <kvstore/status.h>
#include "buf.h"

/* The default of --dedup-window: outcomes remembered, all clients. */
#define KV_DEDUP_DEFAULT_ENTRIES 262144u
/* Outcomes remembered per client: more than a client has in flight. */
#define KV_DEDUP_PER_CLIENT 4096u
/* At most this many bytes of remembered answers (responses and messages). */
#define KV_DEDUP_MAX_BYTES ((size_t)64 << 20)
/* Clients known (with outcomes, or only a floor). */
#define KV_DEDUP_MAX_CLIENTS 65536u

typedef struct kv_dedup_entry kv_dedup_entry;
typedef struct kv_dedup_client kv_dedup_client;

/* An outcome found: views of the table's bytes, valid until the next add. */
typedef struct kv_dedup_outcome {
    kv_status status;
    const char *message;        /* NUL-terminated; "" when none */
    const uint8_t *response;    /* the packed response message (status OK) */
    size_t response_len;
} kv_dedup_outcome;

/* A list of clients, oldest first. */
typedef struct kv_dedup_list {
    kv_dedup_client *first, *last;
} kv_dedup_list;

typedef struct kv_dedup {
    kv_dedup_entry **buckets;   /* private: outcomes by (client, seq) */
    size_t mask;
    kv_dedup_client **cbuckets; /* private: clients by id */
    size_t cmask;
    kv_dedup_list active;       /* private: clients with outcomes, by their
                                   last write, least recent first */
    kv_dedup_list idle;         /* private: clients with a floor only, in
                                   the order they lost their last outcome */
    size_t n;                   /* read-only: outcomes remembered */
    size_t clients;             /* read-only: clients known */
    size_t bytes;               /* read-only: bytes held by the outcomes */
    size_t max;                 /* outcomes, all clients */
    size_t max_bytes;
    size_t per_client;
    size_t max_clients;
} kv_dedup;

/* Prepares D for at most MAX outcomes (at least 1). Returns 0, or -1 when
 * memory is out. */
int kv_dedup_init(kv_dedup *d, size_t max);

/* Forgets everything; D stays usable. */
void kv_dedup_clear(kv_dedup *d);

void kv_dedup_free(kv_dedup *d);

/* The outcome of (CID, SEQ): 1 with *OUT when remembered; -1 when it is
 * not but the client's outcomes up to a seq at or above SEQ were forgotten
 * (it may have been applied: a retry must not run again); 0 when the write
 * is not known (it has not been applied, or its client was forgotten
 * altogether). */
int kv_dedup_find(const kv_dedup *d, const uint8_t *cid, size_t cidlen, uint64_t seq,
                  kv_dedup_outcome *out);

/* Remembers the outcome of (CID, SEQ): STATUS, MESSAGE (may be NULL) and
 * the packed RESPONSE (LEN bytes; may be NULL), copied, making room as
 * above. Returns 0, or -1 when memory is out or CIDLEN is over 64 (then
 * nothing was added: a retry would be applied again, as after the outcome
 * was forgotten with its client). */
int kv_dedup_add(kv_dedup *d, const uint8_t *cid, size_t cidlen, uint64_t seq,
                 kv_status status, const char *message, const uint8_t *response, size_t len);

/* Snapshots: appends the whole table, its orders included, to B (0, or -1
 * when memory is out); reads one back from [*P, END) into an emptied D,
 * moving *P past it (0, or -1 for malformed bytes or memory out). */
int kv_dedup_encode(const kv_dedup *d, kv_buf *b);
int kv_dedup_decode(kv_dedup *d, const uint8_t **p, const uint8_t *end);

#endif
