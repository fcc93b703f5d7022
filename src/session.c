/* session.c - one connection's protocol state; see session.h. Owns the
 * input and output buffers, the answers held behind a waiting call, and
 * the calls that handlers keep; the arena, the counters and the service's
 * shared state belong to the server.
 *
 * Written by hand rather than on a library: it is the request path, and
 * what it does (frame, dispatch, order answers, count bytes against the
 * budgets) is the heart of kvstored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dispatch.h"
#include "frame.h"
#include "log.h"
#include "pbfield.h"
#include "session.h"
#include "slowlog.h"

/* Unsent answers above this make the session pause its input until they
 * drain below OUT_LOW_WATER (back-pressure instead of unbounded memory). */
#define OUT_HIGH_WATER (8 * 1024 * 1024)
#define OUT_LOW_WATER (1024 * 1024)
/* Calls whose answer waits for an earlier call's, at most, per session:
 * each holds a slot and its answer's bytes. */
#define MAX_WAITING 1024
/* Empty buffers larger than this are given back, so one big frame does not
 * pin memory on an idle connection. */
#define BUF_KEEP (256 * 1024)
/* Each session's first INPUT_FLOOR bytes of input buffer are not charged to
 * the input budget, so a few clients sending huge frames cannot lock out
 * every small request: the budget is for the large frames. */
#define INPUT_FLOOR (256 * 1024)
/* Before Auth succeeds (when a token is required) a frame may be at most
 * this large: an AuthRequest is a few KiB, and an unauthenticated client
 * must not hold input memory that others need. */
#define PREAUTH_MAX_FRAME (64 * 1024)
/* kv_call.method of an answer that no method's handler gave. */
#define NO_METHOD ((unsigned)-1)
/* The memory of a kept call grows in chunks of this size. */
#define KEPT_CHUNK 1024
/* A read is given at least this much room. */
#define READ_MIN (64 * 1024)

/* A place in the answer order, for a call answered behind one that waits:
 * its frames wait here until every earlier call has answered. */
struct kv_slot {
    struct kv_slot *next;
    kv_buf frames;          /* whole frames, in order */
    int final;              /* the last frame is the call's answer */
    kv_call *call;          /* the kept call still to answer, or NULL */
};

/* A call a handler kept: the call, and what it owns until answered. */
struct kv_kept_call {
    kv_call call;                       /* first: handlers see only this */
    kv_arena arena;                     /* its memory (call.alloc) */
    struct kv_kept_call *prev, *next;   /* in session->kept */
    uint64_t key_bytes;                 /* the request's key, for the slow */
    uint8_t key_len;                    /* log: its length and first bytes */
    uint8_t key[KV_SLOWLOG_KEY_MAX];
};

#define KEPT_OF(c) ((struct kv_kept_call *)(void *)(c))

/* ---- byte accounting ------------------------------------------------- */

/* Brings stats->input_bytes up to date: what the input buffer holds above
 * INPUT_FLOOR. */
static void count_input(kv_session *s)
{
    size_t charged = s->in.cap > INPUT_FLOOR ? s->in.cap - INPUT_FLOOR : 0;

    s->ctx->stats->input_bytes += charged;
    s->ctx->stats->input_bytes -= s->in_counted;
    s->in_counted = charged;
}

/* Brings stats->output_bytes up to date: the output buffer and the held
 * answers' buffers. */
static void count_output(kv_session *s)
{
    size_t total = s->out.cap + s->held_cap;

    s->ctx->stats->output_bytes += total;
    s->ctx->stats->output_bytes -= s->out_counted;
    s->out_counted = total;
}

/* ---- the answer order ------------------------------------------------ */

static struct kv_slot *slot_new(kv_session *s)
{
    struct kv_slot *slot = calloc(1, sizeof *slot);

    if (!slot)
        return NULL;
    if (s->last)
        s->last->next = slot;
    else
        s->first = slot;
    s->last = slot;
    s->slots++;
    return slot;
}

/* Drops every held answer: the connection is failing. */
static void slots_free(kv_session *s)
{
    while (s->first) {
        struct kv_slot *f = s->first;
        s->first = f->next;
        if (f->call)
            f->call->slot = NULL;
        kv_buf_free(&f->frames);
        free(f);
    }
    s->last = NULL;
    s->slots = 0;
    s->held_cap = 0;
}

/* Out of memory for an answer: this client cannot be served in order any
 * more, so nothing more goes out and the connection closes; the others
 * carry on. */
