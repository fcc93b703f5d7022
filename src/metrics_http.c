/* metrics_http.c - /metrics and /health over HTTP, or HTTPS with the
 * client listener's certificate; see metrics_http.h.
 * Owns the listener and libmicrohttpd's daemon; the text is
 * metrics_text.c's, the figures stats_report.c's.
 *
 * Why a library: HTTP/1.1 parsing (request lines, headers, keep-alive,
 * pipelining, HEAD, chunked bodies sent to a GET, slow or hostile clients)
 * is not our heart, and a hand-rolled responder would be one more parser
 * to fuzz. libmicrohttpd is Debian's, small, made to be driven by an
 * outside loop: with MHD_USE_EPOLL and no thread of its own, its sockets
 * sit in one epoll descriptor that an ev_io watches, an ev_timer stands
 * for its next timeout, and each runs MHD_run, which never blocks. */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "arena.h"
#include "listen.h"
#include "log.h"
#include "metrics_http.h"
#include "metrics_text.h"
#include "stats_report.h"

#define SCRAPE_ARENA_CHUNK (16 * 1024)

#define HTTP_OF(w, member) \
    ((kv_metrics_http *)(void *)((char *)(w) - offsetof(kv_metrics_http, member)))

/* libmicrohttpd's complaints, one log line each, at debug: nearly all are
 * about a client that broke off or broke the protocol, which anyone who
 * can connect could make fill the log. */
static void log_mhd(void *arg, const char *fmt, va_list ap)
{
    char line[512];

    (void)arg;
    if (!kv_log_on(KV_LOG_DEBUG))
        return;
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\r\n")] = 0;
    kv_log(KV_LOG_DEBUG, "metrics listener: %s", line);
}

/* Answers CONN with STATUS and BODY (LEN bytes, malloc'd: taken), of TYPE.
 * ALLOW: the methods to name in an Allow header (405), or NULL. */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, char *body,
                             size_t len, const char *type, const char *allow)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, body, free);

    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* A short plain-text answer. */
static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status,
                                  const char *text, const char *allow)
{
    char *body = strdup(text);

    return body ? reply(conn, status, body, strlen(body), "text/plain; charset=utf-8", allow)
                : MHD_NO;
}

int kv_metrics_scrape(const kv_service_env *env, kv_buf *out)
{
    Kvstore__V1__StatsResponse r = KVSTORE__V1__STATS_RESPONSE__INIT;
    kv_arena arena;

    kv_arena_init(&arena, SCRAPE_ARENA_CHUNK);
    int rc = kv_stats_report(env, &arena.pb, &r) < 0 ? -1
           : kv_metrics_render(&r, env->stats->latency, KV_STATS_MAX_METHODS, out);
    kv_arena_free(&arena);
    if (rc < 0)
        kv_buf_free(out);
    return rc;
}

/* GET /metrics. */
static enum MHD_Result reply_metrics(kv_metrics_http *m, struct MHD_Connection *conn)
{
    kv_buf out = KV_BUF_INIT;

    if (kv_metrics_scrape(m->env, &out) < 0)
        return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
    /* Never consumed, so the text starts at the buffer's own start: the
     * response takes the buffer and frees it. */
    return reply(conn, MHD_HTTP_OK, (char *)out.data, kv_buf_len(&out),
                 KV_METRICS_CONTENT_TYPE, NULL);
}

/* GET /health: 200 "ok" while serving; a cluster member that knows no
 * leader cannot serve writes or linearizable reads: 503 and why. */
static enum MHD_Result reply_health(kv_metrics_http *m, struct MHD_Connection *conn)
{
    Kvstore__V1__StatsResponse r = KVSTORE__V1__STATS_RESPONSE__INIT;
    char why[160];
    kv_arena arena;

