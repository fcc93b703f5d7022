/* watchout.h - printing the events of a watch as they come: a line of
 * words or a JSON object each. */
#ifndef KVCTL_WATCHOUT_H
#define KVCTL_WATCHOUT_H

#include "out.h"

/* Prints the events of RESP, a frame of a watch, to o->fp and flushes it:
 * in the simple format (and -w table) one line of words each, as batch
 * lines read them:
 *   PUT "KEY" "VALUE" rev N [ttl DUR] [prev "OLD"]
 *   DELETE "KEY" rev N [expired] [prev "OLD"]
 * with -w json one object each: {"type", "kv", "expired", "prev_kv" (when
 * the event has one)}, "kv" and "prev_kv" as a range lists its keys
 * (listing.h). Returns 0, or -1 when writing failed. */
int kvctl_watchout_events(const kvctl_out *o, const Kvstore__V1__WatchResponse *resp);

#endif
