/* run.c - the closed loop of one test: connects the clients, runs one
 * epoll loop per thread, checks and times every answer, merges the
 * threads' figures. Owns the sockets and buffers of a test for its
 * duration; what to run comes from main.c, how to print from report.c,
 * the bytes of requests and answers from the plan's protocol (proto.h), so
 * every server is driven by this same loop.
 *
 * Per request the hot path only patches 16 bytes of a pre-encoded request
 * (id and key digits) and records one histogram sample; a batch is one
 * send() and its answers usually one read(). Nothing is allocated per
 * request, so one kvbench thread outruns the server it measures. With
 * --tls the same loop reads and writes through tls.h, one branch per call;
 * the handshakes are done before the clock starts. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#include "buf.h"
#include "run.h"

/* Room made before each read(): enough for 16 small answers and more. */
#define READ_ROOM (64 * 1024)
/* How often the live progress line is redrawn, in milliseconds. */
#define PROGRESS_MS 250

typedef struct worker worker;

/* What every thread of a test reads (and the request counter they share). */
typedef struct shared {
    const kb_plan *plan;
    const kb_tmpl *tmpl;
    _Atomic uint64_t issued;   /* requests handed out to batches so far */
    _Atomic int failed;        /* a thread hit a fatal error: all stop */
    _Atomic int running;       /* threads not finished yet */
} shared;

/* One connection. A batch is out[0 .. batch * tmpl->len): BATCH copies of
 * the template with their ids and keys patched. */
typedef struct client {
    int fd;
    SSL *ssl;                  /* NULL: plaintext */
    worker *w;
    uint8_t *out;
    size_t out_len, out_off;   /* bytes of the batch; bytes already sent */
    unsigned batch, pending;   /* requests in the batch; answers still due */
    uint64_t t_send;           /* when the batch was handed to send(), ns */
    uint32_t next_id;          /* id of the next request written */
    int watching_out;          /* EPOLLOUT is on: the batch is half sent */
    kv_buf in;                 /* answers received, not yet parsed */
} client;

struct worker {
    pthread_t thread;
    shared *sh;
    client *clients;
    int nclients, epfd;
    uint64_t rng;
    uint64_t last_answer_ns;
    _Atomic uint64_t answered; /* published for the progress line */
    kb_result res;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t next_id(uint32_t id)
{
    return id + 1 == KB_ID_END ? KB_ID_MIN : id + 1;
}

/* xorshift64*: fast, and plenty uniform for picking keys. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* Records why the test stops (the first reason wins) and tells every
 * thread to stop. Returns -1 for the caller to pass on. */
static int fail(worker *w, const char *fmt, ...)
{
    va_list ap;

    if (!w->res.fatal[0]) {
        va_start(ap, fmt);
        vsnprintf(w->res.fatal, sizeof w->res.fatal, fmt, ap);
        va_end(ap);
    }
    atomic_store(&w->sh->failed, 1);
    return -1;
}

static int watch_out(client *c, int on)
{
    struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };

