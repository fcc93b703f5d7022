/* scan.c - the range test (scan.h): one thread and one connection per
 * client, each reading the whole range page by page with blocking I/O
 * bounded by the timeout. Requests are encoded and answers read by hand, as
 * in wire.c and resp.c, so that the client's share of a page's time stays
 * small: nothing is allocated per key. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <kvstore/status.h>
#include "buf.h"
#include "frame.h"
#include "scan.h"
#include "varint.h"
#include "wire.h"

/* Room made before each read(): a page of 1000 small keys in one or two. */
#define READ_ROOM (256 * 1024)
/* Where kvstore's range starts, and the first key after every "key:..." */
#define RANGE_START KB_KEY_PREFIX
#define RANGE_END "key;"
/* The longest key remembered for paging (a kvstore key is at most 64 KiB). */
#define KEY_MAX 65536

typedef struct scanner {
    pthread_t thread;
    const kb_scan_plan *plan;
    int fd;
    kv_buf in, out;
    uint8_t *seen;              /* one bit per key of the keyspace */
    uint64_t seen_count;        /* bits set */
    const uint8_t *xs;          /* the expected value: value_len 'x's */
    uint8_t *last;              /* kvstore: the last key read (KEY_MAX bytes) */
    size_t last_len;
    int have_last;
    uint32_t next_id;
    uint64_t t_page, t_end;     /* ns: start of the current page; last page's end */
    kb_scan_result res;
} scanner;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Records why the scan stops (the first reason wins). Returns -1. */
static int fail(scanner *s, const char *fmt, ...)
{
    va_list ap;

    if (!s->res.fatal[0]) {
        va_start(ap, fmt);
        vsnprintf(s->res.fatal, sizeof s->res.fatal, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Counts one wrong answer, keeping the first description. */
static void wrong(scanner *s, const char *fmt, ...)
{
    va_list ap;

    if (!s->res.wrong++) {
        va_start(ap, fmt);
        vsnprintf(s->res.first_wrong, sizeof s->res.first_wrong, fmt, ap);
        va_end(ap);
    }
}

/* Waits until the socket is ready for EVENTS. Returns 0, or -1 (fatal). */
static int wait_for(scanner *s, short events)
{
    struct pollfd pfd = { .fd = s->fd, .events = events };

    for (;;) {
        int n = poll(&pfd, 1, s->plan->timeout_s * 1000);
        if (n > 0)
            return 0;
        if (n == 0)
            return fail(s, "no answer from the server for %d s", s->plan->timeout_s);
        if (errno != EINTR)
            return fail(s, "poll: %s", strerror(errno));
    }
}

/* Sends everything in s->out and empties it. */
static int send_out(scanner *s)
{
    while (kv_buf_len(&s->out)) {
        ssize_t n = send(s->fd, kv_buf_head(&s->out), kv_buf_len(&s->out), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (wait_for(s, POLLOUT) < 0)
                    return -1;
                continue;
            }
            return fail(s, "send: %s", strerror(errno));
        }
        kv_buf_consume(&s->out, (size_t)n);
    }
    return 0;
}

/* Reads once more into s->in, making room for NEED bytes in all (at least
 * READ_ROOM more). Returns 0, or -1 (fatal). */
static int read_more(scanner *s, size_t need)
{
    size_t have = kv_buf_len(&s->in);
    size_t room = need > have && need - have > READ_ROOM ? need - have : READ_ROOM;

    if (kv_buf_reserve(&s->in, room) < 0)
        return fail(s, "out of memory for a %zu-byte answer", need);
    for (;;) {
        ssize_t n = read(s->fd, kv_buf_tail(&s->in), kv_buf_room(&s->in));
        if (n > 0) {
            kv_buf_commit(&s->in, (size_t)n);
            return 0;
        }
        if (n == 0)
            return fail(s, "the server closed the connection");
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return fail(s, "read: %s", strerror(errno));
        if (wait_for(s, POLLIN) < 0)
            return -1;
    }
}

/* Whether K is a key of the keyspace; its number in *IDX. */
static int ours(const kb_scan_plan *p, const uint8_t *k, size_t klen, uint64_t *idx)
{
    *idx = 0;
    if (klen != KB_KEY_LEN || memcmp(k, KB_KEY_PREFIX, 4) != 0)
        return 0;
    for (size_t i = 4; i < KB_KEY_LEN; i++) {
        if (k[i] < '0' || k[i] > '9')
            return 0;
        *idx = *idx * 10 + (uint64_t)(k[i] - '0');
    }
    return *idx < p->keyspace;
}

/* Counts a key read: its place in the keyspace, once, and its value (V
 * NULL: checked elsewhere). Keys outside the keyspace are only counted. */
static void see(scanner *s, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    const kb_scan_plan *p = s->plan;
    uint64_t idx;

    s->res.keys++;
    if (!ours(p, k, klen, &idx)) {
        s->res.foreign++;
        return;
    }
    if (s->seen[idx / 8] & (1u << (idx % 8))) {
        s->res.repeats++;
    } else {
        s->seen[idx / 8] |= (uint8_t)(1u << (idx % 8));
        s->seen_count++;
    }
    if (v && (vlen != p->value_len || (vlen && memcmp(v, s->xs, vlen) != 0)))
        wrong(s, "the value of %.*s is not the one stored (%zu bytes)", (int)klen,
              (const char *)k, vlen);
}

/* A page is in: its time. */
static int page_done(scanner *s)
{
    uint64_t now = now_ns();

    kb_hist_add(&s->res.latency, now - s->t_page, 1);
    s->res.pages++;
    s->t_page = s->t_end = now;
    return 0;
}

/* ------------------------------------------------------------- kvstore */

static uint8_t *put_tag(uint8_t *b, unsigned field, unsigned type)
{
    return kv_varint_put(b, (uint64_t)field << 3 | type);
}

static uint8_t *put_bytes(uint8_t *b, unsigned field, const void *p, size_t len)
{
    b = put_tag(b, field, 2);
    b = kv_varint_put(b, len);
    memcpy(b, p, len);
    return b + len;
}

/* Encodes the Range request of the next page into s->out. */
static int kv_request(scanner *s)
{
    static const char path[] = "/kvstore.v1.KV/Range";
    const uint8_t *start = s->have_last ? s->last : (const uint8_t *)RANGE_START;
    size_t start_len = s->have_last ? s->last_len + 1 : strlen(RANGE_START);
    size_t payload_len = 1 + kv_varint_size(start_len) + start_len
                         + 1 + 1 + strlen(RANGE_END) + 1 + kv_varint_size(s->plan->page);
    size_t body_len = 1 + kv_varint_size(s->next_id) + 1 + 1 + strlen(path)
                      + 1 + kv_varint_size(payload_len) + payload_len;

    if (kv_buf_reserve(&s->out, KV_FRAME_PREFIX_MAX + body_len) < 0)
        return fail(s, "out of memory");
    uint8_t *b = kv_buf_tail(&s->out), *b0 = b;
    b += kv_frame_put_prefix(b, (uint32_t)body_len);
    b = put_tag(b, 1, 0);
    b = kv_varint_put(b, s->next_id);
    b = put_bytes(b, 2, path, strlen(path));
    b = put_tag(b, 3, 2);
    b = kv_varint_put(b, payload_len);
    b = put_bytes(b, 1, start, start_len);      /* last key + "\0": see kv_page */
    b = put_bytes(b, 2, RANGE_END, strlen(RANGE_END));
    b = put_tag(b, 4, 0);
    b = kv_varint_put(b, s->plan->page);
    kv_buf_commit(&s->out, (size_t)(b - b0));
    return 0;
}

/* Reads one KeyValue of a page: checks its order, counts it, remembers it.
 * A key out of order stops the scan: each page must start after the last
 * one, or the paging might never end. */
static int kv_entry(scanner *s, const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n, *k = NULL, *v = (const uint8_t *)"";
    size_t klen = 0, vlen = 0;
    kb_pb_field f;
    int r;

    while ((r = kb_pb_next_field(&p, end, &f)) == 1) {
        if (f.number == 1 && f.is_bytes) {
            k = f.bytes;
            klen = f.len;
        } else if (f.number == 2 && f.is_bytes) {
            v = f.bytes;
            vlen = f.len;
        }
    }
    if (r < 0 || !k || klen > KEY_MAX)
        return fail(s, "a KeyValue of the answer is malformed");
    if (s->have_last) {
        size_t m = klen < s->last_len ? klen : s->last_len;
        int c = memcmp(s->last, k, m);
        if (c > 0 || (c == 0 && s->last_len >= klen)) {
            wrong(s, "keys out of order: %.*s after %.*s", (int)klen, (const char *)k,
                  (int)s->last_len, (const char *)s->last);
            return fail(s, "keys out of order");
        }
    }
    see(s, k, klen, v, vlen);
    memcpy(s->last, k, klen);
    s->last_len = klen;
    s->have_last = 1;
    return 0;
}

/* Reads the answer to the page asked for. Returns 1 when more pages
 * follow, 0 at the end of the range, -1 when the scan must stop. */
static int kv_page(scanner *s)
{
    size_t off, len;
    kb_answer a;
    kb_pb_field f;
    uint64_t more = 0, got = 0;
    int r;

    for (;;) {
        off = len = 0;      /* len stays 0 while the prefix is incomplete */
        kv_frame_result fr = kv_frame_decode(kv_buf_head(&s->in), kv_buf_len(&s->in),
                                             KB_ANSWER_MAX, &off, &len);
        if (fr == KV_FRAME_OK)
            break;
        if (fr != KV_FRAME_PARTIAL)
            return fail(s, "the server sent a malformed or oversized frame");
        if (read_more(s, len ? off + len : 0) < 0)
            return -1;
    }
    if (kb_wire_answer_parse(kv_buf_head(&s->in) + off, len, &a) < 0)
        return fail(s, "the server sent a frame that is not an RpcResponse");
    if (a.id != s->next_id)
        return fail(s, "the server answered id %llu, not %u", (unsigned long long)a.id,
                    s->next_id);
    s->next_id = s->next_id + 1 == KB_ID_END ? KB_ID_MIN : s->next_id + 1;
    if (a.code != 0) {
        if (!s->res.errors++)
            snprintf(s->res.first_error, sizeof s->res.first_error, "%s: %.*s",
                     kv_status_name((int)a.code), (int)a.message_len,
                     (const char *)a.message);
        return -1;
    }
    const uint8_t *p = a.payload, *end = a.payload + a.payload_len;
    while (p && (r = kb_pb_next_field(&p, end, &f)) == 1) {
        if (f.number == 1 && f.is_bytes) {
            if (kv_entry(s, f.bytes, f.len) < 0)
                return -1;
            got++;
        } else if (f.number == 2 && !f.is_bytes) {
            more = f.varint;
        }
    }
    if (p && r < 0)
        return fail(s, "the answer is not a RangeResponse");
    kv_buf_consume(&s->in, off + len);
    if (got > s->plan->page)
        wrong(s, "a page of %llu keys for a limit of %u", (unsigned long long)got,
              s->plan->page);
    if (more && !got)
        return fail(s, "more = true on a page with no keys");
    /* The next page starts right after the last key: last key + "\0". */
    s->last[s->last_len] = 0;
    return more ? 1 : 0;
}

static int kv_scan(scanner *s)
{
    int r;

    do {
        if (kv_request(s) < 0 || send_out(s) < 0)
            return -1;
        s->res.calls++;
        if ((r = kv_page(s)) < 0 || page_done(s) < 0)
            return -1;
    } while (r);
    return 0;
}

/* --------------------------------------------------------------- RESP */

static void put_resp_bulk(uint8_t **b, const void *p, size_t len)
{
    *b += sprintf((char *)*b, "$%zu\r\n", len);
    memcpy(*b, p, len);
    memcpy(*b + len, "\r\n", 2);
    *b += len + 2;
}

/* Appends "SCAN CURSOR COUNT PAGE" to s->out. */
static int resp_scan_request(scanner *s, const char *cursor)
{
    char page[16];

    snprintf(page, sizeof page, "%u", s->plan->page);
    if (kv_buf_reserve(&s->out, 128) < 0)
        return fail(s, "out of memory");
    uint8_t *b = kv_buf_tail(&s->out), *b0 = b;
    b += sprintf((char *)b, "*4\r\n");
    put_resp_bulk(&b, "SCAN", 4);
    put_resp_bulk(&b, cursor, strlen(cursor));
    put_resp_bulk(&b, "COUNT", 5);
    put_resp_bulk(&b, page, strlen(page));
    kv_buf_commit(&s->out, (size_t)(b - b0));
    s->res.calls++;
    return 0;
}

/* Reads a "TYPE<number>\r\n" header at P[*OFF] of a reply known to be
 * whole. Returns 0 and the number, or -1 when it is another type. */
static int resp_head(const uint8_t *p, size_t *off, char type, long long *v)
{
    char *end;

    if (p[*off] != type)
        return -1;
    *v = strtoll((const char *)p + *off + 1, &end, 10);
    *off = (size_t)((const uint8_t *)end - p) + 2;
    return 0;
}

/* Waits for one whole reply at the front of s->in; its length in *LEN. */
static int resp_reply(scanner *s, size_t *len)
{
    for (;;) {
        size_t need = 0;
        ptrdiff_t n = kb_resp_reply_len(kv_buf_head(&s->in), kv_buf_len(&s->in), &need);
        if (n > 0) {
            *len = (size_t)n;
            return 0;
        }
        if (n < 0)
            return fail(s, "the server sent bytes that are not a RESP reply");
        if (read_more(s, need) < 0)
            return -1;
    }
}

/* An error reply at the front of s->in: counted, and the scan stops. */
static int resp_error(scanner *s, size_t len)
{
    if (!s->res.errors++)
        snprintf(s->res.first_error, sizeof s->res.first_error, "error reply: %.*s",
                 (int)len - 3, (const char *)kv_buf_head(&s->in) + 1);
    return -1;
}

/* Reads a SCAN reply: its cursor into CURSOR, its keys counted, and those
 * of the keyspace put in an MGET appended to s->out (nothing when there are
 * none). Returns the number of keys in the MGET, or -1. */
static long long resp_scan_reply(scanner *s, char *cursor, size_t cursor_size)
{
    size_t len, off = 0;
    long long n, clen, nkeys;

    if (resp_reply(s, &len) < 0)
        return -1;
    const uint8_t *p = kv_buf_head(&s->in);
    if (p[0] == '-')
        return resp_error(s, len);
    if (resp_head(p, &off, '*', &n) < 0 || n != 2 || resp_head(p, &off, '$', &clen) < 0
        || clen < 1 || (size_t)clen >= cursor_size)
        return fail(s, "the SCAN reply is not [cursor, keys]");
    memcpy(cursor, p + off, (size_t)clen);
    cursor[clen] = 0;
    off += (size_t)clen + 2;
    if (resp_head(p, &off, '*', &n) < 0 || n < 0)
        return fail(s, "the SCAN reply is not [cursor, keys]");
    /* Which keys are ours, first: the MGET's header counts them. */
    nkeys = 0;
    for (long long i = 0, o = (long long)off; i < n; i++) {
        size_t at = (size_t)o;
        long long klen;
        uint64_t idx;
        if (resp_head(p, &at, '$', &klen) < 0 || klen < 0)
            return fail(s, "a key of the SCAN reply is not a bulk string");
        nkeys += ours(s->plan, p + at, (size_t)klen, &idx);
        o = (long long)(at + (size_t)klen + 2);
    }
    if (n) {
        /* The MGET is at most the reply's own size plus its header. */
        if (kv_buf_reserve(&s->out, len + 64) < 0)
            return fail(s, "out of memory");
        p = kv_buf_head(&s->in);
        uint8_t *b = kv_buf_tail(&s->out), *b0 = b;
        b += sprintf((char *)b, "*%lld\r\n", nkeys + 1);
        put_resp_bulk(&b, "MGET", 4);
        for (long long i = 0; i < n; i++) {
            long long klen = 0;
            size_t start = off;
            uint64_t idx;
            resp_head(p, &off, '$', &klen);    /* checked above */
            if (ours(s->plan, p + off, (size_t)klen, &idx)) {
                memcpy(b, p + start, off - start + (size_t)klen + 2);
                b += off - start + (size_t)klen + 2;
            }
            see(s, p + off, (size_t)klen, NULL, 0);
            off += (size_t)klen + 2;
        }
        if (nkeys) {
            kv_buf_commit(&s->out, (size_t)(b - b0));
            s->res.calls++;
        }
    }
    kv_buf_consume(&s->in, len);
    return nkeys;
}

/* Reads the MGET reply of NKEYS values and checks them. */
static int resp_mget_reply(scanner *s, long long nkeys)
{
    size_t len, off = 0;
    long long n;

    if (resp_reply(s, &len) < 0)
        return -1;
    const uint8_t *p = kv_buf_head(&s->in);
    if (p[0] == '-')
        return resp_error(s, len);
    if (resp_head(p, &off, '*', &n) < 0 || n != nkeys)
        return fail(s, "the MGET reply is not an array of %lld values", nkeys);
    for (long long i = 0; i < n; i++) {
        long long vlen;
        if (resp_head(p, &off, '$', &vlen) < 0)
            return fail(s, "a value of the MGET reply is not a bulk string");
        if (vlen < 0) {
            wrong(s, "MGET: a key that SCAN gave has no value");
            continue;
        }
        if ((size_t)vlen != s->plan->value_len || memcmp(p + off, s->xs, (size_t)vlen) != 0)
            wrong(s, "MGET: a value is not the one stored (%lld bytes)", vlen);
        off += (size_t)vlen + 2;
    }
    kv_buf_consume(&s->in, len);
    return 0;
}

static int resp_scan(scanner *s)
{
    char cursor[32] = "0";
    long long nkeys;

    if (resp_scan_request(s, cursor) < 0 || send_out(s) < 0)
        return -1;
    for (;;) {
        if ((nkeys = resp_scan_reply(s, cursor, sizeof cursor)) < 0)
            return -1;
        int last = strcmp(cursor, "0") == 0;
        /* The MGET of this page and the SCAN of the next go together. */
        if (!last && resp_scan_request(s, cursor) < 0)
            return -1;
        if (send_out(s) < 0 || (nkeys && resp_mget_reply(s, nkeys) < 0) || page_done(s) < 0)
            return -1;
        if (last)
            return 0;
    }
}

/* ------------------------------------------------------------- running */

static int connect_to(scanner *s)
{
    const kb_scan_plan *p = s->plan;
    int one = 1, soerr = 0;
    socklen_t sl = sizeof soerr;

    s->fd = socket(p->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return fail(s, "socket: %s", strerror(errno));
    if (connect(s->fd, p->addr, p->addrlen) < 0) {
        if (errno != EINPROGRESS)
            return fail(s, "cannot connect: %s", strerror(errno));
        if (wait_for(s, POLLOUT) < 0)
            return -1;
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        if (soerr)
            return fail(s, "cannot connect: %s", strerror(soerr));
    }
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

static void *scanner_main(void *arg)
{
    scanner *s = arg;
    const kb_scan_plan *p = s->plan;

    s->t_page = s->t_end = now_ns();
    if ((p->proto == &kb_proto_resp ? resp_scan(s) : kv_scan(s)) == 0
        && s->seen_count != p->keyspace)
        wrong(s, "%llu of the %llu keys were never seen",
              (unsigned long long)(p->keyspace - s->seen_count),
              (unsigned long long)p->keyspace);
    s->res.distinct = s->seen_count;
    return NULL;
}

static void merge(kb_scan_result *res, const kb_scan_result *r)
{
    res->pages += r->pages;
    res->calls += r->calls;
    res->keys += r->keys;
    res->distinct += r->distinct;
    res->repeats += r->repeats;
    res->foreign += r->foreign;
    if (!res->errors && r->errors)
        memcpy(res->first_error, r->first_error, sizeof res->first_error);
    res->errors += r->errors;
    if (!res->wrong && r->wrong)
        memcpy(res->first_wrong, r->first_wrong, sizeof res->first_wrong);
    res->wrong += r->wrong;
    if (!res->fatal[0] && r->fatal[0])
        memcpy(res->fatal, r->fatal, sizeof res->fatal);
    kb_hist_merge(&res->latency, &r->latency);
}

int kb_scan_run(const kb_scan_plan *p, kb_scan_result *res)
{
    scanner *ss = calloc((size_t)p->clients, sizeof *ss);
    uint8_t *xs = malloc(p->value_len ? p->value_len : 1);
    int i, started = 0;

    memset(res, 0, sizeof *res);
    kb_hist_init(&res->latency);
    if (p->proto != &kb_proto_kvstore && p->proto != &kb_proto_resp) {
        snprintf(res->fatal, sizeof res->fatal, "range speaks kvstore or resp, not %s",
                 p->proto->name);
        goto out;
    }
    if (!ss || !xs) {
        snprintf(res->fatal, sizeof res->fatal, "out of memory");
        goto out;
    }
    memset(xs, 'x', p->value_len);
    for (i = 0; i < p->clients; i++) {
        scanner *s = &ss[i];
        s->plan = p;
        s->fd = -1;
        s->xs = xs;
        s->next_id = KB_ID_MIN;
        kb_hist_init(&s->res.latency);
        s->seen = calloc((size_t)(p->keyspace / 8 + 1), 1);
        s->last = malloc(KEY_MAX + 1);
        if (!s->seen || !s->last) {
            snprintf(res->fatal, sizeof res->fatal, "out of memory");
            goto out;
        }
        if (connect_to(s) < 0) {
            memcpy(res->fatal, s->res.fatal, sizeof res->fatal);
            goto out;
        }
    }
    uint64_t start = now_ns(), end = start;
    for (; started < p->clients; started++)
        if (pthread_create(&ss[started].thread, NULL, scanner_main, &ss[started]) != 0) {
            snprintf(res->fatal, sizeof res->fatal, "cannot start a thread");
            break;
        }
    for (i = 0; i < started; i++) {
        pthread_join(ss[i].thread, NULL);
        merge(res, &ss[i].res);
        if (ss[i].t_end > end)
            end = ss[i].t_end;
    }
    res->seconds = (double)(end - start) / 1e9;
out:
    for (i = 0; ss && i < p->clients; i++) {
        if (ss[i].fd >= 0)
            close(ss[i].fd);
        kv_buf_free(&ss[i].in);
        kv_buf_free(&ss[i].out);
        free(ss[i].seen);
        free(ss[i].last);
    }
    free(ss);
    free(xs);
    return res->fatal[0] || res->errors ? -1 : 0;
}
