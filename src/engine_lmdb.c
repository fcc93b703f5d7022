/* engine_lmdb.c - the persistent engine: LMDB, the embedded B-tree of
 * OpenLDAP, in --dir PATH. Owns the LMDB environment, the loop turn's write
 * transaction and its replay log (oplog.c); the directory checks and the
 * lock are datadir.c's. No storage format of our own: two named LMDB
 * databases, "kv" (the keys and values as given) and "meta" (the format
 * mark and the byte count Stats reports).
 *
 * Writes, group commit: the first write of a loop turn opens one write
 * transaction that every later write of the turn joins, whichever
 * connection it came from; flush(), which the server calls before any
 * answer of the turn is written, commits it. --sync always opens the
 * environment without MDB_NOSYNC, so that commit fsyncs (LMDB syncs the
 * pages, then the meta page) and no answer precedes durability. batch and
 * none open it with MDB_NOSYNC: the commit still writes the pages into the
 * OS's page cache, so a process crash loses nothing answered; batch then
 * calls mdb_env_sync at most every sync_interval_ms, from flush() when the
 * interval has passed and otherwise from the server's timer (sync_delay,
 * sync), so a quiet server is synced within the interval as well.
 * Not MDB_WRITEMAP, though it saves a pwrite per dirty page per commit
 * (SET -c 50 -P 16 -d 3 at --sync none, one run each: 346k -> 485k rps):
 * it makes the data file a sparse file as long as the map, and a full disk
 * then kills the server with SIGBUS on a page fault, where pwrite fails
 * cleanly (the flush fails and no answer is sent). With --sync always it
 * measured no faster anyway.
 *
 * Reads never wait for writes: inside the turn's write transaction when one
 * is open (a Get sees the turn's own writes), otherwise in one read-only
 * transaction renewed and reset around each call.
 *
 * A full map. A failed put (MDB_MAP_FULL above all) makes LMDB abort the
 * whole transaction, other clients' accepted writes included: so every
 * write is also kept in the oplog, and on such a failure the transaction is
 * begun again and the log replayed without the failed write, which alone is
 * refused (RESOURCE_EXHAUSTED "LMDB map full ..."). A commit needs pages
 * too (LMDB's free-list bookkeeping), and a commit that fails loses a turn
 * whose answers are written: so a Set is refused a little early, when the
 * pages in use (every tree, O(1) from mdb_stat), plus those this
 * transaction copied on write, plus what the Set needs, would pass the map
 * less a reserve. Should a commit still fail (free pages too scattered for
 * large values), flush fails and the turn's connections are closed
 * unanswered: never a false OK.
 *
 * Logs: a failed Get, Set or Clear is answered to its one client; the
 * operator hears of it here (log.h): an LMDB error each time, at error; a
 * full map, a limit hit, at warn at most once a minute (FULL_LOG_SECONDS),
 * since a map near full flaps between refusing and taking one more Set
 * from turn to turn. A failed flush or sync is the server's to log, which
 * knows what it cost.
 *
 * Threads: one instance per process, used only by the server's one event
 * loop. A server with several loops would need a read transaction per
 * thread (MDB_NOTLS) and all writes funnelled through one loop's turn,
 * since LMDB allows one write transaction per environment at a time. */
#include <errno.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "datadir.h"
#include "engine.h"
#include "log.h"
#include "size.h"
#include "oplog.h"

#define DEFAULT_MAP_BYTES ((uint64_t)1 << 30)
#define FORMAT "kvstored-lmdb 1"
/* A turn that writes more than this commits early (still before its
 * answers): it bounds the oplog and LMDB's dirty-page list (MDB_TXN_FULL). */
#define TXN_MAX_BYTES ((size_t)64 << 20)
#define TXN_MAX_WRITES 10000
/* Pages of the map kept for LMDB's own needs at commit: 1/64, at least 32. */
#define RESERVE_PAGES(map_pages) ((map_pages) / 64 > 32 ? (map_pages) / 64 : 32)
/* While the map stays full, how often that is logged again. */
#define FULL_LOG_SECONDS 60.0
#define FREE_DBI 0      /* LMDB's free list and main database, always open */
#define MAIN_DBI 1

