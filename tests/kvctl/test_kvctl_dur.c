/* test_kvctl_dur.c - kvctl's durations (client/kvctl/dur.c): what
 * set --ttl and touch read, and what ttl and the TTL column write. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>
#include "dur.h"

static int parse(const char *text, uint64_t *ms)
{
    return kvctl_dur_parse((const uint8_t *)text, strlen(text), ms);
}

static void reads(void **state)
{
    static const struct { const char *text; uint64_t ms; } ok[] = {
        { "0", 0 }, { "0ms", 0 }, { "1ms", 1 }, { "500ms", 500 }, { "30s", 30000 },
        { "30", 30000 }, { "1.5m", 90000 }, { "2h", 7200000 }, { "0.5ms", 1 },
        { "0.0001s", 1 }, { ".5s", 500 }, { "1.001s", 1001 }, { "1.0010000001s", 1002 },
        { "1.0010000000s", 1001 }, { "29.5s", 29500 }, { "007s", 7000 },
        { "1000000000000ms", 1000000000000 }, { "18446744073709551615ms", UINT64_MAX },
    };
    static const char *const bad[] = {
        "", "s", "ms", ".s", "1.s", "1.", "-1s", "+1s", " 1s", "1s ", "1 s", "1e3",
        "1d", "1S", "1sec", "1.5.5s", "18446744073709551616ms", "5124095576030432h",
        "0x10", "1m30s",
    };
    uint64_t ms;

    (void)state;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ms = 12345;
        if (parse(ok[i].text, &ms) != 0 || ms != ok[i].ms)
            fail_msg("\"%s\": got %llu", ok[i].text, (unsigned long long)ms);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parse(bad[i], &ms) == 0)
            fail_msg("\"%s\" read as %llu", bad[i], (unsigned long long)ms);
}

static void writes(void **state)
{
    static const struct { uint64_t ms; const char *text; } cases[] = {
        { 0, "0ms" }, { 1, "1ms" }, { 999, "999ms" }, { 1000, "1s" }, { 1500, "1.5s" },
        { 29500, "29.5s" }, { 1001, "1.001s" }, { 1010, "1.01s" }, { 3600000, "3600s" },
        { UINT64_MAX, "18446744073709551.615s" },
    };
    char buf[64];
    uint64_t back;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kvctl_dur_format(cases[i].ms, buf, sizeof buf);
        assert_string_equal(buf, cases[i].text);
        /* What it writes reads back. */
        assert_int_equal(parse(buf, &back), 0);
        assert_true(back == cases[i].ms);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads),
        cmocka_unit_test(writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
