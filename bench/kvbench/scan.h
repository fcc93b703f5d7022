/* scan.h - kvbench's range test: every client reads the whole key range
 * key:000000000000 .. KEYSPACE-1, keys and values, a page of PAGE keys at a
 * time, the next page asked once the last one is in (each page depends on
 * the one before it), and checks that it saw every key with the value that
 * was stored.
 *
 * kvstore: Range{start, end = "key;", limit = PAGE}, from start = "key:"
 * and then start = last key + "\0", until more = false; the keys must come
 * in ascending byte order.
 * RESP (Redis): SCAN cursor COUNT PAGE from cursor 0 until it is 0 again,
 * and an MGET of the keys of each page, sent together with the next SCAN
 * (one round trip a page, as kvstore's). SCAN's order is the hash table's,
 * and it may return a key twice: keys are counted distinct.
 *
 * A page's time runs from the end of the page before it (the start, for
 * the first) to the end of its own: the whole cost of a page, Redis's two
 * commands included. */
#ifndef KB_SCAN_H
#define KB_SCAN_H

#include <stdint.h>
#include <sys/socket.h>
#include "hist.h"
#include "proto.h"

typedef struct kb_scan_plan {
    const kb_proto *proto;        /* kvstore or resp */
    const struct sockaddr *addr;  /* the server; borrowed */
    socklen_t addrlen;
    int clients;                  /* each reads the whole range, all at once */
    uint32_t page;                /* keys per page */
    uint64_t keyspace;            /* the keys expected: key:0 .. KEYSPACE-1 */
    size_t value_len;             /* their values: this many 'x' */
    int timeout_s;                /* give up after this long without an answer */
} kb_scan_plan;

typedef struct kb_scan_result {
    uint64_t pages;               /* pages read (Range calls; SCANs) */
    uint64_t calls;               /* requests sent (Range; SCAN and MGET) */
    uint64_t errors;              /* error answers; a scan stops at its first */
    uint64_t keys;                /* keys read with their values, repeats included */
    uint64_t distinct;            /* keys of the keyspace seen, summed over clients */
    uint64_t repeats;             /* keys a scan had seen already (SCAN may) */
    uint64_t foreign;             /* keys outside the keyspace (not an error) */
    uint64_t wrong;               /* a value not as stored, a key out of order, a
                                     key of the keyspace never seen, ... */
    char first_error[256];
    char first_wrong[256];
    char fatal[256];              /* why a scan stopped early, "" if none did */
    double seconds;               /* from the start to the last page's end */
    kb_hist latency;              /* nanoseconds per page */
} kb_scan_result;

/* Runs PLAN. Returns 0 when every client read its range to the end (RES may
 * still count wrong answers), or -1 with the reason in RES->fatal (or an
 * error answer in RES->first_error). RES is filled in either case. */
int kb_scan_run(const kb_scan_plan *plan, kb_scan_result *res);

#endif
