/* tls.c - the client library's TLS: builds the OpenSSL client context from
 * kv_client_options, runs a connection's handshake within its connect
 * timeout, and reads and writes through OpenSSL, saying "want read" or
 * "want write" instead of waiting. Knows no calls or frames, and polls
 * only during the handshake; client.c drives the stream afterwards. The
 * socket stays client.c's (route.c opens it). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "endpoint.h"
#include "tls.h"
#include "tls_dial.h"

struct kvc_tls_ctx {
    SSL_CTX *ctx;
    char *server_name;          /* kv_client_options.server_name, or NULL */
    int verify;                 /* check the server's certificate and name */
};

struct kvc_tls {
    SSL *ssl;
    int broken;                 /* a fatal error: no close_notify */
    int refused;                /* it broke on the server's fatal alert */
    char reason[256];           /* why it broke */
};

/* A socket BIO that sends with MSG_NOSIGNAL: OpenSSL's own writes with
 * write(), which raises SIGPIPE on a connection the server closed, and a
 * library must not kill a program that did not ignore it. One method for
 * the process, made on first use and kept. */
static BIO_METHOD *nosig_method;
static pthread_once_t nosig_once = PTHREAD_ONCE_INIT;

static int sock_of(BIO *b) { return (int)(intptr_t)BIO_get_data(b); }

static int nosig_write(BIO *b, const char *data, int len)
{
    ssize_t n = send(sock_of(b), data, (size_t)len, MSG_NOSIGNAL);

    BIO_clear_retry_flags(b);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_write(b);
    return (int)n;
}

static int nosig_read(BIO *b, char *data, int len)
{
    ssize_t n = recv(sock_of(b), data, (size_t)len, 0);

    BIO_clear_retry_flags(b);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_read(b);
    else if (n == 0)
        BIO_set_flags(b, BIO_FLAGS_IN_EOF);     /* what BIO_eof() reports */
    return (int)n;
}

static long nosig_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_EOF:
        return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    default:
        return 0;
    }
}

static void nosig_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "kvstore socket");

    if (m && (!BIO_meth_set_write(m, nosig_write) || !BIO_meth_set_read(m, nosig_read)
              || !BIO_meth_set_ctrl(m, nosig_ctrl))) {
        BIO_meth_free(m);
        m = NULL;
    }
    nosig_method = m;
}

/* OpenSSL's reason for the last failure, "" when it queued none, and its
 * code into *LAST (0: none); clears its queue. */
static const char *openssl_reason(unsigned long *last)
{
    unsigned long code;
    const char *r;

    *last = 0;
    while ((code = ERR_get_error()) != 0)
        *last = code;
    r = *last ? ERR_reason_error_string(*last) : NULL;
    return r ? r : "";
}