static const char *const own_files[] = { "data.mdb", "lock.mdb", NULL };
static const uint8_t empty_byte;

typedef struct lmdb_engine {
    kv_engine base;
    MDB_env *env;
    MDB_dbi kv, meta;
    MDB_txn *wtxn;              /* this turn's write transaction, or NULL */
    MDB_txn *rtxn;              /* read-only; reset between calls */
    kv_oplog log;               /* the writes in wtxn, for a replay */
    int broken;                 /* accepted writes of wtxn were lost: the
                                   next flush must fail */
    int last_rc;                /* the LMDB code fail() last saw */
    double full_logged_at;      /* monotonic seconds; 0: never logged */
    int lock_fd;                /* datadir lock, held until close */
    kv_sync_mode sync;
    double sync_interval;       /* seconds, KV_SYNC_BATCH */
    double synced_at;           /* monotonic seconds of the last sync */
    uint64_t synced_at_ms;      /* the same on the wall clock, for Stats */
    int unsynced;               /* commits not yet synced (batch, none) */
    uint64_t map_bytes;
    uint64_t map_pages;         /* map_bytes in pages */
    size_t psize;               /* LMDB's page size */
    uint64_t txn_start_pages;   /* pages in use when wtxn began */
    uint64_t txn_cow_pages;     /* estimate of pages wtxn copied on write */
    uint64_t data_bytes;        /* keys + values, wtxn's writes included */
    uint64_t data_bytes_committed;
    char path[1024];
    char error[256];            /* last_error(); "" when there is none */
} lmdb_engine;

#define LMDB(e) ((lmdb_engine *)(e))

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void set_error(lmdb_engine *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->error, sizeof l->error, fmt, ap);
    va_end(ap);
}

/* The status of a failed LMDB call, with its reason in l->error. */
static kv_status fail(lmdb_engine *l, int rc)
{
    char map[32];

    l->last_rc = rc;
    switch (rc) {
    case MDB_MAP_FULL:
        set_error(l, "LMDB map full (--lmdb-map-size %s); Clear keys or restart with a larger map",
                  kv_size_text(l->map_bytes, map, sizeof map));
        return KV_RESOURCE_EXHAUSTED;
    case MDB_TXN_FULL:
        set_error(l, "write too large for one LMDB transaction");
        return KV_RESOURCE_EXHAUSTED;
    case MDB_BAD_VALSIZE:
        set_error(l, "key or value too large for LMDB");
        return KV_INVALID_ARGUMENT;
    case ENOMEM:
        set_error(l, "server out of memory");
        return KV_RESOURCE_EXHAUSTED;
    default:
        set_error(l, "LMDB: %s", mdb_strerror(rc));
        return KV_INTERNAL;
    }
}

static MDB_val val(const uint8_t *p, size_t n)
{
    return (MDB_val){ n, p ? (void *)p : (void *)&empty_byte };
}

/* ------------------------------------------------------------ the map */

/* Pages a record of N bytes takes outside its leaf (LMDB moves records of
 * more than about half a page to overflow pages). */
static uint64_t overflow_pages(const lmdb_engine *l, size_t n)
{
    return n > l->psize / 2 ? (n + 16 + l->psize - 1) / l->psize : 0;
}

/* Pages in use in TXN: every tree, and the two meta pages. */
static uint64_t pages_in_use(const lmdb_engine *l, MDB_txn *txn)
{
    const MDB_dbi dbis[] = { FREE_DBI, MAIN_DBI, l->meta, l->kv };
    uint64_t n = 2;
    MDB_stat ms;

    for (size_t i = 0; i < sizeof dbis / sizeof dbis[0]; i++)
        if (mdb_stat(txn, dbis[i], &ms) == 0)
            n += ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
    return n;
}

