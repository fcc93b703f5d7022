/* test_edges.c - the edges server and clients share: the endpoint parser
 * (endpoint.h: ports range-checked, every accepted form) and the token
 * reader (token.h: the first line of a regular file, 1 to 4095 bytes).
 * Token files are written in a fresh temporary directory per test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "endpoint.h"
#include "token.h"

/* ---- endpoints ---- */

/* Parses EP with DEFAULT_PORT, which must succeed, and checks the parts. */
static void assert_parses(const char *ep, int default_port, const char *host, unsigned port)
{
    kv_endpoint e;
    char err[256] = "", service[8];

    if (kv_endpoint_parse(ep, default_port, &e, err, sizeof err) < 0)
        fail_msg("\"%s\" refused: %s", ep, err);
    assert_string_equal(e.host, host);
    assert_int_equal(e.port, port);
    snprintf(service, sizeof service, "%u", port);
    assert_string_equal(e.service, service);
}

/* Parses EP, which must be refused with a one-line reason holding WHY. */
static void assert_refused(const char *ep, int default_port, const char *why)
{
    kv_endpoint e;
    char err[256] = "";

    if (kv_endpoint_parse(ep, default_port, &e, err, sizeof err) == 0)
        fail_msg("\"%s\" accepted as host \"%s\" port %u", ep, e.host, (unsigned)e.port);
    if (!strstr(err, why))
        fail_msg("\"%s\": reason \"%s\" lacks \"%s\"", ep, err, why);
    assert_null(strchr(err, '\n'));
}

static void ports_past_65535_are_refused_not_wrapped(void **state)
{
    (void)state;
    /* 70000 listened on 4464 and 99999 on 34463 before the check. */
    assert_refused("127.0.0.1:70000", -1, "bad port \"70000\"");
    assert_refused("127.0.0.1:65536", -1, "want a number from 0 to 65535");
    assert_refused("127.0.0.1:99999", 7379, "bad port");
    assert_refused(":4294967296", -1, "bad port");
    assert_refused(":99999999999999999999999", -1, "bad port");
    assert_parses("127.0.0.1:65535", -1, "127.0.0.1", 65535);
    assert_parses(":0", -1, "", 0);
}

static void ports_are_digits_only(void **state)
{
    (void)state;
    assert_refused("h:-1", -1, "bad port \"-1\"");
    assert_refused("h:+1", -1, "bad port");
    assert_refused("h: 1", -1, "bad port");
    assert_refused("h:1 ", -1, "bad port");
    assert_refused("h:0x10", -1, "bad port");
    assert_refused("h:http", -1, "bad port");
    assert_refused("h:", 7379, "bad port \"\"");
    assert_refused(":", -1, "bad port");
    assert_refused("[::1]:", 7379, "bad port");
    assert_parses("h:007379", -1, "h", 7379);
}

static void every_accepted_form(void **state)
{
    (void)state;
    assert_parses("127.0.0.1:7379", -1, "127.0.0.1", 7379);
    assert_parses("localhost:1", -1, "localhost", 1);
    assert_parses("[::1]:7379", -1, "::1", 7379);
    assert_parses("[fe80::1%lo]:80", -1, "fe80::1%lo", 80);
    assert_parses(":7380", -1, "", 7380);
    assert_parses("[]:7380", -1, "", 7380);
    /* Unbracketed IPv6 splits at the last colon, as both old copies did. */
    assert_parses("::1:7379", -1, "::1", 7379);
    /* A host alone means the default port where there is one. */
    assert_parses("localhost", 7379, "localhost", 7379);
    assert_parses("[::1]", 7379, "::1", 7379);
}

static void malformed_endpoints_are_refused(void **state)
{
    char host[KV_ENDPOINT_HOST_MAX + 8], want[KV_ENDPOINT_HOST_MAX + 1];

    (void)state;
    assert_refused("", 7379, "empty");
    assert_refused("localhost", -1, "names no port");
    assert_refused("[::1]", -1, "names no port");
    assert_refused("[::1", 7379, "no ']'");
    assert_refused("[::1:7379", -1, "no ']'");
    assert_refused("[::1]7379", 7379, "want [V6]:PORT");
    assert_refused("[::1]x:7379", -1, "want [V6]:PORT");

    memset(want, 'h', KV_ENDPOINT_HOST_MAX);
    want[KV_ENDPOINT_HOST_MAX] = 0;
    snprintf(host, sizeof host, "%s:1", want);
    assert_parses(host, -1, want, 1);
    memset(host, 'h', KV_ENDPOINT_HOST_MAX + 1);
    strcpy(host + KV_ENDPOINT_HOST_MAX + 1, ":1");
    assert_refused(host, -1, "longer than 255");
}

