/* lmdb_store.c - kvstored's data inside LMDB (the layouts are in
 * lmdb_store.h): opening the environment with the checks LMDB leaves out,
 * opening the databases (creating them, checking the format mark, reading
 * the counters, migrating format 1), and the record-level reads and writes
 * the engine runs in its transactions: a key with its revisions, range
 * deletes, ordered walks and counts. Owns no state: the environment, the
 * transactions and the counters are engine_lmdb.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "lmdb_store.h"
#include "log.h"
#include "size.h"

#define FORMAT_PREFIX "kvstored-lmdb "
#define FORMAT_1 FORMAT_PREFIX "1"
#define FORMAT_2 FORMAT_PREFIX "2"
/* Said when a migration finds the map full. */
#define MIGRATE_ROOM "; the migration rewrites every record in one transaction and needs up " \
                     "to twice the data's size: give a larger --lmdb-map-size (the store is " \
                     "left as it was)"

static const uint8_t empty_byte;

static MDB_val text(const char *s)
{
    return (MDB_val){ strlen(s), (void *)s };
}

/* A key or value for LMDB, which wants a pointer even for 0 bytes. */
static MDB_val val(const uint8_t *p, size_t n)
{
    return (MDB_val){ n, p ? (void *)p : (void *)&empty_byte };
}

int kv_lmdb_meta_put(MDB_txn *txn, MDB_dbi meta, const char *name, uint64_t v)
{
    MDB_val k = text(name), d = { sizeof v, &v };

    return mdb_put(txn, meta, &k, &d, 0);
}

/* Reads counter NAME from TXN into *V; a missing one reads 0. Returns 0, or
 * -1 when the record is not a counter. */
static int meta_get(MDB_txn *txn, MDB_dbi meta, const char *name, uint64_t *v)
{
    MDB_val k = text(name), d;

    *v = 0;
    if (mdb_get(txn, meta, &k, &d) != 0)
        return 0;
    if (d.mv_size != sizeof *v)
        return -1;
    memcpy(v, d.mv_data, sizeof *v);
    return 0;
}

/* Rewrites every record of KV in TXN as a format-2 record of revisions
 * {1, 1, 1}; the number of keys in *KEYS. An LMDB code (ENOMEM too). */
