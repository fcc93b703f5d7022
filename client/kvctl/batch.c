/* batch.c - batch mode. Reads commands line by line from a non-terminal
 * input and pipelines each chunk of lines that has already arrived on one
 * connection, so a file of 1,000 commands costs a few round trips while a
 * program feeding lines one at a time still gets each answer at once.
 * Parsing is cmd.c's, running exec.c's, printing out.c's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "batch.h"
#include "cmd.h"
#include "conn.h"
#include "exec.h"
#include "lines.h"
#include "mem.h"
#include "out.h"

/* Bounds the memory of one chunk; a chunk is one pipeline. */
enum { CHUNK_MAX = 4096 };

/* One input line that is a command, or a usage error in its place. */
typedef struct batch_entry {
    int ok;          /* cmd holds a parsed command */
    kvctl_cmd cmd;
    char *name;      /* !ok: the command word (may be NULL) */
    char *reason;    /* !ok: why the line is not a command */
} batch_entry;

/* Parses LINE into E. Returns 1 when E holds an entry, 0 for a line that
 * is no command (blank, comment, or quit: then *QUIT is set). */
static int entry_parse(batch_entry *e, const char *line, size_t len, int *quit)
{
    kvctl_bytes *w;
    char err[256], reason[320];
    size_t skip = 0;
    int n;

    memset(e, 0, sizeof *e);
    while (skip < len && (line[skip] == ' ' || line[skip] == '\t'))
        skip++;
    if (skip < len && line[skip] == '#')
        return 0;
    n = kvctl_args_split(line, len, &w, err, sizeof err);
    if (n < 0) {
        e->reason = kvctl_mem_strdup(err);
        return 1;
    }
    if (n == 0)
        return 0;
    if (n == 1 && (strcmp((char *)w[0].data, "quit") == 0
                   || strcmp((char *)w[0].data, "exit") == 0)) {
        *quit = 1;
        kvctl_args_free(w, n);
        return 0;
    }
    if (kvctl_cmd_parse(w, n, 0, &e->cmd, err, sizeof err) == 0
        && e->cmd.op == KVCTL_OP_WATCH) {
        /* It would hold the batch until interrupted, and the lines after
         * it would never run. */
        kvctl_cmd_clear(&e->cmd);
        snprintf(err, sizeof err, "watch: not in batch mode; run 'kvctl watch ...'");
    } else if (kvctl_cmd_runs_alone(e->cmd.op)) {
        const char *name = e->cmd.name;
        snprintf(err, sizeof err, "%s: not in batch mode; run 'kvctl %s ...'", name, name);
        kvctl_cmd_clear(&e->cmd);
    } else if (e->cmd.name) {
        e->ok = 1;
    }
    if (!e->ok) {
        kvctl_cmd_usage_reason((char *)w[0].data, err, 0, reason, sizeof reason);
        e->name = kvctl_mem_strdup((char *)w[0].data);
        e->reason = kvctl_mem_strdup(reason);
    }
    kvctl_args_free(w, n);
    return 1;
}

static void entry_clear(batch_entry *e)
{
    kvctl_cmd_clear(&e->cmd);
    free(e->name);
    free(e->reason);
}

/* A chunk being printed in input order as its results come (the hooks
 * of kvctl_exec_run), so that a range's pages follow the lines before it. */
typedef struct chunk_out {
    kvctl_out o;
    batch_entry *e;         /* the chunk's entries ... */
    size_t n;
    size_t next;            /* ... printed up to here */
    const kvctl_cmd *cmds;  /* the commands run: the entries that are one */
    kvctl_result *res;
    int *code;              /* see kvctl_batch_run */
    int stopped;            /* the connection failed: print no more */
} chunk_out;

/* Prints the usage errors of the lines from P->next to the next command. */
static void chunk_print_usage(chunk_out *p)
{
    for (; p->next < p->n && !p->e[p->next].ok; p->next++) {
        kvctl_out_usage(&p->o, p->e[p->next].name, p->e[p->next].reason);
        if (!*p->code)
            *p->code = KVCTL_EXIT_USAGE;
    }
}

