/* freeze.h - the whole store frozen at one moment and walked off the
 * loop while the loop goes on writing: the shared machinery of a cluster
 * snapshot (snapshot.c) and a backup (backup.c). Two ways to freeze:
 *
 *  - an engine with read views (lmdb) opens one on the loop; the view is
 *    walked later on another thread (kv_freeze_walk);
 *  - an engine without (memory) is copied by fork(): the kernel's
 *    copy-on-write pages are the copy, as Redis's BGSAVE does, and the
 *    child walks it at once and exits.
 *
 * Either way each key goes through the caller's encoder into a buffer,
 * written out to a descriptor in 1 MiB chunks (or kept whole in the
 * buffer, for a view walked into memory). On the loop the freeze costs
 * the fork, which copies the page tables (2 ms at 100 MB resident, 10 ms
 * at 1 GB: 1,000,000 keys of small and of 1 KB values), then a page copied
 * at each page's first write while the child runs; or the view's commit
 * (0.1 ms). */
#ifndef KV_FREEZE_H
#define KV_FREEZE_H

#include <sys/types.h>
#include "buf.h"
#include "engine.h"

/* Where and how a frozen store's keys go. Borrowed for the walk; in a
 * child, ARG is the child's copy. */
typedef struct kv_freeze_out {
    /* Appends entry E's bytes to B. Returns 0, or -1 to stop the walk
     * (a failure). E is valid during the call only. */
    int (*encode)(void *arg, kv_buf *b, const kv_entry *e);
    /* Optional: appends what ends the output, after the last key. 0 or -1. */
    int (*finish)(void *arg, kv_buf *b);
    void *arg;
    int fd;     /* the bytes are written here as they come; -1: a view's
                   walk keeps them all in its buffer, a child writes them
                   to a pipe (kv_freeze.fd) */
    int keep;   /* a child keeps this descriptor open too (its end of a
                   pipe whose closing says it is done); 0: none. A child
                   closes every other one past stdio and FD */
} kv_freeze_out;

typedef struct kv_freeze {
    kv_engine_view *view;   /* read-only: the view, or NULL */
    pid_t child;            /* read-only: the child walking, or 0 */
    int fd;                 /* read-only: a child's pipe when OUT->fd was
                               -1 (read it to its end), else -1 */
} kv_freeze;

/* On the loop: freezes E as it is now. With a view: opens it (walk it with
 * kv_freeze_walk). Without: forks a child that walks its copy through OUT
 * and exits 0 once every byte went out, else 1. Returns 0, or -1 (the
 * reason logged, prefixed with WHO) with Z empty. */
int kv_freeze_begin(kv_freeze *z, kv_engine *e, const kv_freeze_out *out, const char *who);

/* On one thread, any: walks Z's view through OUT, its bytes in B (written
 * out and consumed as they come when OUT->fd >= 0). Returns 0, or -1 when
 * the engine, the encoder or a write failed. For a view only. */
int kv_freeze_walk(kv_freeze *z, const kv_freeze_out *out, kv_buf *b);

/* On the loop: ends the view, or reaps the child (killed first when KILL:
 * the output is no longer wanted). Closes Z's pipe. */
void kv_freeze_end(kv_freeze *z, int kill);

#endif
