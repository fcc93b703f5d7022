/* test_hostile.c - broken and hostile input against a live kvstored: bad
 * length prefixes, corrupt envelopes and payloads, other protocols on the
 * port, floods, resets and abandoned connections. Each test checks the
 * exact answer (or that only that connection closed) and that a second
 * client is served throughout. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "frame.h"
#include "support/fixture.h"

/* The second client is still served, with its data intact. */
static void assert_others_served(kv_fixture *f)
{
    char *reply = NULL;

    assert_int_equal(kv_client_set(f->c, "witness", 7, "here", 4), KV_OK);
    kv_assert_value(f->c, "witness", 7, "here", 4);
    assert_int_equal(kv_client_ping(f->c, NULL, &reply), KV_OK);
    free(reply);
}

/* Reads one answer and checks its id and code. */
static void expect_answer(int fd, uint64_t id, kv_status code)
{
    Kvstore__V1__RpcResponse *r = kv_test_read_response(fd);

    assert_non_null(r);
    assert_int_equal(r->id, id);
    assert_int_equal(r->code, code);
    kvstore__v1__rpc_response__free_unpacked(r, NULL);
}

/* Sends BODY[0..LEN) as one frame. */
static void send_frame(int fd, const void *body, size_t len)
{
    uint8_t pre[KV_FRAME_PREFIX_MAX];
    size_t n = kv_frame_put_prefix(pre, (uint32_t)len);

    assert_int_equal(kv_test_send_all(fd, pre, n), 0);
    assert_int_equal(kv_test_send_all(fd, body, len), 0);
}

/* With a short --idle-timeout the fixture's own client is dropped while a
 * test waits too: connect it afresh. */
static void reconnect(kv_fixture *f)
{
    kv_client_free(f->c);
    f->c = kv_client_connect(f->srv.endpoint, KV_TEST_TIMEOUT_MS, NULL, 0);
    assert_non_null(f->c);
}

/* How long a test waits for the server to finish closing connections. Only
 * a failing test waits it out, so it is generous: 5 s was once too short
 * for hostile-lmdb-valgrind on a busy machine. */
#define CLOSE_DEADLINE_MS 60000

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits, until DEADLINE (now_ms), for the server to close FD: poll() wakes
 * on its FIN. Returns 1 once FD reads EOF, 0 on data or the deadline. */
static int server_closed_by(int fd, int64_t deadline)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int64_t left;

    while ((left = deadline - now_ms()) > 0) {
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        return kv_test_peer_closed(fd);
    }
    return 0;
}

static int setup_short_idle(void **state)
{
    static const char *const extra[] = { "--idle-timeout", "1", NULL };
    return kv_fixture_start(state, extra);
}

