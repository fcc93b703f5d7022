/* conn.c - the byte path of one connection: socket -> session -> socket,
 * through its TLS stream when it has one, with the socket-level limits
 * (reads bounded per turn, back-pressure, the idle timeout). Owns the
 * socket, the watchers, the TLS stream and the session; what a byte means
 * is the session's business, how TLS encrypts it tls.c's. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include "conn.h"
#include "log.h"
#include "stats.h"

/* Bytes one connection may read per loop turn, so one flooding client
 * cannot starve the others. */
#define READ_BUDGET (1024 * 1024)

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_idle_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void conn_wake(void *arg);

#define CONN_OF(ptr, member) ((kv_conn *)((char *)(ptr) - offsetof(kv_conn, member)))

kv_conn *kv_conn_new(kv_conn_ctx *ctx, kv_tls *tls, int fd, const kv_peer *peer)
{
    kv_conn *c = calloc(1, sizeof *c);

    if (!c) {
        close(fd);
        return NULL;
    }
    c->ctx = ctx;
    c->fd = fd;
    if (tls) {
        if (!(c->tls = kv_tls_conn_new(tls, fd))) {
            kv_log(KV_LOG_WARN, "out of memory for the TLS stream of a connection from %s",
                   peer->where);
            close(fd);
            free(c);
            return NULL;
        }
        c->handshaking = 1;
    }
    kv_session_init(&c->session, &ctx->session, peer);
    c->session.wake = conn_wake;
    c->session.wake_arg = c;
    ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
    ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
    ev_io_start(ctx->loop, &c->rio);
    c->last_progress = c->last_sent = c->created = c->last_request = ev_now(ctx->loop);
    c->id = ++ctx->last_id;
    if (ctx->idle_timeout > 0) {
        ev_timer_init(&c->idle, conn_idle_cb, ctx->idle_timeout, 0.);
        ev_timer_start(ctx->loop, &c->idle);
    }
    if (kv_log_on(KV_LOG_DEBUG))
        kv_log(KV_LOG_DEBUG, "accepted connection %llu from %s", (unsigned long long)c->id,
               c->session.service.peer.where);
    return c;
}

void kv_conn_close(kv_conn *c, kv_close_reason reason, const char *why)
{
    struct ev_loop *loop = c->ctx->loop;

    if (kv_log_on(KV_LOG_DEBUG))
        kv_log(KV_LOG_DEBUG, "closed connection %llu from %s (%s): %s",
               (unsigned long long)c->id, c->session.service.peer.where,
               kv_close_reason_name(reason), why ? why : "closed");
    c->ctx->session.stats->closed[reason < KV_CLOSE_REASONS ? reason : KV_CLOSE_ERROR]++;
    ev_io_stop(loop, &c->rio);
    ev_io_stop(loop, &c->wio);
    ev_timer_stop(loop, &c->idle);
    kv_tls_conn_free(c->tls);
    close(c->fd);
    kv_session_free(&c->session);
    c->ctx->closed(c->ctx, c);
    free(c);
}

/* A read or a send failed with ERR: the client reset or left, or the
 * socket broke for another reason (stats.closed). */
static kv_close_reason gone_reason(int err)
{
    return err == ECONNRESET || err == EPIPE || err == ETIMEDOUT ? KV_CLOSE_CLIENT
                                                                 : KV_CLOSE_ERROR;
}

/* How long a connection whose handshake we refused stays half-closed. */
#define LINGER_SECONDS 2.0

/* Lingering: reads and drops what the client still sends, and closes C at
 * its end or its error (rio's callback once C lingers). */
static void conn_linger_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    kv_conn *c = (kv_conn *)w;
    uint8_t drop[16384];
    ssize_t n;

    (void)loop;
    (void)revents;
    while ((n = read(c->fd, drop, sizeof drop)) > 0)
        ;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        kv_conn_close(c, KV_CLOSE_PROTOCOL, kv_tls_conn_why(c->tls));
}

/* Lingering: the time is up (idle's callback once C lingers). */
static void conn_linger_done_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    kv_conn *c = CONN_OF(w, idle);

    (void)loop;
    (void)revents;
    kv_conn_close(c, KV_CLOSE_PROTOCOL, kv_tls_conn_why(c->tls));
}

