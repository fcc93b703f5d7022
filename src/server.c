/* server.c - the listening sockets (--listen, and --plain-listen beside
 * it), accepting, signals and the orderly shutdown of kvstored. Owns the
 * loop, the listeners, the connection list and the request arena; borrows
 * the engine from main. */
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include "clients.h"
#include "conn.h"
#include "dispatch.h"
#include "endpoint.h"
#include "listen.h"
#include "log.h"
#include "cluster.h"
#include "expire.h"
#include "server.h"
#include "tls.h"
#include "backup.h"

/* How long the shutdown waits for answers to reach slow clients. */
#define DRAIN_SECONDS 5.0
/* How long a leader stopping on SIGTERM waits for its hand-over. */
#define LEAVE_SECONDS 3.0
/* Out of descriptors: how long accepting pauses before it tries again. */
#define ACCEPT_PAUSE_SECONDS 0.1
/* Over --max-output-bytes: how often the stalled readers are looked for,
 * and how long a connection must have read nothing to be one. */
#define SHED_INTERVAL 0.25
#define SHED_STALL_SECONDS 1.0
#define ARENA_CHUNK (256 * 1024)

/* Prints the addresses actually bound (port 0 becomes the real port):
 * the plaintext one first, since tests and scripts wait for "listening
 * on", which ends the start. */
static void announce(const kv_server *s)
{
    if (s->n_listeners > 1)
        printf("plaintext on %s\n", s->listeners[1].address);
    printf("listening on %s\n", s->listeners[0].address);
    fflush(stdout);
}

/* The TLS context of L's new connections: the server's (swapped by a
 * SIGHUP reload), or NULL for plaintext. */
static kv_tls *listener_tls(const kv_listener *l)
{
    return l->plain ? NULL : l->server->tls;
}

/* Over --max-clients: one RESOURCE_EXHAUSTED frame, best effort, and close.
 * A TLS listener L only closes: a frame before the handshake would be
 * garbage to a TLS client, and a handshake is what the limit saves. */
static void refuse(kv_server *s, const kv_listener *l, int fd)
{
    kv_buf out = KV_BUF_INIT;
    char msg[96];

    if (listener_tls(l)) {
        close(fd);
        s->stats.conns_rejected++;
        return;
    }
    snprintf(msg, sizeof msg, "too many clients (the server's limit is %zu)", s->cfg.max_clients);
    if (kv_dispatch_error(&out, 0, KV_RESOURCE_EXHAUSTED, msg, NULL) == 0) {
        ssize_t n = send(fd, kv_buf_head(&out), kv_buf_len(&out), MSG_NOSIGNAL);
        (void)n;
    }
    kv_buf_free(&out);
    close(fd);
    s->stats.conns_rejected++;
}

/* The server that holds FIELD at PTR: every watcher of the loop is a
 * member of the kv_server. */
#define SERVER_OF(ptr, field) ((kv_server *)(void *)((char *)(ptr) - offsetof(kv_server, field)))

/* SIGHUP with --tls-cert: reads the certificate and key again (renewed,
 * say). The connections open keep the context they began with (each SSL
 * holds a reference to its SSL_CTX), so none is dropped; new ones get the
 * new one. Files that do not load leave the old context in force. */
static void reload_tls(kv_server *s)
{
    char err[512];
    kv_tls *fresh = kv_tls_new(&s->cfg.tls, err, sizeof err);

    if (!fresh) {
        kv_log(KV_LOG_ERROR, "SIGHUP: %s; still serving the certificate loaded before", err);
        return;
    }
    kv_tls_free(s->tls);
    s->tls = fresh;
    kv_log(KV_LOG_INFO, "SIGHUP: TLS certificate %s and key %s reloaded%s%s", s->cfg.tls.cert,
           s->cfg.tls.key, s->cfg.tls.client_ca ? ", client CA " : "",
           s->cfg.tls.client_ca ? s->cfg.tls.client_ca : "");
    if (!s->metrics.https)
        return;
    if (kv_metrics_http_reload(&s->metrics, &s->cfg.tls, err, sizeof err) < 0)
        kv_log(KV_LOG_ERROR, "SIGHUP: %s; the metrics listener still serves the certificate "
               "loaded before", err);
    else
        kv_log(KV_LOG_INFO, "SIGHUP: the metrics listener serves the reloaded certificate");
}

