/* watchbench.c - the watch and expiry measurements of v2.1 that kvbench's
 * closed loop cannot make (docs/BENCHMARKS.md, "v2.1: expiry and watch").
 * It speaks kvstore's frames itself (varint length + RpcRequest; stream
 * frames are RpcResponse with stream = true), so it needs no client library
 * with watch support. Three modes:
 *
 *   watchbench idle -p PORT -w 100 [-C CONNS] [--format w%03d/] [--seconds S]
 *                   [--cancel]
 *       Opens W watches, Watch{prefix = FORMAT with the watch's number}, on
 *       CONNS connections (default: one each), prints "ready: ..." once the
 *       server has answered them all, then holds them (reading and counting
 *       any event) until SIGTERM/SIGINT or S seconds (default 3600); prints
 *       the events seen and exits 0. With --cancel it cancels every watch as
 *       soon as it is open (CancelWatch) and exits: a server that "was
 *       watched once", so that it keeps the event history as a watched
 *       server does.
 *
 *   watchbench fanout -p PORT -w 1000 [-C CONNS] -n SETS [-P DEPTH] [-d BYTES]
 *       W watches of one key (Watch{key = "fan:key"}) on CONNS connections
 *       (default W: one each; else W/CONNS watches on each, round robin), then
 *       one writer connection sends SETS Sets of that key, DEPTH at a time
 *       (default 1: each Set once the one before it is answered). Every
 *       watch must receive every Set's PUT event. Reports the events
 *       delivered per second, from the first Set sent to the last event in
 *       at the last watcher, the Sets per second, and per Set the time from
 *       its send until all W watchers have its event (p50/p99/max).
 *
 *   watchbench probe -p PORT [--protocol kvstore|resp] --seconds S [-k N]
 *                    [--slot-ms MS]
 *       One connection doing GET of key "key:" + 12 digits of N (default 0),
 *       which must hold -d BYTES of 'x' (default 3, as kvbench stores them),
 *       one at a time for S seconds: latency p50/p99/p99.9/max, when the
 *       worst one came (CLOCK_MONOTONIC seconds, the clock Python's
 *       time.monotonic() reads), and with --slot-ms one line per slot of MS
 *       milliseconds (its start, requests, max latency) to line the latency
 *       up with what the server was doing (bench/expiry-bench).
 *
 * Every wait is bounded (--timeout, default 10 s without progress). Exit
 * status 0 when everything was as expected, 1 otherwise, 2 on bad usage.
 * Not a test: it asserts nothing about speed. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "buf.h"
#include "frame.h"
#include "kvbench/hist.h"
#include "kvbench/proto.h"
#include "kvbench/wire.h"
#include "varint.h"

#define FRAME_MAX (64u << 20)
#define READ_ROOM (64 * 1024)
#define MAX_WATCHES 100000
#define MAX_CONNS 20000
#define MAX_SETS 10000000
#define FAN_KEY "fan:key"

typedef struct opts {
    const char *host, *port, *format, *protocol;
    int watches, conns, depth, cancel, timeout_s, slot_ms;
    uint64_t sets, key;
    size_t value_len;
    double seconds;
} opts;

typedef struct conn {
    int fd;
    kv_buf in;
    uint64_t next_id;
    int watches;            /* open watches on it */
} conn;

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("watchbench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

/* ------------------------------------------------------------ encoding */

/* Appends a bytes field. */
static uint8_t *put_bytes(uint8_t *b, unsigned field, const void *p, size_t len)
{
    *b++ = (uint8_t)(field << 3 | 2);
    b = kv_varint_put(b, len);
    memcpy(b, p, len);
    return b + len;
}

static uint8_t *put_varint(uint8_t *b, unsigned field, uint64_t v)
{
    *b++ = (uint8_t)(field << 3);
    return kv_varint_put(b, v);
}

/* Appends the frame of RpcRequest{ID, "/kvstore.v1.KV/METHOD", PAYLOAD} to OUT. */
static void put_request(kv_buf *out, uint64_t id, const char *method, const uint8_t *payload,
                        size_t plen)
{
    char path[64];
    size_t path_len = (size_t)snprintf(path, sizeof path, "/kvstore.v1.KV/%s", method);
    size_t body = 1 + kv_varint_size(id) + 1 + kv_varint_size(path_len) + path_len
                + 1 + kv_varint_size(plen) + plen;

    if (kv_buf_reserve(out, KV_FRAME_PREFIX_MAX + body) < 0)
        die("out of memory");
    uint8_t *b = kv_buf_tail(out), *start = b;
    b += kv_frame_put_prefix(b, (uint32_t)body);
    b = put_varint(b, 1, id);
    b = put_bytes(b, 2, path, path_len);
    b = put_bytes(b, 3, payload, plen);
    kv_buf_commit(out, (size_t)(b - start));
}

/* ------------------------------------------------------------ decoding */

typedef struct resp {
    uint64_t id, code;
    int stream;
    const uint8_t *payload, *message;
    size_t payload_len, message_len;
} resp;

static int parse_resp(const uint8_t *p, size_t n, resp *r)
{
    const uint8_t *end = p + n;
    kb_pb_field f;
    int rc;

    memset(r, 0, sizeof *r);
    while ((rc = kb_pb_next_field(&p, end, &f)) == 1) {
        switch (f.number) {
        case 1: r->id = f.varint; break;
        case 2: r->code = f.varint; break;
        case 3: r->message = f.bytes; r->message_len = f.len; break;
        case 4: r->payload = f.bytes; r->payload_len = f.len; break;
        case 5: r->stream = f.varint != 0; break;
        default: break;
        }
    }
    return rc;
}

/* A WatchResponse: its id, whether canceled, and for each event the
 * mod_revision of its kv handed to ON_EVENT. Returns the number of events,
 * or -1 when malformed. */
typedef struct watch_resp {
    uint64_t watch_id;
    int canceled;
    const uint8_t *reason;
    size_t reason_len;
} watch_resp;

static long parse_watch(const uint8_t *p, size_t n, watch_resp *w,
                        void (*on_event)(void *, uint64_t rev), void *arg)
{
    const uint8_t *end = p + n;
    kb_pb_field f;
    long events = 0;
    int rc;

    memset(w, 0, sizeof *w);
    while ((rc = kb_pb_next_field(&p, end, &f)) == 1) {
        if (f.number == 1 && !f.is_bytes) {
            w->watch_id = f.varint;
        } else if (f.number == 3 && !f.is_bytes) {
            w->canceled = f.varint != 0;
        } else if (f.number == 4 && f.is_bytes) {
            w->reason = f.bytes;
            w->reason_len = f.len;
        } else if (f.number == 2 && f.is_bytes) {
            events++;
            if (on_event) {
                /* WatchEvent.kv (2) -> KeyValue.mod_revision (4) */
                const uint8_t *e = f.bytes, *ee = f.bytes + f.len;
                kb_pb_field g, h;
                uint64_t rev = 0;
                while (kb_pb_next_field(&e, ee, &g) == 1) {
                    if (g.number != 2 || !g.is_bytes)
                        continue;
                    const uint8_t *k = g.bytes, *ke = g.bytes + g.len;
                    while (kb_pb_next_field(&k, ke, &h) == 1)
                        if (h.number == 4 && !h.is_bytes)
                            rev = h.varint;
                }
                on_event(arg, rev);
            }
        }
    }
    return rc < 0 ? -1 : events;
}

/* ------------------------------------------------------------ sockets */

static int dial(const opts *o)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *ai;
    int gai = getaddrinfo(o->host, o->port, &hints, &ai);
    if (gai)
        die("cannot resolve %s: %s", o->host, gai_strerror(gai));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        die("cannot connect to %s:%s: %s", o->host, o->port, strerror(errno));
    freeaddrinfo(ai);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void set_nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Sends all of OUT on blocking FD. */
static void send_all(int fd, kv_buf *out)
{
    while (kv_buf_len(out)) {
        ssize_t n = send(fd, kv_buf_head(out), kv_buf_len(out), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = { fd, POLLOUT, 0 };
            poll(&p, 1, 1000);
            continue;
        }
        if (n <= 0)
            die("send: %s", strerror(errno));
        kv_buf_consume(out, (size_t)n);
    }
}

/* Reads what FD has into IN. Returns the bytes read, 0 on EOF, -1 when
 * nothing is there (EAGAIN). Dies on errors. */
static ssize_t read_some(int fd, kv_buf *in)
{
    if (kv_buf_reserve(in, READ_ROOM) < 0)
        die("out of memory");
    for (;;) {
        ssize_t n = recv(fd, kv_buf_tail(in), kv_buf_room(in), 0);
        if (n > 0)
            kv_buf_commit(in, (size_t)n);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return -1;
        die("recv: %s", strerror(errno));
    }
}

/* Takes the next whole frame from IN into R (pointers into IN, valid until
 * the next read). Returns 1, or 0 when no whole frame is there. */
static int next_frame(kv_buf *in, resp *r)
{
    size_t off, len;
    kv_frame_result fr = kv_frame_decode(kv_buf_head(in), kv_buf_len(in), FRAME_MAX, &off, &len);

    if (fr == KV_FRAME_PARTIAL)
        return 0;
    if (fr != KV_FRAME_OK)
        die("the server sent a malformed frame");
    if (parse_resp(kv_buf_head(in) + off, len, r) < 0)
        die("the server sent a frame that is not an RpcResponse");
    kv_buf_consume(in, off + len);   /* the bytes stay where they are until the next reserve */
    return 1;
}

/* Blocks (bounded by the timeout) for the next frame on C that is not a
 * stream frame, counting the events of any stream frame met on the way. */
static void wait_answer(conn *c, const opts *o, resp *r, uint64_t *events)
{
    uint64_t deadline = now_ns() + (uint64_t)o->timeout_s * 1000000000u;
    for (;;) {
        while (next_frame(&c->in, r)) {
            if (!r->stream)
                return;
            watch_resp w;
            long n = parse_watch(r->payload, r->payload_len, &w, NULL, NULL);
            if (n < 0)
                die("malformed WatchResponse in a stream frame");
            if (events)
                *events += (uint64_t)n;
        }
        struct pollfd p = { c->fd, POLLIN, 0 };
        int left = (int)((deadline - now_ns()) / 1000000);
        if ((int64_t)(deadline - now_ns()) <= 0 || (poll(&p, 1, left) == 0))
            die("no answer within %d s", o->timeout_s);
        if (read_some(c->fd, &c->in) == 0)
            die("the server closed the connection");
    }
}

static void check_ok(const resp *r, const char *what)
{
    if (r->code != 0)
        die("%s: status %llu: %.*s", what, (unsigned long long)r->code, (int)r->message_len,
            (const char *)r->message);
}

static void raise_fd_limit(int need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)need + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)need + 64 ? rl.rlim_max : (rlim_t)need + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Opens O->watches watches on O->conns connections, watch i on connection
 * i % conns; PAYLOAD_OF(i) builds watch i's WatchRequest. Pipelined per
 * connection, then every answer awaited. */
