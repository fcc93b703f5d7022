/* metrics_http.h - the --metrics-listen listener: GET /metrics (the text
 * of metrics_text.h) and GET /health, over HTTP or (with --tls-cert)
 * HTTPS, served by libmicrohttpd from the server's own libev loop, on its
 * one thread. Nothing here runs on the request path: the figures are read
 * when a scrape comes. */
#ifndef KV_METRICS_HTTP_H
#define KV_METRICS_HTTP_H

#include <stddef.h>
#include <ev.h>
#include "buf.h"
#include "endpoint.h"
#include "service.h"
#include "tls.h"

struct MHD_Daemon;

/* At most this many HTTP connections at once (a scraper or two, a health
 * checker); more are refused by libmicrohttpd. */
#define KV_METRICS_MAX_CONNECTIONS 16
/* Seconds an HTTP connection may stay idle before it is closed. */
#define KV_METRICS_TIMEOUT_SECONDS 10
/* Bytes a connection's request (line and headers) may take. */
#define KV_METRICS_REQUEST_BYTES (32 * 1024)

typedef struct kv_metrics_http {
    struct MHD_Daemon *daemon;  /* private; NULL: not serving */
    struct ev_loop *loop;       /* borrowed */
    ev_io io_w;                 /* private: libmicrohttpd's epoll descriptor */
    ev_timer timer_w;           /* private: its next timeout */
    const kv_service_env *env;  /* borrowed: whose figures are served */
    int fd;                     /* private: the listening socket (the
                                   daemon's to close) */
    int https;                  /* read-only: serving HTTPS */
    char address[KV_ENDPOINT_HOST_MAX + 16];
                                /* read-only: HOST:PORT as bound */
} kv_metrics_http;

/* Listens on LISTEN ("HOST:PORT"; port 0 picks a free one) and serves
 * ENV's figures from LOOP until kv_metrics_http_stop; M->address says
 * where. With TLS (its cert and key; NULL: plain HTTP) it serves HTTPS
 * with that certificate and key (libmicrohttpd's GnuTLS; no client
 * certificate is asked for, even with TLS->client_ca). ENV and LOOP must
 * outlive the listener. Returns 0, or -1 with a one-line reason in ERR (M
 * is then not serving; stopping it is a no-op). */
int kv_metrics_http_start(kv_metrics_http *m, struct ev_loop *loop, const char *listen,
                          const kv_service_env *env, const kv_tls_config *tls,
                          char *err, size_t errlen);

/* HTTPS: reads TLS's files again and serves them from now on, on the same
 * socket. libmicrohttpd cannot swap a daemon's certificate, so a new
 * daemon takes over the socket and the old one stops, cutting the scrapes
 * in flight (a scraper retries). Returns 0, or -1 with a one-line reason
 * in ERR when the files do not load (the old certificate stays). */
int kv_metrics_http_reload(kv_metrics_http *m, const kv_tls_config *tls,
                           char *err, size_t errlen);

/* Fills OUT (empty) with what GET /metrics answers: ENV's figures, filled
 * by kv_stats_report as for the Stats rpc, rendered by kv_metrics_render.
 * Returns 0 (the caller frees OUT), or -1 when memory is out (OUT freed). */
int kv_metrics_scrape(const kv_service_env *env, kv_buf *out);

/* Closes the listener and its connections; a no-op when not serving. */
void kv_metrics_http_stop(kv_metrics_http *m);

#endif
