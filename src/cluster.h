/* cluster.h - kvstored as a member of a Raft cluster (libraft, on a libuv
 * loop embedded in ours: uvembed.h). Owns the raft instance and what
 * waits on it: this loop turn's writes, batched into one log entry; the
 * linearizable reads, answered after one barrier per turn; the calls
 * waiting for their entry to be applied; membership changes and leader
 * transfer. What an entry does is fsm.h's, its bytes clog.h's.
 *
 * Routing (kv_cluster_route): writes and linearizable reads go through the
 * leader's log; a follower answers them UNAVAILABLE with the leader's
 * client address (RpcResponse.leader). Serializable reads, Watch, Ping,
 * Stats and Auth are served by any node from its applied state. */
#ifndef KV_CLUSTER_H
#define KV_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include <ev.h>
#include <raft.h>
#include <raft/uv.h>
#include "fsm.h"
#include "tls.h"
#include "service.h"
#include "uvembed.h"

/* What main() hands the cluster; see kvstored --help. */
typedef struct kv_cluster_config {
    uint64_t node_id;               /* --node-id */
    const char *dir;                /* --cluster-dir */
    const char *raft_listen;        /* --raft-listen */
    const char *initial;            /* --initial-cluster, or NULL */
    const char *join;               /* --join, or NULL */
    unsigned snapshot_threshold;    /* --snapshot-threshold: entries between snapshots */
    unsigned snapshot_trailing;     /* entries kept behind a snapshot */
    unsigned election_ms;           /* --election-timeout-ms */
    unsigned heartbeat_ms;          /* election_ms / 10 */
    size_t dedup_window;            /* --dedup-window */
    kv_tls_config tls;              /* the server's: with tls.cert, the calls a
                                       member makes to another's client port
                                       (cluster_join.c) speak TLS too */
    const char *token_file;         /* --auth-token-file: those calls Auth
                                       with its token first; or NULL */
} kv_cluster_config;

#define KV_CLUSTER_DEFAULT_SNAPSHOT_THRESHOLD 16384u
#define KV_CLUSTER_DEFAULT_SNAPSHOT_TRAILING 4096u
#define KV_CLUSTER_DEFAULT_ELECTION_MS 800u

struct kv_batch;
struct kv_read_batch;

typedef struct kv_cluster {
    kv_cluster_config cfg;
    char client_address[KV_FSM_ADDR_MAX];   /* read-only: ours, as bound */
    char raft_address[KV_FSM_ADDR_MAX];     /* read-only */
    struct ev_loop *loop;
    const kv_service_env *env;
    kv_fsm fsm;                     /* read-only outside cluster.c */
    kv_uvembed embed;               /* private */
    struct raft raft;               /* private */
    struct raft_io io;              /* private */
    struct raft_uv_transport transport;     /* private */
    struct raft_fsm hooks;          /* private: fsm's, for libraft */
    uint64_t incarnation;           /* private: this process, in entries */
    uint64_t next_batch;            /* private */
    struct kv_batch *open;          /* private: this turn's writes */
    struct kv_batch *first, *last;  /* private: proposed, not yet done */
    struct kv_read_batch *reads;    /* private: this turn's linearizable reads */
    raft_term hello_term;           /* private: the term we said hello in */
    int expiring;                   /* private: an expiry entry in flight */
    int changing;                   /* private: a membership change in flight */
    int transferring;               /* private: a leader transfer in flight */
    struct raft_transfer transfer;  /* private: its request: ours, never freed,
                                       since libraft 0.15 may call its callback
                                       once more when it closes */
    void (*transfer_then)(struct kv_cluster *c, void *arg);
    void *transfer_arg;             /* private: what to do when it ends */
    void (*leave_done)(void *arg);  /* private: kv_cluster_leave's */
    void *leave_arg;
    int was_member;                 /* private: seen ourselves in the configuration */
    double leaderless_since;        /* private: when we last lost sight of a leader */
    struct kv_snap *snap;           /* private: the snapshot being taken */
    int async_running;              /* private: async work on libuv's pool */
    double snap_started, snap_loop_seconds;     /* private: for its log line */
    uint64_t elections_won;         /* read-only */
    const char *fatal;              /* read-only: why this node must stop (static) */
    void (*stop)(void *arg, const char *why);
                                    /* told once when the node must stop: removed
                                       from the cluster, or its state broken */
    void *stop_arg;
    int closed;                     /* private */
} kv_cluster;

/* Parses --initial-cluster's "ID=HOST:PORT,..." into a raft configuration.
 * Returns 0, or -1 with a one-line reason in ERR. */
int kv_cluster_parse_initial(const char *text, struct raft_configuration *conf, char *err,
                             size_t errlen);

/* Starts the node: opens (or creates) CFG->dir, bootstraps from --initial-
 * cluster when it is empty, starts raft on LOOP and, with --join, asks the
 * cluster to add it. CLIENT_ADDRESS is our bound client address. ENV (the
 * server's, outlives C) is where entries are applied. Returns 0, or -1
 * with a one-line reason in ERR. */
int kv_cluster_start(kv_cluster *c, const kv_cluster_config *cfg, struct ev_loop *loop,
                     const kv_service_env *env, const char *client_address, char *err,
                     size_t errlen);

/* Takes the call of METHOD (INPUT, CLOSURE, DATA as the service's invoke
 * got them) when it is the cluster's business: writes, linearizable reads,
 * the cluster rpcs. Returns 1 when it took it (answered now or later), 0
 * when the service should run it locally. */
int kv_cluster_route(kv_cluster *c, ProtobufCService *svc, unsigned method,
                     const ProtobufCMessage *input, ProtobufCClosure closure, void *data);

/* The end of a server loop turn: this turn's writes proposed as one entry,
 * its reads behind one barrier, then libuv run once. */
void kv_cluster_turn(kv_cluster *c);

/* The active expiry (the leader's only): proposes up to KV_EXPIRE_BATCH
 * expired keys as one entry. Returns the seconds until the server should
 * ask again, or a negative number when it should wait for the engine's
 * next deadline. */
double kv_cluster_expire(kv_cluster *c);

/* Fills the cluster fields of a Stats answer. */
void kv_cluster_stats(kv_cluster *c, Kvstore__V1__StatsResponse *out);

/* A graceful stop: a leader hands its leadership to another voter first
 * (waiting up to about SECONDS). Returns 1 when a transfer started (DONE
 * is called with ARG when it ends), 0 when there is nothing to wait for. */
int kv_cluster_leave(kv_cluster *c, double seconds, void (*done)(void *arg), void *arg);

/* Closes raft and its loop; answers whatever still waits UNAVAILABLE. */
void kv_cluster_close(kv_cluster *c);

#endif