/* SIGHUP: reloads the TLS files (reload_tls) and reopens the --log-file
 * (logrotate renames it, then signals), so lines go to a file by that
 * name again. With neither there is nothing to reload, and the default
 * action would kill kvstored without a drain or a sync, so it is ignored,
 * as Redis does. */
static void sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    kv_server *s = SERVER_OF(w, sighup_w);
    char err[512];

    (void)loop;
    (void)revents;
    if (s->tls)
        reload_tls(s);
    if (!kv_log_path()) {
        if (!s->tls)
            kv_log(KV_LOG_INFO, "SIGHUP ignored: nothing to reload");
    } else if (kv_log_reopen(err, sizeof err) < 0) {
        kv_log(KV_LOG_ERROR, "SIGHUP: %s; still writing to the file opened before", err);
    } else {
        kv_log(KV_LOG_INFO, "SIGHUP: log file %s reopened", kv_log_path());
    }
}

/* Starts or stops accepting on every open listener. */
static void listeners_watch(kv_server *s, int on)
{
    for (size_t i = 0; i < s->n_listeners; i++) {
        if (on && s->listeners[i].fd >= 0)
            ev_io_start(s->loop, &s->listeners[i].accept_w);
        else
            ev_io_stop(s->loop, &s->listeners[i].accept_w);
    }
}

/* Closes every listener (new connections are refused by the kernel). */
static void listeners_close(kv_server *s)
{
    for (size_t i = 0; i < s->n_listeners; i++) {
        ev_io_stop(s->loop, &s->listeners[i].accept_w);
        if (s->listeners[i].fd >= 0)
            close(s->listeners[i].fd);
        s->listeners[i].fd = -1;
    }
}

/* Either listener's: connections take its TLS (or none); --max-clients
 * counts them all together. */
static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    kv_listener *l = (kv_listener *)w;
    kv_server *s = l->server;
    int one = 1;

    (void)revents;
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof ss;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: pause accepting rather than spin; the
                 * connections already open are served meanwhile. The timer
                 * is set afresh each time: a one-shot libev timer that has
                 * fired keeps no interval to start again with. */
                if (s->accept_paused++ == 0)
                    kv_log(KV_LOG_WARN, "accept: %s; pausing accepts until descriptors "
                           "free up (retrying every %.0f ms)", strerror(errno),
                           ACCEPT_PAUSE_SECONDS * 1000);
                listeners_watch(s, 0);
                ev_timer_set(&s->accept_pause_w, ACCEPT_PAUSE_SECONDS, 0.);
                ev_timer_start(loop, &s->accept_pause_w);
            }
            return;
        }
        if (s->accept_paused) {
            kv_log(KV_LOG_INFO, "accepting again after %d pauses", s->accept_paused);
            s->accept_paused = 0;
        }
        if (s->stats.conns_current >= s->cfg.max_clients) {
            if (kv_log_on(KV_LOG_DEBUG)) {
                kv_peer who;
                kv_peer_from_sockaddr(&who, &ss, sslen);
                kv_log(KV_LOG_DEBUG, "refused a connection from %s: --max-clients %zu reached",
                       who.text, s->cfg.max_clients);
            }
            refuse(s, l, fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        kv_peer peer;
        kv_peer_from_sockaddr(&peer, &ss, sslen);
        kv_conn *c = kv_conn_new(&s->conn_ctx, listener_tls(l), fd, &peer);
        if (!c)
            continue;
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        s->stats.conns_current++;
        s->stats.conns_total++;
    }
}

static void accept_resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    kv_server *s = SERVER_OF(w, accept_pause_w);

    (void)loop;
    (void)revents;
    if (!s->stopping)
        listeners_watch(s, 1);
}

#define SERVER_OF_CTX(ctx) SERVER_OF(ctx, conn_ctx)

