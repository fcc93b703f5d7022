/* test_oplog.c - the LMDB engine's replay log alone: records come back in
 * order and byte for byte (empty and binary ones too), the last one can be
 * dropped, and a cleared log starts over. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include "oplog.h"

static void records_come_back_in_order(void **state)
{
    kv_oplog l = KV_OPLOG_INIT;
    kv_oplog_entry e;
    size_t pos = 0;
    char key[32];

    (void)state;
    for (int i = 0; i < 1000; i++) {    /* grows the buffer several times */
        snprintf(key, sizeof key, "key-%d", i);
        assert_int_equal(kv_oplog_append(&l, i % 3 ? KV_OPLOG_SET : KV_OPLOG_UNSET,
                                         (const uint8_t *)key, strlen(key),
                                         (const uint8_t *)"\0value\xff", i % 3 ? 7 : 0), 0);
    }
    assert_int_equal(l.count, 1000);
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        assert_int_equal(kv_oplog_next(&l, &pos, &e), 1);
        assert_int_equal(e.kind, i % 3 ? KV_OPLOG_SET : KV_OPLOG_UNSET);
        assert_int_equal(e.klen, strlen(key));
        assert_memory_equal(e.key, key, e.klen);
        assert_int_equal(e.vlen, i % 3 ? 7 : 0);
        if (e.vlen)
            assert_memory_equal(e.value, "\0value\xff", 7);
    }
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 0);
    kv_oplog_free(&l);
}

static void drop_last_removes_only_the_last(void **state)
{
    kv_oplog l = KV_OPLOG_INIT;
    kv_oplog_entry e;
    size_t pos = 0;

    (void)state;
    kv_oplog_drop_last(&l);             /* empty: nothing happens */
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_SET, (const uint8_t *)"a", 1,
                                     (const uint8_t *)"1", 1), 0);
    size_t len = l.len;
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_SET, (const uint8_t *)"bb", 2,
                                     (const uint8_t *)"22222", 5), 0);
    kv_oplog_drop_last(&l);
    assert_int_equal(l.count, 1);
    assert_int_equal(l.len, len);
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 1);
    assert_memory_equal(e.key, "a", 1);
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 0);
    kv_oplog_drop_last(&l);
    assert_int_equal(l.count, 0);
    assert_int_equal(l.len, 0);
    kv_oplog_free(&l);
}

static void clear_starts_over_and_frees_a_large_buffer(void **state)
{
    kv_oplog l = KV_OPLOG_INIT;
    static uint8_t big[1 << 20];
    kv_oplog_entry e;
    size_t pos = 0;

    (void)state;
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_SET, (const uint8_t *)"k", 1, big, sizeof big), 0);
    kv_oplog_clear(&l);
    assert_int_equal(l.count, 0);
    assert_null(l.data);                /* over the keep limit: freed */
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 0);
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_UNSET, (const uint8_t *)"k", 1, NULL, 0), 0);
    kv_oplog_clear(&l);
    assert_non_null(l.data);            /* small: kept for the next turn */
    kv_oplog_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(records_come_back_in_order),
        cmocka_unit_test(drop_last_removes_only_the_last),
        cmocka_unit_test(clear_starts_over_and_frees_a_large_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
