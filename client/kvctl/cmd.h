/* cmd.h - the commands of kvctl (one per rpc of the KV service, get and
 * clear also reaching Range and ClearRange with --prefix, ttl reading a
 * Get): their table,
 * their options, their help, and turning words into a command ready to
 * send. */
#ifndef KVCTL_CMD_H
#define KVCTL_CMD_H

#include <stdio.h>
#include <kvstore/client.h>
#include "kvctl.h"

typedef enum kvctl_op {
    KVCTL_OP_PING,
    KVCTL_OP_GET,
    KVCTL_OP_SET,
    KVCTL_OP_CLEAR,
    KVCTL_OP_STATS,
    KVCTL_OP_RANGE,         /* range, get --prefix */
    KVCTL_OP_CLEAR_RANGE,   /* clear --prefix / --range / --all */
    KVCTL_OP_TXN,
    KVCTL_OP_TOUCH,
    KVCTL_OP_TTL,           /* a Get, for the key's time to live */
    KVCTL_OP_WATCH,         /* runs until interrupted: watch.c, not exec.c */
    KVCTL_OP_OWN,           /* a command with connections of its own, run by
                               its spec's run function (cluster, slowlog,
                               clients, snapshot, dump, load),
                               on the command line only */
} kvctl_op;

struct kvctl_out;
struct kvctl_cmd;
/* How a KVCTL_OP_OWN command runs: as CONF says, printing to O. Returns
 * kvctl's exit code. */
typedef int (*kvctl_run_fn)(const kvctl_conf *conf, const struct kvctl_cmd *cmd,
                            const struct kvctl_out *o);

/* What a cluster command does. */
typedef enum kvctl_cluster_sub {
    KVCTL_CLUSTER_STATUS,
    KVCTL_CLUSTER_ADD,
    KVCTL_CLUSTER_REMOVE,
    KVCTL_CLUSTER_TRANSFER,
} kvctl_cluster_sub;

/* One command. Owns its byte strings and txn; free them with
 * kvctl_cmd_clear(). */
typedef struct kvctl_cmd {
    kvctl_op op;
    const char *name;      /* the command word ("get" for get --prefix); static */
    kvctl_bytes key;       /* get, set, clear, touch, ttl; range, clear
                            * range, watch: the start, or the prefix when
                            * prefix is set */
    kvctl_bytes end;       /* range, clear range, watch: the end (empty:
                            * none) */
    kvctl_bytes value;     /* set */
    char *message;         /* ping; NULL when none was given */
    int value_from_stdin;  /* set: the caller must read value from stdin */
    int has_if_revision;   /* set, clear: --if-revision was given ... */
    uint64_t if_revision;  /* ... with this mod_revision */
    int prefix;            /* range, clear range, watch: key is a prefix */
    int range;             /* watch: key and end are START and END (--range) */
    int all;               /* clear range, watch: every key (--all) */
    uint64_t ttl_ms;       /* set: --ttl; touch: DUR (0: no time to live) */
    int keep_ttl;          /* set: --keep-ttl */
    uint64_t start_revision; /* watch: --rev N (0: the changes after now) */
    int prev_kv;           /* watch: --prev */
    uint64_t limit;        /* range: at most this many keys; 0 = all */
    int keys_only;         /* range: without values */
    int count_only;        /* range: only how many keys */
    int reverse;           /* range: descending */
    int serializable;      /* get, range: --serializable (--consistency=s) */
    kvctl_run_fn run;      /* KVCTL_OP_OWN: what runs it */
    kvctl_cluster_sub cluster;  /* cluster: the subcommand */
    uint64_t member_id;    /* cluster add, remove, transfer: ID (0: none) */
    char *raft_addr;       /* cluster add: RAFT_ADDR */
    char *client_addr;     /* cluster add: CLIENT_ADDR; NULL when not given */
    int clients_kill;      /* clients kill: ClientKill, not ClientList ... */
    char *kill_peer;       /* ... of the connections from PEER (owned) ... */
    uint64_t kill_id;      /* ... or, when kill_peer is NULL, of this one */
    int txn_from_stdin;    /* txn: the caller must read it from stdin and
                            * fill txn with kvctl_txn_parse_text() */
    Kvstore__V1__TxnRequest *txn;  /* txn: the request (txn.h), owned */
    int reset;             /* slowlog: --reset */
    char *path;            /* snapshot save, dump, load: FILE (NULL or "-":
                            * standard output or input), owned */
} kvctl_cmd;

