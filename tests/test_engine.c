/* test_engine.c - the memory engine through the engine interface: the
 * lifecycle, overwrite and unset semantics, and the hash table's integrity
 * under growth and heavy deletion (backward-shift deletion must keep every
 * remaining key reachable). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arena.h"
#include "engine.h"

typedef struct fixture {
    kv_engine *e;
    kv_arena arena;
} fixture;

static int open_memory(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[128];

    assert_int_equal(kv_engine_open("memory", NULL, NULL, &f->e, err, sizeof err), KV_OK);
    kv_arena_init(&f->arena, 4096);
    *state = f;
    return 0;
}

static int close_engine(void **state)
{
    fixture *f = *state;

    assert_int_equal(kv_engine_close(f->e), KV_OK);
    kv_arena_free(&f->arena);
    free(f);
    return 0;
}

static void unknown_engine_is_refused_with_the_list(void **state)
{
    kv_engine *e;
    char err[128];

    (void)state;
    assert_int_equal(kv_engine_open("nosuch", NULL, NULL, &e, err, sizeof err), KV_INVALID_ARGUMENT);
    assert_non_null(strstr(err, "memory"));
}

static void set_get_overwrite_unset(void **state)
{
    fixture *f = *state;
    ProtobufCBinaryData v;
    kv_engine_stats st;

    assert_int_equal(kv_engine_set(f->e, (const uint8_t *)"k", 1, (const uint8_t *)"one", 3), KV_OK);
    assert_int_equal(kv_engine_get(f->e, (const uint8_t *)"k", 1, &f->arena.pb, &v), KV_OK);
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.data, "one", 3);
    /* Same length overwrites in place; the copy we got must not change. */
    assert_int_equal(kv_engine_set(f->e, (const uint8_t *)"k", 1, (const uint8_t *)"two", 3), KV_OK);
    assert_memory_equal(v.data, "one", 3);
    assert_int_equal(kv_engine_set(f->e, (const uint8_t *)"k", 1, (const uint8_t *)"three", 5), KV_OK);
    kv_engine_stats_get(f->e, &st);
    assert_int_equal(st.keys, 1);
    assert_int_equal(st.data_bytes, 6);
    assert_int_equal(kv_engine_unset(f->e, (const uint8_t *)"k", 1, &f->arena.pb, &v), KV_OK);
    assert_int_equal(v.len, 5);
    assert_memory_equal(v.data, "three", 5);
    assert_int_equal(kv_engine_get(f->e, (const uint8_t *)"k", 1, &f->arena.pb, &v), KV_NOT_FOUND);
    assert_int_equal(kv_engine_unset(f->e, (const uint8_t *)"k", 1, NULL, NULL), KV_NOT_FOUND);
    kv_engine_stats_get(f->e, &st);
    assert_int_equal(st.keys, 0);
    assert_int_equal(st.data_bytes, 0);
}

static void empty_value_is_stored(void **state)
{
    fixture *f = *state;
    ProtobufCBinaryData v = { 7, (uint8_t *)"x" };

    assert_int_equal(kv_engine_set(f->e, (const uint8_t *)"e", 1, NULL, 0), KV_OK);
    assert_int_equal(kv_engine_get(f->e, (const uint8_t *)"e", 1, &f->arena.pb, &v), KV_OK);
    assert_int_equal(v.len, 0);
}

/* 200,000 keys in, every third out, the rest checked; then all out. */
static void table_survives_growth_and_churn(void **state)
{
    fixture *f = *state;
    enum { N = 200000 };
    char key[32], val[32];
    ProtobufCBinaryData v;
    kv_engine_stats st;

    for (int i = 0; i < N; i++) {
        int kl = snprintf(key, sizeof key, "key:%012d", i);
        int vl = snprintf(val, sizeof val, "v%d", i);
        assert_int_equal(kv_engine_set(f->e, (uint8_t *)key, (size_t)kl, (uint8_t *)val, (size_t)vl), KV_OK);
    }
    for (int i = 0; i < N; i += 3) {
        int kl = snprintf(key, sizeof key, "key:%012d", i);
        assert_int_equal(kv_engine_unset(f->e, (uint8_t *)key, (size_t)kl, NULL, NULL), KV_OK);
    }
    for (int i = 0; i < N; i++) {
        int kl = snprintf(key, sizeof key, "key:%012d", i);
        int vl = snprintf(val, sizeof val, "v%d", i);
        kv_status s = kv_engine_get(f->e, (uint8_t *)key, (size_t)kl, &f->arena.pb, &v);
        if (i % 3 == 0) {
            assert_int_equal(s, KV_NOT_FOUND);
        } else {
            assert_int_equal(s, KV_OK);
            assert_int_equal(v.len, (size_t)vl);
            assert_memory_equal(v.data, val, (size_t)vl);
        }
        if (i % 1000 == 0)
            kv_arena_reset(&f->arena);
    }
    kv_engine_stats_get(f->e, &st);
    assert_int_equal(st.keys, N - (N + 2) / 3);
    for (int i = 0; i < N; i++) {
        int kl = snprintf(key, sizeof key, "key:%012d", i);
        assert_int_equal(kv_engine_unset(f->e, (uint8_t *)key, (size_t)kl, NULL, NULL),
                         i % 3 == 0 ? KV_NOT_FOUND : KV_OK);
    }
    kv_engine_stats_get(f->e, &st);
    assert_int_equal(st.keys, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unknown_engine_is_refused_with_the_list),
        cmocka_unit_test_setup_teardown(set_get_overwrite_unset, open_memory, close_engine),
        cmocka_unit_test_setup_teardown(empty_value_is_stored, open_memory, close_engine),
        cmocka_unit_test_setup_teardown(table_survives_growth_and_churn, open_memory, close_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
