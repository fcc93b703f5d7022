/* test_utf8.c - kv_utf8_check (src/utf8.c) against a decoder written from
 * the definition (the bit patterns of RFC 3629, then the code point's
 * range), on every string of one to three bytes and on four-byte strings
 * built from the bytes where the rules change. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>
#include "utf8.h"

/* The length of the well-formed character at P[0..LEN), or 0. Decodes by
 * the bit patterns, then refuses what the patterns allow but Unicode does
 * not: overlong forms, surrogates, code points past U+10FFFF. */
static size_t reference_char(const uint8_t *p, size_t len)
{
    static const uint32_t least[] = { 0, 0, 0x80, 0x800, 0x10000 };
    uint32_t cp;
    size_t n;

    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0)
        n = 2, cp = p[0] & 0x1f;
    else if ((p[0] & 0xf0) == 0xe0)
        n = 3, cp = p[0] & 0x0f;
    else if ((p[0] & 0xf8) == 0xf0)
        n = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < least[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return n;
}

/* What kv_utf8_check should answer for P[0..LEN). */
static size_t reference_check(const uint8_t *p, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t n = reference_char(p + i, len - i);
        if (n == 0)
            return i;
        i += n;
    }
    return len;
}

static void agrees_on_every_string_of_one_to_three_bytes(void **state)
{
    uint8_t s[3];

    (void)state;
    for (uint32_t v = 0; v < 1u << 24; v++) {
        s[0] = (uint8_t)(v >> 16);
        s[1] = (uint8_t)(v >> 8);
        s[2] = (uint8_t)v;
        if (v < 1u << 8 && kv_utf8_check(s + 2, 1) != reference_check(s + 2, 1))
            fail_msg("1 byte %02x", s[2]);
        if (v < 1u << 16 && kv_utf8_check(s + 1, 2) != reference_check(s + 1, 2))
            fail_msg("2 bytes %02x %02x", s[1], s[2]);
        if (kv_utf8_check(s, 3) != reference_check(s, 3))
            fail_msg("3 bytes %02x %02x %02x", s[0], s[1], s[2]);
    }
}

static void agrees_on_four_byte_strings_at_the_edges(void **state)
{
    /* Every byte where a range starts or ends. */
    static const uint8_t edge[] = { 0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                    0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0,
                                    0xf4, 0xf5, 0xff };
    const size_t n = sizeof edge;
    uint8_t s[4];

    (void)state;
    for (size_t a = 0; a < n; a++)
        for (size_t b = 0; b < n; b++)
            for (size_t c = 0; c < n; c++)
                for (size_t d = 0; d < n; d++) {
                    s[0] = edge[a], s[1] = edge[b], s[2] = edge[c], s[3] = edge[d];
                    if (kv_utf8_check(s, 4) != reference_check(s, 4))
                        fail_msg("4 bytes %02x %02x %02x %02x", s[0], s[1], s[2], s[3]);
                }
}

static void every_code_point_but_the_surrogates_is_valid(void **state)
{
    uint8_t s[4];

    (void)state;
    for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
        size_t n;
        if (cp < 0x80) {
            s[0] = (uint8_t)cp, n = 1;
        } else if (cp < 0x800) {
            s[0] = (uint8_t)(0xc0 | cp >> 6), s[1] = (uint8_t)(0x80 | (cp & 0x3f)), n = 2;
        } else if (cp < 0x10000) {
            s[0] = (uint8_t)(0xe0 | cp >> 12), s[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
            s[2] = (uint8_t)(0x80 | (cp & 0x3f)), n = 3;
        } else {
            s[0] = (uint8_t)(0xf0 | cp >> 18), s[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
            s[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f)), s[3] = (uint8_t)(0x80 | (cp & 0x3f)), n = 4;
        }
        int surrogate = cp >= 0xd800 && cp <= 0xdfff;
        if (kv_utf8_check(s, n) != (surrogate ? 0 : n))
            fail_msg("U+%04X", (unsigned)cp);
    }
}

static void the_first_bad_sequence_is_located(void **state)
{
    (void)state;
    assert_int_equal(kv_utf8_check((const uint8_t *)"", 0), 0);
    assert_int_equal(kv_utf8_check((const uint8_t *)"ab\0cd", 5), 5);          /* NUL is valid */
    assert_int_equal(kv_utf8_check((const uint8_t *)"h\xc3\xa9\xff", 4), 3);
    assert_int_equal(kv_utf8_check((const uint8_t *)"ok\xe2\x9c", 4), 2);      /* cut short */
    assert_int_equal(kv_utf8_check((const uint8_t *)"\xed\xa0\x80z", 4), 0);   /* surrogate */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(agrees_on_every_string_of_one_to_three_bytes),
        cmocka_unit_test(agrees_on_four_byte_strings_at_the_edges),
        cmocka_unit_test(every_code_point_but_the_surrogates_is_valid),
        cmocka_unit_test(the_first_bad_sequence_is_located),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
