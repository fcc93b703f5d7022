/* stats.h - printing the answer of the stats command (the server's
 * counters) in kvctl's formats. */
#ifndef KVCTL_STATS_H
#define KVCTL_STATS_H

#include <stdio.h>
#include <json.h>
#include <kvstore/client.h>

/* Prints S on FP in the simple format: one "name: value" line per figure,
 * then one "calls PATH: CALLS (errors ERRORS)" line per method. With
 * ONE_LINE (batch mode), a single line of space-separated name=value pairs
 * in the same order, each method as PATH=CALLS/ERRORS. Text the server
 * sent (engine, version, method paths) is written as a C-style quoted
 * string when it holds anything but [A-Za-z0-9._+:/~-], so neither form
 * can be broken by it. */
void kvctl_stats_print(FILE *fp, const Kvstore__V1__StatsResponse *s,
                       int one_line);

/* Adds S to the JSON object OBJ: each figure under its name (numbers as
 * JSON numbers, engine and version as strings), in the same order, then
 * "methods": [{"method", "calls", "errors"}, ...]. */
void kvctl_stats_json(json_object *obj, const Kvstore__V1__StatsResponse *s);

#endif
