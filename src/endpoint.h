/* endpoint.h - "HOST:PORT" strings, the one parser for kvstored --listen,
 * the client library, kvctl and kvbench: splits host from port and
 * range-checks the port. No name resolution and no sockets: callers hand
 * the result to getaddrinfo. */
#ifndef KV_ENDPOINT_H
#define KV_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>

/* Longest host part, without brackets; the same bound DNS puts on a name. */
#define KV_ENDPOINT_HOST_MAX 255

typedef struct kv_endpoint {
    char host[KV_ENDPOINT_HOST_MAX + 1];  /* without brackets; "" when the
                                             string names none (":PORT") */
    uint16_t port;
    char service[6];                      /* PORT in decimal, for getaddrinfo */
} kv_endpoint;

/* Parses EP into *OUT. Accepted: "HOST:PORT", "[V6]:PORT", ":PORT" and,
 * when DEFAULT_PORT is 0 to 65535, "HOST" and "[V6]" meaning that port (-1:
 * the port is required, as for --listen). An address with more than one
 * colon and no brackets splits at the last colon ("::1:7379"). PORT is
 * decimal digits only, 0 to 65535; "HOST:" is refused. Returns 0, or -1 with
 * a one-line reason naming EP in ERR (*OUT then undefined). Allocates
 * nothing. */
int kv_endpoint_parse(const char *ep, int default_port, kv_endpoint *out,
                      char *err, size_t errlen);

/* Parses a port alone (kvbench -p): decimal digits only, 0 to 65535, no
 * sign or space. Returns 0 with *PORT set, or -1. */
int kv_endpoint_parse_port(const char *s, uint16_t *port);

#endif
