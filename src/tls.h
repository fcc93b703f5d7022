/* tls.h - TLS on the client listener, with Debian's OpenSSL: the server's
 * context (its certificate and key, and the CA that must have signed a
 * client's certificate) and one non-blocking TLS stream per connection.
 * Knows no event loop and no session: each step that cannot finish says
 * which socket event it waits for, and conn.c maps that onto its watchers. */
#ifndef KV_TLS_H
#define KV_TLS_H

#include <stddef.h>
#include <sys/types.h>

typedef struct kv_tls kv_tls;           /* the server's: one SSL_CTX */
typedef struct kv_tls_conn kv_tls_conn; /* one connection's TLS stream */

/* The files of --tls-cert, --tls-key and --tls-client-ca (PEM). */
typedef struct kv_tls_config {
    const char *cert;       /* the certificate chain, the server's first; NULL: no TLS */
    const char *key;        /* its private key */
    const char *client_ca;  /* CA certificates that must sign every client's
                               certificate; NULL: none is asked for */
    const char *peer_ca;    /* a cluster member's calls to the others' client
                               ports trust these CAs; NULL: client_ca, or
                               the system's without it */
} kv_tls_config;

/* How a step of a stream did not finish (kv_tls_handshake, _read, _write). */
enum {
    KV_TLS_ERROR = -1,      /* the stream is broken; kv_tls_conn_why() says
                               why, errno is the socket's error, or 0 when
                               TLS itself failed (not TLS, a certificate
                               refused, a bad record) */
    KV_TLS_WANT_READ = -2,  /* call again once the socket is readable */
    KV_TLS_WANT_WRITE = -3, /* call again once the socket is writable */
};

/* Loads CFG's files into a context that speaks TLS 1.2 and 1.3 only, and
 * with CFG->client_ca requires a client certificate signed by it. Returns
 * the context (freed by kv_tls_free), or NULL with a one-line reason
 * naming the flag and the file in ERR. */
kv_tls *kv_tls_new(const kv_tls_config *cfg, char *err, size_t errlen);

/* The client side, for a cluster member's calls to the other members'
 * client ports (cluster_join.c): a context that presents CFG's certificate
 * and key (the others' --tls-client-ca may ask for one) and trusts
 * CFG->peer_ca, else CFG->client_ca, else the system's CAs. Returns it
 * (freed by kv_tls_free), or NULL with a one-line reason in ERR. */
kv_tls *kv_tls_client_new(const kv_tls_config *cfg, char *err, size_t errlen);

/* Frees T (NULL: nothing). The streams made from it keep working: each
 * holds a reference to the context (a SIGHUP reload swaps T under them). */
void kv_tls_free(kv_tls *t);

/* A server-side stream of T over FD (connected, non-blocking; still the
 * caller's, never closed here). Returns it (freed by kv_tls_conn_free),
 * or NULL when memory is out. */
kv_tls_conn *kv_tls_conn_new(kv_tls *t, int fd);

/* A client-side stream of T (kv_tls_client_new) over FD, which must show
 * a certificate valid for HOST (a DNS name, or an IP address checked as
 * one). Returns it (freed by kv_tls_conn_free), or NULL when memory is
 * out. */
kv_tls_conn *kv_tls_conn_dial(kv_tls *t, int fd, const char *host);

/* Takes the handshake a step further. Returns 1 once it is done, or one
 * of KV_TLS_ERROR, KV_TLS_WANT_READ, KV_TLS_WANT_WRITE. */
int kv_tls_handshake(kv_tls_conn *c);

/* Reads up to LEN decrypted bytes into BUF. Returns how many (> 0), 0 when
 * the peer ended the stream (with close_notify or without: frames carry
 * their length, so a cut stream shows as a partial frame), or one of
 * KV_TLS_ERROR, KV_TLS_WANT_READ, KV_TLS_WANT_WRITE. */
ssize_t kv_tls_read(kv_tls_conn *c, void *buf, size_t len);

/* Encrypts and sends up to LEN bytes of BUF. Returns how many were taken
 * (> 0), or one of KV_TLS_ERROR, KV_TLS_WANT_READ, KV_TLS_WANT_WRITE; then
 * the next call must offer the same bytes again, more may follow them
 * (the buffer may have moved). */
ssize_t kv_tls_write(kv_tls_conn *c, const void *buf, size_t len);

/* Bytes read from the socket and waiting in C for kv_tls_read, decrypted
 * or not: no socket event will announce them. */
int kv_tls_pending(const kv_tls_conn *c);

/* Why C failed (text in C: valid until kv_tls_conn_free). */
const char *kv_tls_conn_why(const kv_tls_conn *c);

/* The subject of the certificate C's client presented, as one line
 * ("/CN=..."), into BUF. Returns BUF, or NULL when it presented none (or
 * the handshake is not done). */
const char *kv_tls_conn_subject(const kv_tls_conn *c, char *buf, size_t len);

/* The protocol and cipher C agreed on, and the client certificate's
 * subject when there is one, into BUF for the log. Returns BUF. */
const char *kv_tls_conn_describe(const kv_tls_conn *c, char *buf, size_t len);

/* Sends close_notify when the stream is sound (best effort, without
 * waiting), and frees C. The socket stays open: the caller closes it. */
void kv_tls_conn_free(kv_tls_conn *c);

#endif
