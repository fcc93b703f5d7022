/* test_latency.c - the latency histogram (src/latency.h, latency.c) and
 * the slow log's ring (src/slowlog.c), against their definitions: every
 * duration lands in the bucket whose bounds hold it, the bounds double
 * every fourth bucket from 10 us to 10.49 s, quantiles fall inside the
 * right bucket, and the ring keeps the newest entries, newest first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "arena.h"
#include "latency.h"
#include "slowlog.h"

/* Every bucket's bounds: (upper(i-1), upper(i)], increasing, the powers of
 * two of 10 us at every fourth one; durations at and next to each bound
 * land on the right side of it. */
static void test_buckets_hold_their_bounds(void **state)
{
    (void)state;
    assert_int_equal(kv_latency_upper_ns(0), 10000);
    for (unsigned k = 0; k <= KV_LATENCY_DOUBLINGS; k++)
        assert_int_equal(kv_latency_upper_ns(4 * k), 10000ull << k);
    assert_true(kv_latency_upper_ns(KV_LATENCY_BUCKETS - 1) == UINT64_MAX);
    assert_int_equal(kv_latency_bucket(0), 0);
    assert_int_equal(kv_latency_bucket(1), 0);
    for (unsigned i = 0; i + 1 < KV_LATENCY_BUCKETS; i++) {
        uint64_t hi = kv_latency_upper_ns(i);
        if (i)
            assert_true(hi > kv_latency_upper_ns(i - 1));
        assert_int_equal(kv_latency_bucket(hi), i);
        assert_int_equal(kv_latency_bucket(hi + 1), i + 1);
        if (i)
            assert_int_equal(kv_latency_bucket(kv_latency_upper_ns(i - 1) + 1), i);
    }
    assert_int_equal(kv_latency_bucket(UINT64_MAX), KV_LATENCY_BUCKETS - 1);
    assert_int_equal(kv_latency_bucket(3600ull * 1000000000), KV_LATENCY_BUCKETS - 1);
}

/* Quantiles: nothing on an empty histogram; of 1000 durations of 1..1000
 * us, each quantile within its bucket (never off by more than a bucket's
 * width, a quarter of a doubling), in order, and the count and sum exact. */
static void test_quantiles(void **state)
{
    kv_latency h;

    (void)state;
    memset(&h, 0, sizeof h);
    assert_int_equal(kv_latency_quantile_ns(&h, 0.5), 0);
    for (uint64_t us = 1; us <= 1000; us++)
        kv_latency_record(&h, us * 1000);
    assert_int_equal(kv_latency_count(&h), 1000);
    assert_int_equal(h.sum_ns, 500500ull * 1000);
    const double qs[] = { 0.5, 0.9, 0.99, 0.999 };
    uint64_t last = 0;
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
        uint64_t got = kv_latency_quantile_ns(&h, qs[i]);
        uint64_t truth = (uint64_t)(qs[i] * 1000) * 1000;
        unsigned b = kv_latency_bucket(truth);
        assert_true(got >= (b ? kv_latency_upper_ns(b - 1) : 0));
        assert_true(got <= kv_latency_upper_ns(b));
        assert_true(got >= last);
        last = got;
    }
    /* Past the last bound: reported as that bound. */
    memset(&h, 0, sizeof h);
    kv_latency_record(&h, 60ull * 1000000000);
    assert_int_equal(kv_latency_quantile_ns(&h, 0.5),
                     kv_latency_upper_ns(KV_LATENCY_BUCKETS - 2));
}

/* The ring: the last CAP entries, newest first, ids increasing, a key cut
 * at 64 bytes with its whole length kept, the total counting every entry;
 * a reset empties it and the ids go on. */
static void test_slowlog_ring(void **state)
{
    kv_slowlog l;
    uint8_t key[100];
    kv_arena arena;
    ProtobufCAllocator *alloc = &arena.pb;
    Kvstore__V1__SlowLogResponse out = KVSTORE__V1__SLOW_LOG_RESPONSE__INIT;

    (void)state;
    kv_arena_init(&arena, 4096);
    memset(key, 'k', sizeof key);
    assert_int_equal(kv_slowlog_init(&l, 5, 3), 0);
    assert_false(kv_slowlog_wants(&l, 5000));
    assert_true(kv_slowlog_wants(&l, 5001));
    for (unsigned i = 0; i < 5; i++)
        kv_slowlog_add(&l, 1, key, i == 4 ? sizeof key : i + 1, i == 4 ? sizeof key : i + 1,
                       6000 + i, "127.0.0.1:9", 0);
    assert_int_equal(kv_slowlog_get(&l, 0, alloc, &out), 0);
    assert_int_equal(out.n_entries, 3);
    assert_int_equal(out.total, 5);
    assert_int_equal(out.threshold_us, 5);
    assert_int_equal(out.capacity, 3);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(out.entries[i]->id, 5 - i);
    assert_int_equal(out.entries[0]->key.len, KV_SLOWLOG_KEY_MAX);
    assert_int_equal(out.entries[0]->key_bytes, sizeof key);
    assert_int_equal(out.entries[1]->key.len, 4);
    assert_string_equal(out.entries[0]->peer, "127.0.0.1:9");
    assert_string_equal(out.entries[0]->method, "/kvstore.v1.KV/Get");

    Kvstore__V1__SlowLogResponse one = KVSTORE__V1__SLOW_LOG_RESPONSE__INIT;
    assert_int_equal(kv_slowlog_get(&l, 1, alloc, &one), 0);
    assert_int_equal(one.n_entries, 1);
    assert_int_equal(one.entries[0]->id, 5);

    kv_slowlog_reset(&l);
    Kvstore__V1__SlowLogResponse none = KVSTORE__V1__SLOW_LOG_RESPONSE__INIT;
    assert_int_equal(kv_slowlog_get(&l, 0, alloc, &none), 0);
    assert_int_equal(none.n_entries, 0);
    assert_int_equal(none.total, 0);
    kv_slowlog_add(&l, 1, NULL, 0, 0, 9000, "p", 5);
    Kvstore__V1__SlowLogResponse after = KVSTORE__V1__SLOW_LOG_RESPONSE__INIT;
    assert_int_equal(kv_slowlog_get(&l, 0, alloc, &after), 0);
    assert_int_equal(after.entries[0]->id, 6);
    assert_int_equal(after.entries[0]->key_bytes, 0);
    kv_slowlog_free(&l);
    kv_arena_free(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_hold_their_bounds),
        cmocka_unit_test(test_quantiles),
        cmocka_unit_test(test_slowlog_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