/* kv_conn_ctx.schedule: C's answers go out at the end of this turn. */
static void schedule(kv_conn_ctx *ctx, kv_conn *c)
{
    kv_server *s = SERVER_OF_CTX(ctx);

    if (c->pending)
        return;
    c->pending = 1;
    c->pprev = NULL;
    c->pnext = s->pending;
    if (s->pending)
        s->pending->pprev = c;
    s->pending = c;
}

static void unschedule(kv_server *s, kv_conn *c)
{
    if (!c->pending)
        return;
    if (c->pprev)
        c->pprev->pnext = c->pnext;
    else
        s->pending = c->pnext;
    if (c->pnext)
        c->pnext->pprev = c->pprev;
    c->pending = 0;
}

/* Arms the sync timer when the engine has committed writes waiting for a
 * deferred sync (--sync batch) and the timer is not already running. */
static void arm_sync(kv_server *s)
{
    kv_engine *e = s->env.engine;

    if (!e->ops->sync_delay || ev_is_active(&s->sync_w))
        return;
    double delay = e->ops->sync_delay(e);
    if (delay < 0)
        return;
    ev_timer_set(&s->sync_w, delay, 0.);
    ev_timer_start(s->loop, &s->sync_w);
}

/* Runs the engine's FLUSH or SYNC (OP), counting the syncs it made
 * (engine.h, kv_engine.syncs) and the time of the calls that made one in
 * stats.syncs and stats.sync_seconds. */
static kv_status timed_sync(kv_server *s, kv_status (*op)(kv_engine *))
{
    kv_engine *e = s->env.engine;
    uint64_t before = e->syncs;
    double start = ev_time();
    kv_status st = op(e);

    if (e->syncs != before) {
        s->stats.syncs += e->syncs - before;
        s->stats.sync_seconds += ev_time() - start;
    }
    return st;
}

static void sync_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    kv_server *s = SERVER_OF(w, sync_w);
    kv_engine *e = s->env.engine;

    (void)loop;
    (void)revents;
    if (e->ops->sync_delay(e) >= 0 && timed_sync(s, e->ops->sync) != KV_OK) {
        const char *why = kv_engine_last_error(e);
        kv_log(KV_LOG_ERROR, "engine sync failed%s%s", why ? ": " : "", why ? why : "");
    }
    arm_sync(s);
}

/* Arms the active expiry for the engine's earliest deadline (at once when
 * it has come), unless it is armed for as soon already. */
static void arm_expiry(kv_server *s)
{
    kv_engine *e = s->env.engine;
    uint64_t next = kv_engine_next_deadline(e);

    if (!next) {
        ev_timer_stop(s->loop, &s->expire_w);
        return;
    }
    uint64_t now = kv_engine_now_ms(e);
    double delay = next > now ? (double)(next - now) / 1000.0 : 0.;
    if (ev_is_active(&s->expire_w) && ev_timer_remaining(s->loop, &s->expire_w) <= delay)
        return;
    ev_timer_stop(s->loop, &s->expire_w);
    ev_timer_set(&s->expire_w, delay, 0.);
    ev_timer_start(s->loop, &s->expire_w);
}

/* One cycle of the active expiry (expire.h): at most KV_EXPIRE_BATCH keys,
 * so that no loop turn stalls for a mass expiry; the next cycle is armed
 * for the next turn while expired keys remain. */
static void expire_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    kv_server *s = SERVER_OF(w, expire_w);
    kv_op op;
    size_t removed;
    int more;

    (void)loop;
    (void)revents;
    if (s->cluster) {
        /* The leader decides and replicates (cluster.c); others wait. */
        double next = kv_cluster_expire(s->cluster);
        if (next < 0) {
            arm_expiry(s);
        } else {
            ev_timer_set(&s->expire_w, next, 0.);
            ev_timer_start(s->loop, &s->expire_w);
        }
        return;
    }
    kv_op_init(&op, &s->env, &s->expire_arena.pb);
    kv_status st = kv_expire_cycle(&op, KV_EXPIRE_BATCH, &removed, &more);
    kv_arena_reset(&s->expire_arena);
    if (st != KV_OK)
        kv_log(KV_LOG_ERROR, "expiry: removing expired keys failed: %s; retrying in 1 s",
               op.why ? op.why : "engine error");
    if (removed)
        s->must_flush = 1;
    if (st != KV_OK || (!removed && !more && kv_expire_any_due(&op))) {
        /* A failure, or a deadline that has come without a key to remove
         * (an engine out of step with its index): not again at once. */
        ev_timer_set(&s->expire_w, 1., 0.);
        ev_timer_start(s->loop, &s->expire_w);
    } else if (more) {
        ev_timer_set(&s->expire_w, 0., 0.);
        ev_timer_start(s->loop, &s->expire_w);
    } else {
        arm_expiry(s);
    }
}

