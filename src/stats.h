/* stats.h - the server's counters, read by the Stats rpc. One instance per
 * server, written only from its event loop (no locking). The session
 * counts answers and buffer bytes; the server counts connections. */
#ifndef KV_STATS_H
#define KV_STATS_H

#include <stddef.h>
#include <stdint.h>

/* Enough for every method of the service; the session checks the bound. */
#define KV_STATS_MAX_METHODS 32

typedef struct kv_stats {
    double started;                         /* ev_time() at start */
    uint64_t conns_current, conns_total;
    uint64_t conns_rejected;                /* refused for --max-clients */
    uint64_t conns_closed_output;           /* closed for unread answers over
                                               --max-output-bytes */
    size_t input_bytes;                     /* input buffers of all connections,
                                               as charged to --max-input-bytes */
    size_t output_bytes;                    /* output buffers of all connections */
    uint64_t requests, errors;              /* all answers, malformed included */
    uint64_t calls[KV_STATS_MAX_METHODS];   /* answers per method index */
    uint64_t call_errors[KV_STATS_MAX_METHODS];
} kv_stats;

#endif
