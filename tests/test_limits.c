/* test_limits.c - every server limit against a live kvstored: key and
 * value sizes, stored-memory cap, client count, input budget, idle timeout,
 * a client that never reads, and token authentication. Each also checks
 * that another client is served throughout. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "frame.h"
#include "support/fixture.h"

static int setup_sizes(void **state)
{
    static const char *const extra[] = { "--max-key-bytes", "16", "--max-value-bytes", "64", NULL };
    return kv_fixture_start(state, extra);
}

static void oversized_key_or_value_is_refused_and_store_unchanged(void **state)
{
    kv_fixture *f = *state;
    char big[65];

    memset(big, 'v', sizeof big);
    assert_int_equal(kv_client_set(f->c, "0123456789abcdef", 16, big, 64), KV_OK);
    assert_int_equal(kv_client_set(f->c, "0123456789abcdef", 16, big, 65), KV_INVALID_ARGUMENT);
    assert_non_null(strstr(kv_client_last_message(f->c), "value of 65 bytes exceeds the limit of 64"));
    kv_assert_value(f->c, "0123456789abcdef", 16, big, 64);
    assert_int_equal(kv_client_set(f->c, "0123456789abcdefX", 17, "v", 1), KV_INVALID_ARGUMENT);
    assert_non_null(strstr(kv_client_last_message(f->c), "key of 17 bytes"));
    assert_int_equal(kv_client_get(f->c, "0123456789abcdefX", 17, NULL, NULL), KV_INVALID_ARGUMENT);
    assert_int_equal(kv_fetch_stats(f->c).keys, 1);
}

static int setup_memory(void **state)
{
    static const char *const extra[] = { "--max-memory-bytes", "200K", NULL };
    return kv_fixture_start(state, extra);
}

static void memory_cap_refuses_sets_but_serves_reads_and_clears(void **state)
{
    kv_fixture *f = *state;
    char key[32], val[1000];
    int stored = 0;
    kv_status st = KV_OK;

    memset(val, 'm', sizeof val);
    while (stored < 1000) {
        snprintf(key, sizeof key, "k%d", stored);
        st = kv_client_set(f->c, key, strlen(key), val, sizeof val);
        if (st != KV_OK)
            break;
        stored++;
    }
    assert_int_equal(st, KV_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(kv_client_last_message(f->c), "memory limit"));
    assert_true(stored > 50);
    assert_int_equal(kv_fetch_stats(f->c).max_memory, 200 * 1024);
    /* Everything stored is intact; reads and clears work. */
    for (int i = 0; i < stored; i++) {
        snprintf(key, sizeof key, "k%d", i);
        kv_assert_value(f->c, key, strlen(key), val, sizeof val);
    }
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(kv_client_clear(f->c, key, strlen(key), NULL, NULL, NULL), KV_OK);
    }
    assert_int_equal(kv_client_set(f->c, "again", 5, val, sizeof val), KV_OK);
}

static int setup_two_clients(void **state)
{
    static const char *const extra[] = { "--max-clients", "2", NULL };
    return kv_fixture_start(state, extra);
}

static void one_client_too_many_gets_one_error_frame(void **state)
{
    kv_fixture *f = *state;
    kv_client *second = kv_client_connect(f->srv.endpoint, KV_TEST_TIMEOUT_MS, NULL, 0);

    assert_non_null(second);
    assert_int_equal(kv_client_ping(second, NULL, NULL), KV_OK);
    int fd = kv_test_connect(f->srv.port);
    assert_true(fd >= 0);
    Kvstore__V1__RpcResponse *r = kv_test_read_response(fd);
    assert_non_null(r);
    assert_int_equal(r->id, 0);
    assert_int_equal(r->code, KV_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(r->message, "too many clients"));
    kvstore__v1__rpc_response__free_unpacked(r, NULL);
    assert_true(kv_test_peer_closed(fd));
    close(fd);
    /* The two admitted clients are unaffected. */
    assert_int_equal(kv_client_ping(f->c, NULL, NULL), KV_OK);
    assert_int_equal(kv_client_ping(second, NULL, NULL), KV_OK);
    assert_int_equal(kv_fetch_stats(f->c).conns_rejected, 1);
    kv_client_free(second);
}

static int setup_idle(void **state)
{
    static const char *const extra[] = { "--idle-timeout", "0.5", NULL };
    return kv_fixture_start(state, extra);
}

static void idle_and_dribbling_connections_are_closed_busy_ones_are_not(void **state)
{
    kv_fixture *f = *state;
    int silent = kv_test_connect(f->srv.port);
    int dribbler = kv_test_connect(f->srv.port);

    assert_true(silent >= 0 && dribbler >= 0);
    /* The dribbler sends one byte of a 100-byte frame every 100 ms. */
    assert_int_equal(kv_test_send_all(dribbler, "\x64", 1), 0);
    for (int i = 0; i < 15; i++) {
        usleep(100000);
        kv_test_send_all(dribbler, "x", 1);
        assert_int_equal(kv_client_ping(f->c, NULL, NULL), KV_OK);    /* busy: stays */
    }
    assert_true(kv_test_peer_closed(silent));
    assert_true(kv_test_peer_closed(dribbler));
    assert_int_equal(kv_client_ping(f->c, NULL, NULL), KV_OK);
    close(silent);
    close(dribbler);
}