    c->watching_out = on;
    if (epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        return fail(c->w, "epoll_ctl: %s", strerror(errno));
    return 0;
}

/* Why the last read or write of C failed, from errno. */
static const char *io_error(const client *c)
{
    return c->ssl && errno == EPROTO ? kb_tls_reason() : strerror(errno);
}

/* Sends what is left of the batch. Returns 0 (sent, or waiting for room)
 * or -1 (fatal). */
static int flush(client *c)
{
    while (c->out_off < c->out_len) {
        const uint8_t *rest = c->out + c->out_off;
        size_t len = c->out_len - c->out_off;
        ssize_t n = c->ssl ? kb_tls_write(c->ssl, rest, len)
                           : send(c->fd, rest, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return c->watching_out ? 0 : watch_out(c, 1);
            return fail(c->w, "send: %s", io_error(c));
        }
        c->out_off += (size_t)n;
    }
    return c->watching_out ? watch_out(c, 0) : 0;
}

static uint64_t pick_key(worker *w, uint64_t seq)
{
    const kb_plan *p = w->sh->plan;

    switch (p->keys) {
    case KB_KEYS_RANDOM:
        /* Lemire's multiply-shift: uniform over [0, keyspace) without %. */
        return p->keyspace
            ? (uint64_t)(__extension__((unsigned __int128)rng_next(&w->rng) * p->keyspace) >> 64)
            : 0;
    case KB_KEYS_SEQUENTIAL:
        return p->keyspace ? seq % p->keyspace : seq;
    default:
        return 0;
    }
}

/* Claims and sends the client's next batch. Returns 1 when a batch went
 * out, 0 when every request of the test is already claimed, -1 on a fatal
 * error. */
static int start_batch(client *c)
{
    worker *w = c->w;
    const kb_plan *p = w->sh->plan;
    const kb_tmpl *t = w->sh->tmpl;
    uint64_t first = atomic_fetch_add_explicit(&w->sh->issued, (uint64_t)p->pipeline,
                                               memory_order_relaxed);
    if (first >= p->requests)
        return 0;
    uint64_t left = p->requests - first;
    unsigned k = left < (uint64_t)p->pipeline ? (unsigned)left : (unsigned)p->pipeline;
    int patch_key = p->keys != KB_KEYS_FIXED && t->key_off;

    for (unsigned i = 0; i < k; i++) {
        uint8_t *req = c->out + (size_t)i * t->len;
        if (t->id_off) {
            kb_wire_put_id(req + t->id_off, c->next_id);
            c->next_id = next_id(c->next_id);
        }
        if (patch_key)
            kb_wire_put_key(req + t->key_off, pick_key(w, first + i));
    }
    c->batch = c->pending = k;
    c->out_len = (size_t)k * t->len;
    c->out_off = 0;
    c->t_send = now_ns();
    return flush(c) < 0 ? -1 : 1;
}

/* "WHAT: DETAIL", or WHAT alone when the server said nothing more. */
static void describe(char *out, size_t len, const kb_reply *a)
{
    snprintf(out, len, "%s%s%.*s", a->what ? a->what : "?", a->detail_len ? ": " : "",
             (int)a->detail_len, (const char *)a->detail);
}

/* Counts one answer that arrived at NOW. */
static void account(client *c, const kb_reply *a, uint64_t now)
{
    kb_result *r = &c->w->res;

    r->answered++;
    switch (a->verdict) {
    case KB_VERDICT_OK:
        r->ok++;
        kb_hist_add(&r->latency, now - c->t_send, 1);
        break;
    case KB_VERDICT_ERROR:
        if (!r->errors++)
            describe(r->first_error, sizeof r->first_error, a);
        break;
    default:
        if (!r->wrong++)
            describe(r->first_wrong, sizeof r->first_wrong, a);
        break;
    }
}

/* Reads what the socket has and handles every whole answer in it; sets
 * *MORE when TLS holds bytes already taken from the socket. Returns 1
 * while the client has work, 0 once it has no more batches to send, -1 on
 * a fatal error. */
static int read_answers(client *c, int *more)
{
    worker *w = c->w;
    const kb_tmpl *t = w->sh->tmpl;
    const kb_proto *proto = w->sh->plan->proto;
    int wants_write = 0;

    *more = 0;
    if (kv_buf_reserve(&c->in, READ_ROOM) < 0)
        return fail(w, "out of memory");
    ssize_t n = c->ssl ? kb_tls_read(c->ssl, kv_buf_tail(&c->in), kv_buf_room(&c->in),
                                     &wants_write)
                       : read(c->fd, kv_buf_tail(&c->in), kv_buf_room(&c->in));
    if (n < 0) {
        /* TLS may need the socket writable to go on reading: the next
         * EPOLLOUT retries the read (worker_main). */
        if (wants_write && !c->watching_out && watch_out(c, 1) < 0)
            return -1;
        return errno == EAGAIN || errno == EINTR ? 1 : fail(w, "read: %s", io_error(c));
    }
    *more = c->ssl && kb_tls_has_pending(c->ssl);
    if (n == 0)
        return fail(w, "the server closed a connection with %u answers due", c->pending);
    kv_buf_commit(&c->in, (size_t)n);

    /* Like redis-benchmark, an answer's latency runs from its batch's send
     * to the read() that completed it. */
    uint64_t now = now_ns();
    w->last_answer_ns = now;
    while (kv_buf_len(&c->in)) {
        if (!c->pending)
            return fail(w, "the server sent an answer to no request");
        const uint8_t *req = c->out + (size_t)(c->batch - c->pending) * t->len;
        size_t have = kv_buf_len(&c->in), need = 0;
        kb_reply a;
        ptrdiff_t used = proto->answer(t, req, kv_buf_head(&c->in), have, &need, &a);
        if (used == 0) {
            /* Make room for a large answer at once, not 64 KiB a read. */
            if (need > have && kv_buf_reserve(&c->in, need - have) < 0)
                return fail(w, "out of memory for a %zu-byte answer", need);
            break;
        }
        if (used < 0) {
            char why[256];
            describe(why, sizeof why, &a);
            return fail(w, "%s", why);
        }
        account(c, &a, now);
        c->pending--;
        kv_buf_consume(&c->in, (size_t)used);
        if (!c->pending) {
            int r = start_batch(c);
            if (r <= 0)
                return r;
        }
    }
    return 1;
}

/* read_answers until the socket has nothing more for now: with TLS's
 * read-ahead, records already taken from the socket wait inside OpenSSL,
 * where no epoll event would announce them. */
static int on_readable(client *c)
{
    int more, r;

    do
        r = read_answers(c, &more);
    while (r == 1 && more);
    return r;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    const kb_plan *p = w->sh->plan;
    struct epoll_event evs[64];
    int active = 0;

    w->last_answer_ns = now_ns();
    for (int i = 0; i < w->nclients; i++) {
        int r = start_batch(&w->clients[i]);
        if (r < 0)
            goto out;
        active += r;
    }
    while (active > 0 && !atomic_load_explicit(&w->sh->failed, memory_order_relaxed)) {
        int n = epoll_wait(w->epfd, evs, 64, 200);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail(w, "epoll_wait: %s", strerror(errno));
            break;
        }
        if (n == 0 && now_ns() - w->last_answer_ns > (uint64_t)p->timeout_s * 1000000000u) {
            fail(w, "no answer from the server for %d s", p->timeout_s);
            break;
        }
        for (int i = 0; i < n; i++) {
            client *c = evs[i].data.ptr;
            int r = 1;
            /* TLS may read to write or write to read: any event tries both
             * (a flush with nothing to send costs no call). */
            int out = c->ssl || (evs[i].events & EPOLLOUT);
            int in = c->ssl || (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP));
            if (out && flush(c) < 0)
                goto out;
            if (in)
                r = on_readable(c);
            if (r < 0)
                goto out;
            if (r == 0) {
                active--;
                /* Done: stop listening, so a closing server does not wake us. */
                epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
            }
        }
        atomic_store_explicit(&w->answered, w->res.answered, memory_order_relaxed);
    }
