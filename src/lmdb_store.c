/* lmdb_store.c - kvstored's data inside LMDB (the layouts are in
 * lmdb_store.h): opening the environment with the checks LMDB leaves out,
 * opening the databases (creating them, checking the format mark, reading
 * the counters, migrating formats 1 and 2), and the record-level reads and
 * writes the engine runs in its transactions: a key with its revisions and
 * its deadline kept in step with the deadline index, range deletes,
 * ordered walks and counts, the walk of the keys due. Owns no state: the
 * environment, the transactions and the counters are engine_lmdb.c's. */
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
#define FORMAT_3 FORMAT_PREFIX "3"
/* Said when a migration finds the map full. */
#define MIGRATE_ROOM "; the migration rewrites every record in one transaction and needs up " \
                     "to twice the data's size: give a larger --lmdb-map-size (the store is " \
                     "left as it was)"
/* The deadline index: how much of a key its index key holds (lmdb_store.h). */
#define INDEX_PREFIX 503
#define INDEX_FLAGS MDB_DUPSORT
/* Its name sorts before "kv": a read transaction looks a database's name
 * up in LMDB's main database at its first use, and every Get is one; with
 * "kv" the middle of three names, that binary search takes one comparison,
 * as it did with two (a name after "meta" made it two: 3.5% more
 * instructions a Get through the engine, callgrind). */
#define INDEX_NAME "deadlines"

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

/* Migrates the format-1 or 2 store whose "kv" and "meta" TXN has open
 * into OUT: rewrites a format-1 store's records (IS1), adds the deadline
 * index, and marks it format 3. Returns 0 or -1 with ERR; TXN is then to
 * be aborted. */
static int migrate(MDB_txn *txn, const char *path, int is1, kv_lmdb_store *out,
                   char *err, size_t errlen)
{
    struct timespec t0, t1;
    MDB_val k = text("format"), v = text(FORMAT_3);
    uint64_t keys = 0;
    int rc = 0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (is1 && ((rc = migrate_records(txn, out->db.kv, &keys)) != 0 ||
                (rc = kv_lmdb_meta_put(txn, out->db.meta, KV_LMDB_META_REVISION,
                                       keys ? 1 : 0)) != 0))
        goto fail;
    if ((rc = mdb_dbi_open(txn, INDEX_NAME, MDB_CREATE | INDEX_FLAGS, &out->db.deadlines)) != 0 ||
        (rc = mdb_put(txn, out->db.meta, &k, &v, 0)) != 0)
        goto fail;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (is1) {
        out->revision = keys ? 1 : 0;
        kv_log(KV_LOG_INFO, "engine lmdb: migrated %s from format 1 to 3: %llu keys given "
               "revision 1 in %.3f s", path, (unsigned long long)keys, took);
    } else {
        kv_log(KV_LOG_INFO, "engine lmdb: migrated %s from format 2 to 3: the deadline index "
               "added, no record rewritten", path);
    }
    return 0;
fail:
    snprintf(err, errlen, "cannot migrate %s from format %s to 3: %s%s", path,
             is1 ? "1 (no revisions)" : "2 (no deadlines)", mdb_strerror(rc),
             is1 && rc == MDB_MAP_FULL ? MIGRATE_ROOM : "");
    return -1;
}

/* Whether the mark V is NAME. */
static int is_mark(const MDB_val *v, const char *name)
{
    return v->mv_size == strlen(name) && memcmp(v->mv_data, name, v->mv_size) == 0;
}

/* Reads and checks the format mark of an existing store; migrates formats
 * 1 and 2. Returns 0, 1 for a format this is not, or -1 with ERR. */