static void client_that_never_reads_is_dropped_and_memory_returns(void **state)
{
    kv_fixture *f = *state;
    size_t vlen = 1 << 20;
    char *val = calloc(1, vlen);
    uint8_t req[64];
    Kvstore__V1__GetRequest get = KVSTORE__V1__GET_REQUEST__INIT;

    assert_int_equal(kv_client_set(f->c, "big", 3, val, vlen), KV_OK);
    free(val);
    int fd = kv_test_connect(f->srv.port);
    assert_true(fd >= 0);
    get.key.data = (uint8_t *)"big";
    get.key.len = 3;
    size_t n = kvstore__v1__get_request__pack(&get, req);
    /* 64 Gets of 1 MiB each, never read: the server stops reading at its
     * output cap, then the idle timeout drops the connection. */
    for (int i = 0; i < 64; i++)
        if (kv_test_send_request(fd, (uint64_t)i + 1, "/kvstore.v1.KV/Get", req, n) < 0)
            break;
    assert_int_equal(kv_client_ping(f->c, NULL, NULL), KV_OK);
    kv_wait_connections(f->c, 1);
    close(fd);
}

static int setup_input_budget(void **state)
{
    static const char *const extra[] = { "--max-input-bytes", "1M", NULL };
    return kv_fixture_start(state, extra);
}

static void input_budget_refuses_the_connection_that_would_pass_it(void **state)
{
    kv_fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);
    uint8_t pre[8];
    char *chunk = calloc(1, 256 * 1024);

    assert_true(fd >= 0);
    /* Announce 8 MiB (under the 16 MiB frame limit) and send 2 MiB. */
    size_t pl = kv_frame_put_prefix(pre, 8u << 20);
    assert_int_equal(kv_test_send_all(fd, pre, pl), 0);
    for (int i = 0; i < 8; i++)
        if (kv_test_send_all(fd, chunk, 256 * 1024) < 0)
            break;
    free(chunk);
    Kvstore__V1__RpcResponse *r = kv_test_read_response(fd);
    assert_non_null(r);
    assert_int_equal(r->id, 0);
    assert_int_equal(r->code, KV_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(r->message, "budget"));
    kvstore__v1__rpc_response__free_unpacked(r, NULL);
    close(fd);
    assert_int_equal(kv_client_set(f->c, "fine", 4, "yes", 3), KV_OK);
    kv_wait_connections(f->c, 1);
}

#define TOKEN_FILE "/tmp/kvstore-test-token"

static int setup_auth(void **state)
{
    static const char *const extra[] = { "--auth-token-file", TOKEN_FILE, NULL };
    FILE *f = fopen(TOKEN_FILE, "w");

    assert_non_null(f);
    fputs("s3cret-token\n", f);
    fclose(f);
    return kv_fixture_start(state, extra);
}

static void token_is_required_before_anything_else(void **state)
{
    kv_fixture *f = *state;

    assert_int_equal(kv_client_set(f->c, "k", 1, "v", 1), KV_UNAUTHENTICATED);
    assert_non_null(strstr(kv_client_last_message(f->c), "Auth"));
    assert_int_equal(kv_client_ping(f->c, NULL, NULL), KV_UNAUTHENTICATED);
    assert_int_equal(kv_client_auth(f->c, "s3cret-token", 12), KV_OK);
    assert_int_equal(kv_client_set(f->c, "k", 1, "v", 1), KV_OK);
    kv_assert_value(f->c, "k", 1, "v", 1);

    /* Authentication belongs to the connection. */
    kv_client *other = kv_client_connect(f->srv.endpoint, KV_TEST_TIMEOUT_MS, NULL, 0);
    assert_non_null(other);
    assert_int_equal(kv_client_get(other, "k", 1, NULL, NULL), KV_UNAUTHENTICATED);
    assert_int_equal(kv_client_auth_file(other, TOKEN_FILE), KV_OK);
    assert_int_equal(kv_client_get(other, "k", 1, NULL, NULL), KV_OK);
    kv_client_free(other);
}

static void wrong_tokens_are_refused_then_the_connection_closed(void **state)
{
    kv_fixture *f = *state;

    /* A prefix, a longer string and an empty token are all wrong. */
    assert_int_equal(kv_client_auth(f->c, "s3cret", 6), KV_UNAUTHENTICATED);
    assert_string_equal(kv_client_last_message(f->c), "wrong token");
    assert_int_equal(kv_client_auth(f->c, "s3cret-token-and-more", 21), KV_UNAUTHENTICATED);
    assert_int_equal(kv_client_auth(f->c, "", 0), KV_UNAUTHENTICATED);
    assert_non_null(strstr(kv_client_last_message(f->c), "closing"));
    assert_int_equal(kv_client_auth(f->c, "s3cret-token", 12), KV_UNAVAILABLE);

    kv_client *other = kv_client_connect(f->srv.endpoint, KV_TEST_TIMEOUT_MS, NULL, 0);
    assert_int_equal(kv_client_auth(other, "s3cret-token", 12), KV_OK);
    assert_int_equal(kv_client_ping(other, NULL, NULL), KV_OK);
    kv_client_free(other);
}

static void auth_without_a_configured_token_is_a_no_op(void **state)
{
    kv_fixture *f = *state;

    assert_int_equal(kv_client_auth(f->c, "anything", 8), KV_OK);
    assert_int_equal(kv_client_ping(f->c, NULL, NULL), KV_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(oversized_key_or_value_is_refused_and_store_unchanged,
                                        setup_sizes, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(memory_cap_refuses_sets_but_serves_reads_and_clears,
                                        setup_memory, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(one_client_too_many_gets_one_error_frame,
                                        setup_two_clients, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(idle_and_dribbling_connections_are_closed_busy_ones_are_not,
                                        setup_idle, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(client_that_never_reads_is_dropped_and_memory_returns,
                                        setup_idle, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(input_budget_refuses_the_connection_that_would_pass_it,
                                        setup_input_budget, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(token_is_required_before_anything_else,
                                        setup_auth, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(wrong_tokens_are_refused_then_the_connection_closed,
                                        setup_auth, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(auth_without_a_configured_token_is_a_no_op,
                                        kv_fixture_setup, kv_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