out:
    atomic_store_explicit(&w->answered, w->res.answered, memory_order_relaxed);
    atomic_fetch_sub(&w->sh->running, 1);
    return NULL;
}

/* Connects one client (non-blocking, no Nagle; with P->tls, the TLS
 * handshake too, into *SSL), bounded by TIMEOUT_S each. Returns the
 * socket, or -1 with the reason in ERR. */
static int connect_to(const kb_plan *p, SSL **ssl, char *err, size_t errlen)
{
    int one = 1, soerr = 0;
    socklen_t sl = sizeof soerr;
    int fd = socket(p->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, p->addr, p->addrlen) < 0) {
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        if (errno != EINPROGRESS) {
            soerr = errno;
        } else if (poll(&pfd, 1, p->timeout_s * 1000) != 1) {
            soerr = ETIMEDOUT;
        } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
            soerr = errno;
        }
        if (soerr) {
            snprintf(err, errlen, "cannot connect: %s", strerror(soerr));
            close(fd);
            return -1;
        }
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (p->tls && !(*ssl = kb_tls_connect(p->tls, fd, p->tls_host, p->timeout_s, err, errlen))) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Redraws the progress line until every thread is done. */
static void watch(const kb_plan *p, shared *sh, worker *ws, int nthreads, uint64_t start)
{
    uint64_t last_t = start, last_n = 0, next = start + PROGRESS_MS * 1000000ull;
    int width = 0;
    struct timespec nap = { 0, 10 * 1000000 };

    while (atomic_load(&sh->running) > 0) {
        nanosleep(&nap, NULL);
        uint64_t now = now_ns();
        if (!p->progress || now < next)
            continue;
        next = now + PROGRESS_MS * 1000000ull;
        uint64_t n = 0;
        for (int i = 0; i < nthreads; i++)
            n += atomic_load_explicit(&ws[i].answered, memory_order_relaxed);
        double rps = (double)(n - last_n) * 1e9 / (double)(now - last_t);
        double all = (double)n * 1e9 / (double)(now - start);
        width = printf("%s: rps=%.1f (overall: %.1f) %llu/%llu requests   \r",
                       kb_wire_method_title(p->method), rps, all, (unsigned long long)n,
                       (unsigned long long)p->requests);
        fflush(stdout);
        last_t = now;
        last_n = n;
    }
    if (width > 0) {
        printf("%*s\r", width, "");
        fflush(stdout);
    }
}

