/* lmdb_store.h - kvstored's data as its LMDB environment holds it: the
 * environment opened with checks, the three named databases, the records
 * of "meta", a value stored with its revisions and deadline, the deadline
 * index, the way up from an older layout, and reads and deletes over key
 * ranges with a cursor. Everything here but kv_lmdb_env_open runs inside a
 * transaction it is given: engine_lmdb.c owns the transactions (the loop
 * turn's, batches, the replay after a failed write) and the counters; this
 * module knows no loop turn and no oplog.
 *
 * Format 3 ("kvstored-lmdb 3" under "format" in "meta"):
 *   "kv"    key -> [create_revision][mod_revision][version][value bytes]
 *           for a key without a deadline, the three numbers as varints
 *           (varint.h): 3 bytes while they are below 128, 9 below 2^21,
 *           at most 30. A fixed 24-byte header would take a 16-byte key
 *           with a 32-byte value from 62 bytes of leaf page (node header,
 *           key, record, slot) to 82, a third more pages (a fifth more
 *           against 9 bytes of varints); the varints cost a few
 *           instructions per read. A key with a deadline (engine.h's
 *           expires_ms, ms since the epoch: CLOCK_REALTIME, so that it
 *           holds across restarts) has a 0 byte and the deadline as a
 *           varint before them: [0][deadline][create][mod][version][value],
 *           7 bytes more for a deadline of this century. A varint of 1 or
 *           more never starts with a 0 byte, and create_revision is 0 only
 *           for a write at revision 0, which takes that longer form too: so
 *           the first byte tells the two apart, and a read of a key without
 *           a deadline costs one comparison more than in format 2.
 *   "deadlines"  the deadline index, which finds the keys due without a
 *           walk of "kv": one entry per key that has a deadline, in the
 *           order of the deadlines: [deadline, 8 bytes big-endian][the
 *           key's first 503 bytes] -> [0], or for a key longer than 503
 *           bytes -> [1][the rest of it]. 503: LMDB's 511-byte limit on
 *           keys less the deadline. MDB_DUPSORT, so that two long keys
 *           alike in their first 503 bytes can share a deadline (LMDB
 *           refuses empty data items in such a database, hence the byte);
 *           only they share an index key, so mdb_stat counts every page of
 *           the index (a key's duplicates past a page's worth would move to
 *           a tree of their own, which it does not see).
 *   "meta"  "format" -> the mark above; "data_bytes" -> uint64, the sum of
 *           key and value lengths as clients see them (headers not
 *           counted); "revision" -> uint64, the store's revision. Both in
 *           the host's byte order, like LMDB's own pages, and both
 *           committed in the transaction of the writes they count, so after
 *           a crash they agree with the data and never go back.
 * Why format 3 and not format 2 with deadlines: a kvstored that reads
 * format 2 would misread a record with a deadline (its 0 byte as a
 * create_revision of 0, the deadline as the mod_revision) and would not
 * keep the index in step with the keys; the new mark makes it refuse the
 * store instead. A format-2 record is a format-3 record with no
 * deadline (kvstored never wrote one at revision 0: the service's
 * revisions start at 1, a migration's are 1), so opening a format-2 store
 * only adds the empty index and the mark; opening a format-1 store (kvstored before revisions: bare values,
 * no revision in "meta") rewrites every record (kv_lmdb_store_open). */
#ifndef KV_LMDB_STORE_H
#define KV_LMDB_STORE_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>
#include "engine.h"
#include "varint.h"

/* The longest header a record can have: the deadline's mark and four varints. */
#define KV_LMDB_HEAD_MAX (1 + 4 * KV_VARINT_MAX)

/* The first byte of a header that holds a deadline (the top of this file). */
#define KV_LMDB_DEADLINE_MARK 0

/* The names of the meta records that hold counters. */
#define KV_LMDB_META_DATA_BYTES "data_bytes"
#define KV_LMDB_META_REVISION "revision"

/* Codes of our own beside LMDB's (which run from -30800 to -30780), for a
 * damaged file: a record of "kv" whose revisions cannot be read; an entry
 * of the deadline index that does not match its key's record, or the
 * reverse. */
#define KV_LMDB_BAD_RECORD (-30700)
#define KV_LMDB_BAD_INDEX (-30701)

/* The databases of a store. */
typedef struct kv_lmdb_dbs {
    MDB_dbi kv, meta, deadlines;
} kv_lmdb_dbs;

/* What kv_lmdb_store_open() found: the databases and the counters as last
 * committed. */
typedef struct kv_lmdb_store {
    kv_lmdb_dbs db;
    uint64_t data_bytes;
    uint64_t revision;
} kv_lmdb_store;

/* Whether M's header takes the long form, with a deadline. */
static inline int kv_lmdb_head_long(const kv_meta *m)
{
    return m->expires_ms != 0 || m->create_revision == 0;
}

/* The bytes kv_lmdb_head_put() writes for M (3..KV_LMDB_HEAD_MAX). */
static inline size_t kv_lmdb_head_size(const kv_meta *m)
{
    return (kv_lmdb_head_long(m) ? 1 + kv_varint_size(m->expires_ms) : 0) +
           kv_varint_size(m->create_revision) + kv_varint_size(m->mod_revision) +
           kv_varint_size(m->version);
}

