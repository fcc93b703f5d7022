/* test_session.c - the session's answer order (session.h), driven from
 * memory with handlers that answer later (support/later.c): answers leave
 * in request order whatever order calls complete in, across sessions; an
 * answer behind a waiting call is held; stream frames go out before their
 * call's answer without holding later calls back; a session closed with
 * calls kept is safe to answer into; waiting calls count against the caps;
 * every byte counted is given back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "frame.h"
#include "session.h"
#include "support/later.h"

typedef struct fixture {
    kv_engine *engine;
    kv_stats stats;
    kv_service_env env;
    kv_arena arena;
    kv_session_ctx ctx;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[128];

    assert_int_equal(kv_engine_open("memory", NULL, NULL, &f->engine, err, sizeof err), KV_OK);
    f->env = (kv_service_env){ .engine = f->engine, .stats = &f->stats,
                               .limits = { 64, 4096, 0, 0 }, .handlers = &later_handlers };
    kv_arena_init(&f->arena, 4096);
    f->ctx = (kv_session_ctx){ .service = &f->env, .arena = &f->arena, .stats = &f->stats,
                               .max_frame_bytes = 1 << 20, .input_budget = SIZE_MAX,
                               .output_budget = SIZE_MAX };
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    later_finish_all();
    assert_int_equal(f->stats.input_bytes, 0);
    assert_int_equal(f->stats.output_bytes, 0);
    kv_arena_free(&f->arena);
    kv_engine_close(f->engine);
    free(f);
    return 0;
}

/* Feeds S one request: METHOD ("Get", "Set", "Clear", "Ping") with KEY and ID. */
static void request(kv_session *s, const char *method, const char *key, uint64_t id)
{
    Kvstore__V1__GetRequest get = KVSTORE__V1__GET_REQUEST__INIT;
    Kvstore__V1__RpcRequest r = KVSTORE__V1__RPC_REQUEST__INIT;
    uint8_t payload[256], frame[512];
    char path[64];

    get.key = (ProtobufCBinaryData){ strlen(key), (uint8_t *)key };   /* field 1 in all four */
    snprintf(path, sizeof path, "/kvstore.v1.KV/%s", method);
    r.id = id;
    r.method = path;
    r.payload = (ProtobufCBinaryData){ kvstore__v1__get_request__pack(&get, payload), payload };
    size_t n = kvstore__v1__rpc_request__get_packed_size(&r);
    size_t len = kv_frame_put_prefix(frame, (uint32_t)n);
    len += kvstore__v1__rpc_request__pack(&r, frame + len);
    assert_int_equal(kv_session_feed(s, frame, len), len);
}

/* What S may send now, as "id:what" words: "ok" for an answer, "stream"
 * for a stream frame, the code number for an error. Takes it from S. */
static const char *sent(kv_session *s)
{
    static char text[4096];
    size_t ready, at = 0, off, len, used = 0;

    text[0] = 0;
    kv_session_release(s);
    const uint8_t *p = kv_session_output(s, &ready);
    while (p && at < ready && used < sizeof text - 64) {
        assert_int_equal(kv_frame_decode(p + at, ready - at, UINT32_MAX, &off, &len), KV_FRAME_OK);
        Kvstore__V1__RpcResponse *r = kvstore__v1__rpc_response__unpack(NULL, len, p + at + off);
        assert_non_null(r);
        int stream = r->payload.len == LATER_STREAM_LEN + 2 &&
                     memcmp(r->payload.data + 2, LATER_STREAM, LATER_STREAM_LEN) == 0;
        if (r->code)
            used += (size_t)snprintf(text + used, sizeof text - used, "%s%llu:%u", used ? " " : "",
                                     (unsigned long long)r->id, (unsigned)r->code);
        else
            used += (size_t)snprintf(text + used, sizeof text - used, "%s%llu:%s", used ? " " : "",
                                     (unsigned long long)r->id, stream ? "stream" : "ok");
        kvstore__v1__rpc_response__free_unpacked(r, NULL);
        at += off + len;
    }
    if (p)
        kv_session_output_sent(s, ready);   /* all of it, listed or not */
    return text;
}

static void answers_leave_in_request_order_whatever_order_calls_complete(void **state)
{
    fixture *f = *state;
    kv_session s;

    kv_session_init(&s, &f->ctx, NULL);
    request(&s, "Get", "a", 1);
    request(&s, "Get", "b", 2);
    request(&s, "Get", "c", 3);
    assert_int_equal(later_waiting(), 3);
    assert_true(kv_session_waiting(&s));
    assert_string_equal(sent(&s), "");
    later_step(2);                          /* the third completes first */
    assert_string_equal(sent(&s), "");      /* held behind 1 and 2 */
    later_step(1);
    assert_string_equal(sent(&s), "");
    later_step(0);
    assert_string_equal(sent(&s), "1:ok 2:ok 3:ok");
    assert_false(kv_session_waiting(&s));
    assert_true(kv_session_drained(&s));
    kv_session_free(&s);
}