/* Adds thread W's figures to RES. */
static void merge(kb_result *res, const kb_result *w)
{
    res->answered += w->answered;
    res->ok += w->ok;
    if (!res->errors && w->errors)
        memcpy(res->first_error, w->first_error, sizeof res->first_error);
    res->errors += w->errors;
    if (!res->wrong && w->wrong)
        memcpy(res->first_wrong, w->first_wrong, sizeof res->first_wrong);
    res->wrong += w->wrong;
    if (!res->fatal[0] && w->fatal[0])
        memcpy(res->fatal, w->fatal, sizeof res->fatal);
    kb_hist_merge(&res->latency, &w->latency);
}

/* Gives thread W its share of the clients (CS[first .. first + n)) and
 * connects them. Returns 0, or -1 with the reason in RES->fatal. */
static int setup_worker(worker *w, shared *sh, client *cs, int first, int n, uint64_t seed,
                        kb_result *res)
{
    const kb_plan *p = sh->plan;
    const kb_tmpl *t = sh->tmpl;

    w->sh = sh;
    w->clients = cs + first;
    w->nclients = n;
    w->rng = seed | 1;
    kb_hist_init(&w->res.latency);
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0) {
        snprintf(res->fatal, sizeof res->fatal, "epoll_create1: %s", strerror(errno));
        return -1;
    }
    for (int j = 0; j < n; j++) {
        client *c = &w->clients[j];
        c->w = w;
        c->next_id = KB_ID_MIN;
        c->out = malloc((size_t)p->pipeline * t->len);
        if (!c->out) {
            snprintf(res->fatal, sizeof res->fatal, "out of memory");
            return -1;
        }
        for (int k = 0; k < p->pipeline; k++)
            memcpy(c->out + (size_t)k * t->len, t->bytes, t->len);
        c->fd = connect_to(p, &c->ssl, res->fatal, sizeof res->fatal);
        if (c->fd < 0)
            return -1;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
            snprintf(res->fatal, sizeof res->fatal, "epoll_ctl: %s", strerror(errno));
            return -1;
        }
    }
    return 0;
}

int kb_run(const kb_plan *p, kb_result *res)
{
    int nthreads = p->threads < 1 ? 1 : p->threads > p->clients ? p->clients : p->threads;
    kb_tmpl tmpl;
    shared sh = { .plan = p, .tmpl = &tmpl };
    client *cs = NULL;
    worker *ws = NULL;
    int started, i;

    memset(res, 0, sizeof *res);
    kb_hist_init(&res->latency);
    if (p->proto->tmpl_init(&tmpl, p->method, p->value_len, p->ttl_ms) < 0) {
        snprintf(res->fatal, sizeof res->fatal, "out of memory");
        return -1;
    }
    cs = calloc((size_t)p->clients, sizeof *cs);
    ws = calloc((size_t)nthreads, sizeof *ws);
    if (!cs || !ws) {
        snprintf(res->fatal, sizeof res->fatal, "out of memory");
        goto out;
    }
    for (i = 0; i < p->clients; i++)
        cs[i].fd = -1;
    for (i = 0; i < nthreads; i++)
        ws[i].epfd = -1;
    for (i = 0; i < nthreads; i++) {
        int first = (int)((int64_t)p->clients * i / nthreads);
        int next = (int)((int64_t)p->clients * (i + 1) / nthreads);
        uint64_t seed = now_ns() ^ ((uint64_t)getpid() << 32)
                        ^ (0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1));
        if (setup_worker(&ws[i], &sh, cs, first, next - first, seed, res) < 0)
            goto out;
    }

    uint64_t start = now_ns(), end = start;
    atomic_store(&sh.running, nthreads);
    for (started = 0; started < nthreads; started++) {
        if (pthread_create(&ws[started].thread, NULL, worker_main, &ws[started]) != 0) {
            snprintf(res->fatal, sizeof res->fatal, "cannot start a thread");
            atomic_store(&sh.failed, 1);
            atomic_fetch_sub(&sh.running, nthreads - started);
            break;
        }
    }
    watch(p, &sh, ws, started, start);
    for (i = 0; i < started; i++) {
        pthread_join(ws[i].thread, NULL);
        merge(res, &ws[i].res);
        if (ws[i].last_answer_ns > end)
            end = ws[i].last_answer_ns;
    }
    res->seconds = (double)(end - start) / 1e9;

out:
    for (i = 0; cs && i < p->clients; i++) {
        kb_tls_free(cs[i].ssl);
        if (cs[i].fd >= 0)
            close(cs[i].fd);
        free(cs[i].out);
        kv_buf_free(&cs[i].in);
    }
    for (i = 0; ws && i < nthreads; i++)
        if (ws[i].epfd >= 0)
            close(ws[i].epfd);
    free(cs);
    free(ws);
    kb_wire_tmpl_free(&tmpl);
    return res->fatal[0] ? -1 : 0;
}