/* Heap memory that the engine freed (a mass expiry, a large ClearRange)
 * stays with the process: glibc gives back only the top of its heap, and
 * the freed items lie below live ones (1,000,000 expired keys: 136 MiB of
 * RSS, 80 after they were removed, 3 after malloc_trim). So once a second
 * the engine's memory is compared with its peak since the last trim, and
 * when at least TRIM_MIN_BYTES and a quarter of it went, malloc_trim runs
 * from an idle watcher: when no connection has anything to do. It walks
 * the whole heap (17 ms for 1,000,000 free chunks), so it runs only then,
 * and only after such a drop. */
#define TRIM_MIN_BYTES ((uint64_t)16 << 20)

static void trim_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    kv_server *s = SERVER_OF(w, trim_w);
    kv_engine_stats es;

    (void)revents;
    ev_idle_stop(loop, w);
    malloc_trim(0);
    kv_engine_stats_get(s->env.engine, &es);
    s->trim_peak = es.memory_bytes;
}

static void trim_check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    kv_server *s = SERVER_OF(w, trim_check_w);
    kv_engine_stats es;

    (void)revents;
    kv_engine_stats_get(s->env.engine, &es);
    if (es.memory_bytes > s->trim_peak)
        s->trim_peak = es.memory_bytes;
    uint64_t gone = s->trim_peak - es.memory_bytes;
    if (gone >= TRIM_MIN_BYTES && gone >= s->trim_peak / 4 && !ev_is_active(&s->trim_w))
        ev_idle_start(loop, &s->trim_w);
}

/* The end of every loop turn, as Redis's beforeSleep: first the engine
 * makes this turn's writes as durable as its sync mode promises (one
 * flush for all connections: group commit), then the answers go out, one
 * write per connection. An answer is never sent for a write the engine
 * failed to flush: those connections are closed instead. */
static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    kv_server *s = SERVER_OF(w, flush_w);
    kv_engine *e = s->env.engine;
    int failed = 0;

    (void)loop;
    (void)revents;
    if (s->cluster) {
        kv_cluster_turn(s->cluster);
        /* Deadlines arrive with applied entries, not only with this
         * node's clients: a follower that becomes leader must find them. */
        if (!ev_is_active(&s->expire_w))
            arm_expiry(s);
    }
    if (kv_watch_catching_up(s->env.watch))
        kv_watch_pump(s->env.watch);
    if (!s->pending && !s->must_flush)
        return;
    if (!ev_is_active(&s->expire_w) || s->pending)
        arm_expiry(s);
    s->must_flush = 0;
    if (e->ops->flush && timed_sync(s, e->ops->flush) != KV_OK) {
        const char *why = kv_engine_last_error(e);
        kv_log(KV_LOG_ERROR, "engine flush failed%s%s%s; closing the connections it "
               "would have answered", why ? " (" : "", why ? why : "", why ? ")" : "");
        failed = 1;
    }
    arm_sync(s);
    while (s->pending) {
        kv_conn *c = s->pending;
        unschedule(s, c);
        if (failed)
            kv_conn_close(c, KV_CLOSE_ERROR, "the engine failed to flush the writes it answers");
        else
            kv_conn_flush(c);
    }
    if (s->stats.output_bytes > s->cfg.output_budget && !ev_is_active(&s->shed_w))
        ev_timer_again(loop, &s->shed_w);
}

/* While the unread answers of all connections are over --max-output-bytes
 * (back-pressure alone did not bring them down), closes the connections
 * that have read nothing for SHED_STALL_SECONDS, largest output first,
 * until the total is under the budget. Clients that read, however slowly,
 * are left alone; Redis's client-output-buffer-limit is the model. */
