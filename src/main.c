/* main.c - kvstored's start: takes the settings (config.c: flags and the
 * --config file), opens the log and the engine, runs the server, tells
 * systemd when it is ready, closes the engine on the way out, and logs the
 * start (what is in force) and the stop. Until the server listens, a problem is one plain
 * "kvstored: ..." line and an exit (2: usage, 1: could not start): that is
 * an answer to whoever ran it, not an event of a running server. After
 * that, everything goes through log.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include "config.h"
#include "endpoint.h"
#include "expire.h"
#include "restore.h"
#include "listen.h"
#include "engine.h"
#include "log.h"
#include "size.h"
#include "server.h"
#include "cluster.h"

static void usage(FILE *f)
{
    fprintf(f,
"Usage: kvstored [OPTION]...\n"
"Serve the kvstore key-value protocol (docs/PROTOCOL.md) over TCP.\n"
"\n"
"      --config FILE           read settings from FILE: one \"name = value\" a\n"
"                              line, the names of the long options below\n"
"                              (without --); # or ; starts a comment line; an\n"
"                              optional [kvstored] section. Options given on\n"
"                              the command line win over the file\n"
"      --print-config          print the settings in force (the file, the\n"
"                              options, the defaults) in that format and exit\n"
"      --restore FILE          load the backup FILE (kvctl snapshot save) into\n"
"                              the store before serving, keys and revisions as\n"
"                              they were (keys expired since are skipped); the\n"
"                              whole file is checked first, and a damaged one\n"
"                              refused with nothing loaded. The store must be\n"
"                              empty (lmdb: a new --dir) unless --force, which\n"
"                              replaces its data. Then serves as usual. Not for\n"
"                              a cluster member\n"
"      --force                 with --restore: replace the data of a store\n"
"                              that has some\n"
"\n"
"  -l, --listen HOST:PORT      address to listen on (default " KV_DEFAULT_LISTEN ");\n"
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
            kv_engine_names(), KV_DEFAULT_SYNC_INTERVAL_MS, KV_DEFAULT_MAX_CLIENTS,
            KV_DEFAULT_IDLE_TIMEOUT, KV_WATCH_DEFAULT_HISTORY, KV_EXPIRE_BATCH);
    /* Several calls: ISO C guarantees string literals of 4095 bytes only. */
    fprintf(f,
"\n"
"Metrics and the slow log (see README, \"Metrics\"):\n"
"      --metrics-listen HOST:PORT\n"
"                              serve GET /metrics (Prometheus's text format:\n"
"                              every Stats figure, a latency histogram per\n"
"                              method) and GET /health (200 while serving; a\n"
"                              cluster member: 503 while it knows no leader)\n"
"                              over HTTP on HOST:PORT, from the same loop.\n"
"                              Default: off. Port 0 picks a free port, printed\n"
"                              as \"metrics on HOST:PORT\" before \"listening\n"
"                              on\". No authentication: bind it where only\n"
"                              your scrapers reach. HTTPS with --tls-cert's\n"
"                              certificate and key (no client certificate\n"
"                              asked for), unless --metrics-tls=no\n"
"      --metrics-tls[=yes|no]  with --tls-cert, HTTPS on --metrics-listen\n"
"                              (default yes)\n"
"      --slowlog-us N          requests slower than N microseconds go in the\n"
"                              slow log (default %d; 0: every request)\n"
"      --slowlog-max-len N     entries the slow log keeps, the oldest dropped\n"
"                              first (default %d; 0: no slow log)\n",
            KV_SLOWLOG_DEFAULT_US, KV_SLOWLOG_DEFAULT_LEN);
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
"      --tls-cert FILE         serve TLS (1.2 and 1.3 only) on --listen with\n"
"                              the certificate chain in FILE (PEM, the\n"
"                              server's first); plaintext clients are then\n"
"                              refused there. Needs --tls-key\n"
"      --tls-key FILE          the private key of --tls-cert (PEM)\n"
"      --tls-client-ca FILE    require every client to present a certificate\n"
"                              signed by a CA in FILE (PEM): mutual TLS. With\n"
"                              --auth-token-file, both apply\n"
"      --tls-peer-ca FILE      a cluster member's calls to the others' client\n"
"                              ports (--join, its address told to the\n"
"                              leader) trust the CAs in FILE (default:\n"
"                              --tls-client-ca, else the system's)\n"
"      --tls-only[=yes|no]     every listener speaks TLS: --plain-listen and\n"
"                              --metrics-tls=no are refused (default no)\n"
"      --plain-listen HOST:PORT\n"
"                              with --tls-cert, serve plaintext too on\n"
"                              HOST:PORT, a loopback address only (127.0.0.0/8,\n"
"                              [::1], localhost), printed as \"plaintext on\n"
"                              HOST:PORT\"; --max-clients counts both\n"
"\n"
"Logs (one line per event on stderr, or --log-file, with a UTC timestamp):\n"
"      --log-level error|warn|info|debug\n"
"                              the least severe events written (default info:\n"
"                              start, stop, limits hit, engine errors; debug\n"
"                              adds each connection accepted, refused or\n"
"                              closed, with\n"
"                              its peer address and the reason)\n"
"      --log-format text|json  text (default): TIME LEVEL MESSAGE; json: one\n"
"                              object per line with ts, level and msg\n"
"      --log-file PATH         append the log to PATH (created if missing)\n"
"                              instead of stderr; SIGHUP reopens it, for\n"
"                              logrotate\n"
"\n"
"  -h, --help                  show this help and exit\n"
"  -V, --version               show the version and exit\n"
"\n"
"SIGINT or SIGTERM: stop accepting, write pending answers (up to 5 s), close\n"
"the engine, exit 0. SIGHUP reopens --log-file and reloads the --tls-cert,\n"
"--tls-key and --tls-client-ca files for --listen and --metrics-listen (open\n"
"connections stay, but a scrape in flight is cut; files that do not load\n"
"leave the old ones in force); with neither it is ignored.\n"
"Under systemd (Type=notify) kvstored says READY=1 once it serves and\n"
"STOPPING=1 when it begins to stop. Exit status 1: could not start; 2: bad\n"
"usage or a bad --config file.\n",
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
"      --raft-listen HOST:PORT the address of this node's peer traffic: plain\n"
"                              TCP even with --tls-cert (libraft has no TLS):\n"
"                              keep it on a network only the members reach\n"
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
"over first. A node removed from the cluster stops (exit 1). With --tls-cert\n"
"a member's client port and its calls to the others' speak TLS.\n",
            KV_CLUSTER_DEFAULT_SNAPSHOT_THRESHOLD, KV_CLUSTER_DEFAULT_SNAPSHOT_TRAILING,
            KV_CLUSTER_DEFAULT_ELECTION_MS, KV_DEDUP_DEFAULT_ENTRIES);
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
    /* --listen's address decides the warning: --plain-listen is on
     * loopback (server.c checks the address bound). */
    int local = kv_listen_address(srv->listeners[0].fd, where, sizeof where);
    char plain[KV_ENDPOINT_HOST_MAX + 48] = "";

    kv_engine_stats_get(engine, &es);
    if (srv->n_listeners > 1)
        snprintf(plain, sizeof plain, " and in plaintext on %s", srv->listeners[1].address);
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
    kv_log(KV_LOG_INFO, "kvstored %s started: engine %s%s, listening on %s%s; limits: "
           "--max-clients %zu --max-frame-bytes %s --max-key-bytes %s --max-value-bytes %s "
           "--max-memory-bytes %s --max-input-bytes %s --max-output-bytes %s "
           "--idle-timeout %g; auth %s; tls %s%s%s%s%s",
           KV_VERSION, engine->ops->name, store, where, plain, cfg->max_clients,
           kv_size_text(cfg->max_frame_bytes, frame, sizeof frame),
           kv_size_text(cfg->limits.max_key_bytes, key, sizeof key),
           kv_size_text(cfg->limits.max_value_bytes, value, sizeof value),
           kv_size_text(cfg->limits.max_memory_bytes, mem, sizeof mem),
           kv_size_text(cfg->input_budget, in, sizeof in),
           kv_size_text(cfg->output_budget, out, sizeof out),
           cfg->idle_timeout, cfg->auth ? "on (--auth-token-file)" : "off",
           !srv->tls ? "off" : cfg->tls.client_ca ? "on, client certificates required"
                                                  : "on",
           cfg->tls_only ? " (--tls-only)" : "",
           srv->env.metrics_address ? "; metrics on " : "",
           srv->env.metrics_address ? srv->env.metrics_address : "",
           srv->metrics.https ? " (https)" : "");
    if (!local && !cfg->auth && !cfg->tls.client_ca)
        kv_log(KV_LOG_WARN, "listening on %s, beyond loopback, without --auth-token-file or --tls-client-ca: "
               "anyone who can reach it can read, change and clear every key", where);
}