kvc_tls_ctx *kvc_tls_ctx_new(const kv_client_options *o, char *err, size_t errlen)
{
    kvc_tls_ctx *t = calloc(1, sizeof *t);
    const char *what = NULL, *file = NULL;
    kv_tls_dial_part failed;

    ERR_clear_error();
    pthread_once(&nosig_once, nosig_make);
    if (!t || !nosig_method
        || (o->server_name && *o->server_name && !(t->server_name = strdup(o->server_name)))) {
        snprintf(err, errlen, "TLS: out of memory");
        goto fail;
    }
    if (!o->cert_file != !o->key_file) {
        snprintf(err, errlen, "TLS: a client certificate and its key go together (%s given alone)",
                 o->cert_file ? "certificate" : "key");
        goto fail;
    }
    t->verify = !o->insecure_skip_verify;
    /* The CA (unless not verifying), then the client's certificate and
     * key: the project's one way (tls_dial.c). */
    t->ctx = kv_tls_dial_ctx(o->ca_file, o->cert_file, o->key_file, t->verify, &failed);
    switch (failed) {
    case KV_TLS_DIAL_OK:
        break;
    case KV_TLS_DIAL_MEMORY:
        snprintf(err, errlen, "TLS: out of memory");
        goto fail;
    case KV_TLS_DIAL_CA:
        what = o->ca_file ? "the CA file" : "the system's CA store";
        file = o->ca_file ? o->ca_file : "";
        break;
    case KV_TLS_DIAL_CERT:
        what = "the client certificate", file = o->cert_file;
        break;
    case KV_TLS_DIAL_KEY:
        what = "the client key", file = o->key_file;
        break;
    }
    if (t->ctx) {
        /* The output buffer grows by realloc between retries of a write,
         * and only at its end; frames carry their length, so an end
         * without close_notify is a close like any other. */
        SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                                     | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_CTX_set_options(t->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    }
    if (what) {
        unsigned long code;
        snprintf(err, errlen, "TLS: cannot load %s%s%s: %s", what, *file ? " " : "", file,
                 openssl_reason(&code));
        goto fail;
    }
    return t;
fail:
    ERR_clear_error();
    kvc_tls_ctx_free(t);
    return NULL;
}

void kvc_tls_ctx_free(kvc_tls_ctx *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t->server_name);
    free(t);
}

/* Records in S why its last call failed with RC, and returns what
 * kvc_tls_read/write say about it: 0 when the server closed the stream,
 * a WANT, or KVC_TLS_ERROR. SAVED is errno right after the call. */
static ssize_t outcome(kvc_tls *s, int rc, int saved)
{
    int e = SSL_get_error(s->ssl, rc);
    long vr = SSL_get_verify_result(s->ssl);
    unsigned long code;
    const char *r = openssl_reason(&code);

    switch (e) {
    case SSL_ERROR_WANT_READ:
        return KVC_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return KVC_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        snprintf(s->reason, sizeof s->reason, "the server closed the TLS stream");
        return 0;
    case SSL_ERROR_SYSCALL:
        if (!*r) {
            snprintf(s->reason, sizeof s->reason, "%s",
                     saved ? strerror(saved) : "the server closed the connection");
            break;
        }
        /* fall through */
    default:
        /* OpenSSL queues a fatal alert from the server as reason
         * SSL_AD_REASON_OFFSET + the alert's number. */
        s->refused = ERR_GET_LIB(code) == ERR_LIB_SSL
                     && ERR_GET_REASON(code) >= SSL_AD_REASON_OFFSET;
        if (vr != X509_V_OK)
            snprintf(s->reason, sizeof s->reason, "%s: %s", *r ? r : "certificate verify failed",
                     X509_verify_cert_error_string(vr));
        else
            snprintf(s->reason, sizeof s->reason, "%s", *r ? r : "TLS error");
    }
    s->broken = 1;
    return KVC_TLS_ERROR;
}

/* Sets the name S checks the server's certificate against (when T
 * verifies), and sends as SNI: an IP address is checked as one, and never
 * sent. Returns 0 or -1. */
