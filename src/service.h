/* service.h - the KV service: the rpc handlers, each running its
 * operation (the data model's in ops.c and txn.c; Ping, Stats and Auth
 * here) and answering it.
 *
 * One kv_service per client connection, because a connection has state of
 * its own that every call reads: whether it authenticated, how often it
 * failed to, its peer address. What all connections share (the engine,
 * limits, counters) is in kv_service_env, borrowed. Its first member is the
 * protoc-c service, so the session invokes it as a ProtobufCService. */
#ifndef KV_SERVICE_H
#define KV_SERVICE_H

#include "engine.h"
#include "stats.h"
#include "auth.h"
#include "authguard.h"
#include "kvstore/v1/kv.pb-c.h"
#include "watch.h"

/* What a request may ask for; see kvstored --help. */
typedef struct kv_limits {
    size_t max_key_bytes;
    size_t max_value_bytes;
    uint64_t max_memory_bytes;  /* engine memory for stored data; 0 = no limit */
    size_t max_frame_bytes;     /* the largest answer frame (Range pages are
                                   cut to fit): the server's frame limit;
                                   0 = no limit */
} kv_limits;

/* v3: where a cluster member sends the calls that are the cluster's
 * business (cluster.h, kv_cluster_route): ROUTE returns 1 when it took the
 * call, 0 when the service runs it here. STATS fills Stats' cluster
 * fields. The service knows no more of the cluster than this. */
typedef struct kv_service_router {
    int (*route)(void *arg, ProtobufCService *svc, unsigned method, const ProtobufCMessage *in,
                 ProtobufCClosure closure, void *data);
    void (*stats)(void *arg, Kvstore__V1__StatsResponse *out);
    void *arg;
} kv_service_router;

struct kv_service;

/* v3.1: the server's connections, for ClientList and ClientKill; the
 * service knows no more of the server than this. SELF is the asking
 * connection's service. */
typedef struct kv_service_clients {
    /* Fills OUT with a ClientInfo per open connection, SELF's marked
     * current, its arrays and strings from ALLOC. Returns 0, -1 when ALLOC
     * is out of memory. */
    int (*list)(void *arg, const struct kv_service *self, ProtobufCAllocator *alloc,
                Kvstore__V1__ClientListResponse *out);
    /* Closes the connections from PEER (HOST:PORT as ClientList shows it),
     * or when PEER is NULL the one numbered ID, at once, each counted as
     * killed; SELF among them is not closed but *SELF_HIT set (its caller
     * hangs up after answering). Returns how many matched, SELF included. */
    uint64_t (*kill)(void *arg, const struct kv_service *self, const char *peer, uint64_t id,
                     int *self_hit);
    void *arg;
} kv_service_clients;

/* What every connection's service shares; owned by the server. */
typedef struct kv_service_env {
    kv_engine *engine;
    const kv_stats *stats;      /* reported by the Stats rpc */
    kv_limits limits;
    const kv_auth *auth;        /* NULL: no authentication required */
    kv_auth_guard *guard;       /* failed Auth calls per address, server-wide */
    struct kv_watch_hub *watch; /* watches and the event history; NULL: none */
    uint64_t *expired_keys;     /* keys removed by expiry; NULL: not counted */
    const kv_service_router *router;
                                /* v3: a cluster member's; NULL: a single node */
    const Kvstore__V1__KV_Service *handlers;
                                /* NULL: kvstore's own. Otherwise the method
                                   handlers to run behind the Auth gate (tests
                                   that complete calls later use this) */
    /* v3.1: what Stats reports of the server itself; may be empty */
    const char *const *listen_addresses;    /* HOST:PORT of each listener */
    size_t n_listen;
    const char *metrics_address;            /* --metrics-listen, or NULL */
    const char *const *settings;            /* name, value, name, value, ... */
    size_t n_settings;                      /* pairs */
    struct kv_slowlog *slowlog;             /* NULL: none kept */
    const kv_service_clients *clients;      /* NULL: ClientList and
                                               ClientKill unimplemented */
    struct kv_backup_hub *backups;          /* Snapshot's copies; NULL: none
                                               taken (UNIMPLEMENTED) */
} kv_service_env;

typedef struct kv_service {
    Kvstore__V1__KV_Service service;    /* must be first */
    const kv_service_env *env;          /* borrowed, outlives the service */
    int authenticated;                  /* Auth succeeded on this connection */
    int auth_failures;
    kv_peer peer;                       /* the client's address */
    const ProtobufCMessageDescriptor *const *inputs;
                                        /* read-only: per method, the message
                                           its request is unpacked as when
                                           not the proto's (see svc_ping);
                                           NULL: the proto's for all */
    const char *hang_up;                /* read-only for the session: stop
                                           reading after this answer, for
                                           this reason (static); NULL: go on */
    kv_close_reason hang_up_reason;     /* and the close it counts as */
    kv_watch_conn watches;              /* this connection's watches */
    struct kv_backup *backups;          /* this connection's snapshots */
} kv_service;

/* Prepares X to serve one connection from PEER (copied; may be NULL when
 * unknown) in ENV. Allocates nothing. */
void kv_service_init(kv_service *x, const kv_service_env *env, const kv_peer *peer);

/* The connection is gone: frees what X keeps for it (its snapshots). */
void kv_service_close(kv_service *x);

/* X as the ProtobufCService that dispatch invokes. */
static inline ProtobufCService *kv_service_base(kv_service *x)
{
    return &x->service.base;
}

#endif /* KV_SERVICE_H */
