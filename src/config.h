/* config.h - kvstored's settings: their defaults, the one rule that applies
 * a (name, value) pair whether it comes from a flag or from the --config
 * file, the file's reader, and --print-config. Knows nothing of starting
 * the server (main.c). */
#ifndef KV_CONFIG_H
#define KV_CONFIG_H

#include <stdio.h>
#include "cluster.h"
#include "engine.h"
#include "log.h"
#include "server.h"

/* kvstored's --listen when none is given. */
#define KV_DEFAULT_LISTEN "127.0.0.1:7379"
/* --sync-interval-ms when none is given. */
#define KV_DEFAULT_SYNC_INTERVAL_MS 100

/* Everything kvstored is told. Strings point into argv or into copies of
 * the file's values that live until the process exits. */
typedef struct kv_settings {
    kv_server_config server;        /* listen, limits, watch history */
    kv_cluster_config cluster;      /* node-id .. dedup-window */
    kv_engine_options engine;       /* sync, sync-interval-ms, lmdb-map-size */
    const char *engine_name;        /* --engine */
    const char *dir;                /* --dir, or NULL */
    const char *token_file;         /* --auth-token-file, or NULL */
    const char *log_file;           /* --log-file, or NULL: stderr */
    kv_log_level log_level;
    kv_log_format log_format;
    int key_limit_set;              /* --max-key-bytes was given */
    const char *restore;            /* --restore FILE (command line only), or NULL */
    int force;                      /* --force: restore into a store with data */
} kv_settings;

/* What kv_settings_load found the command line asks for. */
typedef enum kv_settings_action {
    KV_SETTINGS_RUN = 0,            /* serve with the settings */
    KV_SETTINGS_HELP,               /* --help */
    KV_SETTINGS_VERSION,            /* --version */
    KV_SETTINGS_PRINT,              /* --print-config */
} kv_settings_action;

/* Fills S with the defaults, then what the --config file says, then the
 * flags of ARGV (which win over the file, in whatever order they come),
 * and checks the settings against each other. Returns what to do, or -1
 * when a flag or the file is refused: then one line "kvstored: ..." (the
 * file's name and line for the file) is on stderr, and kvstored exits 2. */
int kv_settings_load(kv_settings *s, int argc, char **argv);

/* Writes S to F in the --config file's format, every setting, defaults
 * included; those not set come out as "# name =" comments. */
void kv_settings_print(const kv_settings *s, FILE *f);

/* The settings, in --help's order: how many, and the name of the I-th
 * (static; NULL past the end). */
size_t kv_settings_count(void);
const char *kv_settings_name(size_t i);

/* Room enough for any value kv_settings_value() writes into BUF. */
#define KV_SETTINGS_VALUE_MAX 64

/* The value of setting I in S as --print-config shows it: a string of S's
 * or a static one, or BUF (LEN bytes) holding it. Returns NULL when the
 * setting is not set (or I is past the end). The auth token file's path,
 * never a token. */
const char *kv_settings_value(const kv_settings *s, size_t i, char *buf, size_t len);

/* Every setting of S as name, value, name, value ... (an unset one's value
 * ""), for Stats (kv_service_env.settings); *N is set to the pairs. One
 * malloc'd block the caller frees with free(); NULL when memory is out. */
const char **kv_settings_pairs(const kv_settings *s, size_t *n);

#endif