static void shed_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    kv_server *s = SERVER_OF(w, shed_w);
    ev_tstamp now = ev_now(loop);

    (void)revents;
    while (s->stats.output_bytes > s->cfg.output_budget) {
        kv_conn *worst = NULL;
        for (kv_conn *c = s->conns; c; c = c->next)
            if (!kv_session_drained(&c->session) && now - c->last_sent >= SHED_STALL_SECONDS &&
                (!worst || kv_conn_output_memory(c) > kv_conn_output_memory(worst)))
                worst = c;
        if (!worst)
            return;     /* everyone is reading: look again later */
        kv_log(KV_LOG_WARN, "closing the connection from %s holding %zu bytes of answers unread "
               "for %.1f s: answers held by all connections are over --max-output-bytes %zu",
               worst->session.service.peer.where, kv_conn_output_memory(worst),
               now - worst->last_sent,
               s->cfg.output_budget);
        kv_conn_close(worst, KV_CLOSE_OUTPUT,
                      "answers unread while the server's are over --max-output-bytes");
    }
    ev_timer_stop(loop, w);
}

/* Once a second: the requests answered in the second that ended. */
static void ops_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    kv_server *s = SERVER_OF(w, ops_w);

    (void)loop;
    (void)revents;
    s->stats.ops_last_second = s->stats.requests - s->ops_mark;
    s->ops_mark = s->stats.requests;
}

/* kv_conn_ctx.closed: C is going away. */
static void conn_closed(kv_conn_ctx *ctx, kv_conn *c)
{
    kv_server *s = SERVER_OF_CTX(ctx);

    unschedule(s, c);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->stats.conns_current--;
    if (s->stopping && s->stats.conns_current == 0)
        ev_break(s->loop, EVBREAK_ALL);
}

static void drain_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* Stops accepting, lets every connection write what it owes, then leaves
 * the loop (bounded by DRAIN_SECONDS). WHY says so in the log. */
static void begin_stop(kv_server *s, const char *why)
{
    struct ev_loop *loop = s->loop;

    if (s->listeners[0].fd < 0)
        return;
    kv_log(KV_LOG_INFO, "stopping %s: no new connections; draining %llu open (up to %.0f s)",
           why, (unsigned long long)s->stats.conns_current, DRAIN_SECONDS);
    ev_timer_stop(loop, &s->leave_w);
    listeners_watch(s, 0);
    ev_timer_stop(loop, &s->accept_pause_w);
    kv_metrics_http_stop(&s->metrics);
    listeners_close(s);
    if (s->stats.conns_current == 0) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    ev_timer_start(loop, &s->drain_w);
    for (kv_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        kv_conn_drain(c);
    }
}

/* A leader stopping on SIGTERM handed its leadership over (or gave up). */
static void left(void *arg)
{
    begin_stop(arg, "on SIGTERM");
}

static void leave_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    begin_stop(w->data, "on SIGTERM (the leader transfer did not finish in time)");
}

/* SIGINT/SIGTERM: stop (begin_stop). A cluster's leader first hands its
 * leadership to another voter on SIGTERM, so that writes go on at once
 * rather than after an election. */
static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    kv_server *s = w->data;

    (void)loop;
    (void)revents;
    if (s->stopping)
        return;
    s->stopping = 1;
    /* Under systemd (Type=notify), the stop has begun; a no-op elsewhere. */
    sd_notify(0, "STOPPING=1");
    if (w->signum == SIGTERM && s->cluster
        && kv_cluster_leave(s->cluster, LEAVE_SECONDS, left, s)) {
        ev_timer_set(&s->leave_w, LEAVE_SECONDS, 0.);
        ev_timer_start(s->loop, &s->leave_w);
        return;
    }
    begin_stop(s, w->signum == SIGINT ? "on SIGINT" : "on SIGTERM");
}

/* The cluster says this node must stop (removed, or its state broken):
 * at once, without the drain, since what it would answer now may come
 * from a state that is no longer the cluster's. Answers already written
 * out stay sent; the connections are closed by kv_server_free. */
