/* main.c - kvctl's entry point: reads the options, picks the endpoint
 * (-e, then KVCTL_ENDPOINT, then the default), the token file
 * (--token-file, then KVCTL_TOKEN_FILE), the TLS settings (--tls,
 * --cacert, --cert, --key, --insecure-skip-verify, then the KVCTL_ variable
 * of each file and of the last) and the mode (one command from the
 * command line, the shell, or batch), and runs the one-command mode
 * itself. Options of the command (--prefix, --if-revision...) may sit
 * anywhere on the line too, but for txn, whose words after "txn" are all
 * its own: getopt collects them and hands them to the command's parser
 * (parse.c) with the command's words. The other modes live in shell.c and
 * batch.c. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "batch.h"
#include "backup.h"
#include "cluster.h"
#include "cmd.h"
#include "conn.h"
#include "endpoint.h"
#include "exec.h"
#include "lines.h"
#include "mem.h"
#include "out.h"
#include "shell.h"
#include "token.h"
#include "txn.h"
#include "usage.h"
#include "watch.h"

/* getopt_long's value for kvctl_cmd_options[I] is OPT_COMMAND + I. */
enum {
    OPT_TIMEOUT = 256, OPT_TOKEN_FILE, OPT_TLS, OPT_CACERT, OPT_CERT, OPT_KEY, OPT_INSECURE,
    OPT_COMMAND = 512
};

