/* exec.h - the executor: the KV service's implementation, the one place
 * where request semantics live (what Ping, Get, Set and Clear mean, which
 * inputs are invalid, how engine results map to answers).
 *
 * One executor per client connection, as in the seed; it borrows the
 * server's engine. Its first member is the protoc-c service, so dispatch
 * invokes it as a ProtobufCService. */
#ifndef KV_EXEC_H
#define KV_EXEC_H

#include "engine.h"
#include "stats.h"
#include "auth.h"
#include "authguard.h"
#include "kvstore/v1/kv.pb-c.h"

/* What a request may ask for; see kvstored --help. */
typedef struct kv_limits {
    size_t max_key_bytes;
    size_t max_value_bytes;
    uint64_t max_memory_bytes;  /* engine memory for stored data; 0 = no limit */
} kv_limits;

/* What every executor of a server shares; owned by the server. */
typedef struct kv_exec_env {
    kv_engine *engine;
    const kv_stats *stats;      /* reported by the Stats rpc */
    kv_limits limits;
    const kv_auth *auth;        /* NULL: no authentication required */
    kv_auth_guard *guard;       /* failed Auth calls per address, server-wide */
} kv_exec_env;

typedef struct kv_exec {
    Kvstore__V1__KV_Service service;    /* must be first */
    const kv_exec_env *env;             /* borrowed, outlives the executor */
    int authenticated;                  /* Auth succeeded on this connection */
    int auth_failures;
    kv_peer peer;                       /* the client's address */
    int hang_up;                        /* read-only for conn: close the
                                           connection after this answer */
} kv_exec;

/* Prepares X to serve one connection from PEER (copied; may be NULL when
 * unknown) in ENV. Allocates nothing. */
void kv_exec_init(kv_exec *x, const kv_exec_env *env, const kv_peer *peer);

/* X as the ProtobufCService that dispatch invokes. */
static inline ProtobufCService *kv_exec_service(kv_exec *x)
{
    return &x->service.base;
}

#endif