static void cluster_stopped(void *arg, const char *why)
{
    kv_server *s = arg;

    s->failed = why;
    s->stopping = 1;
    ev_break(s->loop, EVBREAK_ALL);
}

static int route(void *arg, ProtobufCService *svc, unsigned method, const ProtobufCMessage *in,
                 ProtobufCClosure closure, void *data)
{
    return kv_cluster_route(arg, svc, method, in, closure, data);
}

static void cluster_stats(void *arg, Kvstore__V1__StatsResponse *out)
{
    kv_cluster_stats(arg, out);
}

void kv_server_join(kv_server *s, struct kv_cluster *cluster)
{
    s->cluster = cluster;
    s->router = (kv_service_router){ route, cluster_stats, cluster };
    s->env.router = &s->router;
    cluster->stop = cluster_stopped;
    cluster->stop_arg = s;
}

void kv_server_address(const kv_server *s, char *buf, size_t len)
{
    snprintf(buf, len, "%s", s->listeners[0].address);
}

/* Binds L to WHERE (PLAIN: for plaintext beside TLS, so on a loopback
 * address only: config.c checks the name, this the address bound, should
 * "localhost" resolve elsewhere). Returns 0, or -1 with the reason in ERR
 * (L's fd then -1). */
static int listener_open(kv_server *s, kv_listener *l, const char *where, int plain,
                         char *err, size_t errlen)
{
    char why[512];

    l->server = s;
    l->plain = plain;
    l->fd = kv_listen(where, why, sizeof why);
    if (l->fd < 0) {
        snprintf(err, errlen, "%s%s", plain ? "--plain-listen: " : "", why);
        return -1;
    }
    if (!kv_listen_address(l->fd, l->address, sizeof l->address) && plain) {
        snprintf(err, errlen, "--plain-listen: %s is bound to %s, not a loopback address",
                 where, l->address);
        close(l->fd);
        l->fd = -1;
        return -1;
    }
    ev_io_init(&l->accept_w, accept_cb, l->fd, EV_READ);
    return 0;
}