static void session_broken(kv_session *s)
{
    kv_session_stop(s, KV_CLOSE_ERROR, "server out of memory for its answers");
    slots_free(s);
    kv_buf_free(&s->out);
    s->out_held = 0;
    s->broken = 1;
    count_output(s);
    /* Outside a read (a kept call answered later) nobody else would look
     * at this connection again: wake it, so that it closes now. */
    if (!s->processing && s->wake)
        s->wake(s->wake_arg);
}

/* Moves the frames of the first waiting calls to the output while nothing
 * before them waits any more. A kept call whose first frames went out stops
 * holding the others back: its further frames go straight out. */
static void advance(kv_session *s)
{
    while (s->first && (s->first->final || kv_buf_len(&s->first->frames) > 0)) {
        struct kv_slot *f = s->first;
        size_t n = kv_buf_len(&f->frames);
        if (kv_buf_append(&s->out, kv_buf_head(&f->frames), n) < 0) {
            session_broken(s);
            return;
        }
        s->out_held += n;
        s->held_cap -= f->frames.cap;
        kv_buf_free(&f->frames);
        if (f->call)
            f->call->slot = NULL;
        s->first = f->next;
        if (!s->first)
            s->last = NULL;
        s->slots--;
        free(f);
    }
}

/* Where the next frame of CALL goes (CALL NULL or not kept: an answer given
 * at once): its slot while it waits for earlier answers, the output when
 * nothing before it waits, or a new slot behind the waiting ones. NULL when
 * memory is out or the session is broken. */
static kv_buf *frame_buf(kv_session *s, kv_call *call)
{
    if (s->broken)
        return NULL;
    if (call && call->slot)
        return &call->slot->frames;
    if (!s->first || (call && call->kept))
        return &s->out;
    struct kv_slot *slot = slot_new(s);
    return slot ? &slot->frames : NULL;
}

/* Accounts for the frame just written into B (whose capacity was CAP and
 * length LEN before), FINAL when it answers the call, and lets out what
 * may go. */
static void frame_written(kv_session *s, kv_call *call, kv_buf *b, size_t cap, size_t len,
                          int final)
{
    if (b == &s->out) {
        s->out_held += kv_buf_len(b) - len;
    } else {
        struct kv_slot *slot = call && call->slot ? call->slot : s->last;
        s->held_cap += b->cap - cap;
        if (final) {
            slot->final = 1;
            slot->call = NULL;
            if (call)
                call->slot = NULL;
        }
        advance(s);
    }
    count_output(s);
    if (!s->processing && s->wake)
        s->wake(s->wake_arg);
}

/* The clock calls are timed by, in nanoseconds: CLOCK_REALTIME, the clock
 * of libev's ev_now(), which conn.c hands in as a batch's arrival time
 * (kv_session.arrived_ns) so that a batch costs one clock reading, not two
 * (vDSO, no system call, but some 18 ns here: a tenth of a pipelined Get's
 * own work). A step of the clock backwards reads as 0. */
static inline uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t since(uint64_t start)
{
    uint64_t now = now_ns();

    return now > start ? now - start : 0;
}

/* The key of a request's payload P (LEN bytes): its field 1 when that is
 * bytes (every method with a key or a range start has it there), for the
 * slow log; NULL when it has none. */
static const uint8_t *payload_key(const uint8_t *p, size_t len, size_t *klen)
{
    const uint8_t *end = p + len, *key = NULL;
    kv_pb_field f;

    *klen = 0;
    while (p < end && kv_pb_next(&p, end, &f) == 0) {
        if (f.number == 1 && f.wire == KV_WT_LEN) {
            key = f.data;
            *klen = (size_t)f.value;
        }
    }
    return key;
}

/* payload_key of the request in FRAME. */
static const uint8_t *frame_key(const uint8_t *frame, size_t len, size_t *klen)
{
    kv_envelope env;

    *klen = 0;
    return kv_envelope_decode(frame, len, &env) < 0 ? NULL
                                                    : payload_key(env.payload, env.payload_len, klen);
}

/* Logs the calls of the batch timed so far as slow, each with its key:
 * their frames are still in the input buffer from s->batch_at (it is
 * compacted only after the batch), the Nth call's the Nth frame; a long
 * batch's walk goes on where the last one stopped (s->slow_at). */
