/* snapshot.h - a cluster node's snapshot taken while its loop goes on
 * serving: the state's small part (clock, members, retry outcomes) is
 * encoded on the loop at the moment libraft asks; the keys, the large
 * part, are encoded off the loop from a frozen copy of that moment: a
 * child process forked for it (the memory engine: the kernel's
 * copy-on-write pages are the copy, as Redis's BGSAVE does), or an
 * engine's read view (lmdb: a read transaction) walked on libraft's worker
 * thread. Serializing 1,000,000 keys on the loop stalled it for 0.04 to
 * 0.56 s (BENCHMARKS.md); the loop now pays for the fork or the view.
 *
 * The three calls map onto libraft's asynchronous snapshot (struct
 * raft_fsm version 3): begin in snapshot(), finish in snapshot_async(),
 * end in snapshot_finalize(). The bytes are fsm.h's snapshot format. */
#ifndef KV_SNAPSHOT_H
#define KV_SNAPSHOT_H

#include <raft.h>
#include "fsm.h"

typedef struct kv_snap kv_snap;

/* On the loop: freezes F's state now. Returns the snapshot in progress, or
 * NULL when memory, fork or the engine failed (logged). */
kv_snap *kv_snap_begin(kv_fsm *f);

/* On one thread, any: encodes the keys. On success *BUFS (two buffers,
 * owned by S until kv_snap_end) hold the snapshot. Returns 0, or -1. */
int kv_snap_finish(kv_snap *s, struct raft_buffer **bufs, unsigned *n);

/* On the loop, after finish returned (or instead of it): frees S, its
 * buffers, its view or its child. */
void kv_snap_end(kv_snap *s);

#endif