int kv_server_init(kv_server *s, const kv_server_config *cfg, kv_engine *engine,
                   char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    s->env = (kv_service_env){ .engine = engine, .stats = &s->stats, .limits = cfg->limits,
                               .auth = cfg->auth, .guard = &s->auth_guard,
                               .expired_keys = &s->expired_keys, .slowlog = &s->slowlog };
    s->env.limits.max_frame_bytes = cfg->max_frame_bytes;
    /* First: a certificate that does not load stops the start before
     * anything else is held. */
    if (cfg->tls.cert && !(s->tls = kv_tls_new(&cfg->tls, err, errlen)))
        return -1;
    s->loop = ev_default_loop(EVFLAG_AUTO);
    if (!s->loop) {
        snprintf(err, errlen, "cannot initialise the event loop");
        return -1;
    }
    s->listeners[0].fd = s->listeners[1].fd = -1;
    if (listener_open(s, &s->listeners[0], cfg->listen, 0, err, errlen) < 0
        || (cfg->plain_listen
            && listener_open(s, &s->listeners[1], cfg->plain_listen, 1, err, errlen) < 0)) {
        if (s->listeners[0].fd >= 0)
            close(s->listeners[0].fd);
        kv_tls_free(s->tls);
        s->tls = NULL;
        return -1;
    }
    s->n_listeners = cfg->plain_listen ? 2 : 1;
    /* After the listener: a start refused for its address (the common
     * failed start) leaves nothing allocated behind. */
    if (kv_slowlog_init(&s->slowlog, cfg->slowlog_us, cfg->slowlog_max_len) < 0) {
        snprintf(err, errlen, "out of memory for the slow log");
        return -1;
    }
    for (size_t i = 0; i < s->n_listeners; i++)
        s->listen_addresses[i] = s->listeners[i].address;
    s->env.listen_addresses = s->listen_addresses;
    s->env.n_listen = s->n_listeners;
    s->clients = kv_clients_hook(s);
    s->env.clients = &s->clients;
    kv_arena_init(&s->arena, ARENA_CHUNK);
    kv_arena_init(&s->expire_arena, ARENA_CHUNK);
    kv_watch_config wc = { cfg->watch_history, KV_WATCH_HISTORY_MAX_BYTES, cfg->max_frame_bytes };
    if (!(s->env.watch = kv_watch_hub_new(&wc, engine))) {
        snprintf(err, errlen, "out of memory for a watch history of %zu events",
                 cfg->watch_history);
        return -1;
    }
    if (!(s->env.backups = kv_backup_hub_new(s->loop, engine, cfg->dir, KV_BACKUP_MAX_OPEN))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->conn_ctx = (kv_conn_ctx){
        .loop = s->loop,
        .idle_timeout = cfg->idle_timeout,
        .session = { .service = &s->env, .arena = &s->arena, .stats = &s->stats,
                     .max_frame_bytes = cfg->max_frame_bytes,
                     .input_budget = cfg->input_budget, .output_budget = cfg->output_budget },
        .schedule = schedule,
        .closed = conn_closed,
    };
    s->stats.started = ev_time();
    signal(SIGPIPE, SIG_IGN);

    listeners_watch(s, 1);
    ev_init(&s->accept_pause_w, accept_resume_cb);   /* set when accepting pauses */
    ev_timer_init(&s->drain_w, drain_timeout_cb, DRAIN_SECONDS, 0.);
    ev_init(&s->leave_w, leave_timeout_cb);
    s->leave_w.data = s;
    ev_prepare_init(&s->flush_w, flush_cb);
    ev_timer_init(&s->sync_w, sync_cb, 0., 0.);
    ev_init(&s->shed_w, shed_cb);
    ev_init(&s->expire_w, expire_cb);
    ev_idle_init(&s->trim_w, trim_cb);
    ev_timer_init(&s->trim_check_w, trim_check_cb, 1., 1.);
    ev_timer_start(s->loop, &s->trim_check_w);
    ev_timer_init(&s->ops_w, ops_cb, 1., 1.);
    ev_timer_start(s->loop, &s->ops_w);
    s->shed_w.repeat = SHED_INTERVAL;
    kv_auth_guard_init(&s->auth_guard);
    ev_prepare_start(s->loop, &s->flush_w);
    arm_expiry(s);      /* keys whose deadline passed while it was down */
    ev_signal_init(&s->sigint_w, signal_cb, SIGINT);
    ev_signal_init(&s->sigterm_w, signal_cb, SIGTERM);
    s->sigint_w.data = s->sigterm_w.data = s;
    ev_signal_start(s->loop, &s->sigint_w);
    ev_signal_start(s->loop, &s->sigterm_w);
    ev_signal_init(&s->sighup_w, sighup_cb, SIGHUP);
    ev_signal_start(s->loop, &s->sighup_w);
    if (cfg->metrics_listen) {
        int https = cfg->tls.cert && cfg->metrics_tls;
        if (kv_metrics_http_start(&s->metrics, s->loop, cfg->metrics_listen, &s->env,
                                  https ? &cfg->tls : NULL, err, errlen) < 0)
            return -1;
        s->env.metrics_address = s->metrics.address;
        printf("metrics on %s\n", s->metrics.address);
    }
    announce(s);
    return 0;
}

void kv_server_run(kv_server *s)
{
    ev_run(s->loop, 0);
}

void kv_server_free(kv_server *s)
{
    size_t left = 0;

    for (kv_conn *c = s->conns; c; c = c->next)
        left++;
    if (left)
        kv_log(KV_LOG_WARN, "drain over after %.0f s: closing %zu connections with answers "
               "still unwritten", DRAIN_SECONDS, left);
    while (s->conns)
        kv_conn_close(s->conns, KV_CLOSE_SHUTDOWN, "server stopped");
    kv_metrics_http_stop(&s->metrics);
    listeners_close(s);
    kv_watch_hub_free(s->env.watch);
    kv_backup_hub_free(s->env.backups);
    kv_slowlog_free(&s->slowlog);
    kv_arena_free(&s->arena);
    kv_arena_free(&s->expire_arena);
    kv_tls_free(s->tls);
    ev_loop_destroy(s->loop);
}
