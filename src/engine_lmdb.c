/* engine_lmdb.c - the persistent engine: LMDB, the embedded B-tree of
 * OpenLDAP, in --dir PATH. Owns the LMDB environment, the loop turn's write
 * transaction, batches, and the turn's replay log (oplog.c); the checks
 * made opening the environment, the layout of the data, its migration and
 * the cursor work over ranges are lmdb_store.c's; the directory checks and
 * the lock, datadir.c's. Three named LMDB databases: "kv" (each key with
 * its revisions, deadline and value), "deadlines" (the deadline index) and
 * "meta" (the format mark, the store's revision and the byte count Stats
 * reports).
 *
 * Revisions (engine.h): every record carries its key's create_revision,
 * mod_revision and version; the store's revision is kept here as writes
 * are made and put into "meta" by the commit that makes them durable, in
 * the same transaction: after a restart or a kill -9 it is what was
 * committed with the data, and goes on from there.
 *
 * Deadlines (engine.h, v2.1): on CLOCK_REALTIME, ms since the epoch, so
 * that they mean the same after a restart: a key whose deadline passed
 * while the server was down is due at once, and walk_expiring hands it to
 * the expiry above. A key's deadline is in its record (a read needs no
 * second lookup) and in "deadlines", sorted by deadline, so the keys due
 * and the next deadline are a cursor walk from its start rather than a
 * walk of every key. Every write keeps the two in step in the same
 * transaction (lmdb_store.c): a Set moves or removes the entry, a Touch
 * rewrites the record and moves it, a Clear or a range deletion removes
 * it; batches and replays need nothing of their own, since the index is
 * in the same (child) transaction and the oplog keeps each Set's and
 * Touch's deadline. keys_with_ttl is the index's entry count, O(1)
 * (mdb_stat).
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
 * measured no faster anyway. (Nested transactions, below, need it off too.)
 *
 * Reads never wait for writes: inside the open batch or the turn's write
 * transaction when there is one (a Get sees the turn's own writes),
 * otherwise in one read-only transaction renewed and reset around each
 * call. A view handed out by get_view or walk points into LMDB's pages: a
 * read-only snapshot's pages are not reused before a later write
 * transaction commits, a write transaction's until its next write.
 *
 * A full map. A failed put (MDB_MAP_FULL above all) makes LMDB abort the
 * whole transaction, other clients' accepted writes included: so every
 * write is also kept in the oplog with the revision it was made at, and on
 * such a failure the transaction is begun again and the log replayed
 * without the failed write, which alone is refused (RESOURCE_EXHAUSTED
 * "LMDB map full ..."); the replay makes the same keys and revisions, since
 * the same writes run in the same order on the same committed state. (A
 * write that fails before LMDB changed anything, which leaves the
 * transaction usable, is just dropped from the log.) A commit needs pages
 * too (LMDB's free-list bookkeeping), and a commit that fails loses a turn
 * whose answers are written: so a Set is refused a little early, when the
 * pages in use (every tree, O(1) from mdb_stat), plus those this
 * transaction copied on write, plus what the Set needs, would pass the map
 * less a reserve. Should a commit still fail (free pages too scattered for
 * large values), flush fails and the turn's connections are closed
 * unanswered: never a false OK.
 *
 * Batches (a Txn): a nested LMDB transaction, a child of the turn's, which
 * batch_end commits into it or aborts. Aborting a child leaves its parent
 * as it was, so a batch undone, or one whose write failed, costs the rest
 * of the turn nothing. A write that fails inside a batch loses only the
 * child: it is begun again and the batch's records replayed without the
 * failed one, as for the turn. In the oplog a kept batch sits between
 * BATCH_BEGIN and BATCH_END and an undone one leaves nothing. A replay of
 * the turn applies a kept batch flat, without a child: the replay is all
 * or nothing for the whole turn already (one that fails loses the turn and
 * fails the flush), so it cannot keep half a batch. A child costs two
 * allocations of LMDB's dirty-page lists (3 MiB of address space, touched
 * only as used) and a merge of the lists at commit: about 0.4 us a batch
 * (200,000 Sets of a 16-byte key and a 32-byte value, 100 a turn, through
 * the engine alone: 1.7 us each, 2.1 us each in a batch of its own).
 *
 * Snapshots: reset() drops "kv" and "deadlines" (mdb_drop frees their
 * pages without reading leaves that have no overflow pages) in the turn's
 * transaction, sets the revision and commits and syncs at once, so it
 * needs no oplog record. load() joins the turn as a Set does, logged as
 * the record it stores (KV_OPLOG_LOAD: a replay needs the meta), and is
 * committed at flush() or every TXN_MAX_WRITES. 1M keys of 16 bytes with
 * 32-byte values, --sync none, the engine alone: loads 0.26 s, a walk of
 * them 20 ms, reset 30 ms.
 *
 * Logs: a failed Get, Set or Clear is answered to its one client; the
 * operator hears of it here (log.h): an LMDB error each time, at error; a
 * full map, a limit hit, at warn at most once a minute (FULL_LOG_SECONDS),
 * since a map near full flaps between refusing and taking one more Set
 * from turn to turn. A failed flush or sync is the server's to log, which
 * knows what it cost.
 *
 * Threads: one instance per process, used only by the server's one event
 * loop, but for snapshot views (engine.h): each has its read-only
 * transaction, which MDB_NOTLS ties to the view rather than to a thread,
 * so another thread walks it while the loop writes. A server with several loops would need a read transaction per
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
#include "lmdb_store.h"
#include "log.h"
#include "size.h"
#include "oplog.h"

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

/* What a batch undoes to. */
typedef struct lmdb_saved {
    kv_oplog_mark mark;         /* the log before its BATCH_BEGIN */
    uint64_t revision, data_bytes, cow_pages;
} lmdb_saved;