    kv_arena_init(&arena, SCRAPE_ARENA_CHUNK);
    int rc = kv_stats_report(m->env, &arena.pb, &r);
    if (rc == 0 && r.cluster_node_id && !r.cluster_leader_id)
        snprintf(why, sizeof why, "no leader known to node %llu (%s, term %llu)\n",
                 (unsigned long long)r.cluster_node_id,
                 r.cluster_role && *r.cluster_role ? r.cluster_role : "no role",
                 (unsigned long long)r.cluster_term);
    kv_arena_free(&arena);
    if (rc < 0)
        return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
    if (r.cluster_node_id && !r.cluster_leader_id)
        return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, why, NULL);
    return reply_text(conn, MHD_HTTP_OK, "ok\n", NULL);
}

/* Every request: GET or HEAD (libmicrohttpd leaves HEAD's body out) of
 * /metrics or /health; 405 for other methods, 404 for other paths. An
 * answer queued at once: a body sent with the request is not read. */
static enum MHD_Result answer(void *arg, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **req)
{
    kv_metrics_http *m = arg;

    (void)version;
    (void)upload;
    (void)upload_len;
    (void)req;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n", "GET, HEAD");
    if (strcmp(url, "/metrics") == 0)
        return reply_metrics(m, conn);
    if (strcmp(url, "/health") == 0)
        return reply_health(m, conn);
    return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found: /metrics and /health are here\n",
                      NULL);
}

static unsigned connections(const kv_metrics_http *m)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

    return info ? info->num_connections : 0;
}

/* One turn of libmicrohttpd (accept, read, answer, write, time out),
 * then its timer for the next timeout it asks for (0: work left now).
 * libmicrohttpd 0.9.75 frees closed connections at the end of MHD_run but
 * puts its listening socket back in epoll (taken out at the connection
 * limit) only at the start of the next, and its timeout does not say so:
 * after 16 held connections closed, nothing woke it and /metrics hung. So
 * while a run closes connections, it runs once more. */
static void turn(kv_metrics_http *m)
{
    MHD_UNSIGNED_LONG_LONG ms;
    unsigned before = connections(m);

    for (int runs = 0; runs < 8; runs++) {
        MHD_run(m->daemon);
        unsigned now = connections(m);
        if (now >= before)
            break;
        before = now;
    }
    ev_timer_stop(m->loop, &m->timer_w);
    if (MHD_get_timeout(m->daemon, &ms) == MHD_YES) {
        ev_timer_set(&m->timer_w, (double)ms / 1000.0, 0.);
        ev_timer_start(m->loop, &m->timer_w);
    }
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    turn(HTTP_OF(w, io_w));
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    turn(HTTP_OF(w, timer_w));
}

/* The whole of the file at PATH, NUL-terminated, for libmicrohttpd's
 * PEM-in-memory options. Returns it (the caller frees it), or NULL with a
 * one-line reason naming FLAG and PATH in ERR. */
static char *read_pem(const char *flag, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t len = 0, cap = 0;

    if (!f) {
        snprintf(err, errlen, "%s: cannot read %s: %s", flag, path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (cap - len < 4096) {
            char *more = cap < (1u << 20) ? realloc(text, cap + 8192) : NULL;
            if (!more) {
                snprintf(err, errlen, "%s: %s is larger than 1M or memory is out", flag, path);
                free(text);
                fclose(f);
                return NULL;
            }
            text = more;
            cap += 8192;
        }
        size_t n = fread(text + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    text[len] = 0;
    if (ferror(f)) {
        snprintf(err, errlen, "%s: cannot read %s: %s", flag, path, strerror(errno));
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

/* A daemon serving M's figures on FD, over HTTPS with TLS's files when
 * TLS is not NULL. Returns it, or NULL with the reason in ERR. */
static struct MHD_Daemon *daemon_start(kv_metrics_http *m, int fd, const kv_tls_config *tls,
                                       char *err, size_t errlen)
{
    struct MHD_Daemon *d;
    char *cert = NULL, *key = NULL;

    if (tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, errlen, "--metrics-listen: this libmicrohttpd has no TLS; "
                     "give --metrics-tls=no for plain HTTP");
            return NULL;
        }
        if (!(cert = read_pem("--tls-cert", tls->cert, err, errlen))
            || !(key = read_pem("--tls-key", tls->key, err, errlen))) {
            free(cert);
            return NULL;
        }
    }
    /* libmicrohttpd hands the PEM text to GnuTLS at the start, which
     * copies it: the text is freed once the daemon runs. Plain HTTP ends
     * the options before the certificate's. GnuTLS's NORMAL still allows
     * TLS 1.0 and 1.1: the versions are tls.c's, 1.2 and 1.3 only. */
    d = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0), 0, NULL, NULL, answer, m,
        MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)KV_METRICS_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)KV_METRICS_TIMEOUT_SECONDS,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)KV_METRICS_REQUEST_BYTES,
        tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert,
        MHD_OPTION_HTTPS_MEM_KEY, key,
        MHD_OPTION_HTTPS_PRIORITIES, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
        MHD_OPTION_END);
    if (key)
        explicit_bzero(key, strlen(key));
    free(cert);
    free(key);
    if (!d)
        snprintf(err, errlen, "--metrics-listen %s: libmicrohttpd cannot serve it%s", m->address,
                 tls ? " (over TLS with --tls-cert and --tls-key)" : "");
    return d;
}

