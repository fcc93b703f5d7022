/* server.h - the kvstored process core: the listening sockets, the libev
 * loop, signals and orderly shutdown, and the list of connections. The
 * per-connection byte handling lives in conn.c, the protocol in session.c. */
#ifndef KV_SERVER_H
#define KV_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <ev.h>
#include "arena.h"
#include "authguard.h"
#include "conn.h"
#include "endpoint.h"
#include "engine.h"
#include "metrics_http.h"
#include "service.h"
#include "slowlog.h"
#include "stats.h"
#include "tls.h"
#include "watch.h"

/* What main() hands the server; see kvstored --help. */
typedef struct kv_server_config {
    const char *listen;         /* "HOST:PORT"; port 0 picks a free port */
    uint32_t max_frame_bytes;   /* largest accepted frame body */
    size_t max_clients;         /* connections served at once */
    double idle_timeout;        /* seconds without progress before a close; 0 = never */
    size_t input_budget;        /* bytes of input buffers across all connections,
                                   above each one's small floor (session.c) */
    size_t output_budget;       /* bytes of unread answers across all connections */
    kv_limits limits;           /* request limits enforced by the service */
    const kv_auth *auth;        /* token every connection must present, or NULL */
    size_t watch_history;       /* events kept for watches from the past */
    const char *metrics_listen; /* HOST:PORT of /metrics and /health, or NULL */
    uint64_t slowlog_us;        /* requests slower are logged (slowlog.h) */
    size_t slowlog_max_len;     /* entries the slow log keeps; 0: off */
    const char *dir;            /* the engine's --dir, for Snapshot's
                                   temporary files; NULL: in RAM */
    kv_tls_config tls;          /* with tls.cert, --listen speaks TLS only */
    int tls_only;               /* every listener speaks TLS (no plain_listen;
                                   metrics_tls): checked by config.c */
    const char *plain_listen;   /* "HOST:PORT" on loopback, plaintext beside
                                   TLS's --listen, or NULL */
    int metrics_tls;            /* with tls.cert, metrics_listen speaks HTTPS */
} kv_server_config;

#define KV_DEFAULT_MAX_FRAME_BYTES (16u * 1024 * 1024)
#define KV_DEFAULT_MAX_CLIENTS 10000
#define KV_DEFAULT_IDLE_TIMEOUT 300.0
#define KV_DEFAULT_INPUT_BUDGET ((size_t)1 << 30)
#define KV_DEFAULT_OUTPUT_BUDGET ((size_t)1 << 30)
#define KV_DEFAULT_MAX_KEY_BYTES (64u * 1024)
#define KV_DEFAULT_MAX_VALUE_BYTES (8u * 1024 * 1024)

/* Listeners: --listen, and --plain-listen beside it. */
#define KV_SERVER_LISTENERS 2

/* One listening socket and its accept watcher. */
typedef struct kv_listener {
    ev_io accept_w;             /* private, first: accept_cb casts back */
    int fd;                     /* -1: closed (or never opened) */
    int plain;                  /* its connections are plaintext even when
                                   the server has TLS (--plain-listen) */
    struct kv_server *server;   /* borrowed: the owner */
    char address[KV_ENDPOINT_HOST_MAX + 16];
                                /* read-only: HOST:PORT as bound (port 0
                                   becomes the real port) */
} kv_listener;

