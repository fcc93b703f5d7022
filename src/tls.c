/* tls.c - TLS with OpenSSL (tls.h): owns the SSL_CTX and each connection's
 * SSL. Knows nothing of watchers, sessions or frames; the socket stays the
 * caller's (conn.c), which closes it. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "tls.h"
#include "tls_dial.h"

struct kv_tls {
    SSL_CTX *ctx;
};

struct kv_tls_conn {
    SSL *ssl;
    int broken;         /* a fatal error: no close_notify (OpenSSL forbids
                           SSL_shutdown after one) */
    char why[200];      /* the failure, for the log */
};

/* The reason of the newest error in OpenSSL's queue ("wrong version
 * number", "No such file or directory"), or FALLBACK. */
static const char *ssl_reason(const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    return r ? r : fallback;
}

/* Fills ERR with "FLAG: cannot load FILE: REASON" and returns NULL. */
static kv_tls *load_failed(kv_tls *t, const char *flag, const char *file,
                           char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: cannot load %s: %s", flag, file, ssl_reason("not PEM"));
    kv_tls_free(t);
    ERR_clear_error();
    return NULL;
}

/* A context of METHOD with the rules both sides keep, or NULL (ERR
 * filled). */
static kv_tls *context_new(const SSL_METHOD *method, char *err, size_t errlen)
{
    kv_tls *t = calloc(1, sizeof *t);

    ERR_clear_error();
    if (!t || !(t->ctx = SSL_CTX_new(method))) {
        snprintf(err, errlen, "out of memory for TLS");
        kv_tls_free(t);
        return NULL;
    }
    /* Older versions have known weaknesses; Debian's OpenSSL refuses them
     * by default too, but the rule is ours, not the system's. */
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(t->ctx, 0);
    /* Renegotiation would make a write wait for a read at any time; a
     * peer cut short without close_notify is an end like any other (a
     * frame carries its length, so a truncated one is seen as partial). */
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    return t;
}

/* Loads CFG's certificate chain and key into T, checking they belong
 * together. Returns 0, or -1 with ERR (T freed). */
static int load_pair(kv_tls *t, const kv_tls_config *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = t->ctx;

    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert) != 1) {
        load_failed(t, "--tls-cert", cfg->cert, err, errlen);
        return -1;
    }
    /* OpenSSL checks the key against the certificate as it loads it. */
    int loaded = SSL_CTX_use_PrivateKey_file(ctx, cfg->key, SSL_FILETYPE_PEM) == 1;
    if (!loaded && ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
        load_failed(t, "--tls-key", cfg->key, err, errlen);
        return -1;
    }
    if (!loaded || SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "--tls-key: %s is not the key of the certificate in %s",
                 cfg->key, cfg->cert);
        kv_tls_free(t);
        ERR_clear_error();
        return -1;
    }
    return 0;
}

kv_tls *kv_tls_new(const kv_tls_config *cfg, char *err, size_t errlen)
{
    kv_tls *t = context_new(TLS_server_method(), err, errlen);

    if (!t || load_pair(t, cfg, err, errlen) < 0)
        return NULL;
    SSL_CTX *ctx = t->ctx;
    /* Writes take what fits and may be retried from a buffer that moved
     * (the session's output grows by realloc); idle connections give
     * their 34K of record buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                              | SSL_MODE_RELEASE_BUFFERS);
    /* A read takes what the socket has, not a record's header and then
     * its body: one read() a request where there were three. */
    SSL_CTX_set_read_ahead(ctx, 1);
    if (cfg->client_ca) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->client_ca);
        if (!names || SSL_CTX_load_verify_locations(ctx, cfg->client_ca, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            return load_failed(t, "--tls-client-ca", cfg->client_ca, err, errlen);
        }
        SSL_CTX_set_client_CA_list(ctx, names);     /* takes NAMES */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        /* Resuming a session that was verified needs a context id. */
        static const unsigned char sid[] = "kvstored";
        SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
    }
    ERR_clear_error();      /* reads and writes count on an empty queue */
    return t;
}

kv_tls *kv_tls_client_new(const kv_tls_config *cfg, char *err, size_t errlen)
{
    const char *ca = cfg->peer_ca ? cfg->peer_ca : cfg->client_ca;
    kv_tls *t = calloc(1, sizeof *t);
    kv_tls_dial_part failed = KV_TLS_DIAL_MEMORY;

    ERR_clear_error();
    if (t && (t->ctx = kv_tls_dial_ctx(ca, cfg->cert, cfg->key, 1, &failed))) {
        SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
        ERR_clear_error();
        return t;
    }
    switch (failed) {
    case KV_TLS_DIAL_CA:
        return load_failed(t, cfg->peer_ca ? "--tls-peer-ca" : "--tls-client-ca",
                           ca ? ca : "the system's CAs", err, errlen);
    case KV_TLS_DIAL_CERT:
        return load_failed(t, "--tls-cert", cfg->cert, err, errlen);
    case KV_TLS_DIAL_KEY:
        return load_failed(t, "--tls-key", cfg->key, err, errlen);
    default:
        snprintf(err, errlen, "out of memory for TLS");
        kv_tls_free(t);
        return NULL;
    }
}