/* We refused C's handshake (a client certificate, say) and OpenSSL wrote
 * the alert saying why. Under TLS 1.3 the client's side of the handshake
 * is already over, so its first request may be on its way: closing with
 * it unread would make the kernel send a reset, which can overtake the
 * alert (the client then sees "connection reset", not the reason). So C
 * shuts its sending side, reads and drops what comes until the client
 * closes, for LINGER_SECONDS at most (as nginx's lingering close does),
 * then closes. Its watchers change callbacks, so serving C's peers pays
 * nothing for this. */
static void conn_linger(kv_conn *c)
{
    struct ev_loop *loop = c->ctx->loop;

    shutdown(c->fd, SHUT_WR);
    ev_io_stop(loop, &c->wio);
    ev_io_stop(loop, &c->rio);
    ev_set_cb(&c->rio, conn_linger_read_cb);
    ev_io_start(loop, &c->rio);
    ev_timer_stop(loop, &c->idle);
    ev_set_cb(&c->idle, conn_linger_done_cb);
    ev_timer_set(&c->idle, LINGER_SECONDS, 0.);
    ev_timer_start(loop, &c->idle);
}

/* C's TLS stream failed: closes C, as a client gone when the socket says
 * so, else as a protocol error (not TLS, a certificate refused); a
 * handshake we refused lingers first (conn_linger). Returns -1: C is not
 * to be used by the caller any more. */
static int conn_tls_failed(kv_conn *c)
{
    kv_close_reason reason = errno ? gone_reason(errno) : KV_CLOSE_PROTOCOL;

    if (reason == KV_CLOSE_PROTOCOL && c->handshaking)
        conn_linger(c);
    else
        kv_conn_close(c, reason, kv_tls_conn_why(c->tls));
    return -1;
}

/* Stops reading for good; what is buffered will not be answered. */
static void conn_stop_reading(kv_conn *c, kv_close_reason reason, const char *why)
{
    kv_session_stop(&c->session, reason, why);
    c->paused = 0;
    ev_io_stop(c->ctx->loop, &c->rio);
}

/* Stops reading while the client has too many unread answers. */
static void conn_pause(kv_conn *c)
{
    c->paused = 1;
    ev_io_stop(c->ctx->loop, &c->rio);
}

/* Reads again after a pause. The input may already hold whole requests
 * that no new byte will announce, so the read callback is run once in the
 * next loop iteration whatever the socket says. */
static void conn_resume(kv_conn *c)
{
    c->paused = 0;
    ev_io_start(c->ctx->loop, &c->rio);
    ev_feed_event(c->ctx->loop, &c->rio, EV_READ);
}

/* Writes the answers that may leave now. Stops the write watcher when
 * nothing more can go, resumes reading when a paused client has drained,
 * closes a closing connection once all is out. Returns 0, or -1 when C was
 * closed. */
static int conn_send(kv_conn *c)
{
    struct ev_loop *loop = c->ctx->loop;
    kv_session *s = &c->session;
    int blocked = 0;

    for (;;) {
        size_t ready;
        const uint8_t *p = kv_session_output(s, &ready);
        if (!p)
            break;
        ssize_t n = c->tls ? kv_tls_write(c->tls, p, ready) : send(c->fd, p, ready, MSG_NOSIGNAL);
        if (n > 0) {
            c->ctx->session.stats->net_out += (uint64_t)n;
            kv_session_output_sent(s, (size_t)n);
            c->last_progress = c->last_sent = ev_now(loop);
            continue;
        }
        if (c->tls) {
            if (n == KV_TLS_WANT_WRITE) {
                blocked = 1;
                break;
            }
            if (n == KV_TLS_WANT_READ) {
                /* The read callback writes again (no renegotiation is
                 * allowed, so hardly ever: see tls.c). */
                c->write_wants_read = 1;
                return 0;
            }
            return conn_tls_failed(c);
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            blocked = 1;
            break;
        }
        kv_conn_close(c, gone_reason(errno), "peer gone while answers were being sent");
        return -1;
    }
    if (blocked) {
        ev_io_start(loop, &c->wio);
        return 0;
    }
    if (!c->read_wants_write)
        ev_io_stop(loop, &c->wio);
    if (kv_session_drained(s)) {
        c->last_sent = ev_now(loop);
        if (s->state == KV_SESSION_CLOSING) {
            kv_conn_close(c, s->stop_class, s->stop_reason);
            return -1;
        }
    }
    /* Resume only what would not pause again at once: a resumed connection
     * runs its read callback, and one that re-paused every turn would keep
     * the loop from ever sleeping. */
    if (c->paused && kv_session_may_resume(s))
        conn_resume(c);
    return 0;
}