/* Whether a write of KLEN + VLEN bytes leaves the reserve alone. Pages
 * copied on write can be at most those in use when wtxn began. */
static int has_room(const lmdb_engine *l, size_t klen, size_t vlen)
{
    uint64_t cow = l->txn_cow_pages < l->txn_start_pages ? l->txn_cow_pages : l->txn_start_pages;
    uint64_t need = 2 + overflow_pages(l, klen + vlen);

    return pages_in_use(l, l->wtxn) + cow + need + RESERVE_PAGES(l->map_pages) <= l->map_pages;
}

/* ------------------------------------------------------------ writes */

/* Stores KEY in wtxn and counts its bytes. Returns an LMDB code. */
static int put_key(lmdb_engine *l, const uint8_t *key, size_t klen,
                   const uint8_t *value, size_t vlen)
{
    MDB_val k = val(key, klen), v = val(value, vlen);
    /* NOOVERWRITE hands back the old value's size in the same descent. */
    int rc = mdb_put(l->wtxn, l->kv, &k, &v, MDB_NOOVERWRITE);

    if (rc == 0) {
        l->data_bytes += klen + vlen;
        l->txn_cow_pages += 2 + overflow_pages(l, klen + vlen);
        return 0;
    }
    if (rc != MDB_KEYEXIST)
        return rc;
    size_t old = v.mv_size;
    v = val(value, vlen);
    rc = mdb_put(l->wtxn, l->kv, &k, &v, 0);
    if (rc == 0) {
        l->data_bytes = l->data_bytes - old + vlen;
        /* A leaf and a branch, the new value's overflow pages, and the old
         * one's, freed but not reusable before the commit. */
        l->txn_cow_pages += 2 + overflow_pages(l, klen + vlen) + overflow_pages(l, klen + old);
    }
    return rc;
}

/* Removes KEY, whose value is VLEN bytes, from wtxn. An LMDB code. */
static int del_key(lmdb_engine *l, const uint8_t *key, size_t klen, size_t vlen)
{
    MDB_val k = val(key, klen);
    int rc = mdb_del(l->wtxn, l->kv, &k, NULL);

    if (rc == 0) {
        l->data_bytes -= klen + vlen;
        l->txn_cow_pages += 2 + overflow_pages(l, klen + vlen);
    }
    return rc;
}

/* Opens the turn's write transaction unless it is open. An LMDB code. */
static int begin_write(lmdb_engine *l)
{
    if (l->wtxn)
        return 0;
    int rc = mdb_txn_begin(l->env, NULL, 0, &l->wtxn);
    if (rc == 0) {
        l->txn_start_pages = pages_in_use(l, l->wtxn);
        l->txn_cow_pages = 0;
    }
    return rc;
}

static void abort_write(lmdb_engine *l)
{
    if (l->wtxn)
        mdb_txn_abort(l->wtxn);
    l->wtxn = NULL;
    l->data_bytes = l->data_bytes_committed;
}

/* Applies the oplog to a fresh write transaction. Returns an LMDB code. */
static int replay(lmdb_engine *l)
{
    kv_oplog_entry e;
    size_t pos = 0;
    int rc = begin_write(l);

    while (rc == 0 && kv_oplog_next(&l->log, &pos, &e)) {
        if (e.kind == KV_OPLOG_SET) {
            rc = put_key(l, e.key, e.klen, e.value, e.vlen);
        } else {
            MDB_val k = val(e.key, e.klen), v;
            rc = mdb_get(l->wtxn, l->kv, &k, &v);
            if (rc == 0)
                rc = del_key(l, e.key, e.klen, v.mv_size);
        }
    }
    return rc;
}

/* A write whose oplog record is the last one failed with RC, and LMDB may
 * have poisoned wtxn: rebuild wtxn from the log without that write. Returns
 * the status for the failed write. */
