/* main.c - kvbench's command line: parses redis-benchmark's flags, runs the
 * selected tests in order (loading the keys a GET or RANGE test reads
 * first), prints the figures and checks the server's own call counts. The
 * load itself is run.c's (scan.c's for RANGE); the printing report.c's; the
 * bytes on the wire the protocol's (proto.h: kvstore, RESP for Redis, or
 * echo for kvecho); TLS, when asked for, tls.c's. */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/ssl.h>
#include "endpoint.h"
#include "report.h"
#include "run.h"
#include "scan.h"
#include "srvstats.h"
#include "tls.h"

/* The pipeline depth used to load the keys of a GET test. */
#define POPULATE_PIPELINE 64
/* Bounds that keep a typo from asking for terabytes of buffers. */
#define MAX_CLIENTS 10000
#define MAX_PIPELINE 100000
#define MAX_VALUE (512u * 1024 * 1024)
#define MAX_THREADS 256
#define MAX_PAGE 1000000
/* kvstored's largest TTL (10^12 ms); Redis's PX takes it too. */
#define MAX_TTL_MS 1000000000000ULL
/* Clients of the range test: each is a thread reading the whole range. */
#define MAX_SCANNERS 64

typedef struct options {
    const char *host, *port;
    const kb_proto *proto;
    const char *hist_path;           /* --hist: NULL for none */
    int clients, pipeline, threads, timeout_s;
    uint64_t requests, keyspace;
    uint64_t ttl_ms;                 /* --ttl: every SET's time to live; 0 none */
    uint32_t page;                   /* range: keys per page */
    size_t value_len;
    int random_keys, sequential, quiet, csv, stats_check, populate;
    int tests[KB_METHOD_COUNT];      /* selected by -t */
    int tls;                         /* --tls, with tls_opts */
    kb_tls_opts tls_opts;
} options;

static void usage(FILE *f)
{
    fprintf(f,
"Usage: kvbench [OPTION]...\n"
"Closed-loop load on a kvstored server, like redis-benchmark: each client\n"
"sends a batch of -P requests and the next batch once all are answered.\n"
"The same loop speaks Redis's protocol and drives an echo server, so\n"
"servers can be compared with one client.\n"
"\n"
"  -h HOST            server host (default 127.0.0.1)\n"
"  -p PORT            server port (default 7379)\n"
"  -c CLIENTS         parallel connections (default 50)\n"
"  -n REQUESTS        requests per test (default 100000)\n"
"  -P PIPELINE        requests per batch (default 1: no pipelining)\n"
"  -d BYTES           value size of SET, GET and RANGE (default 3)\n"
"  -r KEYSPACE        keys \"key:\" + 12 digits drawn uniformly from\n"
"                     0..KEYSPACE-1; without -r every request uses\n"
"                     key:000000000000\n"
"  -t TESTS           comma-separated tests among ping,set,get,clear,range\n"
"                     (default ping,set,get,clear); they run in that order\n"
"      --protocol P   what the server speaks: kvstore (default); resp, for\n"
"                     Redis (PING, SET, GET; clear is GETDEL; a nil GET is an\n"
"                     error); echo, for kvecho (kvstore's request bytes, each\n"
"                     to come back unchanged); etcd, for etcd v3's HTTP/JSON\n"
"                     gateway over HTTP/1.1 keep-alive (set: /v3/kv/put, get:\n"
"                     a linearizable /v3/kv/range; -t set,get only)\n"
"      --threads N    spread the clients over N threads (default 1)\n"
"      --page N       range: keys per page (default 1000)\n"
"      --ttl MS       every SET (the test's, and the loading of a GET or RANGE\n"
"                     test's keys) gives its key this time to live, in ms:\n"
"                     kvstore's SetRequest.ttl_ms; resp: SET key value PX MS\n"
"      --sequential   key i for request i (mod KEYSPACE when -r is given):\n"
"                     loads an exact key set, e.g. -t set -n 1000 -r 1000\n"
"  -q                 quiet: one line per test\n"
"      --csv          redis-benchmark's CSV: a header, then one row per test;\n"
"                     kvbench adds a last column, p999_latency_ms\n"
"      --hist FILE    write each test's latency distribution to FILE, as\n"
"                     HdrHistogram's percentile table (value in ms, percentile,\n"
"                     count, 1/(1-percentile)); tests apart by two blank lines\n"
"      --no-populate  do not load the keys before a GET or RANGE test (the\n"
"                     caller did; a missing key is then an error answer)\n"
"      --no-stats-check  do not compare the server's Stats counts with the\n"
"                     requests sent (for a server others use at the same time;\n"
"                     only kvstore has Stats: other protocols are not checked)\n"
"      --timeout SEC  give up after SEC seconds without an answer (default 10)\n");
    /* In parts: C99 promises string literals of 4095 bytes only. */
    fprintf(f,
"      --tls          speak TLS (1.2 or 1.3) to the server, whatever the\n"
"                     protocol; each connection's handshake is done before\n"
"                     the test's clock starts. The certificate must name -h\n"
"                     HOST. No stats check (the client library that reads\n"
"                     Stats does not speak TLS) and no -t range\n"
"      --cacert FILE  trust the CAs of this PEM file (default: the system's)\n"
"      --cert FILE    present this client certificate (PEM), with --key\n"
"      --key FILE     the client certificate's private key (PEM)\n"
"      --insecure     do not verify the server's certificate\n"
"      --help         show this help and exit\n"
"      --version      show the version and exit\n"
"\n"
"Before a GET or RANGE test the keys it reads (0..KEYSPACE-1, or the fixed\n"
"key) are stored with -d byte values (not for echo); those SETs are not in\n"
"the figures. Latencies run from a batch's send to the read that brought each\n"
"answer. Only OK answers are counted; an error or wrong answer, or a Stats\n"
"count that differs from what kvbench sent, makes the exit status 1. Usage\n"
"errors exit 2.\n"
"\n"
"RANGE reads every key of 0..KEYSPACE-1 (-r, required) with its value, a\n"
"page of --page keys at a time, each page asked once the one before it is\n"
"in; each of -c clients (at most 64; -n is not used) reads all of them.\n"
"kvstore: Range from \"key:\" to \"key;\" with limit = --page, paging on\n"
"start = last key + \"\\0\" until more = false (the keys must come in byte\n"
"order); resp: SCAN cursor COUNT --page until the cursor is 0 again, and an\n"
"MGET of each page's keys, sent with the next SCAN. Every key must be seen\n"
"(SCAN may repeat one: keys are counted distinct) with the -d byte value\n"
"that was stored. It reports keys and pages per second and the time of a\n"
"page, from the end of the one before it to its own (in --csv, \"rps\" counts\n"
"pages).\n");
}

