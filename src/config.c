/* config.c - kvstored's settings (config.h): one table of names, one
 * function that checks and applies a (name, value) pair for both the
 * command line and the --config file (read with Debian's libinih), and
 * --print-config. Starting the server is main.c's. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "endpoint.h"
#include "listen.h"
#include "size.h"
#include "utf8.h"

/* --idle-timeout, when not 0 (never): below 10 ms a client on a real network
 * cannot send a request before it is judged idle; past a year it means never,
 * which 0 says plainly. */
#define IDLE_TIMEOUT_MIN 0.01
#define IDLE_TIMEOUT_MAX 31536000.0
/* The smallest --lmdb-map-size: LMDB keeps pages aside for its own
 * bookkeeping at commit (engine_lmdb.c keeps at least 32), so a smaller map
 * takes few Sets or none (measured, small keys and values: 128K none, 192K
 * about 1,100, 1M about 31,000). */
#define MIN_MAP_BYTES ((uint64_t)1 << 20)
/* The section a file may put its settings under (or none). */
#define SECTION "kvstored"

/* The settings, in --help's order; getopt_long's val is the short flag or
 * SETTING_VAL + the index. A yes/no setting (BOOLEAN) is a flag alone on
 * the command line ("--tls-only" says yes; "--tls-only=no" is allowed) and
 * "name = yes|no" in the file; the others take a value everywhere. */
