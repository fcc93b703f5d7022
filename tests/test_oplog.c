/* test_oplog.c - the LMDB engine's replay log alone: records come back in
 * order and byte for byte (empty and binary ones too) with their
 * revisions and deadlines, batch brackets, range bounds and Touches (a
 * deadline, no revision); the last one can be dropped;
 * a batch undone is truncated back to its mark; a cleared log starts over. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include "oplog.h"

static const uint8_t *u8(const char *s) { return (const uint8_t *)s; }

static void records_come_back_in_order_with_their_revisions(void **state)
{
    kv_oplog l = KV_OPLOG_INIT;
    kv_oplog_entry e;
    size_t pos = 0;
    char key[32];

    (void)state;
    for (int i = 0; i < 1000; i++) {    /* grows the buffer several times */
        snprintf(key, sizeof key, "key-%d", i);
        assert_int_equal(kv_oplog_append(&l, i % 3 ? KV_OPLOG_SET : KV_OPLOG_UNSET,
                                         u8(key), strlen(key), u8("\0value\xff"), i % 3 ? 7 : 0,
                                         (uint64_t)i * 0x100000001ull,
                                         i % 2 ? 0 : (uint64_t)i << 40 | 0xabcd), 0);
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
        assert_true(e.rev == (uint64_t)i * 0x100000001ull);  /* all 64 bits */
        /* A Set's deadline comes back; an Unset has none, whatever was given. */
        assert_true(e.expires == (i % 3 && i % 2 == 0 ? (uint64_t)i << 40 | 0xabcd : 0));
    }
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 0);
    kv_oplog_free(&l);
}

static void ranges_and_batch_brackets_are_kept(void **state)
{
    kv_oplog l = KV_OPLOG_INIT;
    kv_oplog_entry e;
    size_t pos = 0;

    (void)state;
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_BATCH_BEGIN, NULL, 0, NULL, 0, 0, 0), 0);
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_SET, u8("a"), 1, u8("1"), 1, 7, 0), 0);
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_UNSET_RANGE, u8("b"), 1, NULL, 0, 7, 0), 0);
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_BATCH_END, NULL, 0, NULL, 0, 0, 0), 0);
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_UNSET_RANGE, NULL, 0, u8("zz"), 2, 8, 0), 0);

    assert_int_equal(kv_oplog_next(&l, &pos, &e), 1);
    assert_int_equal(e.kind, KV_OPLOG_BATCH_BEGIN);
    assert_int_equal(e.klen + e.vlen, 0);
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 1);
    assert_int_equal(e.kind, KV_OPLOG_SET);
    assert_int_equal(e.rev, 7);
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 1);
    assert_int_equal(e.kind, KV_OPLOG_UNSET_RANGE);
    assert_int_equal(e.klen, 1);
    assert_memory_equal(e.key, "b", 1);
    assert_int_equal(e.vlen, 0);                /* no end */
    assert_int_equal(e.rev, 7);
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 1);
    assert_int_equal(e.kind, KV_OPLOG_BATCH_END);
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 1);
    assert_int_equal(e.kind, KV_OPLOG_UNSET_RANGE);
    assert_int_equal(e.klen, 0);                /* no start */
    assert_int_equal(e.vlen, 2);
    assert_memory_equal(e.value, "zz", 2);
    assert_int_equal(e.rev, 8);
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 0);
    kv_oplog_free(&l);
}

/* A Touch: the key and its new deadline (0 too: none), no value or revision. */
static void touches_keep_their_deadline(void **state)
{
    kv_oplog l = KV_OPLOG_INIT;
    kv_oplog_entry e;
    size_t pos = 0;

    (void)state;
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_SET, u8("k"), 1, u8("v"), 1, 3, 1000), 0);
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_TOUCH, u8("k"), 1, NULL, 0, 0, UINT64_MAX), 0);
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_TOUCH, u8("k"), 1, NULL, 0, 0, 0), 0);
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 1);
    assert_int_equal(e.kind, KV_OPLOG_SET);
    assert_int_equal(e.expires, 1000);
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 1);
    assert_int_equal(e.kind, KV_OPLOG_TOUCH);
    assert_int_equal(e.klen, 1);
    assert_memory_equal(e.key, "k", 1);
    assert_int_equal(e.vlen, 0);
    assert_int_equal(e.rev, 0);
    assert_true(e.expires == UINT64_MAX);
    /* Dropped, the last Touch leaves the one before as the log's end. */
    kv_oplog_drop_last(&l);
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 0);
    assert_int_equal(l.count, 2);
    kv_oplog_free(&l);
}

