/* main.c - kvstored's command line: parses flags, opens the engine, runs the
 * server, closes the engine on the way out, and logs the start (what is in
 * force) and the stop. Until the server listens, a problem is one plain
 * "kvstored: ..." line and an exit (2: usage, 1: could not start): that is
 * an answer to whoever ran it, not an event of a running server. After
 * that, everything goes through log.h. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "endpoint.h"
#include "expire.h"
#include "listen.h"
#include "engine.h"
#include "log.h"
#include "size.h"
#include "server.h"
#include "cluster.h"

#define DEFAULT_LISTEN "127.0.0.1:7379"
#define DEFAULT_SYNC_INTERVAL_MS 100
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

static void usage(FILE *f)
{
    fprintf(f,
"Usage: kvstored [OPTION]...\n"
"Serve the kvstore key-value protocol (docs/PROTOCOL.md) over TCP.\n"
"\n"
"  -l, --listen HOST:PORT      address to listen on (default " DEFAULT_LISTEN ");\n"
"                              port 0 picks a free port. The bound address is\n"
"                              printed as \"listening on HOST:PORT\" once ready\n"
"  -e, --engine NAME           storage engine: %s (default memory)\n"
"  -d, --dir PATH              directory for engines that keep files (lmdb:\n"
"                              created if missing; one kvstored at a time;\n"
"                              memory keeps no files and refuses it)\n"
"\n"
"Durability (engines that keep files; see README, \"Durability\"):\n"
"      --sync always|batch|none\n"
"                              always (default): a write (Set, Clear, Txn,\n"
"                              ClearRange) is answered once it is on disk;\n"
"                              the writes of one loop turn\n"
"                              share one commit and one sync (group commit).\n"
"                              batch: answered before the sync, which comes at\n"
"                              most --sync-interval-ms later; a power loss may\n"
"                              lose that window. none: never synced; a crash of\n"
"                              kvstored loses nothing answered, a power loss\n"
"                              may lose what the OS had not written yet\n"
"      --sync-interval-ms N    longest time between syncs for --sync batch\n"
"                              (default %d)\n"
"      --lmdb-map-size N       the lmdb engine's map: the most its data file may\n"
"                              grow to (default 1G); when full, Set gets\n"
"                              RESOURCE_EXHAUSTED; at least 1M; must hold the\n"
"                              existing data\n"
"\n"
"Limits (sizes are digits, then K, M or G if you like):\n"
"      --max-frame-bytes N     largest request frame (default 16M); a larger\n"
"                              one gets RESOURCE_EXHAUSTED and the connection\n"
"                              is closed\n"
"      --max-key-bytes N       longest key (default 64K; lmdb: at most 511);\n"
"                              longer: INVALID_ARGUMENT\n"
"      --max-value-bytes N     largest value (default 8M); larger: INVALID_ARGUMENT\n"
"      --max-memory-bytes N    memory for stored data (default 0 = no limit);\n"
"                              when reached, Set gets RESOURCE_EXHAUSTED while\n"
"                              Get and Clear keep working\n"
"      --max-clients N         connections at once (default %d); one more gets\n"
"                              RESOURCE_EXHAUSTED and is closed\n"
"      --max-input-bytes N     input buffers across all connections (default\n"
"                              1G; each connection's first 256K not counted);\n"
"                              a connection that would pass it gets\n"
"                              RESOURCE_EXHAUSTED and is closed\n"
"      --max-output-bytes N    answers not yet read across all connections\n"
"                              (default 1G, at least 64K); past it, clients\n"
"                              with more than 64K unread are paused and those\n"
"                              that read nothing for 1 s are closed\n"
"      --idle-timeout SECONDS  close connections that make no progress (no\n"
"                              whole request, no answer read) for this long:\n"
"                              0 = never, else 0.01 to 31536000 (a year);\n"
"                              default %.0f; a connection with an open watch\n"
"                              is never idle\n"
"\n"
"Watch and expiry:\n"
"      --watch-history N       events of recent writes kept for watches that\n"
"                              start at a past revision, from the first Watch\n"
"                              on (default %u, at most 64M of them by size;\n"
"                              0 = none, 0 to 10000000); older: the watch is\n"
"                              canceled as compacted.\n"
"                              Keys with a TTL are removed in the background,\n"
"                              at most %u a loop turn, and hidden from reads\n"
"                              once expired\n",
            kv_engine_names(), DEFAULT_SYNC_INTERVAL_MS, KV_DEFAULT_MAX_CLIENTS,
            KV_DEFAULT_IDLE_TIMEOUT, KV_WATCH_DEFAULT_HISTORY, KV_EXPIRE_BATCH);
    /* Two calls: ISO C guarantees string literals of 4095 bytes only. */
    fprintf(f,
"\n"
"Security:\n"
"      --auth-token-file FILE  require every connection to call Auth with the\n"
"                              token in FILE before anything else: its first\n"
"                              line (1 to 4095 bytes, CR LF allowed) of a\n"
"                              regular file; wrong tokens get UNAUTHENTICATED,\n"
"                              and the connection is closed after %d of them.\n"
"                              Before Auth a frame may be at most 64K. An\n"
"                              address with 10 wrong tokens within 10 s has\n"
"                              its Auth calls refused (RESOURCE_EXHAUSTED) for\n"
"                              1 s, then 2, 4, ... up to 60 s\n"
"\n"
"Logs (one line per event on stderr, with a UTC timestamp):\n"
"      --log-level error|warn|info|debug\n"
"                              the least severe events written (default info:\n"
"                              start, stop, limits hit, engine errors; debug\n"
"                              adds each connection accepted, refused or\n"
"                              closed, with\n"
"                              its peer address and the reason)\n"
"      --log-format text|json  text (default): TIME LEVEL MESSAGE; json: one\n"
"                              object per line with ts, level and msg\n"
"\n"
"  -h, --help                  show this help and exit\n"
"  -V, --version               show the version and exit\n"
"\n"
"SIGINT or SIGTERM: stop accepting, write pending answers (up to 5 s), close\n"
"the engine, exit 0. SIGHUP is ignored. Exit status 1: could not start; 2: bad\n"
"usage.\n",
            KV_AUTH_MAX_FAILURES);
    fprintf(f,
"\n"
"Cluster (Raft; see README, \"Run a cluster\"). All of --node-id,\n"
"--cluster-dir and --raft-listen make this node a member; without them it is\n"
"the single node above:\n"
"      --node-id N             this node's id: a positive integer, unique in\n"
"                              the cluster\n"
"      --cluster-dir DIR       the raft log, snapshots and the node's id;\n"
"                              created if missing. The log is the write-ahead\n"
"                              log: a write is answered once a majority has it\n"
"                              on disk, and the engine is rebuilt from it at\n"
"                              start (lmdb then keeps no state of its own)\n"
"      --raft-listen HOST:PORT the address of this node's peer traffic\n"
"      --initial-cluster ID=HOST:PORT,...\n"
"                              the raft addresses of the first members, the\n"
"                              same list on each; used only when DIR is empty\n"
"      --join HOST:PORT        the client address of any member: asks the\n"
"                              cluster to add this node; only when DIR is empty\n"
"      --snapshot-threshold N  log entries between snapshots (default %u; %u\n"
"                              are kept behind each, for followers catching up)\n"
"      --election-timeout-ms MS\n"
"                              a follower that hears nothing from a leader for\n"
"                              MS to 2*MS starts an election (default %u; the\n"
"                              leader's heartbeat is a tenth of it)\n"
"      --dedup-window N        outcomes of writes that carried a client_id and\n"
"                              seq remembered, all clients together, so that a\n"
"                              retry of one is answered, not applied again:\n"
"                              each client's last 4096, at most N in all\n"
"                              (default %u) and 64 MiB of answers\n"
"A follower answers writes and linearizable reads UNAVAILABLE with the\n"
"leader's client address; a leader that gets SIGTERM hands its leadership\n"
"over first. A node removed from the cluster stops (exit 1).\n",
            KV_CLUSTER_DEFAULT_SNAPSHOT_THRESHOLD, KV_CLUSTER_DEFAULT_SNAPSHOT_TRAILING,
            KV_CLUSTER_DEFAULT_ELECTION_MS, KV_DEDUP_DEFAULT_ENTRIES);
}

