/* conn.c - the byte path of one connection: socket -> frames -> dispatch
 * -> answers -> socket, with its limits (input budget, output budget and
 * back-pressure, idle timeout). Owns the connection's buffers, socket and
 * timer; the engine, the arena and the counters belong to the server. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include "conn.h"
#include "dispatch.h"
#include "frame.h"
#include "server.h"

/* A read asks for at least this much room. */
#define READ_CHUNK (64 * 1024)
/* Bytes one connection may read per loop turn, so one flooding client
 * cannot starve the others. */
#define READ_BUDGET (1024 * 1024)
/* Unwritten answers above this stop reading from the client until they
 * drain below OUT_LOW_WATER (back-pressure instead of unbounded memory).
 * A client that never drains them is closed by the idle timeout. */
#define OUT_HIGH_WATER (8 * 1024 * 1024)
#define OUT_LOW_WATER (1024 * 1024)
/* While the answers held by all connections are over --max-output-bytes, a
 * connection with more than this unread stops being read: the clients that
 * keep up (nothing left over between turns) are served as before. */
#define OUT_PRESSURE_FLOOR (64 * 1024)
/* Idle buffers larger than this are given back. */
#define BUF_KEEP (256 * 1024)
/* Each connection's first INPUT_FLOOR bytes of input buffer are not charged
 * to --max-input-bytes, so a few clients sending huge frames cannot lock
 * out every small request; the budget is for the large frames. */
#define INPUT_FLOOR (256 * 1024)
/* Before Auth succeeds (when a token is required) a frame may be at most
 * this large: an AuthRequest is a few KiB, and an unauthenticated client
 * must not hold input memory that others need. */
#define PREAUTH_MAX_FRAME (64 * 1024)

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_idle_cb(struct ev_loop *loop, ev_timer *w, int revents);

#define CONN_OF(ptr, member) ((kv_conn *)((char *)(ptr) - offsetof(kv_conn, member)))

kv_conn *kv_conn_new(kv_server *srv, int fd, const kv_peer *peer)
{
    kv_conn *c = calloc(1, sizeof *c);

    if (!c) {
        close(fd);
        return NULL;
    }
    c->srv = srv;
    c->fd = fd;
    c->state = KV_CONN_OPEN;
    kv_exec_init(&c->exec, &srv->env, peer);
    ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
    ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
    ev_io_start(srv->loop, &c->rio);
    c->last_progress = c->last_sent = ev_now(srv->loop);
    if (srv->cfg.idle_timeout > 0) {
        ev_timer_init(&c->idle, conn_idle_cb, srv->cfg.idle_timeout, 0.);
        ev_timer_start(srv->loop, &c->idle);
    }
    return c;
}

/* Brings srv->stats.input_bytes up to date with the input buffer: what it holds
 * above INPUT_FLOOR. */
static void count_input(kv_conn *c)
{
    size_t charged = c->in.cap > INPUT_FLOOR ? c->in.cap - INPUT_FLOOR : 0;

    c->srv->stats.input_bytes += charged;
    c->srv->stats.input_bytes -= c->in_counted;
    c->in_counted = charged;
}

/* Brings srv->stats.output_bytes up to date with the output buffer's size. */
static void count_output(kv_conn *c)
{
    c->srv->stats.output_bytes += c->out.cap;
    c->srv->stats.output_bytes -= c->out_counted;
    c->out_counted = c->out.cap;
}

void kv_conn_close(kv_conn *c)
{
    ev_io_stop(c->srv->loop, &c->rio);
    ev_io_stop(c->srv->loop, &c->wio);
    ev_timer_stop(c->srv->loop, &c->idle);
    close(c->fd);
    kv_buf_free(&c->in);
    count_input(c);
    kv_buf_free(&c->out);
    count_output(c);
    kv_server_conn_closed(c->srv, c);
    free(c);
}

/* Stops reading for good; what is buffered will not be executed. */
static void conn_stop_reading(kv_conn *c)
{
    c->state = KV_CONN_CLOSING;
    c->paused = 0;
    ev_io_stop(c->srv->loop, &c->rio);
    kv_buf_free(&c->in);
    count_input(c);
}

/* Answers with one connection-level error (id 0) and stops reading. */
static void conn_fail(kv_conn *c, kv_status code, const char *msg)
{
    if (kv_dispatch_reply(&c->out, &c->srv->stats, 0, code, msg) < 0)
        kv_buf_free(&c->out);
    conn_stop_reading(c);
}