static int open_existing(MDB_txn *txn, const char *path, kv_lmdb_store *out,
                         int *migrated, char *err, size_t errlen)
{
    MDB_val k = text("format"), v;
    int rc;

    if (mdb_get(txn, out->db.meta, &k, &v) != 0 || v.mv_size <= strlen(FORMAT_PREFIX) ||
        memcmp(v.mv_data, FORMAT_PREFIX, strlen(FORMAT_PREFIX)) != 0)
        return 1;
    int is1 = is_mark(&v, FORMAT_1), is2 = is_mark(&v, FORMAT_2), is3 = is_mark(&v, FORMAT_3);
    if (!is1 && !is2 && !is3) {
        snprintf(err, errlen, "%s holds data of format \"%.*s\", which this kvstored cannot "
                 "read (it reads \"%s\", \"%s\" and \"%s\"); run the kvstored that made it",
                 path, (int)(v.mv_size < 64 ? v.mv_size : 64), (const char *)v.mv_data,
                 FORMAT_1, FORMAT_2, FORMAT_3);
        return -1;
    }
    if ((rc = mdb_dbi_open(txn, "kv", 0, &out->db.kv)) != 0 ||
        (is3 && (rc = mdb_dbi_open(txn, INDEX_NAME, INDEX_FLAGS, &out->db.deadlines)) != 0)) {
        snprintf(err, errlen, "cannot open the databases in %s: %s", path, mdb_strerror(rc));
        return -1;
    }
    if (meta_get(txn, out->db.meta, KV_LMDB_META_DATA_BYTES, &out->data_bytes) < 0 ||
        (!is1 && meta_get(txn, out->db.meta, KV_LMDB_META_REVISION, &out->revision) < 0)) {
        snprintf(err, errlen, "%s: the counters in its \"meta\" database are damaged", path);
        return -1;
    }
    *migrated = is1 ? 1 : is2 ? 2 : 0;
    return is3 ? 0 : migrate(txn, path, is1, out, err, errlen);
}

