/* backup.c - Snapshot and SnapshotRead: copies of the store taken off the
 * loop into temporary files, owned by connections; see backup.h. The
 * freezing and walking are freeze.c's, the bytes backup_file.c's. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <ev.h>
#include "backup.h"
#include "backup_file.h"
#include "freeze.h"
#include "log.h"
#include "session.h"

struct kv_backup_hub {
    struct ev_loop *loop;
    kv_engine *engine;
    const char *dir;
    size_t max_open;
    size_t open;                /* copies alive, in progress or complete */
    uint64_t next_id;
};

/* One copy. While it is taken (call != NULL) the producer (the child or
 * the thread) owns the encoder's state below; the loop owns the rest, and
 * all of it once the producer is done (done_w saw the end of its pipe). */
struct kv_backup {
    kv_backup *next, **pprev;   /* the connection's copies */
    kv_backup_hub *hub;
    uint64_t id;
    uint64_t revision;
    uint64_t keys;              /* once complete */
    uint64_t size;              /* bytes of the file, once complete */
    int fd;                     /* the unlinked file */
    int done_rd, done_wr;       /* the producer's pipe: its end says done */
    ev_io done_w;
    kv_freeze frozen;
    kv_freeze_out out;          /* encode/finish into fd, arg this copy */
    pthread_t thread;           /* a view's walker */
    int has_thread;
    int walk_failed;            /* the thread's walk failed */
    atomic_int stop;            /* the connection is gone: stop walking */
    double frozen_ms;           /* what freezing cost the loop */
    double started;             /* when it began (ev_time) */
    kv_call *call;              /* the kept Snapshot call, until complete */
    Kvstore__V1__SnapshotResponse_Closure closure;
    /* The encoder's (the producer's) */
    XXH3_state_t *sum;
    uint64_t count;
    uint64_t now;               /* the freeze's moment on the engine's clock */
    int64_t to_unix;            /* add to the engine's deadlines: unix ms */
    kv_buf buf;
};

kv_backup_hub *kv_backup_hub_new(struct ev_loop *loop, kv_engine *engine, const char *dir,
                                 size_t max_open)
{
    kv_backup_hub *h = calloc(1, sizeof *h);

    if (!h)
        return NULL;
    *h = (kv_backup_hub){ loop, engine, dir, max_open, 0, 1 };
    return h;
}

void kv_backup_hub_free(kv_backup_hub *h)
{
    free(h);
}

static uint64_t unix_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the producer's side: encoding keys ------------------------------ */

static int encode(void *arg, kv_buf *b, const kv_entry *e)
{
    kv_backup *k = arg;
    size_t before = kv_buf_len(b);

    if (atomic_load_explicit(&k->stop, memory_order_relaxed))
        return -1;
    /* Gone for every reader at the freeze: not in the copy either. */
    if (e->meta.expires_ms && e->meta.expires_ms <= k->now)
        return 0;
    kv_bfile_record r = {
        e->key, e->klen, e->value, e->vlen, e->meta.create_revision, e->meta.mod_revision,
        e->meta.version, e->meta.expires_ms ? (uint64_t)((int64_t)e->meta.expires_ms + k->to_unix) : 0
    };
    if (kv_bfile_record_put(b, &r) < 0)
        return -1;
    XXH3_64bits_update(k->sum, kv_buf_head(b) + before, kv_buf_len(b) - before);
    k->count++;
    return 0;
}

static int encode_end(void *arg, kv_buf *b)
{
    kv_backup *k = arg;

    if (kv_buf_reserve(b, KV_BFILE_TRAILER_BYTES) < 0)
        return -1;
    kv_bfile_trailer_put(kv_buf_tail(b), k->count, k->sum);
    kv_buf_commit(b, KV_BFILE_TRAILER_BYTES);
    return 0;
}

/* The thread walking a view; closing its end of the pipe says done. */
static void *walk_thread(void *arg)
{
    kv_backup *k = arg;

    k->walk_failed = kv_freeze_walk(&k->frozen, &k->out, &k->buf) < 0;
    close(k->done_wr);
    return NULL;
}

/* ---- the loop's side --------------------------------------------------- */

/* An unlinked file for a copy: in DIR when it can, else in RAM. */
static int temp_file(const char *dir)
{
    int fd = dir ? open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600) : -1;

    return fd >= 0 ? fd : memfd_create("kvstore-snapshot", MFD_CLOEXEC);
}

/* Stops K's producer if it still runs (STOP) or reaps it, and frees what
 * the producer used. */
static void producer_end(kv_backup *k, int stop)
{
    if (k->done_rd >= 0) {
        ev_io_stop(k->hub->loop, &k->done_w);
        close(k->done_rd);
        k->done_rd = -1;
    }
    if (k->has_thread) {
        atomic_store(&k->stop, 1);
        pthread_join(k->thread, NULL);
        k->has_thread = 0;
    } else if (k->done_wr >= 0) {
        close(k->done_wr);      /* no producer ever took it */
    }
    k->done_wr = -1;
    kv_freeze_end(&k->frozen, stop);
    kv_buf_free(&k->buf);
    if (k->sum)
        XXH3_freeState(k->sum);
    k->sum = NULL;
}

