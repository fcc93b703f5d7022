/* client.c - the C client library: one TCP connection at a time speaking
 * the kvstore framing, exposed as a ProtobufCService so protoc-c's
 * generated stubs work on it. Owns its socket (with TLS, its stream goes
 * through tls.c), buffers and the queue of calls not yet answered; reads
 * every frame (stream frames go to watch.c), waits in kv_client_poll(),
 * and retries a call on another node of a cluster when the rules of
 * client.h allow it (where to go is route.c's). The blocking helpers are
 * simple.c's, the watches watch.c's.
 * See include/kvstore/client.h for the contract. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include <kvstore/client.h>
#include "buf.h"
#include "internal.h"
#include "frame.h"
#include "route.h"
#include "tls.h"

/* Answers larger than this are refused as a broken stream. */
#define MAX_ANSWER_BYTES (UINT32_MAX)
/* In pipeline mode, queued bytes above this are pushed out (and answers
 * read) before queueing more, so a huge batch cannot deadlock with a
 * server that stops reading while its answers go unread. */
#define PIPE_PUSH_BYTES (256 * 1024)
/* How long a call is retried when the client has no timeout. */
#define RETRY_NO_TIMEOUT_MS 10000

/* What a call is, for the retry rules of client.h: a read is retried
 * freely, a write carries client_id and seq and is retried with its seq;
 * any other call only when it surely did not run (never sent, or refused
 * with UNAVAILABLE by a node that is not the leader); a Watch belongs to
 * its connection and is never sent twice. */
typedef enum call_kind { KIND_READ, KIND_WRITE, KIND_OTHER, KIND_WATCH } call_kind;

/* Where a call is. Calls are kept in call order until their closure has
 * run, which is always in that order. */
typedef enum call_state {
    CALL_QUEUED,    /* to send on the next connection (not sent, or sent
                       and to retry) */
    CALL_SENT,      /* in flight on the current connection */
    CALL_DONE,      /* answered: ANSWER waits for the closures before it */
    CALL_FAILED,    /* failed for good without an answer: STATUS, MESSAGE */
} call_state;

/* One call not yet handed to its closure. */
typedef struct pending {
    uint64_t id;
    const ProtobufCMessageDescriptor *output;   /* NULL: raw call */
    ProtobufCClosure closure;
    void *data;
    int owned;      /* the closure takes the decoded answer and frees it */
    call_kind kind;
    call_state state;
    uint8_t *frame;     /* the framed request, kept to send again; NULL
                           when the client cannot reconnect */
    size_t frame_len;
    Kvstore__V1__RpcResponse *answer;   /* CALL_DONE */
    kv_status status;   /* CALL_FAILED, or why a queued call was retried */
    char *message;      /* malloc'd, or NULL */
} pending;

struct kv_client {
    ProtobufCService service;   /* first: stubs hand it back to invoke */
    int fd;                     /* -1 while not connected */
    kvc_tls_ctx *tls_ctx;       /* the TLS settings of every connection;
                                   NULL: plaintext */
    kvc_tls *tls;               /* the connection's TLS stream, or NULL */
    int read_wants_write;       /* the last TLS read waits for POLLOUT */
    int refused;                /* the server refused this client with a TLS
                                   alert: the calls fail, not retried */
    int timeout_ms;
    int pipelining;
    int serializable;           /* kv_client_set_serializable() */
    int closing;                /* in kv_client_free(): nothing is retried */
    uint64_t next_id;
    uint64_t seq;               /* the last write's RpcRequest.seq */
    kv_buf in, out;
    pending *q;                 /* ring of unfinished calls, oldest at qhead */
    size_t qhead, qlen, qcap;
    size_t nsent;               /* calls of Q in CALL_SENT */
    int held;                   /* some call of Q is CALL_QUEUED: later
                                   calls queue behind it */
    kvc_route route;            /* route.c's: endpoints, hint, client_id */
    uint8_t *token;             /* the last token kv_client_auth() passed,
                                   presented again on each new connection */
    size_t token_len;
    kv_status last_status;
    char last_message[512];
    kv_status dropped;          /* transport error that failed calls since
                                   kv_client_pipeline_begin(), or KV_OK */
    kvc_watches watches;        /* watch.c's */
};