enum { SETTING_VAL = 256, OPT_CONFIG = 512, OPT_PRINT_CONFIG, OPT_RESTORE, OPT_FORCE };
enum { VALUED = 0, BOOLEAN = 1 };
static const struct { const char *name; int short_flag; int kind; } settings[] = {
    { "listen", 'l', VALUED }, { "engine", 'e', VALUED }, { "dir", 'd', VALUED },
    { "sync", 0, VALUED }, { "sync-interval-ms", 0, VALUED }, { "lmdb-map-size", 0, VALUED },
    { "max-frame-bytes", 0, VALUED }, { "max-key-bytes", 0, VALUED },
    { "max-value-bytes", 0, VALUED }, { "max-memory-bytes", 0, VALUED },
    { "max-clients", 0, VALUED }, { "max-input-bytes", 0, VALUED },
    { "max-output-bytes", 0, VALUED }, { "idle-timeout", 0, VALUED },
    { "watch-history", 0, VALUED }, { "auth-token-file", 0, VALUED }, { "tls-cert", 0, VALUED },
    { "tls-key", 0, VALUED }, { "tls-client-ca", 0, VALUED }, { "tls-peer-ca", 0, VALUED },
    { "tls-only", 0, BOOLEAN },
    { "plain-listen", 0, VALUED }, { "metrics-listen", 0, VALUED },
    { "metrics-tls", 0, BOOLEAN }, { "slowlog-us", 0, VALUED },
    { "slowlog-max-len", 0, VALUED }, { "log-level", 0, VALUED }, { "log-format", 0, VALUED },
    { "log-file", 0, VALUED }, { "node-id", 0, VALUED }, { "cluster-dir", 0, VALUED },
    { "raft-listen", 0, VALUED }, { "initial-cluster", 0, VALUED }, { "join", 0, VALUED },
    { "snapshot-threshold", 0, VALUED }, { "election-timeout-ms", 0, VALUED },
    { "dedup-window", 0, VALUED },
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

/* Returns the index of the setting called NAME, or -1. */
static int setting_find(const char *name)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strcmp(settings[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void settings_init(kv_settings *s)
{
    *s = (kv_settings){
        .server = {
            .listen = KV_DEFAULT_LISTEN,
            .max_frame_bytes = KV_DEFAULT_MAX_FRAME_BYTES,
            .max_clients = KV_DEFAULT_MAX_CLIENTS,
            .idle_timeout = KV_DEFAULT_IDLE_TIMEOUT,
            .input_budget = KV_DEFAULT_INPUT_BUDGET,
            .output_budget = KV_DEFAULT_OUTPUT_BUDGET,
            .limits = { KV_DEFAULT_MAX_KEY_BYTES, KV_DEFAULT_MAX_VALUE_BYTES, 0, 0 },
            .watch_history = KV_WATCH_DEFAULT_HISTORY,
            .slowlog_us = KV_SLOWLOG_DEFAULT_US,
            .slowlog_max_len = KV_SLOWLOG_DEFAULT_LEN,
            .metrics_tls = 1,
        },
        .cluster = {
            .snapshot_threshold = KV_CLUSTER_DEFAULT_SNAPSHOT_THRESHOLD,
            .snapshot_trailing = KV_CLUSTER_DEFAULT_SNAPSHOT_TRAILING,
            .election_ms = KV_CLUSTER_DEFAULT_ELECTION_MS,
            .dedup_window = KV_DEDUP_DEFAULT_ENTRIES,
        },
        .engine = { .sync = KV_SYNC_ALWAYS, .sync_interval_ms = KV_DEFAULT_SYNC_INTERVAL_MS,
                    .map_bytes = KV_LMDB_DEFAULT_MAP_BYTES },
        .engine_name = "memory",
        .log_level = KV_LOG_INFO,
        .log_format = KV_LOG_TEXT,
    };
}

/* Parses a size from MIN to MAX into *OUT. Returns 0, or -1 with the
 * reason in ERR. */
static int parse_size(const char *v, uint64_t min, uint64_t max, uint64_t *out,
                      char *err, size_t errlen)
{
    if (kv_size_parse(v, max, out) < 0 || *out < min) {
        snprintf(err, errlen, "\"%s\" is not a size between %llu and %llu", v,
                 (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    return 0;
}

/* Parses yes or no into *OUT (1 or 0). Returns 0, or -1 with the reason
 * in ERR. */
static int parse_yes_no(const char *v, int *out, char *err, size_t errlen)
{
    if (!strcmp(v, "yes") || !strcmp(v, "no")) {
        *out = v[0] == 'y';
        return 0;
    }
    snprintf(err, errlen, "\"%s\" is not yes or no", v);
    return -1;
}

/* Parses an --idle-timeout: 0, or a finite number of seconds from
 * IDLE_TIMEOUT_MIN to IDLE_TIMEOUT_MAX. A digit first, as for sizes, which
 * keeps out blanks and signs, and "nan" and "inf", which would mean never.
 * Returns 0 or -1. */
static int parse_idle_timeout(const char *s, double *out)
{
    char *end;
    double v;

    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || (v != 0 && (v < IDLE_TIMEOUT_MIN || v > IDLE_TIMEOUT_MAX)))
        return -1;
    *out = v;
    return 0;
}

/* Checks VALUE for the setting at index I and stores it in S: the one rule
 * for a flag and for a line of the file. VALUE must outlive S. Returns 0,
 * or -1 with the reason in ERR, without the setting's name. */
static int setting_apply(kv_settings *s, size_t i, const char *v, char *err, size_t errlen)
{
    const char *name = settings[i].name;
    kv_endpoint where;
    uint64_t n;
    int bad;

#define SIZE(min, max, dst) \
    do { \
        if (parse_size(v, (min), (max), &n, err, errlen) < 0) \
            return -1; \
        (dst) = n; \
    } while (0)
#define PATH(dst) \
    do { \
        if (!*v) { \
            snprintf(err, errlen, "needs a path"); \
            return -1; \
        } \
        (dst) = v; \
    } while (0)

    if (!strcmp(name, "listen")) {
        /* Checked here so a bad address is a usage error (2), found before
         * the engine opens; the server parses it the same way. */
        if (kv_endpoint_parse(v, -1, &where, err, errlen) < 0)
            return -1;
        s->server.listen = v;
    } else if (!strcmp(name, "engine")) {
        if (!kv_engine_known(v)) {
            snprintf(err, errlen, "\"%s\" is not an engine (have: %s)", v, kv_engine_names());
            return -1;
        }
        s->engine_name = v;
    } else if (!strcmp(name, "dir")) {
        PATH(s->dir);
    } else if (!strcmp(name, "sync")) {
        if (kv_sync_mode_parse(v, &s->engine.sync) < 0) {
            snprintf(err, errlen, "\"%s\" is not always, batch or none", v);
            return -1;
        }
    } else if (!strcmp(name, "sync-interval-ms")) {
        char *end;
        errno = 0;
        unsigned long ms = strtoul(v, &end, 10);
        if (errno || !isdigit((unsigned char)v[0]) || *end || ms < 1 || ms > 3600000) {
            snprintf(err, errlen, "\"%s\" is not a number of milliseconds between 1 and 3600000", v);
            return -1;
        }
        s->engine.sync_interval_ms = (uint32_t)ms;
    } else if (!strcmp(name, "lmdb-map-size")) {
        SIZE(MIN_MAP_BYTES, (uint64_t)1 << 46, s->engine.map_bytes);
    } else if (!strcmp(name, "max-frame-bytes")) {
        SIZE(1, UINT32_MAX, s->server.max_frame_bytes);
    } else if (!strcmp(name, "max-key-bytes")) {
        SIZE(1, UINT32_MAX, s->server.limits.max_key_bytes);
        s->key_limit_set = 1;
    } else if (!strcmp(name, "max-value-bytes")) {
        SIZE(0, UINT32_MAX, s->server.limits.max_value_bytes);
    } else if (!strcmp(name, "max-memory-bytes")) {
        SIZE(0, UINT64_MAX, s->server.limits.max_memory_bytes);
    } else if (!strcmp(name, "max-clients")) {
        SIZE(1, 1000000, s->server.max_clients);
    } else if (!strcmp(name, "max-input-bytes")) {
        SIZE(65536, SIZE_MAX, s->server.input_budget);
    } else if (!strcmp(name, "max-output-bytes")) {
        SIZE(65536, SIZE_MAX, s->server.output_budget);
    } else if (!strcmp(name, "idle-timeout")) {
        if (parse_idle_timeout(v, &s->server.idle_timeout) < 0) {
            snprintf(err, errlen, "\"%s\" is not 0 or a number of seconds between %g and %.0f",
                     v, IDLE_TIMEOUT_MIN, IDLE_TIMEOUT_MAX);
            return -1;
        }
    } else if (!strcmp(name, "watch-history")) {
        SIZE(0, 10000000, s->server.watch_history);
    } else if (!strcmp(name, "auth-token-file")) {
        PATH(s->token_file);
    } else if (!strcmp(name, "tls-cert")) {
        PATH(s->server.tls.cert);
    } else if (!strcmp(name, "tls-key")) {
        PATH(s->server.tls.key);
    } else if (!strcmp(name, "tls-client-ca")) {
        PATH(s->server.tls.client_ca);
    } else if (!strcmp(name, "tls-peer-ca")) {
        PATH(s->server.tls.peer_ca);
    } else if (!strcmp(name, "tls-only")) {
        return parse_yes_no(v, &s->server.tls_only, err, errlen);
    } else if (!strcmp(name, "plain-listen")) {
        /* Plaintext beside TLS only where no one else can listen in. */
        if (kv_endpoint_parse(v, -1, &where, err, errlen) < 0)
            return -1;
        if (!kv_listen_is_loopback(&where)) {
            snprintf(err, errlen, "\"%s\" is not a loopback address (127.0.0.0/8, [::1] or "
                     "localhost): plaintext is served on loopback only", v);
            return -1;
        }
        s->server.plain_listen = v;
    } else if (!strcmp(name, "metrics-listen")) {
        if (kv_endpoint_parse(v, -1, &where, err, errlen) < 0)
            return -1;
        s->server.metrics_listen = v;
    } else if (!strcmp(name, "metrics-tls")) {
        return parse_yes_no(v, &s->server.metrics_tls, err, errlen);
    } else if (!strcmp(name, "slowlog-us")) {
        SIZE(0, 3600000000u, s->server.slowlog_us);
    } else if (!strcmp(name, "slowlog-max-len")) {
        SIZE(0, 1000000, s->server.slowlog_max_len);
    } else if (!strcmp(name, "log-level")) {
        if (kv_log_level_parse(v, &s->log_level) < 0) {
            snprintf(err, errlen, "\"%s\" is not error, warn, info or debug", v);
            return -1;
        }
    } else if (!strcmp(name, "log-format")) {
        if (kv_log_format_parse(v, &s->log_format) < 0) {
            snprintf(err, errlen, "\"%s\" is not text or json", v);
            return -1;
        }
    } else if (!strcmp(name, "log-file")) {
        PATH(s->log_file);
    } else if (!strcmp(name, "node-id")) {
        SIZE(1, UINT64_MAX >> 1, s->cluster.node_id);
    } else if (!strcmp(name, "cluster-dir")) {
        PATH(s->cluster.dir);
    } else if (!strcmp(name, "raft-listen")) {
        if (kv_endpoint_parse(v, -1, &where, err, errlen) < 0)
            return -1;
        if (!where.port) {
            snprintf(err, errlen, "needs HOST:PORT with a port other than 0");
            return -1;
        }
        s->cluster.raft_listen = v;
    } else if (!strcmp(name, "initial-cluster")) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        bad = kv_cluster_parse_initial(v, &conf, err, errlen) < 0;
        raft_configuration_close(&conf);
        if (bad) {
            /* The cluster's reason names the flag; ours adds the name. */
            static const char flag[] = "--initial-cluster: ";
            if (!strncmp(err, flag, sizeof flag - 1))
                memmove(err, err + sizeof flag - 1, strlen(err + sizeof flag - 1) + 1);
            return -1;
        }
        s->cluster.initial = v;
    } else if (!strcmp(name, "join")) {
        if (kv_endpoint_parse(v, -1, &where, err, errlen) < 0)
            return -1;
        s->cluster.join = v;
    } else if (!strcmp(name, "snapshot-threshold")) {
        SIZE(64, 1u << 30, s->cluster.snapshot_threshold);
        s->cluster.snapshot_trailing = s->cluster.snapshot_threshold / 4;
    } else if (!strcmp(name, "election-timeout-ms")) {
        SIZE(100, 60000, s->cluster.election_ms);
    } else if (!strcmp(name, "dedup-window")) {
        SIZE(1, 100000000, s->cluster.dedup_window);
    }
#undef SIZE
#undef PATH
    return 0;
}

/* The settings checked against each other, once all are in. Returns 0, or
 * -1 with the reason in ERR. */
static int settings_check(kv_settings *s, char *err, size_t errlen)
{
    const kv_cluster_config *c = &s->cluster;

    /* The memory engine keeps no files: a --dir given with it would be
     * ignored, and data its user meant to keep lost on exit. */
    if (s->dir && strcmp(s->engine_name, "memory") == 0) {
        snprintf(err, errlen, "--dir: engine memory keeps no files; give --engine lmdb "
                 "to keep the data in %s", s->dir);
        return -1;
    }
    int clustered = c->node_id || c->dir || c->raft_listen || c->initial || c->join;
    if (clustered && (!c->node_id || !c->dir || !c->raft_listen)) {
        snprintf(err, errlen, "a cluster member needs all of --node-id, --cluster-dir and "
                 "--raft-listen");
        return -1;
    }
    if (c->initial && c->join) {
        snprintf(err, errlen, "--initial-cluster starts a new cluster, --join joins a "
                 "running one: give one of them");
        return -1;
    }
    const kv_tls_config *tls = &s->server.tls;
    if (!tls->cert != !tls->key) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together: give both");
        return -1;
    }
    if (tls->client_ca && !tls->cert) {
        snprintf(err, errlen, "--tls-client-ca needs --tls-cert and --tls-key");
        return -1;
    }
    if (s->server.tls_only && !tls->cert) {
        snprintf(err, errlen, "--tls-only needs --tls-cert and --tls-key");
        return -1;
    }
    if (s->server.tls_only && s->server.metrics_listen && !s->server.metrics_tls) {
        snprintf(err, errlen, "--metrics-tls=no serves /metrics in plaintext, --tls-only "
                 "refuses it: give one of them");
        return -1;
    }
    if (s->server.plain_listen && s->server.tls_only) {
        snprintf(err, errlen, "--plain-listen serves plaintext, --tls-only refuses it: give "
                 "one of them");
        return -1;
    }
    /* Without TLS, --listen is the plaintext listener already. */
    if (s->server.plain_listen && !tls->cert) {
        snprintf(err, errlen, "--plain-listen needs --tls-cert and --tls-key (without them "
                 "--listen is plaintext)");
        return -1;
    }
    if (tls->peer_ca && !clustered) {
        snprintf(err, errlen, "--tls-peer-ca is for a cluster member's calls to the others");
        return -1;
    }
    if (tls->peer_ca && !tls->cert) {
        snprintf(err, errlen, "--tls-peer-ca needs --tls-cert and --tls-key");
        return -1;
    }
    /* A member calls the others' client ports (--join, its address told
     * to the leader) with the certificate it serves with. */
    s->cluster.tls = *tls;
    s->cluster.token_file = s->token_file;
    if (s->force && !s->restore) {
        snprintf(err, errlen, "--force goes with --restore FILE");
        return -1;
    }
    if (s->restore && clustered) {
        snprintf(err, errlen, "--restore: a cluster member's state is its raft log's; restore "
                 "into a single server, then start a cluster from its data");
        return -1;
    }
    s->cluster.heartbeat_ms = s->cluster.election_ms / 10;
    return 0;
}

/* The --config file's reader: where it is, the names it has set (a name
 * twice is refused, as it is ambiguous which one was meant), and the first
 * error. */
typedef struct file_reader {
    kv_settings *s;
    FILE *f;
    int line;                       /* the line being parsed */
    int set_on[N_SETTINGS];         /* the line that set each, or 0 */
    int error_line;                 /* the first refused line, or 0 */
    char err[600];                  /* why, when error_line */
} file_reader;

/* The file's values, one per name (a name is set once): the settings point
 * at them until exit, when they are freed. */
static char *file_values[N_SETTINGS];

static void file_values_free(void)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        free(file_values[i]);
}

/* libinih's line reader: fgets that counts lines, and stops the parse at
 * a line longer than libinih's buffer (which it would cut in two) or once
 * a line was refused. */
static char *file_read_line(char *buf, int size, void *arg)
{
    file_reader *r = arg;
    int c;

    if (r->error_line || !fgets(buf, size, r->f))
        return NULL;
    r->line++;
    size_t len = strlen(buf);
    if (len == (size_t)size - 1 && buf[len - 1] != '\n' && (c = getc(r->f)) != EOF) {
        ungetc(c, r->f);
        r->error_line = r->line;
        snprintf(r->err, sizeof r->err, "longer than %d bytes", size - 2);
        return NULL;
    }
    return buf;
}

/* libinih's handler: one "name = value" line. Returns 1 (go on) or 0. */
static int file_setting(void *arg, const char *section, const char *name, const char *value)
{
    file_reader *r = arg;
    char why[512];
    int i;

    if (r->error_line)
        return 0;
    if (section[0] && strcmp(section, SECTION) != 0) {
        snprintf(r->err, sizeof r->err, "unknown section [%s]: settings go before any section "
                 "or under [" SECTION "]", section);
    } else if ((i = setting_find(name)) < 0) {
        snprintf(r->err, sizeof r->err, "unknown setting \"%s\"", name);
    } else if (r->set_on[i]) {
        snprintf(r->err, sizeof r->err, "%s: set again (first on line %d)", name, r->set_on[i]);
    } else {
        char *copy = strdup(value);
        if (!copy) {
            snprintf(r->err, sizeof r->err, "out of memory");
        } else if (setting_apply(r->s, (size_t)i, copy, why, sizeof why) < 0) {
            free(copy);
            snprintf(r->err, sizeof r->err, "%s: %s", name, why);
        } else {
            file_values[i] = copy;
            r->set_on[i] = r->line;
            return 1;
        }
    }
    r->error_line = r->line;
    return 0;
}

/* Applies the file at PATH to S. Returns 0, or -1 after one line on stderr
 * naming the file (and the line). */
static int settings_read_file(kv_settings *s, const char *path)
{
    file_reader r = { .s = s };
    int at;

    atexit(file_values_free);
    r.f = fopen(path, "r");
    if (!r.f) {
        fprintf(stderr, "kvstored: --config: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    at = ini_parse_stream(file_read_line, &r, file_setting, &r);
    if (!r.error_line && at == 0 && ferror(r.f)) {
        fprintf(stderr, "kvstored: --config: cannot read %s: %s\n", path, strerror(errno));
        fclose(r.f);
        return -1;
    }
    fclose(r.f);
    if (r.error_line) {
        fprintf(stderr, "kvstored: %s:%d: %s\n", path, r.error_line, r.err);
        return -1;
    }
    if (at) {
        fprintf(stderr, "kvstored: %s:%d: not a \"name = value\" line, a [" SECTION "] "
                "section or a comment\n", path, at);
        return -1;
    }
    return 0;
}

int kv_settings_load(kv_settings *s, int argc, char **argv)
{
    struct option opts[N_SETTINGS + 7];
    char shorts[2 * N_SETTINGS + 4] = "", err[600];
    const char *config = NULL, *restore = NULL;
    int print = 0, force = 0, opt;
    size_t n = 0, k = 0;
    /* The flags' settings as given: index and value, applied after the
     * file so that they win. */
    size_t *given = malloc(sizeof *given * (size_t)argc);
    const char **given_value = malloc(sizeof *given_value * (size_t)argc);
    kv_settings flags;

    if (!given || !given_value) {
        fprintf(stderr, "kvstored: out of memory\n");
        free(given);
        free(given_value);
        return -1;
    }
    for (size_t i = 0; i < N_SETTINGS; i++) {
        opts[n++] = (struct option){ settings[i].name,
                                     settings[i].kind == BOOLEAN ? optional_argument
                                                                 : required_argument, NULL,
                                     settings[i].short_flag ? settings[i].short_flag
                                                            : SETTING_VAL + (int)i };
        if (settings[i].short_flag) {
            shorts[k++] = (char)settings[i].short_flag;
            shorts[k++] = ':';
        }
    }
    opts[n++] = (struct option){ "config", required_argument, NULL, OPT_CONFIG };
    opts[n++] = (struct option){ "print-config", no_argument, NULL, OPT_PRINT_CONFIG };
    /* Not settings: what to do once, at this start, not how to run (a
     * --restore in the file would restore again at every start). */
    opts[n++] = (struct option){ "restore", required_argument, NULL, OPT_RESTORE };
    opts[n++] = (struct option){ "force", no_argument, NULL, OPT_FORCE };
    opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
    opts[n++] = (struct option){ "version", no_argument, NULL, 'V' };
    opts[n] = (struct option){ NULL, 0, NULL, 0 };
    strcat(shorts, "hV");

    /* The flags first, each checked as it comes (so a bad one is told
     * before the file is read); the file, then the flags again on top. */
    settings_init(&flags);
    int result = KV_SETTINGS_RUN;
    size_t ngiven = 0;
    while (result == KV_SETTINGS_RUN
           && (opt = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
        size_t i = N_SETTINGS;
        if (opt >= SETTING_VAL && opt < SETTING_VAL + (int)N_SETTINGS)
            i = (size_t)(opt - SETTING_VAL);
        for (size_t j = 0; j < N_SETTINGS && i == N_SETTINGS; j++)
            if (opt == settings[j].short_flag)
                i = j;
        if (i < N_SETTINGS) {
            const char *v = optarg ? optarg : "yes";    /* a BOOLEAN's flag alone */
            if (setting_apply(&flags, i, v, err, sizeof err) < 0) {
                fprintf(stderr, "kvstored: --%s: %s\n", settings[i].name, err);
                result = -1;
            }
            given[ngiven] = i;
            given_value[ngiven++] = v;
            continue;
        }
        switch (opt) {
        case OPT_CONFIG: config = optarg; break;
        case OPT_PRINT_CONFIG: print = 1; break;
        case OPT_RESTORE: restore = optarg; break;
        case OPT_FORCE: force = 1; break;
        case 'h': result = KV_SETTINGS_HELP; break;
        case 'V': result = KV_SETTINGS_VERSION; break;
        default:
            fprintf(stderr, "Try 'kvstored --help' for more information.\n");
            result = -1;
        }
    }
    if (result == KV_SETTINGS_RUN && optind < argc) {
        fprintf(stderr, "kvstored: unexpected argument \"%s\"\n"
                "Try 'kvstored --help' for more information.\n", argv[optind]);
        result = -1;
    }
    if (result == KV_SETTINGS_RUN) {
        settings_init(s);
        if (config && settings_read_file(s, config) < 0)
            result = -1;
        s->restore = restore;
        s->force = force;
        for (size_t g = 0; result == KV_SETTINGS_RUN && g < ngiven; g++)
            setting_apply(s, given[g], given_value[g], err, sizeof err);
        if (result == KV_SETTINGS_RUN && settings_check(s, err, sizeof err) < 0) {
            fprintf(stderr, "kvstored: %s\n", err);
            result = -1;
        }
        if (result == KV_SETTINGS_RUN && print)
            result = KV_SETTINGS_PRINT;
    }
    free(given);
    free(given_value);
    return result;
}

size_t kv_settings_count(void)
{
    return N_SETTINGS;
}

const char *kv_settings_name(size_t i)
{
    return i < N_SETTINGS ? settings[i].name : NULL;
}

const char *kv_settings_value(const kv_settings *s, size_t i, char *buf, size_t len)
{
    const char *name = kv_settings_name(i), *text = NULL;

    if (!name)
        return NULL;
#define SIZE(v) (text = kv_size_text((v), buf, len))
#define NUMBER(v) (snprintf(buf, len, "%llu", (unsigned long long)(v)), text = buf)
    if (!strcmp(name, "listen")) text = s->server.listen;
    else if (!strcmp(name, "engine")) text = s->engine_name;
    else if (!strcmp(name, "dir")) text = s->dir;
    else if (!strcmp(name, "sync")) text = kv_sync_mode_name(s->engine.sync);
    else if (!strcmp(name, "sync-interval-ms")) NUMBER(s->engine.sync_interval_ms);
    else if (!strcmp(name, "lmdb-map-size")) SIZE(s->engine.map_bytes);
    else if (!strcmp(name, "max-frame-bytes")) SIZE(s->server.max_frame_bytes);
    else if (!strcmp(name, "max-key-bytes")) SIZE(s->server.limits.max_key_bytes);
    else if (!strcmp(name, "max-value-bytes")) SIZE(s->server.limits.max_value_bytes);
    else if (!strcmp(name, "max-memory-bytes")) SIZE(s->server.limits.max_memory_bytes);
    else if (!strcmp(name, "max-clients")) NUMBER(s->server.max_clients);
    else if (!strcmp(name, "max-input-bytes")) SIZE(s->server.input_budget);
    else if (!strcmp(name, "max-output-bytes")) SIZE(s->server.output_budget);
    else if (!strcmp(name, "idle-timeout"))
        snprintf(buf, len, "%.15g", s->server.idle_timeout), text = buf;
    else if (!strcmp(name, "watch-history")) NUMBER(s->server.watch_history);
    else if (!strcmp(name, "auth-token-file")) text = s->token_file;
    else if (!strcmp(name, "tls-cert")) text = s->server.tls.cert;
    else if (!strcmp(name, "tls-key")) text = s->server.tls.key;
    else if (!strcmp(name, "tls-client-ca")) text = s->server.tls.client_ca;
    else if (!strcmp(name, "tls-peer-ca")) text = s->server.tls.peer_ca;
    else if (!strcmp(name, "tls-only")) text = s->server.tls_only ? "yes" : "no";
    else if (!strcmp(name, "plain-listen")) text = s->server.plain_listen;
    else if (!strcmp(name, "metrics-listen")) text = s->server.metrics_listen;
    else if (!strcmp(name, "metrics-tls")) text = s->server.metrics_tls ? "yes" : "no";
    else if (!strcmp(name, "slowlog-us")) NUMBER(s->server.slowlog_us);
    else if (!strcmp(name, "slowlog-max-len")) NUMBER(s->server.slowlog_max_len);
    else if (!strcmp(name, "log-level")) text = kv_log_level_name(s->log_level);
    else if (!strcmp(name, "log-format")) text = kv_log_format_name(s->log_format);
    else if (!strcmp(name, "log-file")) text = s->log_file;
    else if (!strcmp(name, "node-id") && s->cluster.node_id) NUMBER(s->cluster.node_id);
    else if (!strcmp(name, "cluster-dir")) text = s->cluster.dir;
    else if (!strcmp(name, "raft-listen")) text = s->cluster.raft_listen;
    else if (!strcmp(name, "initial-cluster")) text = s->cluster.initial;
    else if (!strcmp(name, "join")) text = s->cluster.join;
    else if (!strcmp(name, "snapshot-threshold")) NUMBER(s->cluster.snapshot_threshold);
    else if (!strcmp(name, "election-timeout-ms")) NUMBER(s->cluster.election_ms);
    else if (!strcmp(name, "dedup-window")) NUMBER(s->cluster.dedup_window);
#undef SIZE
#undef NUMBER
    return text;
}

void kv_settings_print(const kv_settings *s, FILE *f)
{
    fprintf(f, "# kvstored %s --print-config: the settings in force, defaults included;\n"
            "# \"# name =\" is a setting not given. Read back with --config FILE.\n",
            KV_VERSION);
    for (size_t i = 0; i < N_SETTINGS; i++) {
        char buf[KV_SETTINGS_VALUE_MAX];
        const char *text = kv_settings_value(s, i, buf, sizeof buf);

        if (text)
            fprintf(f, "%s = %s\n", settings[i].name, text);
        else
            fprintf(f, "# %s =\n", settings[i].name);
    }
}

/* TEXT as valid UTF-8 into OUT (NULL: only measured): a byte that is not
 * part of well-formed UTF-8 (a path's, say) becomes the four characters
 * \xHH, as in the log, since Stats carries settings in proto3 strings,
 * which a strict client refuses to decode otherwise, and /metrics in label
 * values, which Prometheus refuses likewise. Returns the length. */
static size_t utf8_text(char *out, const char *text)
{
    const uint8_t *p = (const uint8_t *)text;
    size_t len = strlen(text), o = 0, i = 0;

    while (i < len) {
        size_t good = kv_utf8_check(p + i, len - i);
        if (out)
            memcpy(out + o, p + i, good);
        o += good;
        i += good;
        if (i < len) {
            if (out)
                snprintf(out + o, 5, "\\x%02x", p[i]);
            o += 4;
            i++;
        }
    }
    if (out)
        out[o] = 0;
    return o;
}

const char **kv_settings_pairs(const kv_settings *s, size_t *n)
{
    size_t bytes = 0;
    char buf[KV_SETTINGS_VALUE_MAX];

    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *text = kv_settings_value(s, i, buf, sizeof buf);
        bytes += (text ? utf8_text(NULL, text) : 0) + 1;
    }
    /* The pointers, then the values' text after them: one block to free. */
    const char **pairs = malloc(2 * N_SETTINGS * sizeof *pairs + bytes);
    if (!pairs)
        return NULL;
    char *p = (char *)(pairs + 2 * N_SETTINGS);
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *text = kv_settings_value(s, i, buf, sizeof buf);
        size_t len = utf8_text(p, text ? text : "");
        pairs[2 * i] = settings[i].name;
        pairs[2 * i + 1] = p;
        p += len + 1;
    }
    *n = N_SETTINGS;
    return pairs;
}
