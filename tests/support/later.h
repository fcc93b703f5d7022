/* later.h - a KV service whose handlers answer later, for the tests and
 * the fuzz harness of the session's answer order (session.h).
 *
 *   Ping   answers at once: PingResponse "now"
 *   Get    kept; one step answers GetResponse "got:" + key
 *   Set    kept; the first step sends a stream frame SetResponse
 *          "\0stream" (LATER_STREAM), the second answers SetResponse "final"
 *   Clear  kept; one step fails it with NOT_FOUND "later"
 *   Stats  answers at once: an empty StatsResponse
 *   Auth   answers at once: AuthResponse
 *
 * The kept calls wait in one process-wide list, oldest first, until the
 * test steps them in whatever order it likes, across sessions. */
#ifndef KV_TEST_LATER_H
#define KV_TEST_LATER_H

#include <stddef.h>
#include "kvstore/v1/kv.pb-c.h"

/* The stream frame's SetResponse key, which no other answer starts with. */
#define LATER_STREAM "\0stream"
#define LATER_STREAM_LEN 7

/* The handler table to put in kv_service_env.handlers. */
extern const Kvstore__V1__KV_Service later_handlers;

/* Calls kept and not yet answered (answering into a closed session
 * included). */
size_t later_waiting(void);

/* How many kept calls' connections closed before they were answered. */
size_t later_orphaned(void);

/* Advances kept call I (0 = oldest): a stream frame, or its answer, which
 * removes it from the list. I must be < later_waiting(). */
void later_step(size_t i);

/* Steps every kept call until none is left. */
void later_finish_all(void);

#endif