/* Records the outcome of the last call. */
void kvc_set_status(kv_client *c, kv_status st, const char *fmt, ...)
{
    va_list ap;

    c->last_status = st;
    c->last_message[0] = 0;
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(c->last_message, sizeof c->last_message, fmt, ap);
        va_end(ap);
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pending pop(kv_client *c)
{
    pending p = c->q[c->qhead];
    c->qhead = (c->qhead + 1) % c->qcap;
    c->qlen--;
    return p;
}

static pending *at(kv_client *c, size_t i) { return &c->q[(c->qhead + i) % c->qcap]; }

/* Adds P to the queue: last, or with FIRST before every other call (a
 * token presented again on a new connection). Returns 0 or -1. */
static int push(kv_client *c, pending p, int first)
{
    if (c->qlen == c->qcap) {
        size_t cap = c->qcap ? c->qcap * 2 : 16;
        pending *q = malloc(cap * sizeof *q);
        if (!q)
            return -1;
        for (size_t i = 0; i < c->qlen; i++)
            q[i] = *at(c, i);
        free(c->q);
        c->q = q;
        c->qcap = cap;
        c->qhead = 0;
    }
    if (first) {
        c->qhead = (c->qhead + c->qcap - 1) % c->qcap;
        c->q[c->qhead] = p;
    } else {
        *at(c, c->qlen) = p;
    }
    c->qlen++;
    return 0;
}

/* Whether C may send calls again on another connection. */
static int can_retry(const kv_client *c) { return c->route.neps > 0 && !c->closing; }

/* Records ST and MSG on P, as its end (CALL_FAILED) or, with RETRY, as why
 * it waits to be sent again (CALL_QUEUED). */
static void set_outcome(pending *p, call_state state, kv_status st, const char *msg)
{
    char *copy = strdup(msg ? msg : "");   /* MSG may be p->message */

    free(p->message);
    p->state = state;
    p->status = st;
    p->message = copy;
}

/* Runs the closures of the calls at the head of the queue that are
 * finished, in call order; stops at the first that is not. Each closure
 * sees its own status in kv_client_last_status(). */
static void deliver(kv_client *c)
{
    while (c->qlen && (c->q[c->qhead].state == CALL_DONE
                       || c->q[c->qhead].state == CALL_FAILED)) {
        pending p = pop(c);
        Kvstore__V1__RpcResponse *r = p.answer;

        if (p.state == CALL_FAILED) {
            kvc_set_status(c, p.status, "%s", p.message ? p.message : "");
            if (p.status == KV_UNAVAILABLE || p.status == KV_DEADLINE_EXCEEDED)
                c->dropped = p.status;
            p.closure(NULL, p.data);
        } else if (r->code != KVSTORE__V1__STATUS_CODE__OK) {
            kvc_set_status(c, (kv_status)r->code, "%s", r->message);
            p.closure(NULL, p.data);
        } else if (!p.output) {
            kvc_set_status(c, KV_OK, NULL);
            p.closure((const ProtobufCMessage *)&r->payload, p.data);
        } else {
            ProtobufCMessage *m = protobuf_c_message_unpack(p.output, NULL, r->payload.len,
                                                            r->payload.data);
            if (m) {
                kvc_set_status(c, KV_OK, NULL);
                p.closure(m, p.data);
                if (!p.owned)
                    protobuf_c_message_free_unpacked(m, NULL);
            } else {
                kvc_set_status(c, KV_INTERNAL, "answer does not decode as %s", p.output->name);
                p.closure(NULL, p.data);
            }
        }
        if (r)
            kvstore__v1__rpc_response__free_unpacked(r, NULL);
        free(p.frame);
        free(p.message);
    }
}

/* Closes the socket, if open; the next call connects again when C can. */
static void disconnect(kv_client *c)
{
    kvc_tls_close(c->tls);
    c->tls = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    kv_buf_free(&c->in);
    kv_buf_free(&c->out);
}

/* The connection is gone: records ST and the printf-style reason, closes
 * the socket; each call in flight waits to be sent again when the rules
 * allow (a read or a write cut off by a lost connection or a timeout, not
 * by the server refusing C: c->refused), else fails with them; every
 * watch ends; closures of finished calls run. */
static void fail_all(kv_client *c, kv_status st, const char *fmt, ...)
{
    va_list ap;
    int retry = can_retry(c) && !c->refused;

    c->last_status = st;
    va_start(ap, fmt);
    vsnprintf(c->last_message, sizeof c->last_message, fmt, ap);
    va_end(ap);
    disconnect(c);
    for (size_t i = 0; i < c->qlen; i++) {
        pending *p = at(c, i);
        int again = retry && (st == KV_UNAVAILABLE || st == KV_DEADLINE_EXCEEDED)
                    && (p->kind == KIND_READ || (p->kind == KIND_WRITE && c->route.cluster));
        if (p->state == CALL_SENT) {
            set_outcome(p, again ? CALL_QUEUED : CALL_FAILED, st, c->last_message);
            c->held |= again;
        }
        else if (p->state == CALL_QUEUED && !retry)
            set_outcome(p, CALL_FAILED, st, c->last_message);
        else if (p->state == CALL_DONE && p->kind == KIND_WATCH) {
            /* Opened on the connection just lost, its closure not run
             * yet (a call before it waits to be retried). */
            kvstore__v1__rpc_response__free_unpacked(p->answer, NULL);
            p->answer = NULL;
            set_outcome(p, CALL_FAILED, st, c->last_message);
        }
    }
    c->nsent = 0;
    c->refused = 0;
    kvc_watch_end_all(c);
    deliver(c);
}

kvc_watches *kvc_watches_of(kv_client *c) { return &c->watches; }

int kvc_refuse_in_callback(kv_client *c)
{
    if (!c->watches.calling)
        return 0;
    kvc_set_status(c, KV_FAILED_PRECONDITION, "called from a watch callback");
    return 1;
}

/* The oldest call in flight, or NULL. */
static pending *first_sent(kv_client *c)
{
    for (size_t i = 0; i < c->qlen; i++)
        if (at(c, i)->state == CALL_SENT)
            return at(c, i);
    return NULL;
}

/* Hands one decoded answer to the oldest call in flight. An UNAVAILABLE
 * answer of a call that may go elsewhere queues it again and records the
 * leader it names. Returns 0, -1 when the stream is broken (calls
 * failed), -2 when the server closes after this answer. */
static int complete(kv_client *c, const uint8_t *body, size_t len)
{
    Kvstore__V1__RpcResponse *r = kvstore__v1__rpc_response__unpack(NULL, len, body);
    pending *p;

    if (!r) {
        fail_all(c, KV_INTERNAL, "server sent a malformed RpcResponse");
        return -1;
    }
    /* Stream frames come between answers and are no answer: the in-order
     * rule is for the others. */
    if (r->stream) {
        int rc = kvc_watch_frame(c, r);
        kvstore__v1__rpc_response__free_unpacked(r, NULL);
        if (rc < 0)
            fail_all(c, KV_INTERNAL, "server sent a stream frame that is not a WatchResponse "
                     "of its watch");
        return rc;
    }
    p = first_sent(c);
    if (!p || (r->id != p->id && r->id != 0)) {
        fail_all(c, KV_INTERNAL, "server answered id %llu, expected %llu",
                 (unsigned long long)r->id, (unsigned long long)(p ? p->id : 0));
        kvstore__v1__rpc_response__free_unpacked(r, NULL);
        return -1;
    }
    c->nsent--;
    /* id 0 with an error: the server could not read a request; for an
     * oversized frame it closes the connection next. */
    int fatal = r->id == 0 && r->code == KVSTORE__V1__STATUS_CODE__RESOURCE_EXHAUSTED;
    if (r->code == KVSTORE__V1__STATUS_CODE__UNAVAILABLE && can_retry(c)
        && p->kind != KIND_WATCH) {
        set_outcome(p, CALL_QUEUED, KV_UNAVAILABLE, r->message);
        c->held = 1;
        if (r->leader && *r->leader)
            kvc_route_hint(&c->route, r->leader);
        kvstore__v1__rpc_response__free_unpacked(r, NULL);
    } else {
        p->state = CALL_DONE;
        p->answer = r;
    }
    deliver(c);
    return fatal ? -2 : 0;
}

/* Handles every whole frame in C's input: answers to their calls, stream
 * frames to their watches. Returns 0 (a partial frame may be left), or -1
 * when the connection is broken (calls and watches failed). */
static int take_frames(kv_client *c)
{
    for (;;) {
        size_t off, len;
        kv_frame_result fr = kv_frame_decode(kv_buf_head(&c->in), kv_buf_len(&c->in),
                                             MAX_ANSWER_BYTES, &off, &len);
        if (fr == KV_FRAME_PARTIAL)
            return 0;
        if (fr != KV_FRAME_OK) {
            fail_all(c, KV_INTERNAL, "server sent a malformed frame");
            return -1;
        }
        int rc = complete(c, kv_buf_head(&c->in) + off, len);
        if (rc == -1)
            return -1;
        kv_buf_consume(&c->in, off + len);
        if (rc == -2) {
            /* The server closes after this answer: calls still in flight
             * and the watches fail (or wait to be retried); the answered
             * call keeps its own status when no call came after it. */
            char msg[sizeof c->last_message];
            kv_status answered = c->last_status;
            size_t left = c->qlen;
            memcpy(msg, c->last_message, sizeof msg);
            fail_all(c, KV_UNAVAILABLE, "connection closed by the server after %s: %s",
                     kv_status_name(answered), msg);
            if (!left) {
                c->last_status = answered;
                memcpy(c->last_message, msg, sizeof msg);
            }
            return -1;
        }
    }
}

kv_status kvc_feed(kv_client *c, const uint8_t *data, size_t len)
{
    if (c->fd < 0) {
        kvc_set_status(c, KV_UNAVAILABLE, "not connected");
        return KV_UNAVAILABLE;
    }
    if (kv_buf_append(&c->in, data, len) < 0) {
        fail_all(c, KV_RESOURCE_EXHAUSTED, "client out of memory");
        return KV_RESOURCE_EXHAUSTED;
    }
    return take_frames(c) < 0 ? c->last_status : KV_OK;
}

/* What io_step() saw. */
enum { IO_BROKEN = -1, IO_IDLE = 0, IO_MOVED = 1, IO_SIGNAL = 2 };

/* Sends what is queued, through C's TLS stream when it has one. Returns
 * 1 when bytes went out, 0 when none could, -1 when the TLS stream broke
 * (calls and watches failed). A plaintext send that fails drops the
 * output instead: the server may have closed after an answer not read
 * yet, and the read says how it ended. */
static int io_send(kv_client *c)
{
    ssize_t w;

    if (!c->tls) {
        w = send(c->fd, kv_buf_head(&c->out), kv_buf_len(&c->out), MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            kv_buf_free(&c->out);
    } else {
        w = kvc_tls_write(c->tls, kv_buf_head(&c->out), kv_buf_len(&c->out));
        if (w == KVC_TLS_ERROR) {
            fail_all(c, KV_UNAVAILABLE, "connection to the server lost: %s",
                     kvc_tls_reason(c->tls));
            return -1;
        }
    }
    if (w <= 0)
        return 0;
    kv_buf_consume(&c->out, (size_t)w);
    return 1;
}

/* Reads from C's TLS stream into room reserved in C's input: record after
 * record (one read hands out one at most) until the room is full or the
 * socket has no more. Returns 1 when bytes came, 0 when none, -1 when the
 * stream ended or broke with nothing read (calls and watches failed); an
 * end after some bytes is seen by the next read, once they are handled. */
static int tls_recv(kv_client *c)
{
    int got = 0;

    c->read_wants_write = 0;
    while (kv_buf_room(&c->in) > 0) {
        ssize_t r = kvc_tls_read(c->tls, kv_buf_tail(&c->in), kv_buf_room(&c->in));
        if (r > 0) {
            kv_buf_commit(&c->in, (size_t)r);
            got = 1;
            continue;
        }
        if (r == KVC_TLS_WANT_WRITE)
            c->read_wants_write = 1;
        if (r == KVC_TLS_WANT_READ || r == KVC_TLS_WANT_WRITE || got)
            return got;
        c->refused = r < 0 && kvc_tls_refused(c->tls);
        fail_all(c, KV_UNAVAILABLE, "connection closed by the server%s%s", r < 0 ? ": " : "",
                 r < 0 ? kvc_tls_reason(c->tls) : "");
        return -1;
    }
    return got;
}

/* Reads what came into C's input, through C's TLS stream when it has one.
 * Returns 1 when bytes came, 0 when none, -1 when the connection ended or
 * broke (calls and watches failed). */
static int io_recv(kv_client *c)
{
    ssize_t r;

    if (kv_buf_reserve(&c->in, 64 * 1024) < 0) {
        fail_all(c, KV_RESOURCE_EXHAUSTED, "client out of memory");
        return -1;
    }
    if (c->tls)
        return tls_recv(c);
    r = recv(c->fd, kv_buf_tail(&c->in), kv_buf_room(&c->in), 0);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        fail_all(c, KV_UNAVAILABLE, "connection closed by the server%s%s",
                 r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
        return -1;
    }
    if (r < 0)
        return 0;
    kv_buf_commit(&c->in, (size_t)r);
    return 1;
}

/* Waits up to WAIT_MS (-1: no limit) for the socket, then writes what is
 * queued and reads and handles what came. Returns IO_MOVED when bytes
 * went either way, IO_IDLE when the wait ended with none, IO_SIGNAL when
 * a signal interrupted it, IO_BROKEN when the connection broke (calls and
 * watches failed). */
static int io_step(kv_client *c, int wait_ms)
{
    int writing = kv_buf_len(&c->out) > 0, moved = 0, rc;
    /* Bytes TLS has decrypted and not handed out yet: poll() would not
     * announce them, so look without waiting and read them. */
    int ready = c->tls && kvc_tls_pending(c->tls);
    struct pollfd pfd = { .fd = c->fd,
                          .events = POLLIN | (writing || c->read_wants_write ? POLLOUT : 0) };
    int n = poll(&pfd, 1, ready ? 0 : wait_ms);

    if (n < 0 && errno == EINTR)
        return IO_SIGNAL;
    if (n < 0) {
        fail_all(c, KV_UNAVAILABLE, "poll: %s", strerror(errno));
        return IO_BROKEN;
    }
    if (ready)
        pfd.revents |= POLLIN;
    else if (n == 0)
        return IO_IDLE;
    if (writing && (pfd.revents & POLLOUT)) {
        if ((rc = io_send(c)) < 0)
            return IO_BROKEN;
        moved |= rc;
    }
    if ((pfd.revents & (POLLIN | POLLHUP | POLLERR))
        || (c->read_wants_write && (pfd.revents & POLLOUT))) {
        if ((rc = io_recv(c)) < 0)
            return IO_BROKEN;
        moved |= rc;
        if (take_frames(c) < 0)
            return IO_BROKEN;
    }
    return moved ? IO_MOVED : IO_IDLE;
}

/* Milliseconds from now to DEADLINE (0: none, then -1 for poll()). */
static int wait_until(int64_t deadline)
{
    int64_t left;

    if (!deadline)
        return -1;
    left = deadline - now_ms();
    return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Writes queued bytes and reads answers until at most WANT_LEFT calls
 * remain in flight and nothing is left to write (WANT_LEFT 0: all
 * answered), or until only writing was asked (WANT_LEFT = SIZE_MAX: flush
 * the output and read what is ready). Fails the connection after
 * timeout_ms without a byte moving, or at CAP (0: none). Stream frames
 * read meanwhile go to their watches. Returns KV_OK or the transport
 * failure. */
static kv_status pump(kv_client *c, size_t want_left, int64_t cap)
{
    int64_t deadline = c->timeout_ms > 0 ? now_ms() + c->timeout_ms : 0;

    while (c->fd >= 0) {
        int writing = kv_buf_len(&c->out) > 0;
        if (!writing && (want_left == SIZE_MAX || c->nsent <= want_left))
            return KV_OK;
        int wait = wait_until(cap && (!deadline || cap < deadline) ? cap : deadline);
        int rc = io_step(c, wait);
        if (rc == IO_BROKEN)
            break;
        if (rc == IO_IDLE && wait == 0) {
            fail_all(c, KV_DEADLINE_EXCEEDED, "no answer within %d ms", c->timeout_ms);
            break;
        }
        if (rc == IO_MOVED && deadline)
            deadline = now_ms() + c->timeout_ms;
    }
    return c->last_status != KV_OK ? c->last_status : KV_UNAVAILABLE;
}

kv_status kv_client_poll(kv_client *c, int timeout_ms)
{
    kvc_watches *w = &c->watches;
    uint64_t before = w->delivered;
    /* With TIMEOUT_MS 0 the deadline has come at once: one look, no wait. */
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);

    if (kvc_refuse_in_callback(c))
        return KV_FAILED_PRECONDITION;
    if (c->fd < 0) {
        kvc_set_status(c, KV_UNAVAILABLE, "not connected");
        return KV_UNAVAILABLE;
    }
    if (w->n == 0 && c->nsent == 0 && kv_buf_len(&c->out) == 0) {
        kvc_set_status(c, KV_FAILED_PRECONDITION, "no watch open and no call in flight");
        return KV_FAILED_PRECONDITION;
    }
    for (;;) {
        int wait = timeout_ms < 0 ? -1 : wait_until(deadline);
        int rc = io_step(c, wait);
        if (rc == IO_BROKEN)
            return c->last_status != KV_OK ? c->last_status : KV_UNAVAILABLE;
        if (w->delivered != before) {
            kvc_set_status(c, KV_OK, NULL);
            return KV_OK;
        }
        if (rc == IO_SIGNAL) {
            kvc_set_status(c, KV_CANCELLED, "interrupted by a signal");
            return KV_CANCELLED;
        }
        if (rc == IO_IDLE && wait == 0) {
            kvc_set_status(c, KV_DEADLINE_EXCEEDED, "no stream frame within %d ms", timeout_ms);
            return KV_DEADLINE_EXCEEDED;
        }
    }
}

/* The kind of the call of METHOD_PATH, for the retry rules. */
static call_kind kind_of(const char *method_path)
{
    static const char prefix[] = "/kvstore.v1.KV/";
    static const char *const reads[] = { "Get", "Range", "Ping", "Stats", "ClusterStatus" };
    static const char *const writes[] = { "Set", "Clear", "ClearRange", "Txn", "Touch" };
    const char *m = method_path + sizeof prefix - 1;

    if (strncmp(method_path, prefix, sizeof prefix - 1) != 0)
        return KIND_OTHER;
    for (size_t i = 0; i < sizeof reads / sizeof *reads; i++)
        if (strcmp(m, reads[i]) == 0)
            return KIND_READ;
    for (size_t i = 0; i < sizeof writes / sizeof *writes; i++)
        if (strcmp(m, writes[i]) == 0)
            return KIND_WRITE;
    return strcmp(m, "Watch") == 0 ? KIND_WATCH : KIND_OTHER;
}

/* Puts P's frame on the output: P is in flight from now. Returns 0 or -1
 * (out of memory). */
static int send_frame(kv_client *c, pending *p)
{
    if (kv_buf_append(&c->out, p->frame, p->frame_len) < 0)
        return -1;
    p->state = CALL_SENT;
    c->nsent++;
    return 0;
}

/* Frames an RpcRequest for METHOD_PATH with PAYLOAD and queues the call:
 * on the output when connected and no earlier call waits to be sent again
 * (calls go out in call order), else to send on the next connection. A
 * write gets the client's id and the next seq. FIRST puts it before every
 * other call. Returns 0 or -1 (closure already failed). */
static int enqueue_call(kv_client *c, const char *method_path, const uint8_t *payload,
                        size_t plen, const ProtobufCMessageDescriptor *output,
                        ProtobufCClosure closure, void *data, int owned, int first)
{
    Kvstore__V1__RpcRequest req = KVSTORE__V1__RPC_REQUEST__INIT;
    pending p = { .output = output, .closure = closure, .data = data, .owned = owned,
                  .kind = kind_of(method_path), .state = CALL_QUEUED };

    if (c->fd < 0 && !can_retry(c)) {
        kvc_set_status(c, KV_UNAVAILABLE, "not connected");
        c->dropped = KV_UNAVAILABLE;
        closure(NULL, data);
        return -1;
    }
    req.id = p.id = ++c->next_id;
    req.method = (char *)method_path;
    req.payload.data = (uint8_t *)payload;
    req.payload.len = plen;
    if (p.kind == KIND_WRITE) {
        req.client_id.data = c->route.client_id;
        req.client_id.len = sizeof c->route.client_id;
        req.seq = ++c->seq;
    }
    size_t n = kvstore__v1__rpc_request__get_packed_size(&req);
    p.frame_len = n + KV_FRAME_PREFIX_MAX;
    if (n > UINT32_MAX || !(p.frame = malloc(p.frame_len))) {
        kvc_set_status(c, KV_RESOURCE_EXHAUSTED, "request too large for memory");
        closure(NULL, data);
        return -1;
    }
    size_t pre = kv_frame_put_prefix(p.frame, (uint32_t)n);
    kvstore__v1__rpc_request__pack(&req, p.frame + pre);
    p.frame_len = pre + n;
    int now = c->fd >= 0 && !first && !c->held;
    if ((now && send_frame(c, &p) < 0) || push(c, p, first) < 0) {
        if (p.state == CALL_SENT) {
            c->nsent--;
            kv_buf_shrink(&c->out, kv_buf_len(&c->out) - p.frame_len);
        }
        free(p.frame);
        kvc_set_status(c, KV_RESOURCE_EXHAUSTED, "request too large for memory");
        closure(NULL, data);
        return -1;
    }
    if (!now && !first)
        c->held = 1;
    /* A client that never reconnects has no use for the copy. */
    if (!can_retry(c)) {
        free(at(c, first ? 0 : c->qlen - 1)->frame);
        at(c, first ? 0 : c->qlen - 1)->frame = NULL;
    }
    return 0;
}

static int enqueue(kv_client *c, const char *method_path, const uint8_t *payload, size_t plen,
                   const ProtobufCMessageDescriptor *output, ProtobufCClosure closure, void *data,
                   int owned)
{
    return enqueue_call(c, method_path, payload, plen, output, closure, data, owned, 0);
}

/* Closure of the token presented again on a new connection: its outcome
 * is the next calls' to see (UNAUTHENTICATED). */
static void token_presented(const ProtobufCMessage *msg, void *data)
{
    (void)msg;
    (void)data;
}

/* kvc_route_open_fn for C: connects to ENDPOINT and, when C speaks TLS,
 * runs the handshake, each within TIMEOUT_MS; the connection is C's from
 * then on. A handshake the server refused sets c->refused. */
static int link_open(void *arg, const char *endpoint, int timeout_ms, char *err, size_t errlen)
{
    kv_client *c = arg;
    int fd = kvc_connect_to(endpoint, timeout_ms, err, errlen);

    c->refused = 0;
    if (fd < 0)
        return -1;
    if (c->tls_ctx && !(c->tls = kvc_tls_open(c->tls_ctx, fd, endpoint, timeout_ms,
                                              &c->refused, err, errlen))) {
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->read_wants_write = 0;
    return 0;
}

/* Moves C to the next address (the leader's hint, else the next
 * endpoint), connecting within GIVE_UP, presents its token again and
 * sends every queued call, in order. Returns 0, or -1 when the connect
 * failed (the queued calls keep the reason as their last error, and fail
 * with it now when the server refused C's handshake). */
static int move(kv_client *c, int64_t give_up)
{
    int hinted;
    char err[sizeof c->last_message];
    int left = wait_until(give_up);

    if (c->fd >= 0)
        fail_all(c, KV_UNAVAILABLE, "the client moved to another node");
    const char *where = kvc_route_next(&c->route, &hinted);
    if (link_open(c, where, left > 0 ? left : 1, err, sizeof err) < 0) {
        for (size_t i = 0; i < c->qlen; i++)
            if (at(c, i)->state == CALL_QUEUED)
                set_outcome(at(c, i), c->refused ? CALL_FAILED : CALL_QUEUED, KV_UNAVAILABLE,
                            err);
        if (c->refused)
            c->held = 0;        /* nothing is queued any more */
        c->refused = 0;
        kvc_set_status(c, KV_UNAVAILABLE, "%s", err);
        return -1;
    }
    if (c->token) {
        Kvstore__V1__AuthRequest auth = KVSTORE__V1__AUTH_REQUEST__INIT;
        auth.token.data = c->token;
        auth.token.len = c->token_len;
        size_t n = kvstore__v1__auth_request__get_packed_size(&auth);
        uint8_t *buf = malloc(n);
        if (buf) {
            kvstore__v1__auth_request__pack(&auth, buf);
            enqueue_call(c, "/kvstore.v1.KV/Auth", buf, n, NULL, token_presented, NULL, 0, 1);
            free(buf);
        }
    }
    for (size_t i = 0; i < c->qlen; i++)
        if (at(c, i)->state == CALL_QUEUED && send_frame(c, at(c, i)) < 0) {
            fail_all(c, KV_RESOURCE_EXHAUSTED, "client out of memory");
            return -1;
        }
    c->held = 0;
    return 0;
}

/* Marks every queued call failed with its last error: its time is up. */
static void give_up_queued(kv_client *c)
{
    for (size_t i = 0; i < c->qlen; i++) {
        pending *p = at(c, i);
        if (p->state == CALL_QUEUED)
            set_outcome(p, CALL_FAILED, p->message ? p->status : KV_UNAVAILABLE,
                        p->message ? p->message : "not connected");
    }
    c->held = 0;
}

/* Runs every unfinished call to its end: sends, reads, and moves to the
 * leader or the next endpoint for the calls to retry, pausing between
 * tries as route.c says, until each has an outcome or the call's timeout
 * (from now) is up. Every closure has run when it returns. */
static void run_calls(kv_client *c)
{
    int64_t give_up = now_ms() + (c->timeout_ms > 0 ? c->timeout_ms : RETRY_NO_TIMEOUT_MS);
    int backoff = 0, tries = 0, last_hinted = 0;

    for (;;) {
        if (c->fd >= 0)
            pump(c, 0, tries ? give_up : 0);
        deliver(c);
        if (c->qlen == 0)
            return;
        if (now_ms() >= give_up || !can_retry(c)) {
            give_up_queued(c);
            deliver(c);
            return;
        }
        /* A hint is followed at once, unless the last try followed one. */
        int hinted = c->route.hint[0] != 0;
        int pause = hinted && !last_hinted ? 0 : kvc_route_backoff_ms(&backoff);
        if (pause > 0) {
            int left = wait_until(give_up);
            if (pause >= left) {
                /* No time for another try: fail with the last error. */
                poll(NULL, 0, left);
                continue;
            }
            poll(NULL, 0, pause);
        }
        last_hinted = hinted;
        tries++;
        move(c, give_up);
    }
}

/* Finishes the call just queued: now, or later when pipelining. */
static void finish(kv_client *c)
{
    if (!c->pipelining)
        run_calls(c);
    else if (kv_buf_len(&c->out) >= PIPE_PUSH_BYTES)
        pump(c, SIZE_MAX, 0);
}

/* Packs INPUT and queues it as method METHOD_INDEX of the service, its
 * answer for CLOSURE (which takes the decoded answer with OWNED). Returns 0,
 * or -1 when the closure already ran with NULL. */
static int send_call(kv_client *c, unsigned method_index, const ProtobufCMessage *input,
                     ProtobufCClosure closure, void *closure_data, int owned)
{
    const ProtobufCServiceDescriptor *d = c->service.descriptor;
    const ProtobufCMethodDescriptor *m = &d->methods[method_index];
    char path[256];
    uint8_t stackbuf[512], *payload = stackbuf;
    size_t n = protobuf_c_message_get_packed_size(input);

    snprintf(path, sizeof path, "/%s/%s", d->name, m->name);
    if (n > sizeof stackbuf && !(payload = malloc(n))) {
        kvc_set_status(c, KV_RESOURCE_EXHAUSTED, "request too large for memory");
        closure(NULL, closure_data);
        return -1;
    }
    protobuf_c_message_pack(input, payload);
    int rc = enqueue(c, path, payload, n, m->output, closure, closure_data, owned);
    if (payload != stackbuf)
        free(payload);
    return rc;
}

/* ProtobufCService.invoke: packs INPUT and sends it as METHOD_INDEX. */
static void client_invoke(ProtobufCService *service, unsigned method_index,
                          const ProtobufCMessage *input, ProtobufCClosure closure,
                          void *closure_data)
{
    kv_client *c = (kv_client *)service;

    if (kvc_refuse_in_callback(c))
        closure(NULL, closure_data);
    else if (send_call(c, method_index, input, closure, closure_data, 0) == 0)
        finish(c);
}

/* The index of the KV method named METHOD if it takes INPUT's type, else
 * -1 with KV_INTERNAL recorded. */
static int method_index(kv_client *c, const char *method, const ProtobufCMessage *input)
{
    const ProtobufCServiceDescriptor *d = c->service.descriptor;
    const ProtobufCMethodDescriptor *m =
        protobuf_c_service_descriptor_get_method_by_name(d, method);

    if (!m || m->input != input->descriptor) {
        kvc_set_status(c, KV_INTERNAL, "no method %s taking %s", method, input->descriptor->name);
        return -1;
    }
    return (int)(m - d->methods);
}

/* Closure of kvc_call_owned: keeps the answer. */
static void keep_answer(const ProtobufCMessage *msg, void *data)
{
    *(ProtobufCMessage **)data = (ProtobufCMessage *)msg;
}

kv_status kvc_call_owned(kv_client *c, const char *method, const ProtobufCMessage *input,
                         ProtobufCMessage **out)
{
    int mi = method_index(c, method, input);

    *out = NULL;
    if (mi < 0)
        return KV_INTERNAL;
    if (kvc_refuse_in_callback(c))
        return KV_FAILED_PRECONDITION;
    if (send_call(c, (unsigned)mi, input, keep_answer, out, 1) == 0)
        run_calls(c);
    if (*out)
        return KV_OK;
    return c->last_status != KV_OK ? c->last_status : KV_INTERNAL;
}

kv_status kvc_call(kv_client *c, const char *method, const ProtobufCMessage *input,
                   ProtobufCClosure closure, void *data, int wait, uint64_t *id)
{
    int mi = method_index(c, method, input);

    if (id)
        *id = 0;
    if (mi < 0) {
        closure(NULL, data);
        return KV_INTERNAL;
    }
    if (wait && kvc_refuse_in_callback(c)) {
        closure(NULL, data);
        return KV_FAILED_PRECONDITION;
    }
    if (send_call(c, (unsigned)mi, input, closure, data, 0) < 0)
        return c->last_status != KV_OK ? c->last_status : KV_INTERNAL;
    if (id)
        *id = c->next_id;
    if (!wait)
        return KV_OK;
    run_calls(c);
    return c->last_status == KV_UNAVAILABLE || c->last_status == KV_DEADLINE_EXCEEDED
           ? c->last_status : KV_OK;
}

static void client_destroy(ProtobufCService *service)
{
    kv_client_free((kv_client *)service);
}

/* A client with no connection yet, or NULL when out of memory. */
static kv_client *client_new(int timeout_ms)
{
    kv_client *c = calloc(1, sizeof *c);

    if (!c)
        return NULL;
    c->fd = -1;
    c->service.descriptor = &kvstore__v1__kv__descriptor;
    c->service.invoke = client_invoke;
    c->service.destroy = client_destroy;
    c->timeout_ms = timeout_ms;
    return c;
}

kv_client *kvc_adopt(int fd, int timeout_ms)
{
    kv_client *c = client_new(timeout_ms);
    int flags = fcntl(fd, F_GETFL);

    if (!c || flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        free(c);
        close(fd);
        return NULL;
    }
    c->fd = fd;
    return c;
}

kv_client *kv_client_connect_opts(const char *endpoint, const kv_client_options *o,
                                  char *err, size_t errlen)
{
    static const kv_client_options plaintext = KV_CLIENT_OPTIONS_INIT;
    char dummy[8];
    kv_client *c;

    if (!o)
        o = &plaintext;
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    c = client_new(o->timeout_ms);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (kvc_route_init(&c->route, endpoint, err, errlen) < 0
        || (o->tls && !(c->tls_ctx = kvc_tls_ctx_new(o, err, errlen)))
        || kvc_route_connect_first(&c->route, link_open, c, o->timeout_ms, err, errlen) < 0) {
        kv_client_free(c);
        return NULL;
    }
    return c;
}

kv_client *kv_client_connect(const char *endpoint, int timeout_ms, char *err, size_t errlen)
{
    kv_client_options o = KV_CLIENT_OPTIONS_INIT;

    o.timeout_ms = timeout_ms;
    return kv_client_connect_opts(endpoint, &o, err, errlen);
}

void kv_client_free(kv_client *c)
{
    if (!c)
        return;
    c->closing = 1;
    fail_all(c, KV_CANCELLED, "client closed");
    kvc_route_free(&c->route);
    kvc_tls_ctx_free(c->tls_ctx);
    if (c->token)
        sodium_memzero(c->token, c->token_len);
    free(c->token);
    free(c->q);
    free(c);
}

void kv_client_set_timeout(kv_client *c, int timeout_ms) { c->timeout_ms = timeout_ms; }
void kv_client_set_serializable(kv_client *c, int on) { c->serializable = on != 0; }
int kvc_serializable(const kv_client *c) { return c->serializable; }
const char *kv_client_endpoint(const kv_client *c)
{
    return c->route.neps ? c->route.where : "";
}

void kv_client_client_id(const kv_client *c, uint8_t id[16])
{
    memcpy(id, c->route.client_id, sizeof c->route.client_id);
}

int kvc_keep_token(kv_client *c, const void *token, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);

    if (!copy)
        return -1;
    memcpy(copy, token, len);
    if (c->token)
        sodium_memzero(c->token, c->token_len);
    free(c->token);
    c->token = copy;
    c->token_len = len;
    return 0;
}
ProtobufCService *kv_client_service(kv_client *c) { return &c->service; }
kv_status kv_client_last_status(const kv_client *c) { return c->last_status; }
const char *kv_client_last_message(const kv_client *c) { return c->last_message; }
const char *kv_client_version(void) { return KV_VERSION; }

void kv_client_pipeline_begin(kv_client *c)
{
    c->pipelining = 1;
    c->dropped = KV_OK;
}

kv_status kv_client_pipeline_end(kv_client *c)
{
    if (kvc_refuse_in_callback(c))
        return KV_FAILED_PRECONDITION;
    c->pipelining = 0;
    run_calls(c);
    return c->dropped;
}

/* Closure of kv_client_call_raw: copies the answer's payload. */
typedef struct raw_result {
    int done;
    uint8_t *data;
    size_t len;
} raw_result;

static void raw_done(const ProtobufCMessage *msg, void *data)
{
    raw_result *r = data;
    const ProtobufCBinaryData *p = (const ProtobufCBinaryData *)msg;

    r->done = 1;
    if (p && p->len && (r->data = malloc(p->len))) {
        memcpy(r->data, p->data, p->len);
        r->len = p->len;
    }
}

kv_status kv_client_call_raw(kv_client *c, const char *method, const uint8_t *payload,
                             size_t len, uint8_t **resp_payload, size_t *resp_len)
{
    raw_result r = { 0 };

    if (!kvc_refuse_in_callback(c) && enqueue(c, method, payload, len, NULL, raw_done, &r, 0) == 0)
        run_calls(c);
    if (resp_payload)
        *resp_payload = r.data;
    else
        free(r.data);
    if (resp_len)
        *resp_len = r.len;
    return c->last_status;
}