__attribute__((noinline))
static void log_slow_batch(kv_session *s, uint64_t ns)
{
    const uint8_t *p = s->slow_at ? s->slow_at : s->batch_at;
    const uint8_t *end = s->batch_at + s->batch_bytes;
    unsigned frame = s->slow_frame;

    for (unsigned i = 0; i < s->n_timed; i++) {
        const struct kv_timed *t = &s->timed[i];
        size_t off = 0, len = 0, klen = 0;
        const uint8_t *key = NULL;
        while (p < end && frame <= t->frame) {
            if (kv_frame_decode(p, (size_t)(end - p), UINT32_MAX, &off, &len) != KV_FRAME_OK)
                break;
            if (frame == t->frame)
                key = frame_key(p + off, len, &klen);
            p += off + len;
            frame++;
        }
        kv_slowlog_add(s->ctx->service->slowlog, t->method, key, klen, klen, ns,
                       s->service.peer.where, t->code);
    }
    s->slow_at = p;         /* a long batch goes on from here next time */
    s->slow_frame = frame;
}

/* Times the calls answered since the batch began, all at once: their
 * answers go out together, when the batch ends, so each waited from the
 * batch's arrival until now. One clock reading and one bucket for all. */
static void time_batch(kv_session *s)
{
    uint64_t ns = since(s->batch_ns);
    unsigned bucket = kv_latency_bucket(ns);
    kv_latency *lat = s->ctx->stats->latency;
    const struct kv_timed *t = s->timed, *end = t + s->n_timed;

    do {    /* called with at least one */
        lat[t->method].buckets[bucket]++;
        lat[t->method].sum_ns += ns;
    } while (++t < end);
    if (kv_slowlog_wants(s->ctx->service->slowlog, ns))
        log_slow_batch(s, ns);
    s->n_timed = 0;
}

/* Times CALL, answered after its batch (kept), on its own: from when its
 * batch arrived until now. */
__attribute__((noinline))
static void time_later(kv_session *s, const kv_call *call, unsigned code)
{
    uint64_t ns = since(call->started_ns);
    const struct kv_kept_call *k = call->kept ? KEPT_OF(call) : NULL;

    kv_latency_record(&s->ctx->stats->latency[call->method], ns);
    if (kv_slowlog_wants(s->ctx->service->slowlog, ns))
        kv_slowlog_add(s->ctx->service->slowlog, call->method,
                       k && k->key_len ? k->key : NULL, k ? k->key_len : 0,
                       k ? k->key_bytes : 0, ns, s->service.peer.where, code);
}

/* Counts one answer, CALL's, in the server's figures: one increment for
 * its method and status (calls and errors are sums of those, stats.h).
 * A call answered while its batch is processed is timed with the batch
 * (time_batch); one answered later on its own (time_later). */
static inline void count_answer(kv_session *s, const kv_call *call, kv_status status)
{
    kv_stats *st = s->ctx->stats;
    unsigned method = call->method;
    unsigned code = (unsigned)status < KV_STATS_CODES ? (unsigned)status : KV_UNKNOWN;

    st->requests++;
    s->answered++;
    if (method >= KV_STATS_MAX_METHODS) {
        st->refused++;      /* not a method's: a refused frame */
        return;
    }
    st->codes[method][code]++;
    if (!s->processing || call->kept) {
        time_later(s, call, code);
        return;
    }
    if (s->n_timed == KV_SESSION_TIMED)
        time_batch(s);
    s->timed[s->n_timed++] = (struct kv_timed){ (uint8_t)method, (uint8_t)code,
                                                s->batch_frames };
}

/* Writes CALL's answer: MSG, or the error the handler gave. */
static void answer(kv_session *s, kv_call *call, const ProtobufCMessage *msg)
{
    if (!msg && call->status == KV_OK)
        kv_call_fail(call, KV_INTERNAL, "handler failed without a reason");
    kv_buf *b = frame_buf(s, call);
    if (!b) {
        session_broken(s);
        return;
    }
    size_t cap = b->cap, len = kv_buf_len(b);
    if (call->status == KV_OK && kv_dispatch_answer(b, call->id, msg) < 0)
        kv_call_fail(call, KV_RESOURCE_EXHAUSTED, "server out of memory for the answer");
    if (call->status != KV_OK && kv_dispatch_error(b, call->id, call->status, call->message, call->leader) < 0) {
        session_broken(s);
        return;
    }
    if (!call->counted)
        count_answer(s, call, call->status);
    frame_written(s, call, b, cap, len, 1);
}

/* ---- calls ----------------------------------------------------------- */

void kv_call_fail(void *closure_data, kv_status status, const char *message)
{
    kv_call *call = closure_data;

    call->status = status;
    call->message = message;
}