/* Watches D's epoll descriptor from M's loop, and runs it once. */
static void daemon_watch(kv_metrics_http *m, struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);

    m->daemon = d;
    ev_io_init(&m->io_w, io_cb, info->epoll_fd, EV_READ);
    ev_io_start(m->loop, &m->io_w);
    ev_init(&m->timer_w, timer_cb);
    turn(m);
}

int kv_metrics_http_start(kv_metrics_http *m, struct ev_loop *loop, const char *listen,
                          const kv_service_env *env, const kv_tls_config *tls,
                          char *err, size_t errlen)
{
    char why[256];

    memset(m, 0, sizeof *m);
    /* Our own socket, so --metrics-listen reads like --listen and fails
     * the same way. */
    int fd = kv_listen(listen, why, sizeof why);
    if (fd < 0) {
        snprintf(err, errlen, "--metrics-listen: %s", why);
        return -1;
    }
    kv_listen_address(fd, m->address, sizeof m->address);
    m->loop = loop;
    m->env = env;
    m->fd = fd;
    m->https = tls != NULL;
    /* On failure FD is left alone: whether libmicrohttpd closed it on the
     * way out varies, and the process stops at this error anyway. */
    struct MHD_Daemon *d = daemon_start(m, fd, tls, err, errlen);
    if (!d)
        return -1;
    daemon_watch(m, d);
    return 0;
}

int kv_metrics_http_reload(kv_metrics_http *m, const kv_tls_config *tls,
                           char *err, size_t errlen)
{
    if (!m->daemon)
        return 0;       /* stopped (the server is stopping) */
    /* The new daemon listens on a duplicate of the socket, so that the
     * old one can let go of its own (quiesce) and stop without closing
     * what the new one serves; no connection is refused meanwhile. */
    int fd = fcntl(m->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "--metrics-listen: %s", strerror(errno));
        return -1;
    }
    struct MHD_Daemon *d = daemon_start(m, fd, tls, err, errlen);
    if (!d) {
        close(fd);
        return -1;
    }
    ev_io_stop(m->loop, &m->io_w);
    ev_timer_stop(m->loop, &m->timer_w);
    MHD_socket old = MHD_quiesce_daemon(m->daemon);
    MHD_stop_daemon(m->daemon);
    if (old != MHD_INVALID_SOCKET)
        close(old);
    m->fd = fd;
    daemon_watch(m, d);
    return 0;
}

void kv_metrics_http_stop(kv_metrics_http *m)
{
    if (!m->daemon)
        return;
    ev_io_stop(m->loop, &m->io_w);
    ev_timer_stop(m->loop, &m->timer_w);
    MHD_stop_daemon(m->daemon);     /* closes the listening socket too */
    m->daemon = NULL;
    m->https = 0;
}
