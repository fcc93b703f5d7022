/* session.h - one connection's protocol state, knowing no socket: the
 * input bytes and their framing, the connection's service state (auth, peer),
 * the limits, and the answers in the order they must go out. It is fed
 * bytes and drained of bytes, as hiredis's redisReader is: conn.c moves
 * bytes between it and a socket, the fuzz harness and the allocation-failure
 * test drive it straight from memory, so all three run the same loop.
 *
 * Answers go out in request order. Most calls are answered while they are
 * dispatched; a handler may instead keep its call (kv_call_defer) and answer
 * it from a later loop turn: the answers behind it wait, held, until it is
 * answered. A kept call may also send frames before its answer (a stream);
 * once its first frame has gone out it no longer holds anyone back. */
#ifndef KV_SESSION_H
#define KV_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include <kvstore/status.h>
#include "arena.h"
#include "buf.h"
#include "service.h"
#include "stats.h"

/* What every session of a server shares; owned by the server. */
typedef struct kv_session_ctx {
    const kv_service_env *service;  /* what every connection's service shares */
    kv_arena *arena;                /* request memory, reset after each batch */
    kv_stats *stats;                /* counters, and the buffer totals below bound */
    uint32_t max_frame_bytes;       /* largest request frame body */
    size_t input_budget;            /* input bytes of all sessions, above each
                                       one's floor (see session.c) */
    size_t output_budget;           /* unsent answer bytes of all sessions */
} kv_session_ctx;

/* Where a session is in its life. */
typedef enum kv_session_state {
    KV_SESSION_OPEN,        /* takes input and answers it */
    KV_SESSION_CLOSING,     /* takes no more input; answers what it has */
} kv_session_state;

struct kv_slot;
struct kv_kept_call;

/* Calls of one batch timed together; a longer batch is timed in parts. */
#define KV_SESSION_TIMED 16

typedef struct kv_session {
    const kv_session_ctx *ctx;      /* borrowed */
    kv_service service;             /* the connection's own service state */
    kv_session_state state;         /* read-only outside session.c */
    const char *stop_reason;        /* read-only: why input stopped (static) */
    kv_close_reason stop_class;     /* read-only: and which kind of close that
                                       makes, for stats.closed */
    uint64_t answered;              /* read-only: requests answered, this
                                       connection's share of stats->requests */
    kv_buf in;                      /* private: input, not yet a whole frame */
    kv_buf out;                     /* private: answers in order */
    size_t out_held;                /* private: out's tail appended since the
                                       last kv_session_release() */
    size_t in_counted;              /* private: what in adds to stats->input_bytes */
    size_t out_counted;             /* private: what out and the held frames add
                                       to stats->output_bytes */
    struct kv_slot *first, *last;   /* private: calls whose answer waits for an
                                       earlier one, in request order */
    size_t slots;                   /* private: how many */
    size_t held_cap;                /* private: buffer bytes of those answers */
    struct kv_kept_call *kept;      /* private: calls kept by handlers, live */
    int processing;                 /* private: inside kv_session_process */
    uint64_t arrived_ns;            /* when the input about to be processed
                                       arrived (CLOCK_REALTIME ns, as libev's
                                       ev_now): set by the caller before
                                       kv_session_process, which clears it;
                                       0: it reads the clock itself */
    uint64_t batch_ns;              /* private: while processing, when the
                                       batch arrived */
    const uint8_t *batch_at;        /* private: its first frame; NULL: none yet */
    size_t batch_bytes;             /* private: its frames' bytes so far */
    unsigned batch_frames;          /* private: and how many */
    const uint8_t *slow_at;         /* private: the slow log's walk of the */
    unsigned slow_frame;            /* batch's frames: where it is */
    unsigned n_timed;               /* private: calls answered in this batch, */
    struct kv_timed {               /* to be timed when it ends (session.c) */
        uint8_t method, code;
        uint32_t frame;             /* its frame's place in the batch */
    } timed[KV_SESSION_TIMED];
    int broken;                     /* private: out of memory for an answer:
                                       nothing more goes out */
    void (*wake)(void *arg);        /* told when output appears outside
                                       kv_session_process (a kept call
                                       answered later); may be NULL */
    void *wake_arg;
} kv_session;

