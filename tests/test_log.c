/* test_log.c - the log's lines (src/log.c), read back from stderr: one line
 * per event whatever the message holds, a UTC timestamp, the level filter,
 * and JSON that a strict decoder takes (valid UTF-8, escaped quotes,
 * backslashes and control bytes, foreign bytes shown as \xHH). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "log.h"
#include "utf8.h"

/* stderr goes to a temporary file for each test; saved_fd is the real one. */
static int saved_fd = -1;
static FILE *capture;
static char got[16384];

static int start_capture(void **state)
{
    (void)state;
    capture = tmpfile();
    if (!capture)
        return -1;
    saved_fd = dup(STDERR_FILENO);
    dup2(fileno(capture), STDERR_FILENO);
    return 0;
}

static int end_capture(void **state)
{
    (void)state;
    dup2(saved_fd, STDERR_FILENO);
    close(saved_fd);
    fclose(capture);
    kv_log_setup(KV_LOG_INFO, KV_LOG_TEXT);
    return 0;
}

/* Everything written to stderr since the test began, NUL-terminated. Ends
 * the capture, so that cmocka's word on a failed check reaches the real
 * stderr. */
static const char *written(void)
{
    long n = lseek(fileno(capture), 0, SEEK_CUR);
    ssize_t r = pread(fileno(capture), got, sizeof got - 1, 0);

    dup2(saved_fd, STDERR_FILENO);
    assert_true(r >= 0 && r == n);
    got[r] = 0;
    return got;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void assert_matches(const char *text, const char *pattern)
{
    regex_t re;

    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    if (regexec(&re, text, 0, NULL, 0) != 0)
        fail_msg("\"%s\" does not match /%s/", text, pattern);
    regfree(&re);
}

static void a_text_line_is_a_utc_timestamp_a_level_and_the_message(void **state)
{
    (void)state;
    kv_log_setup(KV_LOG_DEBUG, KV_LOG_TEXT);
    kv_log(KV_LOG_WARN, "limit %d hit", 7);
    assert_matches(written(), "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                              "warn  limit 7 hit\n$");
}

static void events_below_the_level_are_not_written(void **state)
{
    (void)state;
    kv_log_setup(KV_LOG_ERROR, KV_LOG_TEXT);
    kv_log(KV_LOG_WARN, "hidden");
    kv_log(KV_LOG_INFO, "hidden");
    kv_log(KV_LOG_DEBUG, "hidden");
    kv_log(KV_LOG_ERROR, "shown");
    assert_int_equal(count_lines(written()), 1);
    assert_non_null(strstr(got, " error shown\n"));
    assert_false(kv_log_on(KV_LOG_WARN));
    assert_true(kv_log_on(KV_LOG_ERROR));
}

static void newlines_and_control_bytes_cannot_start_a_line(void **state)
{
    (void)state;
    kv_log_setup(KV_LOG_INFO, KV_LOG_TEXT);
    kv_log(KV_LOG_INFO, "a\nfake 2026-01-01T00:00:00.000Z error line\r\x1b[31m");
    assert_int_equal(count_lines(written()), 1);
    assert_non_null(strstr(got, "a\\nfake 2026-01-01T00:00:00.000Z error line\\u000d\\u001b[31m\n"));
}

static void json_escapes_quotes_backslashes_and_control_bytes(void **state)
{
    (void)state;
    kv_log_setup(KV_LOG_INFO, KV_LOG_JSON);
    kv_log(KV_LOG_INFO, "key \"a\\b\"\n\t\x7f end");
    assert_matches(written(), "^\\{\"ts\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z\","
                              "\"level\":\"info\",\"msg\":\"[^\n]*\"\\}\n$");
    assert_non_null(strstr(got, "\"msg\":\"key \\\"a\\\\b\\\"\\n\\u0009\\u007f end\"}\n"));
}

static void bytes_that_are_not_utf8_are_shown_as_hex(void **state)
{
    (void)state;
    /* é and € are UTF-8 and pass; a lone 0xff, a cut sequence (e2 82)
     * and a surrogate (ed a0 80) are not. */
    kv_log_setup(KV_LOG_INFO, KV_LOG_JSON);
    kv_log(KV_LOG_INFO, "caf\xc3\xa9 \xe2\x82\xac \xff \xe2\x82 \xed\xa0\x80!");
    kv_log_setup(KV_LOG_INFO, KV_LOG_TEXT);
    kv_log(KV_LOG_INFO, "\xff");
    const char *out = written();
    assert_int_equal(kv_utf8_check((const uint8_t *)out, strlen(out)), strlen(out));
    assert_non_null(strstr(out, "\"msg\":\"caf\xc3\xa9 \xe2\x82\xac \\\\xff \\\\xe2\\\\x82 "
                                "\\\\xed\\\\xa0\\\\x80!\"}\n"));
    assert_non_null(strstr(out, "info  \\xff\n"));
}

static void a_long_message_is_cut_and_says_so(void **state)
{
    char big[5000];

    (void)state;
    memset(big, '\x01', sizeof big - 1);    /* the longest escape, six bytes each */
    big[sizeof big - 1] = 0;
    kv_log_setup(KV_LOG_INFO, KV_LOG_JSON);
    kv_log(KV_LOG_INFO, "%s", big);
    const char *out = written();
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "\\u0001...\"}\n"));
}

static void level_and_format_names_parse(void **state)
{
    kv_log_level level;
    kv_log_format format;

    (void)state;
    assert_int_equal(kv_log_level_parse("debug", &level), 0);
    assert_int_equal(level, KV_LOG_DEBUG);
    assert_int_equal(kv_log_level_parse("error", &level), 0);
    assert_int_equal(level, KV_LOG_ERROR);
    assert_int_equal(kv_log_level_parse("warning", &level), -1);
    assert_int_equal(kv_log_level_parse("INFO", &level), -1);
    assert_int_equal(kv_log_format_parse("json", &format), 0);
    assert_int_equal(format, KV_LOG_JSON);
    assert_int_equal(kv_log_format_parse("text", &format), 0);
    assert_int_equal(format, KV_LOG_TEXT);
    assert_int_equal(kv_log_format_parse("", &format), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_text_line_is_a_utc_timestamp_a_level_and_the_message,
                                        start_capture, end_capture),
        cmocka_unit_test_setup_teardown(events_below_the_level_are_not_written,
                                        start_capture, end_capture),
        cmocka_unit_test_setup_teardown(newlines_and_control_bytes_cannot_start_a_line,
                                        start_capture, end_capture),
        cmocka_unit_test_setup_teardown(json_escapes_quotes_backslashes_and_control_bytes,
                                        start_capture, end_capture),
        cmocka_unit_test_setup_teardown(bytes_that_are_not_utf8_are_shown_as_hex,
                                        start_capture, end_capture),
        cmocka_unit_test_setup_teardown(a_long_message_is_cut_and_says_so,
                                        start_capture, end_capture),
        cmocka_unit_test(level_and_format_names_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
