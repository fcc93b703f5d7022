/* test_alloc_fail.c - the request path under allocation failure: a fixed
 * client byte stream is fed to a session (the server's own, session.c) over
 * the memory engine, with the Nth allocation made by the server's own
 * code failing (N = 1, 2, ... until a run completes without reaching N).
 * Every run must end with answers or a stopped session (the connection
 * then closes), never a crash, and with no memory left allocated. A
 * /metrics scrape (metrics_http.h) is put through the same. The
 * server objects are linked with --wrap=malloc/calloc/realloc/free, so
 * only their allocations are counted and failed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arena.h"
#include "engine.h"
#include "frame.h"
#include "metrics_http.h"
#include "session.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

static long fail_at;        /* 0: never fail */
static long calls;          /* allocations attempted since the run began */
static long live;           /* blocks allocated and not yet freed */
static int failed;          /* the injected failure happened */

static int should_fail(void)
{
    if (fail_at && ++calls == fail_at) {
        failed = 1;
        return 1;
    }
    return 0;
}

void *__wrap_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    void *p = __real_malloc(n);
    live += p != NULL;
    return p;
}

void *__wrap_calloc(size_t n, size_t m)
{
    if (should_fail())
        return NULL;
    void *p = __real_calloc(n, m);
    live += p != NULL;
    return p;
}

void *__wrap_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    void *q = __real_realloc(p, n);
    live += p == NULL && q != NULL;
    return q;
}

void __wrap_free(void *p)
{
    live -= p != NULL;
    __real_free(p);
}

/* A client's stream: every method, growing values, a big value, errors. */
static size_t build_stream(uint8_t *buf)
{
    static uint8_t big[3000];
    size_t len = 0;
    uint8_t payload[4096];

    for (int i = 0; i < 40; i++) {
        Kvstore__V1__RpcRequest r = KVSTORE__V1__RPC_REQUEST__INIT;
        char key[16];
        size_t pl = 0;
        snprintf(key, sizeof key, "key-%d", i % 7);
        switch (i % 6) {
        case 0: case 1: {
            Kvstore__V1__SetRequest s = KVSTORE__V1__SET_REQUEST__INIT;
            s.key = (ProtobufCBinaryData){ strlen(key), (uint8_t *)key };
            s.value = (ProtobufCBinaryData){ i == 13 ? sizeof big : (size_t)i * 10, big };
            pl = kvstore__v1__set_request__pack(&s, payload);
            r.method = "/kvstore.v1.KV/Set";
            break;
        }
        case 2: {
            Kvstore__V1__GetRequest g = KVSTORE__V1__GET_REQUEST__INIT;
            g.key = (ProtobufCBinaryData){ strlen(key), (uint8_t *)key };
            pl = kvstore__v1__get_request__pack(&g, payload);
            r.method = "/kvstore.v1.KV/Get";
            break;
        }
        case 3: {
            Kvstore__V1__ClearRequest c = KVSTORE__V1__CLEAR_REQUEST__INIT;
            c.key = (ProtobufCBinaryData){ strlen(key), (uint8_t *)key };
            pl = kvstore__v1__clear_request__pack(&c, payload);
            r.method = "/kvstore.v1.KV/Clear";
            break;
        }
        case 4: r.method = "/kvstore.v1.KV/Stats"; break;
        default: r.method = i % 12 == 5 ? "/kvstore.v1.KV/Nope" : "/kvstore.v1.KV/Ping"; break;
        }
        r.id = (uint64_t)i + 1;
        r.payload = (ProtobufCBinaryData){ pl, payload };
        size_t n = kvstore__v1__rpc_request__get_packed_size(&r);
        len += kv_frame_put_prefix(buf + len, (uint32_t)n);
        len += kvstore__v1__rpc_request__pack(&r, buf + len);
    }
    return len;
}

/* One connection's life over STREAM with allocation N failing. Returns
 * whether the whole stream was answered. */
