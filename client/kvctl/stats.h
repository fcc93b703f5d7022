/* stats.h - printing the answer of the stats command (the server's
 * counters) in kvctl's formats. */
#ifndef KVCTL_STATS_H
#define KVCTL_STATS_H

#include <stdio.h>
#include <json.h>
#include <kvstore/client.h>

/* Prints S on FP in the simple format: one "name: value" line per figure
 * (the counts, then the seconds with six decimals, then a
 * "closed_REASON: N" line per reason of close, the cluster's
 * figures on a cluster node, engine, engine_sync, version and a
 * "listen_address: HOST:PORT" line per listener), then one "calls PATH:
 * CALLS (errors ERRORS) p50 X p99 Y p999 Z" line per method, the latency
 * quantiles written for people ("850us", "12.5ms") and left out for a
 * method never called. With ONE_LINE (batch mode), a single line of
 * space-separated name=value pairs in the same order, each method as
 * PATH=CALLS/ERRORS/P50/P99/P999, the quantiles in microseconds. Text the
 * server sent (engine, version, addresses, method paths) is written as a
 * C-style quoted string when it holds anything but [A-Za-z0-9._+:/~-], so
 * neither form can be broken by it. */
void kvctl_stats_print(FILE *fp, const Kvstore__V1__StatsResponse *s,
                       int one_line);

/* Adds S to the JSON object OBJ: each figure under its name (numbers as
 * JSON numbers, seconds as doubles, engine and version as strings), in the
 * same order, with "connections_closed": {REASON: N, ...} after the
 * seconds and "listen_addresses": [...] after version, then "methods":
 * [{"method", "calls", "errors", "latency_p50_us", "latency_p99_us",
 * "latency_p999_us"}, ...]. */
void kvctl_stats_json(json_object *obj, const Kvstore__V1__StatsResponse *s);

#endif
