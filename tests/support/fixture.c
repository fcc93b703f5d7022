/* fixture.c - the shared cmocka fixture of the live tests; see fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "support/fixture.h"

int kv_fixture_start(void **state, const char *const *extra)
{
    kv_fixture *f = calloc(1, sizeof *f);
    char err[256];

    assert_non_null(f);
    assert_int_equal(kv_test_server_start(&f->srv, extra), 0);
    f->c = kv_client_connect(f->srv.endpoint, KV_TEST_TIMEOUT_MS, err, sizeof err);
    if (!f->c)
        fail_msg("connect: %s", err);
    *state = f;
    return 0;
}

int kv_fixture_setup(void **state)
{
    return kv_fixture_start(state, NULL);
}

int kv_fixture_teardown(void **state)
{
    kv_fixture *f = *state;

    kv_client_free(f->c);
    assert_int_equal(kv_test_server_stop(&f->srv), 0);
    free(f);
    return 0;
}

void kv_assert_value(kv_client *c, const void *key, size_t klen, const void *value, size_t vlen)
{
    uint8_t *got;
    size_t glen;

    assert_int_equal(kv_client_get(c, key, klen, &got, &glen), KV_OK);
    assert_int_equal(glen, vlen);
    assert_memory_equal(got, value, vlen);
    free(got);
}

typedef struct stats_result {
    int ok;
    kv_stats_view v;
} stats_result;

static void on_stats(const Kvstore__V1__StatsResponse *m, void *data)
{
    stats_result *r = data;

    if (!m)
        return;
    r->ok = 1;
    r->v = (kv_stats_view){ m->connections_current, m->connections_rejected,
                            m->max_memory_bytes, m->keys, m->resident_memory_bytes,
                            m->requests_total };
}

kv_stats_view kv_fetch_stats(kv_client *c)
{
    Kvstore__V1__StatsRequest req = KVSTORE__V1__STATS_REQUEST__INIT;
    stats_result r = { 0 };

    kvstore__v1__kv__stats(kv_client_service(c), &req, on_stats, &r);
    assert_true(r.ok);
    return r.v;
}

void kv_wait_connections(kv_client *c, uint64_t want)
{
    struct timespec start, now;

    /* Generous: under valgrind on a loaded machine the server may take
     * seconds to notice a close. Each Stats call waits for a turn of the
     * server's loop, so asking again is not a busy spin. */
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        if (kv_fetch_stats(c).conns == want)
            return;
        usleep(10000);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec - start.tv_sec < KV_WAIT_SECONDS);
    assert_int_equal(kv_fetch_stats(c).conns, want);
}
