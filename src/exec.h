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
#include "kvstore/v1/kv.pb-c.h"

/* What a request may ask for; see kvstored --help. */
typedef struct kv_limits {
    size_t max_key_bytes;
    size_t max_value_bytes;
    uint64_t max_memory_bytes;  /* engine memory for stored data; 0 = no limit */
} kv_limits;

typedef struct kv_exec {
    Kvstore__V1__KV_Service service;    /* must be first */
    kv_engine *engine;                  /* borrowed, outlives the executor */
    const kv_stats *stats;              /* borrowed: the server's counters */
    const kv_limits *limits;            /* borrowed: the server's limits */
} kv_exec;

/* Prepares X to run requests against ENGINE within LIMITS, reporting STATS
 * in the Stats rpc. Allocates nothing. */
void kv_exec_init(kv_exec *x, kv_engine *engine, const kv_stats *stats,
                  const kv_limits *limits);

/* X as the ProtobufCService that dispatch invokes. */
static inline ProtobufCService *kv_exec_service(kv_exec *x)
{
    return &x->service.base;
}

#endif