/* A row of the command table. A command typed in the shell or a batch
 * line cannot read standard input (the commands come from there), so where
 * its syntax differs there, the line_ fields say how; NULL: as on the
 * command line. */
typedef struct kvctl_cmd_spec {
    const char *name;
    kvctl_op op;
    const char *args;      /* "KEY [VALUE]"; "" when it takes none */
    const char *line_args;
    int min_args;
    int max_args;          /* -1: no limit */
    const char *opts;      /* its options for the usage line, as
                            * "[--if-revision N]" ("" when its ARGS show
                            * them); NULL: it takes none and every word
                            * is an argument */
    const char *summary;   /* one line, for the command list */
    const char *line_summary;
    const char *details;   /* the rest of "COMMAND --help" */
    const char *line_details;
    kvctl_run_fn run;      /* KVCTL_OP_OWN: what runs it; NULL otherwise */
} kvctl_cmd_spec;

/* The table, ending with a row whose name is NULL. */
extern const kvctl_cmd_spec kvctl_cmd_specs[];

/* A command option, as main.c hands it to getopt_long. */
typedef struct kvctl_cmd_option {
    const char *name;      /* "limit" for --limit */
    int has_arg;           /* takes a value: --limit N, --limit=N */
} kvctl_cmd_option;

/* The command options of every command, ending with a NULL name. */
extern const kvctl_cmd_option kvctl_cmd_options[];

/* The spec named NAME (exact, case-sensitive), or NULL. */
const kvctl_cmd_spec *kvctl_cmd_find(const char *name);

/* SPEC's arguments and one-line summary on the command line, or with
 * LINES in the shell and batch lines. Static strings. */
const char *kvctl_cmd_args(const kvctl_cmd_spec *spec, int lines);
const char *kvctl_cmd_summary(const kvctl_cmd_spec *spec, int lines);

/* Builds CMD from WORDS[0..N) (WORDS[0] is the command name). For a
 * command that takes options (spec->opts), any word "--NAME" or
 * "--NAME=VALUE" before a word "--" is an option, and one it does not know
 * is an error; for the others every word is an argument. STDIN_OK says
 * whether set may read its value, and txn itself, from standard input
 * (only on the command line: the shell and batch mode read commands from
 * there). Returns 0 and fills CMD, or -1 with a one-line reason that
 * starts with the command's name ("get: missing KEY") in ERR and CMD
 * empty. */
int kvctl_cmd_parse(const kvctl_bytes *words, int n, int stdin_ok,
                    kvctl_cmd *cmd, char *err, size_t errlen);

/* Writes into BUF "ERR (see 'HELP')", HELP being how to get help on the
 * command NAME (may be NULL or unknown): "kvctl get --help" or, in the
 * SHELL, "help get". */
void kvctl_cmd_usage_reason(const char *name, const char *err, int shell,
                            char *buf, size_t len);

/* Frees what CMD owns and empties it. */
void kvctl_cmd_clear(kvctl_cmd *cmd);

/* The name of OP ("get"); a static string. */
const char *kvctl_cmd_name(kvctl_op op);

/* Whether commands of OP name one key (get, set, clear, touch, ttl). */
int kvctl_cmd_has_key(kvctl_op op);

/* Writes into BUF (LEN bytes) what CMD is about, for error lines: the
 * quoted key ("\"k\""), "--prefix \"p\"", the quoted range bounds, "--all",
 * or "" for a command about no key. */
void kvctl_cmd_target(const kvctl_cmd *cmd, char *buf, size_t len);

/* Prints SPEC's help to FP: for "kvctl COMMAND --help", or with SHELL
 * for the shell's "help COMMAND", in the shell's syntax. */
void kvctl_cmd_print_help(const kvctl_cmd_spec *spec, int shell, FILE *fp);

#endif