static int run(const uint8_t *stream, size_t len, long n)
{
    kv_engine *engine = NULL;
    kv_stats stats = { 0 };
    kv_service_env env;
    kv_session_ctx ctx;
    kv_session session;
    kv_arena arena;
    kv_buf out = KV_BUF_INIT;
    char err[128];
    size_t pos = 0;
    int whole;

    fail_at = n;
    calls = 0;
    failed = 0;
    if (kv_engine_open("memory", NULL, NULL, &engine, err, sizeof err) != KV_OK) {
        assert_true(failed);        /* only an injected failure may stop it */
        fail_at = 0;
        return 0;
    }
    env = (kv_service_env){ .engine = engine, .stats = &stats, .limits = { 64, 4096, 0, 0 } };
    kv_arena_init(&arena, 1024);
    ctx = (kv_session_ctx){ .service = &env, .arena = &arena, .stats = &stats,
                            .max_frame_bytes = 1 << 20, .input_budget = SIZE_MAX,
                            .output_budget = SIZE_MAX };
    kv_session_init(&session, &ctx, NULL);
    /* A socket's worth at a time, the answers taken after each. */
    while (pos < len && session.state == KV_SESSION_OPEN) {
        size_t chunk = len - pos < 1500 ? len - pos : 1500, ready;
        pos += kv_session_feed(&session, stream + pos, chunk);
        kv_session_release(&session);
        const uint8_t *p = kv_session_output(&session, &ready);
        if (p && kv_buf_append(&out, p, ready) == 0)
            kv_session_output_sent(&session, ready);
    }
    whole = session.state == KV_SESSION_OPEN;
    /* Whatever was answered is well-formed. */
    for (size_t at = 0; at < kv_buf_len(&out);) {
        size_t off, flen;
        assert_int_equal(kv_frame_decode(kv_buf_head(&out) + at, kv_buf_len(&out) - at,
                                         UINT32_MAX, &off, &flen), KV_FRAME_OK);
        Kvstore__V1__RpcResponse *r = kvstore__v1__rpc_response__unpack(NULL, flen, kv_buf_head(&out) + at + off);
        assert_non_null(r);
        kvstore__v1__rpc_response__free_unpacked(r, NULL);
        at += off + flen;
    }
    if (!failed)
        assert_int_equal(stats.requests, 40);   /* every request answered */
    fail_at = 0;
    kv_session_free(&session);
    assert_int_equal(stats.input_bytes, 0);
    assert_int_equal(stats.output_bytes, 0);
    kv_buf_free(&out);
    kv_arena_free(&arena);
    kv_engine_close(engine);
    return whole;
}

static void every_allocation_failure_is_survived_without_leaks(void **state)
{
    static uint8_t stream[64 * 1024];
    size_t len = build_stream(stream);
    long n;

    (void)state;
    for (n = 1; n < 100000; n++) {
        long before = live;
        run(stream, len, n);
        assert_int_equal(live, before);     /* no leak, whatever failed */
        if (!failed)
            break;                          /* the run never reached N */
    }
    assert_true(n > 10);                    /* the path does allocate */
    printf("allocation failure injected at each of %ld points\n", n - 1);
}

/* A scrape with allocation N failing: the whole text, or -1 and nothing
 * held. Returns whether it was whole. */
static int scrape(kv_engine *engine, long n)
{
    kv_stats stats = { 0 };
    kv_service_env env = { .engine = engine, .stats = &stats };
    kv_buf out = KV_BUF_INIT;

    kv_latency_record(&stats.latency[1], 12345);
    fail_at = n;
    calls = 0;
    failed = 0;
    int rc = kv_metrics_scrape(&env, &out);
    fail_at = 0;
    if (rc < 0) {
        assert_true(failed);
        assert_null(out.data);
        return 0;
    }
    static const char want[] = "kvstore_request_duration_seconds_count{method=\"Get\"} 1\n";
    assert_non_null(memmem(out.data, kv_buf_len(&out), want, sizeof want - 1));
    kv_buf_free(&out);
    return 1;
}

static void a_scrape_survives_every_allocation_failure_without_leaks(void **state)
{
    kv_engine *engine = NULL;
    char err[128];
    long n;

    (void)state;
    assert_int_equal(kv_engine_open("memory", NULL, NULL, &engine, err, sizeof err), KV_OK);
    for (n = 1; n < 100000; n++) {
        long before = live;
        scrape(engine, n);
        assert_int_equal(live, before);
        if (!failed)
            break;
    }
    assert_true(n > 2);
    printf("scrape: allocation failure injected at each of %ld points\n", n - 1);
    kv_engine_close(engine);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_allocation_failure_is_survived_without_leaks),
        cmocka_unit_test(a_scrape_survives_every_allocation_failure_without_leaks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