void kv_tls_free(kv_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

kv_tls_conn *kv_tls_conn_new(kv_tls *t, int fd)
{
    kv_tls_conn *c = calloc(1, sizeof *c);

    if (!c)
        return NULL;
    if (!(c->ssl = SSL_new(t->ctx)) || SSL_set_fd(c->ssl, fd) != 1) {
        SSL_free(c->ssl);
        free(c);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_accept_state(c->ssl);
    return c;
}

kv_tls_conn *kv_tls_conn_dial(kv_tls *t, int fd, const char *host)
{
    kv_tls_conn *c = kv_tls_conn_new(t, fd);

    if (!c)
        return NULL;
    SSL_set_connect_state(c->ssl);
    if (kv_tls_dial_expect(c->ssl, host) == 0)
        return c;
    kv_tls_conn_free(c);
    ERR_clear_error();
    return NULL;
}

/* What RC from SSL call DOING (for the log) means: KV_TLS_WANT_READ or
 * _WRITE, 0 at the peer's end (reads only: END_OK), else KV_TLS_ERROR with
 * c->why and errno set (tls.h). */
static int outcome(kv_tls_conn *c, int rc, const char *doing, int end_ok)
{
    int saved = errno;
    int e = SSL_get_error(c->ssl, rc);

    switch (e) {
    case SSL_ERROR_WANT_READ:
        return KV_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return KV_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        if (end_ok)
            return 0;
        snprintf(c->why, sizeof c->why, "%s: the peer closed the connection", doing);
        errno = ECONNRESET;
        break;
    case SSL_ERROR_SYSCALL:
        c->broken = 1;
        if (ERR_peek_error() == 0 && saved == 0) {
            /* The peer closed its side where TLS expected more. */
            if (end_ok)
                return 0;
            snprintf(c->why, sizeof c->why, "%s: the peer closed the connection", doing);
            errno = ECONNRESET;
            break;
        }
        snprintf(c->why, sizeof c->why, "%s: %s", doing,
                 saved ? strerror(saved) : ssl_reason("socket error"));
        errno = saved;
        break;
    default: {
        /* A client certificate refused: say what was wrong with it. */
        long verify = SSL_get_verify_result(c->ssl);
        c->broken = 1;
        snprintf(c->why, sizeof c->why, "%s: %s%s%s%s", doing, ssl_reason("TLS error"),
                 verify != X509_V_OK ? " (" : "",
                 verify != X509_V_OK ? X509_verify_cert_error_string(verify) : "",
                 verify != X509_V_OK ? ")" : "");
        errno = 0;
        break;
    }
    }
    ERR_clear_error();
    return KV_TLS_ERROR;
}

int kv_tls_handshake(kv_tls_conn *c)
{
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(c->ssl);
    return rc == 1 ? 1 : outcome(c, rc, "TLS handshake failed", 0);
}

/* Reads and writes do not clear OpenSSL's error queue first (840
 * instructions each, a third of a request's own work): every failure
 * clears it (outcome), as does every context's load, so it is empty. */
ssize_t kv_tls_read(kv_tls_conn *c, void *buf, size_t len)
{
    size_t n = 0;

    errno = 0;
    int rc = SSL_read_ex(c->ssl, buf, len, &n);
    return rc == 1 ? (ssize_t)n : outcome(c, rc, "TLS read failed", 1);
}

ssize_t kv_tls_write(kv_tls_conn *c, const void *buf, size_t len)
{
    size_t n = 0;

    errno = 0;
    int rc = SSL_write_ex(c->ssl, buf, len, &n);
    return rc == 1 ? (ssize_t)n : outcome(c, rc, "TLS write failed", 0);
}

int kv_tls_pending(const kv_tls_conn *c)
{
    return SSL_has_pending(c->ssl);
}

const char *kv_tls_conn_why(const kv_tls_conn *c)
{
    return c->why[0] ? c->why : "TLS failed";
}

const char *kv_tls_conn_subject(const kv_tls_conn *c, char *buf, size_t len)
{
    /* OpenSSL keeps the certificate once its chain is verified, before
     * the client proves it holds the key (CertificateVerify): a client
     * stalled there, or refused by it and lingering, would show a subject
     * anyone can copy from a public certificate. */
    X509 *peer = SSL_is_init_finished(c->ssl) ? SSL_get1_peer_certificate(c->ssl) : NULL;

    if (!peer)
        return NULL;
    /* Escapes bytes outside printable ASCII as \xHH: the line is valid
     * UTF-8 for a proto3 string and safe in the log. */
    X509_NAME_oneline(X509_get_subject_name(peer), buf, len < INT_MAX ? (int)len : INT_MAX);
    X509_free(peer);
    return buf;
}

const char *kv_tls_conn_describe(const kv_tls_conn *c, char *buf, size_t len)
{
    char subject[256];
    const char *who = kv_tls_conn_subject(c, subject, sizeof subject);

    snprintf(buf, len, "%s %s%s%s", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl),
             who ? ", client certificate " : "", who ? who : "");
    return buf;
}

void kv_tls_conn_free(kv_tls_conn *c)
{
    if (!c)
        return;
    if (!c->broken && SSL_is_init_finished(c->ssl)) {
        SSL_shutdown(c->ssl);       /* one try: the socket closes next */
        ERR_clear_error();
    }
    SSL_free(c->ssl);
    free(c);
}
