/* txnout.h - printing the answer of a txn in each of kvctl's formats. */
#ifndef KVCTL_TXNOUT_H
#define KVCTL_TXNOUT_H

#include <stdio.h>
#include <json.h>
#include "out.h"

/* The simple format of R, the result of the txn CMD: SUCCESS or FAILURE,
 * then each operation's result in words (get and clear: the value as a
 * double-quoted string, or - when the key was absent; set: OK; a range:
 * [ "k1" "v1" ... ]; a clear range: how many keys went), a line each, or
 * all on the one line in lines mode (o->lines). */
void kvctl_txnout_simple(const kvctl_out *o, const kvctl_cmd *cmd, const kvctl_result *r);

/* Adds R to the JSON object OBJ: "succeeded", "results": [{"op", ...}, ...]
 * with each operation's key or range and answer, and "revision". */
void kvctl_txnout_json(json_object *obj, const kvctl_cmd *cmd, const kvctl_result *r);

/* Prints R as SUCCESS or FAILURE, a table of the results (OP KEY VALUE
 * CREATE MOD VERSION REVISION) and a last line "revision R". */
void kvctl_txnout_table(FILE *fp, const kvctl_cmd *cmd, const kvctl_result *r);

#endif