/* Stops reading while the client has too many unread answers. */
static void conn_pause(kv_conn *c)
{
    c->paused = 1;
    ev_io_stop(c->srv->loop, &c->rio);
}

/* Reads again after a pause. The input may already hold whole requests
 * that no new byte will announce, so the read callback is run once in the
 * next loop iteration whatever the socket says. */
static void conn_resume(kv_conn *c)
{
    c->paused = 0;
    ev_io_start(c->srv->loop, &c->rio);
    ev_feed_event(c->srv->loop, &c->rio, EV_READ);
}

/* Whether C should stop being read for now: its own unread answers are
 * past the high-water mark, or the server's are past --max-output-bytes
 * and C has more than a little unread. */
static int conn_must_pause(const kv_conn *c)
{
    size_t len = kv_buf_len(&c->out);

    return len >= OUT_HIGH_WATER ||
           (len > OUT_PRESSURE_FLOOR && c->srv->stats.output_bytes >= c->srv->cfg.output_budget);
}

/* Writes the answers that may leave: everything but the held tail. Stops
 * the write watcher when nothing more can go now, resumes reading when a
 * paused client has drained, closes a closing connection once all is out.
 * Returns 0, or -1 when C was closed. */
static int conn_send(kv_conn *c)
{
    kv_server *s = c->srv;
    int blocked = 0;

    for (;;) {
        size_t len = kv_buf_len(&c->out);
        size_t ready = len > c->out_held ? len - c->out_held : 0;
        if (ready == 0)
            break;
        ssize_t n = send(c->fd, kv_buf_head(&c->out), ready, MSG_NOSIGNAL);
        if (n > 0) {
            kv_buf_consume(&c->out, (size_t)n);
            c->last_progress = c->last_sent = ev_now(s->loop);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            blocked = 1;
            break;
        }
        kv_conn_close(c);   /* peer gone: its answers have nowhere to go */
        return -1;
    }
    if (blocked) {
        ev_io_start(s->loop, &c->wio);
    } else {
        ev_io_stop(s->loop, &c->wio);
        if (kv_buf_len(&c->out) == 0) {
            c->last_sent = ev_now(s->loop);
            kv_buf_shrink(&c->out, BUF_KEEP);
            if (c->state == KV_CONN_CLOSING) {
                kv_conn_close(c);
                return -1;
            }
        }
    }
    count_output(c);
    /* Resume only what would not pause again at once: a resumed connection
     * runs its read callback, and one that re-paused every turn would keep
     * the loop from ever sleeping. */
    if (c->paused && c->state == KV_CONN_OPEN && kv_buf_len(&c->out) < OUT_LOW_WATER &&
        !conn_must_pause(c))
        conn_resume(c);
    return 0;
}

int kv_conn_flush(kv_conn *c)
{
    c->out_held = 0;
    return conn_send(c);
}

/* The largest frame this connection may send now. */
static uint32_t conn_max_frame(const kv_conn *c)
{
    uint32_t max = c->srv->cfg.max_frame_bytes;

    if (c->srv->env.auth && !c->exec.authenticated && max > PREAUTH_MAX_FRAME)
        max = PREAUTH_MAX_FRAME;
    return max;
}

/* Answers every whole frame in the input buffer, stopping early when the
 * client must be paused. The answers are held until the engine's flush. */
static void conn_process(kv_conn *c)
{
    kv_server *s = c->srv;
    size_t before = kv_buf_len(&c->out);

    if (before == 0)
        c->last_sent = ev_now(s->loop);
    while (c->state == KV_CONN_OPEN) {
        size_t off, len;
        uint32_t max = conn_max_frame(c);

        if (conn_must_pause(c)) {
            conn_pause(c);
            break;
        }
        kv_frame_result r = kv_frame_decode(kv_buf_head(&c->in), kv_buf_len(&c->in),
                                            max, &off, &len);
        if (r == KV_FRAME_PARTIAL)
            break;
        if (r == KV_FRAME_TOO_LARGE) {
            char msg[160];
            snprintf(msg, sizeof msg, "frame of %zu bytes exceeds the maximum of %u bytes%s",
                     len, (unsigned)max,
                     max < s->cfg.max_frame_bytes ? " before Auth" : "");
            conn_fail(c, KV_RESOURCE_EXHAUSTED, msg);
            break;
        }
        if (r == KV_FRAME_MALFORMED) {
            conn_stop_reading(c);
            break;
        }
        if (kv_dispatch_frame(kv_exec_service(&c->exec), &s->arena, &s->stats,
                              kv_buf_head(&c->in) + off, len, &c->out) < 0) {
            /* No memory even for the answer: this client cannot be served
             * in order any more, so it goes; the others carry on. */
            kv_buf_free(&c->out);
            conn_stop_reading(c);
            break;
        }
        kv_buf_consume(&c->in, off + len);
        count_output(c);    /* the pause test reads the server's total */
        c->last_progress = ev_now(s->loop);
        if (c->exec.hang_up)
            conn_stop_reading(c);
    }
    size_t after = kv_buf_len(&c->out);
    c->out_held = after >= before ? c->out_held + (after - before) : after;
    count_output(c);
    kv_arena_reset(&s->arena);
    kv_buf_shrink(&c->in, BUF_KEEP);
    count_input(c);
    /* The peer finished sending: once what came whole is answered, close. */
    if (c->peer_done && !c->paused && c->state == KV_CONN_OPEN)
        conn_stop_reading(c);
}