typedef size_t (*watch_payload_fn)(const opts *o, int i, uint8_t *buf, size_t cap);

static conn *open_watches(const opts *o, watch_payload_fn payload_of, uint64_t **ids)
{
    conn *cs = xmalloc(sizeof *cs * (size_t)o->conns);
    kv_buf out = KV_BUF_INIT;
    uint8_t pl[512];

    *ids = xmalloc(sizeof **ids * (size_t)o->watches);
    raise_fd_limit(o->conns + 1);
    for (int c = 0; c < o->conns; c++) {
        cs[c].fd = dial(o);
        cs[c].next_id = 1;
        for (int i = c; i < o->watches; i += o->conns) {
            size_t n = payload_of(o, i, pl, sizeof pl);
            put_request(&out, cs[c].next_id++, "Watch", pl, n);
        }
        send_all(cs[c].fd, &out);
    }
    for (int c = 0; c < o->conns; c++) {
        for (int i = c; i < o->watches; i += o->conns) {
            resp r;
            watch_resp w;
            wait_answer(&cs[c], o, &r, NULL);
            check_ok(&r, "Watch");
            if (parse_watch(r.payload, r.payload_len, &w, NULL, NULL) < 0 || !w.watch_id)
                die("Watch answer without a watch_id");
            (*ids)[i] = w.watch_id;
            cs[c].watches++;
        }
    }
    kv_buf_free(&out);
    return cs;
}