typedef struct lmdb_engine {
    kv_engine base;
    MDB_env *env;
    kv_lmdb_dbs db;             /* "kv", "meta", "deadlines" */
    MDB_txn *wtxn;              /* this turn's write transaction, or NULL */
    MDB_txn *batch;             /* the open batch's child of wtxn; NULL when
                                   none is open, or it was lost */
    MDB_txn *rtxn;              /* read-only; reset between calls */
    int batch_open;             /* batch_begin ran, batch_end has not */
    int batch_lost;             /* the open batch's writes are gone: it can
                                   only be ended, and not kept */
    lmdb_saved batch_at;        /* the state at batch_begin */
    kv_lmdb_count_memo counted; /* the last count; cleared by changed() */
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
    uint64_t index_pages;       /* pages of "deadlines" in the write
                                   transaction, when index_pages_known */
    int index_pages_known;      /* cleared by index_changed() */
    uint64_t txn_cow_pages;     /* estimate of pages wtxn copied on write */
    uint64_t revision;          /* the store's, wtxn's writes included */
    uint64_t revision_committed;
    uint64_t data_bytes;        /* keys + values, wtxn's writes included */
    uint64_t data_bytes_committed;
    uint8_t *record;            /* load's record for the oplog */
    size_t record_cap;
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
    case KV_LMDB_BAD_RECORD:
        set_error(l, "a record in %s/data.mdb is damaged: its revisions cannot be read", l->path);
        return KV_DATA_LOSS;
    case KV_LMDB_BAD_INDEX:
        set_error(l, "the deadline index in %s/data.mdb is damaged: it does not match the keys",
                  l->path);
        return KV_DATA_LOSS;
    default:
        set_error(l, "LMDB: %s", mdb_strerror(rc));
        return KV_INTERNAL;
    }
}

/* ------------------------------------------------------------ the map */

/* Pages a record of N bytes takes outside its leaf (LMDB moves records of
 * more than about half a page to overflow pages). */
static uint64_t overflow_pages(const lmdb_engine *l, size_t n)
{
    return n > l->psize / 2 ? (n + 16 + l->psize - 1) / l->psize : 0;
}

/* The transaction writes go to: the open batch's, else the turn's. */
static MDB_txn *write_txn(const lmdb_engine *l)
{
    return l->batch_open ? l->batch : l->wtxn;
}

/* The deadline index may have changed in the write transaction, or the
 * write transaction is another one: its page count is to be read again. */
static void index_changed(lmdb_engine *l)
{
    l->index_pages_known = 0;
}

/* Pages in use in the write transaction: every tree, and the two meta
 * pages. The deadline index's count is kept between calls until a write
 * that gives or takes a deadline (index_changed), so that a Set without
 * one costs no more mdb_stat calls than before the index was there (an
 * mdb_stat is 50 instructions, 1.3% of a Set through the engine). */
static inline uint64_t pages_in_use(lmdb_engine *l)
{
    const MDB_dbi dbis[] = { FREE_DBI, MAIN_DBI, l->db.meta, l->db.kv };
    MDB_txn *txn = write_txn(l);
    uint64_t n = 2;
    MDB_stat ms;

    for (size_t i = 0; i < sizeof dbis / sizeof dbis[0]; i++)
        if (mdb_stat(txn, dbis[i], &ms) == 0)
            n += ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
    if (!l->index_pages_known && mdb_stat(txn, l->db.deadlines, &ms) == 0) {
        l->index_pages = ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
        l->index_pages_known = 1;
    }
    return n + l->index_pages;
}

/* Whether a write of KLEN + VLEN bytes (and an entry of the deadline
 * index, when DEADLINE) leaves the reserve alone. Pages copied on write
 * can be at most those in use when wtxn began. */
static inline int has_room(lmdb_engine *l, size_t klen, size_t vlen, int deadline)
{
    uint64_t cow = l->txn_cow_pages < l->txn_start_pages ? l->txn_cow_pages : l->txn_start_pages;
    uint64_t need = 2 + overflow_pages(l, klen + KV_LMDB_HEAD_MAX + vlen) + (deadline ? 2 : 0);

    return pages_in_use(l) + cow + need + RESERVE_PAGES(l->map_pages) <=
           l->map_pages;
}

/* Whether TXN can still be used: LMDB marks one in which a write failed
 * after it began changing pages, and refuses every later call in it. */
static int txn_usable(const lmdb_engine *l, MDB_txn *txn)
{
    MDB_stat ms;

    return txn && mdb_stat(txn, l->db.kv, &ms) == 0;
}

/* ------------------------------------------------------------ reads */

/* Puts in *TXN the transaction a read runs in: the open batch's, the
 * turn's write transaction (a read sees the turn's writes), or the
 * read-only one, renewed; end_read() after. An LMDB code. */
static int begin_read(lmdb_engine *l, MDB_txn **txn)
{
    *txn = l->batch ? l->batch : l->wtxn;
    if (*txn)
        return 0;
    *txn = l->rtxn;
    return mdb_txn_renew(l->rtxn);
}

static void end_read(lmdb_engine *l, MDB_txn *txn)
{
    if (txn == l->rtxn)
        mdb_txn_reset(l->rtxn);
}

/* ------------------------------------------------------------ writes */

/* The data a read sees changed (a write, or writes undone): the count
 * memo no longer holds. */
static void changed(lmdb_engine *l)
{
    l->counted.valid = 0;
}

/* A put of a KLEN-byte key and a VLEN-byte value with deadline EXPIRES
 * ended with RC, having found OLD: counts its bytes and pages and makes
 * REV the store's revision when it succeeded. Returns RC. */
