/* conn.c - the byte path of one connection: socket -> frames -> dispatch
 * -> answers -> socket. Owns the connection's buffers and socket; the
 * engine and the arena belong to the server. */
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
 * drain below OUT_LOW_WATER (back-pressure instead of unbounded memory). */
#define OUT_HIGH_WATER (8 * 1024 * 1024)
#define OUT_LOW_WATER (1024 * 1024)
/* Idle buffers larger than this are given back. */
#define BUF_KEEP (256 * 1024)

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents);

kv_conn *kv_conn_new(kv_server *srv, int fd)
{
    kv_conn *c = calloc(1, sizeof *c);

    if (!c) {
        close(fd);
        return NULL;
    }
    c->srv = srv;
    c->fd = fd;
    c->state = KV_CONN_OPEN;
    kv_exec_init(&c->exec, srv->engine, &srv->stats);
    ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
    ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
    ev_io_start(srv->loop, &c->rio);
    return c;
}

void kv_conn_close(kv_conn *c)
{
    ev_io_stop(c->srv->loop, &c->rio);
    ev_io_stop(c->srv->loop, &c->wio);
    close(c->fd);
    kv_buf_free(&c->in);
    kv_buf_free(&c->out);
    kv_server_conn_closed(c->srv, c);
    free(c);
}

/* Stops reading for good; what is buffered will not be executed. */
static void conn_stop_reading(kv_conn *c)
{
    c->state = KV_CONN_CLOSING;
    ev_io_stop(c->srv->loop, &c->rio);
    kv_buf_free(&c->in);
}

/* Writes pending answers. Returns 0 while the connection lives, -1 when it
 * was closed (C is freed). */
static int conn_flush(kv_conn *c)
{
    while (kv_buf_len(&c->out) > 0) {
        ssize_t n = send(c->fd, kv_buf_head(&c->out), kv_buf_len(&c->out), MSG_NOSIGNAL);
        if (n > 0) {
            kv_buf_consume(&c->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ev_io_start(c->srv->loop, &c->wio);
            return 0;
        }
        kv_conn_close(c);   /* peer gone: its answers have nowhere to go */
        return -1;
    }
    ev_io_stop(c->srv->loop, &c->wio);
    kv_buf_shrink(&c->out, BUF_KEEP);
    if (c->state == KV_CONN_CLOSING) {
        kv_conn_close(c);
        return -1;
    }
    return 0;
}

/* Answers every whole frame in the input buffer, stopping early when the
 * output passes the high-water mark. */
static void conn_process(kv_conn *c)
{
    kv_server *s = c->srv;

    while (c->state == KV_CONN_OPEN) {
        size_t off, len;

        if (kv_buf_len(&c->out) >= OUT_HIGH_WATER) {
            c->paused = 1;
            ev_io_stop(s->loop, &c->rio);
            break;
        }
        kv_frame_result r = kv_frame_decode(kv_buf_head(&c->in), kv_buf_len(&c->in),
                                            s->cfg.max_frame_bytes, &off, &len);
        if (r == KV_FRAME_PARTIAL)
            break;
        if (r == KV_FRAME_TOO_LARGE) {
            char msg[128];
            snprintf(msg, sizeof msg, "frame of %zu bytes exceeds the maximum of %u bytes",
                     len, (unsigned)s->cfg.max_frame_bytes);
            if (kv_dispatch_reply(&c->out, &s->stats, 0, KV_RESOURCE_EXHAUSTED, msg, NULL) < 0)
                kv_buf_free(&c->out);
            conn_stop_reading(c);
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
    }
    kv_arena_reset(&s->arena);
    kv_buf_shrink(&c->in, BUF_KEEP);
    /* The peer finished sending: once what came whole is answered, close. */
    if (c->peer_done && !c->paused && c->state == KV_CONN_OPEN)
        conn_stop_reading(c);
}

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    kv_conn *c = (kv_conn *)w;
    size_t got = 0;
    int eof = 0;

    (void)revents;
    while (got < READ_BUDGET) {
        if (kv_buf_reserve(&c->in, READ_CHUNK) < 0) {
            kv_conn_close(c);
            return;
        }
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
            eof = 1;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        kv_conn_close(c);
        return;
    }
    if (eof) {
        c->peer_done = 1;
        ev_io_stop(loop, &c->rio);
    }
    conn_process(c);
    conn_flush(c);
}

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    kv_conn *c = (kv_conn *)((char *)w - offsetof(kv_conn, wio));

    (void)revents;
    if (conn_flush(c) < 0)
        return;
    if (c->paused && kv_buf_len(&c->out) < OUT_LOW_WATER && c->state == KV_CONN_OPEN) {
        c->paused = 0;
        ev_io_start(loop, &c->rio);
        conn_process(c);
        conn_flush(c);
    }
}

void kv_conn_drain(kv_conn *c)
{
    conn_stop_reading(c);
    conn_flush(c);
}