/* Closes the N connections of open_watches and frees them and IDS. */
static void close_watches(conn *cs, int n, uint64_t *ids)
{
    for (int c = 0; c < n; c++) {
        if (cs[c].fd >= 0)
            close(cs[c].fd);
        kv_buf_free(&cs[c].in);
    }
    free(cs);
    free(ids);
}

/* ------------------------------------------------------------ idle */

static size_t idle_payload(const opts *o, int i, uint8_t *buf, size_t cap)
{
    char prefix[256];
    int n = snprintf(prefix, sizeof prefix, o->format, i);
    (void)cap;
    if (n <= 0 || n >= (int)sizeof prefix)
        die("--format makes an empty or too long prefix");
    return (size_t)(put_bytes(buf, 3, prefix, (size_t)n) - buf);
}

static int run_idle(const opts *o)
{
    uint64_t *ids, events = 0;
    conn *cs = open_watches(o, idle_payload, &ids);
    kv_buf out = KV_BUF_INIT;

    if (o->cancel) {
        for (int c = 0; c < o->conns; c++) {
            for (int i = c; i < o->watches; i += o->conns) {
                uint8_t pl[16];
                size_t n = (size_t)(put_varint(pl, 1, ids[i]) - pl);
                put_request(&out, cs[c].next_id++, "CancelWatch", pl, n);
            }
            send_all(cs[c].fd, &out);
            for (int i = c; i < o->watches; i += o->conns) {
                resp r;
                wait_answer(&cs[c], o, &r, &events);
                check_ok(&r, "CancelWatch");
            }
            close(cs[c].fd);
            cs[c].fd = -1;
        }
        printf("canceled: %d watches on %d connections\n", o->watches, o->conns);
        kv_buf_free(&out);
        close_watches(cs, o->conns, ids);
        return 0;
    }
    printf("ready: %d watches on %d connections\n", o->watches, o->conns);
    fflush(stdout);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int c = 0; c < o->conns; c++) {
        set_nonblock(cs[c].fd);
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)c };
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[c].fd, &ev);
    }
    uint64_t end = now_ns() + (uint64_t)(o->seconds * 1e9);
    struct epoll_event evs[256];
    long canceled = 0;
    while (!stop_flag && now_ns() < end) {
        int n = epoll_wait(ep, evs, 256, 200);
        for (int k = 0; k < n; k++) {
            conn *c = &cs[evs[k].data.u32];
            ssize_t got;
            while ((got = read_some(c->fd, &c->in)) > 0)
                ;
            if (got == 0)
                die("the server closed a watch connection");
            resp r;
            while (next_frame(&c->in, &r)) {
                watch_resp w;
                long e = parse_watch(r.payload, r.payload_len, &w, NULL, NULL);
                if (e < 0)
                    die("malformed WatchResponse");
                events += (uint64_t)e;
                canceled += w.canceled;
            }
        }
    }
    printf("held: %d watches, %llu events received, %ld canceled\n", o->watches,
           (unsigned long long)events, canceled);
    close(ep);
    kv_buf_free(&out);
    close_watches(cs, o->conns, ids);
    return canceled ? 1 : 0;
}

