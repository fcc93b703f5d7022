/* snapshot.c - snapshots taken off the loop; see snapshot.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "log.h"
#include "snapshot.h"

/* The child ends its bytes with this, so that the reader knows they are
 * whole without the child's exit status (libev's default loop reaps every
 * child on SIGCHLD, ours too). */
static const uint8_t TRAILER[8] = { 'K', 'V', 'S', 'N', 'A', 'P', 'O', 'K' };
#define CHILD_CHUNK ((size_t)1 << 20)

struct kv_snap {
    kv_buf head;                /* clock, members, outcomes: on the loop */
    kv_buf keys;                /* the keys: off the loop */
    size_t keys_size;           /* what they should take, about */
    kv_engine_view *view;       /* lmdb: the read view, or NULL */
    pid_t child;                /* memory: the child writing the keys, or 0 */
    int fd;                     /* memory: their pipe's read end, or -1 */
    struct raft_buffer bufs[2];
};

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

typedef struct child_writer {
    kv_buf b;
    int fd;
    int failed;
} child_writer;

static int child_key(void *ctx, const kv_entry *e)
{
    child_writer *w = ctx;

    if (kv_fsm_encode_key(&w->b, e) < 0)
        goto failed;
    if (kv_buf_len(&w->b) >= CHILD_CHUNK) {
        if (write_all(w->fd, kv_buf_head(&w->b), kv_buf_len(&w->b)) < 0)
            goto failed;
        kv_buf_consume(&w->b, kv_buf_len(&w->b));
    }
    return 0;
failed:
    w->failed = 1;
    return 1;
}

/* The child: walks the engine as it was at the fork, writes the keys and
 * the trailer to FD, and leaves without running the parent's exit code. */
static void __attribute__((noreturn)) child_run(kv_engine *e, int fd)
{
    child_writer w = { KV_BUF_INIT, fd, 0 };
    kv_range all = { 0 };

    /* Gone with its parent (kill -9 included): no orphan snapshotting. */
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        _exit(1);
    if (kv_engine_walk(e, &all, 0, 1, child_key, &w) != KV_OK || w.failed
        || kv_buf_append(&w.b, TRAILER, sizeof TRAILER) < 0
        || write_all(fd, kv_buf_head(&w.b), kv_buf_len(&w.b)) < 0)
        _exit(1);
    _exit(0);
}

static int fork_child(kv_snap *s, kv_engine *e)
{
    int fds[2];

    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        child_run(e, fds[1]);
    }
    close(fds[1]);
    s->child = pid;
    s->fd = fds[0];
    return 0;
}

kv_snap *kv_snap_begin(kv_fsm *f)
{
    kv_snap *s = calloc(1, sizeof *s);
    kv_engine *e = f->env->engine;

    if (!s)
        return NULL;
    s->fd = -1;
    s->keys_size = kv_fsm_keys_size(f);
    if (kv_fsm_encode_head(f, &s->head) < 0)
        goto failed;
    kv_status st = kv_engine_snapshot_begin(e, &s->view);
    if (st == KV_UNIMPLEMENTED) {
        s->view = NULL;
        if (fork_child(s, e) < 0) {
            kv_log(KV_LOG_ERROR, "cluster: snapshot: cannot fork: %s", strerror(errno));
            goto failed;
        }
    } else if (st != KV_OK) {
        kv_log(KV_LOG_ERROR, "cluster: snapshot: the engine cannot open a read view");
        s->view = NULL;
        goto failed;
    }
    return s;
failed:
    kv_snap_end(s);
    return NULL;
}

static int view_key(void *ctx, const kv_entry *e)
{
    return kv_fsm_encode_key(ctx, e) < 0;
}

/* Reads the child's bytes to the end; 0 when they end with the trailer. */
static int read_child(kv_snap *s)
{
    for (;;) {
        if (kv_buf_reserve(&s->keys, CHILD_CHUNK) < 0)
            return -1;
        ssize_t k = read(s->fd, kv_buf_tail(&s->keys), kv_buf_room(&s->keys));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        kv_buf_commit(&s->keys, (size_t)k);
    }
    size_t n = kv_buf_len(&s->keys);
    if (n < sizeof TRAILER || memcmp(kv_buf_head(&s->keys) + n - sizeof TRAILER, TRAILER,
                                     sizeof TRAILER) != 0)
        return -1;
    s->keys.end -= sizeof TRAILER;
    return 0;
}

int kv_snap_finish(kv_snap *s, struct raft_buffer **bufs, unsigned *n)
{
    kv_range all = { 0 };
    int rc;

    if (kv_buf_reserve(&s->keys, s->keys_size) < 0)
        return -1;
    if (s->view)
        rc = kv_engine_snapshot_walk(s->view, &all, view_key, &s->keys) == KV_OK ? 0 : -1;
    else
        rc = read_child(s);
    if (rc < 0)
        return -1;
    s->bufs[0] = (struct raft_buffer){ kv_buf_head(&s->head), kv_buf_len(&s->head) };
    s->bufs[1] = (struct raft_buffer){ kv_buf_head(&s->keys), kv_buf_len(&s->keys) };
    *bufs = s->bufs;
    *n = 2;
    return 0;
}

void kv_snap_end(kv_snap *s)
{
    if (!s)
        return;
    if (s->view)
        kv_engine_snapshot_end(s->view);
    if (s->fd >= 0)
        close(s->fd);
    if (s->child > 0) {
        /* It has ended, or ends now that its pipe is closed; libev may
         * have reaped it already (ECHILD). */
        while (waitpid(s->child, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    kv_buf_free(&s->head);
    kv_buf_free(&s->keys);
    free(s);
}
