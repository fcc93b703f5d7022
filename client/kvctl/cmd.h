/* cmd.h - the commands of kvctl (one per rpc of the KV service): their
 * table, their help, and turning words into a command ready to send. */
#ifndef KVCTL_CMD_H
#define KVCTL_CMD_H

#include <stdio.h>
#include "kvctl.h"

typedef enum kvctl_op {
    KVCTL_OP_PING,
    KVCTL_OP_GET,
    KVCTL_OP_SET,
    KVCTL_OP_CLEAR,
    KVCTL_OP_STATS,
} kvctl_op;

/* One command. Owns its byte strings; free them with kvctl_cmd_clear(). */
typedef struct kvctl_cmd {
    kvctl_op op;
    kvctl_bytes key;       /* get, set, clear */
    kvctl_bytes value;     /* set */
    char *message;         /* ping; NULL when none was given */
    int value_from_stdin;  /* set: the caller must read value from stdin */
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
    int max_args;
    const char *summary;   /* one line, for the command list */
    const char *line_summary;
    const char *details;   /* the rest of "COMMAND --help" */
    const char *line_details;
} kvctl_cmd_spec;

/* The table, ending with a row whose name is NULL. */
extern const kvctl_cmd_spec kvctl_cmd_specs[];

/* The spec named NAME (exact, case-sensitive), or NULL. */
const kvctl_cmd_spec *kvctl_cmd_find(const char *name);

/* SPEC's arguments and one-line summary on the command line, or with
 * LINES in the shell and batch lines. Static strings. */
const char *kvctl_cmd_args(const kvctl_cmd_spec *spec, int lines);
const char *kvctl_cmd_summary(const kvctl_cmd_spec *spec, int lines);

/* Builds CMD from WORDS[0..N) (WORDS[0] is the command name). STDIN_OK
 * says whether set may read its value from standard input (only on the
 * command line: the shell and batch mode read commands from there).
 * Returns 0 and fills CMD, or -1 with a one-line reason that starts with
 * the command's name ("get: missing KEY") in ERR and CMD empty. */
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

/* Whether commands of OP name a key (get, set, clear). */
int kvctl_cmd_has_key(kvctl_op op);

/* Prints SPEC's help to FP: for "kvctl COMMAND --help", or with SHELL
 * for the shell's "help COMMAND", in the shell's syntax. */
void kvctl_cmd_print_help(const kvctl_cmd_spec *spec, int shell, FILE *fp);

#endif