/* Writes M's header at OUT (room: kv_lmdb_head_size(M)). Returns the byte
 * after it, where the value goes. */
static inline uint8_t *kv_lmdb_head_put(uint8_t *out, const kv_meta *m)
{
    if (kv_lmdb_head_long(m)) {
        *out++ = KV_LMDB_DEADLINE_MARK;
        out = kv_varint_put(out, m->expires_ms);
    }
    out = kv_varint_put(out, m->create_revision);
    out = kv_varint_put(out, m->mod_revision);
    return kv_varint_put(out, m->version);
}

/* Reads the revisions and deadline at the front of a stored record, DATA
 * of N bytes, into *M (skipped when M is NULL). Returns the header's
 * length: the value is the rest of the record. 0: no valid header, a
 * damaged record. */
static inline size_t kv_lmdb_head_get(const void *data, size_t n, kv_meta *m)
{
    const uint8_t *p = data, *end = p + n;
    kv_meta got;

    got.expires_ms = 0;
    if (p < end && *p == KV_LMDB_DEADLINE_MARK) {
        p++;
        if (kv_varint_get(&p, end, KV_VARINT_MAX, &got.expires_ms) < 0)
            return 0;
    }
    if (kv_varint_get(&p, end, KV_VARINT_MAX, &got.create_revision) < 0 ||
        kv_varint_get(&p, end, KV_VARINT_MAX, &got.mod_revision) < 0 ||
        kv_varint_get(&p, end, KV_VARINT_MAX, &got.version) < 0)
        return 0;
    if (m)
        *m = got;
    return (size_t)(p - (const uint8_t *)data);
}

/* Opens the LMDB environment of the data directory PATH (its lock taken,
 * datadir.h) with a map of MAP_BYTES, MDB_NOSYNC when NOSYNC, into *OUT;
 * refuses a data file that is not LMDB's, is shorter than its meta page
 * says (reading past its end would be SIGBUS), or needs more than the
 * map. Returns 0, or -1 with a one-line reason in ERR. The caller closes
 * *OUT (mdb_env_close). */
int kv_lmdb_env_open(const char *path, uint64_t map_bytes, int nosync, MDB_env **out,
                     char *err, size_t errlen);

/* Opens the databases of ENV (its files in PATH, for messages) into *OUT:
 * creates them in a new environment; reads the counters of a format-3 one;
 * migrates an older one in one transaction, which either makes it format 3
 * or leaves everything as it was, and then syncs it whatever --sync says:
 * format 2 gains the empty deadline index; format 1 has every record
 * rewritten with revisions {1, 1, 1} and the store's revision set to 1 (0
 * when it holds no key) too. Returns 0, or -1 with a one-line reason in
 * ERR (an environment kvstored did not make, a format it cannot read, a
 * migration without room in the map). */
int kv_lmdb_store_open(MDB_env *env, const char *path, kv_lmdb_store *out,
                       char *err, size_t errlen);

/* Puts counter NAME (a KV_LMDB_META_* name) = V in TXN. An LMDB code. */
int kv_lmdb_meta_put(MDB_txn *txn, MDB_dbi meta, const char *name, uint64_t v);

/* Reads KEY from KV in TXN: *VALUE (when not NULL) pointing at its value
 * in the record, valid as mdb_get's data is, and its revisions and
 * deadline in *META (when not NULL). An LMDB code: MDB_NOTFOUND,
 * KV_LMDB_BAD_RECORD. */
int kv_lmdb_get(MDB_txn *txn, MDB_dbi kv, const uint8_t *key, size_t klen,
                MDB_val *value, kv_meta *meta);

/* What a write found under the key before it, and how far a failed one got. */
typedef struct kv_lmdb_old {
    int found;
    size_t vlen;        /* its value's length (0 when not found) */
    uint64_t expires;   /* its deadline (0: none, or not found) */
    int torn;           /* the write failed after it had changed TXN: it is
                           half made, and TXN must be rebuilt without it */
} kv_lmdb_old;

/* Stores KEY = VALUE in "kv" of TXN at revision REV with deadline EXPIRES
 * (0: none), and the key's entry of the deadline index to match: {REV,
 * REV, 1} for a new key, else the old create_revision, mod_revision REV,
 * one more version (engine.h). When the key was there and SEEN is not
 * NULL, SEEN(CTX, old entry) is called before the old record is replaced.
 * What was there in *OLD. An LMDB code; KV_LMDB_BAD_RECORD when the old
 * record is damaged (nothing written), KV_LMDB_BAD_INDEX when its old
 * deadline is missing from the index. */
int kv_lmdb_put(MDB_txn *txn, const kv_lmdb_dbs *db, const uint8_t *key, size_t klen,
                const uint8_t *value, size_t vlen, uint64_t rev, uint64_t expires,
                kv_entry_fn seen, void *ctx, kv_lmdb_old *old);

/* Stores KEY = VALUE in "kv" of TXN with exactly META (a snapshot's key,
 * engine.h's load), replacing any old record, and the key's entry of the
 * deadline index to match. What was there in *OLD. An LMDB code, as
 * kv_lmdb_put's. */