int kv_conn_flush(kv_conn *c)
{
    kv_session_release(&c->session);
    return conn_send(c);
}

/* Output appeared outside a read (a kept call answered): write it at the
 * end of this turn, after the engine's flush, like any other answer. */
static void conn_wake(void *arg)
{
    kv_conn *c = arg;

    c->ctx->schedule(c->ctx, c);
}

/* Answers what the session holds, pausing when the client must be; the
 * answers leave at the end of the turn (kv_conn_flush). */
static void conn_process(kv_conn *c)
{
    kv_session *s = &c->session;
    ev_tstamp now = ev_now(c->ctx->loop);   /* the loop turn's: it stays */

    if (kv_session_drained(s))
        c->last_sent = now;
    /* Requests are timed from when this loop turn began (session.h). */
    s->arrived_ns = (uint64_t)(now * 1e9);
    if (kv_session_process(s) > 0)
        c->last_progress = c->last_request = now;
    if (s->state == KV_SESSION_OPEN && kv_session_must_pause(s))
        conn_pause(c);
    else if (s->state != KV_SESSION_OPEN && ev_is_active(&c->rio))
        conn_stop_reading(c, s->stop_class, s->stop_reason);  /* the session stopped */
    /* The peer finished sending: once what came whole is answered, close. */
    if (c->peer_done && !c->paused && s->state == KV_SESSION_OPEN)
        conn_stop_reading(c, KV_CLOSE_CLIENT, "peer closed its side");
    c->ctx->schedule(c->ctx, c);
}

/* Reads what the socket has, up to READ_BUDGET, into the session: the
 * plaintext path, kept apart from the TLS one (conn_read_tls) so that
 * neither pays for the other's cases on every read. Returns 0, or -1 when
 * C was closed. */