int main(int argc, char **argv)
{
    kv_settings set;
    kv_auth auth;
    char err[512];

    switch (kv_settings_load(&set, argc, argv)) {
    case KV_SETTINGS_RUN: break;
    case KV_SETTINGS_HELP: usage(stdout); return 0;
    case KV_SETTINGS_VERSION: printf("kvstored %s\n", KV_VERSION); return 0;
    case KV_SETTINGS_PRINT: kv_settings_print(&set, stdout); return 0;
    default: return 2;
    }
    kv_server_config *cfg = &set.server;
    kv_cluster_config *ccfg = &set.cluster;
    const char *engine_name = set.engine_name, *dir = set.dir;
    int clustered = ccfg->node_id != 0;
    if (clustered)
        set.engine.sync = KV_SYNC_NONE;  /* the raft log is the write-ahead log */
    if (set.log_file && kv_log_open(set.log_file, err, sizeof err) < 0) {
        fprintf(stderr, "kvstored: --log-file: %s\n", err);
        return 1;
    }
    kv_log_setup(set.log_level, set.log_format);
    raise_fd_limit(cfg->max_clients);
    if (set.token_file) {
        if (kv_auth_load(&auth, set.token_file, err, sizeof err) < 0) {
            fprintf(stderr, "kvstored: %s\n", err);
            return 1;
        }
        cfg->auth = &auth;
    }

    kv_engine *engine;
    err[0] = 0;
    if (kv_engine_open(engine_name, dir, &set.engine, &engine, err, sizeof err) != KV_OK) {
        fprintf(stderr, "kvstored: engine %s: %s\n", engine_name, err[0] ? err : "cannot open");
        return 1;
    }
    /* The engine may store shorter keys than the default limit: the limit
     * follows it, and an explicit one above it is refused. */
    if (engine->max_key_bytes && cfg->limits.max_key_bytes > engine->max_key_bytes) {
        if (set.key_limit_set) {
            fprintf(stderr, "kvstored: --max-key-bytes: engine %s stores keys of at most %zu bytes\n",
                    engine_name, engine->max_key_bytes);
            kv_engine_close(engine);
            return 2;
        }
        cfg->limits.max_key_bytes = engine->max_key_bytes;
    }
    if (set.restore) {
        kv_restore_info ri;
        if (kv_restore_file(engine, set.restore, set.force, &ri, err, sizeof err) < 0) {
            fprintf(stderr, "kvstored: --restore: %s\n", err);
            kv_engine_close(engine);
            return 1;
        }
        kv_log(KV_LOG_INFO, "restored %s: revision %llu, %llu keys (%llu expired since, "
               "skipped)", set.restore, (unsigned long long)ri.revision,
               (unsigned long long)ri.keys, (unsigned long long)ri.expired);
    }
    cfg->dir = dir;

    kv_server srv;
    if (kv_server_init(&srv, cfg, engine, err, sizeof err) < 0) {
        fprintf(stderr, "kvstored: %s\n", err);
        kv_engine_close(engine);
        return 1;
    }
    /* Stats reports the settings in force, as --print-config shows them. */
    const char **settings = kv_settings_pairs(&set, &srv.env.n_settings);
    srv.env.settings = settings;
    if (!settings)
        srv.env.n_settings = 0;
    kv_cluster cluster;
    if (clustered) {
        /* The engine's state is the log's: rebuilt by raft from the last
         * snapshot and the entries after it, on every start. */
        char where[KV_FSM_ADDR_MAX];
        kv_server_address(&srv, where, sizeof where);
        err[0] = 0;
        kv_engine_set_clock(engine, CLOCK_REALTIME);
        if (kv_engine_reset(engine, 0) != KV_OK
            || kv_cluster_start(&cluster, ccfg, srv.loop, &srv.env, where, err, sizeof err) < 0) {
            fprintf(stderr, "kvstored: %s\n", err[0] ? err : "the engine cannot be emptied");
            kv_server_free(&srv);
            free(settings);
            kv_engine_close(engine);
            return 1;
        }
        kv_server_join(&srv, &cluster);
    }
    log_start(&srv, engine, dir, &set.engine);
    /* Listening, and raft started in a cluster: systemd may start what
     * depends on us (Type=notify; a no-op when NOTIFY_SOCKET is unset). */
    sd_notify(0, "READY=1");
    kv_server_run(&srv);
    if (clustered)
        kv_cluster_close(&cluster);
    const char *failed = srv.failed;
    kv_server_free(&srv);
    free(settings);
    if (kv_engine_close(engine) != KV_OK) {
        kv_log(KV_LOG_ERROR, "stopped, but closing engine %s failed: what the last turn "
               "wrote may not be on disk", engine_name);
        return 1;
    }
    kv_log(KV_LOG_INFO, "stopped: engine %s closed", engine_name);
    return failed ? 1 : 0;
}