int kv_lmdb_load(MDB_txn *txn, const kv_lmdb_dbs *db, const uint8_t *key, size_t klen,
                 const uint8_t *value, size_t vlen, const kv_meta *meta, kv_lmdb_old *old);

/* Empties "kv" and the deadline index of TXN (mdb_drop: their pages go
 * to the free list, leaves without overflow pages unread). An LMDB code;
 * on failure TXN must be aborted. */
int kv_lmdb_drop(MDB_txn *txn, const kv_lmdb_dbs *db);

/* Sets KEY's deadline in TXN to EXPIRES (0: none), in its record and in
 * the index, nothing else changed; a deadline it already has is left
 * alone. What was there in *OLD. An LMDB code: MDB_NOTFOUND (nothing
 * written), ENOMEM (the value is copied aside while its record is
 * rewritten), KV_LMDB_BAD_RECORD, KV_LMDB_BAD_INDEX. */
int kv_lmdb_touch(MDB_txn *txn, const kv_lmdb_dbs *db, const uint8_t *key, size_t klen,
                  uint64_t expires, kv_lmdb_old *old);

/* Deletes KEY, whose deadline read in TXN is EXPIRES, from "kv" and the
 * index. An LMDB code (MDB_NOTFOUND: it was not there); *TORN as
 * kv_lmdb_old's. */
int kv_lmdb_del(MDB_txn *txn, const kv_lmdb_dbs *db, const uint8_t *key, size_t klen,
                uint64_t expires, int *torn);

/* The sums of a range deletion. */
typedef struct kv_lmdb_deleted {
    uint64_t keys;
    uint64_t data_bytes;        /* keys and values as clients see them */
    uint64_t node_bytes;        /* the bytes they took in leaf pages */
    uint64_t overflow_pages;    /* the pages of values too large for a leaf */
    uint64_t deadlines;         /* index entries deleted with them */
} kv_lmdb_deleted;

/* Deletes every key of R from "kv" in TXN, and their index entries,
 * adding to *SUMS as it goes (so on an error *SUMS says what was deleted
 * before it). FN (may be NULL) is called with each key, its value and
 * meta, in key order, before it is deleted; it must not write in TXN.
 * An LMDB code. */
int kv_lmdb_delete_range(MDB_txn *txn, const kv_lmdb_dbs *db, const kv_range *r,
                         kv_entry_fn fn, void *ctx, kv_lmdb_deleted *sums);

/* Calls FN for every key of TXN whose deadline is at or before NOW, in
 * the order of their deadlines, until it returns nonzero; values only
 * WITH_VALUES (engine.h's walk_expiring). The entries point into TXN's
 * pages: FN must not write in TXN. An LMDB code; KV_LMDB_BAD_INDEX when
 * the index names a key whose record does not have that deadline. */
int kv_lmdb_walk_expiring(MDB_txn *txn, const kv_lmdb_dbs *db, uint64_t now, int with_values,
                          kv_entry_fn fn, void *ctx);

/* The earliest deadline in TXN's index in *DEADLINE, 0 when it is empty.
 * An LMDB code. */
int kv_lmdb_next_deadline(MDB_txn *txn, const kv_lmdb_dbs *db, uint64_t *deadline);

/* Calls FN for the keys of R in TXN (ascending, or descending when
 * REVERSE) until it returns nonzero, with values when WITH_VALUES
 * (engine.h's walk). The entries point into TXN's pages: FN must not write
 * in TXN. An LMDB code. */
int kv_lmdb_walk(MDB_txn *txn, MDB_dbi kv, const kv_range *r, int reverse, int with_values,
                 kv_entry_fn fn, void *ctx);

/* The longest range bound a count memo keeps (longer: not kept). */
#define KV_LMDB_MEMO_BOUND 1024

/* The last count of a range, from which the count of one that shares an
 * end with it and lies inside it is found by walking only the difference:
 * a client paging through a range asks for the count of what is left at
 * every page, which is O(N^2 / page) steps in all without it, O(N) with it
 * (1,000,000 keys of 16 bytes with 32-byte values read in pages of 1,000,
 * kvbench -t range, one client: 8.1 s before, 0.30 s after). The owner
 * clears VALID whenever the data changes. */
typedef struct kv_lmdb_count_memo {
    int valid;
    uint64_t n;
    size_t start_len, end_len;
    uint8_t start[KV_LMDB_MEMO_BOUND], end[KV_LMDB_MEMO_BOUND];
} kv_lmdb_count_memo;

/* The number of keys of R in TXN in *N: O(1) for the whole store
 * (mdb_stat), else a keys-only cursor walk, O(keys in R), since LMDB's
 * B-tree keeps no counts in its branch pages; with a valid MEMO (may be
 * NULL) of a range around R with a shared end, O(keys between the two).
 * Leaves in MEMO this count. An LMDB code. */
int kv_lmdb_count(MDB_txn *txn, MDB_dbi kv, const kv_range *r, kv_lmdb_count_memo *memo,
                  uint64_t *n);

#endif
