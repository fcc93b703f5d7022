/* watch.h - kvctl's watch command: a stream of events until interrupted,
 * not a request and its answer, so it runs here and not in exec.c. */
#ifndef KVCTL_WATCH_H
#define KVCTL_WATCH_H

#include <kvstore/client.h>
#include "exec.h"
#include "out.h"

/* Runs the watch CMD on C: opens it, prints its events as they come
 * (watchout.h) until SIGINT or the end of the watch, and fills R as
 * kvctl_exec_run() would, for kvctl_out_result() to print what is left
 * and pick the exit code:
 *  - SIGINT (or standard output failing): status KV_OK;
 *  - the Watch call failed: its status and message (transport set when
 *    the connection failed);
 *  - the server ended the watch: KV_CANCELLED, canceled set, the message
 *    its reason (with the compact_revision), revision the compact_revision;
 *  - the connection was lost: its status, transport set.
 * SIGINT is caught only while this runs (the previous action is put back).
 * With KEEP, for a connection that goes on being used (the shell), an
 * interrupted watch is canceled before returning; without, it is left to
 * the connection's end (kv_client_free()), which ends it on the server.
 * R is the caller's to clear with kvctl_exec_result_clear(). */
void kvctl_watch_run(kv_client *c, const kvctl_cmd *cmd, const kvctl_out *o, int keep,
                     kvctl_result *r);

#endif
