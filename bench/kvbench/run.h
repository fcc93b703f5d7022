/* run.h - one closed-loop test: CLIENTS connections spread over THREADS
 * epoll loops, each sending batches of PIPELINE requests and sending the
 * next batch once every answer of the last one is in, until REQUESTS
 * requests have been answered (redis-benchmark's model). */
#ifndef KB_RUN_H
#define KB_RUN_H

#include <stdint.h>
#include <sys/socket.h>
#include "hist.h"
#include "proto.h"
#include "tls.h"
#include "wire.h"

/* Where the keys of a test come from. */
typedef enum kb_keys {
    KB_KEYS_FIXED,      /* every request uses key 0 */
    KB_KEYS_RANDOM,     /* uniform over [0, keyspace) */
    KB_KEYS_SEQUENTIAL, /* request i uses key i (mod keyspace when set) */
} kb_keys;

typedef struct kb_plan {
    const kb_proto *proto;        /* what the server speaks */
    kb_method method;
    const struct sockaddr *addr;  /* the server; borrowed */
    socklen_t addrlen;
    SSL_CTX *tls;                 /* NULL: plaintext; borrowed */
    const char *tls_host;         /* what the server's certificate must name */
    int clients, pipeline, threads;
    uint64_t requests;
    size_t value_len;
    uint64_t ttl_ms;              /* SET's time to live; 0: none */
    kb_keys keys;
    uint64_t keyspace;            /* 0 = no bound (sequential only) */
    int timeout_s;                /* give up after this long without an answer */
    int progress;                 /* print a live progress line on stdout */
} kb_plan;

typedef struct kb_result {
    uint64_t answered;            /* every answer, OK or not */
    uint64_t ok;                  /* OK and as expected: these are measured */
    uint64_t errors;              /* answers with a code other than OK */
    uint64_t wrong;               /* OK answers that are not what was asked */
    char first_error[256];        /* "NOT_FOUND: key not found", "nil: key not found" */
    char first_wrong[256];
    char fatal[256];              /* why the test stopped early, "" if it did not */
    double seconds;               /* from the first request to the last answer */
    kb_hist latency;              /* nanoseconds, OK answers only */
} kb_result;

/* Runs PLAN against its server. Returns 0 when every request was answered
 * (the answers may still be errors: see RES), or -1 when the test could not
 * finish (connection refused or lost, timeout, out of memory), with the
 * reason in RES->fatal. RES is filled in either case. */
int kb_run(const kb_plan *plan, kb_result *res);

#endif