/* Parses a size flag into *OUT or exits with a usage error. */
static uint64_t size_flag(const char *flag, const char *arg, uint64_t min, uint64_t max)
{
    uint64_t n;

    if (kv_size_parse(arg, max, &n) < 0 || n < min) {
        fprintf(stderr, "kvstored: --%s: \"%s\" is not a size between %llu and %llu\n",
                flag, arg, (unsigned long long)min, (unsigned long long)max);
        exit(2);
    }
    return n;
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

/* Makes room for MAX_CLIENTS descriptors, as far as the hard limit lets. */
static void raise_fd_limit(size_t max_clients)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)max_clients + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want)
        kv_log(KV_LOG_WARN, "descriptor limit %llu is below --max-clients %zu: accepting will "
               "pause when descriptors run out", (unsigned long long)rl.rlim_cur, max_clients);
}

/* The start, at info: what runs, where, and every limit in force, so that
 * a log read later says what the server was told. Then, at warn, a server
 * anyone on the network may use. */
static void log_start(const kv_server *srv, kv_engine *engine, const char *dir,
                      const kv_engine_options *eopts)
{
    const kv_server_config *cfg = &srv->cfg;
    char where[KV_ENDPOINT_HOST_MAX + 16], store[1200] = "", map[32];
    char frame[32], key[32], value[32], mem[32], in[32], out[32];
    kv_engine_stats es;
    int local = kv_listen_address(srv->listen_fd, where, sizeof where);

    kv_engine_stats_get(engine, &es);
    if (dir) {
        int n = snprintf(store, sizeof store, " in %s (--sync %s", dir,
                         es.sync ? es.sync : kv_sync_mode_name(eopts->sync));
        if (n > 0 && (size_t)n < sizeof store && eopts->sync == KV_SYNC_BATCH)
            n += snprintf(store + n, sizeof store - (size_t)n, " --sync-interval-ms %u",
                          eopts->sync_interval_ms);
        if (n > 0 && (size_t)n < sizeof store && es.map_bytes)
            n += snprintf(store + n, sizeof store - (size_t)n, " --lmdb-map-size %s",
                          kv_size_text(es.map_bytes, map, sizeof map));
        if (n > 0 && (size_t)n < sizeof store)
            snprintf(store + n, sizeof store - (size_t)n, ")");
    }
    kv_log(KV_LOG_INFO, "kvstored %s started: engine %s%s, listening on %s; limits: "
           "--max-clients %zu --max-frame-bytes %s --max-key-bytes %s --max-value-bytes %s "
           "--max-memory-bytes %s --max-input-bytes %s --max-output-bytes %s "
           "--idle-timeout %g; auth %s",
           KV_VERSION, engine->ops->name, store, where, cfg->max_clients,
           kv_size_text(cfg->max_frame_bytes, frame, sizeof frame),
           kv_size_text(cfg->limits.max_key_bytes, key, sizeof key),
           kv_size_text(cfg->limits.max_value_bytes, value, sizeof value),
           kv_size_text(cfg->limits.max_memory_bytes, mem, sizeof mem),
           kv_size_text(cfg->input_budget, in, sizeof in),
           kv_size_text(cfg->output_budget, out, sizeof out),
           cfg->idle_timeout, cfg->auth ? "on (--auth-token-file)" : "off");
    if (!local && !cfg->auth)
        kv_log(KV_LOG_WARN, "listening on %s, beyond loopback, without --auth-token-file: "
               "anyone who can reach it can read, change and clear every key", where);
}