static int put_done(lmdb_engine *l, int rc, size_t klen, size_t vlen, uint64_t rev,
                    uint64_t expires, const kv_lmdb_old *old)
{
    if (rc != 0 || old->expires != expires)
        index_changed(l);
    if (rc != 0)
        return rc;
    changed(l);
    l->revision = rev;
    l->data_bytes = l->data_bytes + klen + vlen - (old->found ? klen + old->vlen : 0);
    /* A leaf and a branch, the new value's overflow pages, and the old
     * one's, freed but not reusable before the commit; a leaf and a branch
     * of the deadline index when it changed. */
    l->txn_cow_pages += 2 + overflow_pages(l, klen + KV_LMDB_HEAD_MAX + vlen);
    if (old->found)
        l->txn_cow_pages += overflow_pages(l, klen + KV_LMDB_HEAD_MAX + old->vlen);
    if (old->expires != expires)
        l->txn_cow_pages += 2;
    return 0;
}

/* Stores KEY = VALUE at revision REV with deadline EXPIRES in the write
 * transaction, calling SEEN (may be NULL) with the old entry, and counts
 * its bytes. Returns an LMDB code, with *TORN set when the failed write
 * had changed the transaction already; the counts move only on success. */
static int put_key(lmdb_engine *l, const uint8_t *key, size_t klen, const uint8_t *value,
                   size_t vlen, uint64_t rev, uint64_t expires, kv_entry_fn seen, void *ctx,
                   int *torn)
{
    kv_lmdb_old old;
    int rc = kv_lmdb_put(write_txn(l), &l->db, key, klen, value, vlen, rev, expires, seen, ctx,
                         &old);

    *torn = old.torn;
    return put_done(l, rc, klen, vlen, rev, expires, &old);
}

/* Stores KEY = VALUE with exactly META in the write transaction (a
 * snapshot's key); the store's revision becomes the greater of its own
 * and META's mod_revision. As put_key otherwise. */
static int load_key(lmdb_engine *l, const uint8_t *key, size_t klen, const uint8_t *value,
                    size_t vlen, const kv_meta *meta, int *torn)
{
    kv_lmdb_old old;
    int rc = kv_lmdb_load(write_txn(l), &l->db, key, klen, value, vlen, meta, &old);
    uint64_t rev = meta->mod_revision > l->revision ? meta->mod_revision : l->revision;

    *torn = old.torn;
    return put_done(l, rc, klen, vlen, rev, meta->expires_ms, &old);
}

/* Sets KEY's deadline to EXPIRES in the write transaction. Returns an LMDB
 * code (MDB_NOTFOUND), with *TORN as put_key's. */
static int touch_key(lmdb_engine *l, const uint8_t *key, size_t klen, uint64_t expires,
                     int *torn)
{
    kv_lmdb_old old;
    int rc = kv_lmdb_touch(write_txn(l), &l->db, key, klen, expires, &old);

    *torn = old.torn;
    if (rc != 0 || old.expires != expires)
        index_changed(l);
    if (rc == 0 && old.expires != expires)
        l->txn_cow_pages += 4 + 2 * overflow_pages(l, klen + KV_LMDB_HEAD_MAX + old.vlen);
    return rc;
}

/* Removes KEY, whose value is VLEN bytes and deadline EXPIRES, at revision
 * REV. An LMDB code, with *TORN as put_key's. */
static int del_key(lmdb_engine *l, const uint8_t *key, size_t klen, size_t vlen,
                   uint64_t expires, uint64_t rev, int *torn)
{
    int rc = kv_lmdb_del(write_txn(l), &l->db, key, klen, expires, torn);

    if (expires)
        index_changed(l);
    if (rc == 0) {
        changed(l);
        l->revision = rev;
        l->data_bytes -= klen + vlen;
        l->txn_cow_pages += 2 + overflow_pages(l, klen + KV_LMDB_HEAD_MAX + vlen) +
                            (expires ? 2 : 0);
    }
    return rc;
}

/* Removes the keys of R at revision REV (which moves only if one was
 * there), calling FN (may be NULL) with each first; their number in *N.
 * An LMDB code: on failure some keys may be gone, and the counts are
 * stale until the transaction is rebuilt. */
static int del_range(lmdb_engine *l, const kv_range *r, uint64_t rev, kv_entry_fn fn,
                     void *ctx, uint64_t *n)
{
    kv_lmdb_deleted d = { 0 };
    uint64_t index_pages = 0;
    MDB_stat ms;
    int rc;

    if (mdb_stat(write_txn(l), l->db.deadlines, &ms) == 0)
        index_pages = ms.ms_branch_pages + ms.ms_leaf_pages;
    rc = kv_lmdb_delete_range(write_txn(l), &l->db, r, fn, ctx, &d);

    if (rc != 0 || d.deadlines)
        index_changed(l);
    *n = d.keys;
    if (d.keys)
        changed(l);
    if (rc != 0 || d.keys == 0)
        return rc;
    l->revision = rev;
    l->data_bytes -= d.data_bytes;
    /* The leaves the nodes came from (at least half full), their path,
     * and the overflow pages freed; and the index's pages its entries were
     * on, which lie scattered (sorted by deadline, not key): one each, at
     * most every page it has. */
    l->txn_cow_pages += 2 + 2 * d.node_bytes / l->psize + d.overflow_pages;
    if (d.deadlines)
        l->txn_cow_pages += d.deadlines < index_pages ? d.deadlines : index_pages;
    return 0;
}