static void drop_last_removes_only_the_last(void **state)
{
    kv_oplog l = KV_OPLOG_INIT;
    kv_oplog_entry e;
    size_t pos = 0;

    (void)state;
    kv_oplog_drop_last(&l);             /* empty: nothing happens */
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_SET, u8("a"), 1, u8("1"), 1, 1, 0), 0);
    size_t len = l.len;
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_SET, u8("bb"), 2, u8("22222"), 5, 2, 0), 0);
    kv_oplog_drop_last(&l);
    assert_int_equal(l.count, 1);
    assert_int_equal(l.len, len);
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 1);
    assert_memory_equal(e.key, "a", 1);
    assert_int_equal(e.rev, 1);
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 0);
    kv_oplog_drop_last(&l);
    assert_int_equal(l.count, 0);
    assert_int_equal(l.len, 0);
    kv_oplog_free(&l);
}

/* A batch undone: everything from its mark on goes, what came before stays,
 * and a walk from the mark visits just the batch. */
static void truncate_drops_back_to_the_mark(void **state)
{
    kv_oplog l = KV_OPLOG_INIT;
    kv_oplog_entry e;
    size_t pos;

    (void)state;
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_SET, u8("before"), 6, u8("v"), 1, 1, 0), 0);
    kv_oplog_mark mark = kv_oplog_tell(&l);
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_BATCH_BEGIN, NULL, 0, NULL, 0, 0, 0), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(kv_oplog_append(&l, KV_OPLOG_SET, u8("in"), 2, u8("batch"), 5, 2, 0), 0);

    pos = mark.len;
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 1);
    assert_int_equal(e.kind, KV_OPLOG_BATCH_BEGIN);

    kv_oplog_truncate(&l, mark);
    assert_int_equal(l.count, 1);
    assert_int_equal(l.len, mark.len);
    pos = 0;
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 1);
    assert_memory_equal(e.key, "before", 6);
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 0);
    /* Appending goes on from there; the mark at the end drops nothing. */
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_UNSET, u8("after"), 5, NULL, 0, 3, 0), 0);
    kv_oplog_truncate(&l, kv_oplog_tell(&l));
    assert_int_equal(l.count, 2);
    kv_oplog_free(&l);
}

static void clear_starts_over_and_frees_a_large_buffer(void **state)
{
    kv_oplog l = KV_OPLOG_INIT;
    static uint8_t big[1 << 20];
    kv_oplog_entry e;
    size_t pos = 0;

    (void)state;
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_SET, u8("k"), 1, big, sizeof big, 1, 0), 0);
    kv_oplog_clear(&l);
    assert_int_equal(l.count, 0);
    assert_null(l.data);                /* over the keep limit: freed */
    assert_int_equal(kv_oplog_next(&l, &pos, &e), 0);
    assert_int_equal(kv_oplog_append(&l, KV_OPLOG_UNSET, u8("k"), 1, NULL, 0, 2, 0), 0);
    kv_oplog_clear(&l);
    assert_non_null(l.data);            /* small: kept for the next turn */
    kv_oplog_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(records_come_back_in_order_with_their_revisions),
        cmocka_unit_test(ranges_and_batch_brackets_are_kept),
        cmocka_unit_test(touches_keep_their_deadline),
        cmocka_unit_test(drop_last_removes_only_the_last),
        cmocka_unit_test(truncate_drops_back_to_the_mark),
        cmocka_unit_test(clear_starts_over_and_frees_a_large_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
