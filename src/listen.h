/* listen.h - a listening TCP socket on a "HOST:PORT" endpoint, and the
 * address it is bound to, for kvstored and kvecho (the benchmark's echo
 * floor): both print "listening on HOST:PORT" once ready, which every test
 * helper waits for. */
#ifndef KV_LISTEN_H
#define KV_LISTEN_H

#include <stddef.h>
#include "endpoint.h"

/* Binds and listens on EP (see endpoint.h; the port is required, 0 picks a
 * free one), non-blocking, close-on-exec, SO_REUSEADDR. Returns the socket,
 * or -1 with a one-line reason naming EP in ERR. */
int kv_listen(const char *ep, char *err, size_t errlen);

/* Writes the address FD is bound to into BUF (LEN bytes) as "HOST:PORT" or
 * "[V6]:PORT" ("?" when unknown). Returns 1 when it is a loopback address
 * (127.0.0.0/8, ::1, or 127/8 mapped into IPv6), else 0. */
int kv_listen_address(int fd, char *buf, size_t len);

/* Whether EP names a loopback address without asking a resolver: an IPv4
 * address in 127.0.0.0/8, ::1 (or 127/8 mapped into IPv6), or the name
 * "localhost". Returns 1 or 0 (0 for ":PORT", every address). */
int kv_listen_is_loopback(const kv_endpoint *ep);

#endif
