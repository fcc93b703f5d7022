/* lmdb_store.h - kvstored's data as its LMDB environment holds it: the
 * environment opened with checks, the two named databases, the records of
 * "meta", a value stored with its revisions, the way up from an older
 * layout, and reads and deletes over key ranges with a cursor. Everything
 * here but kv_lmdb_env_open runs inside a transaction it is given:
 * engine_lmdb.c owns the transactions (the loop turn's, batches, the
 * replay after a failed write) and the counters; this module knows no
 * loop turn and no oplog.
 *
 * Format 2 ("kvstored-lmdb 2" under "format" in "meta"):
 *   "kv"    key -> [create_revision][mod_revision][version][value bytes],
 *           the three numbers as varints (varint.h): 3 bytes while they
 *           are below 128, 9 below 2^21, at most 30. A fixed 24-byte
 *           header would take a 16-byte key with a 32-byte value from 62
 *           bytes of leaf page (node header, key, record, slot) to 82, a
 *           third more pages (a fifth more against 9 bytes of varints);
 *           the varints cost a few instructions per read.
 *   "meta"  "format" -> the mark above; "data_bytes" -> uint64, the sum of
 *           key and value lengths as clients see them (headers not
 *           counted); "revision" -> uint64, the store's revision. Both in
 *           the host's byte order, like LMDB's own pages, and both
 *           committed in the transaction of the writes they count, so after
 *           a crash they agree with the data and never go back.
 * Format 1 (kvstored before revisions): "kv" held bare values and "meta"
 * no revision. Opening one migrates it (kv_lmdb_store_open). */
#ifndef KV_LMDB_STORE_H
#define KV_LMDB_STORE_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>
#include "engine.h"
#include "varint.h"

/* The longest header a record can have. */
#define KV_LMDB_HEAD_MAX (3 * KV_VARINT_MAX)

/* The names of the meta records that hold counters. */
#define KV_LMDB_META_DATA_BYTES "data_bytes"
#define KV_LMDB_META_REVISION "revision"

/* A code of our own beside LMDB's (which run from -30800 to -30780): a
 * record of "kv" whose revisions cannot be read, a damaged file. */
#define KV_LMDB_BAD_RECORD (-30700)

/* What kv_lmdb_store_open() found: the databases and the counters as last
 * committed. */
typedef struct kv_lmdb_store {
    MDB_dbi kv, meta;
    uint64_t data_bytes;
    uint64_t revision;
} kv_lmdb_store;

/* The bytes kv_lmdb_head_put() writes for M (3..KV_LMDB_HEAD_MAX). */
static inline size_t kv_lmdb_head_size(const kv_meta *m)
{
    return kv_varint_size(m->create_revision) + kv_varint_size(m->mod_revision) +
           kv_varint_size(m->version);
}

/* Writes M's header at OUT (room: kv_lmdb_head_size(M)). Returns the byte
 * after it, where the value goes. */
static inline uint8_t *kv_lmdb_head_put(uint8_t *out, const kv_meta *m)
{
    out = kv_varint_put(out, m->create_revision);
    out = kv_varint_put(out, m->mod_revision);
    return kv_varint_put(out, m->version);
}

/* Reads the revisions at the front of a stored record, DATA of N bytes,
 * into *M (skipped when M is NULL). Returns the header's length: the value
 * is the rest of the record. 0: no valid header, a damaged record. */
static inline size_t kv_lmdb_head_get(const void *data, size_t n, kv_meta *m)
{
    const uint8_t *p = data, *end = p + n;
    kv_meta got;

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
 * creates them in a new environment; reads the counters of a format-2 one;
 * migrates a format-1 one in one transaction, which either rewrites every
 * record with revisions {1, 1, 1} and sets the store's revision to 1 (0
 * when it holds no key) or leaves everything as it was, and then syncs it
 * whatever --sync says. Returns 0, or -1 with a one-line reason in ERR (an
 * environment kvstored did not make, a format it cannot read, a migration
 * without room in the map). */
int kv_lmdb_store_open(MDB_env *env, const char *path, kv_lmdb_store *out,
                       char *err, size_t errlen);

/* Puts counter NAME (a KV_LMDB_META_* name) = V in TXN. An LMDB code. */
int kv_lmdb_meta_put(MDB_txn *txn, MDB_dbi meta, const char *name, uint64_t v);

/* Reads KEY from KV in TXN: *VALUE (when not NULL) pointing at its value
 * in the record, valid as mdb_get's data is, and its revisions in *META
 * (when not NULL). An LMDB code: MDB_NOTFOUND, KV_LMDB_BAD_RECORD. */
int kv_lmdb_get(MDB_txn *txn, MDB_dbi kv, const uint8_t *key, size_t klen,
                MDB_val *value, kv_meta *meta);

/* What a put or a delete found under the key before it. */
typedef struct kv_lmdb_old {
    int found;
    size_t vlen;        /* its value's length (0 when not found) */
} kv_lmdb_old;

/* Stores KEY = VALUE in KV of TXN at revision REV: {REV, REV, 1} for a new
 * key, else the old create_revision, mod_revision REV, one more version
 * (engine.h). What was there in *OLD. An LMDB code; KV_LMDB_BAD_RECORD
 * when the old record is damaged (nothing written). */
int kv_lmdb_put(MDB_txn *txn, MDB_dbi kv, const uint8_t *key, size_t klen,
                const uint8_t *value, size_t vlen, uint64_t rev, kv_lmdb_old *old);

/* The sums of a range deletion. */
typedef struct kv_lmdb_deleted {
    uint64_t keys;
    uint64_t data_bytes;        /* keys and values as clients see them */
    uint64_t node_bytes;        /* the bytes they took in leaf pages */
    uint64_t overflow_pages;    /* the pages of values too large for a leaf */
} kv_lmdb_deleted;

/* Deletes every key of R from KV in TXN, adding to *SUMS as it goes (so on
 * an error *SUMS says what was deleted before it). An LMDB code. */
int kv_lmdb_delete_range(MDB_txn *txn, MDB_dbi kv, const kv_range *r, kv_lmdb_deleted *sums);

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