static int migrate_records(MDB_txn *txn, MDB_dbi kv, uint64_t *keys)
{
    static const kv_meta first = { 1, 1, 1, 0 };
    const size_t head = kv_lmdb_head_size(&first);
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = mdb_cursor_open(txn, kv, &cur);

    *keys = 0;
    if (rc != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        /* The key and value point into the page the put rewrites: copied
         * first, the key then the new record. */
        size_t need = k.mv_size + head + v.mv_size;
        if (need > cap) {
            uint8_t *p = realloc(buf, need);
            if (!p) {
                rc = ENOMEM;
                break;
            }
            buf = p;
            cap = need;
        }
        memcpy(buf, k.mv_data, k.mv_size);
        uint8_t *rec = buf + k.mv_size;
        memcpy(kv_lmdb_head_put(rec, &first), v.mv_data, v.mv_size);
        k.mv_data = buf;
        v = (MDB_val){ head + v.mv_size, rec };
        if ((rc = mdb_cursor_put(cur, &k, &v, MDB_CURRENT)) != 0)
            break;
        (*keys)++;
    }
    mdb_cursor_close(cur);
    free(buf);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Migrates the format-1 store whose databases TXN has open into OUT, and
 * marks it format 2. Returns 0 or -1 with ERR; TXN is then to be aborted. */
static int migrate(MDB_txn *txn, const char *path, kv_lmdb_store *out,
                   char *err, size_t errlen)
{
    struct timespec t0, t1;
    MDB_val k = text("format"), v = text(FORMAT_2);
    uint64_t keys;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if ((rc = migrate_records(txn, out->kv, &keys)) != 0 ||
        (rc = kv_lmdb_meta_put(txn, out->meta, KV_LMDB_META_REVISION, keys ? 1 : 0)) != 0 ||
        (rc = mdb_put(txn, out->meta, &k, &v, 0)) != 0) {
        snprintf(err, errlen, "cannot migrate %s from format 1 (no revisions) to 2: %s%s", path,
                 mdb_strerror(rc), rc == MDB_MAP_FULL ? MIGRATE_ROOM : "");
        return -1;
    }
    out->revision = keys ? 1 : 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    kv_log(KV_LOG_INFO, "engine lmdb: migrated %s from format 1 to 2: %llu keys given "
           "revision 1 in %.3f s", path, (unsigned long long)keys,
           (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}

/* Reads and checks the format mark of an existing store; migrates format 1.
 * Returns 0, 1 for a format this is not, or -1 with ERR. */
static int open_existing(MDB_txn *txn, const char *path, kv_lmdb_store *out,
                         int *migrated, char *err, size_t errlen)
{
    MDB_val k = text("format"), v;
    int rc;

    if (mdb_get(txn, out->meta, &k, &v) != 0 || v.mv_size <= strlen(FORMAT_PREFIX) ||
        memcmp(v.mv_data, FORMAT_PREFIX, strlen(FORMAT_PREFIX)) != 0)
        return 1;
    int is1 = v.mv_size == strlen(FORMAT_1) && memcmp(v.mv_data, FORMAT_1, v.mv_size) == 0;
    int is2 = v.mv_size == strlen(FORMAT_2) && memcmp(v.mv_data, FORMAT_2, v.mv_size) == 0;
    if (!is1 && !is2) {
        snprintf(err, errlen, "%s holds data of format \"%.*s\", which this kvstored cannot "
                 "read (it reads \"%s\" and \"%s\"); run the kvstored that made it", path,
                 (int)(v.mv_size < 64 ? v.mv_size : 64), (const char *)v.mv_data,
                 FORMAT_1, FORMAT_2);
        return -1;
    }
    if ((rc = mdb_dbi_open(txn, "kv", 0, &out->kv)) != 0) {
        snprintf(err, errlen, "cannot open the databases in %s: %s", path, mdb_strerror(rc));
        return -1;
    }
    if (meta_get(txn, out->meta, KV_LMDB_META_DATA_BYTES, &out->data_bytes) < 0 ||
        (is2 && meta_get(txn, out->meta, KV_LMDB_META_REVISION, &out->revision) < 0)) {
        snprintf(err, errlen, "%s: the counters in its \"meta\" database are damaged", path);
        return -1;
    }
    *migrated = is1;
    return is1 ? migrate(txn, path, out, err, errlen) : 0;
}

int kv_lmdb_store_open(MDB_env *env, const char *path, kv_lmdb_store *out,
                        char *err, size_t errlen)
{
    MDB_txn *txn;
    MDB_val k = text("format"), v = text(FORMAT_2);
    int migrated = 0, rc = mdb_txn_begin(env, NULL, 0, &txn);

    *out = (kv_lmdb_store){ 0 };
    if (rc != 0) {
        snprintf(err, errlen, "cannot begin a transaction in %s: %s", path, mdb_strerror(rc));
        return -1;
    }
    rc = mdb_dbi_open(txn, "meta", 0, &out->meta);
    if (rc == MDB_NOTFOUND) {
        /* New, unless the main database holds records someone else put. */
        MDB_dbi main;
        MDB_stat ms;
        if (mdb_dbi_open(txn, NULL, 0, &main) == 0 && mdb_stat(txn, main, &ms) == 0 &&
            ms.ms_entries > 0)
            goto foreign;
        if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &out->meta)) != 0 ||
            (rc = mdb_dbi_open(txn, "kv", MDB_CREATE, &out->kv)) != 0 ||
            (rc = mdb_put(txn, out->meta, &k, &v, 0)) != 0)
            goto fail;
    } else if (rc == MDB_INCOMPATIBLE) {
        goto foreign;
    } else if (rc != 0) {
        goto fail;
    } else {
        int r = open_existing(txn, path, out, &migrated, err, errlen);
        if (r > 0)
            goto foreign;
        if (r < 0) {
            mdb_txn_abort(txn);
            return -1;
        }
    }
    /* A migration rewrites every record: it is committed with LMDB's own
     * syncs whatever --sync says, since a commit under MDB_NOSYNC that a
     * power loss caught half written could damage the whole store, which
     * was whole before it. */
    unsigned flags = 0;
    int nosync = migrated && mdb_env_get_flags(env, &flags) == 0 && (flags & MDB_NOSYNC);
    if (nosync)
        (void)mdb_env_set_flags(env, MDB_NOSYNC, 0);
    rc = mdb_txn_commit(txn);
    if (nosync)
        (void)mdb_env_set_flags(env, MDB_NOSYNC, 1);
    if (rc != 0) {
        snprintf(err, errlen, "cannot %s %s: %s%s", migrated ? "migrate" : "write in", path,
                 mdb_strerror(rc), migrated && rc == MDB_MAP_FULL ? MIGRATE_ROOM : "");
        return -1;
    }
    return 0;
foreign:
    mdb_txn_abort(txn);
    snprintf(err, errlen, "%s holds an LMDB environment that kvstored did not make", path);
    return -1;
fail:
    mdb_txn_abort(txn);
    snprintf(err, errlen, "cannot open the databases in %s: %s", path, mdb_strerror(rc));
    return -1;
}