static kv_status write_failed(lmdb_engine *l, int rc)
{
    kv_status st = fail(l, rc);
    char why[sizeof l->error];

    kv_oplog_drop_last(&l->log);
    abort_write(l);
    if (l->log.count == 0)
        return st;
    int rrc = replay(l);
    if (rrc != 0) {
        /* Writes already accepted this turn are gone: fail the flush, so
         * that none of them is answered OK. */
        memcpy(why, l->error, sizeof why);
        abort_write(l);
        kv_oplog_clear(&l->log);
        l->broken = 1;
        set_error(l, "%s (and replaying the turn's writes failed: %s)", why, mdb_strerror(rrc));
    }
    return st;
}

/* Commits wtxn, the byte count with it. Returns KV_OK or a status with
 * l->error set; on failure the writes of wtxn are lost. */
static kv_status commit(lmdb_engine *l)
{
    static const char key[] = "data_bytes";
    MDB_val k = { sizeof key - 1, (void *)key }, v = { sizeof l->data_bytes, &l->data_bytes };
    int rc;

    if (l->broken) {
        abort_write(l);
        kv_oplog_clear(&l->log);
        l->broken = 0;
        set_error(l, "an LMDB write failed and took this turn's accepted writes with it");
        return KV_INTERNAL;
    }
    if (!l->wtxn)
        return KV_OK;
    kv_oplog_clear(&l->log);
    rc = l->data_bytes != l->data_bytes_committed ? mdb_put(l->wtxn, l->meta, &k, &v, 0) : 0;
    if (rc != 0) {
        abort_write(l);
        return fail(l, rc);
    }
    rc = mdb_txn_commit(l->wtxn);
    l->wtxn = NULL;
    if (rc != 0) {
        l->data_bytes = l->data_bytes_committed;
        return fail(l, rc);
    }
    l->data_bytes_committed = l->data_bytes;
    if (l->sync == KV_SYNC_ALWAYS) {
        l->synced_at = mono_now();
        l->synced_at_ms = wall_ms();
    } else {
        l->unsynced = 1;
    }
    return KV_OK;
}

/* A write is about to join wtxn: makes sure there is one, committing early
 * when the turn has grown too large. Returns an LMDB code or -1 for a
 * failed early commit (l->error set, l->broken too). */
static int prepare_write(lmdb_engine *l, size_t klen, size_t vlen)
{
    if (l->wtxn && (l->log.count >= TXN_MAX_WRITES || l->log.len + klen + vlen > TXN_MAX_BYTES)) {
        /* Still before any answer of this turn: group commit's promise holds. */
        if (commit(l) != KV_OK) {
            l->broken = 1;
            return -1;
        }
    }
    return begin_write(l);
}

/* ------------------------------------------------------------ the ops */

/* Starts an operation: no error yet. */
static void op_begin(lmdb_engine *l)
{
    l->error[0] = 0;
    l->last_rc = 0;
}

/* Ends operation OP with status ST, logging a failure its client alone
 * would otherwise hear of (see the top of this file). Returns ST. */
static kv_status op_end(lmdb_engine *l, const char *op, kv_status st)
{
    /* INVALID_ARGUMENT: the request's fault, and its client is told. */
    if (st == KV_OK || st == KV_NOT_FOUND || st == KV_INVALID_ARGUMENT)
        return st;
    if (l->last_rc == MDB_MAP_FULL && !l->broken) {
        double now = mono_now();
        if (!l->full_logged_at || now - l->full_logged_at >= FULL_LOG_SECONDS) {
            kv_log(KV_LOG_WARN, "engine lmdb: %s refused: %s (logged at most once a minute)",
                   op, l->error);
            l->full_logged_at = now;
        }
        return st;
    }
    kv_log(KV_LOG_ERROR, "engine lmdb: %s failed: %s", op,
           l->error[0] ? l->error : "out of memory for the value");
    return st;
}