static int chunk_page(void *arg, const kvctl_cmd *cmd, kvctl_result *r,
                      const Kvstore__V1__RangeResponse *page)
{
    chunk_out *p = arg;

    return p->stopped ? 0 : kvctl_out_page(&p->o, cmd, r, page);
}

/* Prints result I, the command of entry P->next, and the usage errors
 * after it. */
static void chunk_done(void *arg, size_t i)
{
    chunk_out *p = arg;
    int ec;

    if (p->stopped)
        return;
    ec = kvctl_out_result(&p->o, &p->cmds[i], &p->res[i]);
    p->next++;
    if (ec == KVCTL_EXIT_UNREACHABLE || p->res[i].auth) {
        /* Print the first failure only: the rest failed the same way. */
        *p->code = ec;
        p->stopped = 1;
        return;
    }
    if (!*p->code)
        *p->code = ec;
    chunk_print_usage(p);
}

/* Runs and prints the N entries of E, connecting *C first if needed.
 * Updates *CODE (see kvctl_batch_run). Returns -1 when the connection or
 * its authentication failed and the batch must stop, else 0. */
static int chunk_run(const kvctl_conf *conf, kv_client **c, const kvctl_out *o,
                     batch_entry *e, size_t n, int *code)
{
    kvctl_cmd *cmds = kvctl_mem_alloc(n * sizeof *cmds);
    kvctl_result *res = kvctl_mem_alloc(n * sizeof *res);
    chunk_out p = { *o, e, n, 0, cmds, res, code, 0 };
    size_t m = 0;

    for (size_t i = 0; i < n; i++)
        if (e[i].ok)
            cmds[m++] = e[i].cmd;   /* shallow: e[i] keeps ownership */
    chunk_print_usage(&p);
    if (m && !*c) {
        kvctl_result why;
        *c = kvctl_conn_open(conf, &why);
        if (!*c)
            for (size_t i = 0; i < m; i++) {
                kvctl_exec_fail(&res[i], &why);
                chunk_done(&p, i);
            }
        kvctl_exec_result_clear(&why);
    }
    if (m && *c)
        kvctl_exec_run(*c, cmds, res, m, &(kvctl_exec_hooks){ &p, chunk_page, chunk_done });
    fflush(o->fp);
    for (size_t i = 0; i < m; i++)
        kvctl_exec_result_clear(&res[i]);
    free(res);
    free(cmds);
    return p.stopped ? -1 : 0;
}

int kvctl_batch_run(const kvctl_conf *conf, int fd)
{
    batch_entry *ents = kvctl_mem_alloc(CHUNK_MAX * sizeof *ents);
    kvctl_lines in;
    kvctl_out o;
    kv_client *c = NULL;
    int code = KVCTL_EXIT_OK, done = 0;

    kvctl_out_init(&o, conf->format, 1);
    kvctl_lines_init(&in, fd);
    while (!done) {
        size_t n = 0;

        /* Take every line already here; wait only when there is none. */
        while (n < CHUNK_MAX && !done) {
            const char *line;
            size_t len;
            int rc = kvctl_lines_take(&in, &line, &len);

            if (rc > 0) {
                n += (size_t)entry_parse(&ents[n], line, len, &done);
                continue;
            }
            if (rc < 0) {
                done = 1;
                break;
            }
            rc = kvctl_lines_fill(&in, n == 0);
            if (rc < 0) {
                fprintf(stderr, "kvctl: reading standard input: %s\n", strerror(errno));
                if (!code)
                    code = KVCTL_EXIT_USAGE;
                done = 1;
            } else if (rc == 0 && n > 0 && !in.eof) {
                break;   /* nothing more ready: run what we have */
            }
        }
        if (n && chunk_run(conf, &c, &o, ents, n, &code) < 0)
            done = 1;
        for (size_t i = 0; i < n; i++)
            entry_clear(&ents[i]);
    }
    kv_client_free(c);
    kvctl_lines_free(&in);
    free(ents);
    return code;
}