/* ------------------------------------------------------------ the environment */

int kv_lmdb_env_open(const char *path, uint64_t map_bytes, int nosync, MDB_env **out,
                     char *err, size_t errlen)
{
    /* NORDAHEAD: keys are read at random, read-ahead only evicts. */
    unsigned flags = MDB_NORDAHEAD | (nosync ? MDB_NOSYNC : 0);
    MDB_env *env = NULL;
    MDB_envinfo info;
    MDB_stat ms;
    mdb_filehandle_t fd;
    struct stat fst;
    uint64_t need;
    char want[32];
    int rc, dead;

    if ((rc = mdb_env_create(&env)) != 0 ||
        (rc = mdb_env_set_mapsize(env, (size_t)map_bytes)) != 0 ||
        (rc = mdb_env_set_maxdbs(env, 2)) != 0) {
        snprintf(err, errlen, "cannot set up LMDB: %s", mdb_strerror(rc));
        goto fail;
    }
    rc = mdb_env_open(env, path, flags, 0644);
    if (rc == MDB_INVALID) {
        snprintf(err, errlen, "%s/data.mdb is not an LMDB environment", path);
        goto fail;
    }
    if (rc == MDB_VERSION_MISMATCH) {
        snprintf(err, errlen, "%s/data.mdb was made by an incompatible LMDB version", path);
        goto fail;
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot open the LMDB environment in %s: %s", path,
                 rc == EACCES || rc == EROFS ? strerror(rc) : mdb_strerror(rc));
        goto fail;
    }
    mdb_env_info(env, &info);
    mdb_env_stat(env, &ms);
    need = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
    /* LMDB reads its two meta pages with pread and trusts them: a data
     * file cut shorter than the pages they say are in use opens fine, and
     * the first read of a page past the end of the file, through the map,
     * is SIGBUS. Only the meta pages have been read so far. */
    if ((rc = mdb_env_get_fd(env, &fd)) != 0 || fstat(fd, &fst) != 0) {
        snprintf(err, errlen, "cannot read the size of %s/data.mdb: %s", path,
                 rc ? mdb_strerror(rc) : strerror(errno));
        goto fail;
    }
    if ((uint64_t)fst.st_size < need) {
        snprintf(err, errlen, "%s/data.mdb is truncated: it holds %llu bytes, but its LMDB meta "
                 "page says its data takes %llu (%llu pages of %u bytes)", path,
                 (unsigned long long)fst.st_size, (unsigned long long)need,
                 (unsigned long long)info.me_last_pgno + 1, ms.ms_psize);
        goto fail;
    }
    /* LMDB quietly widens a map smaller than the data; we say so instead. */
    if (need > map_bytes) {
        snprintf(err, errlen, "--lmdb-map-size %s is too small for the data in %s, "
                 "which takes %llu bytes; give --lmdb-map-size %lluM or more",
                 kv_size_text(map_bytes, want, sizeof want), path, (unsigned long long)need,
                 (unsigned long long)((need + (1u << 20) - 1) >> 20));
        goto fail;
    }
    /* Reader slots of a killed predecessor (we hold the directory's lock,
     * so no other process can own one). */
    mdb_reader_check(env, &dead);
    *out = env;
    return 0;
fail:
    if (env)
        mdb_env_close(env);
    return -1;
}

/* ------------------------------------------------------------ records */

int kv_lmdb_get(MDB_txn *txn, MDB_dbi kv, const uint8_t *key, size_t klen,
                MDB_val *value, kv_meta *meta)
{
    MDB_val k = val(key, klen), v;
    int rc = mdb_get(txn, kv, &k, &v);

    if (rc != 0)
        return rc;
    size_t head = kv_lmdb_head_get(v.mv_data, v.mv_size, meta);
    if (!head)
        return KV_LMDB_BAD_RECORD;
    if (value)
        *value = (MDB_val){ v.mv_size - head, (uint8_t *)v.mv_data + head };
    return 0;
}

