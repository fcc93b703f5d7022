/* fuzz_dispatch.c - libFuzzer harness for the request path: the input is
 * a client's byte stream, fed to the server's own session (session.c) over
 * the memory engine, with small limits so limit paths are reached. Every
 * answer must be a valid RpcResponse frame, one per whole request.
 *
 * The real service has a watch hub, so Watch, CancelWatch and the stream
 * frames of the connection's own writes are reached: a stream frame
 * (stream = true) must come after its call's answer.
 *
 * The first byte picks how: bit 0 clear, the real service; set, handlers
 * that answer later (support/later.c), stepped in an order the remaining
 * bits and the input choose, with the connection closed early when bit 1
 * is set. Then the first frames must follow request order, and no call
 * may answer twice. State is fresh per input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "envelope.h"
#include "frame.h"
#include "log.h"
#include "session.h"
#include "support/later.h"
#include "watch.h"

#define MAX_FRAMES 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The ids of the requests in DATA, in order, as the server reads them (0
 * for an envelope that does not decode). Returns how many whole frames. */
static size_t request_ids(const uint8_t *data, size_t size, uint64_t *ids)
{
    size_t pos = 0, n = 0, off, len;

    while (n < MAX_FRAMES && kv_frame_decode(data + pos, size - pos, 1024, &off, &len) == KV_FRAME_OK) {
        kv_envelope env;
        ids[n++] = kv_envelope_decode(data + pos + off, len, &env) == 0 ? env.id : 0;
        pos += off + len;
    }
    return n;
}

/* Whether the answer in BODY is a stream frame of later.c's Set. */
static int is_later_frame(const Kvstore__V1__RpcResponse *r)
{
    static const uint8_t frame[] = { 0x0a, LATER_STREAM_LEN, 0, 's', 't', 'r', 'e', 'a', 'm' };

    return r->code == 0 && r->payload.len == sizeof frame &&
           memcmp(r->payload.data, frame, sizeof frame) == 0;
}

/* Checks OUT against the requests: every frame an RpcResponse; when the ids
 * are distinct and not 0, each call's first frame in request order and nothing after
 * its answer; when the session took everything, one answer per request. */
static void check(const kv_buf *out, const uint64_t *ids, size_t n, int whole)
{
    static uint8_t seen[MAX_FRAMES], done[MAX_FRAMES];
    size_t at = 0, next_first = 0, answers = 0;
    int distinct = 1;

    for (size_t i = 0; i < n && distinct; i++) {
        distinct = ids[i] != 0;     /* 0 is also a session-level error's id */
        for (size_t j = i + 1; j < n; j++)
            if (ids[i] == ids[j])
                distinct = 0;
    }
    memset(seen, 0, n);
    memset(done, 0, n);
    while (at < kv_buf_len(out)) {
        size_t off, len;
        if (kv_frame_decode(kv_buf_head(out) + at, kv_buf_len(out) - at, UINT32_MAX, &off, &len) != KV_FRAME_OK)
            abort();
        Kvstore__V1__RpcResponse *r = kvstore__v1__rpc_response__unpack(NULL, len, kv_buf_head(out) + at + off);
        if (!r)
            abort();
        int stream = is_later_frame(r);
        answers += !stream && !r->stream;
        if (r->stream) {            /* a Watch's: only after its answer */
            size_t i = 0;
            while (i < n && ids[i] != r->id)
                i++;
            if (r->code != 0 || (distinct && (i == n || !seen[i])))
                abort();
        } else if (distinct && r->id != 0) {
            size_t i = 0;
            while (i < n && ids[i] != r->id)
                i++;
            if (i == n || done[i])
                abort();    /* an id nobody sent, or a frame after the answer */
            if (!seen[i] && i != next_first++)
                abort();    /* a first frame out of request order */
            seen[i] = 1;
            done[i] = !stream;
        }
        kvstore__v1__rpc_response__free_unpacked(r, NULL);
        at += off + len;
    }
    if (whole && answers != n)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint64_t ids[MAX_FRAMES];
    kv_engine *engine;
    kv_stats stats = { 0 };
    kv_service_env env;
    kv_session_ctx ctx;
    kv_session session;
    kv_arena arena;
    kv_buf out = KV_BUF_INIT;
    char err[128];

    if (size < 1)
        return 0;
    kv_log_setup(KV_LOG_ERROR, KV_LOG_TEXT);    /* limit hits are expected here */
    uint8_t mode = data[0];
    data++;
    size--;
    if (kv_engine_open("memory", NULL, NULL, &engine, err, sizeof err) != KV_OK)
        abort();
    kv_watch_config wc = { 64, 1 << 20, 1024 };
    uint64_t expired = 0;
    kv_watch_hub *hub = kv_watch_hub_new(&wc, engine);
    if (!hub)
        abort();
    env = (kv_service_env){ .engine = engine, .stats = &stats, .limits = { 64, 256, 4096, 0 },
                            .watch = hub, .expired_keys = &expired,
                            .handlers = mode & 1 ? &later_handlers : NULL };
    kv_arena_init(&arena, 4096);
    ctx = (kv_session_ctx){ .service = &env, .arena = &arena, .stats = &stats,
                            .max_frame_bytes = 1024, .input_budget = SIZE_MAX,
                            .output_budget = SIZE_MAX };
    kv_session_init(&session, &ctx, NULL);

    size_t n = request_ids(data, size, ids);
    size_t taken = kv_session_feed(&session, data, size);
    int closed_early = (mode & 3) == 3, open = 1;
    /* Steps the kept calls in an order drawn from the input, taking the
     * answers that may go after each. */
    for (size_t step = 0; later_waiting() > 0; step++) {
        if (closed_early && step == 2) {
            kv_session_free(&session);
            open = 0;
            later_finish_all();
            break;
        }
        later_step((mode >> 2 ^ (size ? data[step % size] : 0)) % later_waiting());
        if (kv_session_may_resume(&session))
            kv_session_process(&session);   /* as conn.c does once unpaused */
        kv_session_release(&session);
        size_t ready;
        const uint8_t *p = kv_session_output(&session, &ready);
        if (p && kv_buf_append(&out, p, ready) == 0)
            kv_session_output_sent(&session, ready);
    }
    if (open) {
        size_t ready;
        kv_session_release(&session);
        const uint8_t *p = kv_session_output(&session, &ready);
        if (p && kv_buf_append(&out, p, ready) == 0)
            kv_session_output_sent(&session, ready);
        check(&out, ids, n, taken == size && session.state == KV_SESSION_OPEN);
        kv_session_free(&session);
    }
    if (stats.input_bytes || stats.output_bytes)
        abort();    /* every byte counted is given back */

    kv_buf_free(&out);
    kv_arena_free(&arena);
    kv_watch_hub_free(hub);
    kv_engine_close(engine);
    return 0;
}