static void an_answer_given_at_once_waits_behind_a_kept_call(void **state)
{
    fixture *f = *state;
    kv_session s;

    kv_session_init(&s, &f->ctx, NULL);
    request(&s, "Ping", "", 1);
    request(&s, "Get", "a", 2);
    request(&s, "Ping", "", 3);
    request(&s, "Nope", "", 4);             /* an error, answered at once */
    assert_string_equal(sent(&s), "1:ok");
    later_step(0);
    assert_string_equal(sent(&s), "2:ok 3:ok 4:12");
    kv_session_free(&s);
}

static void calls_complete_out_of_order_across_sessions(void **state)
{
    fixture *f = *state;
    kv_session a, b;

    kv_session_init(&a, &f->ctx, NULL);
    kv_session_init(&b, &f->ctx, NULL);
    request(&a, "Get", "a1", 1);            /* kept 0 */
    request(&b, "Clear", "b1", 1);          /* kept 1 */
    request(&a, "Get", "a2", 2);            /* kept 2 */
    request(&b, "Get", "b2", 2);            /* kept 3 */
    later_step(3);                          /* b2 */
    later_step(1);                          /* b1 */
    assert_string_equal(sent(&b), "1:5 2:ok");
    assert_string_equal(sent(&a), "");
    later_step(1);                          /* a2 */
    assert_string_equal(sent(&a), "");
    later_step(0);                          /* a1 */
    assert_string_equal(sent(&a), "1:ok 2:ok");
    kv_session_free(&a);
    kv_session_free(&b);
}

static void a_stream_sends_frames_and_stops_holding_later_answers(void **state)
{
    fixture *f = *state;
    kv_session s;

    kv_session_init(&s, &f->ctx, NULL);
    request(&s, "Get", "a", 1);             /* kept 0 */
    request(&s, "Set", "s", 2);             /* kept 1: a stream */
    request(&s, "Ping", "", 3);
    later_step(1);                          /* the stream's first frame */
    assert_string_equal(sent(&s), "");      /* held behind Get 1 */
    later_step(0);
    assert_string_equal(sent(&s), "1:ok 2:stream 3:ok");
    request(&s, "Ping", "", 4);             /* the open stream holds nobody */
    assert_string_equal(sent(&s), "4:ok");
    later_step(0);                          /* the stream's answer */
    assert_string_equal(sent(&s), "2:ok");
    kv_session_free(&s);
}

static void answers_of_a_turn_wait_for_the_release(void **state)
{
    fixture *f = *state;
    kv_session s;
    size_t ready;

    kv_session_init(&s, &f->ctx, NULL);
    request(&s, "Get", "a", 1);
    later_step(0);
    assert_null(kv_session_output(&s, &ready));   /* not before the engine's flush */
    assert_string_equal(sent(&s), "1:ok");
    kv_session_free(&s);
}

static int woken;

static void count_wake(void *arg)
{
    (void)arg;
    woken++;
}

static void an_answer_given_later_wakes_the_connection(void **state)
{
    fixture *f = *state;
    kv_session s;

    kv_session_init(&s, &f->ctx, NULL);
    s.wake = count_wake;
    request(&s, "Ping", "", 1);
    assert_int_equal(woken, 0);             /* answered while processing */
    request(&s, "Get", "a", 2);
    later_step(0);
    assert_int_equal(woken, 1);
    assert_string_equal(sent(&s), "1:ok 2:ok");
    kv_session_free(&s);
}

static void a_session_closed_with_kept_calls_is_answered_into_nothing(void **state)
{
    fixture *f = *state;
    kv_session s;
    size_t orphans = later_orphaned();

    kv_session_init(&s, &f->ctx, NULL);
    request(&s, "Get", "a", 1);
    request(&s, "Set", "b", 2);
    request(&s, "Ping", "", 3);
    later_step(1);                          /* a stream frame, held */
    assert_true(f->stats.output_bytes > 0);
    kv_session_free(&s);
    assert_int_equal(later_orphaned(), orphans + 2);
    assert_int_equal(f->stats.output_bytes, 0);
    later_finish_all();                     /* no session, no crash, no leak */
    assert_int_equal(later_waiting(), 0);
}

static void waiting_calls_count_against_the_caps(void **state)
{
    fixture *f = *state;
    kv_session s;
    uint64_t id = 1;

    kv_session_init(&s, &f->ctx, NULL);
    request(&s, "Get", "first", id++);
    while (!kv_session_must_pause(&s))
        request(&s, "Ping", "", id++);      /* each held behind the Get */
    assert_true(id > 100 && id < 5000);
    assert_true(f->stats.output_bytes > 0);
    later_step(0);
    assert_false(kv_session_must_pause(&s));
    assert_true(kv_session_may_resume(&s));
    assert_int_equal(f->stats.requests, id - 1);
    sent(&s);
    kv_session_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(answers_leave_in_request_order_whatever_order_calls_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(an_answer_given_at_once_waits_behind_a_kept_call, setup, teardown),
        cmocka_unit_test_setup_teardown(calls_complete_out_of_order_across_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(a_stream_sends_frames_and_stops_holding_later_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(answers_of_a_turn_wait_for_the_release, setup, teardown),
        cmocka_unit_test_setup_teardown(an_answer_given_later_wakes_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(a_session_closed_with_kept_calls_is_answered_into_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(waiting_calls_count_against_the_caps, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