/* Unlinks K from its connection's copies and frees it, answering its
 * Snapshot call (into nothing, when the connection is gone) with ST and
 * WHY if it waits. */
static void backup_free(kv_backup *k, kv_status st, const char *why)
{
    *k->pprev = k->next;
    if (k->next)
        k->next->pprev = k->pprev;
    producer_end(k, 1);
    if (k->call) {
        kv_call_fail(k->call, st, why);
        k->closure(NULL, k->call);
    }
    if (k->fd >= 0)
        close(k->fd);
    k->hub->open--;
    free(k);
}

/* The producer is done: its file is whole when it ends with the trailer
 * (a child's exit status may have been reaped by libev already). A child
 * killed just after a chunk whose last bytes look like a trailer would
 * pass here; the reader's checksum refuses such a file. */
static int file_complete(kv_backup *k)
{
    uint8_t t[KV_BFILE_TRAILER_BYTES];
    struct stat st;

    if (k->walk_failed || fstat(k->fd, &st) < 0
        || st.st_size < KV_BFILE_HEADER_BYTES + KV_BFILE_TRAILER_BYTES
        || pread(k->fd, t, sizeof t, st.st_size - (off_t)sizeof t) != (ssize_t)sizeof t
        || memcmp(t, "KVBKEND1", 8) != 0)
        return 0;
    k->size = (uint64_t)st.st_size;
    k->keys = 0;
    for (int i = 7; i >= 0; i--)
        k->keys = k->keys << 8 | t[8 + i];
    return 1;
}

static void done_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    kv_backup *k = w->data;
    uint8_t byte;
    ssize_t n;

    (void)loop;
    (void)revents;
    while ((n = read(k->done_rd, &byte, 1)) < 0 && errno == EINTR)
        ;
    if (n < 0 && errno == EAGAIN)
        return;
    producer_end(k, 0);
    if (!file_complete(k)) {
        kv_log(KV_LOG_ERROR, "snapshot %" PRIu64 ": the copy failed (its walk or a write)",
               k->id);
        backup_free(k, KV_INTERNAL, "the snapshot failed on the server (see its log)");
        return;
    }
    Kvstore__V1__SnapshotResponse out = KVSTORE__V1__SNAPSHOT_RESPONSE__INIT;
    kv_call *call = k->call;
    k->call = NULL;
    out.snapshot_id = k->id;
    out.revision = k->revision;
    out.keys = k->keys;
    kv_log(KV_LOG_INFO, "snapshot %" PRIu64 ": revision %" PRIu64 ", %" PRIu64 " keys, %"
           PRIu64 " bytes in %.3f s (the loop paid %.1f ms to freeze the store)", k->id,
           k->revision, k->keys, k->size, ev_time() - k->started, k->frozen_ms);
    k->closure(&out, call);
}

/* Starts K's producer: writes the header, freezes the engine (a child
 * walks at once), and for a view starts the thread. Returns 0, or -1 with
 * *WHY. */
static int producer_start(kv_backup *k, const char **why)
{
    kv_engine *e = k->hub->engine;
    uint8_t head[KV_BFILE_HEADER_BYTES];
    int pipefd[2];

    k->now = kv_engine_now_ms(e);
    k->to_unix = e->clock == CLOCK_REALTIME ? 0 : (int64_t)unix_ms() - (int64_t)k->now;
    k->revision = kv_engine_revision(e);
    kv_bfile_header_put(head, k->revision, unix_ms());
    *why = "server out of memory";
    if (!(k->sum = XXH3_createState()))
        return -1;
    XXH3_64bits_reset(k->sum);
    XXH3_64bits_update(k->sum, head, sizeof head);
    *why = "cannot make the snapshot's temporary file (see the server's log)";
    if ((k->fd = temp_file(k->hub->dir)) < 0 || write(k->fd, head, sizeof head) != sizeof head
        || pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0) {
        kv_log(KV_LOG_ERROR, "snapshot: temporary file: %s", strerror(errno));
        return -1;
    }
    k->done_rd = pipefd[0];
    k->done_wr = pipefd[1];
    k->out = (kv_freeze_out){ encode, encode_end, k, k->fd, k->done_wr };
    *why = "cannot freeze the store (see the server's log)";
    if (kv_freeze_begin(&k->frozen, e, &k->out, "snapshot") < 0)
        return -1;
    /* A view's revision is revision() read above: its begin committed
     * the turn's writes, which revision() counted already. */
    if (k->frozen.view) {
        if (pthread_create(&k->thread, NULL, walk_thread, k) != 0) {
            kv_log(KV_LOG_ERROR, "snapshot: cannot start a thread");
            return -1;
        }
        k->has_thread = 1;
    } else {
        close(k->done_wr);      /* the child's copy is the one that counts */
        k->done_wr = -1;
    }
    ev_io_init(&k->done_w, done_cb, k->done_rd, EV_READ);
    k->done_w.data = k;
    ev_io_start(k->hub->loop, &k->done_w);
    return 0;
}

