/* endpoint.c - splits "HOST:PORT" endpoint strings and range-checks the
 * port, for the server and every C client. Owns no memory and knows no
 * sockets; resolving the host is the caller's job. */
#include <stdio.h>
#include <string.h>
#include "endpoint.h"

/* Reads N bytes of digits at S. strtoul is not used because it takes a
 * sign and leading spaces, and wraps silently when the caller narrows its
 * result to 16 bits (70000 listened on 4464). */
static int port_of(const char *s, size_t n, uint16_t *port)
{
    unsigned v = 0;

    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
        if (v > 65535)
            return -1;
    }
    *port = (uint16_t)v;
    return 0;
}

int kv_endpoint_parse_port(const char *s, uint16_t *port)
{
    return port_of(s, strlen(s), port);
}

int kv_endpoint_parse(const char *ep, int default_port, kv_endpoint *out,
                      char *err, size_t errlen)
{
    const char *host, *colon;
    size_t hostlen;

    if (!ep[0]) {
        snprintf(err, errlen, "the endpoint is empty (want HOST:PORT)");
        return -1;
    }
    if (ep[0] == '[') {
        const char *end = strchr(ep, ']');
        if (!end) {
            snprintf(err, errlen, "bad endpoint \"%s\": no ']' closes the IPv6 address", ep);
            return -1;
        }
        if (end[1] && end[1] != ':') {
            snprintf(err, errlen, "bad endpoint \"%s\": want [V6]:PORT", ep);
            return -1;
        }
        host = ep + 1;
        hostlen = (size_t)(end - host);
        colon = end[1] ? end + 1 : NULL;
    } else {
        /* The last colon, so that an unbracketed "::1:7379" keeps working
         * as it always has. */
        colon = strrchr(ep, ':');
        host = ep;
        hostlen = colon ? (size_t)(colon - ep) : strlen(ep);
    }
    if (hostlen > KV_ENDPOINT_HOST_MAX) {
        snprintf(err, errlen, "bad endpoint \"%.64s...\": the host is longer than %d bytes",
                 ep, KV_ENDPOINT_HOST_MAX);
        return -1;
    }
    memcpy(out->host, host, hostlen);
    out->host[hostlen] = 0;
    if (colon) {
        if (port_of(colon + 1, strlen(colon + 1), &out->port) < 0) {
            snprintf(err, errlen, "bad port \"%s\" in \"%s\" (want a number from 0 to 65535)",
                     colon + 1, ep);
            return -1;
        }
    } else if (default_port >= 0 && default_port <= 65535) {
        out->port = (uint16_t)default_port;
    } else {
        snprintf(err, errlen, "endpoint \"%s\" names no port (want HOST:PORT)", ep);
        return -1;
    }
    snprintf(out->service, sizeof out->service, "%u", (unsigned)out->port);
    return 0;
}
