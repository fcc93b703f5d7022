/* oplog.h - the writes of one open transaction, kept so that they can be
 * applied again after the transaction is lost. LMDB aborts a whole write
 * transaction when one write in it fails (a full map), and that
 * transaction also holds other clients' accepted writes of the same loop
 * turn: engine_lmdb.c replays them from here. Every record carries the
 * revision its write was made at (and a Set or Touch the deadline it
 * gave), and a batch (engine.h) is bracketed by
 * BATCH_BEGIN and BATCH_END, so a replay makes exactly the keys,
 * revisions and deadlines that were accepted. Records are packed in one growable
 * buffer; nothing here knows LMDB. */
#ifndef KV_OPLOG_H
#define KV_OPLOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum kv_oplog_kind {
    KV_OPLOG_SET = 1,           /* key, value, rev, expires (0: none) */
    KV_OPLOG_UNSET = 2,         /* key, rev; the value is empty */
    KV_OPLOG_UNSET_RANGE = 3,   /* key: the range's start, value: its end
                                   (either empty: unbounded), rev */
    /* No key, value or rev: the records between a BATCH_BEGIN and the next
     * BATCH_END are one kept batch. */
    KV_OPLOG_BATCH_BEGIN = 4,
    KV_OPLOG_BATCH_END = 5,
    KV_OPLOG_TOUCH = 6,         /* key, expires: a new deadline, no revision */
    KV_OPLOG_LOAD = 7,          /* key, value: the record as the engine
                                   stores it (its meta, then the value),
                                   rev: its mod_revision (engine.h's load) */
} kv_oplog_kind;

/* One record, pointing into the log (valid until the log changes). */
typedef struct kv_oplog_entry {
    kv_oplog_kind kind;
    const uint8_t *key, *value;
    size_t klen, vlen;
    uint64_t rev;
    uint64_t expires;   /* SET and TOUCH: the deadline; 0 otherwise */
} kv_oplog_entry;

typedef struct kv_oplog {
    uint8_t *data;      /* private: records, back to back */
    size_t len, cap;    /* len is read-only: the bytes held */
    size_t count;       /* read-only: the records held */
} kv_oplog;

#define KV_OPLOG_INIT { NULL, 0, 0, 0 }

/* A place in the log, from kv_oplog_tell(): where a batch began. */
typedef struct kv_oplog_mark {
    size_t len, count;
} kv_oplog_mark;

/* Appends a record (copies KEY and VALUE; EXPIRES is kept for SET and
 * TOUCH, read back as 0 for the other kinds). Returns 0, or -1 when memory
 * is out or a length does not fit 32 bits (the log is then unchanged). */
int kv_oplog_append(kv_oplog *l, kv_oplog_kind kind, const uint8_t *key, size_t klen,
                    const uint8_t *value, size_t vlen, uint64_t rev, uint64_t expires);

/* Drops the last record: the one appended for a write that then failed. */
void kv_oplog_drop_last(kv_oplog *l);

/* Where the log ends now: the records appended after this call are those
 * kv_oplog_truncate() to the mark drops, and kv_oplog_next() from
 * mark.len visits. */
static inline kv_oplog_mark kv_oplog_tell(const kv_oplog *l)
{
    return (kv_oplog_mark){ l->len, l->count };
}

/* Drops every record appended since MARK (a batch undone). */
void kv_oplog_truncate(kv_oplog *l, kv_oplog_mark mark);

/* Iterates: start with *POS = 0 (or a mark's len). Returns 1 and fills *E,
 * or 0 at the end. */
int kv_oplog_next(const kv_oplog *l, size_t *pos, kv_oplog_entry *e);

/* Empties the log; frees its buffer when it grew large, keeps it otherwise. */
void kv_oplog_clear(kv_oplog *l);

void kv_oplog_free(kv_oplog *l);

#endif