int main(int argc, char **argv)
{
    enum { OPT_MAX_FRAME = 256, OPT_MAX_KEY, OPT_MAX_VALUE, OPT_MAX_MEMORY,
           OPT_MAX_CLIENTS, OPT_MAX_INPUT, OPT_MAX_OUTPUT, OPT_IDLE, OPT_AUTH, OPT_SYNC,
           OPT_SYNC_INTERVAL, OPT_MAP_SIZE, OPT_LOG_LEVEL, OPT_LOG_FORMAT, OPT_WATCH_HISTORY,
           OPT_NODE_ID, OPT_CLUSTER_DIR, OPT_RAFT_LISTEN, OPT_INITIAL_CLUSTER, OPT_JOIN,
           OPT_SNAPSHOT_THRESHOLD, OPT_ELECTION_MS, OPT_DEDUP_WINDOW };
    static const struct option opts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "engine", required_argument, NULL, 'e' },
        { "dir", required_argument, NULL, 'd' },
        { "max-frame-bytes", required_argument, NULL, OPT_MAX_FRAME },
        { "max-key-bytes", required_argument, NULL, OPT_MAX_KEY },
        { "max-value-bytes", required_argument, NULL, OPT_MAX_VALUE },
        { "max-memory-bytes", required_argument, NULL, OPT_MAX_MEMORY },
        { "max-clients", required_argument, NULL, OPT_MAX_CLIENTS },
        { "max-input-bytes", required_argument, NULL, OPT_MAX_INPUT },
        { "max-output-bytes", required_argument, NULL, OPT_MAX_OUTPUT },
        { "idle-timeout", required_argument, NULL, OPT_IDLE },
        { "auth-token-file", required_argument, NULL, OPT_AUTH },
        { "sync", required_argument, NULL, OPT_SYNC },
        { "sync-interval-ms", required_argument, NULL, OPT_SYNC_INTERVAL },
        { "lmdb-map-size", required_argument, NULL, OPT_MAP_SIZE },
        { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
        { "log-format", required_argument, NULL, OPT_LOG_FORMAT },
        { "watch-history", required_argument, NULL, OPT_WATCH_HISTORY },
        { "node-id", required_argument, NULL, OPT_NODE_ID },
        { "cluster-dir", required_argument, NULL, OPT_CLUSTER_DIR },
        { "raft-listen", required_argument, NULL, OPT_RAFT_LISTEN },
        { "initial-cluster", required_argument, NULL, OPT_INITIAL_CLUSTER },
        { "join", required_argument, NULL, OPT_JOIN },
        { "snapshot-threshold", required_argument, NULL, OPT_SNAPSHOT_THRESHOLD },
        { "election-timeout-ms", required_argument, NULL, OPT_ELECTION_MS },
        { "dedup-window", required_argument, NULL, OPT_DEDUP_WINDOW },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    kv_server_config cfg = {
        .listen = DEFAULT_LISTEN,
        .max_frame_bytes = KV_DEFAULT_MAX_FRAME_BYTES,
        .max_clients = KV_DEFAULT_MAX_CLIENTS,
        .idle_timeout = KV_DEFAULT_IDLE_TIMEOUT,
        .input_budget = KV_DEFAULT_INPUT_BUDGET,
        .output_budget = KV_DEFAULT_OUTPUT_BUDGET,
        .limits = { KV_DEFAULT_MAX_KEY_BYTES, KV_DEFAULT_MAX_VALUE_BYTES, 0, 0 },
        .watch_history = KV_WATCH_DEFAULT_HISTORY,
    };
    kv_cluster_config ccfg = {
        .snapshot_threshold = KV_CLUSTER_DEFAULT_SNAPSHOT_THRESHOLD,
        .snapshot_trailing = KV_CLUSTER_DEFAULT_SNAPSHOT_TRAILING,
        .election_ms = KV_CLUSTER_DEFAULT_ELECTION_MS,
        .dedup_window = KV_DEDUP_DEFAULT_ENTRIES,
    };
    kv_engine_options eopts = { .sync = KV_SYNC_ALWAYS,
                                .sync_interval_ms = DEFAULT_SYNC_INTERVAL_MS };
    const char *engine_name = "memory", *dir = NULL, *token_file = NULL;
    kv_log_level log_level = KV_LOG_INFO;
    kv_log_format log_format = KV_LOG_TEXT;
    int key_limit_set = 0;
    kv_auth auth;
    char err[512], *end;
    int opt;

    while ((opt = getopt_long(argc, argv, "l:e:d:hV", opts, NULL)) != -1) {
        switch (opt) {
        case 'l': {
            /* Checked here so a bad address is a usage error (2), found
             * before the engine opens; the server parses it the same way. */
            kv_endpoint where;
            if (kv_endpoint_parse(optarg, -1, &where, err, sizeof err) < 0) {
                fprintf(stderr, "kvstored: --listen: %s\n", err);
                return 2;
            }
            cfg.listen = optarg;
            break;
        }
        case 'e': engine_name = optarg; break;
        case 'd': dir = optarg; break;
        case OPT_MAX_FRAME:
            cfg.max_frame_bytes = (uint32_t)size_flag("max-frame-bytes", optarg, 1, UINT32_MAX);
            break;
        case OPT_MAX_KEY:
            cfg.limits.max_key_bytes = size_flag("max-key-bytes", optarg, 1, UINT32_MAX);
            key_limit_set = 1;
            break;
        case OPT_MAX_VALUE:
            cfg.limits.max_value_bytes = size_flag("max-value-bytes", optarg, 0, UINT32_MAX);
            break;
        case OPT_MAX_MEMORY:
            cfg.limits.max_memory_bytes = size_flag("max-memory-bytes", optarg, 0, UINT64_MAX);
            break;
        case OPT_WATCH_HISTORY:
            cfg.watch_history = size_flag("watch-history", optarg, 0, 10000000);
            break;
        case OPT_MAX_CLIENTS:
            cfg.max_clients = size_flag("max-clients", optarg, 1, 1000000);
            break;
        case OPT_MAX_INPUT:
            cfg.input_budget = size_flag("max-input-bytes", optarg, 65536, SIZE_MAX);
            break;
        case OPT_MAX_OUTPUT:
            cfg.output_budget = size_flag("max-output-bytes", optarg, 65536, SIZE_MAX);
            break;
        case OPT_IDLE:
            if (parse_idle_timeout(optarg, &cfg.idle_timeout) < 0) {
                fprintf(stderr, "kvstored: --idle-timeout: \"%s\" is not 0 or a number of seconds "
                        "between %g and %.0f\n", optarg, IDLE_TIMEOUT_MIN, IDLE_TIMEOUT_MAX);
                return 2;
            }
            break;
        case OPT_AUTH: token_file = optarg; break;
        case OPT_SYNC:
            if (kv_sync_mode_parse(optarg, &eopts.sync) < 0) {
                fprintf(stderr, "kvstored: --sync: \"%s\" is not always, batch or none\n", optarg);
                return 2;
            }
            break;
        case OPT_SYNC_INTERVAL: {
            errno = 0;
            unsigned long ms = strtoul(optarg, &end, 10);
            if (errno || !isdigit((unsigned char)optarg[0]) || *end || ms < 1 || ms > 3600000) {
                fprintf(stderr, "kvstored: --sync-interval-ms: \"%s\" is not a number of "
                        "milliseconds between 1 and 3600000\n", optarg);
                return 2;
            }
            eopts.sync_interval_ms = (uint32_t)ms;
            break;
        }
        case OPT_MAP_SIZE:
            eopts.map_bytes = size_flag("lmdb-map-size", optarg, MIN_MAP_BYTES, (uint64_t)1 << 46);
            break;
        case OPT_LOG_LEVEL:
            if (kv_log_level_parse(optarg, &log_level) < 0) {
                fprintf(stderr, "kvstored: --log-level: \"%s\" is not error, warn, info or debug\n",
                        optarg);
                return 2;
            }
            break;
        case OPT_LOG_FORMAT:
            if (kv_log_format_parse(optarg, &log_format) < 0) {
                fprintf(stderr, "kvstored: --log-format: \"%s\" is not text or json\n", optarg);
                return 2;
            }
            break;
        case OPT_NODE_ID:
            ccfg.node_id = size_flag("node-id", optarg, 1, UINT64_MAX >> 1);
            break;
        case OPT_CLUSTER_DIR: ccfg.dir = optarg; break;
        case OPT_RAFT_LISTEN: {
            kv_endpoint where;
            if (kv_endpoint_parse(optarg, -1, &where, err, sizeof err) < 0 || !where.port) {
                fprintf(stderr, "kvstored: --raft-listen: %s\n",
                        where.port ? err : "needs HOST:PORT with a port other than 0");
                return 2;
            }
            ccfg.raft_listen = optarg;
            break;
        }
        case OPT_INITIAL_CLUSTER: {
            struct raft_configuration conf;
            raft_configuration_init(&conf);
            int bad = kv_cluster_parse_initial(optarg, &conf, err, sizeof err) < 0;
            raft_configuration_close(&conf);
            if (bad) {
                fprintf(stderr, "kvstored: %s\n", err);
                return 2;
            }
            ccfg.initial = optarg;
            break;
        }
        case OPT_JOIN: {
            kv_endpoint where;
            if (kv_endpoint_parse(optarg, -1, &where, err, sizeof err) < 0) {
                fprintf(stderr, "kvstored: --join: %s\n", err);
                return 2;
            }
            ccfg.join = optarg;
            break;
        }
        case OPT_SNAPSHOT_THRESHOLD:
            ccfg.snapshot_threshold = (unsigned)size_flag("snapshot-threshold", optarg, 64, 1u << 30);
            ccfg.snapshot_trailing = ccfg.snapshot_threshold / 4;
            break;
        case OPT_ELECTION_MS:
            ccfg.election_ms = (unsigned)size_flag("election-timeout-ms", optarg, 100, 60000);
            break;
        case OPT_DEDUP_WINDOW:
            ccfg.dedup_window = size_flag("dedup-window", optarg, 1, 100000000);
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("kvstored %s\n", KV_VERSION); return 0;
        default:
            fprintf(stderr, "Try 'kvstored --help' for more information.\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kvstored: unexpected argument \"%s\"\n"
                "Try 'kvstored --help' for more information.\n", argv[optind]);
        return 2;
    }
    /* The memory engine keeps no files: a --dir given with it would be
     * ignored, and data its user meant to keep lost on exit. */
    if (dir && strcmp(engine_name, "memory") == 0) {
        fprintf(stderr, "kvstored: --dir: engine memory keeps no files; give --engine lmdb "
                "to keep the data in %s\n", dir);
        return 2;
    }
    int clustered = ccfg.node_id || ccfg.dir || ccfg.raft_listen || ccfg.initial || ccfg.join;
    if (clustered && (!ccfg.node_id || !ccfg.dir || !ccfg.raft_listen)) {
        fprintf(stderr, "kvstored: a cluster member needs all of --node-id, --cluster-dir and "
                "--raft-listen\n");
        return 2;
    }
    if (ccfg.initial && ccfg.join) {
        fprintf(stderr, "kvstored: --initial-cluster starts a new cluster, --join joins a "
                "running one: give one of them\n");
        return 2;
    }
    ccfg.heartbeat_ms = ccfg.election_ms / 10;
    if (clustered)
        eopts.sync = KV_SYNC_NONE;  /* the raft log is the write-ahead log */
    kv_log_setup(log_level, log_format);
    raise_fd_limit(cfg.max_clients);
    if (token_file) {
        if (kv_auth_load(&auth, token_file, err, sizeof err) < 0) {
            fprintf(stderr, "kvstored: %s\n", err);
            return 1;
        }
        cfg.auth = &auth;
    }

    kv_engine *engine;
    err[0] = 0;
    if (kv_engine_open(engine_name, dir, &eopts, &engine, err, sizeof err) != KV_OK) {
        fprintf(stderr, "kvstored: engine %s: %s\n", engine_name, err[0] ? err : "cannot open");
        return 1;
    }
    /* The engine may store shorter keys than the default limit: the limit
     * follows it, and an explicit one above it is refused. */
    if (engine->max_key_bytes && cfg.limits.max_key_bytes > engine->max_key_bytes) {
        if (key_limit_set) {
            fprintf(stderr, "kvstored: --max-key-bytes: engine %s stores keys of at most %zu bytes\n",
                    engine_name, engine->max_key_bytes);
            kv_engine_close(engine);
            return 2;
        }
        cfg.limits.max_key_bytes = engine->max_key_bytes;
    }

    kv_server srv;
    if (kv_server_init(&srv, &cfg, engine, err, sizeof err) < 0) {
        fprintf(stderr, "kvstored: %s\n", err);
        kv_engine_close(engine);
        return 1;
    }
    kv_cluster cluster;
    if (clustered) {
        /* The engine's state is the log's: rebuilt by raft from the last
         * snapshot and the entries after it, on every start. */
        char where[KV_FSM_ADDR_MAX];
        kv_server_address(&srv, where, sizeof where);
        err[0] = 0;
        kv_engine_set_clock(engine, CLOCK_REALTIME);
        if (kv_engine_reset(engine, 0) != KV_OK
            || kv_cluster_start(&cluster, &ccfg, srv.loop, &srv.env, where, err, sizeof err) < 0) {
            fprintf(stderr, "kvstored: %s\n", err[0] ? err : "the engine cannot be emptied");
            kv_server_free(&srv);
            kv_engine_close(engine);
            return 1;
        }
        kv_server_join(&srv, &cluster);
    }
    log_start(&srv, engine, dir, &eopts);
    kv_server_run(&srv);
    if (clustered)
        kv_cluster_close(&cluster);
    const char *failed = srv.failed;
    kv_server_free(&srv);
    if (kv_engine_close(engine) != KV_OK) {
        kv_log(KV_LOG_ERROR, "stopped, but closing engine %s failed: what the last turn "
               "wrote may not be on disk", engine_name);
        return 1;
    }
    kv_log(KV_LOG_INFO, "stopped: engine %s closed", engine_name);
    return failed ? 1 : 0;
}