/* Parses a decimal number in [MIN, MAX] for option OPT. Returns 0, or -1
 * after printing why. */
static int parse_num(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
        fprintf(stderr, "kvbench: %s: \"%s\" is not a number from %llu to %llu\n", opt, s,
                (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

/* Marks the tests named in LIST ("set,get"). Returns 0 or -1 (unknown). */
static int parse_tests(const char *list, int tests[KB_METHOD_COUNT])
{
    char buf[256], *save = NULL, *tok;

    snprintf(buf, sizeof buf, "%s", list);
    memset(tests, 0, sizeof(int) * KB_METHOD_COUNT);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int m;
        for (m = 0; m < KB_METHOD_COUNT; m++)
            if (!strcasecmp(tok, kb_wire_method_name(m)))
                break;
        if (m == KB_METHOD_COUNT) {
            fprintf(stderr, "kvbench: -t: unknown test \"%s\" (known: ping, set, get, clear, "
                    "range)\n", tok);
            return -1;
        }
        tests[m] = 1;
    }
    return 0;
}

/* Returns 0 with O filled from ARGV, 1 when --help/--version was handled,
 * or 2 on a usage error (already reported). */
static int parse_options(int argc, char **argv, options *o)
{
    enum { OPT_THREADS = 256, OPT_CSV, OPT_SEQ, OPT_NO_STATS, OPT_NO_POP, OPT_TIMEOUT,
           OPT_PROTOCOL, OPT_HIST, OPT_PAGE, OPT_TTL, OPT_HELP, OPT_VERSION, OPT_TLS,
           OPT_CACERT, OPT_CERT, OPT_KEY, OPT_INSECURE };
    static const struct option longopts[] = {
        { "protocol", required_argument, NULL, OPT_PROTOCOL },
        { "hist", required_argument, NULL, OPT_HIST },
        { "threads", required_argument, NULL, OPT_THREADS },
        { "page", required_argument, NULL, OPT_PAGE },
        { "ttl", required_argument, NULL, OPT_TTL },
        { "csv", no_argument, NULL, OPT_CSV },
        { "sequential", no_argument, NULL, OPT_SEQ },
        { "no-stats-check", no_argument, NULL, OPT_NO_STATS },
        { "no-populate", no_argument, NULL, OPT_NO_POP },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "tls", no_argument, NULL, OPT_TLS },
        { "cacert", required_argument, NULL, OPT_CACERT },
        { "cert", required_argument, NULL, OPT_CERT },
        { "key", required_argument, NULL, OPT_KEY },
        { "insecure", no_argument, NULL, OPT_INSECURE },
        { "help", no_argument, NULL, OPT_HELP },
        { "version", no_argument, NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 },
    };
    uint64_t v;
    int opt;

    *o = (options){ .host = "127.0.0.1", .port = "7379", .proto = &kb_proto_kvstore,
                    .clients = 50, .pipeline = 1,
                    .threads = 1, .timeout_s = 10, .requests = 100000, .value_len = 3,
                    .stats_check = 1, .populate = 1, .page = 1000 };
    for (int m = 0; m < KB_METHOD_COUNT; m++)
        o->tests[m] = m != KB_RANGE;
    while ((opt = getopt_long(argc, argv, "h:p:c:n:P:d:r:t:q", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h': o->host = optarg; break;
        case 'p': {
            /* The shared port rule (digits only, at most 65535); strtoull
             * would also take "+7379" and " 7379". Port 0 names no server. */
            uint16_t port;
            if (kv_endpoint_parse_port(optarg, &port) < 0 || port == 0) {
                fprintf(stderr, "kvbench: -p: \"%s\" is not a port from 1 to 65535\n", optarg);
                return 2;
            }
            o->port = optarg;
            break;
        }
        case 'c':
            if (parse_num("-c", optarg, 1, MAX_CLIENTS, &v) < 0)
                return 2;
            o->clients = (int)v;
            break;
        case 'n':
            if (parse_num("-n", optarg, 1, KB_KEY_MAX, &o->requests) < 0)
                return 2;
            break;
        case 'P':
            if (parse_num("-P", optarg, 1, MAX_PIPELINE, &v) < 0)
                return 2;
            o->pipeline = (int)v;
            break;
        case 'd':
            if (parse_num("-d", optarg, 0, MAX_VALUE, &v) < 0)
                return 2;
            o->value_len = (size_t)v;
            break;
        case 'r':
            if (parse_num("-r", optarg, 1, KB_KEY_MAX + 1, &o->keyspace) < 0)
                return 2;
            o->random_keys = 1;
            break;
        case 't':
            if (parse_tests(optarg, o->tests) < 0)
                return 2;
            break;
        case 'q': o->quiet = 1; break;
        case OPT_THREADS:
            if (parse_num("--threads", optarg, 1, MAX_THREADS, &v) < 0)
                return 2;
            o->threads = (int)v;
            break;
        case OPT_PAGE:
            if (parse_num("--page", optarg, 1, MAX_PAGE, &v) < 0)
                return 2;
            o->page = (uint32_t)v;
            break;
        case OPT_TTL:
            if (parse_num("--ttl", optarg, 1, MAX_TTL_MS, &o->ttl_ms) < 0)
                return 2;
            break;
        case OPT_CSV: o->csv = 1; break;
        case OPT_SEQ: o->sequential = 1; break;
        case OPT_NO_STATS: o->stats_check = 0; break;
        case OPT_NO_POP: o->populate = 0; break;
        case OPT_TIMEOUT:
            if (parse_num("--timeout", optarg, 1, 3600, &v) < 0)
                return 2;
            o->timeout_s = (int)v;
            break;
        case OPT_PROTOCOL:
            o->proto = kb_proto_find(optarg);
            if (!o->proto) {
                fprintf(stderr, "kvbench: --protocol: unknown protocol \"%s\" (known: kvstore, "
                        "resp, echo, etcd)\n", optarg);
                return 2;
            }
            break;
        case OPT_HIST: o->hist_path = optarg; break;
        case OPT_TLS: o->tls = 1; break;
        case OPT_CACERT: o->tls_opts.cacert = optarg; break;
        case OPT_CERT: o->tls_opts.cert = optarg; break;
        case OPT_KEY: o->tls_opts.key = optarg; break;
        case OPT_INSECURE: o->tls_opts.insecure = 1; break;
        case OPT_HELP: usage(stdout); return 1;
        case OPT_VERSION: printf("kvbench %s\n", KV_VERSION); return 1;
        default:
            fprintf(stderr, "Try 'kvbench --help' for more information.\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kvbench: unexpected argument \"%s\"\n"
                "Try 'kvbench --help' for more information.\n", argv[optind]);
        return 2;
    }
    const kb_tls_opts *t = &o->tls_opts;
    if (!o->tls && (t->cacert || t->cert || t->key || t->insecure)) {
        fprintf(stderr, "kvbench: --cacert, --cert, --key and --insecure go with --tls\n");
        return 2;
    }
    if (!t->cert != !t->key) {
        fprintf(stderr, "kvbench: --cert and --key go together\n");
        return 2;
    }
    if (t->insecure && t->cacert) {
        fprintf(stderr, "kvbench: --insecure: no verification, so no --cacert\n");
        return 2;
    }
    if (o->tls && o->tests[KB_RANGE]) {
        fprintf(stderr, "kvbench: -t range: not over --tls yet\n");
        return 2;
    }
    if (o->proto == &kb_proto_etcd && (o->tests[KB_PING] || o->tests[KB_CLEAR]
                                       || o->tests[KB_RANGE] || o->ttl_ms)) {
        fprintf(stderr, "kvbench: --protocol etcd: -t set,get only, and no --ttl\n");
        return 2;
    }
    if (o->tests[KB_RANGE] && !o->random_keys) {
        fprintf(stderr, "kvbench: -t range: -r KEYSPACE names the keys to read\n");
        return 2;
    }
    if (o->tests[KB_RANGE] && o->proto == &kb_proto_echo) {
        fprintf(stderr, "kvbench: -t range: speaks kvstore or resp, not echo\n");
        return 2;
    }
    if (o->tests[KB_RANGE] && o->clients > MAX_SCANNERS) {
        fprintf(stderr, "kvbench: -t range: at most %d clients (-c), each a thread\n",
                MAX_SCANNERS);
        return 2;
    }
    if (o->sequential && !o->keyspace && o->requests > KB_KEY_MAX + 1) {
        fprintf(stderr, "kvbench: --sequential: -n exceeds the 12-digit keys\n");
        return 2;
    }
    return 0;
}

/* The server's "HOST:PORT" for the client library ("[V6]:PORT"). */
static void endpoint_of(const options *o, char *ep, size_t len)
{
    if (strchr(o->host, ':'))
        snprintf(ep, len, "[%s]:%s", o->host, o->port);
    else
        snprintf(ep, len, "%s:%s", o->host, o->port);
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse_options(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : 2;

    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *ai;
    int gai = getaddrinfo(o.host, o.port, &hints, &ai);
    if (gai) {
        fprintf(stderr, "kvbench: cannot resolve %s: %s\n", o.host, gai_strerror(gai));
        return 1;
    }

    char ep[300], err[512];
    kb_srvstats before, after;
    endpoint_of(&o, ep, sizeof ep);
    if (!o.proto->has_stats || o.tls)
        o.stats_check = 0;
    FILE *hist = NULL;
    int hist_tests = 0, hist_bad = 0;
    if (o.hist_path && !(hist = fopen(o.hist_path, "w"))) {
        fprintf(stderr, "kvbench: --hist: cannot write %s: %s\n", o.hist_path, strerror(errno));
        freeaddrinfo(ai);
        return 1;
    }
    if (o.stats_check && kb_srvstats_fetch(ep, o.timeout_s * 1000, &before, err, sizeof err) < 0) {
        fprintf(stderr, "kvbench: cannot read the server's counts at %s: %s\n"
                "kvbench: (--no-stats-check runs without them)\n", ep, err);
        freeaddrinfo(ai);
        if (hist)
            fclose(hist);
        return 1;
    }

    SSL_CTX *tls = NULL;
    if (o.tls && !(tls = kb_tls_ctx_new(&o.tls_opts, err, sizeof err))) {
        fprintf(stderr, "kvbench: %s\n", err);
        freeaddrinfo(ai);
        if (hist)
            fclose(hist);
        return 1;
    }

    kb_style style = o.csv ? KB_STYLE_CSV : o.quiet ? KB_STYLE_QUIET : KB_STYLE_FULL;
    kb_plan plan = { .proto = o.proto, .addr = ai->ai_addr, .addrlen = ai->ai_addrlen,
                     .tls = tls, .tls_host = o.host, .clients = o.clients,
                     .pipeline = o.pipeline, .threads = o.threads, .requests = o.requests,
                     .value_len = o.value_len, .ttl_ms = o.ttl_ms, .keyspace = o.keyspace,
                     .timeout_s = o.timeout_s,
                     .keys = o.sequential ? KB_KEYS_SEQUENTIAL
                           : o.random_keys ? KB_KEYS_RANDOM : KB_KEYS_FIXED,
                     .progress = style == KB_STYLE_FULL && isatty(STDOUT_FILENO) };
    if (plan.threads > plan.clients)
        plan.threads = plan.clients;
    uint64_t sent[KB_METHOD_COUNT] = { 0 }, errors[KB_METHOD_COUNT] = { 0 };
    kb_result *res = malloc(sizeof *res);   /* the histogram makes it big */
    kb_scan_result *sres = malloc(sizeof *sres);
    int failed = 0, stopped = 0;

    if (!res || !sres) {
        free(res);
        free(sres);
        fprintf(stderr, "kvbench: out of memory\n");
        SSL_CTX_free(tls);
        freeaddrinfo(ai);
        if (hist)
            fclose(hist);
        return 1;
    }
    if (style == KB_STYLE_CSV)
        kb_report_csv_header();
    for (int m = 0; m < KB_METHOD_COUNT && !stopped; m++) {
        if (!o.tests[m])
            continue;
        if ((m == KB_GET || m == KB_RANGE) && o.populate && o.proto->needs_keys) {
            /* A GET of a missing key is an error to us (kvstore's NOT_FOUND,
             * Redis's nil), and RANGE must see them all: store every key the
             * test may read, first. */
            kb_plan load = plan;
            load.method = KB_SET;
            load.requests = o.random_keys ? o.keyspace : o.sequential ? o.requests : 1;
            load.keys = o.random_keys || o.sequential ? KB_KEYS_SEQUENTIAL : KB_KEYS_FIXED;
            load.pipeline = POPULATE_PIPELINE;
            load.progress = 0;
            kb_run(&load, res);
            sent[KB_SET] += res->answered;
            errors[KB_SET] += res->errors;
            if (kb_report_problems(m == KB_GET ? "loading the keys for GET"
                                               : "loading the keys for RANGE", res) < 0) {
                failed = 1;
                stopped = res->fatal[0] != 0;
                continue;
            }
        }
        if (m == KB_RANGE) {
            kb_scan_plan sp = { .proto = o.proto, .addr = ai->ai_addr, .addrlen = ai->ai_addrlen,
                                .clients = o.clients, .page = o.page, .keyspace = o.keyspace,
                                .value_len = o.value_len, .timeout_s = o.timeout_s };
            kb_scan_run(&sp, sres);
            sent[m] += sres->calls;
            errors[m] += sres->errors;
            if (!sres->fatal[0] && !sres->errors) {
                kb_report_scan(style, &sp, sres);
                if (hist && kb_report_scan_hist(hist, &sp, sres, hist_tests++ == 0) < 0)
                    hist_bad = 1;
            }
            if (kb_report_scan_problems(sres) < 0) {
                failed = 1;
                stopped = sres->fatal[0] != 0;
            }
            continue;
        }
        plan.method = m;
        kb_run(&plan, res);
        sent[m] += res->answered;
        errors[m] += res->errors;
        if (!res->fatal[0]) {
            kb_report_result(style, &plan, res);
            if (hist && kb_report_hist(hist, &plan, res, hist_tests++ == 0) < 0)
                hist_bad = 1;
        }
        if (kb_report_problems(kb_wire_method_title(m), res) < 0) {
            failed = 1;
            stopped = res->fatal[0] != 0;
        }
    }
    free(res);
    free(sres);
    SSL_CTX_free(tls);
    freeaddrinfo(ai);
    if (hist && (fclose(hist) != 0 || hist_bad)) {
        fprintf(stderr, "kvbench: --hist: cannot write %s\n", o.hist_path);
        failed = 1;
    }

    if (stopped) {
        if (o.stats_check)
            fprintf(stderr, "kvbench: stats check skipped: a test stopped early\n");
        return 1;
    }
    if (o.stats_check) {
        if (kb_srvstats_fetch(ep, o.timeout_s * 1000, &after, err, sizeof err) < 0) {
            fprintf(stderr, "kvbench: warning: stats check failed: %s\n", err);
            return 1;
        }
        char msg[1024];
        if (kb_srvstats_compare(&before, &after, sent, errors, msg, sizeof msg) < 0) {
            fprintf(stderr, "kvbench: warning: stats check failed: the server counted %s\n", msg);
            return 1;
        }
        fprintf(stderr, "kvbench: stats check passed: the server counted %s\n", msg);
    }
    return failed;
}
