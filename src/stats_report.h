/* stats_report.h - the server's figures as one StatsResponse: what the
 * Stats rpc answers and what /metrics renders, built by one function so
 * that the two never disagree. */
#ifndef KV_STATS_REPORT_H
#define KV_STATS_REPORT_H

#include <protobuf-c/protobuf-c.h>
#include "service.h"
#include "kvstore/v1/kv.pb-c.h"

/* Fills OUT (initialised by the caller) with ENV's figures, its arrays and
 * strings from ALLOC (which frees them all at once: an arena). Returns 0,
 * -1 when ALLOC is out of memory (OUT is then partly filled). */
int kv_stats_report(const kv_service_env *env, ProtobufCAllocator *alloc,
                    Kvstore__V1__StatsResponse *out);

#endif