static void kept_unlink(struct kv_kept_call *k)
{
    kv_session *s = k->call.session;

    if (k->prev)
        k->prev->next = k->next;
    else
        s->kept = k->next;
    if (k->next)
        k->next->prev = k->prev;
}

/* Answers CALL (MSG, or the error it carries) wherever its answer goes,
 * and frees a kept call. */
__attribute__((noinline))
static void call_answer(kv_call *call, const ProtobufCMessage *msg)
{
    if (call->session)
        answer(call->session, call, msg);
    if (call->kept) {
        struct kv_kept_call *k = KEPT_OF(call);
        if (call->session)
            kept_unlink(k);
        kv_arena_free(&k->arena);
        free(k);
    }
}

/* The ProtobufCClosure every handler receives. The common case is kept
 * apart, because it is most of the server's work: a call answered at once,
 * with nothing before it waiting, goes straight to the output (counted at
 * the end of the batch). */
static void call_closure(const ProtobufCMessage *msg, void *closure_data)
{
    kv_call *call = closure_data;
    kv_session *s = call->session;

    call->answered = 1;
    if (msg && !call->kept && call->status == KV_OK && !s->first && !s->broken) {
        size_t len = kv_buf_len(&s->out);
        if (kv_dispatch_answer(&s->out, call->id, msg) == 0) {
            s->out_held += kv_buf_len(&s->out) - len;
            count_answer(s, call, KV_OK);
            return;
        }
    }
    call_answer(call, msg);
}

kv_call *kv_call_defer(void *closure_data)
{
    kv_call *call = closure_data;
    kv_session *s = call->session;
    struct kv_kept_call *k = malloc(sizeof *k);
    struct kv_slot *slot = k ? slot_new(s) : NULL;

    if (!slot) {
        free(k);
        return NULL;
    }
    k->call = *call;
    k->key_len = 0;
    k->key_bytes = 0;
    if (call->request) {
        size_t klen;
        const uint8_t *key = payload_key(call->request->env.payload,
                                         call->request->env.payload_len, &klen);
        if (key) {
            k->key_bytes = klen;
            k->key_len = (uint8_t)(klen < KV_SLOWLOG_KEY_MAX ? klen : KV_SLOWLOG_KEY_MAX);
            memcpy(k->key, key, k->key_len);
        }
    }
    k->call.kept = 1;
    k->call.answered = 0;
    k->call.request = NULL;     /* the frame's bytes go with the batch */
    kv_arena_init(&k->arena, KEPT_CHUNK);
    k->call.alloc = &k->arena.pb;
    k->call.slot = slot;
    slot->call = &k->call;
    k->prev = NULL;
    k->next = s->kept;
    if (s->kept)
        s->kept->prev = k;
    s->kept = k;
    call->answered = 1;     /* handed over: the kept copy answers */
    return &k->call;
}

/* One more frame of the kept CALL: its answer (the first frame, counted
 * as the call's answer) or, STREAM, a stream frame. */
static int call_frame(kv_call *call, const ProtobufCMessage *msg, int stream)
{
    kv_session *s = call->session;

    if (!s)
        return -1;
    kv_buf *b = frame_buf(s, call);
    if (!b)
        return -1;
    size_t cap = b->cap, len = kv_buf_len(b);
    if ((stream ? kv_dispatch_stream(b, call->id, msg) : kv_dispatch_answer(b, call->id, msg)) < 0)
        return -1;
    if (!call->counted) {
        call->counted = 1;
        count_answer(s, call, KV_OK);
    }
    frame_written(s, call, b, cap, len, 0);
    return 0;
}

int kv_call_send(kv_call *call, const ProtobufCMessage *msg)
{
    return call_frame(call, msg, 0);
}

int kv_call_stream(kv_call *call, const ProtobufCMessage *msg)
{
    return call_frame(call, msg, 1);
}

void kv_call_end(kv_call *call)
{
    kv_session *s = call->session;
    struct kv_kept_call *k = KEPT_OF(call);

    if (s) {
        /* Frames it wrote while waiting behind earlier answers still go. */
        if (call->slot) {
            kv_buf *b = &call->slot->frames;
            frame_written(s, call, b, b->cap, kv_buf_len(b), 1);
        }
        kept_unlink(k);
    }
    kv_arena_free(&k->arena);
    free(k);
}

/* ---- the session ----------------------------------------------------- */