static void a_port_alone(void **state)
{
    uint16_t port = 1;

    (void)state;
    assert_int_equal(kv_endpoint_parse_port("65535", &port), 0);
    assert_int_equal(port, 65535);
    assert_int_equal(kv_endpoint_parse_port("0", &port), 0);
    assert_int_equal(port, 0);
    assert_int_equal(kv_endpoint_parse_port("65536", &port), -1);
    assert_int_equal(kv_endpoint_parse_port("70000", &port), -1);
    assert_int_equal(kv_endpoint_parse_port("", &port), -1);
    assert_int_equal(kv_endpoint_parse_port("-1", &port), -1);
    assert_int_equal(kv_endpoint_parse_port(" 1", &port), -1);
    assert_int_equal(kv_endpoint_parse_port("12a", &port), -1);
}

/* ---- token files ---- */

typedef struct tdir {
    char path[64];
    char file[96];
} tdir;

static int make_dir(void **state)
{
    tdir *t = calloc(1, sizeof *t);

    assert_non_null(t);
    snprintf(t->path, sizeof t->path, "/tmp/kv-test-edges.XXXXXX");
    assert_non_null(mkdtemp(t->path));
    snprintf(t->file, sizeof t->file, "%s/token", t->path);
    *state = t;
    return 0;
}

static int drop_dir(void **state)
{
    tdir *t = *state;

    unlink(t->file);
    rmdir(t->path);
    free(t);
    return 0;
}

