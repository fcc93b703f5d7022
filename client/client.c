/* client.c - the C client library: one TCP connection speaking the kvstore
 * framing, exposed as a ProtobufCService so protoc-c's generated stubs work
 * on it. Owns its socket, buffers and the queue of calls in flight, reads
 * every frame (stream frames go to watch.c) and waits in kv_client_poll();
 * the blocking helpers are simple.c's, the watches watch.c's. See
 * include/kvstore/client.h for the contract. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <kvstore/client.h>
#include "buf.h"
#include "endpoint.h"
#include "internal.h"
#include "frame.h"

/* Answers larger than this are refused as a broken stream. */
#define MAX_ANSWER_BYTES (UINT32_MAX)
/* In pipeline mode, queued bytes above this are pushed out (and answers
 * read) before queueing more, so a huge batch cannot deadlock with a
 * server that stops reading while its answers go unread. */
#define PIPE_PUSH_BYTES (256 * 1024)

/* One call in flight. */
typedef struct pending {
    uint64_t id;
    const ProtobufCMessageDescriptor *output;   /* NULL: raw call */
    ProtobufCClosure closure;
    void *data;
    int owned;      /* the closure takes the decoded answer and frees it */
} pending;

struct kv_client {
    ProtobufCService service;   /* first: stubs hand it back to invoke */
    int fd;                     /* -1 once the connection is broken */
    int timeout_ms;
    int pipelining;
    uint64_t next_id;
    kv_buf in, out;
    pending *q;                 /* ring of calls in flight, oldest at qhead */
    size_t qhead, qlen, qcap;
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

static int push(kv_client *c, pending p)
{
    if (c->qlen == c->qcap) {
        size_t cap = c->qcap ? c->qcap * 2 : 16;
        pending *q = malloc(cap * sizeof *q);
        if (!q)
            return -1;
        for (size_t i = 0; i < c->qlen; i++)
            q[i] = c->q[(c->qhead + i) % c->qcap];
        free(c->q);
        c->q = q;
        c->qcap = cap;
        c->qhead = 0;
    }
    c->q[(c->qhead + c->qlen) % c->qcap] = p;
    c->qlen++;
    return 0;
}

/* Closes the socket; later calls fail with KV_UNAVAILABLE. */
static void disconnect(kv_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    kv_buf_free(&c->in);
    kv_buf_free(&c->out);
}

/* Breaks the connection: records ST and the printf-style reason, and
 * every call in flight fails with them, then every watch. */
static void fail_all(kv_client *c, kv_status st, const char *fmt, ...)
{
    va_list ap;

    c->last_status = st;
    va_start(ap, fmt);
    vsnprintf(c->last_message, sizeof c->last_message, fmt, ap);
    va_end(ap);
    disconnect(c);
    if (c->qlen)
        c->dropped = st;
    while (c->qlen) {
        pending p = pop(c);
        p.closure(NULL, p.data);
    }
    kvc_watch_end_all(c);
}

kvc_watches *kvc_watches_of(kv_client *c) { return &c->watches; }

int kvc_refuse_in_callback(kv_client *c)
{
    if (!c->watches.calling)
        return 0;
    kvc_set_status(c, KV_FAILED_PRECONDITION, "called from a watch callback");
    return 1;
}

/* Hands one decoded answer to the oldest call. Returns 0, or -1 when the
 * stream is broken (calls failed). */
static int complete(kv_client *c, const uint8_t *body, size_t len)
{
    Kvstore__V1__RpcResponse *r = kvstore__v1__rpc_response__unpack(NULL, len, body);

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
    if (c->qlen == 0 || (r->id != c->q[c->qhead].id && r->id != 0)) {
        fail_all(c, KV_INTERNAL, "server answered id %llu, expected %llu",
                 (unsigned long long)r->id,
                 (unsigned long long)(c->qlen ? c->q[c->qhead].id : 0));
        kvstore__v1__rpc_response__free_unpacked(r, NULL);
        return -1;
    }
    pending p = pop(c);
    if (r->code != KVSTORE__V1__STATUS_CODE__OK) {
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
    /* id 0 with an error: the server could not read a request; for an
     * oversized frame it closes the connection next. */
    int fatal = r->id == 0 && r->code != KVSTORE__V1__STATUS_CODE__OK;
    kvstore__v1__rpc_response__free_unpacked(r, NULL);
    return fatal && c->last_status == KV_RESOURCE_EXHAUSTED ? -2 : 0;
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
             * and the watches fail; the answered call keeps its own status
             * when no call came after it. */
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

/* Waits up to WAIT_MS (-1: no limit) for the socket, then writes what is
 * queued and reads and handles what came. Returns IO_MOVED when bytes
 * went either way, IO_IDLE when the wait ended with none, IO_SIGNAL when
 * a signal interrupted it, IO_BROKEN when the connection broke (calls and
 * watches failed). */
static int io_step(kv_client *c, int wait_ms)
{
    int writing = kv_buf_len(&c->out) > 0, moved = 0;
    struct pollfd pfd = { .fd = c->fd, .events = POLLIN | (writing ? POLLOUT : 0) };
    int n = poll(&pfd, 1, wait_ms);

    if (n < 0 && errno == EINTR)
        return IO_SIGNAL;
    if (n < 0) {
        fail_all(c, KV_UNAVAILABLE, "poll: %s", strerror(errno));
        return IO_BROKEN;
    }
    if (n == 0)
        return IO_IDLE;
    if (pfd.revents & POLLOUT) {
        ssize_t w = send(c->fd, kv_buf_head(&c->out), kv_buf_len(&c->out), MSG_NOSIGNAL);
        if (w > 0) {
            kv_buf_consume(&c->out, (size_t)w);
            moved = 1;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            /* The server may have closed after an answer we have not
             * read yet: read before giving up. */
            kv_buf_free(&c->out);
        }
    }
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
        if (kv_buf_reserve(&c->in, 64 * 1024) < 0) {
            fail_all(c, KV_RESOURCE_EXHAUSTED, "client out of memory");
            return IO_BROKEN;
        }
        ssize_t r = recv(c->fd, kv_buf_tail(&c->in), kv_buf_room(&c->in), 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            fail_all(c, KV_UNAVAILABLE, "connection closed by the server%s%s",
                     r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
            return IO_BROKEN;
        }
        if (r > 0) {
            kv_buf_commit(&c->in, (size_t)r);
            moved = 1;
        }
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

/* Writes queued bytes and reads answers until fewer than WANT_LEFT calls
 * remain in flight and nothing is left to write (WANT_LEFT 0: all done),
 * or until only writing was asked (WANT_LEFT = SIZE_MAX: flush the output
 * and read what is ready). Stream frames read meanwhile go to their
 * watches. Returns KV_OK or the transport failure. */
static kv_status pump(kv_client *c, size_t want_left)
{
    int64_t deadline = c->timeout_ms > 0 ? now_ms() + c->timeout_ms : 0;

    while (c->fd >= 0) {
        int writing = kv_buf_len(&c->out) > 0;
        if (!writing && (want_left == SIZE_MAX || c->qlen <= want_left))
            return KV_OK;
        int wait = wait_until(deadline);
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
    if (w->n == 0 && c->qlen == 0 && kv_buf_len(&c->out) == 0) {
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

/* Frames an RpcRequest for METHOD_PATH with PAYLOAD onto the output and
 * queues the call. Returns 0 or -1 (closure already failed). */
static int enqueue(kv_client *c, const char *method_path, const uint8_t *payload, size_t plen,
                   const ProtobufCMessageDescriptor *output, ProtobufCClosure closure, void *data,
                   int owned)
{
    Kvstore__V1__RpcRequest req = KVSTORE__V1__RPC_REQUEST__INIT;

    if (c->fd < 0) {
        kvc_set_status(c, KV_UNAVAILABLE, "not connected");
        c->dropped = KV_UNAVAILABLE;
        closure(NULL, data);
        return -1;
    }
    req.id = ++c->next_id;
    req.method = (char *)method_path;
    req.payload.data = (uint8_t *)payload;
    req.payload.len = plen;
    size_t n = kvstore__v1__rpc_request__get_packed_size(&req);
    if (n > UINT32_MAX || kv_buf_reserve(&c->out, n + KV_FRAME_PREFIX_MAX) < 0
        || push(c, (pending){ req.id, output, closure, data, owned }) < 0) {
        kvc_set_status(c, KV_RESOURCE_EXHAUSTED, "request too large for memory");
        closure(NULL, data);
        return -1;
    }
    uint8_t *p = kv_buf_tail(&c->out);
    size_t pre = kv_frame_put_prefix(p, (uint32_t)n);
    kvstore__v1__rpc_request__pack(&req, p + pre);
    kv_buf_commit(&c->out, pre + n);
    return 0;
}

/* Finishes the call just queued: now, or later when pipelining. */
static void finish(kv_client *c)
{
    if (!c->pipelining)
        pump(c, 0);
    else if (kv_buf_len(&c->out) >= PIPE_PUSH_BYTES)
        pump(c, SIZE_MAX);
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
        pump(c, 0);
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
    return wait ? pump(c, 0) : KV_OK;
}

static void client_destroy(ProtobufCService *service)
{
    kv_client_free((kv_client *)service);
}

static int connect_to(const char *endpoint, int timeout_ms, char *err, size_t errlen)
{
    kv_endpoint where;
    const char *host, *port;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res, *ai;
    int fd = -1, rc;

    /* NULL or "" is the default endpoint; ":PORT" the default host. */
    if (kv_endpoint_parse(endpoint && *endpoint ? endpoint : KV_DEFAULT_HOST, KV_DEFAULT_PORT,
                          &where, err, errlen) < 0)
        return -1;
    host = where.host[0] ? where.host : KV_DEFAULT_HOST;
    port = where.service;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s:%s: %s", host, port, gai_strerror(rc));
        return -1;
    }
    snprintf(err, errlen, "cannot connect to %s:%s", host, port);
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            int n;
            do {
                n = poll(&pfd, 1, timeout_ms > 0 ? timeout_ms : -1);
            } while (n < 0 && errno == EINTR);
            if (n == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                break;
            snprintf(err, errlen, "cannot connect to %s:%s: %s", host, port,
                     n == 0 ? "timed out" : strerror(soerr ? soerr : errno));
        } else {
            snprintf(err, errlen, "cannot connect to %s:%s: %s", host, port, strerror(errno));
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

kv_client *kvc_adopt(int fd, int timeout_ms)
{
    kv_client *c = calloc(1, sizeof *c);
    int flags = fcntl(fd, F_GETFL);

    if (!c || flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        free(c);
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->service.descriptor = &kvstore__v1__kv__descriptor;
    c->service.invoke = client_invoke;
    c->service.destroy = client_destroy;
    c->timeout_ms = timeout_ms;
    return c;
}

kv_client *kv_client_connect(const char *endpoint, int timeout_ms, char *err, size_t errlen)
{
    char dummy[8];
    kv_client *c;
    int fd;

    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    fd = connect_to(endpoint, timeout_ms, err, errlen);
    if (fd < 0)
        return NULL;
    c = kvc_adopt(fd, timeout_ms);
    if (!c)
        snprintf(err, errlen, "out of memory");
    return c;
}

void kv_client_free(kv_client *c)
{
    if (!c)
        return;
    fail_all(c, KV_CANCELLED, "client closed");
    free(c->q);
    free(c);
}

void kv_client_set_timeout(kv_client *c, int timeout_ms) { c->timeout_ms = timeout_ms; }
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
    pump(c, 0);
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
        pump(c, 0);
    if (resp_payload)
        *resp_payload = r.data;
    else
        free(r.data);
    if (resp_len)
        *resp_len = r.len;
    return c->last_status;
}