int kv_lmdb_put(MDB_txn *txn, MDB_dbi kv, const uint8_t *key, size_t klen,
                const uint8_t *value, size_t vlen, uint64_t rev, kv_lmdb_old *old)
{
    kv_meta m = { rev, rev, 1, 0 };
    MDB_val k = val(key, klen), v = { kv_lmdb_head_size(&m) + vlen, NULL };
    /* Reserved, then filled: the header and the value go into the page
     * without a scratch copy. NOOVERWRITE hands back the old record in the
     * same descent, for its revisions. */
    int rc = mdb_put(txn, kv, &k, &v, MDB_NOOVERWRITE | MDB_RESERVE);

    *old = (kv_lmdb_old){ 0 };
    if (rc == MDB_KEYEXIST) {
        kv_meta was;
        size_t head = kv_lmdb_head_get(v.mv_data, v.mv_size, &was);
        if (!head)
            return KV_LMDB_BAD_RECORD;
        *old = (kv_lmdb_old){ 1, v.mv_size - head };
        m.create_revision = was.create_revision;
        m.version = was.version + 1;
        v = (MDB_val){ kv_lmdb_head_size(&m) + vlen, NULL };
        rc = mdb_put(txn, kv, &k, &v, MDB_RESERVE);
    }
    if (rc != 0)
        return rc;
    uint8_t *p = kv_lmdb_head_put(v.mv_data, &m);
    if (vlen)
        memcpy(p, value, vlen);
    return 0;
}

/* ------------------------------------------------------------ ranges */

/* Whether KEY lies past R's end on the side a walk in that direction
 * leaves it: at or after END ascending, before START descending. */
static int past_end(const kv_range *r, int reverse, const MDB_val *key)
{
    if (reverse)
        return r->start_len && kv_key_cmp(key->mv_data, key->mv_size, r->start, r->start_len) < 0;
    return r->end_len && kv_key_cmp(key->mv_data, key->mv_size, r->end, r->end_len) >= 0;
}

/* Puts CUR on the first key of R in the walk's direction, into *K and *V
 * (V may be NULL). An LMDB code, MDB_NOTFOUND when there is none (the
 * caller still checks past_end). */
static int range_first(MDB_cursor *cur, const kv_range *r, int reverse, MDB_val *k, MDB_val *v)
{
    int rc;

    if (!reverse) {
        if (!r->start_len)
            return mdb_cursor_get(cur, k, v, MDB_FIRST);
        *k = val(r->start, r->start_len);
        return mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    }
    if (!r->end_len)
        return mdb_cursor_get(cur, k, v, MDB_LAST);
    /* The last key below END: the one before the first at or after it. */
    *k = val(r->end, r->end_len);
    rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND)
        return mdb_cursor_get(cur, k, v, MDB_LAST);
    return rc != 0 ? rc : mdb_cursor_get(cur, k, v, MDB_PREV);
}