static kv_status lmdb_get(kv_engine *e, const uint8_t *key, size_t klen,
                          ProtobufCAllocator *alloc, ProtobufCBinaryData *value, kv_meta *meta)
{
    if (meta)
        *meta = (kv_meta){ 0 };     /* TODO(issue 13): revisions */
    lmdb_engine *l = LMDB(e);
    MDB_val k = val(key, klen), v;
    int rc;

    op_begin(l);
    MDB_txn *txn = l->wtxn ? l->wtxn : l->rtxn;
    if (txn == l->rtxn && (rc = mdb_txn_renew(l->rtxn)) != 0)
        return op_end(l, "Get", fail(l, rc));
    rc = mdb_get(txn, l->kv, &k, &v);
    kv_status st = rc == 0 ? kv_engine_copy_out(alloc, v.mv_data, v.mv_size, value)
                 : rc == MDB_NOTFOUND ? KV_NOT_FOUND : fail(l, rc);
    if (txn == l->rtxn)
        mdb_txn_reset(l->rtxn);
    return op_end(l, "Get", st);
}

static kv_status set_op(lmdb_engine *l, const uint8_t *key, size_t klen,
                        const uint8_t *value, size_t vlen)
{
    int rc = prepare_write(l, klen, vlen);

    if (rc != 0)
        return rc < 0 ? KV_INTERNAL : fail(l, rc);
    if (!has_room(l, klen, vlen))
        return fail(l, MDB_MAP_FULL);
    if (kv_oplog_append(&l->log, KV_OPLOG_SET, key, klen, value, vlen) < 0)
        return fail(l, ENOMEM);
    rc = put_key(l, key, klen, value, vlen);
    return rc == 0 ? KV_OK : write_failed(l, rc);
}

static kv_status lmdb_set(kv_engine *e, const uint8_t *key, size_t klen,
                          const uint8_t *value, size_t vlen, uint64_t rev)
{
    lmdb_engine *l = LMDB(e);

    (void)rev;
    op_begin(l);
    return op_end(l, "Set", set_op(l, key, klen, value, vlen));
}

static kv_status unset_op(lmdb_engine *l, const uint8_t *key, size_t klen,
                          ProtobufCAllocator *alloc, ProtobufCBinaryData *old)
{
    MDB_val k = val(key, klen), v;
    int rc = prepare_write(l, klen, 0);

    if (rc != 0)
        return rc < 0 ? KV_INTERNAL : fail(l, rc);
    rc = mdb_get(l->wtxn, l->kv, &k, &v);
    if (rc == MDB_NOTFOUND)
        return KV_NOT_FOUND;
    if (rc != 0)
        return fail(l, rc);
    /* Copied before the delete, which may move the bytes it points to. */
    if (old && kv_engine_copy_out(alloc, v.mv_data, v.mv_size, old) != KV_OK)
        return KV_RESOURCE_EXHAUSTED;   /* nothing removed */
    if (kv_oplog_append(&l->log, KV_OPLOG_UNSET, key, klen, NULL, 0) < 0)
        return fail(l, ENOMEM);
    rc = del_key(l, key, klen, v.mv_size);
    return rc == 0 ? KV_OK : write_failed(l, rc);
}

static kv_status lmdb_unset(kv_engine *e, const uint8_t *key, size_t klen,
                            ProtobufCAllocator *alloc, ProtobufCBinaryData *old, uint64_t rev)
{
    lmdb_engine *l = LMDB(e);

    (void)rev;
    op_begin(l);
    return op_end(l, "Clear", unset_op(l, key, klen, alloc, old));
}

static kv_status lmdb_sync(kv_engine *e)
{
    lmdb_engine *l = LMDB(e);
    int rc;

    l->error[0] = 0;
    rc = mdb_env_sync(l->env, 1);
    if (rc != 0) {
        l->synced_at = mono_now();  /* retried an interval later, not at once */
        return fail(l, rc);
    }
    l->unsynced = 0;
    l->synced_at = mono_now();
    l->synced_at_ms = wall_ms();
    return KV_OK;
}