static void huge_length_prefixes_are_refused_then_closed(void **state)
{
    kv_fixture *f = *state;
    static const uint8_t two31[] = { 0x80, 0x80, 0x80, 0x80, 0x08 };
    static const uint8_t max32[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
    const uint8_t *cases[] = { two31, max32 };

    for (int i = 0; i < 2; i++) {
        int fd = kv_test_connect(f->srv.port);
        assert_int_equal(kv_test_send_all(fd, cases[i], 5), 0);
        expect_answer(fd, 0, KV_RESOURCE_EXHAUSTED);
        assert_true(kv_test_peer_closed(fd));
        close(fd);
        assert_others_served(f);
    }
}

static void over_long_varints_close_without_an_answer(void **state)
{
    kv_fixture *f = *state;
    static const uint8_t u64max[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
    static const uint8_t padded_zero[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 };
    const uint8_t *cases[] = { u64max, padded_zero };
    const size_t lens[] = { sizeof u64max, sizeof padded_zero };

    for (int i = 0; i < 2; i++) {
        int fd = kv_test_connect(f->srv.port);
        assert_int_equal(kv_test_send_all(fd, cases[i], lens[i]), 0);
        assert_null(kv_test_read_response(fd));     /* EOF, no answer */
        close(fd);
        assert_others_served(f);
    }
}

static void requests_after_a_malformed_prefix_are_not_executed(void **state)
{
    kv_fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);
    uint8_t set[32];
    Kvstore__V1__SetRequest req = KVSTORE__V1__SET_REQUEST__INIT;
    static const uint8_t six[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };

    req.key.data = (uint8_t *)"first";
    req.key.len = 5;
    size_t n = kvstore__v1__set_request__pack(&req, set);
    assert_int_equal(kv_test_send_request(fd, 1, "/kvstore.v1.KV/Set", set, n), 0);
    assert_int_equal(kv_test_send_all(fd, six, sizeof six), 0);
    req.key.data = (uint8_t *)"second";
    req.key.len = 6;
    n = kvstore__v1__set_request__pack(&req, set);
    assert_int_equal(kv_test_send_request(fd, 2, "/kvstore.v1.KV/Set", set, n), 0);
    expect_answer(fd, 1, KV_OK);
    assert_null(kv_test_read_response(fd));
    close(fd);
    assert_int_equal(kv_client_get(f->c, "first", 5, NULL, NULL), KV_OK);
    assert_int_equal(kv_client_get(f->c, "second", 6, NULL, NULL), KV_NOT_FOUND);
}

static void huge_declared_frame_then_silence_allocates_nothing_and_times_out(void **state)
{
    kv_fixture *f = *state;
    uint64_t rss_before = kv_fetch_stats(f->c).rss;
    int fds[20];
    uint8_t pre[KV_FRAME_PREFIX_MAX];
    size_t pl = kv_frame_put_prefix(pre, 16u << 20);   /* the maximum: accepted */

    for (int i = 0; i < 20; i++) {
        fds[i] = kv_test_connect(f->srv.port);
        assert_int_equal(kv_test_send_all(fds[i], pre, pl), 0);
        assert_int_equal(kv_test_send_all(fds[i], "0123456789", 10), 0);
    }
    /* 20 frames of 16 MiB announced: memory must not follow the promise. */
    usleep(100000);
    assert_true(kv_fetch_stats(f->c).rss < rss_before + (32u << 20));
    for (int i = 0; i < 20; i++) {
        assert_true(kv_test_peer_closed(fds[i]));   /* --idle-timeout 1 */
        close(fds[i]);
    }
    reconnect(f);
    assert_others_served(f);
}

static void hundreds_of_connections_stopped_mid_frame(void **state)
{
    kv_fixture *f = *state;
    enum { N = 300 };
    int fds[N];

    for (int i = 0; i < N; i++) {
        fds[i] = kv_test_connect(f->srv.port);
        assert_true(fds[i] >= 0);
        /* A frame of 40 bytes, of which 1 + i % 30 are sent. */
        uint8_t buf[41] = { 40, 0x08, 0x05, 0x12 };
        assert_int_equal(kv_test_send_all(fds[i], buf, 1 + (size_t)(i % 30)), 0);
    }
    assert_others_served(f);
    assert_int_equal(kv_fetch_stats(f->c).conns, N + 1);
    /* Each hangs up (the server sees the same FIN as from close()) and
     * waits for the server to close its side; the server counts a
     * connection out in the callback that closes it, so the next Stats
     * answer has the count. */
    int64_t deadline = now_ms() + CLOSE_DEADLINE_MS;
    for (int i = 0; i < N; i++)
        assert_int_equal(shutdown(fds[i], SHUT_WR), 0);
    for (int i = 0; i < N; i++) {
        assert_true(server_closed_by(fds[i], deadline));
        close(fds[i]);
    }
    assert_int_equal(kv_fetch_stats(f->c).conns, 1);
    assert_others_served(f);
}

static void http_request_gets_invalid_argument(void **state)
{
    kv_fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);
    /* 'G' (0x47) reads as a 71-byte frame whose bytes are no RpcRequest
     * (an end-group tag comes up); the rest waits as a partial frame. */
    const char *http = "GET / HTTP/1.1\r\nHost: 127.0.0.1:7379\r\n"
                       "User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";

    assert_int_equal(kv_test_send_all(fd, http, strlen(http)), 0);
    expect_answer(fd, 0, KV_INVALID_ARGUMENT);
    close(fd);
    assert_others_served(f);
}

