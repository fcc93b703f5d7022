/* shell.c - the interactive shell: libedit for line editing, history
 * (kept in ~/.kvctl_history) and completion of command names, a prompt
 * naming the endpoint, and a connection opened again after it is lost or
 * its authentication failed.
 * Parsing is args.c's and cmd.c's, running exec.c's, printing out.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <editline/readline.h>

#include "args.h"
#include "cmd.h"
#include "conn.h"
#include "exec.h"
#include "mem.h"
#include "out.h"
#include "shell.h"
#include "usage.h"
#include "watch.h"

enum { HISTORY_MAX = 1000 };

typedef struct shell {
    const kvctl_conf *conf;
    kvctl_out out;
    kv_client *c;       /* NULL until connected, and after a lost connection */
    char *histfile;     /* NULL: no history file */
} shell;

/* rl_completion_matches() generator over command names and shell words. */
static char *complete_word(const char *text, int state)
{
    static const char *const extra[] = { "help", "quit", "exit", NULL };
    static int i;
    size_t n = strlen(text);
    int ncmds = 0;

    while (kvctl_cmd_specs[ncmds].name)
        ncmds++;
    if (state == 0)
        i = 0;
    while (i < ncmds + 3) {
        const char *w = i < ncmds ? kvctl_cmd_specs[i].name : extra[i - ncmds];
        i++;
        if (strncmp(w, text, n) == 0)
            return strdup(w);   /* libedit frees it */
    }
    return NULL;
}

static char **complete(const char *text, int start, int end)
{
    (void)end;
    rl_attempted_completion_over = 1;   /* never fall back to file names */
    return start == 0 ? rl_completion_matches(text, complete_word) : NULL;
}

static void shell_help(const kvctl_bytes *w, int n)
{
    const kvctl_cmd_spec *spec = n > 1 ? kvctl_cmd_find((char *)w[1].data) : NULL;

    if (n > 1 && !spec) {
        fprintf(stderr, "kvctl: help: unknown command \"%s\" (see 'help')\n",
                (char *)w[1].data);
        return;
    }
    if (spec)
        kvctl_cmd_print_help(spec, 1, stdout);
    else
        kvctl_usage_shell(stdout);
}

/* Runs the command in words W[0..N) on the shell's connection. */
static void shell_run(shell *sh, const kvctl_bytes *w, int n)
{
    kvctl_cmd cmd;
    kvctl_result r, why;
    char err[512], reason[600];

    if (kvctl_cmd_parse(w, n, 0, &cmd, err, sizeof err) < 0) {
        kvctl_cmd_usage_reason((char *)w[0].data, err, 1, reason, sizeof reason);
        kvctl_out_usage(&sh->out, (char *)w[0].data, reason);
        return;
    }
    if (kvctl_cmd_runs_alone(cmd.op)) {
        char why[160];
        const char *name = cmd.name;
        snprintf(why, sizeof why, "%s: not in the shell; run 'kvctl %s ...'", name, name);
        kvctl_cmd_clear(&cmd);
        kvctl_out_usage(&sh->out, name, why);
        return;
    }
    if (!sh->c) {   /* not yet, or lost, or its authentication failed */
        sh->c = kvctl_conn_open(sh->conf, &why);
        if (!sh->c)
            kvctl_exec_fail(&r, &why);
        kvctl_exec_result_clear(&why);
    }
    if (sh->c && cmd.op == KVCTL_OP_WATCH)
        kvctl_watch_run(sh->c, &cmd, &sh->out, 1, &r);
    else if (sh->c)
        kvctl_exec_run(sh->c, &cmd, &r, 1,
                       &(kvctl_exec_hooks){ &sh->out, kvctl_out_page, NULL });
    kvctl_out_result(&sh->out, &cmd, &r);
    if (r.transport) {   /* reconnect on the next command */
        kv_client_free(sh->c);
        sh->c = NULL;
    }
    kvctl_exec_result_clear(&r);
    kvctl_cmd_clear(&cmd);
}

/* Handles one line. Returns 1 when the shell should end. */
static int shell_line(shell *sh, const char *line)
{
    kvctl_bytes *w;
    char err[256];
    int n = kvctl_args_split(line, strlen(line), &w, err, sizeof err), quit = 0;
    const char *name;

    if (n != 0) {
        add_history(line);
        /* Values typed here may be secrets: the file is the user's alone. */
        if (sh->histfile && write_history(sh->histfile) == 0)
            chmod(sh->histfile, 0600);
    }
    if (n < 0) {
        fprintf(stderr, "kvctl: %s\n", err);
        return 0;
    }
    if (n == 0)
        return 0;
    name = (char *)w[0].data;
    if (strcmp(name, "quit") == 0 || strcmp(name, "exit") == 0)
        quit = 1;
    else if (strcmp(name, "help") == 0 || strcmp(name, "?") == 0)
        shell_help(w, n);
    else if (n > 1 && (strcmp((char *)w[1].data, "--help") == 0
                       || strcmp((char *)w[1].data, "-h") == 0)
             && kvctl_cmd_find(name))
        kvctl_cmd_print_help(kvctl_cmd_find(name), 1, stdout);
    else
        shell_run(sh, w, n);
    fflush(stdout);
    kvctl_args_free(w, n);
    return quit;
}

int kvctl_shell_run(const kvctl_conf *conf)
{
    shell sh = { .conf = conf };
    const char *home = getenv("HOME");
    char *prompt;
    kvctl_result why;
    size_t plen = strlen(kvctl_conn_name(conf)) + 3;

    /* A terminal that is not stdout (kvctl | tee log) still gets lines. */
    kvctl_out_init(&sh.out, conf->format, !isatty(STDOUT_FILENO));
    prompt = kvctl_mem_alloc(plen);
    snprintf(prompt, plen, "%s> ", kvctl_conn_name(conf));

    rl_readline_name = "kvctl";
    rl_attempted_completion_function = complete;
    using_history();
    stifle_history(HISTORY_MAX);
    if (home && *home) {
        size_t n = strlen(home) + sizeof "/.kvctl_history";
        sh.histfile = kvctl_mem_alloc(n);
        snprintf(sh.histfile, n, "%s/.kvctl_history", home);
        read_history(sh.histfile);
    }

    printf("kvctl %s, server %s. Type 'help' for commands, 'quit' or Ctrl-D to leave.\n",
           KV_VERSION, kvctl_conn_name(conf));
    fflush(stdout);
    sh.c = kvctl_conn_open(conf, &why);
    if (!sh.c)
        fprintf(stderr, "kvctl: %s%s%s%s (will retry on the next command)\n",
                why.auth ? "auth: " : "", why.auth ? kv_status_name(why.status) : "",
                why.auth ? ": " : "", why.message);
    kvctl_exec_result_clear(&why);

    for (;;) {
        char *line = readline(prompt);
        int quit;

        if (!line) {    /* Ctrl-D */
            putchar('\n');
            break;
        }
        quit = shell_line(&sh, line);
        free(line);
        if (quit)
            break;
    }
    kv_client_free(sh.c);
    free(sh.histfile);
    free(prompt);
    return KVCTL_EXIT_OK;
}