static kv_status lmdb_flush(kv_engine *e)
{
    lmdb_engine *l = LMDB(e);
    kv_status st;

    l->error[0] = 0;
    st = commit(l);
    if (st != KV_OK)
        return st;
    if (l->sync == KV_SYNC_BATCH && l->unsynced && mono_now() - l->synced_at >= l->sync_interval)
        return lmdb_sync(e);
    return KV_OK;
}

static double lmdb_sync_delay(kv_engine *e)
{
    lmdb_engine *l = LMDB(e);

    if (l->sync != KV_SYNC_BATCH || !l->unsynced)
        return -1;
    double left = l->synced_at + l->sync_interval - mono_now();
    return left > 0 ? left : 0;
}

static const char *lmdb_last_error(kv_engine *e)
{
    lmdb_engine *l = LMDB(e);
    return l->error[0] ? l->error : NULL;
}

static void lmdb_stats(kv_engine *e, kv_engine_stats *st)
{
    lmdb_engine *l = LMDB(e);
    MDB_txn *txn = l->wtxn;
    MDB_stat ms;
    mdb_filehandle_t fd;
    struct stat fst;

    st->data_bytes = l->data_bytes;
    st->map_bytes = l->map_bytes;
    st->last_sync_ms = l->synced_at_ms;
    st->sync = kv_sync_mode_name(l->sync);
    /* Blocks in use, which is what the disk gives up (the file may have
     * holes). */
    if (mdb_env_get_fd(l->env, &fd) == 0 && fstat(fd, &fst) == 0)
        st->file_bytes = (uint64_t)fst.st_blocks * 512;
    if (!txn) {
        if (mdb_txn_renew(l->rtxn) != 0)
            return;
        txn = l->rtxn;
    }
    if (mdb_stat(txn, l->kv, &ms) == 0) {
        st->keys = ms.ms_entries;
        st->memory_bytes = (uint64_t)ms.ms_psize *
                           (ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages);
    }
    if (txn == l->rtxn)
        mdb_txn_reset(l->rtxn);
}

static void env_free(lmdb_engine *l)
{
    if (l->rtxn)
        mdb_txn_abort(l->rtxn);
    if (l->env)
        mdb_env_close(l->env);
    if (l->lock_fd >= 0)
        close(l->lock_fd);
    kv_oplog_free(&l->log);
    free(l);
}

static kv_status lmdb_close(kv_engine *e)
{
    lmdb_engine *l = LMDB(e);
    kv_status st = commit(l);
    int rc;

    /* Nobody asks last_error() after close: this is the one place to say. */
    if (st != KV_OK)
        kv_log(KV_LOG_ERROR, "engine lmdb: the last commit, at close, failed: %s", l->error);
    /* Every mode syncs on the way out: a clean stop leaves nothing to chance. */
    if ((rc = mdb_env_sync(l->env, 1)) != 0) {
        kv_log(KV_LOG_ERROR, "engine lmdb: the sync at close failed: %s", mdb_strerror(rc));
        st = KV_INTERNAL;
    }
    env_free(l);
    return st;
}

/* ------------------------------------------------------------ opening */

/* Opens (or, in a new environment, creates) the "kv" and "meta" databases
 * and reads the byte count. Returns 0 or -1 with ERR. */