void kv_session_init(kv_session *s, const kv_session_ctx *ctx, const kv_peer *peer)
{
    memset(s, 0, sizeof *s);
    s->ctx = ctx;
    s->state = KV_SESSION_OPEN;
    kv_service_init(&s->service, ctx->service, peer);
}

void kv_session_free(kv_session *s)
{
    while (s->kept) {
        struct kv_kept_call *k = s->kept;
        kept_unlink(k);
        k->call.session = NULL;
        k->call.slot = NULL;
        if (k->call.on_close)
            k->call.on_close(&k->call, k->call.on_close_arg);
    }
    kv_service_close(&s->service);
    slots_free(s);
    kv_buf_free(&s->in);
    count_input(s);
    kv_buf_free(&s->out);
    s->out_held = 0;
    count_output(s);
}

void kv_session_stop(kv_session *s, kv_close_reason reason, const char *why)
{
    if (s->n_timed)
        time_batch(s);      /* before their keys go with the input */
    if (s->state == KV_SESSION_OPEN) {
        s->state = KV_SESSION_CLOSING;
        s->stop_reason = why;
        s->stop_class = reason;
    }
    kv_buf_free(&s->in);
    count_input(s);
}

/* Answers with one session-level error (id 0) and stops input: a server
 * limit was hit, which the operator hears of. */
static void session_fail(kv_session *s, kv_status code, const char *msg,
                         kv_close_reason reason, const char *why)
{
    kv_call call = { .status = code, .message = msg, .method = NO_METHOD, .session = s };

    kv_log(KV_LOG_WARN, "refused further input from %s: %s: %s", s->service.peer.where, why, msg);
    answer(s, &call, NULL);
    kv_session_stop(s, reason, why);
}

uint8_t *kv_session_input_room(kv_session *s, size_t *room)
{
    if (s->state != KV_SESSION_OPEN)
        return NULL;
    if (kv_buf_room(&s->in) >= READ_MIN) {
        *room = kv_buf_room(&s->in);    /* no growth: nothing to charge */
        return kv_buf_tail(&s->in);
    }
    if (s->in.cap - kv_buf_len(&s->in) < READ_MIN) {
        /* Growing doubles the buffer: refuse if that passes the budget. */
        size_t next = s->in.cap ? s->in.cap * 2 : READ_MIN;
        size_t charged = next > INPUT_FLOOR ? next - INPUT_FLOOR : 0;
        kv_stats *st = s->ctx->stats;
        if (st->input_bytes - s->in_counted + charged > s->ctx->input_budget) {
            session_fail(s, KV_RESOURCE_EXHAUSTED,
                         "server input memory budget exhausted; retry later",
                         KV_CLOSE_PROTOCOL, "input buffers over --max-input-bytes");
            return NULL;
        }
    }
    if (kv_buf_reserve(&s->in, READ_MIN) < 0) {
        session_fail(s, KV_RESOURCE_EXHAUSTED, "server out of memory", KV_CLOSE_ERROR,
                     "out of memory for input");
        return NULL;
    }
    count_input(s);
    *room = kv_buf_room(&s->in);
    return kv_buf_tail(&s->in);
}

size_t kv_session_feed(kv_session *s, const uint8_t *data, size_t len)
{
    size_t taken = 0;

    while (taken < len && s->state == KV_SESSION_OPEN && !kv_session_must_pause(s)) {
        size_t room;
        uint8_t *p = kv_session_input_room(s, &room);
        if (!p)
            break;
        size_t n = len - taken < room ? len - taken : room;
        memcpy(p, data + taken, n);
        kv_session_input_commit(s, n);
        taken += n;
        kv_session_process(s);
    }
    return taken;
}

/* The largest frame the client may send now. */
static uint32_t max_frame(const kv_session *s)
{
    uint32_t max = s->ctx->max_frame_bytes;

    if (s->ctx->service->auth && !s->service.authenticated && max > PREAUTH_MAX_FRAME)
        max = PREAUTH_MAX_FRAME;
    return max;
}

/* Decodes one request and calls its handler, which answers now or keeps
 * the call for later. */