static const struct option global_options[] = {
    { "endpoint", required_argument, NULL, 'e' },
    { "write-out", required_argument, NULL, 'w' },
    { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { "token-file", required_argument, NULL, OPT_TOKEN_FILE },
    { "tls", no_argument, NULL, OPT_TLS },
    { "cacert", required_argument, NULL, OPT_CACERT },
    { "cert", required_argument, NULL, OPT_CERT },
    { "key", required_argument, NULL, OPT_KEY },
    { "insecure-skip-verify", no_argument, NULL, OPT_INSECURE },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
};

/* The options getopt_long knows: the global ones, then the commands'.
 * Returns a malloc'd array, ended by a zeroed row. */
static struct option *all_options(void)
{
    size_t g = sizeof global_options / sizeof global_options[0], n = 0;
    struct option *v;

    while (kvctl_cmd_options[n].name)
        n++;
    v = kvctl_mem_alloc((g + n + 1) * sizeof *v);
    memcpy(v, global_options, sizeof global_options);
    for (size_t i = 0; i < n; i++)
        v[g + i] = (struct option){ kvctl_cmd_options[i].name,
                                    kvctl_cmd_options[i].has_arg ? required_argument
                                                                 : no_argument,
                                    NULL, OPT_COMMAND + (int)i };
    memset(&v[g + n], 0, sizeof v[g + n]);
    return v;
}

/* The command options met on the command line, as words for the
 * command's parser: "--limit" and its value, in the order given. */
typedef struct opt_words {
    kvctl_bytes *w;
    int n;
} opt_words;

static void opt_words_add(opt_words *o, const char *text)
{
    o->w = kvctl_mem_realloc(o->w, (size_t)(o->n + 1) * sizeof *o->w);
    kvctl_mem_bytes(&o->w[o->n++], text, strlen(text));
}

static void opt_words_free(opt_words *o)
{
    for (int i = 0; i < o->n; i++)
        free(o->w[i].data);
    free(o->w);
}

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

/* Parses each endpoint of the comma-separated LIST, only to refuse a bad
 * one (say, port 70000, or an empty item) as a usage error before
 * connecting; the library parses them again. FROM names where LIST came
 * from. Returns 0, or the usage exit code after printing why. */
static int check_endpoints(const char *list, const char *from)
{
    for (const char *s = list;; s++) {
        size_t len = strcspn(s, ",");
        char one[512], err[512];
        kv_endpoint where;
        if (len == 0 || len >= sizeof one)
            return usage_error("%s: %s endpoint in \"%s\"", from,
                               len ? "an overlong" : "an empty", list);
        memcpy(one, s, len);
        one[len] = 0;
        if (kv_endpoint_parse(one, KV_DEFAULT_PORT, &where, err, sizeof err) < 0)
            return usage_error("%s: %s", from, err);
        s += len;
        if (!*s)
            return 0;
    }
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

/* Checks before connecting that the TLS files of CONF can be read, and
 * that a client certificate comes with its key, so that a wrong path is a
 * usage error even when the server is down; the library loads them (a
 * file that opens but does not hold PEM fails the connect). Returns 0, or
 * the usage exit code after printing why. */
static int check_tls(const kvctl_conf *conf, const char *const from[3])
{
    const char *files[3] = { conf->cacert, conf->cert, conf->key };

    if (!conf->cert != !conf->key)
        return usage_error("%s needs %s too", conf->cert ? from[1] : from[2],
                           conf->cert ? "--key" : "--cert");
    for (int i = 0; i < 3; i++) {
        FILE *f = files[i] ? fopen(files[i], "r") : NULL;
        if (files[i] && !f)
            return usage_error("%s: cannot open %s: %s", from[i], files[i], strerror(errno));
        if (f)
            fclose(f);
    }
    return 0;
}

/* Prints "kvctl: ERR (see 'kvctl NAME --help')" and returns the usage
 * exit code. */
static int command_usage_error(const char *name, const char *err)
{
    char reason[700];

    kvctl_cmd_usage_reason(name, err, 0, reason, sizeof reason);
    fprintf(stderr, "kvctl: %s\n", reason);
    return KVCTL_EXIT_USAGE;
}

/* Reads the txn of CMD from standard input. Returns 0, or the usage exit
 * code after printing why. */
static int read_txn(kvctl_cmd *cmd)
{
    kvctl_bytes text;
    char err[512];
    int rc;

    if (isatty(STDIN_FILENO))
        fputs("kvctl: reading the transaction from standard input; end it with Ctrl-D\n",
              stderr);
    if (kvctl_read_all(STDIN_FILENO, &text) < 0) {
        fprintf(stderr, "kvctl: txn: reading standard input: %s\n", strerror(errno));
        free(text.data);
        return KVCTL_EXIT_USAGE;
    }
    rc = kvctl_txn_parse_text(text.data, text.len, &cmd->txn, err, sizeof err);
    free(text.data);
    return rc < 0 ? command_usage_error("txn", err) : 0;
}

/* Runs the one command in ARGV[0..ARGC), with the command options OPTS
 * met among them, and returns its exit code. */
static int run_one(const kvctl_conf *conf, int argc, char **argv, const opt_words *opts)
{
    const kvctl_cmd_spec *spec = kvctl_cmd_find(argv[0]);
    kvctl_bytes *words = kvctl_mem_alloc((size_t)(argc + opts->n + 1) * sizeof *words);
    int n = 0;
    kvctl_cmd cmd;
    kvctl_result r, why;
    kvctl_out o;
    kv_client *c;
    char err[512];
    int code;

    if (spec && !spec->opts && opts->n) {
        snprintf(err, sizeof err, "%s: %s is not an option of %s", spec->name,
                 (const char *)opts->w[0].data, spec->name);
        free(words);
        return command_usage_error(spec->name, err);
    }
    /* The command, its options, then "--" so that no argument is taken
     * for an option again: getopt has sorted them already. */
    words[n++] = (kvctl_bytes){ (uint8_t *)argv[0], strlen(argv[0]) };
    for (int i = 0; i < opts->n; i++)
        words[n++] = opts->w[i];
    if (spec && spec->opts)
        words[n++] = (kvctl_bytes){ (uint8_t *)"--", 2 };
    for (int i = 1; i < argc; i++)
        words[n++] = (kvctl_bytes){ (uint8_t *)argv[i], strlen(argv[i]) };
    code = kvctl_cmd_parse(words, n, 1, &cmd, err, sizeof err);
    free(words);
    if (code < 0)
        return command_usage_error(argv[0], err);
    if (cmd.txn_from_stdin && (code = read_txn(&cmd)) != 0) {
        kvctl_cmd_clear(&cmd);
        return code;
    }
    if (cmd.value_from_stdin) {
        if (isatty(STDIN_FILENO))
            fputs("kvctl: reading the value from standard input; end it with Ctrl-D\n",
                  stderr);
        free(cmd.value.data);
        if (kvctl_read_all(STDIN_FILENO, &cmd.value) < 0) {
            fprintf(stderr, "kvctl: set: reading standard input: %s\n", strerror(errno));
            kvctl_cmd_clear(&cmd);
            return KVCTL_EXIT_USAGE;
        }
    }

    kvctl_out_init(&o, conf->format, 0);
    if (cmd.op == KVCTL_OP_OWN) {
        /* Its connections are its own (cluster status: one per node). */
        code = cmd.run(conf, &cmd, &o);
        kvctl_cmd_clear(&cmd);
        return code;
    }
    c = kvctl_conn_open(conf, &why);
    if (c && cmd.op == KVCTL_OP_WATCH)
        kvctl_watch_run(c, &cmd, &o, 0, &r);
    else if (c)
        kvctl_exec_run(c, &cmd, &r, 1, &(kvctl_exec_hooks){ &o, kvctl_out_page, NULL });
    else
        kvctl_exec_fail(&r, &why);
    kvctl_exec_result_clear(&why);
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

/* What the options said beyond the run's kvctl_conf. */
typedef struct run_opts {
    int help, version;
    const char *endpoint_from;  /* where conf.endpoint came from, for errors */
    const char *token_from;     /* where conf.token_file came from */
    const char *tls_from[3];    /* where conf.cacert, cert and key came from */
    opt_words words;            /* the command options met */
} run_opts;

/* Takes the option getopt_long() returned as OPT into CONF and RO.
 * Returns 0, or the usage exit code after printing why. */
static int take_option(int opt, char **argv, kvctl_conf *conf, run_opts *ro)
{
    switch (opt) {
    case 'e':
        conf->endpoint = optarg;
        ro->endpoint_from = "-e";
        return 0;
    case 'w':
        if (strcmp(optarg, "simple") == 0)
            conf->format = KVCTL_FORMAT_SIMPLE;
        else if (strcmp(optarg, "json") == 0)
            conf->format = KVCTL_FORMAT_JSON;
        else if (strcmp(optarg, "table") == 0)
            conf->format = KVCTL_FORMAT_TABLE;
        else
            return usage_error("--write-out must be simple, json or table, not \"%s\"", optarg);
        return 0;
    case OPT_TIMEOUT:
        if (parse_timeout(optarg, &conf->timeout_ms) < 0)
            return usage_error("--timeout wants a number of seconds, not \"%s\"", optarg);
        return 0;
    case OPT_TOKEN_FILE:
        if (!*optarg)
            return usage_error("--token-file wants a file name");
        conf->token_file = optarg;
        ro->token_from = "--token-file";
        return 0;
    case OPT_TLS:
        conf->tls = 1;
        return 0;
    case OPT_CACERT:
    case OPT_CERT:
    case OPT_KEY: {
        static const char *const flags[] = { "--cacert", "--cert", "--key" };
        const char **file = opt == OPT_CACERT ? &conf->cacert
                            : opt == OPT_CERT ? &conf->cert : &conf->key;
        if (!*optarg)
            return usage_error("%s wants a file name", flags[opt - OPT_CACERT]);
        *file = optarg;
        ro->tls_from[opt - OPT_CACERT] = flags[opt - OPT_CACERT];
        return 0;
    }
    case OPT_INSECURE:
        conf->insecure_skip_verify = 1;
        return 0;
    case 'h':
        ro->help = 1;
        return 0;
    case 'V':
        ro->version = 1;
        return 0;
    case ':':
        return usage_error("option %s needs a value", argv[optind - 1]);
    case '?': {
        char shortopt[3] = { '-', (char)optopt, 0 };
        /* getopt_long sets optopt for a long option only when it was
         * given a value it does not take ("--prefix=x"). */
        if (optopt && strncmp(argv[optind - 1], "--", 2) == 0)
            return usage_error("option %s: %.*s takes no value", argv[optind - 1],
                               (int)strcspn(argv[optind - 1], "="), argv[optind - 1]);
        return usage_error("unknown option %s; put -- before a KEY or VALUE "
                           "that starts with '-'", optopt ? shortopt : argv[optind - 1]);
    }
    default: {
        char word[64];
        snprintf(word, sizeof word, "--%s", kvctl_cmd_options[opt - OPT_COMMAND].name);
        opt_words_add(&ro->words, word);
        if (optarg)
            opt_words_add(&ro->words, optarg);
        return 0;
    }
    }
}

/* Whether the long option WORD ("--name" or "--name=value") names one of
 * LONG_OPTIONS exactly. getopt_long() also takes a unique prefix ("--pre"
 * for --prefix), which the parser of shell and batch lines (parse.c) does
 * not: kvctl takes whole names only, the same on every path. */
static int long_option_exact(const struct option *long_options, const char *word)
{
    size_t n = strcspn(word + 2, "=");

    for (const struct option *o = long_options; o->name; o++)
        if (strlen(o->name) == n && strncmp(o->name, word + 2, n) == 0)
            return 1;
    return 0;
}

/* Reads the options of ARGV into CONF and RO and its operands, in order,
 * into OPERANDS (room for ARGC), *N of them. Options may sit anywhere
 * among the operands, until "--" or the operand "txn": a transaction's
 * words are all txn.c's, "--" and words that look like options included,
 * as on a batch line. Returns 0, or the usage exit code after printing
 * why. */
static int read_options(int argc, char **argv, kvctl_conf *conf, run_opts *ro,
                        char **operands, int *n)
{
    struct option *long_options = all_options();
    int code = 0;

    opterr = 0;
    *n = 0;
    /* "+": getopt_long() stops at the first operand instead of moving the
     * operands to the end; the loop takes each operand and goes on. */
    while (!code && optind < argc) {
        const char *w = argv[optind];

        if (*n > 0 && strcmp(operands[0], "txn") == 0) {
            operands[(*n)++] = argv[optind++];
        } else if (strcmp(w, "--") == 0) {
            optind++;
            while (optind < argc)
                operands[(*n)++] = argv[optind++];
        } else if (w[0] != '-' || w[1] == 0) {
            operands[(*n)++] = argv[optind++];
        } else if (w[1] == '-' && !long_option_exact(long_options, w)) {
            code = usage_error("unknown option %s; put -- before a KEY or VALUE that "
                               "starts with '-'", w);
        } else {
            int opt = getopt_long(argc, argv, "+:e:w:hV", long_options, NULL);
            if (opt == -1)      /* not an option after all: never stall here */
                operands[(*n)++] = argv[optind++];
            else
                code = take_option(opt, argv, conf, ro);
        }
    }
    free(long_options);
    return code;
}

/* Runs what the options RO and the operands ARGV[0..ARGC) ask for: help,
 * the version, one command, the shell or a batch. Returns the exit code. */
static int run(const kvctl_conf *conf, const run_opts *ro, int argc, char **argv)
{
    if (ro->version) {
        kvctl_usage_version(stdout);
        return KVCTL_EXIT_OK;
    }
    if (ro->help || (argc > 0 && strcmp(argv[0], "help") == 0))
        return print_help(argc, argv);
    /* The words after txn are its own, but no transaction starts with
     * these: "kvctl txn --help" is help, as for the other commands. */
    if (argc > 1 && strcmp(argv[0], "txn") == 0
        && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return print_help(1, argv);
    if (conf->endpoint && !*conf->endpoint)
        return usage_error("the endpoint is empty");
    if (conf->endpoint && check_endpoints(conf->endpoint, ro->endpoint_from))
        return KVCTL_EXIT_USAGE;
    if (conf->token_file && check_token_file(conf->token_file, ro->token_from))
        return KVCTL_EXIT_USAGE;
    if (check_tls(conf, ro->tls_from))
        return KVCTL_EXIT_USAGE;
    if (argc == 0 && ro->words.n)
        return usage_error("%s is an option of a command; name the command",
                           (const char *)ro->words.w[0].data);
    if (argc > 0)
        return run_one(conf, argc, argv, &ro->words);
    if (isatty(STDIN_FILENO))
        return kvctl_shell_run(conf);
    return kvctl_batch_run(conf, STDIN_FILENO);
}

/* The value of the environment variable NAME, or NULL when unset or
 * empty. */
static const char *env_value(const char *name)
{
    const char *v = getenv(name);

    return v && *v ? v : NULL;
}

/* Reads KVCTL_INSECURE_SKIP_VERIFY into *ON: unset, empty, 0, false or no
 * is off; 1, true or yes is on. Returns 0, or the usage exit code after
 * printing why. */
static int env_insecure(int *on)
{
    static const char *const yes[] = { "1", "true", "yes" }, *const no[] = { "0", "false", "no" };
    const char *v = env_value("KVCTL_INSECURE_SKIP_VERIFY");

    for (size_t i = 0; v && i < sizeof yes / sizeof *yes; i++) {
        if (strcmp(v, yes[i]) == 0)
            *on = 1;
        if (strcmp(v, yes[i]) == 0 || strcmp(v, no[i]) == 0)
            return 0;
    }
    return v ? usage_error("KVCTL_INSECURE_SKIP_VERIFY must be 1, true, yes, 0, false or no, "
                           "not \"%s\"", v) : 0;
}

int main(int argc, char **argv)
{
    kvctl_conf conf = { .timeout_ms = 5000, .format = KVCTL_FORMAT_SIMPLE };
    run_opts ro = { .endpoint_from = "KVCTL_ENDPOINT", .token_from = "KVCTL_TOKEN_FILE",
                    .tls_from = { "KVCTL_CACERT", "KVCTL_CERT", "KVCTL_KEY" } };
    char **operands = kvctl_mem_alloc((size_t)argc * sizeof *operands);
    int code, n;

    conf.endpoint = env_value("KVCTL_ENDPOINT");
    conf.token_file = env_value("KVCTL_TOKEN_FILE");
    conf.cacert = env_value("KVCTL_CACERT");
    conf.cert = env_value("KVCTL_CERT");
    conf.key = env_value("KVCTL_KEY");
    code = env_insecure(&conf.insecure_skip_verify);
    if (!code)
        code = read_options(argc, argv, &conf, &ro, operands, &n);
    /* Any TLS setting asks for TLS; --key alone is check_tls()'s error. */
    conf.tls |= conf.cacert || conf.cert || conf.insecure_skip_verify;
    if (!code)
        code = run(&conf, &ro, n, operands);
    free(operands);
    opt_words_free(&ro.words);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "kvctl: writing standard output: %s\n", strerror(errno));
        return code ? code : KVCTL_EXIT_USAGE;
    }
    return code;
}