static int open_dbs(lmdb_engine *l, char *err, size_t errlen)
{
    MDB_txn *txn;
    MDB_val k = { 6, (void *)"format" }, v;
    int rc = mdb_txn_begin(l->env, NULL, 0, &txn);

    if (rc != 0) {
        snprintf(err, errlen, "cannot begin a transaction in %s: %s", l->path, mdb_strerror(rc));
        return -1;
    }
    rc = mdb_dbi_open(txn, "meta", 0, &l->meta);
    if (rc == MDB_NOTFOUND) {
        /* New, unless the main database holds records someone else put. */
        MDB_dbi main;
        MDB_stat ms;
        if (mdb_dbi_open(txn, NULL, 0, &main) == 0 && mdb_stat(txn, main, &ms) == 0 &&
            ms.ms_entries > 0)
            goto foreign;
        v = (MDB_val){ sizeof FORMAT - 1, (void *)FORMAT };
        if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &l->meta)) != 0 ||
            (rc = mdb_dbi_open(txn, "kv", MDB_CREATE, &l->kv)) != 0 ||
            (rc = mdb_put(txn, l->meta, &k, &v, 0)) != 0)
            goto fail;
    } else if (rc == MDB_INCOMPATIBLE) {
        goto foreign;
    } else if (rc != 0) {
        goto fail;
    } else {
        if (mdb_get(txn, l->meta, &k, &v) != 0 || v.mv_size != sizeof FORMAT - 1 ||
            memcmp(v.mv_data, FORMAT, v.mv_size) != 0)
            goto foreign;
        k = (MDB_val){ 10, (void *)"data_bytes" };
        if (mdb_get(txn, l->meta, &k, &v) == 0 && v.mv_size == sizeof l->data_bytes)
            memcpy(&l->data_bytes, v.mv_data, sizeof l->data_bytes);
        if ((rc = mdb_dbi_open(txn, "kv", 0, &l->kv)) != 0)
            goto fail;
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        snprintf(err, errlen, "cannot write in %s: %s", l->path, mdb_strerror(rc));
        return -1;
    }
    l->data_bytes_committed = l->data_bytes;
    return 0;
foreign:
    mdb_txn_abort(txn);
    snprintf(err, errlen, "%s holds an LMDB environment that kvstored did not make", l->path);
    return -1;
fail:
    mdb_txn_abort(txn);
    snprintf(err, errlen, "cannot open the databases in %s: %s", l->path, mdb_strerror(rc));
    return -1;
}

/* Opens the environment in l->path. Returns 0 or -1 with ERR. */
static int open_env(lmdb_engine *l, char *err, size_t errlen)
{
    /* NORDAHEAD: keys are read at random, read-ahead only evicts. */
    unsigned flags = MDB_NORDAHEAD | (l->sync == KV_SYNC_ALWAYS ? 0 : MDB_NOSYNC);
    MDB_envinfo info;
    MDB_stat ms;
    char want[32];
    int rc, dead;

    if ((rc = mdb_env_create(&l->env)) != 0 ||
        (rc = mdb_env_set_mapsize(l->env, (size_t)l->map_bytes)) != 0 ||
        (rc = mdb_env_set_maxdbs(l->env, 2)) != 0) {
        snprintf(err, errlen, "cannot set up LMDB: %s", mdb_strerror(rc));
        return -1;
    }
    rc = mdb_env_open(l->env, l->path, flags, 0644);
    if (rc == MDB_INVALID) {
        snprintf(err, errlen, "%s/data.mdb is not an LMDB environment", l->path);
        return -1;
    }
    if (rc == MDB_VERSION_MISMATCH) {
        snprintf(err, errlen, "%s/data.mdb was made by an incompatible LMDB version", l->path);
        return -1;
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot open the LMDB environment in %s: %s", l->path,
                 rc == EACCES || rc == EROFS ? strerror(rc) : mdb_strerror(rc));
        return -1;
    }
    mdb_env_info(l->env, &info);
    mdb_env_stat(l->env, &ms);
    l->psize = ms.ms_psize;
    l->map_pages = l->map_bytes / l->psize;
    uint64_t need = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
    /* LMDB reads its two meta pages with pread and trusts them: a data
     * file cut shorter than the pages they say are in use opens fine, and
     * the first read of a page past the end of the file, through the map,
     * is SIGBUS. Only the meta pages have been read so far. */
    mdb_filehandle_t fd;
    struct stat fst;
    if ((rc = mdb_env_get_fd(l->env, &fd)) != 0 || fstat(fd, &fst) != 0) {
        snprintf(err, errlen, "cannot read the size of %s/data.mdb: %s", l->path,
                 rc ? mdb_strerror(rc) : strerror(errno));
        return -1;
    }
    if ((uint64_t)fst.st_size < need) {
        snprintf(err, errlen, "%s/data.mdb is truncated: it holds %llu bytes, but its LMDB meta "
                 "page says its data takes %llu (%llu pages of %u bytes)", l->path,
                 (unsigned long long)fst.st_size, (unsigned long long)need,
                 (unsigned long long)info.me_last_pgno + 1, ms.ms_psize);
        return -1;
    }
    /* LMDB quietly widens a map smaller than the data; we say so instead. */
    if (need > l->map_bytes) {
        snprintf(err, errlen, "--lmdb-map-size %s is too small for the data in %s, "
                 "which takes %llu bytes; give --lmdb-map-size %lluM or more",
                 kv_size_text(l->map_bytes, want, sizeof want), l->path, (unsigned long long)need,
                 (unsigned long long)((need + (1u << 20) - 1) >> 20));
        return -1;
    }
    /* Reader slots of a killed predecessor (we hold the directory's lock,
     * so no other process can own one). */
    mdb_reader_check(l->env, &dead);
    if (open_dbs(l, err, errlen) < 0)
        return -1;
    rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &l->rtxn);
    if (rc != 0) {
        snprintf(err, errlen, "cannot begin a read transaction: %s", mdb_strerror(rc));
        return -1;
    }
    mdb_txn_reset(l->rtxn);
    return 0;
}

