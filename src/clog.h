/* clog.h - the cluster's log entries, as bytes: what the leader appends to
 * the raft log and every node applies (fsm.c). Pure functions over bytes,
 * as frame.h: no allocation but the kv_buf written to, no I/O, so the
 * fuzzer and the tests read entries straight from memory.
 *
 * An entry: 'K', the format version (1), its kind, then varints: the
 * leader's wall-clock time in ms when it made the entry (every node
 * applies the entry at that instant: TTL deadlines and expiry decisions
 * are the same everywhere), the proposer's incarnation (a random number
 * per process) and its batch number (together they let the proposer find
 * the calls waiting for the entry). Then, by kind:
 *   WRITES  commands to the end: per command its code (kv_clog_code), the
 *           client_id (length-prefixed, may be empty), the seq, and the
 *           method's request payload (length-prefixed), as the client sent
 *           them;
 *   EXPIRE  keys to the end, each length-prefixed: the keys the leader
 *           found expired, removed by every node as one write;
 *   MEMBER  a node id and its client address (length-prefixed): how every
 *           member learns every member's client address. A new leader's
 *           first entry is one of these, for itself.
 * An entry ends with zero bytes up to a multiple of 8: libraft's log on
 * disk (0.15) pads every entry's data to 8 bytes when it reads a segment
 * back but not when it writes one, so an entry of another length makes
 * the segment unreadable at the next start (found by restarting a cluster:
 * "entries count ... in preamble is too high"). A command code or a key of
 * length 0 reads as the end of the entry, so the padding is skipped.
 * The layout is versioned: a node refuses an entry of a version it does not
 * know rather than guess (fsm.c stops the node). */
#ifndef KV_CLOG_H
#define KV_CLOG_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"

#define KV_CLOG_MAGIC 'K'
#define KV_CLOG_VERSION 1
/* A client_id longer than this is refused at the door (service): 16 is
 * what clients send. */
#define KV_CLOG_MAX_CLIENT_ID 64

typedef enum kv_clog_kind {
    KV_CLOG_WRITES = 1,
    KV_CLOG_EXPIRE = 2,
    KV_CLOG_MEMBER = 3,
} kv_clog_kind;

/* The write methods, by a code of their own: the log must not depend on
 * the order of the rpcs in the proto. Fixed once written. */
typedef enum kv_clog_code {
    KV_CLOG_SET = 1,
    KV_CLOG_CLEAR = 2,
    KV_CLOG_CLEAR_RANGE = 3,
    KV_CLOG_TXN = 4,
    KV_CLOG_TOUCH = 5,
} kv_clog_code;

typedef struct kv_clog_head {
    kv_clog_kind kind;
    uint64_t time_ms;       /* the leader's wall clock at the entry */
    uint64_t origin;        /* the proposer's incarnation */
    uint64_t batch;         /* the proposer's batch number */
} kv_clog_head;

/* One command of a WRITES entry; the pointers are views of the entry. */
typedef struct kv_clog_cmd {
    kv_clog_code code;
    const uint8_t *client_id;
    size_t client_id_len;
    uint64_t seq;
    const uint8_t *payload;
    size_t payload_len;
} kv_clog_cmd;

/* Writers: append to B. Each returns 0, or -1 when memory is out (B may
 * then hold part of the entry: the caller drops it). */
int kv_clog_put_head(kv_buf *b, const kv_clog_head *h);
int kv_clog_put_cmd(kv_buf *b, const kv_clog_cmd *c);
/* One length-prefixed field: a key of an EXPIRE entry, the address of a
 * MEMBER entry (after kv_clog_put_varint's node id). */
int kv_clog_put_bytes(kv_buf *b, const uint8_t *p, size_t n);
int kv_clog_put_varint(kv_buf *b, uint64_t v);

/* Pads B's entry with zero bytes to a multiple of 8 (see above): the last
 * write of every entry. 0, or -1 when memory is out. */
int kv_clog_pad(kv_buf *b);

/* Readers: *P walks the entry up to END. kv_clog_get_head returns 0 with
 * *H filled, -1 for bytes that are not an entry of a version we know.
 * The others return 1 with the next field, 0 at the end of the entry (its
 * padding: a command code 0; kv_clog_get_key, a key of length 0), -1
 * for a truncated or malformed field. Nothing is read past END. */
int kv_clog_get_head(const uint8_t **p, const uint8_t *end, kv_clog_head *h);
int kv_clog_get_cmd(const uint8_t **p, const uint8_t *end, kv_clog_cmd *c);
int kv_clog_get_bytes(const uint8_t **p, const uint8_t *end, const uint8_t **data, size_t *n);
int kv_clog_get_key(const uint8_t **p, const uint8_t *end, const uint8_t **data, size_t *n);
int kv_clog_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v);

#endif