/* Applies one oplog record again, at its own revision. An LMDB code. */
static int apply(lmdb_engine *l, const kv_oplog_entry *e)
{
    MDB_val v;
    kv_meta m;
    uint64_t n;
    int rc, torn;

    switch (e->kind) {
    case KV_OPLOG_SET:
        return put_key(l, e->key, e->klen, e->value, e->vlen, e->rev, e->expires, NULL, NULL,
                       &torn);
    case KV_OPLOG_TOUCH:
        return touch_key(l, e->key, e->klen, e->expires, &torn);
    case KV_OPLOG_LOAD:
        n = kv_lmdb_head_get(e->value, e->vlen, &m);
        if (!n)
            return KV_LMDB_BAD_RECORD;
        return load_key(l, e->key, e->klen, e->value + n, e->vlen - n, &m, &torn);
    case KV_OPLOG_UNSET:
        /* Logged only for a key that was there: it is there again. */
        rc = kv_lmdb_get(write_txn(l), l->db.kv, e->key, e->klen, &v, &m);
        return rc != 0 ? rc : del_key(l, e->key, e->klen, v.mv_size, m.expires_ms, e->rev, &torn);
    case KV_OPLOG_UNSET_RANGE: {
        kv_range r = { e->key, e->klen, e->value, e->vlen };
        return del_range(l, &r, e->rev, NULL, NULL, &n);
    }
    case KV_OPLOG_BATCH_BEGIN:
    case KV_OPLOG_BATCH_END:
        return 0;       /* flat: see the top of this file */
    }
    return EINVAL;
}

/* Applies the oplog from byte POS on to the write transaction. Returns an
 * LMDB code. */
static int replay(lmdb_engine *l, size_t pos)
{
    kv_oplog_entry e;
    int rc = 0;

    while (rc == 0 && kv_oplog_next(&l->log, &pos, &e))
        rc = apply(l, &e);
    return rc;
}

/* Opens the turn's write transaction unless it is open. An LMDB code. */
static int begin_write(lmdb_engine *l)
{
    if (l->wtxn)
        return 0;
    int rc = mdb_txn_begin(l->env, NULL, 0, &l->wtxn);
    if (rc == 0) {
        index_changed(l);
        l->txn_start_pages = pages_in_use(l);
        l->txn_cow_pages = 0;
    }
    return rc;
}

/* Ends the open batch as if it had never begun: its child aborted (unless
 * already gone), its records out of the log, the counts back. */
static void undo_batch(lmdb_engine *l)
{
    changed(l);
    index_changed(l);
    if (l->batch)
        mdb_txn_abort(l->batch);
    l->batch = NULL;
    l->batch_open = 0;
    l->batch_lost = 0;
    kv_oplog_truncate(&l->log, l->batch_at.mark);
    l->revision = l->batch_at.revision;
    l->data_bytes = l->batch_at.data_bytes;
    l->txn_cow_pages = l->batch_at.cow_pages;
}

static void abort_write(lmdb_engine *l)
{
    changed(l);
    index_changed(l);
    if (l->batch_open)
        undo_batch(l);
    if (l->wtxn)
        mdb_txn_abort(l->wtxn);
    l->wtxn = NULL;
    l->data_bytes = l->data_bytes_committed;
    l->revision = l->revision_committed;
}

/* wtxn was lost: begins it again and replays the whole log. When that
 * fails too the turn's accepted writes are gone, and the next flush must
 * fail, so that none of them is answered OK. l->error keeps the reason
 * of the write that failed first. */
static void rebuild_turn(lmdb_engine *l)
{
    char why[sizeof l->error];

    abort_write(l);
    if (l->log.count == 0)
        return;
    int rc = begin_write(l);
    if (rc == 0)
        rc = replay(l, 0);
    if (rc != 0) {
        memcpy(why, l->error, sizeof why);
        abort_write(l);
        kv_oplog_clear(&l->log);
        l->broken = 1;
        set_error(l, "%s (and replaying the turn's writes failed: %s)", why, mdb_strerror(rc));
    }
}

/* The open batch's child was lost: begins it again and replays the
 * batch's records. When that fails, the batch is lost for good (its
 * writes fail, and batch_end cannot keep it); the turn is untouched. */
static void rebuild_batch(lmdb_engine *l)
{
    char why[sizeof l->error];
    lmdb_saved at = l->batch_at;

    changed(l);
    index_changed(l);
    if (l->batch)
        mdb_txn_abort(l->batch);
    l->batch = NULL;
    l->revision = at.revision;
    l->data_bytes = at.data_bytes;
    l->txn_cow_pages = at.cow_pages;
    int rc = mdb_txn_begin(l->env, l->wtxn, 0, &l->batch);
    if (rc == 0)
        rc = replay(l, at.mark.len);
    if (rc != 0) {
        memcpy(why, l->error, sizeof why);
        if (l->batch)
            mdb_txn_abort(l->batch);
        l->batch = NULL;
        l->batch_lost = 1;
        l->revision = at.revision;
        l->data_bytes = at.data_bytes;
        l->txn_cow_pages = at.cow_pages;
        set_error(l, "%s (and replaying the batch's writes failed: %s)", why, mdb_strerror(rc));
    }
}

/* A write whose oplog record is the last one failed with RC. If LMDB
 * marked the transaction failed, or the write had changed some of it
 * already (PARTIAL: a range delete), the transaction (the batch's, if one
 * is open, else the turn's) is rebuilt from the log without that write.
 * Returns the status for the failed write. */
static kv_status write_failed(lmdb_engine *l, int rc, int partial)
{
    kv_status st = fail(l, rc);

    kv_oplog_drop_last(&l->log);
    if (!partial && txn_usable(l, write_txn(l)))
        return st;
    if (l->batch_open)
        rebuild_batch(l);
    else
        rebuild_turn(l);
    return st;
}

/* Commits wtxn, the counters with it. Returns KV_OK or a status with
 * l->error set; on failure the writes of wtxn are lost. */
