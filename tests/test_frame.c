/* test_frame.c - the varint framing as pure functions. Inputs sit at the
 * very end of a page followed by an unreadable page (as picohttpparser's
 * tests do), so any read past the given length crashes the test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "frame.h"

static uint8_t *guard;      /* two pages; the second is PROT_NONE */
static size_t page;

static int make_guard(void **state)
{
    (void)state;
    page = (size_t)sysconf(_SC_PAGESIZE);
    guard = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(guard != MAP_FAILED);
    assert_int_equal(mprotect(guard + page, page, PROT_NONE), 0);
    return 0;
}

static int drop_guard(void **state)
{
    (void)state;
    munmap(guard, 2 * page);
    return 0;
}

/* Copies N bytes so that they end exactly at the unreadable page. */
static const uint8_t *at_edge(const void *p, size_t n)
{
    uint8_t *dst = guard + page - n;
    memcpy(dst, p, n);
    return dst;
}

static kv_frame_result decode(const void *p, size_t n, uint32_t max, size_t *off, size_t *len)
{
    return kv_frame_decode(at_edge(p, n), n, max, off, len);
}

static void whole_frame_is_found(void **state)
{
    const uint8_t in[] = { 0x03, 'a', 'b', 'c', 0x01 };
    size_t off, len;

    (void)state;
    assert_int_equal(decode(in, sizeof in, 100, &off, &len), KV_FRAME_OK);
    assert_int_equal(off, 1);
    assert_int_equal(len, 3);
}

static void empty_input_and_partial_prefix_want_more(void **state)
{
    const uint8_t in[] = { 0x80, 0x80 };
    size_t off, len;

    (void)state;
    assert_int_equal(decode(in, 0, 100, &off, &len), KV_FRAME_PARTIAL);
    assert_int_equal(decode(in, 1, 100, &off, &len), KV_FRAME_PARTIAL);
    assert_int_equal(decode(in, 2, 100, &off, &len), KV_FRAME_PARTIAL);
}

static void partial_body_reports_declared_length(void **state)
{
    const uint8_t in[] = { 0xac, 0x02, 'x' };   /* 300 */
    size_t off = 0, len = 0;

    (void)state;
    assert_int_equal(decode(in, sizeof in, 1000, &off, &len), KV_FRAME_PARTIAL);
    assert_int_equal(off, 2);
    assert_int_equal(len, 300);
}

static void zero_length_frame_is_whole(void **state)
{
    const uint8_t in[] = { 0x00 };
    size_t off, len;

    (void)state;
    assert_int_equal(decode(in, 1, 100, &off, &len), KV_FRAME_OK);
    assert_int_equal(off, 1);
    assert_int_equal(len, 0);
}

static void maximum_is_inclusive(void **state)
{
    uint8_t in[5];
    size_t off, len;

    (void)state;
    size_t n = kv_frame_put_prefix(in, 1000);
    assert_int_equal(decode(in, n, 1000, &off, &len), KV_FRAME_PARTIAL);
    n = kv_frame_put_prefix(in, 1001);
    assert_int_equal(decode(in, n, 1000, &off, &len), KV_FRAME_TOO_LARGE);
    assert_int_equal(len, 1001);
}

static void huge_lengths_are_too_large_not_malformed(void **state)
{
    const uint8_t two31[] = { 0x80, 0x80, 0x80, 0x80, 0x08 };
    const uint8_t max32[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
    size_t off, len;

    (void)state;
    assert_int_equal(decode(two31, 5, 1 << 24, &off, &len), KV_FRAME_TOO_LARGE);
    assert_int_equal(len, 1u << 31);
    assert_int_equal(decode(max32, 5, 1 << 24, &off, &len), KV_FRAME_TOO_LARGE);
    assert_int_equal(len, 0xffffffffu);
}

static void over_long_or_over_wide_prefix_is_malformed(void **state)
{
    const uint8_t six[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 };
    const uint8_t wide[] = { 0xff, 0xff, 0xff, 0xff, 0x1f };      /* 2^33 - 1 */
    const uint8_t u64max[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
    size_t off, len;

    (void)state;
    assert_int_equal(decode(six, 5, 100, &off, &len), KV_FRAME_MALFORMED);
    assert_int_equal(decode(six, 6, 100, &off, &len), KV_FRAME_MALFORMED);
    assert_int_equal(decode(wide, 5, 100, &off, &len), KV_FRAME_MALFORMED);
    assert_int_equal(decode(u64max, 10, 100, &off, &len), KV_FRAME_MALFORMED);
}

static void prefix_round_trips_at_every_width(void **state)
{
    const uint32_t cases[] = { 0, 1, 127, 128, 16383, 16384, 2097151, 2097152,
                               268435455, 268435456, 0xffffffffu };
    uint8_t buf[KV_FRAME_PREFIX_MAX];
    size_t off, len;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = kv_frame_put_prefix(buf, cases[i]);
        assert_int_equal(n, kv_frame_prefix_size(cases[i]));
        kv_frame_result r = decode(buf, n, UINT32_MAX, &off, &len);
        assert_true(r == KV_FRAME_PARTIAL || r == KV_FRAME_OK);
        assert_int_equal(off, n);
        assert_int_equal(len, cases[i]);
    }
    assert_int_equal(kv_frame_prefix_size(0xffffffffu), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whole_frame_is_found),
        cmocka_unit_test(empty_input_and_partial_prefix_want_more),
        cmocka_unit_test(partial_body_reports_declared_length),
        cmocka_unit_test(zero_length_frame_is_whole),
        cmocka_unit_test(maximum_is_inclusive),
        cmocka_unit_test(huge_lengths_are_too_large_not_malformed),
        cmocka_unit_test(over_long_or_over_wide_prefix_is_malformed),
        cmocka_unit_test(prefix_round_trips_at_every_width),
    };
    return cmocka_run_group_tests(tests, make_guard, drop_guard);
}