static int conn_read_plain(kv_conn *c)
{
    size_t got = 0;

    while (got < READ_BUDGET && c->session.state == KV_SESSION_OPEN && !c->peer_done) {
        size_t room;
        uint8_t *p = kv_session_input_room(&c->session, &room);
        if (!p)
            break;      /* refused: the session answers why and stops */
        ssize_t n = read(c->fd, p, room);
        if (n > 0) {
            c->ctx->session.stats->net_in += (uint64_t)n;
            kv_session_input_commit(&c->session, (size_t)n);
            got += (size_t)n;
            if ((size_t)n < room)
                break;      /* the socket is drained */
            continue;
        }
        if (n == 0) {
            c->peer_done = 1;
            ev_io_stop(c->ctx->loop, &c->rio);
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        kv_conn_close(c, gone_reason(errno), "read failed");
        return -1;
    }
    return 0;
}

/* conn_read_plain through C's TLS stream. TLS hands out a record at a
 * time, so it reads while TLS holds more (read ahead from the socket), and
 * leaves the rest to the socket's next readiness. A read may need a write
 * first (WANT_WRITE: wio then serves it). Returns 0, or -1 when C was
 * closed. */
static int conn_read_tls(kv_conn *c)
{
    size_t got = 0;

    while (got < READ_BUDGET && c->session.state == KV_SESSION_OPEN && !c->peer_done) {
        size_t room;
        uint8_t *p = kv_session_input_room(&c->session, &room);
        if (!p)
            break;      /* refused: the session answers why and stops */
        ssize_t n = kv_tls_read(c->tls, p, room);
        if (n > 0) {
            c->ctx->session.stats->net_in += (uint64_t)n;
            kv_session_input_commit(&c->session, (size_t)n);
            got += (size_t)n;
            if (!kv_tls_pending(c->tls))
                break;      /* TLS holds nothing more; the socket says if it has */
            continue;
        }
        if (n == 0) {
            c->peer_done = 1;
            ev_io_stop(c->ctx->loop, &c->rio);
            break;
        }
        if (n == KV_TLS_WANT_READ)
            break;
        if (n == KV_TLS_WANT_WRITE) {
            c->read_wants_write = 1;
            ev_io_start(c->ctx->loop, &c->wio);
            break;
        }
        return conn_tls_failed(c);
    }
    /* Stopped by the budget with bytes already in TLS: no socket event
     * would announce them, so the callback runs again next iteration (a
     * pause stops the watcher, which drops this). */
    if (got >= READ_BUDGET && kv_tls_pending(c->tls))
        ev_feed_event(c->ctx->loop, &c->rio, EV_READ);
    return 0;
}

/* Reads, then answers: what a readable socket and a late idle check do.
 * Returns 0, or -1 when C was closed. */
static int conn_serve(kv_conn *c)
{
    if ((c->tls ? conn_read_tls(c) : conn_read_plain(c)) < 0)
        return -1;
    conn_process(c);
    return 0;
}

/* Takes C's TLS handshake a step; once it is done, serves what came with
 * it. Until then rio waits for the client's part, and wio too while ours
 * cannot be written. Done is progress: the idle timeout counts the
 * handshake like any connection that says nothing. Returns 0, or -1 when
 * C was closed. */
static int conn_handshake(kv_conn *c)
{
    struct ev_loop *loop = c->ctx->loop;
    int rc = kv_tls_handshake(c->tls);

    if (rc == KV_TLS_WANT_READ || rc == KV_TLS_WANT_WRITE) {
        if (rc == KV_TLS_WANT_WRITE)
            ev_io_start(loop, &c->wio);
        else
            ev_io_stop(loop, &c->wio);
        return 0;
    }
    if (rc < 0)
        return conn_tls_failed(c);
    c->handshaking = 0;
    ev_io_stop(loop, &c->wio);
    c->last_progress = ev_now(loop);
    if (kv_log_on(KV_LOG_DEBUG)) {
        char how[400];
        kv_log(KV_LOG_DEBUG, "connection %llu from %s: TLS handshake done (%s)",
               (unsigned long long)c->id, c->session.service.peer.where,
               kv_tls_conn_describe(c->tls, how, sizeof how));
    }
    return conn_serve(c);
}

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    kv_conn *c = (kv_conn *)w;

    (void)loop;
    (void)revents;
    if (c->handshaking) {
        conn_handshake(c);
        return;
    }
    if (c->write_wants_read) {
        c->write_wants_read = 0;
        if (conn_send(c) < 0)
            return;
    }
    conn_serve(c);
}

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    kv_conn *c = CONN_OF(w, wio);

    (void)loop;
    (void)revents;
    if (c->handshaking) {
        conn_handshake(c);
        return;
    }
    if (c->read_wants_write) {
        c->read_wants_write = 0;
        ev_io_stop(c->ctx->loop, &c->wio);
        if (c->session.state == KV_SESSION_OPEN && !c->paused && conn_serve(c) < 0)
            return;
    }
    conn_send(c);
}

/* The idle timer, rearmed lazily as libev's manual suggests: progress only
 * stamps last_progress; the timer checks it when it fires. Progress is a
 * whole request answered or answer bytes written, so a client that sends
 * nothing, dribbles a partial frame, or stops reading its answers is closed
 * after --idle-timeout. A connection waiting for a kept call's answer is
 * not idle: the wait is the server's.
 *
 * After the whole process stalled (SIGSTOP, a long pause) this timer can
 * fire in the same loop iteration as, and before, the read that would have
 * shown progress: so before judging, it reads and writes what it can. */
static void conn_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    kv_conn *c = CONN_OF(w, idle);
    double timeout = c->ctx->idle_timeout;
    ev_tstamp left = c->last_progress + timeout - ev_now(loop);

    (void)revents;
    if (left <= 0 && kv_session_waiting(&c->session)) {
        c->last_progress = ev_now(loop);
        left = timeout;
    }
    if (left <= 0) {
        if (c->handshaking) {
            if (conn_handshake(c) < 0)
                return;
        } else {
            if (c->session.state == KV_SESSION_OPEN && !c->paused && conn_serve(c) < 0)
                return;
            if (conn_send(c) < 0)
                return;
        }
        left = c->last_progress + timeout - ev_now(loop);
    }
    if (left > 0) {
        ev_timer_set(w, left, 0.);
        ev_timer_start(loop, w);
        return;
    }
    kv_conn_close(c, KV_CLOSE_IDLE, "idle timeout");
}

void kv_conn_drain(kv_conn *c)
{
    conn_stop_reading(c, KV_CLOSE_SHUTDOWN, "server shutting down");
    c->ctx->schedule(c->ctx, c);
}