int kv_lmdb_store_open(MDB_env *env, const char *path, kv_lmdb_store *out,
                        char *err, size_t errlen)
{
    MDB_txn *txn;
    MDB_val k = text("format"), v = text(FORMAT_3);
    int migrated = 0, rc = mdb_txn_begin(env, NULL, 0, &txn);

    *out = (kv_lmdb_store){ 0 };
    if (rc != 0) {
        snprintf(err, errlen, "cannot begin a transaction in %s: %s", path, mdb_strerror(rc));
        return -1;
    }
    rc = mdb_dbi_open(txn, "meta", 0, &out->db.meta);
    if (rc == MDB_NOTFOUND) {
        /* New, unless the main database holds records someone else put. */
        MDB_dbi main;
        MDB_stat ms;
        if (mdb_dbi_open(txn, NULL, 0, &main) == 0 && mdb_stat(txn, main, &ms) == 0 &&
            ms.ms_entries > 0)
            goto foreign;
        if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &out->db.meta)) != 0 ||
            (rc = mdb_dbi_open(txn, "kv", MDB_CREATE, &out->db.kv)) != 0 ||
            (rc = mdb_dbi_open(txn, INDEX_NAME, MDB_CREATE | INDEX_FLAGS,
                               &out->db.deadlines)) != 0 ||
            (rc = mdb_put(txn, out->db.meta, &k, &v, 0)) != 0)
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
                 mdb_strerror(rc), migrated == 1 && rc == MDB_MAP_FULL ? MIGRATE_ROOM : "");
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
        (rc = mdb_env_set_maxdbs(env, 3)) != 0) {
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

/* ------------------------------------------------------------ the deadline index */

/* A key's entry in the deadline index (lmdb_store.h): [deadline][prefix]
 * as the index key, [0] or [1][rest] as the data, laid out back to back
 * in one buffer. */
typedef struct index_entry {
    MDB_val key, data;
    uint8_t *heap;      /* the buffer when BUF is too small, else NULL */
    uint8_t buf[8 + INDEX_PREFIX + 1 + 16];
} index_entry;

/* Fills *T for KEY with deadline D. Returns 0, or ENOMEM. index_done() after. */
static int index_make(index_entry *t, uint64_t d, const uint8_t *key, size_t klen)
{
    size_t prefix = klen < INDEX_PREFIX ? klen : INDEX_PREFIX;
    uint8_t *p = t->buf;

    t->heap = NULL;
    if (9 + klen > sizeof t->buf) {
        if (!(t->heap = malloc(9 + klen)))
            return ENOMEM;
        p = t->heap;
    }
    for (int i = 7; i >= 0; i--, d >>= 8)
        p[i] = (uint8_t)d;
    memcpy(p + 8, key, prefix);
    p[8 + prefix] = klen > INDEX_PREFIX;
    if (klen > prefix)
        memcpy(p + 9 + prefix, key + prefix, klen - prefix);
    t->key = (MDB_val){ 8 + prefix, p };
    t->data = (MDB_val){ 1 + klen - prefix, p + 8 + prefix };
    return 0;
}

static void index_done(index_entry *t)
{
    free(t->heap);
}

/* The deadline of index key IK (at least 8 bytes). */
static uint64_t index_deadline(const MDB_val *ik)
{
    const uint8_t *p = ik->mv_data;
    uint64_t d = 0;

    for (int i = 0; i < 8; i++)
        d = d << 8 | p[i];
    return d;
}

/* Adds (ADD) or deletes KEY's index entry for deadline D. An LMDB code. */
static int index_change(MDB_txn *txn, const kv_lmdb_dbs *db, uint64_t d, const uint8_t *key,
                      size_t klen, int add)
{
    index_entry t;
    int rc = index_make(&t, d, key, klen);

    if (rc == 0)
        rc = add ? mdb_put(txn, db->deadlines, &t.key, &t.data, 0)
                 : mdb_del(txn, db->deadlines, &t.key, &t.data);
    index_done(&t);
    return rc;
}

/* Moves KEY's index entry from deadline WAS to NOW (either 0: none). An
 * LMDB code; KV_LMDB_BAD_INDEX when the entry for WAS is missing. */
static int index_move(MDB_txn *txn, const kv_lmdb_dbs *db, const uint8_t *key, size_t klen,
                    uint64_t was, uint64_t now)
{
    int rc = 0;

    if (was == now)
        return 0;
    if (was && (rc = index_change(txn, db, was, key, klen, 0)) != 0)
        return rc == MDB_NOTFOUND ? KV_LMDB_BAD_INDEX : rc;
    if (now)
        rc = index_change(txn, db, now, key, klen, 1);
    return rc;
}

/* ------------------------------------------------------------ writes */

/* Stores KEY = VALUE with meta M and moves its index entry: kv_lmdb_put
 * when FOLLOW (M's create_revision and version then follow the old record's,
 * if there is one), kv_lmdb_load when not (M stored as it is). */
static int put_record(MDB_txn *txn, const kv_lmdb_dbs *db, const uint8_t *key, size_t klen,
                      const uint8_t *value, size_t vlen, kv_meta m, int follow,
                      kv_entry_fn seen, void *ctx, kv_lmdb_old *old)
{
    uint64_t expires = m.expires_ms;
    MDB_val k = val(key, klen), v = { kv_lmdb_head_size(&m) + vlen, NULL };
    /* Reserved, then filled: the header and the value go into the page
     * without a scratch copy. NOOVERWRITE hands back the old record in the
     * same descent, for its revisions. */
    int rc = mdb_put(txn, db->kv, &k, &v, MDB_NOOVERWRITE | MDB_RESERVE);

    *old = (kv_lmdb_old){ 0 };
    if (rc == MDB_KEYEXIST) {
        kv_entry was;
        size_t head = kv_lmdb_head_get(v.mv_data, v.mv_size, &was.meta);
        if (!head)
            return KV_LMDB_BAD_RECORD;
        *old = (kv_lmdb_old){ 1, v.mv_size - head, was.meta.expires_ms, 0 };
        if (seen) {
            was.key = key;
            was.klen = klen;
            was.vlen = old->vlen;
            was.value = was.vlen ? (const uint8_t *)v.mv_data + head : NULL;
            (void)seen(ctx, &was);
        }
        if (follow) {
            m.create_revision = was.meta.create_revision;
            m.version = was.meta.version + 1;
        }
        v = (MDB_val){ kv_lmdb_head_size(&m) + vlen, NULL };
        rc = mdb_put(txn, db->kv, &k, &v, MDB_RESERVE);
    }
    if (rc != 0)
        return rc;
    uint8_t *p = kv_lmdb_head_put(v.mv_data, &m);
    if (vlen)
        memcpy(p, value, vlen);
    /* The common case, no deadline before or after, ends here. */
    if (old->expires == expires)
        return 0;
    rc = index_move(txn, db, key, klen, old->expires, expires);
    old->torn = rc != 0;        /* the record was changed before */
    return rc;
}

int kv_lmdb_put(MDB_txn *txn, const kv_lmdb_dbs *db, const uint8_t *key, size_t klen,
                const uint8_t *value, size_t vlen, uint64_t rev, uint64_t expires,
                kv_entry_fn seen, void *ctx, kv_lmdb_old *old)
{
    kv_meta m = { rev, rev, 1, expires };

    return put_record(txn, db, key, klen, value, vlen, m, 1, seen, ctx, old);
}

int kv_lmdb_load(MDB_txn *txn, const kv_lmdb_dbs *db, const uint8_t *key, size_t klen,
                 const uint8_t *value, size_t vlen, const kv_meta *meta, kv_lmdb_old *old)
{
    return put_record(txn, db, key, klen, value, vlen, *meta, 0, NULL, NULL, old);
}

int kv_lmdb_touch(MDB_txn *txn, const kv_lmdb_dbs *db, const uint8_t *key, size_t klen,
                  uint64_t expires, kv_lmdb_old *old)
{
    MDB_val k = val(key, klen), v;
    kv_meta m;
    int rc = kv_lmdb_get(txn, db->kv, key, klen, &v, &m);

    *old = (kv_lmdb_old){ 0 };
    if (rc != 0)
        return rc;
    *old = (kv_lmdb_old){ 1, v.mv_size, m.expires_ms, 0 };
    if (m.expires_ms == expires)
        return 0;
    /* The record grows or shrinks with the deadline: rewritten whole, from
     * a copy of the value, since the put may reuse the pages it is in. */
    uint8_t *copy = v.mv_size ? malloc(v.mv_size) : NULL;
    if (v.mv_size && !copy)
        return ENOMEM;
    if (v.mv_size)
        memcpy(copy, v.mv_data, v.mv_size);
    size_t vlen = v.mv_size;
    m.expires_ms = expires;
    v = (MDB_val){ kv_lmdb_head_size(&m) + vlen, NULL };
    rc = mdb_put(txn, db->kv, &k, &v, MDB_RESERVE);
    if (rc == 0) {
        uint8_t *p = kv_lmdb_head_put(v.mv_data, &m);
        if (vlen)
            memcpy(p, copy, vlen);
        rc = index_move(txn, db, key, klen, old->expires, expires);
        old->torn = rc != 0;
    }
    free(copy);
    return rc;
}

int kv_lmdb_drop(MDB_txn *txn, const kv_lmdb_dbs *db)
{
    int rc = mdb_drop(txn, db->kv, 0);

    return rc != 0 ? rc : mdb_drop(txn, db->deadlines, 0);
}

int kv_lmdb_del(MDB_txn *txn, const kv_lmdb_dbs *db, const uint8_t *key, size_t klen,
                uint64_t expires, int *torn)
{
    MDB_val k = val(key, klen);
    int rc = mdb_del(txn, db->kv, &k, NULL);

    *torn = 0;
    if (rc != 0 || !expires)
        return rc;
    rc = index_move(txn, db, key, klen, expires, 0);
    *torn = rc != 0;
    return rc;
}

int kv_lmdb_walk_expiring(MDB_txn *txn, const kv_lmdb_dbs *db, uint64_t now, int with_values,
                          kv_entry_fn fn, void *ctx)
{
    MDB_cursor *cur;
    MDB_val ik, data, v;
    kv_entry entry;
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = mdb_cursor_open(txn, db->deadlines, &cur);

    if (rc != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &ik, &data, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &ik, &data, MDB_NEXT)) {
        if (ik.mv_size < 8 || data.mv_size < 1) {
            rc = KV_LMDB_BAD_INDEX;
            break;
        }
        uint64_t deadline = index_deadline(&ik);
        if (deadline > now)
            break;
        /* The key: the index key's rest, and for a long one the data's. */
        entry.key = (const uint8_t *)ik.mv_data + 8;
        entry.klen = ik.mv_size - 8;
        if (((const uint8_t *)data.mv_data)[0] != 0) {
            size_t tail = data.mv_size - 1;
            if (entry.klen + tail > cap) {
                uint8_t *p = realloc(buf, entry.klen + tail);
                if (!p) {
                    rc = ENOMEM;
                    break;
                }
                buf = p;
                cap = entry.klen + tail;
            }
            memcpy(buf, entry.key, entry.klen);
            memcpy(buf + entry.klen, (const uint8_t *)data.mv_data + 1, tail);
            entry.key = buf;
            entry.klen += tail;
        }
        rc = kv_lmdb_get(txn, db->kv, entry.key, entry.klen, &v, &entry.meta);
        if (rc == 0 && entry.meta.expires_ms != deadline)
            rc = KV_LMDB_BAD_INDEX;
        if (rc != 0) {
            rc = rc == MDB_NOTFOUND ? KV_LMDB_BAD_INDEX : rc;
            break;
        }
        entry.vlen = v.mv_size;
        entry.value = with_values && v.mv_size ? v.mv_data : NULL;
        if (fn(ctx, &entry))
            break;
    }
    mdb_cursor_close(cur);
    free(buf);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int kv_lmdb_next_deadline(MDB_txn *txn, const kv_lmdb_dbs *db, uint64_t *deadline)
{
    MDB_cursor *cur;
    MDB_val ik;
    int rc = mdb_cursor_open(txn, db->deadlines, &cur);

    *deadline = 0;
    if (rc != 0)
        return rc;
    rc = mdb_cursor_get(cur, &ik, NULL, MDB_FIRST);
    if (rc == 0 && ik.mv_size < 8)
        rc = KV_LMDB_BAD_INDEX;
    if (rc == 0)
        *deadline = index_deadline(&ik);
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
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

int kv_lmdb_delete_range(MDB_txn *txn, const kv_lmdb_dbs *db, const kv_range *r,
                         kv_entry_fn fn, void *ctx, kv_lmdb_deleted *sums)
{
    MDB_cursor *cur;
    MDB_val k, v;
    kv_entry entry;
    size_t psize = 0;
    MDB_stat ms;
    int rc = mdb_cursor_open(txn, db->kv, &cur);

    if (rc != 0)
        return rc;
    if (mdb_stat(txn, db->kv, &ms) == 0)
        psize = ms.ms_psize;
    for (rc = range_first(cur, r, 0, &k, &v); rc == 0 && !past_end(r, 0, &k);
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        size_t head = kv_lmdb_head_get(v.mv_data, v.mv_size, &entry.meta);
        if (!head) {
            rc = KV_LMDB_BAD_RECORD;
            break;
        }
        if (fn) {
            entry.key = k.mv_data;
            entry.klen = k.mv_size;
            entry.vlen = v.mv_size - head;
            entry.value = entry.vlen ? (const uint8_t *)v.mv_data + head : NULL;
            (void)fn(ctx, &entry);
        }
        /* Sized before the writes, which may move the bytes K and V point
         * to. A node is 8 bytes, the key and the record, unless the record
         * lives on overflow pages (more than about half a page). */
        size_t stored = k.mv_size + v.mv_size;
        uint64_t bytes = k.mv_size + v.mv_size - head;
        int big = psize && stored > psize / 2;
        /* The index entry first, while K still holds the key (the entry is
         * built from a copy before LMDB writes anything; the cursor on
         * "kv" keeps its page). */
        if (entry.meta.expires_ms) {
            if ((rc = index_move(txn, db, k.mv_data, k.mv_size, entry.meta.expires_ms, 0)) != 0)
                break;
            sums->deadlines++;
        }
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
