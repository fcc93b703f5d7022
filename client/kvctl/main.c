/* main.c - kvctl's entry point: reads the options, picks the endpoint
 * (-e, then KVCTL_ENDPOINT, then the default), the token file
 * (--token-file, then KVCTL_TOKEN_FILE) and the mode (one command from the
 * command line, the shell, or batch), and runs the one-command mode
 * itself. The other modes live in shell.c and batch.c. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "batch.h"
#include "cmd.h"
#include "conn.h"
#include "endpoint.h"
#include "exec.h"
#include "mem.h"
#include "out.h"
#include "shell.h"
#include "token.h"
#include "usage.h"

enum { OPT_TIMEOUT = 256, OPT_TOKEN_FILE };

static const struct option long_options[] = {
    { "endpoint", required_argument, NULL, 'e' },
    { "write-out", required_argument, NULL, 'w' },
    { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { "token-file", required_argument, NULL, OPT_TOKEN_FILE },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
};

/* Prints "kvctl: WHAT (see 'kvctl --help')" as one line on stderr and
 * returns the usage exit code. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("kvctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see 'kvctl --help')\n", stderr);
    return KVCTL_EXIT_USAGE;
}

/* Parses SECONDS (decimal, may have a fraction) into *MS. Returns 0 or -1. */
static int parse_timeout(const char *s, int *ms)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 86400 * 24)
        return -1;
    *ms = (int)ceil(v * 1000.0);
    return 0;
}

/* Checks before connecting that PATH holds a token, so that a wrong path is
 * a usage error even when the server is down; the client library reads the
 * file again for each connection, with the same reader (token.h). FROM
 * names where PATH came from. Returns 0, or the usage exit code after
 * printing why. */
static int check_token_file(const char *path, const char *from)
{
    uint8_t token[KV_TOKEN_MAX];
    char err[512];
    size_t n;

    if (kv_token_read(path, token, &n, err, sizeof err) < 0)
        return usage_error("%s: %s", from, err);
    sodium_memzero(token, sizeof token);
    return 0;
}

