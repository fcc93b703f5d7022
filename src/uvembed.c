/* uvembed.c - a libuv loop inside the libev loop; see uvembed.h. */
#include <stddef.h>
#include <time.h>
#include "uvembed.h"

#define EMBED_OF(w, member) \
    ((kv_uvembed *)(void *)((char *)(w) - offsetof(kv_uvembed, member)))

/* libraft 0.15's TCP transport leaves Nagle's algorithm on: its small
 * messages (an append's acknowledgement) then wait for the peer's delayed
 * ACK, 40 ms on Linux, which put a replicated Set's p99 at 49 ms. Every
 * TCP handle of the loop gets TCP_NODELAY, checked whenever the number of
 * handles changes (a connection made or accepted). */
static void nodelay(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (h->type == UV_TCP && !uv_is_closing(h))
        (void)uv_tcp_nodelay((uv_tcp_t *)h, 1);
}

void kv_uvembed_run(kv_uvembed *u)
{
    uv_run(&u->uv, UV_RUN_NOWAIT);
    if (u->uv.active_handles != u->handles) {
        u->handles = u->uv.active_handles;
        uv_walk(&u->uv, nodelay, NULL);
    }
    int ms = uv_backend_timeout(&u->uv);
    ev_timer_stop(u->loop, &u->timer_w);
    if (ms >= 0) {
        ev_timer_set(&u->timer_w, ms / 1000.0, 0.);
        ev_timer_start(u->loop, &u->timer_w);
    }
}

static void turn(kv_uvembed *u)
{
    kv_uvembed_run(u);
    if (u->after)
        u->after(u->after_arg);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    turn(EMBED_OF(w, io_w));
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    turn(EMBED_OF(w, timer_w));
}

int kv_uvembed_init(kv_uvembed *u, struct ev_loop *loop)
{
    int rc = uv_loop_init(&u->uv);

    if (rc < 0)
        return rc;
    u->loop = loop;
    u->after = NULL;
    ev_io_init(&u->io_w, io_cb, uv_backend_fd(&u->uv), EV_READ);
    ev_io_start(loop, &u->io_w);
    ev_init(&u->timer_w, timer_cb);
    return 0;
}

void kv_uvembed_close(kv_uvembed *u, double seconds)
{
    double until = ev_time() + seconds;

    ev_io_stop(u->loop, &u->io_w);
    ev_timer_stop(u->loop, &u->timer_w);
    while (uv_loop_alive(&u->uv) && ev_time() < until) {
        uv_run(&u->uv, UV_RUN_NOWAIT);
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    (void)uv_loop_close(&u->uv);
}