static void dispatch_one(kv_session *s, const uint8_t *body, size_t len)
{
    ProtobufCService *svc = kv_service_base(&s->service);
    kv_arena *arena = s->ctx->arena;
    kv_request req;

    kv_dispatch_decode(svc->descriptor, s->service.inputs, arena, body, len, &req);
    if (req.status != KV_OK) {
        kv_call refused = { .status = req.status, .message = req.message, .id = req.id,
                            .method = NO_METHOD, .session = s };
        answer(s, &refused, NULL);
        return;
    }
    kv_call call = { .alloc = &arena->pb, .status = KV_OK, .id = req.id, .method = req.method,
                     .session = s, .request = &req, .started_ns = s->batch_ns };
    svc->invoke(svc, req.method, req.input, call_closure, &call);
    if (!call.answered) {
        kv_call_fail(&call, KV_INTERNAL, "handler did not answer");
        answer(s, &call, NULL);
    }
}

size_t kv_session_process(kv_session *s)
{
    size_t taken = 0;

    s->processing = 1;
    s->batch_at = s->slow_at = NULL;
    s->batch_frames = s->slow_frame = 0;
    s->batch_bytes = 0;
    while (s->state == KV_SESSION_OPEN) {
        if (kv_session_must_pause(s))
            break;
        size_t off, len;
        uint32_t max = max_frame(s);
        kv_frame_result r = kv_frame_decode(kv_buf_head(&s->in), kv_buf_len(&s->in), max,
                                            &off, &len);
        if (r == KV_FRAME_PARTIAL)
            break;
        if (r == KV_FRAME_TOO_LARGE) {
            char msg[160];
            snprintf(msg, sizeof msg, "frame of %zu bytes exceeds the maximum of %u bytes%s",
                     len, (unsigned)max, max < s->ctx->max_frame_bytes ? " before Auth" : "");
            session_fail(s, KV_RESOURCE_EXHAUSTED, msg, KV_CLOSE_PROTOCOL,
                         max < s->ctx->max_frame_bytes ? "frame over 64 KiB before Auth"
                                                       : "frame over --max-frame-bytes");
            break;
        }
        if (r == KV_FRAME_MALFORMED) {
            kv_session_stop(s, KV_CLOSE_PROTOCOL, "malformed frame length");
            break;
        }
        if (!s->batch_at) {
            s->batch_at = kv_buf_head(&s->in);
            s->batch_ns = s->arrived_ns ? s->arrived_ns : now_ns();
        }
        dispatch_one(s, kv_buf_head(&s->in) + off, len);
        s->batch_frames++;
        s->batch_bytes += off + len;
        /* Its answer is packed and a kept call has an arena of its own, so
         * nothing of this request is used any more: a request that filled
         * the arena beyond its first chunk (a Txn that copied values and
         * then failed, with a short answer) gives it back now, not after
         * every request its client pipelined behind it. */
        if (s->ctx->arena->spilled)
            kv_arena_reset(s->ctx->arena);
        if (s->state != KV_SESSION_OPEN)
            break;      /* out of memory for its answer: the input is gone */
        kv_buf_consume(&s->in, off + len);
        taken++;
        if (s->service.hang_up)
            kv_session_stop(s, s->service.hang_up_reason, s->service.hang_up);
    }
    if (s->n_timed)
        time_batch(s);
    s->processing = 0;
    s->arrived_ns = 0;
    kv_arena_reset(s->ctx->arena);
    kv_buf_shrink(&s->in, BUF_KEEP);
    count_input(s);
    count_output(s);
    return taken;
}

/* kv_session_must_pause() past its quick answer. */
int kv_session_pressed(const kv_session *s)
{
    size_t unsent = kv_buf_len(&s->out) + s->held_cap;

    if (unsent >= OUT_HIGH_WATER || s->slots >= MAX_WAITING)
        return 1;
    if (unsent <= KV_SESSION_PRESSURE_FLOOR)
        return 0;
    /* The server's total as it is now: this session's growth since it was
     * last counted included. */
    size_t total = s->ctx->stats->output_bytes - s->out_counted + s->out.cap + s->held_cap;
    return total >= s->ctx->output_budget;
}

int kv_session_may_resume(const kv_session *s)
{
    return s->state == KV_SESSION_OPEN && kv_buf_len(&s->out) + s->held_cap < OUT_LOW_WATER &&
           !kv_session_must_pause(s);
}

void kv_session_output_sent(kv_session *s, size_t n)
{
    kv_buf_consume(&s->out, n);
    if (kv_buf_len(&s->out) == 0)
        kv_buf_shrink(&s->out, BUF_KEEP);
    count_output(s);
}

size_t kv_session_output_memory(const kv_session *s)
{
    return s->out.cap + s->held_cap;
}

size_t kv_session_unsent(const kv_session *s)
{
    return kv_buf_len(&s->out) + s->held_cap;
}
