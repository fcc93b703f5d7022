/* route.c - where the client library's calls go: the list of endpoints a
 * client was given, the leader a node named in its answer, the next
 * address to try, the pause between tries, and the TCP connect itself.
 * Owns the endpoint strings; knows nothing of calls or frames (client.c
 * decides when to move, this file says where and opens the socket). */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sodium.h>
#include <kvstore/client.h>
#include "endpoint.h"
#include "route.h"

/* Backoff between tries that did not follow a hint: the first retry of a
 * call is at once, then 25 ms doubling to 1 s, each drawn from [half, full]
 * so that clients cut off together do not come back together. */
#define BACKOFF_FIRST_MS 25
#define BACKOFF_MAX_MS 1000

/* Parses one endpoint, NULL or "" meaning the default. Returns 0 or -1
 * with the reason in ERR. */
static int parse_one(const char *ep, kv_endpoint *out, char *err, size_t errlen)
{
    return kv_endpoint_parse(ep && *ep ? ep : KV_DEFAULT_HOST, KV_DEFAULT_PORT, out, err, errlen);
}

int kvc_route_init(kvc_route *r, const char *endpoints, char *err, size_t errlen)
{
    const char *s = endpoints ? endpoints : "";
    int list = strchr(s, ',') != NULL;
    kv_endpoint ep;

    memset(r, 0, sizeof *r);
    if (sodium_init() < 0) {
        snprintf(err, errlen, "cannot initialize libsodium (for the client id)");
        return -1;
    }
    for (;;) {
        size_t n = strcspn(s, ",");
        char *one = strndup(s, n);
        char **v = one ? realloc(r->eps, (r->neps + 1) * sizeof *v) : NULL;
        if (!v) {
            free(one);
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        r->eps = v;
        r->eps[r->neps++] = one;
        /* An empty item of a list ("a,,b") is a mistake, not the default. */
        if (!*one && list) {
            snprintf(err, errlen, "empty endpoint in the list \"%s\"", endpoints);
            goto fail;
        }
        if (parse_one(one, &ep, err, errlen) < 0)
            goto fail;
        if (!s[n])
            break;
        s += n + 1;
    }
    randombytes_buf(r->client_id, sizeof r->client_id);
    r->cluster = r->neps > 1;
    return 0;
fail:
    kvc_route_free(r);
    return -1;
}

void kvc_route_free(kvc_route *r)
{
    for (size_t i = 0; i < r->neps; i++)
        free(r->eps[i]);
    free(r->eps);
    r->eps = NULL;
    r->neps = 0;
}

void kvc_route_hint(kvc_route *r, const char *leader)
{
    r->cluster |= leader && *leader;
    snprintf(r->hint, sizeof r->hint, "%s", leader ? leader : "");
}

const char *kvc_route_next(kvc_route *r, int *hinted)
{
    *hinted = r->hint[0] != 0;
    if (*hinted) {
        memcpy(r->where, r->hint, sizeof r->where);
        r->hint[0] = 0;
    } else {
        r->cur = (r->cur + 1) % r->neps;
        snprintf(r->where, sizeof r->where, "%s", r->eps[r->cur]);
    }
    return r->where;
}

int kvc_route_backoff_ms(int *backoff)
{
    int full = *backoff;
    uint32_t jitter;

    *backoff = full ? (full * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : full * 2) : BACKOFF_FIRST_MS;
    if (!full)
        return 0;
    jitter = randombytes_uniform((uint32_t)full / 2 + 1);
    return full / 2 + (int)jitter;
}

int kvc_connect_to(const char *endpoint, int timeout_ms, char *err, size_t errlen)
{
    kv_endpoint where;
    const char *host, *port;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res, *ai;
    int fd = -1, rc;

    /* ":PORT" names the default host. */
    if (parse_one(endpoint, &where, err, errlen) < 0)
        return -1;
    host = where.host[0] ? where.host : KV_DEFAULT_HOST;
    port = where.service;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s:%s: %s", host, port, gai_strerror(rc));
        return -1;
    }
    snprintf(err, errlen, "cannot connect to %s:%s", host, port);
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            int n;
            do {
                n = poll(&pfd, 1, timeout_ms > 0 ? timeout_ms : -1);
            } while (n < 0 && errno == EINTR);
            if (n == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                break;
            snprintf(err, errlen, "cannot connect to %s:%s: %s", host, port,
                     n == 0 ? "timed out" : strerror(soerr ? soerr : errno));
        } else {
            snprintf(err, errlen, "cannot connect to %s:%s: %s", host, port, strerror(errno));
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

int kvc_route_connect_first(kvc_route *r, kvc_route_open_fn *open, void *arg, int timeout_ms,
                            char *err, size_t errlen)
{
    for (size_t i = 0; i < r->neps; i++) {
        if (open(arg, r->eps[i], timeout_ms, err, errlen) == 0) {
            r->cur = i;
            snprintf(r->where, sizeof r->where, "%s", r->eps[i]);
            return 0;
        }
    }
    return -1;
}