/* ------------------------------------------------------------ fanout */

static size_t fan_payload(const opts *o, int i, uint8_t *buf, size_t cap)
{
    (void)o; (void)i; (void)cap;
    return (size_t)(put_bytes(buf, 1, FAN_KEY, strlen(FAN_KEY)) - buf);
}

typedef struct fan_state {
    uint64_t base_rev, sets;     /* Set i makes revision base_rev + i */
    uint32_t *got;               /* per Set: watchers that have its event */
    uint64_t *t_sent, *t_all;    /* per Set: sent; in at the last watcher */
    uint64_t events, bad, last_event_ns;
    int watches;
} fan_state;

static void fan_event(void *arg, uint64_t rev)
{
    fan_state *f = arg;
    f->events++;
    if (rev < f->base_rev || rev >= f->base_rev + f->sets) {
        f->bad++;
        return;
    }
    uint64_t i = rev - f->base_rev;
    if (++f->got[i] == (uint32_t)f->watches)
        f->t_all[i] = f->last_event_ns;
}

/* The SetRequest{FAN_KEY, value} payload. */
static size_t set_payload(const opts *o, uint8_t *buf)
{
    uint8_t *b = put_bytes(buf, 1, FAN_KEY, strlen(FAN_KEY));
    if (o->value_len) {
        *b++ = 2 << 3 | 2;
        b = kv_varint_put(b, o->value_len);
        memset(b, 'x', o->value_len);
        b += o->value_len;
    }
    return (size_t)(b - buf);
}