void kv_backup_snapshot(kv_backup_hub *h, kv_backup **mine,
                        Kvstore__V1__SnapshotResponse_Closure closure, void *closure_data)
{
    char *msg;
    const char *why;
    kv_call *call;
    kv_backup *k;

    if (h->open >= h->max_open) {
        kv_call *c = closure_data;
        msg = c->alloc->alloc(c->alloc->allocator_data, 200);
        if (msg)
            snprintf(msg, 200, "%zu snapshots are open on this server, the most it keeps at "
                     "once: read one to its end or close its connection first", h->open);
        kv_call_fail(closure_data, KV_RESOURCE_EXHAUSTED, msg ? msg : "too many snapshots open");
        closure(NULL, closure_data);
        return;
    }
    if (!(k = calloc(1, sizeof *k)) || !(call = kv_call_defer(closure_data))) {
        free(k);
        kv_call_fail(closure_data, KV_RESOURCE_EXHAUSTED, "server out of memory");
        closure(NULL, closure_data);
        return;
    }
    *k = (kv_backup){ .hub = h, .id = h->next_id++, .fd = -1, .done_rd = -1, .done_wr = -1,
                      .frozen = { NULL, 0, -1 }, .call = call, .closure = closure };
    h->open++;
    k->next = *mine;
    k->pprev = mine;
    if (*mine)
        (*mine)->pprev = &k->next;
    *mine = k;
    k->started = ev_time();
    if (producer_start(k, &why) < 0)
        backup_free(k, KV_INTERNAL, why);
    else
        k->frozen_ms = (ev_time() - k->started) * 1000;
}

void kv_backup_read(kv_backup_hub *h, kv_backup **mine, const Kvstore__V1__SnapshotReadRequest *in,
                    size_t max_frame, Kvstore__V1__SnapshotReadResponse_Closure closure,
                    void *closure_data)
{
    Kvstore__V1__SnapshotReadResponse out = KVSTORE__V1__SNAPSHOT_READ_RESPONSE__INIT;
    kv_call *call = closure_data;
    kv_backup *k = *mine;
    const char *why = NULL;
    kv_status st = KV_OK;

    (void)h;
    while (k && k->id != in->snapshot_id)
        k = k->next;
    uint64_t want = in->max_bytes ? in->max_bytes : KV_BACKUP_READ_BYTES;
    if (want > KV_BACKUP_READ_MAX)
        want = KV_BACKUP_READ_MAX;
    /* Room for the answer's own fields: 64 bytes (max_frame - 64 would
     * wrap below 64 and leave WANT unbounded: --max-frame-bytes 48 sent
     * the whole file in one answer). */
    if (max_frame && want > (max_frame > 128 ? max_frame - 64 : 64))
        want = max_frame > 128 ? max_frame - 64 : 64;
    if (!k) {
        st = KV_NOT_FOUND;
        why = "no such snapshot on this connection (a snapshot belongs to the connection "
              "that took it, and is gone once read to its end)";
    } else if (k->call) {
        st = KV_FAILED_PRECONDITION;
        why = "the snapshot is still being taken: read it once Snapshot has answered";
    } else if (in->offset > k->size) {
        st = KV_OUT_OF_RANGE;
        why = "offset past the end of the snapshot";
    } else {
        uint64_t n = k->size - in->offset < want ? k->size - in->offset : want;
        out.data.len = (size_t)n;
        out.data.data = n ? call->alloc->alloc(call->alloc->allocator_data, (size_t)n) : NULL;
        if (n && !out.data.data) {
            st = KV_RESOURCE_EXHAUSTED;
            why = "server out of memory";
        } else if (n && pread(k->fd, out.data.data, (size_t)n, (off_t)in->offset) != (ssize_t)n) {
            kv_log(KV_LOG_ERROR, "snapshot %" PRIu64 ": reading its file: %s", k->id,
                   strerror(errno));
            st = KV_INTERNAL;
            why = "cannot read the snapshot's file (see the server's log)";
        }
        out.done = in->offset + n == k->size;
    }
    if (st != KV_OK) {
        kv_call_fail(call, st, why);
        closure(NULL, call);
        return;
    }
    closure(&out, call);        /* packed now: freeing the copy cannot reach it */
    if (out.done)
        backup_free(k, KV_OK, NULL);
}

void kv_backup_close(kv_backup_hub *h, kv_backup **mine)
{
    (void)h;
    while (*mine)
        backup_free(*mine, KV_CANCELLED, "the connection closed");
}
