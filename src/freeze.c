/* freeze.c - a store frozen by a read view or a forked child, walked
 * through a caller's encoder; see freeze.h. Owns the child and the view,
 * not what they write to. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "freeze.h"
#include "log.h"

#define CHUNK ((size_t)1 << 20)

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

typedef struct walker {
    const kv_freeze_out *out;
    kv_buf *b;
    int fd;
    int failed;
} walker;

static int walk_key(void *ctx, const kv_entry *e)
{
    walker *w = ctx;

    if (w->out->encode(w->out->arg, w->b, e) < 0)
        goto failed;
    if (w->fd >= 0 && kv_buf_len(w->b) >= CHUNK) {
        if (write_all(w->fd, kv_buf_head(w->b), kv_buf_len(w->b)) < 0)
            goto failed;
        kv_buf_consume(w->b, kv_buf_len(w->b));
    }
    return 0;
failed:
    w->failed = 1;
    return 1;
}

/* Walks the view V, or the engine E when V is NULL (a child's copy),
 * through OUT into B, flushing it to FD (>= 0). Returns 0 or -1. */
static int walk(kv_engine_view *v, kv_engine *e, const kv_freeze_out *out, kv_buf *b, int fd)
{
    walker w = { out, b, fd, 0 };
    kv_range all = { 0 };
    kv_status st = v ? kv_engine_snapshot_walk(v, &all, walk_key, &w)
                     : kv_engine_walk(e, &all, 0, 1, walk_key, &w);

    if (st != KV_OK || w.failed || (out->finish && out->finish(out->arg, b) < 0))
        return -1;
    if (fd >= 0 && write_all(fd, kv_buf_head(b), kv_buf_len(b)) < 0)
        return -1;
    if (fd >= 0)
        kv_buf_consume(b, kv_buf_len(b));
    return 0;
}

/* The child: walks the engine as it was at the fork, writes it to FD and
 * leaves without running the parent's exit code. */
static void __attribute__((noreturn)) child_run(kv_engine *e, const kv_freeze_out *out, int fd)
{
    kv_buf b = KV_BUF_INIT;

    /* Gone with its parent (kill -9 included): no orphan walking. */
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        _exit(1);
    /* Lets go of every descriptor but FD and OUT->keep (and stdio): a
     * client socket the server closes while the walk runs (ClientKill, an
     * idle or broken connection) must reach its peer as a FIN now, not
     * when the walk ends, and the listeners must not stay open in here.
     * The walk of the engine's memory needs none of them. */
    int keep[2] = { fd < out->keep ? fd : out->keep, fd < out->keep ? out->keep : fd };
    unsigned from = 3;
    for (int i = 0; i < 2; i++) {
        if (keep[i] < 0 || (unsigned)keep[i] < from)
            continue;
        if ((unsigned)keep[i] > from)
            (void)close_range(from, (unsigned)keep[i] - 1, 0);
        from = (unsigned)keep[i] + 1;
    }
    (void)close_range(from, ~0u, 0);
    _exit(walk(NULL, e, out, &b, fd) == 0 ? 0 : 1);
}

static int fork_child(kv_freeze *z, kv_engine *e, const kv_freeze_out *out)
{
    int fds[2] = { -1, out->fd };

    if (out->fd < 0 && pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        if (out->fd < 0) {
            close(fds[0]);
            close(fds[1]);
        }
        return -1;
    }
    if (pid == 0) {
        if (fds[0] >= 0)
            close(fds[0]);
        child_run(e, out, fds[1]);
    }
    if (out->fd < 0)
        close(fds[1]);
    z->child = pid;
    z->fd = fds[0];
    return 0;
}

int kv_freeze_begin(kv_freeze *z, kv_engine *e, const kv_freeze_out *out, const char *who)
{
    *z = (kv_freeze){ NULL, 0, -1 };
    kv_status st = kv_engine_snapshot_begin(e, &z->view);
    if (st == KV_OK)
        return 0;
    z->view = NULL;
    if (st != KV_UNIMPLEMENTED) {
        kv_log(KV_LOG_ERROR, "%s: the engine cannot open a read view", who);
        return -1;
    }
    if (fork_child(z, e, out) < 0) {
        kv_log(KV_LOG_ERROR, "%s: cannot fork: %s", who, strerror(errno));
        return -1;
    }
    return 0;
}

int kv_freeze_walk(kv_freeze *z, const kv_freeze_out *out, kv_buf *b)
{
    return z->view ? walk(z->view, NULL, out, b, out->fd) : -1;
}

void kv_freeze_end(kv_freeze *z, int kill_child)
{
    if (z->view)
        kv_engine_snapshot_end(z->view);
    if (z->fd >= 0)
        close(z->fd);
    if (z->child > 0) {
        if (kill_child)
            kill(z->child, SIGKILL);
        /* It has ended, or ends now that its pipe is closed; libev may
         * have reaped it already (ECHILD). */
        while (waitpid(z->child, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    *z = (kv_freeze){ NULL, 0, -1 };
}
