/* fuzz_dispatch.c - libFuzzer harness for the request path: the input is
 * a client's byte stream; it is cut into frames exactly as conn.c does and
 * each frame is dispatched to a real executor over the memory engine (with
 * small limits, so limit paths are reached). Every answer must be a valid
 * RpcResponse frame, one per whole request. State is fresh per input. */
#include <stdint.h>
#include <stdlib.h>
#include "arena.h"
#include "dispatch.h"
#include "engine.h"
#include "exec.h"
#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kv_engine *engine;
    kv_stats stats = { 0 };
    kv_exec_env env;
    kv_exec exec;
    kv_arena arena;
    kv_buf out = KV_BUF_INIT;
    char err[128];
    size_t pos = 0, frames = 0;

    if (kv_engine_open("memory", NULL, NULL, &engine, err, sizeof err) != KV_OK)
        abort();
    env = (kv_exec_env){ engine, &stats, { 64, 256, 4096 }, NULL, NULL };
    kv_exec_init(&exec, &env, NULL);
    kv_arena_init(&arena, 4096);

    for (;;) {
        size_t off, len;
        kv_frame_result r = kv_frame_decode(data + pos, size - pos, 1024, &off, &len);
        if (r != KV_FRAME_OK)
            break;      /* partial, too large or malformed: the server stops here too */
        if (kv_dispatch_frame(kv_exec_service(&exec), &arena, &stats, data + pos + off, len, &out) < 0)
            abort();    /* out of memory cannot happen at these sizes */
        kv_arena_reset(&arena);
        pos += off + len;
        frames++;
    }

    /* One well-formed RpcResponse per frame. */
    size_t answers = 0, at = 0;
    while (at < kv_buf_len(&out)) {
        size_t off, len;
        if (kv_frame_decode(kv_buf_head(&out) + at, kv_buf_len(&out) - at, UINT32_MAX, &off, &len) != KV_FRAME_OK)
            abort();
        Kvstore__V1__RpcResponse *resp =
            kvstore__v1__rpc_response__unpack(NULL, len, kv_buf_head(&out) + at + off);
        if (!resp)
            abort();
        kvstore__v1__rpc_response__free_unpacked(resp, NULL);
        at += off + len;
        answers++;
    }
    if (answers != frames || stats.requests != frames)
        abort();

    kv_buf_free(&out);
    kv_arena_free(&arena);
    kv_engine_close(engine);
    return 0;
}