int kv_lmdb_delete_range(MDB_txn *txn, MDB_dbi kv, const kv_range *r, kv_lmdb_deleted *sums)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t psize = 0;
    MDB_stat ms;
    int rc = mdb_cursor_open(txn, kv, &cur);

    if (rc != 0)
        return rc;
    if (mdb_stat(txn, kv, &ms) == 0)
        psize = ms.ms_psize;
    for (rc = range_first(cur, r, 0, &k, &v); rc == 0 && !past_end(r, 0, &k);
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        size_t head = kv_lmdb_head_get(v.mv_data, v.mv_size, NULL);
        if (!head) {
            rc = KV_LMDB_BAD_RECORD;
            break;
        }
        /* Sized before the delete, which moves the bytes K and V point to.
         * A node is 8 bytes, the key and the record, unless the record
         * lives on overflow pages (more than about half a page). */
        size_t stored = k.mv_size + v.mv_size;
        uint64_t bytes = k.mv_size + v.mv_size - head;
        int big = psize && stored > psize / 2;
        /* After a delete the cursor stands on the next key: MDB_NEXT
         * returns that one rather than moving past it. */
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        sums->keys++;
        sums->data_bytes += bytes;
        if (big)
            sums->overflow_pages += (v.mv_size + 16 + psize - 1) / psize;
        else
            sums->node_bytes += 8 + stored;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int kv_lmdb_walk(MDB_txn *txn, MDB_dbi kv, const kv_range *r, int reverse, int with_values,
                 kv_entry_fn fn, void *ctx)
{
    MDB_cursor *cur;
    MDB_val k, v;
    kv_entry entry;
    int rc = mdb_cursor_open(txn, kv, &cur);

    if (rc != 0)
        return rc;
    for (rc = range_first(cur, r, reverse, &k, &v); rc == 0 && !past_end(r, reverse, &k);
         rc = mdb_cursor_get(cur, &k, &v, reverse ? MDB_PREV : MDB_NEXT)) {
        size_t head = kv_lmdb_head_get(v.mv_data, v.mv_size, &entry.meta);
        if (!head) {
            rc = KV_LMDB_BAD_RECORD;
            break;
        }
        entry.key = k.mv_data;
        entry.klen = k.mv_size;
        entry.vlen = v.mv_size - head;
        entry.value = with_values && entry.vlen ? (const uint8_t *)v.mv_data + head : NULL;
        if (fn(ctx, &entry))
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The keys of R in TXN, walked. An LMDB code. */
static int count_walk(MDB_txn *txn, MDB_dbi kv, const kv_range *r, uint64_t *n)
{
    MDB_cursor *cur;
    MDB_val k;
    int rc;

    *n = 0;
    if ((rc = mdb_cursor_open(txn, kv, &cur)) != 0)
        return rc;
    /* No data asked for: a value on overflow pages is not even touched. */
    for (rc = range_first(cur, r, 0, &k, NULL); rc == 0 && !past_end(r, 0, &k);
         rc = mdb_cursor_get(cur, &k, NULL, MDB_NEXT))
        (*n)++;
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int same_bound(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Whether bound A lies at or after bound B, an empty start being the
 * first of all and an empty end the last (END says which A and B are). */
static int at_or_after(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, int end)
{
    if (!alen || !blen)
        return end ? !alen : !blen;
    return kv_key_cmp(a, alen, b, blen) >= 0;
}

/* From MEMO's count, the count of R when R is MEMO's range with its start
 * moved up or its end moved down: MEMO's less the keys between. Returns 1
 * with *N (or an LMDB code in *RC), 0 when MEMO does not apply. */
static int count_from_memo(MDB_txn *txn, MDB_dbi kv, const kv_range *r,
                           const kv_lmdb_count_memo *m, uint64_t *n, int *rc)
{
    int same_start = same_bound(r->start, r->start_len, m->start, m->start_len);
    int same_end = same_bound(r->end, r->end_len, m->end, m->end_len);
    kv_range gone;
    uint64_t d;

    *rc = 0;
    if (same_start && same_end) {
        *n = m->n;
        return 1;
    }
    if (same_end &&
        at_or_after(r->start, r->start_len, m->start, m->start_len, 0)) {
        /* [m.start, min(r.start, end)): what paging forward left behind. */
        int past = r->end_len && at_or_after(r->start, r->start_len, r->end, r->end_len, 0);
        gone = (kv_range){ m->start, m->start_len, past ? r->end : r->start,
                           past ? r->end_len : r->start_len };
    } else if (same_start && r->end_len &&
               at_or_after(m->end, m->end_len, r->end, r->end_len, 1)) {
        /* [max(r.end, start), m.end): what paging backward left behind. */
        int below = r->start_len && !at_or_after(r->end, r->end_len, r->start, r->start_len, 0);
        gone = (kv_range){ below ? r->start : r->end, below ? r->start_len : r->end_len,
                           m->end, m->end_len };
    } else {
        return 0;
    }
    if ((*rc = count_walk(txn, kv, &gone, &d)) == 0)
        *n = m->n - d;
    return 1;
}

int kv_lmdb_count(MDB_txn *txn, MDB_dbi kv, const kv_range *r, kv_lmdb_count_memo *memo,
                  uint64_t *n)
{
    MDB_stat ms;
    int rc;

    *n = 0;
    if (!r->start_len && !r->end_len) {
        if ((rc = mdb_stat(txn, kv, &ms)) == 0)
            *n = ms.ms_entries;
        return rc;
    }
    if (!memo || !memo->valid || !count_from_memo(txn, kv, r, memo, n, &rc))
        rc = count_walk(txn, kv, r, n);
    if (!memo)
        return rc;
    memo->valid = rc == 0 && r->start_len <= KV_LMDB_MEMO_BOUND &&
                  r->end_len <= KV_LMDB_MEMO_BOUND;
    if (memo->valid) {
        memo->n = *n;
        memo->start_len = r->start_len;
        memo->end_len = r->end_len;
        if (r->start_len)
            memcpy(memo->start, r->start, r->start_len);
        if (r->end_len)
            memcpy(memo->end, r->end, r->end_len);
    }
    return rc;
}
