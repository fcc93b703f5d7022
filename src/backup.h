/* backup.h - the Snapshot and SnapshotRead rpcs: a consistent copy of the
 * whole store at one revision, in the backup file format (backup_file.h),
 * taken while the loop goes on serving (freeze.h: a forked child for the
 * memory engine, an LMDB read view walked on a thread of its own), into an
 * unlinked temporary file that SnapshotRead serves by offset.
 *
 * Snapshot answers once the file is complete (its call is kept until
 * then); the copy belongs to the connection that asked, and is freed when
 * it is read to its end (done), or when that connection closes (a copy in
 * progress is stopped: the child killed, the thread told to stop and
 * joined). At most max_open copies exist at once, server-wide; more are
 * refused RESOURCE_EXHAUSTED. */
#ifndef KV_BACKUP_H
#define KV_BACKUP_H

#include <stddef.h>
#include <stdint.h>
#include "engine.h"
#include "kvstore/v1/kv.pb-c.h"

struct ev_loop;

/* Copies open at once, server-wide, and SnapshotRead's default chunk. */
#define KV_BACKUP_MAX_OPEN 2
#define KV_BACKUP_READ_BYTES ((uint32_t)1 << 20)
/* The most one SnapshotRead answers, whatever it asks (also within the
 * server's frame limit). */
#define KV_BACKUP_READ_MAX ((uint32_t)16 << 20)

typedef struct kv_backup_hub kv_backup_hub;
typedef struct kv_backup kv_backup;

/* A server's copies: on LOOP, of ENGINE, their files in DIR (an unlinked
 * O_TMPFILE there; NULL, or where that fails: a memfd, in RAM). All
 * borrowed; they outlive the hub. Returns NULL when memory is out. */
kv_backup_hub *kv_backup_hub_new(struct ev_loop *loop, kv_engine *engine, const char *dir,
                                 size_t max_open);

/* Frees H; every connection's copies must have been closed first. */
void kv_backup_hub_free(kv_backup_hub *h);

/* The Snapshot rpc on a connection whose copies are *MINE: starts a copy
 * and answers CLOSURE_DATA (a kv_call) once it is complete, or fails it.
 * Answers through CLOSURE exactly once, as every handler does. */
void kv_backup_snapshot(kv_backup_hub *h, kv_backup **mine,
                        Kvstore__V1__SnapshotResponse_Closure closure, void *closure_data);

/* The SnapshotRead rpc: the next bytes of copy IN->snapshot_id of *MINE,
 * at most KV_BACKUP_READ_MAX and MAX_FRAME - 64 (MAX_FRAME 0: no frame
 * limit); frees the copy when they end it. Answers through CLOSURE. */
void kv_backup_read(kv_backup_hub *h, kv_backup **mine, const Kvstore__V1__SnapshotReadRequest *in,
                    size_t max_frame, Kvstore__V1__SnapshotReadResponse_Closure closure,
                    void *closure_data);

/* The connection is gone: frees every copy of *MINE, stopping those in
 * progress (their kept Snapshot calls answered into nothing). */
void kv_backup_close(kv_backup_hub *h, kv_backup **mine);

#endif
