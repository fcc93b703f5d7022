/* tls.c - kvbench's TLS client (tls.h): the context from the command
 * line's files, the handshake at connect time and OpenSSL's read and write
 * results mapped onto errno. Owns nothing between calls; the sockets are
 * run.c's. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "tls.h"
#include "tls_dial.h"

/* The first queued OpenSSL error, or WHAT when the queue is empty. */
static void queued_error(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;

    snprintf(err, errlen, "%s%s%s", what, reason ? ": " : "", reason ? reason : "");
    ERR_clear_error();
}

SSL_CTX *kb_tls_ctx_new(const kb_tls_opts *o, char *err, size_t errlen)
{
    char what[512];
    kv_tls_dial_part failed;
    SSL_CTX *ctx = kv_tls_dial_ctx(o->cacert, o->cert, o->key, !o->insecure, &failed);

    switch (failed) {
    case KV_TLS_DIAL_OK:
        /* Partial writes: a batch's send offset advances as with send(2).
         * Read-ahead: one read(2) takes every record the socket holds,
         * and run.c drains them (kb_tls_has_pending) before waiting. */
        SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
        SSL_CTX_set_read_ahead(ctx, 1);
        SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
        return ctx;
    case KV_TLS_DIAL_MEMORY:
        snprintf(what, sizeof what, "cannot make a TLS context");
        break;
    case KV_TLS_DIAL_CA:
        snprintf(what, sizeof what, "--cacert: cannot load %s",
                 o->cacert ? o->cacert : "the system's CAs");
        break;
    case KV_TLS_DIAL_CERT:
        snprintf(what, sizeof what, "--cert: cannot load %s", o->cert);
        break;
    case KV_TLS_DIAL_KEY:
        snprintf(what, sizeof what, "--key: cannot load %s as the key of %s", o->key, o->cert);
        break;
    }
    queued_error(err, errlen, what);
    return NULL;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

SSL *kb_tls_connect(SSL_CTX *ctx, int fd, const char *host, int timeout_s, char *err,
                    size_t errlen)
{
    SSL *ssl = SSL_new(ctx);
    uint64_t deadline = now_ms() + (uint64_t)timeout_s * 1000u;

    if (!ssl || SSL_set_fd(ssl, fd) != 1 || kv_tls_dial_expect(ssl, host) < 0) {
        queued_error(err, errlen, "cannot start TLS");
        SSL_free(ssl);
        return NULL;
    }
    for (;;) {
        int r = SSL_connect(ssl);
        if (r == 1)
            return ssl;
        int e = SSL_get_error(ssl, r);
        uint64_t now = now_ms();
        struct pollfd pfd = { .fd = fd, .events = e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN };
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            long v = SSL_get_verify_result(ssl);
            if (v != X509_V_OK)
                snprintf(err, errlen, "TLS handshake failed: certificate verify failed (%s)",
                         X509_verify_cert_error_string(v));
            else if (e == SSL_ERROR_SYSCALL && errno)
                snprintf(err, errlen, "TLS handshake failed: %s", strerror(errno));
            else
                queued_error(err, errlen, "TLS handshake failed");
            break;
        }
        if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) == 0) {
            snprintf(err, errlen, "TLS handshake timed out after %d s", timeout_s);
            break;
        }
    }
    ERR_clear_error();
    SSL_free(ssl);
    return NULL;
}

/* Maps a failed SSL_read_ex/SSL_write_ex to -1 and errno, or 0 at the end
 * of the stream. */
static ssize_t failed(SSL *ssl, int r, int *wants_write)
{
    switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_WRITE:
        *wants_write = 1;
        /* fall through */
    case SSL_ERROR_WANT_READ:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (errno)
            return -1;
        /* fall through */
    default:
        errno = EPROTO;
        return -1;
    }
}

ssize_t kb_tls_read(SSL *ssl, void *buf, size_t len, int *wants_write)
{
    size_t n;
    int r = SSL_read_ex(ssl, buf, len, &n);
    return r == 1 ? (ssize_t)n : failed(ssl, r, wants_write);
}

ssize_t kb_tls_write(SSL *ssl, const void *buf, size_t len)
{
    size_t n;
    int unused = 0;
    int r = SSL_write_ex(ssl, buf, len, &n);
    return r == 1 ? (ssize_t)n : failed(ssl, r, &unused);
}

int kb_tls_has_pending(const SSL *ssl)
{
    return SSL_has_pending(ssl);
}

const char *kb_tls_reason(void)
{
    static _Thread_local char why[256];
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;

    snprintf(why, sizeof why, "TLS: %s", reason ? reason : "failure");
    return why;
}

void kb_tls_free(SSL *ssl)
{
    SSL_free(ssl);
}