static kv_status commit(lmdb_engine *l)
{
    int rc = 0;

    if (l->batch_open)
        undo_batch(l);          /* never kept half done */
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
    if (l->data_bytes != l->data_bytes_committed)
        rc = kv_lmdb_meta_put(l->wtxn, l->db.meta, KV_LMDB_META_DATA_BYTES, l->data_bytes);
    if (rc == 0 && l->revision != l->revision_committed)
        rc = kv_lmdb_meta_put(l->wtxn, l->db.meta, KV_LMDB_META_REVISION, l->revision);
    if (rc != 0) {
        abort_write(l);
        return fail(l, rc);
    }
    rc = mdb_txn_commit(l->wtxn);
    l->wtxn = NULL;
    if (rc != 0) {
        changed(l);
        l->data_bytes = l->data_bytes_committed;
        l->revision = l->revision_committed;
        return fail(l, rc);
    }
    l->data_bytes_committed = l->data_bytes;
    l->revision_committed = l->revision;
    if (l->sync == KV_SYNC_ALWAYS) {
        l->synced_at = mono_now();
        l->synced_at_ms = wall_ms();
        l->base.syncs++;
    } else {
        l->unsynced = 1;
    }
    return KV_OK;
}

/* A write is about to join the write transaction: makes sure there is
 * one, committing early when the turn has grown too large (never inside a
 * batch, which the turn's commit must not split). Returns an LMDB code or
 * -1 with l->error set (a failed early commit, l->broken set too; a lost
 * batch). */
