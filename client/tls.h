/* tls.h - the client library's TLS (tls.c): an OpenSSL client context
 * built from kv_client_options, and per connection a TLS stream over a
 * non-blocking socket that the caller polls. Private to the library. */
#ifndef KV_CLIENT_TLS_H
#define KV_CLIENT_TLS_H

#include <stddef.h>
#include <sys/types.h>
#include <kvstore/client.h>

/* The TLS settings of a client: the certificates to trust and to present,
 * the name to check. Every connection of that client (each endpoint of a
 * list, each reconnect, each leader a node names) opens with them. */
typedef struct kvc_tls_ctx kvc_tls_ctx;

/* One connection's TLS stream over a socket it does not own. */
typedef struct kvc_tls kvc_tls;

/* What kvc_tls_read() and kvc_tls_write() return when no byte moved. */
enum {
    KVC_TLS_ERROR = -1,         /* the stream is broken: kvc_tls_reason() */
    KVC_TLS_WANT_READ = -2,     /* call again when the socket is readable */
    KVC_TLS_WANT_WRITE = -3,    /* call again when the socket is writable */
};

/* The context for O's TLS settings (O->tls set): TLS 1.2 at least; the
 * server's certificate verified against O->ca_file, or the system's store
 * without one, unless O->insecure_skip_verify; O->cert_file and
 * O->key_file presented when given. Copies what it keeps of O. Returns it
 * (free with kvc_tls_ctx_free()), or NULL with a one-line reason naming
 * the file at fault in ERR. */
kvc_tls_ctx *kvc_tls_ctx_new(const kv_client_options *o, char *err, size_t errlen);

/* Frees T, after every stream opened with it. Accepts NULL. */
void kvc_tls_ctx_free(kvc_tls_ctx *t);

/* Runs the TLS handshake on FD, a connected non-blocking socket to
 * ENDPOINT ("HOST:PORT"), within TIMEOUT_MS (0: no limit). The name
 * checked against the server's certificate, and sent as SNI when it is
 * not an IP address, is T's server name, else ENDPOINT's host. Returns the
 * stream (free with kvc_tls_close(), FD stays the caller's), or NULL with
 * "TLS handshake with ENDPOINT failed: REASON" in ERR and *REFUSED set as
 * kvc_tls_refused() would say. */
kvc_tls *kvc_tls_open(kvc_tls_ctx *t, int fd, const char *endpoint, int timeout_ms,
                      int *refused, char *err, size_t errlen);

/* Reads up to LEN decrypted bytes into BUF. Returns how many (> 0), 0 when
 * the server closed the stream, or KVC_TLS_WANT_READ, KVC_TLS_WANT_WRITE
 * or KVC_TLS_ERROR; after an error, every read and write returns it again
 * (OpenSSL allows no more I/O) and kvc_tls_reason() keeps the first. */
ssize_t kvc_tls_read(kvc_tls *s, void *buf, size_t len);

/* Writes up to LEN bytes of BUF. Returns how many (> 0; fewer than LEN
 * when the socket filled), or KVC_TLS_WANT_READ, KVC_TLS_WANT_WRITE or
 * KVC_TLS_ERROR. After a WANT, call again with the same bytes at the head
 * of BUF (it may have moved, and grown at the end). */
ssize_t kvc_tls_write(kvc_tls *s, const void *buf, size_t len);

/* Whether S holds bytes read from the socket and not yet handed out:
 * poll() does not announce them, so the caller reads before waiting. */
int kvc_tls_pending(const kvc_tls *s);

/* Why S broke (after KVC_TLS_ERROR): OpenSSL's reason, or the socket's
 * error. Owned by S. */
const char *kvc_tls_reason(const kvc_tls *s);

/* Whether S broke on a fatal alert from the server (after KVC_TLS_ERROR):
 * it refused this client (no certificate, or one it does not trust), and
 * would refuse it again on a new connection. */
int kvc_tls_refused(const kvc_tls *s);

/* Sends close_notify (one try, no wait) when the stream is sound, and
 * frees S; the socket stays open. Accepts NULL. */
void kvc_tls_close(kvc_tls *s);

#endif