/* Writes N bytes of DATA as T's token file and returns its path. */
static const char *write_file(tdir *t, const void *data, size_t n)
{
    FILE *f = fopen(t->file, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    return t->file;
}

/* The token kv_token_read finds in a file of N bytes of DATA must be WANT
 * (WANT_LEN bytes). */
static void assert_token(tdir *t, const void *data, size_t n, const void *want, size_t want_len)
{
    uint8_t token[KV_TOKEN_MAX];
    char err[512] = "";
    size_t len = 0;

    if (kv_token_read(write_file(t, data, n), token, &len, err, sizeof err) < 0)
        fail_msg("refused: %s", err);
    assert_int_equal(len, want_len);
    assert_memory_equal(token, want, want_len);
}

/* PATH must be refused with a one-line reason holding WHY. */
static void assert_no_token(const char *path, const char *why)
{
    uint8_t token[KV_TOKEN_MAX];
    char err[512] = "";
    size_t len = 0;

    if (kv_token_read(path, token, &len, err, sizeof err) == 0)
        fail_msg("%s: accepted a token of %zu bytes", path, len);
    if (!strstr(err, why))
        fail_msg("reason \"%s\" lacks \"%s\"", err, why);
    assert_null(strchr(err, '\n'));
}

#define S(lit) lit, sizeof lit - 1

static void the_token_is_the_first_line(void **state)
{
    tdir *t = *state;

    /* The whole file minus trailing newlines was "abc\ndef". */
    assert_token(t, S("abc\ndef\n"), S("abc"));
    assert_token(t, S("abc\ndef"), S("abc"));
    assert_token(t, S("abc\n\n\n"), S("abc"));
    assert_token(t, S("abc"), S("abc"));
    assert_token(t, S("with spaces \t and \0 bytes\n"), S("with spaces \t and \0 bytes"));
}

static void one_carriage_return_before_the_newline_is_dropped(void **state)
{
    tdir *t = *state;

    assert_token(t, S("abc\r\n"), S("abc"));
    assert_token(t, S("abc\r\ndef\r\n"), S("abc"));
    assert_token(t, S("abc\r"), S("abc"));
    assert_token(t, S("abc\r\r\n"), S("abc\r"));
    assert_token(t, S("a\rb\n"), S("a\rb"));
}

static void tokens_of_1_to_4095_bytes(void **state)
{
    tdir *t = *state;
    static uint8_t big[KV_TOKEN_MAX + 16];

    memset(big, 'T', sizeof big);
    assert_token(t, S("x\n"), S("x"));
    /* 4095 bytes and a newline were refused, though the message allowed it. */
    big[KV_TOKEN_MAX] = '\n';
    assert_token(t, big, KV_TOKEN_MAX + 1, big, KV_TOKEN_MAX);
    big[KV_TOKEN_MAX] = '\r';
    big[KV_TOKEN_MAX + 1] = '\n';
    assert_token(t, big, KV_TOKEN_MAX + 2, big, KV_TOKEN_MAX);
    assert_token(t, big, KV_TOKEN_MAX + 1, big, KV_TOKEN_MAX);   /* ends in '\r' */
    assert_token(t, big, KV_TOKEN_MAX, big, KV_TOKEN_MAX);       /* no newline */
}

static void longer_first_lines_are_refused(void **state)
{
    tdir *t = *state;
    static uint8_t big[3 * KV_TOKEN_MAX];
    uint8_t token[KV_TOKEN_MAX];
    char err[512];
    size_t len;

    memset(big, 'T', sizeof big);
    big[KV_TOKEN_MAX + 1] = '\n';
    assert_no_token(write_file(t, big, KV_TOKEN_MAX + 2), "longer than 4095 bytes");
    assert_no_token(write_file(t, big, KV_TOKEN_MAX + 1), "longer than 4095 bytes");
    big[KV_TOKEN_MAX + 1] = 'T';
    big[KV_TOKEN_MAX + 2] = '\r';
    big[KV_TOKEN_MAX + 3] = '\n';
    assert_no_token(write_file(t, big, KV_TOKEN_MAX + 4), "longer than 4095 bytes");
    assert_no_token(write_file(t, big, sizeof big), "longer than 4095 bytes");
    /* The reason never quotes the token. */
    assert_int_equal(kv_token_read(t->file, token, &len, err, sizeof err), -1);
    assert_null(strstr(err, "TTTT"));
}

static void an_empty_first_line_is_refused(void **state)
{
    tdir *t = *state;

    assert_no_token(write_file(t, S("")), "holds no token");
    assert_no_token(write_file(t, S("\n")), "holds no token");
    assert_no_token(write_file(t, S("\r\n")), "holds no token");
    assert_no_token(write_file(t, S("\nabc\n")), "holds no token");
}

static void only_regular_files_are_read(void **state)
{
    tdir *t = *state;

    /* Opening a FIFO with no writer blocked startup forever: the alarm
     * turns a hang into a failed test. */
    assert_int_equal(mkfifo(t->file, 0600), 0);
    alarm(5);
    assert_no_token(t->file, "is not a regular file (a FIFO)");
    alarm(0);
    unlink(t->file);

    assert_no_token(t->path, "is not a regular file (a directory)");
    assert_no_token("/dev/null", "is not a regular file (a device)");
    assert_no_token(t->file, "cannot open token file");
    assert_no_token(t->file, "No such file or directory");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ports_past_65535_are_refused_not_wrapped),
        cmocka_unit_test(ports_are_digits_only),
        cmocka_unit_test(every_accepted_form),
        cmocka_unit_test(malformed_endpoints_are_refused),
        cmocka_unit_test(a_port_alone),
        cmocka_unit_test_setup_teardown(the_token_is_the_first_line, make_dir, drop_dir),
        cmocka_unit_test_setup_teardown(one_carriage_return_before_the_newline_is_dropped,
                                        make_dir, drop_dir),
        cmocka_unit_test_setup_teardown(tokens_of_1_to_4095_bytes, make_dir, drop_dir),
        cmocka_unit_test_setup_teardown(longer_first_lines_are_refused, make_dir, drop_dir),
        cmocka_unit_test_setup_teardown(an_empty_first_line_is_refused, make_dir, drop_dir),
        cmocka_unit_test_setup_teardown(only_regular_files_are_read, make_dir, drop_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
