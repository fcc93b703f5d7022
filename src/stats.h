/* stats.h - the server's counters, read by the Stats rpc. One instance per
 * server, written only from its event loop (no locking). The session
 * counts answers and buffer bytes; the server counts connections. */
#ifndef KV_STATS_H
#define KV_STATS_H

#include <stddef.h>
#include <stdint.h>
#include "latency.h"

/* Enough for every method of the service; the session checks the bound. */
#define KV_STATS_MAX_METHODS 32
/* gRPC's status codes, OK (0) to UNAUTHENTICATED (16). */
#define KV_STATS_CODES 17

/* Why connections were closed (kv_stats.closed); kv_close_reason_name()
 * names them for Stats and /metrics. */
typedef enum kv_close_reason {
    KV_CLOSE_CLIENT,        /* the client closed or reset it */
    KV_CLOSE_IDLE,          /* --idle-timeout */
    KV_CLOSE_OUTPUT,        /* answers unread over --max-output-bytes */
    KV_CLOSE_PROTOCOL,      /* a malformed frame or a limit of the session */
    KV_CLOSE_AUTH,          /* too many failed Auth attempts */
    KV_CLOSE_KILLED,        /* ClientKill */
    KV_CLOSE_ERROR,         /* a socket error, or out of memory */
    KV_CLOSE_SHUTDOWN,      /* the server stopping */
    KV_CLOSE_REASONS
} kv_close_reason;

typedef struct kv_stats {
    double started;                         /* ev_time() at start */
    uint64_t conns_current, conns_total;
    uint64_t conns_rejected;                /* refused for --max-clients */
    size_t input_bytes;                     /* input buffers of all connections,
                                               as charged to --max-input-bytes */
    size_t output_bytes;                    /* output buffers of all connections */
    uint64_t requests;                      /* all answers, malformed included */
    uint64_t refused;                       /* answers to frames of no method
                                               (a bad envelope, an unknown
                                               method; all errors) */
    uint64_t codes[KV_STATS_MAX_METHODS][KV_STATS_CODES];
                                            /* answers per method index and
                                               status: the method's calls and
                                               errors are their sums (one
                                               increment per answer) */
    kv_latency latency[KV_STATS_MAX_METHODS];
                                            /* request read to answer written */
    uint64_t net_in, net_out;               /* bytes read from / written to
                                               client sockets */
    uint64_t closed[KV_CLOSE_REASONS];      /* connections closed, by why */
    uint64_t syncs;                         /* engine syncs (durable commits) */
    double sync_seconds;                    /* the time they took */
    uint64_t ops_last_second;               /* requests answered in the last
                                               whole second */
} kv_stats;

/* Answers of METHOD (an index below KV_STATS_MAX_METHODS), and those
 * with a status other than OK. */
uint64_t kv_stats_calls(const kv_stats *st, unsigned method);
uint64_t kv_stats_errors(const kv_stats *st, unsigned method);

/* The name of close reason R ("idle", "client", ...). */
const char *kv_close_reason_name(kv_close_reason r);

#endif
