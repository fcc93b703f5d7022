/* tls.h - kvbench's TLS, with OpenSSL: the client context made from
 * redis-benchmark's flags (--cacert, --cert, --key, --insecure), each
 * connection's handshake, done before the test's clock starts (every
 * server alike: the figures measure long-lived connections), and reads and
 * writes with read(2)/send(2)'s rules, so run.c keeps one loop for
 * plaintext and TLS. Knows no event loop and no protocol. */
#ifndef KB_TLS_H
#define KB_TLS_H

#include <stddef.h>
#include <sys/types.h>
#include <openssl/types.h>

typedef struct kb_tls_opts {
    const char *cacert;   /* trust only this PEM file's CAs; NULL: the system's */
    const char *cert;     /* client certificate (PEM), with key; NULL: none */
    const char *key;
    int insecure;         /* do not verify the server's certificate */
} kb_tls_opts;

/* A client context for TLS 1.2 and 1.3 made from OPTS. Returns it (the
 * caller frees it with SSL_CTX_free), or NULL with the reason in ERR. */
SSL_CTX *kb_tls_ctx_new(const kb_tls_opts *opts, char *err, size_t errlen);

/* Runs the handshake on FD, a connected non-blocking socket, for server
 * HOST (a name or an IP address: what the certificate must name, and the
 * SNI when a name), waiting at most TIMEOUT_S. Returns the connection (the
 * caller frees it with kb_tls_free; FD stays the caller's), or NULL with
 * the reason in ERR. */
SSL *kb_tls_connect(SSL_CTX *ctx, int fd, const char *host, int timeout_s, char *err,
                    size_t errlen);

/* Reads at most LEN bytes of plaintext into BUF. Returns the count (> 0);
 * 0 at the end of the stream; -1 with errno EAGAIN when nothing can be read
 * yet (*WANTS_WRITE set when OpenSSL first needs the socket writable), or
 * with another errno (EPROTO: a TLS failure, see kb_tls_reason). */
ssize_t kb_tls_read(SSL *ssl, void *buf, size_t len, int *wants_write);

/* Writes up to LEN bytes of BUF (partial writes allowed: retry with the
 * rest). Returns the count written (> 0), or -1 with errno as kb_tls_read
 * (EAGAIN: wait for the socket to be writable, or readable). */
ssize_t kb_tls_write(SSL *ssl, const void *buf, size_t len);

/* Whether decrypted or undecrypted bytes wait inside SSL, where no socket
 * event will announce them. */
int kb_tls_has_pending(const SSL *ssl);

/* The last TLS failure in words ("certificate verify failed"), for a
 * message; never NULL. */
const char *kb_tls_reason(void);

/* Frees SSL (NULL is fine) without a close_notify: the socket is closed
 * right after, and neither server waits for one. */
void kb_tls_free(SSL *ssl);

#endif
