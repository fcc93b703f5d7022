/* route.h - the client library's routing (route.c): the endpoints of a
 * client, the leader's hint, backoff, connecting. Private to the library. */
#ifndef KV_CLIENT_ROUTE_H
#define KV_CLIENT_ROUTE_H

#include <stddef.h>
#include <stdint.h>

/* Long enough for any "HOST:PORT" kv_endpoint_parse accepts. */
#define KVC_ADDR_MAX 272

typedef struct kvc_route {
    char **eps;                 /* the endpoints as given, in order */
    size_t neps;                /* 0: a client on an adopted socket, which
                                   never reconnects */
    size_t cur;                 /* eps[cur]: the endpoint tried last */
    char hint[KVC_ADDR_MAX];    /* the leader a node named; "" when none */
    char where[KVC_ADDR_MAX];   /* the address connected to, or tried last */
    uint8_t client_id[16];      /* random, for RpcRequest.client_id */
    int cluster;                /* more than one endpoint given, or a node
                                   named a leader: the server deduplicates
                                   retried writes (a single kvstored does
                                   not, so a write it may have applied is
                                   not sent to it again) */
} kvc_route;

/* Splits ENDPOINTS ("a:1,b:2"; NULL or "" the default endpoint) into R and
 * picks R's client_id. Every endpoint is parsed here, so a bad port is
 * refused before any connect. Returns 0, or -1 with the reason in ERR (R
 * then holds nothing). */
int kvc_route_init(kvc_route *r, const char *endpoints, char *err, size_t errlen);

/* Frees R's endpoints. */
void kvc_route_free(kvc_route *r);

/* Records LEADER ("HOST:PORT" from an answer; "" or NULL: none) as where
 * to go next. */
void kvc_route_hint(kvc_route *r, const char *leader);

/* The address to try next: the hint if one is recorded (then forgotten,
 * *HINTED 1), else the endpoint after the last one tried (*HINTED 0).
 * Returns r->where. */
const char *kvc_route_next(kvc_route *r, int *hinted);

/* The pause before the next try, in milliseconds, given *BACKOFF (0 before
 * the first retry of a call), which it advances: 0 the first time, then
 * 25 ms doubling to 1 s, each with jitter. */
int kvc_route_backoff_ms(int *backoff);

/* A non-blocking TCP socket connected to ENDPOINT ("HOST:PORT"; NULL or ""
 * the default) within TIMEOUT_MS (0: no limit), Nagle off. Returns it, or
 * -1 with a reason naming the endpoint in ERR. */
int kvc_connect_to(const char *endpoint, int timeout_ms, char *err, size_t errlen);

/* Opens a connection to ENDPOINT within TIMEOUT_MS for ARG (the client:
 * the socket and, with TLS, its handshake). Returns 0, or -1 with a
 * reason naming ENDPOINT in ERR. */
typedef int kvc_route_open_fn(void *arg, const char *endpoint, int timeout_ms, char *err,
                              size_t errlen);

/* Opens, with OPEN and ARG, a connection to the first of R's endpoints
 * that accepts, in order, each tried once. Returns 0 (r->cur and r->where
 * say which), or -1 with the last reason in ERR. */
int kvc_route_connect_first(kvc_route *r, kvc_route_open_fn *open, void *arg, int timeout_ms,
                            char *err, size_t errlen);

#endif
