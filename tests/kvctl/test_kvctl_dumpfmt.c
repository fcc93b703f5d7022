/* test_kvctl_dumpfmt.c - the dump text format (client/kvctl/dumpfmt.c):
 * every byte value through a line and back, keys and values of every
 * length to 300, TTLs, and the lines a load must refuse. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dumpfmt.h"

/* Writes one line of KEY, VALUE, TTL and reads it back. */
static void round_trip(const uint8_t *key, size_t klen, const uint8_t *value, size_t vlen,
                       uint64_t ttl)
{
    char *text = NULL, err[300];
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    kvctl_dump_line l;

    assert_non_null(fp);
    kvctl_dump_put(fp, key, klen, value, vlen, ttl);
    fclose(fp);
    assert_true(len > 0 && text[len - 1] == '\n');
    assert_null(memchr(text, '\n', len - 1));
    uint8_t *buf = malloc(len);
    if (kvctl_dump_get(text, len - 1, buf, &l, err, sizeof err) != 1)
        fail_msg("refused its own line \"%s\": %s", text, err);
    assert_int_equal(l.klen, klen);
    assert_memory_equal(l.key, key, klen);
    assert_int_equal(l.vlen, vlen);
    if (vlen)
        assert_memory_equal(l.value, value, vlen);
    assert_int_equal(l.ttl_ms, ttl);
    free(buf);
    free(text);
}

static void every_byte(void **state)
{
    uint8_t all[256];

    (void)state;
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    for (size_t n = 1; n <= 256; n++)
        round_trip(all + 256 - n, n, all, n - 1, n % 3 ? 0 : n * 1000);
    for (int i = 0; i < 256; i++)
        round_trip(all + i, 1, all + i, 1, 1);
}

static void refuses(void **state)
{
    static const char *const bad[] = {
        "", "k", "k ", " k v", "k  v", "k v ", "k v 0", "k v x", "k v 1 2", "k v -1",
        "k v\\x4", "k\\ v", "k \\q", "\"\" v", "k \"x\"", "k\"\" v", "k\x01 v", "k \x7f",
        "k v 18446744073709551616", "k\tv",
    };
    char err[300];
    uint8_t buf[64];
    kvctl_dump_line l;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (kvctl_dump_get(bad[i], strlen(bad[i]), buf, &l, err, sizeof err) != -1)
            fail_msg("took \"%s\"", bad[i]);
    assert_int_equal(kvctl_dump_get("# a comment", 11, buf, &l, err, sizeof err), 0);
    assert_int_equal(kvctl_dump_get("k \"\" 5", 6, buf, &l, err, sizeof err), 1);
    assert_int_equal(l.vlen, 0);
    assert_int_equal(l.ttl_ms, 5);
    assert_int_equal(kvctl_dump_get("\\x23k \\x7E", 10, buf, &l, err, sizeof err), 1);
    assert_memory_equal(l.key, "#k", 2);
    assert_memory_equal(l.value, "~", 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_byte),
        cmocka_unit_test(refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