/* Prepares S for one connection from PEER (copied; NULL when unknown) in
 * CTX, which must outlive S. Allocates nothing. */
void kv_session_init(kv_session *s, const kv_session_ctx *ctx, const kv_peer *peer);

/* Releases S's buffers and held answers. Calls still kept by handlers are
 * told (their on_close hook runs) and answered into nothing later. */
void kv_session_free(kv_session *s);

/* While the answers held by all sessions are over the output budget, a
 * session with more than this unsent pauses: the clients that keep up
 * (nothing left over between turns) are served as before. */
#define KV_SESSION_PRESSURE_FLOOR (64 * 1024)

/* Room for at least 64 KiB more input bytes, within the server's input
 * budget: returns where they go and sets *ROOM; the caller writes there
 * and commits what it wrote. Returns NULL when the budget or memory is
 * out: S then answers with an error and stops taking input. */
uint8_t *kv_session_input_room(kv_session *s, size_t *room);
static inline void kv_session_input_commit(kv_session *s, size_t n)
{
    kv_buf_commit(&s->in, n);
}

/* Copies up to LEN bytes of DATA into the input, as reads would (within
 * the budget), answering what is whole as it goes. Returns the bytes taken:
 * fewer when S paused or stopped. Whole requests taken may wait in the
 * input while S is paused: call kv_session_process() once it may resume.
 * For drivers without a socket (tests, the fuzzer); conn.c reads straight
 * into kv_session_input_room(). */
size_t kv_session_feed(kv_session *s, const uint8_t *data, size_t len);

/* Answers every whole frame of input, in order, until the input is used up
 * or S must pause (kv_session_must_pause). A framing error or a refused
 * frame answers with an error and stops input. Resets the arena at the end:
 * requests of one batch share it. Returns how many requests it took. */
size_t kv_session_process(kv_session *s);

/* Whether S should take no more input for now: too many unsent answers,
 * the server's answers over the output budget, or too many calls waiting
 * for an answer. Input resumes once this is false again. */
int kv_session_pressed(const kv_session *s);
static inline int kv_session_must_pause(const kv_session *s)
{
    /* Nothing waits and little is unsent: the common case, decided here. */
    if (!s->slots && kv_buf_len(&s->out) <= KV_SESSION_PRESSURE_FLOOR)
        return 0;
    return kv_session_pressed(s);
}

/* Whether a paused S may take input again: its unsent answers drained well
 * below the pause mark (so that it does not pause again at once). */
int kv_session_may_resume(const kv_session *s);

/* Takes no more input; what is buffered will not be answered. WHY (static)
 * says why, for the logs; REASON is the close it counts as once S is done
 * (the first stop's, when S was stopped already). */
void kv_session_stop(kv_session *s, kv_close_reason reason, const char *why);

/* The answer bytes that may go out now: everything but this turn's tail
 * (see kv_session_release). Sets *LEN; returns NULL when there are none. */
static inline const uint8_t *kv_session_output(const kv_session *s, size_t *len)
{
    size_t n = kv_buf_len(&s->out);

    *len = n > s->out_held ? n - s->out_held : 0;
    return *len ? kv_buf_head(&s->out) : NULL;
}

/* N bytes of kv_session_output() were sent. */
void kv_session_output_sent(kv_session *s, size_t n);

/* This turn's answers may go: the engine flushed the writes they answer.
 * Answers appended since the previous release are held until this. */
static inline void kv_session_release(kv_session *s)
{
    s->out_held = 0;
}

/* The memory S's output holds: buffer capacity, what stats->output_bytes
 * counts against the output budget, whether or not anything is unsent
 * (kv_session_drained says that). */
size_t kv_session_output_memory(const kv_session *s);

/* The input bytes S holds, not yet a whole request (ClientList). */
static inline size_t kv_session_input_buffered(const kv_session *s)
{
    return kv_buf_len(&s->in);
}

