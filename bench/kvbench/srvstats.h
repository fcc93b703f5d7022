/* srvstats.h - the server's own count of calls, from the Stats rpc, so
 * kvbench can check that the server saw exactly the requests it sent. */
#ifndef KB_SRVSTATS_H
#define KB_SRVSTATS_H

#include <stddef.h>
#include <stdint.h>
#include "wire.h"

typedef struct kb_srvstats {
    uint64_t calls[KB_METHOD_COUNT];   /* answered calls per method */
    uint64_t errors[KB_METHOD_COUNT];  /* of which not OK */
    int has[KB_METHOD_COUNT];          /* the server counts this method (a
                                          server before v2 has no Range) */
    uint64_t keys;                     /* entries the engine holds */
} kb_srvstats;

/* Calls Stats on ENDPOINT ("HOST:PORT") over a connection of its own.
 * Returns 0, or -1 with a one-line reason in ERR (the server may not have
 * Stats, or may report none of the methods kvbench uses). */
int kb_srvstats_fetch(const char *endpoint, int timeout_ms, kb_srvstats *out,
                      char *err, size_t errlen);

/* Compares the growth from BEFORE to AFTER with the calls kvbench made:
 * SENT[m] requests of method m, ERRORS[m] of them answered with an error.
 * A method the server does not count must not have been called. Returns 0
 * when they agree, else -1 with what differs in MSG. */
int kb_srvstats_compare(const kb_srvstats *before, const kb_srvstats *after,
                        const uint64_t sent[KB_METHOD_COUNT],
                        const uint64_t errors[KB_METHOD_COUNT], char *msg, size_t len);

#endif