static void tls_client_hello_gets_errors_only_and_harms_no_one(void **state)
{
    kv_fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);
    uint8_t hello[517] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03 };
    int answers = 0;

    for (size_t i = 11; i < sizeof hello; i++)
        hello[i] = (uint8_t)(i * 131 + 7);
    assert_int_equal(kv_test_send_all(fd, hello, sizeof hello), 0);
    /* 0x16 makes a 22-byte frame starting "03 ...": field 0, invalid. */
    expect_answer(fd, 0, KV_INVALID_ARGUMENT);
    /* Whatever the rest parses as, nothing is executed: every answer is an
     * id-0 error, until the connection closes or goes quiet. */
    Kvstore__V1__RpcResponse *r;
    while ((r = kv_test_read_response(fd)) != NULL) {
        assert_int_equal(r->id, 0);
        assert_int_not_equal(r->code, KV_OK);
        kvstore__v1__rpc_response__free_unpacked(r, NULL);
        answers++;
    }
    close(fd);
    reconnect(f);
    assert_true(kv_fetch_stats(f->c).requests >= 1);
    assert_others_served(f);
}

/* Payloads follow the envelope's rules (docs/PROTOCOL.md, v1.5): field
 * number 0 or a key wider than 32 bits is INVALID_ARGUMENT with the
 * request's id; an unknown field is skipped. */
static void payloads_with_field_zero_or_wide_keys_are_refused(void **state)
{
    kv_fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);
    static const uint8_t field_zero[] = { 0x0a, 0x01, 'k', 0x00, 0x01 };     /* key, then field 0 */
    static const uint8_t wide_key[] = { 0x0a, 0x01, 'k', 0x80, 0x80, 0x80, 0x80, 0x10, 0x00 };
    static const uint8_t unknown[] = { 0x0a, 0x01, 'k', 0x38, 0x05 };         /* key, field 7 */

    assert_int_equal(kv_test_send_request(fd, 1, "/kvstore.v1.KV/Get", field_zero,
                                          sizeof field_zero), 0);
    expect_answer(fd, 1, KV_INVALID_ARGUMENT);
    assert_int_equal(kv_test_send_request(fd, 2, "/kvstore.v1.KV/Get", wide_key,
                                          sizeof wide_key), 0);
    expect_answer(fd, 2, KV_INVALID_ARGUMENT);
    assert_int_equal(kv_test_send_request(fd, 3, "/kvstore.v1.KV/Get", unknown, sizeof unknown), 0);
    expect_answer(fd, 3, KV_NOT_FOUND);
    close(fd);
    assert_others_served(f);
}

static void corrupt_envelopes_get_invalid_argument_with_id_zero(void **state)
{
    kv_fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);
    static const uint8_t bad_wire_type[] = { 0x08, 0x01, 0x17 };          /* field 2, wire type 7 */
    static const uint8_t truncated[] = { 0x08, 0x01, 0x12, 0x13, '/', 'k' };  /* method of 19, 2 there */
    static const uint8_t past_end[] = { 0x1a, 0xff, 0xff, 0xff, 0x0f, 0x00 }; /* payload of 4 GiB */
    static const uint8_t wrong_type_for_id[] = { 0x0a, 0x01, 0x01 };      /* id as bytes */
    const uint8_t *cases[] = { bad_wire_type, truncated, past_end, wrong_type_for_id };
    const size_t lens[] = { sizeof bad_wire_type, sizeof truncated, sizeof past_end,
                            sizeof wrong_type_for_id };

    for (int i = 0; i < 4; i++) {
        send_frame(fd, cases[i], lens[i]);
        expect_answer(fd, 0, KV_INVALID_ARGUMENT);
    }
    /* The connection lives on. */
    assert_int_equal(kv_test_send_request(fd, 9, "/kvstore.v1.KV/Ping", NULL, 0), 0);
    expect_answer(fd, 9, KV_OK);
    close(fd);
    assert_others_served(f);
}

static void corrupt_payloads_get_invalid_argument_with_their_id(void **state)
{
    kv_fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);
    static const uint8_t bad_wire_type[] = { 0x0f };                      /* field 1, wire type 7 */
    static const uint8_t truncated[] = { 0x0a, 0x05, 'a', 'b' };          /* key of 5, 2 there */
    static const uint8_t past_end[] = { 0x0a, 0x80, 0x80, 0x80, 0x80, 0x08 }; /* key of 2 GiB */
    const uint8_t *cases[] = { bad_wire_type, truncated, past_end };
    const size_t lens[] = { sizeof bad_wire_type, sizeof truncated, sizeof past_end };

    for (int i = 0; i < 3; i++) {
        assert_int_equal(kv_test_send_request(fd, 100 + (uint64_t)i, "/kvstore.v1.KV/Set",
                                              cases[i], lens[i]), 0);
        expect_answer(fd, 100 + (uint64_t)i, KV_INVALID_ARGUMENT);
    }
    close(fd);
    assert_others_served(f);
}