typedef struct kv_server {
    struct ev_loop *loop;
    kv_listener listeners[KV_SERVER_LISTENERS];
                                /* [0]: --listen (TLS with --tls-cert);
                                   [1]: --plain-listen, when given */
    size_t n_listeners;         /* read-only: 1 or 2 */
    ev_timer accept_pause_w;    /* private: retry accept after EMFILE */
    int accept_paused;          /* private: pauses since accept last worked
                                   (logged once per episode) */
    ev_signal sigint_w, sigterm_w, sighup_w;
    ev_timer drain_w;           /* private: bounds the shutdown drain */
    ev_timer leave_w;           /* private: bounds a leader's hand-over on SIGTERM */
    ev_prepare flush_w;         /* private: end of each loop turn: engine
                                   flush, then every pending answer written */
    ev_timer sync_w;            /* private: the engine's deferred sync
                                   (--sync batch), armed after a flush */
    ev_timer shed_w;            /* private: while stats.output_bytes is over the
                                   output budget, closes the connections
                                   that stopped reading (see shed_cb) */
    ev_timer expire_w;          /* private: the active expiry's next cycle */
    kv_arena expire_arena;      /* private: a cycle's memory */
    uint64_t expired_keys;      /* keys removed by expiry (Stats) */
    ev_timer trim_check_w;      /* private: once a second, whether the engine
                                   gave back enough memory to trim the heap */
    ev_idle trim_w;             /* private: the trim, when the loop is idle */
    uint64_t trim_peak;         /* private: engine memory at its highest since
                                   the last trim */
    int must_flush;             /* private: the engine has writes of no
                                   connection's to flush this turn (expiry) */
    struct kv_conn *pending;    /* connections with answers to write this turn */
    const char *listen_addresses[KV_SERVER_LISTENERS];
                                /* private: env.listen_addresses */
    kv_service_clients clients; /* private: env.clients (clients.c) */
    ev_timer ops_w;             /* private: once a second, stats.ops_last_second */
    uint64_t ops_mark;          /* private: stats.requests at the last tick */
    kv_service_env env;         /* what every connection's service shares;
                                   env.engine is borrowed from main */
    kv_tls *tls;                /* private: --tls-cert's context, or NULL */
    kv_conn_ctx conn_ctx;       /* what every connection sees of the server */
    kv_arena arena;             /* request memory, reset after each batch */
    kv_server_config cfg;
    struct kv_conn *conns;      /* all open connections, doubly linked */
    kv_stats stats;             /* counters for the Stats rpc, and the
                                   buffer totals that the budgets bound */
    kv_auth_guard auth_guard;   /* failed Auth calls per peer address */
    kv_slowlog slowlog;         /* requests slower than cfg.slowlog_us */
    kv_metrics_http metrics;    /* --metrics-listen's /metrics and /health */
    int stopping;               /* a signal asked us to exit */
    struct kv_cluster *cluster; /* v3: a cluster member's (kv_server_join);
                                   NULL: a single node */
    kv_service_router router;   /* private: the cluster's, for the service */
    const char *failed;         /* read-only: why the server stopped on its
                                   own (the cluster's reason, static); NULL
                                   after a signal */
} kv_server;

/* Loads cfg->tls's files when there are some, binds and listens on
 * cfg->listen (TLS only, then) and on cfg->plain_listen (plaintext, on a
 * loopback address only), prints "listening on HOST:PORT" to stdout;
 * with cfg->metrics_listen, serves /metrics there too (HTTPS with the
 * same certificate when cfg->metrics_tls). "metrics on HOST:PORT" and
 * "plaintext on HOST:PORT" come before "listening on". Returns 0, or -1
 * with a one-line reason in ERR. */
int kv_server_init(kv_server *s, const kv_server_config *cfg, kv_engine *engine,
                   char *err, size_t errlen);

/* Makes S a cluster member: CLUSTER (started on s->loop with s->env,
 * outlives S's loop) takes the writes, the linearizable reads and the
 * expiry, and is run at the end of every loop turn. */
void kv_server_join(kv_server *s, struct kv_cluster *cluster);

/* The client address S listens on (--listen), as bound, into BUF. */
void kv_server_address(const kv_server *s, char *buf, size_t len);

/* Runs the loop until SIGINT/SIGTERM and the drain that follows. */
void kv_server_run(kv_server *s);

/* Closes every remaining connection and the listening sockets. Does not
 * close the engine (main owns it). */
void kv_server_free(kv_server *s);

#endif
