/* echo.c - kvecho, the floor under kvstored's benchmark figures: a bare TCP
 * echo server with no protocol at all. One thread, one epoll loop,
 * non-blocking sockets; it sends back whatever it reads, as soon as it has
 * read it. kvbench --protocol echo sends it requests of the size kvstored's
 * would be, so no server can beat its figures on this machine, and the gap
 * between kvecho and kvstored is what kvstored's own work costs. Owns its
 * listening socket and connections; knows nothing of kvstore but the
 * "HOST:PORT" parser and the "listening on" line that starts tests. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "endpoint.h"
#include "listen.h"

/* What one read() takes at most: 16 pipelined 1 KiB requests fit with room
 * to spare, so a batch is one read and one send, as for kvstored. */
#define ECHO_BUF (256 * 1024)
#define MAX_EVENTS 256

/* One connection. While a send is short, the rest waits in buf[off..len)
 * and the connection stops reading (EPOLLOUT only) until it is gone: an
 * echo server that reads faster than its peer reads back would only queue. */
typedef struct echo_conn {
    int fd;
    size_t off, len;           /* unsent bytes of buf */
    uint8_t buf[ECHO_BUF];
} echo_conn;

static volatile sig_atomic_t echo_stop;

static void on_signal(int sig)
{
    (void)sig;
    echo_stop = 1;
}

/* Binds and listens on EP and says where, in the form kvstored prints,
 * which the test helpers wait for. Returns the socket, or -1 after saying
 * why. */
static int echo_listen(const char *ep)
{
    char err[512], where[KV_ENDPOINT_HOST_MAX + 16];
    int fd = kv_listen(ep, err, sizeof err);

    if (fd < 0) {
        fprintf(stderr, "kvecho: --listen: %s\n", err);
        return -1;
    }
    kv_listen_address(fd, where, sizeof where);
    printf("listening on %s\n", where);
    fflush(stdout);
    return fd;
}

static void echo_close(int ep, echo_conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

static void echo_watch(int ep, echo_conn *c, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends buf[off..len). Returns 0 (all sent, or the rest waits for room),
 * -1 when the connection is gone. */
static int echo_flush(int ep, echo_conn *c)
{
    while (c->off < c->len) {
        ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                echo_watch(ep, c, EPOLLOUT);
                return 0;
            }
            return -1;
        }
        c->off += (size_t)n;
    }
    c->off = c->len = 0;
    return 0;
}

static void echo_accept(int ep, int lfd)
{
    int one = 1;

    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;                 /* EAGAIN, or out of descriptors: later */
        }
        /* As kvstored does: no Nagle, or a small answer waits for an ACK. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        echo_conn *c = malloc(sizeof *c);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (!c || (c->fd = fd, c->off = c->len = 0, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)) {
            free(c);
            close(fd);
        }
    }
}

/* Handles readiness EVENTS of C. Returns -1 when C is to be closed. */
static int echo_serve(int ep, echo_conn *c, uint32_t events)
{
    if (c->len) {                   /* waiting to send the rest */
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return 0;
        if (echo_flush(ep, c) < 0)
            return -1;
        if (!c->len)
            echo_watch(ep, c, EPOLLIN);
        return 0;
    }
    ssize_t n = read(c->fd, c->buf, sizeof c->buf);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (n == 0)
        return -1;
    c->len = (size_t)n;
    return echo_flush(ep, c);
}

static void usage(FILE *f)
{
    fprintf(f,
"Usage: kvecho [--listen HOST:PORT]\n"
"A bare TCP echo server (one thread, epoll): sends back whatever it reads.\n"
"The floor for kvbench --protocol echo. Prints \"listening on HOST:PORT\"\n"
"once ready; exits 0 on SIGTERM or SIGINT.\n"
"\n"
"  --listen HOST:PORT  where to listen (default 127.0.0.1:7380; port 0 picks\n"
"                      a free one)\n"
"  --help              show this help and exit\n");
}

int main(int argc, char **argv)
{
    const char *listen_ep = "127.0.0.1:7380";
    struct epoll_event evs[MAX_EVENTS];
    struct sigaction sa = { .sa_handler = on_signal };

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
            listen_ep = argv[++i];
        } else if (!strncmp(argv[i], "--listen=", 9)) {
            listen_ep = argv[i] + 9;
        } else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "kvecho: unexpected argument \"%s\"\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    /* No SA_RESTART: the signal interrupts epoll_wait and the loop ends. */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int lfd = echo_listen(listen_ep);
    if (lfd < 0)
        return 1;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
        fprintf(stderr, "kvecho: epoll: %s\n", strerror(errno));
        return 1;
    }
    while (!echo_stop) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "kvecho: epoll_wait: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++) {
            echo_conn *c = evs[i].data.ptr;
            if (!c)
                echo_accept(ep, lfd);
            else if (echo_serve(ep, c, evs[i].events) < 0)
                echo_close(ep, c);
        }
    }
    return 0;
}
