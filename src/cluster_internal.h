/* cluster_internal.h - what the cluster's files share (cluster.c,
 * cluster_members.c, cluster_start.c): not for the rest of the server,
 * which sees cluster.h only. */
#ifndef KV_CLUSTER_INTERNAL_H
#define KV_CLUSTER_INTERNAL_H

#include <stdint.h>
#include <time.h>
#include "cluster.h"

#define CONTAINER(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

static inline uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Whether this node leads and may serve (its state is not broken). */
int kv_cluster_leads(kv_cluster *c);

/* The leader's client address as far as this node knows, or NULL; its id
 * in *ID_OUT when not NULL (0: none known). */
const char *kv_cluster_leader(kv_cluster *c, raft_id *id_out);

/* Answers W UNAVAILABLE because this node cannot serve it (WHAT says why),
 * with the leader's address when known. */
void kv_cluster_unavailable(kv_cluster *c, kv_pending *w, const char *what);

/* Answers W with ST and WHY (static or W's memory). */
void kv_cluster_fail(kv_pending *w, kv_status st, const char *why);

/* Proposes a MEMBER entry: node ID's client address ADDR; W (may be NULL)
 * is answered once it is applied. Returns 0, or -1 when it could not be
 * proposed (W answered). */
int kv_cluster_propose_member(kv_cluster *c, uint64_t id, const char *addr, kv_pending *w);

/* Starts a leader transfer to voter ID (0: the most up to date); THEN(C,
 * ARG) runs once when it ends, however it ends. One at a time. Returns 0,
 * or libraft's error (THEN will not run). */
int kv_cluster_transfer(kv_cluster *c, uint64_t id, void (*then)(kv_cluster *c, void *arg),
                        void *arg);

/* Sets C's raft_fsm hooks (cluster.c's), for raft_init. */
void kv_cluster_hooks_init(kv_cluster *c);

/* The cluster rpcs (cluster_members.c): each answers W (or CALL through
 * CLOSURE) now or once its change is done. */
void kv_cluster_status(kv_cluster *c, ProtobufCClosure closure, kv_call *call);
void kv_cluster_member_add(kv_cluster *c, const Kvstore__V1__MemberAddRequest *in, kv_pending *w);
void kv_cluster_member_remove(kv_cluster *c, const Kvstore__V1__MemberRemoveRequest *in,
                              kv_pending *w);
void kv_cluster_leader_transfer(kv_cluster *c, const Kvstore__V1__LeaderTransferRequest *in,
                                kv_pending *w);

#endif
