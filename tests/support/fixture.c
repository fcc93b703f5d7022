/* fixture.c - the shared cmocka fixture of the live tests; see fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
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
