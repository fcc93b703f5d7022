/* main.c - kvstored's command line: parses flags, opens the engine, runs the
 * server, closes the engine on the way out. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "server.h"

#define DEFAULT_LISTEN "127.0.0.1:7379"

static void usage(FILE *f)
{
    fprintf(f,
"Usage: kvstored [OPTION]...\n"
"Serve the kvstore key-value protocol (docs/PROTOCOL.md) over TCP.\n"
"\n"
"  -l, --listen HOST:PORT     address to listen on (default " DEFAULT_LISTEN ");\n"
"                             port 0 picks a free port. The bound address is\n"
"                             printed as \"listening on HOST:PORT\" once ready\n"
"  -e, --engine NAME          storage engine: %s (default memory)\n"
"  -d, --dir PATH             directory for engines that keep files\n"
"      --max-frame-bytes N    largest accepted request frame, in bytes; K, M, G\n"
"                             suffixes allowed (default 16M). Larger frames get\n"
"                             RESOURCE_EXHAUSTED and the connection is closed\n"
"  -h, --help                 show this help and exit\n"
"  -V, --version              show the version and exit\n"
"\n"
"SIGINT or SIGTERM: stop accepting, write pending answers (up to 5 s), close\n"
"the engine, exit 0.\n",
            kv_engine_names());
}

/* Parses "123", "64K", "16M", "1G". Returns 0 or -1. */
static int parse_size(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned shift = 0;

    if (errno || end == s || s[0] == '-')
        return -1;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: break;
    }
    if (*end || v > (max >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int main(int argc, char **argv)
{
    enum { OPT_MAX_FRAME = 256 };
    static const struct option opts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "engine", required_argument, NULL, 'e' },
        { "dir", required_argument, NULL, 'd' },
        { "max-frame-bytes", required_argument, NULL, OPT_MAX_FRAME },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    kv_server_config cfg = { .listen = DEFAULT_LISTEN,
                             .max_frame_bytes = KV_DEFAULT_MAX_FRAME_BYTES };
    const char *engine_name = "memory", *dir = NULL;
    char err[512];
    uint64_t n;
    int opt;

    while ((opt = getopt_long(argc, argv, "l:e:d:hV", opts, NULL)) != -1) {
        switch (opt) {
        case 'l': cfg.listen = optarg; break;
        case 'e': engine_name = optarg; break;
        case 'd': dir = optarg; break;
        case OPT_MAX_FRAME:
            if (parse_size(optarg, UINT32_MAX, &n) < 0 || n == 0) {
                fprintf(stderr, "kvstored: --max-frame-bytes: \"%s\" is not a size "
                        "between 1 and 4294967295\n", optarg);
                return 2;
            }
            cfg.max_frame_bytes = (uint32_t)n;
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

    kv_engine *engine;
    kv_engine_options eopts = { 0 };
    if (kv_engine_open(engine_name, dir, &eopts, &engine, err, sizeof err) != KV_OK) {
        fprintf(stderr, "kvstored: engine %s: %s\n", engine_name, err[0] ? err : "cannot open");
        return 1;
    }

    kv_server srv;
    if (kv_server_init(&srv, &cfg, engine, err, sizeof err) < 0) {
        fprintf(stderr, "kvstored: %s\n", err);
        kv_engine_close(engine);
        return 1;
    }
    kv_server_run(&srv);
    kv_server_free(&srv);
    if (kv_engine_close(engine) != KV_OK) {
        fprintf(stderr, "kvstored: closing the engine failed\n");
        return 1;
    }
    return 0;
}