static int set_name(kvc_tls *s, const kvc_tls_ctx *t, const char *name)
{
    return t->verify ? kv_tls_dial_expect(s->ssl, name) : kv_tls_dial_sni(s->ssl, name);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Takes S's handshake on FD to its end within TIMEOUT_MS (0: none).
 * Returns 0, or -1 with s->reason set. */
static int handshake(kvc_tls *s, int fd, int timeout_ms)
{
    int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;

    for (;;) {
        ERR_clear_error();
        int rc = SSL_connect(s->ssl);
        if (rc == 1)
            return 0;
        ssize_t why = outcome(s, rc, errno);
        if (why != KVC_TLS_WANT_READ && why != KVC_TLS_WANT_WRITE)
            return -1;
        struct pollfd pfd = { .fd = fd, .events = why == KVC_TLS_WANT_READ ? POLLIN : POLLOUT };
        int64_t left = deadline ? deadline - now_ms() : -1;
        if (deadline && left < 0)
            left = 0;
        int n = deadline && left == 0 ? 0
                : poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
        if (n == 0) {
            snprintf(s->reason, sizeof s->reason, "timed out after %d ms", timeout_ms);
            return -1;
        }
        if (n < 0 && errno != EINTR) {
            snprintf(s->reason, sizeof s->reason, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

kvc_tls *kvc_tls_open(kvc_tls_ctx *t, int fd, const char *endpoint, int timeout_ms,
                      int *refused, char *err, size_t errlen)
{
    kvc_tls *s = calloc(1, sizeof *s);
    kv_endpoint where;
    const char *name;
    char shown[KV_ENDPOINT_HOST_MAX + 16];
    BIO *bio;

    *refused = 0;
    ERR_clear_error();
    if (kv_endpoint_parse(endpoint && *endpoint ? endpoint : KV_DEFAULT_HOST, KV_DEFAULT_PORT,
                          &where, err, errlen) < 0) {
        free(s);
        return NULL;
    }
    name = t->server_name ? t->server_name : where.host[0] ? where.host : KV_DEFAULT_HOST;
    if (endpoint && *endpoint)
        snprintf(shown, sizeof shown, "%s", endpoint);
    else
        snprintf(shown, sizeof shown, "%s:%d", KV_DEFAULT_HOST, KV_DEFAULT_PORT);
    endpoint = shown;
    if (!s || !(s->ssl = SSL_new(t->ctx)) || !(bio = BIO_new(nosig_method))) {
        snprintf(err, errlen, "TLS with %s: out of memory", endpoint);
        goto fail;
    }
    BIO_set_data(bio, (void *)(intptr_t)fd);
    BIO_set_init(bio, 1);
    SSL_set_bio(s->ssl, bio, bio);
    if (set_name(s, t, name) < 0) {
        snprintf(err, errlen, "TLS with %s: cannot use the server name \"%s\"", endpoint, name);
        goto fail;
    }
    if (handshake(s, fd, timeout_ms) < 0) {
        snprintf(err, errlen, "TLS handshake with %s failed: %s", endpoint, s->reason);
        goto fail;
    }
    return s;
fail:
    *refused = s && s->refused;
    if (s)
        s->broken = 1;
    kvc_tls_close(s);
    ERR_clear_error();
    return NULL;
}

ssize_t kvc_tls_read(kvc_tls *s, void *buf, size_t len)
{
    size_t n;
    int rc;

    if (s->broken)              /* OpenSSL forbids any more I/O */
        return KVC_TLS_ERROR;
    ERR_clear_error();
    rc = SSL_read_ex(s->ssl, buf, len, &n);
    return rc == 1 ? (ssize_t)n : outcome(s, rc, errno);
}

ssize_t kvc_tls_write(kvc_tls *s, const void *buf, size_t len)
{
    size_t n;
    int rc;
    ssize_t why;

    if (s->broken)
        return KVC_TLS_ERROR;
    ERR_clear_error();
    rc = SSL_write_ex(s->ssl, buf, len, &n);
    if (rc == 1)
        return (ssize_t)n;
    why = outcome(s, rc, errno);
    if (why == 0) {             /* the server's close_notify: no more writing */
        s->broken = 1;
        return KVC_TLS_ERROR;
    }
    return why;
}

int kvc_tls_pending(const kvc_tls *s) { return SSL_pending(s->ssl) > 0; }

const char *kvc_tls_reason(const kvc_tls *s) { return s->reason; }

int kvc_tls_refused(const kvc_tls *s) { return s->refused; }

void kvc_tls_close(kvc_tls *s)
{
    if (!s)
        return;
    if (s->ssl && !s->broken && SSL_is_init_finished(s->ssl))
        SSL_shutdown(s->ssl);
    ERR_clear_error();
    SSL_free(s->ssl);
    free(s);
}