/* Reads all of FD into B (caller frees B->data). Returns 0 or -1. */
static int read_all(int fd, kvctl_bytes *b)
{
    size_t cap = 64 * 1024;

    b->data = kvctl_mem_alloc(cap + 1);
    b->len = 0;
    for (;;) {
        ssize_t got;
        if (b->len == cap) {
            cap *= 2;
            b->data = kvctl_mem_realloc(b->data, cap + 1);
        }
        got = read(fd, b->data + b->len, cap - b->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -1;
        if (got == 0)
            break;
        b->len += (size_t)got;
    }
    b->data[b->len] = 0;
    return 0;
}

/* Runs the one command in ARGV[0..ARGC) and returns its exit code. */
static int run_one(const kvctl_conf *conf, int argc, char **argv)
{
    kvctl_bytes *words = kvctl_mem_alloc((size_t)argc * sizeof *words);
    kvctl_cmd cmd;
    kvctl_result r, why;
    kvctl_out o;
    kv_client *c;
    char err[512], reason[600];
    int code;

    for (int i = 0; i < argc; i++) {
        words[i].data = (uint8_t *)argv[i];
        words[i].len = strlen(argv[i]);
    }
    code = kvctl_cmd_parse(words, argc, 1, &cmd, err, sizeof err);
    free(words);
    if (code < 0) {
        kvctl_cmd_usage_reason(argv[0], err, 0, reason, sizeof reason);
        fprintf(stderr, "kvctl: %s\n", reason);
        return KVCTL_EXIT_USAGE;
    }
    if (cmd.value_from_stdin) {
        if (isatty(STDIN_FILENO))
            fputs("kvctl: reading the value from standard input; end it with Ctrl-D\n",
                  stderr);
        free(cmd.value.data);
        if (read_all(STDIN_FILENO, &cmd.value) < 0) {
            fprintf(stderr, "kvctl: set: reading standard input: %s\n", strerror(errno));
            kvctl_cmd_clear(&cmd);
            return KVCTL_EXIT_USAGE;
        }
    }

    c = kvctl_conn_open(conf, &why);
    if (c)
        kvctl_exec_run(c, &cmd, &r, 1);
    else
        kvctl_exec_fail(&r, &why);
    kvctl_exec_result_clear(&why);
    kvctl_out_init(&o, conf->format, 0);
    code = kvctl_out_result(&o, &cmd, &r);
    kvctl_exec_result_clear(&r);
    kvctl_cmd_clear(&cmd);
    kv_client_free(c);
    return code;
}

/* Prints the help asked for by "--help" with OPERANDS. */
static int print_help(int argc, char **argv)
{
    const kvctl_cmd_spec *spec;

    if (argc == 0 || strcmp(argv[0], "help") == 0) {
        if (argc < 2) {
            kvctl_usage_print(stdout);
            return KVCTL_EXIT_OK;
        }
        argv++;
    }
    spec = kvctl_cmd_find(argv[0]);
    if (!spec)
        return usage_error("unknown command \"%s\"", argv[0]);
    kvctl_cmd_print_help(spec, 0, stdout);
    return KVCTL_EXIT_OK;
}

int main(int argc, char **argv)
{
    kvctl_conf conf = { .timeout_ms = 5000, .format = KVCTL_FORMAT_SIMPLE };
    const char *env = getenv("KVCTL_ENDPOINT");
    const char *token_env = getenv("KVCTL_TOKEN_FILE");
    const char *token_from = "KVCTL_TOKEN_FILE";
    const char *endpoint_from = "KVCTL_ENDPOINT";
    int help = 0, version = 0, opt, code;

    if (env && *env)
        conf.endpoint = env;
    if (token_env && *token_env)
        conf.token_file = token_env;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":e:w:hV", long_options, NULL)) != -1) {
        switch (opt) {
        case 'e':
            conf.endpoint = optarg;
            endpoint_from = "-e";
            break;
        case 'w':
            if (strcmp(optarg, "simple") == 0)
                conf.format = KVCTL_FORMAT_SIMPLE;
            else if (strcmp(optarg, "json") == 0)
                conf.format = KVCTL_FORMAT_JSON;
            else
                return usage_error("--write-out must be simple or json, not \"%s\"", optarg);
            break;
        case OPT_TIMEOUT:
            if (parse_timeout(optarg, &conf.timeout_ms) < 0)
                return usage_error("--timeout wants a number of seconds, not \"%s\"", optarg);
            break;
        case OPT_TOKEN_FILE:
            if (!*optarg)
                return usage_error("--token-file wants a file name");
            conf.token_file = optarg;
            token_from = "--token-file";
            break;
        case 'h':
            help = 1;
            break;
        case 'V':
            version = 1;
            break;
        case ':':
            return usage_error("option %s needs a value", argv[optind - 1]);
        default: {
            char shortopt[3] = { '-', (char)optopt, 0 };
            return usage_error("unknown option %s; put -- before a KEY or VALUE "
                               "that starts with '-'", optopt ? shortopt : argv[optind - 1]);
        }
        }
    }
    argc -= optind;
    argv += optind;

    if (version) {
        kvctl_usage_version(stdout);
        return KVCTL_EXIT_OK;
    }
    if (help || (argc > 0 && strcmp(argv[0], "help") == 0))
        return print_help(argc, argv);
    if (conf.endpoint && !*conf.endpoint)
        return usage_error("the endpoint is empty");
    if (conf.endpoint) {
        /* Parsed here only to refuse a bad one (say, port 70000) as a
         * usage error before connecting; the library parses it again. */
        kv_endpoint where;
        char err[512];
        if (kv_endpoint_parse(conf.endpoint, KV_DEFAULT_PORT, &where, err, sizeof err) < 0)
            return usage_error("%s: %s", endpoint_from, err);
    }
    if (conf.token_file && check_token_file(conf.token_file, token_from))
        return KVCTL_EXIT_USAGE;

    if (argc > 0)
        code = run_one(&conf, argc, argv);
    else if (isatty(STDIN_FILENO))
        code = kvctl_shell_run(&conf);
    else
        code = kvctl_batch_run(&conf, STDIN_FILENO);

    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "kvctl: writing standard output: %s\n", strerror(errno));
        return code ? code : KVCTL_EXIT_USAGE;
    }
    return code;
}
