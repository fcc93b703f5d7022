/* listen.c - listening sockets; see listen.h. Owns nothing past the
 * socket it returns. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "endpoint.h"
#include "listen.h"

int kv_listen(const char *ep, char *err, size_t errlen)
{
    kv_endpoint where;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res, *ai;
    int fd = -1, one = 1, rc;

    /* The port is required: a listener on a default port is a surprise. */
    if (kv_endpoint_parse(ep, -1, &where, err, errlen) < 0)
        return -1;
    rc = getaddrinfo(where.host[0] ? where.host : NULL, where.service, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve \"%s\": %s", ep, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
            break;
        snprintf(err, errlen, "cannot listen on %s: %s", ep, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

int kv_listen_address(int fd, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    char host[INET6_ADDRSTRLEN];

    snprintf(buf, len, "?");
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0)
        return 0;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        const uint8_t *a = in6->sin6_addr.s6_addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
               (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && a[12] == 127);
    }
    return 0;
}

int kv_listen_is_loopback(const kv_endpoint *ep)
{
    struct in_addr in;
    struct in6_addr in6;

    if (strcmp(ep->host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, ep->host, &in) == 1)
        return (ntohl(in.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, ep->host, &in6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&in6) ||
               (IN6_IS_ADDR_V4MAPPED(&in6) && in6.s6_addr[12] == 127);
    return 0;
}