static void unknown_duplicated_and_repeated_fields_follow_protobuf(void **state)
{
    kv_fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);
    /* Set with key "x" then key "k" (last wins), value "v", and unknown
     * fields 7 (varint) and 9 (bytes) in between. */
    static const uint8_t set[] = { 0x0a, 0x01, 'x', 0x38, 0x05, 0x0a, 0x01, 'k',
                                   0x4a, 0x02, 'z', 'z', 0x12, 0x01, 'v' };
    /* Envelope: id 1 then id 2 (last wins), unknown field 12, then method. */
    uint8_t env[64] = { 0x08, 0x01, 0x08, 0x02, 0x60, 0x2a, 0x12, 19 };
    size_t n = 8;

    memcpy(env + n, "/kvstore.v1.KV/Set", 18);
    env[7] = 18;
    n += 18;
    env[n++] = 0x1a;
    env[n++] = sizeof set;
    memcpy(env + n, set, sizeof set);
    n += sizeof set;
    send_frame(fd, env, n);
    expect_answer(fd, 2, KV_OK);
    close(fd);
    kv_assert_value(f->c, "k", 1, "v", 1);
    assert_int_equal(kv_client_get(f->c, "x", 1, NULL, NULL), KV_NOT_FOUND);
}

static void empty_and_unknown_methods_are_unimplemented(void **state)
{
    kv_fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);

    assert_int_equal(kv_test_send_request(fd, 1, "", NULL, 0), 0);
    expect_answer(fd, 1, KV_UNIMPLEMENTED);
    assert_int_equal(kv_test_send_request(fd, 2, "/kvstore.v1.KV/get", NULL, 0), 0);  /* case matters */
    expect_answer(fd, 2, KV_UNIMPLEMENTED);
    assert_int_equal(kv_test_send_request(fd, 3, "/kvstore.v1.KV/Get/", NULL, 0), 0);
    expect_answer(fd, 3, KV_UNIMPLEMENTED);
    assert_int_equal(kv_test_send_request(fd, 4, "\xff\xfe binary", NULL, 0), 0);
    expect_answer(fd, 4, KV_UNIMPLEMENTED);     /* and the message is valid UTF-8 */
    close(fd);
    assert_others_served(f);
}

static void ten_thousand_requests_in_one_write_answer_in_order(void **state)
{
    kv_fixture *f = *state;
    enum { N = 10000 };
    int fd = kv_test_connect(f->srv.port);
    uint8_t *buf = malloc(N * 64), req[64];
    size_t len = 0;

    for (int i = 0; i < N; i++) {
        Kvstore__V1__RpcRequest r = KVSTORE__V1__RPC_REQUEST__INIT;
        Kvstore__V1__SetRequest s = KVSTORE__V1__SET_REQUEST__INIT;
        char key[16];
        int kl = snprintf(key, sizeof key, "p%d", i);
        s.key.data = (uint8_t *)key;
        s.key.len = (size_t)kl;
        s.value = s.key;
        r.id = (uint64_t)i + 1;
        r.method = "/kvstore.v1.KV/Set";
        r.payload.data = req;
        r.payload.len = kvstore__v1__set_request__pack(&s, req);
        size_t n = kvstore__v1__rpc_request__get_packed_size(&r);
        len += kv_frame_put_prefix(buf + len, (uint32_t)n);
        len += kvstore__v1__rpc_request__pack(&r, buf + len);
    }
    assert_int_equal(kv_test_send_all(fd, buf, len), 0);
    free(buf);
    for (int i = 0; i < N; i++)
        expect_answer(fd, (uint64_t)i + 1, KV_OK);
    close(fd);
    kv_assert_value(f->c, "p9999", 5, "p9999", 5);
    assert_others_served(f);
}