/* SetResponse.revision (2). */
static uint64_t set_revision(const resp *r)
{
    const uint8_t *p = r->payload, *end = r->payload + r->payload_len;
    kb_pb_field f;
    uint64_t rev = 0;
    while (kb_pb_next_field(&p, end, &f) == 1)
        if (f.number == 2 && !f.is_bytes)
            rev = f.varint;
    return rev;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec
         + ru.ru_stime.tv_usec / 1e6;
}

static int run_fanout(const opts *o)
{
    uint8_t *pl = xmalloc(o->value_len + 64);
    size_t pl_len = set_payload(o, pl);
    conn w = { .fd = dial(o), .next_id = 1 };
    kv_buf out = KV_BUF_INIT;
    resp r;

    /* One Set before the watches exist: the key's revision, unseen by them. */
    put_request(&out, w.next_id++, "Set", pl, pl_len);
    send_all(w.fd, &out);
    wait_answer(&w, o, &r, NULL);
    check_ok(&r, "Set");
    uint64_t rev0 = set_revision(&r);
    if (!rev0)
        die("the Set answer has no revision (a server before v2?)");

    uint64_t *ids;
    conn *cs = open_watches(o, fan_payload, &ids);
    fan_state f = { .base_rev = rev0 + 1, .sets = o->sets, .watches = o->watches };
    f.got = xmalloc(sizeof *f.got * o->sets);
    f.t_sent = xmalloc(sizeof *f.t_sent * o->sets);
    f.t_all = xmalloc(sizeof *f.t_all * o->sets);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int c = 0; c < o->conns; c++) {
        set_nonblock(cs[c].fd);
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)c };
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[c].fd, &ev);
    }
    set_nonblock(w.fd);
    struct epoll_event wev = { .events = EPOLLIN, .data.u32 = (uint32_t)o->conns };
    epoll_ctl(ep, EPOLL_CTL_ADD, w.fd, &wev);

    uint64_t sent = 0, answered = 0, want = (uint64_t)o->watches * o->sets, canceled = 0;
    uint64_t wrong_rev = 0;
    double cpu0 = cpu_seconds();
    uint64_t t0 = now_ns(), t_last_answer = t0, progress = t0;
    struct epoll_event evs[512];

    while (!stop_flag && (answered < o->sets || f.events < want)) {
        /* Keep DEPTH Sets outstanding. */
        while (sent < o->sets && sent - answered < (uint64_t)o->depth) {
            put_request(&out, w.next_id++, "Set", pl, pl_len);
            f.t_sent[sent++] = now_ns();
        }
        send_all(w.fd, &out);   /* small: fits the socket buffer */
        int n = epoll_wait(ep, evs, 512, 100);
        uint64_t now = now_ns();
        if (n > 0)
            progress = now;
        else if (now - progress > (uint64_t)o->timeout_s * 1000000000u)
            break;
        for (int k = 0; k < n; k++) {
            uint32_t idx = evs[k].data.u32;
            conn *c = idx == (uint32_t)o->conns ? &w : &cs[idx];
            ssize_t got;
            while ((got = read_some(c->fd, &c->in)) > 0)
                ;
            if (got == 0)
                die("the server closed a connection");
            f.last_event_ns = now_ns();
            while (next_frame(&c->in, &r)) {
                if (c == &w && !r.stream) {
                    check_ok(&r, "Set");
                    if (set_revision(&r) != f.base_rev + answered)
                        wrong_rev++;
                    answered++;
                    t_last_answer = f.last_event_ns;
                    continue;
                }
                watch_resp wr;
                if (parse_watch(r.payload, r.payload_len, &wr, fan_event, &f) < 0)
                    die("malformed WatchResponse");
                canceled += wr.canceled;
                if (wr.canceled)
                    fprintf(stderr, "watchbench: watch %llu canceled: %.*s\n",
                            (unsigned long long)wr.watch_id, (int)wr.reason_len,
                            (const char *)wr.reason);
            }
        }
    }
    double cpu = cpu_seconds() - cpu0;
    double secs = (double)(f.last_event_ns - t0) / 1e9;
    kb_hist *h = xmalloc(sizeof *h);
    kb_hist_init(h);
    uint64_t complete = 0;
    for (uint64_t i = 0; i < o->sets; i++)
        if (f.t_all[i]) {
            kb_hist_add(h, f.t_all[i] - f.t_sent[i], 1);
            complete++;
        }
    printf("FANOUT: %d watches of one key on %d connections, %llu Sets (-P %d, -d %zu)\n",
           o->watches, o->conns, (unsigned long long)o->sets, o->depth, o->value_len);
    printf("events: %llu of %llu delivered in %.3f s: %.0f events/s; Sets: %.0f/s\n",
           (unsigned long long)f.events, (unsigned long long)want, secs,
           secs > 0 ? (double)f.events / secs : 0,
           t_last_answer > t0 ? (double)answered / ((double)(t_last_answer - t0) / 1e9) : 0);
    printf("a Set seen by all %d watches, ms after its send: p50=%.3f p99=%.3f max=%.3f "
           "(%llu Sets complete)\n", o->watches, kb_hist_percentile(h, 50) / 1e6,
           kb_hist_percentile(h, 99) / 1e6, (double)h->max / 1e6, (unsigned long long)complete);
    printf("watchbench CPU: %.3f s (%.0f%% of the run)\n", cpu, secs > 0 ? cpu / secs * 100 : 0);
    int bad = f.events != want || f.bad || canceled || wrong_rev || answered != o->sets;
    if (bad)
        fprintf(stderr, "watchbench: FAILED: %llu events of %llu, %llu out of range, %llu "
                "canceled, %llu Set answers of %llu, %llu with another writer's revision\n",
                (unsigned long long)f.events, (unsigned long long)want,
                (unsigned long long)f.bad, (unsigned long long)canceled,
                (unsigned long long)answered, (unsigned long long)o->sets,
                (unsigned long long)wrong_rev);
    close(ep);
    close(w.fd);
    kv_buf_free(&w.in);
    kv_buf_free(&out);
    free(pl);
    close_watches(cs, o->conns, ids);
    free(f.got);
    free(f.t_sent);
    free(f.t_all);
    free(h);
    return bad;
}