/* Makes room to read, within the server's input budget. Returns 0, or -1
 * when the budget (or memory) is out and the connection was failed. */
static int conn_make_room(kv_conn *c)
{
    kv_server *s = c->srv;

    if (c->in.cap - kv_buf_len(&c->in) < READ_CHUNK) {
        /* Growing doubles the buffer: refuse if that passes the budget. */
        size_t next = c->in.cap ? c->in.cap * 2 : READ_CHUNK;
        size_t charged = next > INPUT_FLOOR ? next - INPUT_FLOOR : 0;
        if (s->stats.input_bytes - c->in_counted + charged > s->cfg.input_budget) {
            conn_fail(c, KV_RESOURCE_EXHAUSTED, "server input memory budget exhausted; retry later");
            return -1;
        }
    }
    if (kv_buf_reserve(&c->in, READ_CHUNK) < 0) {
        conn_fail(c, KV_RESOURCE_EXHAUSTED, "server out of memory");
        return -1;
    }
    count_input(c);
    return 0;
}

/* Reads what the socket has, up to READ_BUDGET. Returns 0, or -1 when C
 * was closed. */
static int conn_read(kv_conn *c)
{
    size_t got = 0;

    while (got < READ_BUDGET && c->state == KV_CONN_OPEN && !c->peer_done) {
        if (conn_make_room(c) < 0)
            break;
        size_t room = c->in.cap - c->in.end;
        ssize_t n = read(c->fd, c->in.data + c->in.end, room);
        if (n > 0) {
            c->in.end += (size_t)n;
            got += (size_t)n;
            if ((size_t)n < room)
                break;      /* the socket is drained */
            continue;
        }
        if (n == 0) {
            c->peer_done = 1;
            ev_io_stop(c->srv->loop, &c->rio);
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        kv_conn_close(c);
        return -1;
    }
    return 0;
}

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    kv_conn *c = (kv_conn *)w;

    (void)loop;
    (void)revents;
    if (conn_read(c) < 0)
        return;
    conn_process(c);
    kv_server_schedule(c->srv, c);
}

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    conn_send(CONN_OF(w, wio));
}

/* The idle timer, rearmed lazily as libev's manual suggests: progress only
 * stamps last_progress; the timer checks it when it fires. Progress is a
 * whole request answered or answer bytes written, so a client that sends
 * nothing, dribbles a partial frame, or stops reading its answers is closed
 * after --idle-timeout.
 *
 * After the whole process stalled (SIGSTOP, a long pause) this timer can
 * fire in the same loop iteration as, and before, the read that would have
 * shown progress: so before judging, it reads and writes what it can. */
static void conn_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    kv_conn *c = CONN_OF(w, idle);
    ev_tstamp left = c->last_progress + c->srv->cfg.idle_timeout - ev_now(loop);

    (void)revents;
    if (left <= 0) {
        if (c->state == KV_CONN_OPEN && !c->paused) {
            if (conn_read(c) < 0)
                return;
            conn_process(c);
            kv_server_schedule(c->srv, c);
        }
        if (conn_send(c) < 0)
            return;
        left = c->last_progress + c->srv->cfg.idle_timeout - ev_now(loop);
    }
    if (left > 0) {
        ev_timer_set(w, left, 0.);
        ev_timer_start(loop, w);
        return;
    }
    kv_conn_close(c);
}

void kv_conn_drain(kv_conn *c)
{
    conn_stop_reading(c);
    kv_server_schedule(c->srv, c);
}