static int prepare_write(lmdb_engine *l, size_t klen, size_t vlen)
{
    if (l->batch_open) {
        if (!l->batch_lost)
            return 0;
        set_error(l, "an LMDB write of this batch failed and took its earlier writes with it");
        return -1;
    }
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

/* A read of KEY: a copy of its value from ALLOC, or with ALLOC NULL a
 * view of LMDB's bytes (see the top of this file); *META zero when absent. */
static kv_status get_op(lmdb_engine *l, const uint8_t *key, size_t klen,
                        ProtobufCAllocator *alloc, ProtobufCBinaryData *value, kv_meta *meta)
{
    MDB_txn *txn;
    MDB_val v;
    kv_status st;
    int rc;

    if (meta)
        *meta = (kv_meta){ 0 };
    if ((rc = begin_read(l, &txn)) != 0)
        return fail(l, rc);
    rc = kv_lmdb_get(txn, l->db.kv, key, klen, &v, meta);
    if (rc == MDB_NOTFOUND) {
        st = KV_NOT_FOUND;
    } else if (rc != 0) {
        st = fail(l, rc);
    } else if (alloc) {
        st = kv_engine_copy_out(alloc, v.mv_data, v.mv_size, value);
    } else {
        *value = (ProtobufCBinaryData){ v.mv_size, v.mv_size ? v.mv_data : NULL };
        st = KV_OK;
    }
    if (st != KV_OK && meta)
        *meta = (kv_meta){ 0 };
    end_read(l, txn);
    return st;
}

static kv_status lmdb_get(kv_engine *e, const uint8_t *key, size_t klen,
                          ProtobufCAllocator *alloc, ProtobufCBinaryData *value, kv_meta *meta)
{
    lmdb_engine *l = LMDB(e);

    op_begin(l);
    return op_end(l, "Get", get_op(l, key, klen, alloc, value, meta));
}

static kv_status lmdb_get_view(kv_engine *e, const uint8_t *key, size_t klen,
                               ProtobufCBinaryData *value, kv_meta *meta)
{
    lmdb_engine *l = LMDB(e);

    op_begin(l);
    return op_end(l, "Get", get_op(l, key, klen, NULL, value, meta));
}

static kv_status set_op(lmdb_engine *l, const uint8_t *key, size_t klen,
                        const uint8_t *value, size_t vlen, uint64_t rev, uint64_t expires,
                        kv_entry_fn seen, void *ctx)
{
    int torn, rc = prepare_write(l, klen, vlen);

    if (rc != 0)
        return rc < 0 ? KV_INTERNAL : fail(l, rc);
    /* Room for an index entry only when the Set gives a deadline: one it
     * removes copies a page or two, which the reserve covers. */
    if (!has_room(l, klen, vlen, expires != 0))
        return fail(l, MDB_MAP_FULL);
    if (kv_oplog_append(&l->log, KV_OPLOG_SET, key, klen, value, vlen, rev, expires) < 0)
        return fail(l, ENOMEM);
    rc = put_key(l, key, klen, value, vlen, rev, expires, seen, ctx, &torn);
    return rc == 0 ? KV_OK : write_failed(l, rc, torn);
}

static kv_status lmdb_set(kv_engine *e, const uint8_t *key, size_t klen,
                          const uint8_t *value, size_t vlen, uint64_t rev, uint64_t expires,
                          kv_entry_fn seen, void *ctx)
{
    lmdb_engine *l = LMDB(e);

    op_begin(l);
    return op_end(l, "Set", set_op(l, key, klen, value, vlen, rev, expires, seen, ctx));
}

/* Readies the turn's write transaction for a write of KEY and reads the
 * record it changes into *V and *M. KV_OK, KV_NOT_FOUND, or the failure. */
static kv_status read_for_write(lmdb_engine *l, const uint8_t *key, size_t klen, MDB_val *v,
                                kv_meta *m)
{
    int rc = prepare_write(l, klen, 0);

    if (rc != 0)
        return rc < 0 ? KV_INTERNAL : fail(l, rc);
    rc = kv_lmdb_get(write_txn(l), l->db.kv, key, klen, v, m);
    if (rc == MDB_NOTFOUND)
        return KV_NOT_FOUND;
    return rc == 0 ? KV_OK : fail(l, rc);
}

static kv_status touch_op(lmdb_engine *l, const uint8_t *key, size_t klen, uint64_t expires)
{
    MDB_val v;
    kv_meta m;
    int torn, rc;
    kv_status st = read_for_write(l, key, klen, &v, &m);

    if (st != KV_OK)
        return st;
    if (m.expires_ms == expires)
        return KV_OK;           /* nothing to change, nothing to replay */
    if (!has_room(l, klen, v.mv_size, 1))
        return fail(l, MDB_MAP_FULL);
    if (kv_oplog_append(&l->log, KV_OPLOG_TOUCH, key, klen, NULL, 0, 0, expires) < 0)
        return fail(l, ENOMEM);
    rc = touch_key(l, key, klen, expires, &torn);
    return rc == 0 ? KV_OK : write_failed(l, rc, torn);
}

/* A load is logged as the record it stores (oplog.h), made in l->record:
 * a replay needs the meta, which a Set's record does not carry. */
static kv_status load_op(lmdb_engine *l, const kv_entry *en)
{
    const kv_meta *m = &en->meta;
    size_t rlen = kv_lmdb_head_size(m) + en->vlen;
    int torn, rc;

    if (l->batch_open) {
        set_error(l, "load inside a batch");
        return KV_FAILED_PRECONDITION;
    }
    if (!kv_meta_valid(m)) {
        set_error(l, "load: revisions no write could have made");
        return KV_INVALID_ARGUMENT;
    }
    if ((rc = prepare_write(l, en->klen, rlen)) != 0)
        return rc < 0 ? KV_INTERNAL : fail(l, rc);
    if (!has_room(l, en->klen, en->vlen, m->expires_ms != 0))
        return fail(l, MDB_MAP_FULL);
    if (rlen > l->record_cap) {
        uint8_t *p = realloc(l->record, rlen);
        if (!p)
            return fail(l, ENOMEM);
        l->record = p;
        l->record_cap = rlen;
    }
    uint8_t *value = kv_lmdb_head_put(l->record, m);
    if (en->vlen)
        memcpy(value, en->value, en->vlen);
    if (kv_oplog_append(&l->log, KV_OPLOG_LOAD, en->key, en->klen, l->record, rlen,
                        m->mod_revision, 0) < 0)
        return fail(l, ENOMEM);
    rc = load_key(l, en->key, en->klen, en->value, en->vlen, m, &torn);
    return rc == 0 ? KV_OK : write_failed(l, rc, torn);
}

static kv_status lmdb_load(kv_engine *e, const kv_entry *entry)
{
    lmdb_engine *l = LMDB(e);

    op_begin(l);
    return op_end(l, "load", load_op(l, entry));
}

static kv_status lmdb_touch(kv_engine *e, const uint8_t *key, size_t klen, uint64_t expires)
{
    lmdb_engine *l = LMDB(e);

    op_begin(l);
    return op_end(l, "Touch", touch_op(l, key, klen, expires));
}

static kv_status unset_op(lmdb_engine *l, const uint8_t *key, size_t klen,
                          ProtobufCAllocator *alloc, ProtobufCBinaryData *old,
                          kv_meta *old_meta, uint64_t rev)
{
    MDB_val v;
    kv_meta m;
    int torn, rc;
    kv_status st = read_for_write(l, key, klen, &v, &m);

    if (st != KV_OK)
        return st;
    /* Copied before the delete, which may move the bytes it points to. */
    if (old && kv_engine_copy_out(alloc, v.mv_data, v.mv_size, old) != KV_OK)
        return KV_RESOURCE_EXHAUSTED;   /* nothing removed */
    if (kv_oplog_append(&l->log, KV_OPLOG_UNSET, key, klen, NULL, 0, rev, 0) < 0)
        return fail(l, ENOMEM);
    rc = del_key(l, key, klen, v.mv_size, m.expires_ms, rev, &torn);
    if (rc != 0)
        return write_failed(l, rc, torn);
    if (old_meta)
        *old_meta = m;
    return KV_OK;
}

static kv_status lmdb_unset(kv_engine *e, const uint8_t *key, size_t klen,
                            ProtobufCAllocator *alloc, ProtobufCBinaryData *old,
                            kv_meta *old_meta, uint64_t rev)
{
    lmdb_engine *l = LMDB(e);

    if (old_meta)
        *old_meta = (kv_meta){ 0 };
    op_begin(l);
    return op_end(l, "Clear", unset_op(l, key, klen, alloc, old, old_meta, rev));
}

static kv_status unset_range_op(lmdb_engine *l, const kv_range *r, uint64_t rev,
                                uint64_t *deleted, kv_entry_fn fn, void *ctx)
{
    int rc = prepare_write(l, r->start_len, r->end_len);

    if (rc != 0)
        return rc < 0 ? KV_INTERNAL : fail(l, rc);
    /* The range is logged, not the keys it held: replayed on the same
     * state, it deletes the same ones. */
    if (kv_oplog_append(&l->log, KV_OPLOG_UNSET_RANGE, r->start, r->start_len,
                        r->end, r->end_len, rev, 0) < 0)
        return fail(l, ENOMEM);
    rc = del_range(l, r, rev, fn, ctx, deleted);
    if (rc != 0) {
        *deleted = 0;
        return write_failed(l, rc, 1);
    }
    if (*deleted == 0)
        kv_oplog_drop_last(&l->log);    /* nothing changed, nothing to replay */
    return KV_OK;
}

static kv_status lmdb_unset_range(kv_engine *e, const kv_range *r, uint64_t rev,
                                  uint64_t *deleted, kv_entry_fn fn, void *ctx)
{
    lmdb_engine *l = LMDB(e);

    op_begin(l);
    *deleted = 0;
    return op_end(l, "ClearRange", unset_range_op(l, r, rev, deleted, fn, ctx));
}

static uint64_t lmdb_revision(kv_engine *e)
{
    return LMDB(e)->revision;
}

static kv_status lmdb_walk(kv_engine *e, const kv_range *r, int reverse, int with_values,
                           kv_entry_fn fn, void *ctx)
{
    lmdb_engine *l = LMDB(e);
    MDB_txn *txn;
    int rc;

    op_begin(l);
    if ((rc = begin_read(l, &txn)) == 0) {
        rc = kv_lmdb_walk(txn, l->db.kv, r, reverse, with_values, fn, ctx);
        end_read(l, txn);
    }
    return op_end(l, "Range", rc == 0 ? KV_OK : fail(l, rc));
}

static kv_status lmdb_count(kv_engine *e, const kv_range *r, uint64_t *n)
{
    lmdb_engine *l = LMDB(e);
    MDB_txn *txn;
    int rc;

    op_begin(l);
    *n = 0;
    if ((rc = begin_read(l, &txn)) == 0) {
        rc = kv_lmdb_count(txn, l->db.kv, r, &l->counted, n);
        end_read(l, txn);
    }
    return op_end(l, "Range", rc == 0 ? KV_OK : fail(l, rc));
}

static kv_status batch_begin_op(lmdb_engine *l)
{
    kv_oplog_mark mark;
    int rc;

    if (l->batch_open) {
        set_error(l, "a batch is already open (batches do not nest)");
        return KV_INTERNAL;
    }
    if ((rc = prepare_write(l, 0, 0)) != 0)
        return rc < 0 ? KV_INTERNAL : fail(l, rc);
    mark = kv_oplog_tell(&l->log);
    if (kv_oplog_append(&l->log, KV_OPLOG_BATCH_BEGIN, NULL, 0, NULL, 0, 0, 0) < 0)
        return fail(l, ENOMEM);
    if ((rc = mdb_txn_begin(l->env, l->wtxn, 0, &l->batch)) != 0) {
        l->batch = NULL;
        kv_oplog_truncate(&l->log, mark);
        return fail(l, rc);
    }
    l->batch_open = 1;
    l->batch_lost = 0;
    l->batch_at = (lmdb_saved){ mark, l->revision, l->data_bytes, l->txn_cow_pages };
    return KV_OK;
}

static kv_status lmdb_batch_begin(kv_engine *e)
{
    lmdb_engine *l = LMDB(e);

    op_begin(l);
    return op_end(l, "Txn", batch_begin_op(l));
}

static kv_status batch_end_op(lmdb_engine *l, int keep)
{
    int rc;

    if (!l->batch_open) {
        if (!keep)
            return KV_OK;
        set_error(l, "no batch is open");
        return KV_INTERNAL;
    }
    if (!keep) {
        undo_batch(l);
        return KV_OK;
    }
    if (l->batch_lost || !txn_usable(l, l->batch)) {
        undo_batch(l);
        set_error(l, "an LMDB write of this batch failed and took its earlier writes with it");
        return KV_INTERNAL;
    }
    if (kv_oplog_append(&l->log, KV_OPLOG_BATCH_END, NULL, 0, NULL, 0, 0, 0) < 0) {
        undo_batch(l);
        return fail(l, ENOMEM);
    }
    rc = mdb_txn_commit(l->batch);
    l->batch = NULL;            /* freed by LMDB, committed or not */
    if (rc != 0) {
        kv_status st = fail(l, rc);
        undo_batch(l);
        /* A failure late in merging the child marks the parent failed. */
        if (!txn_usable(l, l->wtxn))
            rebuild_turn(l);
        return st;
    }
    l->batch_open = 0;
    return KV_OK;
}

static kv_status lmdb_batch_end(kv_engine *e, int keep)
{
    lmdb_engine *l = LMDB(e);

    op_begin(l);
    return op_end(l, "Txn", batch_end_op(l, keep));
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
    l->base.syncs++;
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

/* The drop joins the turn, so the turn's accepted writes are committed
 * with it (they came first); it is not logged, being committed at once. */
static kv_status reset_op(lmdb_engine *l, uint64_t rev)
{
    int rc;
    kv_status st;

    if (l->batch_open) {
        set_error(l, "reset inside a batch");
        return KV_FAILED_PRECONDITION;
    }
    if ((rc = prepare_write(l, 0, 0)) != 0)
        return rc < 0 ? KV_INTERNAL : fail(l, rc);
    if ((rc = kv_lmdb_drop(l->wtxn, &l->db)) != 0) {
        st = fail(l, rc);
        rebuild_turn(l);        /* the turn as it was, without the drop */
        return st;
    }
    changed(l);
    index_changed(l);
    l->revision = rev;
    l->data_bytes = 0;
    size_t accepted = l->log.count;
    if ((st = commit(l)) != KV_OK) {
        l->broken = accepted != 0;  /* those writes were lost: no OK for them */
        return st;
    }
    if (l->sync == KV_SYNC_ALWAYS)
        return KV_OK;           /* the commit synced */
    return lmdb_sync(&l->base);
}

static kv_status lmdb_reset(kv_engine *e, uint64_t rev)
{
    lmdb_engine *l = LMDB(e);

    op_begin(l);
    return op_end(l, "reset", reset_op(l, rev));
}

/* A snapshot view: a read-only transaction of its own (MDB_NOTLS, see
 * lmdb_store.c), begun after the turn's commit. */
typedef struct lmdb_view {
    kv_engine_view base;
    MDB_txn *txn;
    MDB_dbi kv;
} lmdb_view;

static kv_status snapshot_begin_op(lmdb_engine *l, kv_engine_view **out)
{
    lmdb_view *v;
    kv_status st;
    int rc;

    if (l->batch_open) {
        set_error(l, "snapshot inside a batch");
        return KV_FAILED_PRECONDITION;
    }
    size_t accepted = l->log.count;
    if ((st = lmdb_flush(&l->base)) != KV_OK) {
        l->broken = accepted != 0;  /* as a failed flush: no OK for them */
        return st;
    }
    if (!(v = calloc(1, sizeof *v)))
        return fail(l, ENOMEM);
    if ((rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &v->txn)) != 0) {
        free(v);
        return fail(l, rc);
    }
    v->base = (kv_engine_view){ &l->base, l->revision_committed };
    v->kv = l->db.kv;
    *out = &v->base;
    return KV_OK;
}

static kv_status lmdb_snapshot_begin(kv_engine *e, kv_engine_view **out)
{
    lmdb_engine *l = LMDB(e);

    op_begin(l);
    return op_end(l, "snapshot", snapshot_begin_op(l, out));
}

/* Touches nothing of the engine's but the dbi, fixed since open: safe
 * beside the loop (engine.h). A failure is the caller's to report. */
static kv_status lmdb_snapshot_walk(kv_engine_view *view, const kv_range *r, kv_entry_fn fn,
                                    void *ctx)
{
    lmdb_view *v = (lmdb_view *)view;
    int rc = kv_lmdb_walk(v->txn, v->kv, r, 0, 1, fn, ctx);

    if (rc == 0)
        return KV_OK;
    return rc == KV_LMDB_BAD_RECORD ? KV_DATA_LOSS : KV_INTERNAL;
}

static void lmdb_snapshot_end(kv_engine_view *view)
{
    lmdb_view *v = (lmdb_view *)view;

    mdb_txn_abort(v->txn);
    free(v);
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
    MDB_txn *txn;
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
    if (begin_read(l, &txn) != 0)
        return;
    if (mdb_stat(txn, l->db.kv, &ms) == 0) {
        st->keys = ms.ms_entries;
        st->memory_bytes = (uint64_t)ms.ms_psize *
                           (ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages);
    }
    /* One index entry per key with a deadline (lmdb_store.h). */
    if (mdb_stat(txn, l->db.deadlines, &ms) == 0) {
        st->keys_with_ttl = ms.ms_entries;
        st->memory_bytes += (uint64_t)ms.ms_psize *
                            (ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages);
    }
    end_read(l, txn);
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
    free(l->record);
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

/* Opens the environment and the databases in l->path, and the read-only
 * transaction. Returns 0 or -1 with ERR. */
static int open_env(lmdb_engine *l, char *err, size_t errlen)
{
    kv_lmdb_store st;
    MDB_stat ms;
    int rc;

    if (kv_lmdb_env_open(l->path, l->map_bytes, l->sync != KV_SYNC_ALWAYS, &l->env,
                         err, errlen) < 0 ||
        kv_lmdb_store_open(l->env, l->path, &st, err, errlen) < 0)
        return -1;
    mdb_env_stat(l->env, &ms);
    l->psize = ms.ms_psize;
    l->map_pages = l->map_bytes / l->psize;
    l->db = st.db;
    l->data_bytes = l->data_bytes_committed = st.data_bytes;
    l->revision = l->revision_committed = st.revision;
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
    l->map_bytes = opts && opts->map_bytes ? opts->map_bytes : KV_LMDB_DEFAULT_MAP_BYTES;
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

static kv_status lmdb_walk_expiring(kv_engine *e, uint64_t now, int with_values,
                                    kv_entry_fn fn, void *ctx)
{
    lmdb_engine *l = LMDB(e);
    MDB_txn *txn;
    int rc;

    op_begin(l);
    if ((rc = begin_read(l, &txn)) == 0) {
        rc = kv_lmdb_walk_expiring(txn, &l->db, now, with_values, fn, ctx);
        end_read(l, txn);
    }
    return op_end(l, "expiry", rc == 0 ? KV_OK : fail(l, rc));
}

/* A failed read counts as no deadline, and is logged: the next call, a
 * loop turn later, tries again. It leaves last_error() alone, being asked
 * between other calls and their look at it. */
static uint64_t lmdb_next_deadline(kv_engine *e)
{
    lmdb_engine *l = LMDB(e);
    MDB_txn *txn;
    uint64_t deadline = 0;
    int rc;

    if ((rc = begin_read(l, &txn)) == 0) {
        rc = kv_lmdb_next_deadline(txn, &l->db, &deadline);
        end_read(l, txn);
    }
    if (rc != 0)
        kv_log(KV_LOG_ERROR, "engine lmdb: reading the next deadline failed: %s",
               rc == KV_LMDB_BAD_INDEX ? "the deadline index is damaged" : mdb_strerror(rc));
    return deadline;
}

const kv_engine_ops kv_engine_lmdb = {
    .name = "lmdb",
    .clock = CLOCK_REALTIME,
    .touch = lmdb_touch,
    .walk_expiring = lmdb_walk_expiring,
    .next_deadline = lmdb_next_deadline,
    .reset = lmdb_reset,
    .load = lmdb_load,
    .snapshot_begin = lmdb_snapshot_begin,
    .snapshot_walk = lmdb_snapshot_walk,
    .snapshot_end = lmdb_snapshot_end,
    .open = lmdb_open,
    .get = lmdb_get,
    .get_view = lmdb_get_view,
    .set = lmdb_set,
    .unset = lmdb_unset,
    .unset_range = lmdb_unset_range,
    .revision = lmdb_revision,
    .walk = lmdb_walk,
    .count = lmdb_count,
    .batch_begin = lmdb_batch_begin,
    .batch_end = lmdb_batch_end,
    .flush = lmdb_flush,
    .sync_delay = lmdb_sync_delay,
    .sync = lmdb_sync,
    .last_error = lmdb_last_error,
    .stats = lmdb_stats,
    .close = lmdb_close,
};
