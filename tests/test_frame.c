/* test_frame.c - the varint codec (varint.h) and the framing built on it,
 * as pure functions. Inputs sit at the very end of a page followed by an
 * unreadable page (as picohttpparser's tests do), so any read past the
 * given length crashes the test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "frame.h"
#include "varint.h"

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

/* kv_varint_get() over P[0..N) placed at the page's edge; *USED is how far
 * the cursor moved. */
static int vget(const void *p, size_t n, size_t maxlen, uint64_t *v, size_t *used)
{
    const uint8_t *start = at_edge(p, n), *cur = start;
    int rc = kv_varint_get(&cur, start + n, maxlen, v);

    *used = (size_t)(cur - start);
    return rc;
}

static void varints_round_trip_at_every_width(void **state)
{
    uint8_t buf[KV_VARINT_MAX];
    uint64_t v;
    size_t used;

    (void)state;
    for (unsigned bits = 0; bits <= 64; bits++) {
        uint64_t x = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
        for (int k = 0; k < 2; k++, x++) {       /* 2^b - 1 and 2^b */
            size_t n = (size_t)(kv_varint_put(buf, x) - buf);
            assert_int_equal(n, kv_varint_size(x));
            assert_int_equal(n, x ? (64 - (size_t)__builtin_clzll(x) + 6) / 7 : 1);
            assert_int_equal(vget(buf, n, KV_VARINT_MAX, &v, &used), 0);
            assert_int_equal(used, n);
            assert_true(v == x);
        }
    }
}

static void cut_off_varint_is_truncated_without_reading_past_the_end(void **state)
{
    uint8_t buf[KV_VARINT_MAX];
    uint64_t v;
    size_t used;

    (void)state;
    size_t n = (size_t)(kv_varint_put(buf, UINT64_MAX) - buf);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(vget(buf, cut, KV_VARINT_MAX, &v, &used), KV_VARINT_TRUNCATED);
    /* A shorter limit than the input still wants more when the input ends first. */
    assert_int_equal(vget(buf, 3, KV_VARINT32_MAX, &v, &used), KV_VARINT_TRUNCATED);
}

static void too_many_bytes_is_overlong_even_with_more_input(void **state)
{
    const uint8_t eleven[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 };
    uint64_t v;
    size_t used;

    (void)state;
    assert_int_equal(vget(eleven, 11, KV_VARINT_MAX, &v, &used), KV_VARINT_OVERLONG);
    assert_int_equal(vget(eleven, 10, KV_VARINT_MAX, &v, &used), KV_VARINT_OVERLONG);
    assert_int_equal(vget(eleven, 6, KV_VARINT32_MAX, &v, &used), KV_VARINT_OVERLONG);
    assert_int_equal(vget(eleven, 5, KV_VARINT32_MAX, &v, &used), KV_VARINT_OVERLONG);
    assert_int_equal(vget(eleven + 5, 6, KV_VARINT_MAX, &v, &used), 0);   /* 6 bytes: fine */
    assert_int_equal(used, 6);
    assert_true(v == 0);
}

static void non_minimal_and_tenth_byte_high_bits_are_accepted(void **state)
{
    const uint8_t padded[] = { 0x81, 0x80, 0x00 };
    const uint8_t wide10[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f };
    uint64_t v;
    size_t used;

    (void)state;
    assert_int_equal(vget(padded, 3, KV_VARINT_MAX, &v, &used), 0);
    assert_int_equal(used, 3);
    assert_true(v == 1);
    assert_int_equal(vget(wide10, 10, KV_VARINT_MAX, &v, &used), 0);
    assert_true(v == UINT64_MAX);
}

static void get32_refuses_more_than_32_bits(void **state)
{
    const uint8_t max32[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
    const uint8_t two32[] = { 0x80, 0x80, 0x80, 0x80, 0x10 };
    const uint8_t cut[] = { 0xff, 0xff };
    uint32_t v;

    (void)state;
    const uint8_t *p = at_edge(max32, 5), *end = p + 5;
    assert_int_equal(kv_varint_get32(&p, end, &v), 0);
    assert_true(p == end);
    assert_true(v == UINT32_MAX);
    p = at_edge(two32, 5);
    assert_int_equal(kv_varint_get32(&p, p + 5, &v), KV_VARINT_OVERLONG);
    p = at_edge(cut, 2);
    assert_int_equal(kv_varint_get32(&p, p + 2, &v), KV_VARINT_TRUNCATED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(varints_round_trip_at_every_width),
        cmocka_unit_test(cut_off_varint_is_truncated_without_reading_past_the_end),
        cmocka_unit_test(too_many_bytes_is_overlong_even_with_more_input),
        cmocka_unit_test(non_minimal_and_tenth_byte_high_bits_are_accepted),
        cmocka_unit_test(get32_refuses_more_than_32_bits),
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