/* ------------------------------------------------------------ probe */

static int run_probe(const opts *o)
{
    const kb_proto *proto = kb_proto_find(o->protocol);
    if (!proto || proto == &kb_proto_echo)
        die("--protocol: kvstore or resp");
    kb_tmpl t;
    if (proto->tmpl_init(&t, KB_GET, o->value_len, 0) < 0)
        die("out of memory");
    kb_wire_put_key(t.bytes + t.key_off, o->key);
    int fd = dial(o);
    kv_buf in = KV_BUF_INIT;
    kb_hist *h = xmalloc(sizeof *h);
    kb_hist_init(h);
    uint32_t id = KB_ID_MIN;
    uint64_t slot_ns = (uint64_t)o->slot_ms * 1000000u;
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)(o->seconds * 1e9);
    uint64_t slot_start = t0, slot_n = 0, slot_max = 0, worst_at = 0, errors = 0;

    printf("probe: start %.6f (CLOCK_MONOTONIC s), GET %.*s over %s for %.1f s\n", t0 / 1e9,
           KB_KEY_LEN, (const char *)t.bytes + t.key_off - 4, proto->name, o->seconds);
    while (!stop_flag) {
        uint64_t ts = now_ns();
        if (ts >= end)
            break;
        if (slot_ns && ts - slot_start >= slot_ns) {
            if (slot_n)
                printf("slot %.3f %llu %.3f\n", slot_start / 1e9, (unsigned long long)slot_n,
                       slot_max / 1e6);
            slot_start = ts;
            slot_n = slot_max = 0;
            ts = now_ns();      /* the printing is not the request's time */
        }
        if (t.id_off) {
            kb_wire_put_id(t.bytes + t.id_off, id);
            id = id + 1 == KB_ID_END ? KB_ID_MIN : id + 1;
        }
        size_t off = 0;
        while (off < t.len) {
            ssize_t n = send(fd, t.bytes + off, t.len - off, MSG_NOSIGNAL);
            if (n <= 0)
                die("send: %s", strerror(errno));
            off += (size_t)n;
        }
        for (;;) {
            size_t need = 0;
            kb_reply rep;
            ptrdiff_t took = proto->answer(&t, t.bytes, kv_buf_head(&in), kv_buf_len(&in),
                                           &need, &rep);
            if (took < 0)
                die("%s", rep.what);
            if (took > 0) {
                if (rep.verdict != KB_VERDICT_OK)
                    errors++;
                kv_buf_consume(&in, (size_t)took);
                break;
            }
            struct pollfd p = { fd, POLLIN, 0 };
            if (poll(&p, 1, o->timeout_s * 1000) == 0)
                die("no answer within %d s", o->timeout_s);
            if (read_some(fd, &in) == 0)
                die("the server closed the connection");
        }
        uint64_t lat = now_ns() - ts;
        kb_hist_add(h, lat, 1);
        if (lat >= slot_max)
            slot_max = lat;
        if (lat == h->max)
            worst_at = ts;
        slot_n++;
    }
    if (slot_ns && slot_n)
        printf("slot %.3f %llu %.3f\n", slot_start / 1e9, (unsigned long long)slot_n,
               slot_max / 1e6);
    double secs = (now_ns() - t0) / 1e9;
    printf("PROBE: %llu GETs in %.3f s (%.0f/s), %llu errors; ms p50=%.3f p99=%.3f "
           "p99.9=%.3f max=%.3f; worst at %.6f\n", (unsigned long long)h->count, secs,
           h->count / secs, (unsigned long long)errors, kb_hist_percentile(h, 50) / 1e6,
           kb_hist_percentile(h, 99) / 1e6, kb_hist_percentile(h, 99.9) / 1e6, h->max / 1e6,
           worst_at / 1e9);
    close(fd);
    kv_buf_free(&in);
    kb_wire_tmpl_free(&t);
    free(h);
    return errors ? 1 : 0;
}