/* Closes FD with a TCP reset instead of a FIN. */
static void reset(int fd)
{
    struct linger lg = { 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

static void resets_mid_request_and_mid_response_harm_no_one(void **state)
{
    kv_fixture *f = *state;
    static char big[1 << 20];
    uint8_t get[16];
    Kvstore__V1__GetRequest g = KVSTORE__V1__GET_REQUEST__INIT;

    assert_int_equal(kv_client_set(f->c, "big", 3, big, sizeof big), KV_OK);
    for (int i = 0; i < 10; i++) {
        int fd = kv_test_connect(f->srv.port);
        const uint8_t partial[] = { 0x30, 0x08, 0x01, 0x12, 0x12, '/', 'k' };
        assert_int_equal(kv_test_send_all(fd, partial, sizeof partial), 0);
        reset(fd);
    }
    g.key.data = (uint8_t *)"big";
    g.key.len = 3;
    size_t n = kvstore__v1__get_request__pack(&g, get);
    for (int i = 0; i < 10; i++) {
        int fd = kv_test_connect(f->srv.port);
        for (int k = 0; k < 16; k++)        /* 16 MiB of answers on their way */
            assert_int_equal(kv_test_send_request(fd, (uint64_t)k + 1, "/kvstore.v1.KV/Get", get, n), 0);
        Kvstore__V1__RpcResponse *r = kv_test_read_response(fd);
        assert_non_null(r);
        kvstore__v1__rpc_response__free_unpacked(r, NULL);
        reset(fd);
    }
    kv_wait_connections(f->c, 1);
    assert_others_served(f);
}

typedef struct flood_arg {
    int port;
    int frames;
} flood_arg;

/* Writes 200,000 pipelined Pings in 1 MiB writes and reads the answers. */
static void *flood_pings(void *p)
{
    flood_arg *a = p;
    int fd = kv_test_connect(a->port);
    uint8_t one[64], *buf = malloc(1 << 20);
    Kvstore__V1__RpcRequest r = KVSTORE__V1__RPC_REQUEST__INIT;

    r.method = "/kvstore.v1.KV/Ping";
    size_t n = kvstore__v1__rpc_request__pack(&r, one + 1);
    one[0] = (uint8_t)n;
    size_t per = (1 << 20) / (n + 1), len = per * (n + 1);
    for (size_t i = 0; i < per; i++)
        memcpy(buf + i * (n + 1), one, n + 1);
    for (int sent = 0; sent < 200000; sent += (int)per) {
        if (kv_test_send_all(fd, buf, len) < 0)
            break;
        a->frames += (int)per;
        /* Drain what came back so far, so the server never pauses us. */
        char sink[1 << 16];
        while (recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
            ;
    }
    free(buf);
    close(fd);
    return NULL;
}

static void a_flooding_client_does_not_starve_the_others(void **state)
{
    kv_fixture *f = *state;
    pthread_t t;
    flood_arg a = { f->srv.port, 0 };

    assert_int_equal(pthread_create(&t, NULL, flood_pings, &a), 0);
    /* Each call has the fixture's 5 s timeout: starvation would fail it. */
    for (int i = 0; i < 200; i++)
        assert_int_equal(kv_client_ping(f->c, NULL, NULL), KV_OK);
    pthread_join(t, NULL);
    assert_true(a.frames > 0);
    assert_others_served(f);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, kv_fixture_setup, kv_fixture_teardown)
#define TIDLE(fn) cmocka_unit_test_setup_teardown(fn, setup_short_idle, kv_fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(huge_length_prefixes_are_refused_then_closed),
        T(over_long_varints_close_without_an_answer),
        T(requests_after_a_malformed_prefix_are_not_executed),
        TIDLE(huge_declared_frame_then_silence_allocates_nothing_and_times_out),
        T(hundreds_of_connections_stopped_mid_frame),
        T(http_request_gets_invalid_argument),
        TIDLE(tls_client_hello_gets_errors_only_and_harms_no_one),
        T(corrupt_envelopes_get_invalid_argument_with_id_zero),
        T(payloads_with_field_zero_or_wide_keys_are_refused),
        T(corrupt_payloads_get_invalid_argument_with_their_id),
        T(unknown_duplicated_and_repeated_fields_follow_protobuf),
        T(empty_and_unknown_methods_are_unimplemented),
        T(ten_thousand_requests_in_one_write_answer_in_order),
        T(resets_mid_request_and_mid_response_harm_no_one),
        T(a_flooding_client_does_not_starve_the_others),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