static kv_status lmdb_open(const char *dir, const kv_engine_options *opts,
                           kv_engine **out, char *err, size_t errlen)
{
    lmdb_engine *l;

    if (!dir || !dir[0]) {
        snprintf(err, errlen, "needs --dir PATH, the directory for its files");
        return KV_INVALID_ARGUMENT;
    }
    if (strlen(dir) >= sizeof l->path) {
        snprintf(err, errlen, "--dir path too long");
        return KV_INVALID_ARGUMENT;
    }
    l = calloc(1, sizeof *l);
    if (!l)
        return KV_RESOURCE_EXHAUSTED;
    l->base.ops = &kv_engine_lmdb;
    l->lock_fd = -1;
    l->log = (kv_oplog)KV_OPLOG_INIT;
    snprintf(l->path, sizeof l->path, "%s", dir);
    l->sync = opts ? opts->sync : KV_SYNC_ALWAYS;
    l->sync_interval = (opts && opts->sync_interval_ms ? opts->sync_interval_ms : 100) / 1000.0;
    l->map_bytes = opts && opts->map_bytes ? opts->map_bytes : DEFAULT_MAP_BYTES;
    l->synced_at = mono_now();

    l->lock_fd = kv_datadir_lock(dir, "data.mdb", own_files, err, errlen);
    if (l->lock_fd < 0 || open_env(l, err, errlen) < 0) {
        env_free(l);
        return KV_FAILED_PRECONDITION;
    }
    l->base.max_key_bytes = (size_t)mdb_env_get_maxkeysize(l->env);
    *out = &l->base;
    return KV_OK;
}

const kv_engine_ops kv_engine_lmdb = {
    .name = "lmdb",
    .open = lmdb_open,
    .get = lmdb_get,
    .set = lmdb_set,
    .unset = lmdb_unset,
    .unset_range = kv_engine_stub_unset_range,
    .revision = kv_engine_stub_revision,
    .walk = kv_engine_stub_walk,
    .count = kv_engine_stub_count,
    .batch_begin = kv_engine_stub_batch_begin,
    .batch_end = kv_engine_stub_batch_end,
    .flush = lmdb_flush,
    .sync_delay = lmdb_sync_delay,
    .sync = lmdb_sync,
    .last_error = lmdb_last_error,
    .stats = lmdb_stats,
    .close = lmdb_close,
};
