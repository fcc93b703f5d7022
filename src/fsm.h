/* fsm.h - the cluster's replicated state machine: what every node does with
 * each committed log entry (clog.h), in log order, and the snapshot of the
 * result. The state is the engine's keys (through the same operations as a
 * single node's, ops.c and txn.c, so revisions are assigned at apply and
 * are the same on every node), the outcomes remembered for retries
 * (dedup.h) and the members' client addresses. Knows no raft: cluster.c
 * hands it entries and snapshots, and the calls of this node waiting for
 * an entry, which it answers with the entry's outcomes.
 *
 * Determinism: an entry carries the leader's clock; every decision that
 * reads a clock at apply (a TTL's deadline, whether a key has expired)
 * reads that one, never the node's own. Nodes must run with the same
 * request limits (--max-key-bytes, --max-value-bytes, --max-frame-bytes)
 * and --dedup-window: an operation a node refuses at apply is refused on
 * every node only if their limits agree. --max-memory-bytes is not checked
 * at apply (engines hold different memory for the same keys): the leader
 * checks it before it proposes. A write that fails at apply for this
 * node's own reasons (the engine's memory, a full LMDB map) stops the
 * node: its state would no longer be the others'. */
#ifndef KV_FSM_H
#define KV_FSM_H

#include <stddef.h>
#include <stdint.h>
#include "arena.h"
#include "buf.h"
#include "clog.h"
#include "dedup.h"
#include "service.h"
#include "session.h"

#define KV_FSM_MAX_MEMBERS 16
#define KV_FSM_ADDR_MAX 256

/* A call of this node waiting for a command of an entry, and its closure. */
typedef struct kv_pending {
    kv_call *call;
    ProtobufCClosure closure;
} kv_pending;

typedef struct kv_fsm_member {
    uint64_t id;
    char client[KV_FSM_ADDR_MAX];   /* its client address, "" until told */
} kv_fsm_member;

typedef struct kv_fsm {
    const kv_service_env *env;  /* borrowed: the engine, watches, limits */
    kv_limits apply_limits;     /* private: env's, without --max-memory-bytes:
                                   what memory an engine holds differs from
                                   node to node, so the leader checks it
                                   before proposing (cluster.c) */
    kv_dedup dedup;             /* outcomes by (client_id, seq) */
    kv_arena arena;             /* private: one entry's memory */
    uint64_t time_ms;           /* read-only: the clock of the entries applied,
                                   never going back */
    kv_fsm_member members[KV_FSM_MAX_MEMBERS];  /* read-only */
    size_t n_members;
    uint64_t dedup_hits;        /* read-only: retries answered from dedup */
    const char *failed;         /* read-only: why the engine failed at apply
                                   (static): the node must stop, its state
                                   may now differ from the others' */
} kv_fsm;

/* Prepares F over ENV (borrowed, outlives F), remembering at most
 * DEDUP_ENTRIES outcomes. Returns 0, or -1 when memory is out. */
int kv_fsm_init(kv_fsm *f, const kv_service_env *env, size_t dedup_entries);
void kv_fsm_free(kv_fsm *f);

/* The clog code of the service's method METHOD (its index in the
 * descriptor) when it is a write, else 0. */
int kv_fsm_write_code(unsigned method);
/* Whether METHOD is a read that a cluster serves linearizably (Get, Range). */
int kv_fsm_is_read(unsigned method);

/* Applies the entry ENTRY[0..LEN): its writes run on the engine, their
 * outcomes are remembered for retries, and WAITING[0..N) (the calls of this
 * node for the entry's commands, in order; NULL when none wait here) are
 * answered. Returns 0, or -1 when the entry is malformed or the engine
 * failed (f->failed says why; the node must stop). */
int kv_fsm_apply(kv_fsm *f, const uint8_t *entry, size_t len, kv_pending *waiting, size_t n);

/* Runs the read METHOD (Get or Range) with the request PAYLOAD on this
 * node's state now, and answers CALL through CLOSURE. */
void kv_fsm_read(kv_fsm *f, unsigned method, const uint8_t *payload, size_t len, kv_call *call,
                 ProtobufCClosure closure);

/* Snapshots: appends the whole state to B (0, or -1 when memory is out or
 * the engine failed); replaces the state with the one in P[0..LEN) (0, or
 * -1 with f->failed when the bytes are not a snapshot or the engine
 * failed: the node must stop). */
int kv_fsm_encode(kv_fsm *f, kv_buf *b);

/* A snapshot in parts, for one taken while the loop goes on (snapshot.c):
 * everything but the keys (on the loop), then each key (anywhere; B is
 * the caller's), and about how many bytes the keys will take. The first
 * two return 0, or -1 when memory is out. */
int kv_fsm_encode_head(kv_fsm *f, kv_buf *b);
int kv_fsm_encode_key(kv_buf *b, const kv_entry *e);
size_t kv_fsm_keys_size(kv_fsm *f);
int kv_fsm_restore(kv_fsm *f, const uint8_t *p, size_t len);

/* The client address member ID told, or NULL when unknown. */
const char *kv_fsm_client_address(const kv_fsm *f, uint64_t id);

#endif