/* ------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fprintf(f,
"Usage: watchbench idle   -p PORT -w N [-C CONNS] [--format FMT] [--seconds S] [--cancel]\n"
"       watchbench fanout -p PORT -w N [-C CONNS] -n SETS [-P DEPTH] [-d BYTES]\n"
"       watchbench probe  -p PORT [--protocol kvstore|resp] [-k N] [-d BYTES]\n"
"                         --seconds S [--slot-ms MS]\n"
"Watch and expiry measurements against kvstored (see the top of bench/watchbench.c\n"
"and docs/BENCHMARKS.md). Common: -h HOST (default 127.0.0.1), --timeout SEC (give\n"
"up after SEC seconds without progress, default 10).\n");
}

static long num(const char *opt, const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "watchbench: %s: \"%s\" is not a number from %ld to %ld\n", opt, s,
                min, max);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    enum { O_FORMAT = 256, O_SECONDS, O_CANCEL, O_TIMEOUT, O_PROTOCOL, O_SLOT, O_HELP };
    static const struct option longopts[] = {
        { "format", required_argument, NULL, O_FORMAT },
        { "seconds", required_argument, NULL, O_SECONDS },
        { "cancel", no_argument, NULL, O_CANCEL },
        { "timeout", required_argument, NULL, O_TIMEOUT },
        { "protocol", required_argument, NULL, O_PROTOCOL },
        { "slot-ms", required_argument, NULL, O_SLOT },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    opts o = { .host = "127.0.0.1", .port = NULL, .format = "w%03d/", .protocol = "kvstore",
               .watches = 0, .conns = 0, .depth = 1, .timeout_s = 10, .sets = 0,
               .value_len = 3, .seconds = 3600 };
    int opt;

    if (argc < 2 || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *mode = argv[1];
    optind = 2;
    while ((opt = getopt_long(argc, argv, "h:p:w:C:n:P:d:k:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h': o.host = optarg; break;
        case 'p': o.port = optarg; break;
        case 'w': o.watches = (int)num("-w", optarg, 1, MAX_WATCHES); break;
        case 'C': o.conns = (int)num("-C", optarg, 1, MAX_CONNS); break;
        case 'n': o.sets = (uint64_t)num("-n", optarg, 1, MAX_SETS); break;
        case 'P': o.depth = (int)num("-P", optarg, 1, 100000); break;
        case 'd': o.value_len = (size_t)num("-d", optarg, 0, 1 << 20); break;
        case 'k': o.key = (uint64_t)num("-k", optarg, 0, 999999999999L); break;
        case O_FORMAT: o.format = optarg; break;
        case O_SECONDS: {
            char *end;
            o.seconds = strtod(optarg, &end);
            if (*end || end == optarg || !(o.seconds > 0 && o.seconds <= 86400)) {
                fprintf(stderr, "watchbench: --seconds: from 0 to 86400\n");
                return 2;
            }
            break;
        }
        case O_CANCEL: o.cancel = 1; break;
        case O_TIMEOUT: o.timeout_s = (int)num("--timeout", optarg, 1, 3600); break;
        case O_PROTOCOL: o.protocol = optarg; break;
        case O_SLOT: o.slot_ms = (int)num("--slot-ms", optarg, 1, 60000); break;
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!o.port) {
        fprintf(stderr, "watchbench: -p PORT is required\n");
        return 2;
    }
    struct sigaction sa = { .sa_handler = on_stop };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(mode, "probe"))
        return run_probe(&o);
    if (!o.watches) {
        fprintf(stderr, "watchbench: -w WATCHES is required\n");
        return 2;
    }
    if (!o.conns || o.conns > o.watches)
        o.conns = o.watches;
    if ((o.watches + o.conns - 1) / o.conns > 1024) {
        fprintf(stderr, "watchbench: at most 1024 watches a connection (the server's limit)\n");
        return 2;
    }
    if (!strcmp(mode, "idle"))
        return run_idle(&o);
    if (!strcmp(mode, "fanout")) {
        if (!o.sets) {
            fprintf(stderr, "watchbench: fanout: -n SETS is required\n");
            return 2;
        }
        return run_fanout(&o);
    }
    fprintf(stderr, "watchbench: unknown mode \"%s\" (idle, fanout, probe)\n", mode);
    return 2;
}
