/* tls_dial.h - the client side of TLS that the client library, kvbench
 * and a cluster member's calls to another member share: a client context
 * loaded from PEM files, and the name a server's certificate must carry.
 * What each caller does with the stream (polling, retries, the words of
 * an error) stays its own. */
#ifndef KV_TLS_DIAL_H
#define KV_TLS_DIAL_H

#include <openssl/ssl.h>

/* Which part of kv_tls_dial_ctx() failed. */
typedef enum {
    KV_TLS_DIAL_OK,
    KV_TLS_DIAL_MEMORY,     /* no context could be made */
    KV_TLS_DIAL_CA,         /* the CA file, or the system's CAs without one */
    KV_TLS_DIAL_CERT,       /* the client certificate (chain) */
    KV_TLS_DIAL_KEY,        /* its key: unreadable, or not the certificate's */
} kv_tls_dial_part;

/* A client context for TLS 1.2 and later that checks the server's
 * certificate against the CAs of CA_FILE (NULL: the system's) unless
 * VERIFY is 0, and presents CERT_FILE with KEY_FILE when CERT_FILE is
 * given (KEY_FILE then too), loaded in that order. Returns the context
 * (free with SSL_CTX_free; the caller adds its own modes and options), or
 * NULL with *FAILED naming the part that did not load and OpenSSL's
 * reason left in its error queue for the caller's message. */
SSL_CTX *kv_tls_dial_ctx(const char *ca_file, const char *cert_file, const char *key_file,
                         int verify, kv_tls_dial_part *failed);

/* Makes SSL's handshake check that the server's certificate names HOST:
 * as an IP address when HOST is one, else as a DNS name (no partial
 * wildcards), which is also sent as SNI. Returns 0, or -1 (out of
 * memory, or a HOST no certificate can carry). */
int kv_tls_dial_expect(SSL *ssl, const char *host);

/* Sends HOST as SNI when it is a name (an IP address is never sent), for
 * a connection whose certificate is not checked. Returns 0 or -1. */
int kv_tls_dial_sni(SSL *ssl, const char *host);

#endif