/* The answer bytes S holds that the client has not read yet: its output,
 * and the buffers of answers waiting for earlier ones. */
size_t kv_session_unsent(const kv_session *s);

/* Whether S has nothing more to send and no call waiting for an answer
 * (calls kept as open streams do not count): a closing session is then
 * done. */
static inline int kv_session_drained(const kv_session *s)
{
    return kv_buf_len(&s->out) == 0 && !s->first;
}

/* Whether a handler keeps one of S's calls: a connection waiting for an
 * answer from elsewhere is not idle. */
static inline int kv_session_waiting(const kv_session *s)
{
    return s->kept != NULL;
}

/* ---- for handlers ---------------------------------------------------- */

/* The closure_data every handler receives. */
typedef struct kv_call {
    ProtobufCAllocator *alloc;  /* read-only: memory for the call's life: the
                                   batch's arena, or the call's own once kept */
    kv_status status;           /* KV_OK unless a handler called kv_call_fail */
    const char *message;        /* reason when status != KV_OK; static or alloc */
    const char *leader;         /* v3: with KV_UNAVAILABLE, the leader's client
                                   address for the answer (see kv_call_fail_leader) */
    const struct kv_request *request;
                                /* read-only, during the handler only: the
                                   request as decoded (payload bytes, client_id,
                                   seq); NULL once kept */
    void (*on_close)(struct kv_call *call, void *arg);
                                /* set by a handler that keeps the call: run
                                   once if the connection goes first; the
                                   call must still be answered (into nothing)
                                   to be freed */
    void *on_close_arg;
    uint64_t id;                /* private: the request's id */
    unsigned method;            /* private: index in the service descriptor */
    int answered;               /* private: closure ran (or the call was kept) */
    int kept;                   /* private: a struct kv_kept_call on the heap */
    int counted;                /* private: its answer is in the figures */
    uint64_t started_ns;        /* private: when its batch arrived, for its
                                   latency (session.c's clock) */
    kv_session *session;        /* private: NULL once the connection is gone */
    struct kv_slot *slot;       /* private: its place in the answer order while
                                   its first frame waits for earlier answers */
} kv_call;

/* Handlers call this before closure(NULL, closure_data) to fail the call.
 * MESSAGE must live until the closure returns (a literal or alloc memory). */
void kv_call_fail(void *closure_data, kv_status status, const char *message);

/* As kv_call_fail, with the leader's client address LEADER (may be NULL or
 * empty: none known) for RpcResponse.leader; it must live as MESSAGE. */
static inline void kv_call_fail_leader(void *closure_data, kv_status status, const char *message,
                                       const char *leader)
{
    kv_call_fail(closure_data, status, message);
    ((kv_call *)closure_data)->leader = leader && *leader ? leader : NULL;
}

/* Keeps the call for an answer later. Called by a handler before it returns,
 * instead of the closure. Returns the kept call, which the handler answers
 * by calling the method's closure with it as closure_data (exactly once;
 * that frees it), or NULL when memory is out (then the handler must answer
 * now: kv_call_fail with KV_RESOURCE_EXHAUSTED and the closure). The
 * request message and the batch's memory are gone after the handler
 * returns: copy what the answer needs. */
kv_call *kv_call_defer(void *closure_data);

/* Sends MSG as one more frame of the kept CALL, before its final answer;
 * the first is counted as the call's answer. Returns 0, -1 when the
 * connection is gone or memory is out. */
int kv_call_send(kv_call *call, const ProtobufCMessage *msg);

/* As kv_call_send, as a stream frame (RpcResponse.stream = true): what a
 * Watch sends after its answer. */
int kv_call_stream(kv_call *call, const ProtobufCMessage *msg);

/* Frees the kept CALL without a final frame: a stream whose answer and
 * last frame were sent (kv_call_send, kv_call_stream), or one whose
 * connection is gone. Frames it sent still go out in their order. */
void kv_call_end(kv_call *call);

#endif
