/* parse.c - turns the words of one command, from the command line, the
 * shell or a batch line, into a kvctl_cmd: its options first, then its
 * arguments, checked against the command table (cmd.c). The words of a
 * transaction are txn.c's to read. It does no I/O. */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "dur.h"
#include "mem.h"
#include "out.h"
#include "txn.h"

/* The command options; kvctl_cmd_options lists them in this order. */
enum {
    OPT_PREFIX, OPT_LIMIT, OPT_KEYS_ONLY, OPT_COUNT, OPT_REVERSE, OPT_IF_REVISION,
    OPT_RANGE, OPT_ALL, OPT_TTL, OPT_KEEP_TTL, OPT_REV, OPT_PREV, OPT_SERIALIZABLE,
    OPT_CONSISTENCY, OPT_RESET, OPT_ID, OPT_COUNT_OF_OPTIONS
};

const kvctl_cmd_option kvctl_cmd_options[] = {
    [OPT_PREFIX] = { "prefix", 0 },
    [OPT_LIMIT] = { "limit", 1 },
    [OPT_KEYS_ONLY] = { "keys-only", 0 },
    [OPT_COUNT] = { "count", 0 },
    [OPT_REVERSE] = { "reverse", 0 },
    [OPT_IF_REVISION] = { "if-revision", 1 },
    [OPT_RANGE] = { "range", 0 },
    [OPT_ALL] = { "all", 0 },
    [OPT_TTL] = { "ttl", 1 },
    [OPT_KEEP_TTL] = { "keep-ttl", 0 },
    [OPT_REV] = { "rev", 1 },
    [OPT_PREV] = { "prev", 0 },
    [OPT_SERIALIZABLE] = { "serializable", 0 },
    [OPT_CONSISTENCY] = { "consistency", 1 },
    [OPT_RESET] = { "reset", 0 },
    [OPT_ID] = { "id", 1 },
    [OPT_COUNT_OF_OPTIONS] = { NULL, 0 },
};

#define BIT(op) (1u << (op))
#define RANGE_OPTS (BIT(OPT_LIMIT) | BIT(OPT_KEYS_ONLY) | BIT(OPT_COUNT) | BIT(OPT_REVERSE))
#define SELECTORS (BIT(OPT_PREFIX) | BIT(OPT_RANGE) | BIT(OPT_ALL))

/* The options each command takes. */
static unsigned options_of(const kvctl_cmd_spec *spec)
{
    if (strcmp(spec->name, "slowlog") == 0)
        return BIT(OPT_LIMIT) | BIT(OPT_RESET);
    if (strcmp(spec->name, "clients") == 0)
        return BIT(OPT_ID);
    switch (spec->op) {
    case KVCTL_OP_GET:
    case KVCTL_OP_RANGE:
        return BIT(OPT_PREFIX) | RANGE_OPTS | BIT(OPT_SERIALIZABLE) | BIT(OPT_CONSISTENCY);
    case KVCTL_OP_SET:
        return BIT(OPT_IF_REVISION) | BIT(OPT_TTL) | BIT(OPT_KEEP_TTL);
    case KVCTL_OP_CLEAR:
        return BIT(OPT_IF_REVISION) | SELECTORS;
    case KVCTL_OP_WATCH:
        return SELECTORS | BIT(OPT_REV) | BIT(OPT_PREV);
    default:
        return 0;
    }
}

/* The options given, and their values. */
typedef struct given {
    unsigned set;           /* BIT(OPT_x) for each option given */
    uint64_t limit;
    uint64_t if_revision;
    uint64_t ttl_ms;
    uint64_t rev;
    uint64_t id;            /* clients kill --id */
    int serializable;       /* --consistency=s (l: 0) */
} given;

/* Reads a decimal uint64 from W into *OUT. Returns 0 or -1. */
static int parse_number(const kvctl_bytes *w, uint64_t *out)
{
    uint64_t v = 0;

    if (w->len == 0)
        return -1;
    for (size_t i = 0; i < w->len; i++) {
        unsigned d = (unsigned)w->data[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Reads the option in WORDS[*I] ("--NAME" or "--NAME=VALUE"; its value may
 * be the next word, and then *I moves past it) into G. Returns 0, or -1
 * with ERR set. */
static int read_option(const kvctl_cmd_spec *spec, const kvctl_bytes *words, int n, int *i,
                       given *g, char *err, size_t errlen)
{
    const kvctl_bytes *w = &words[*i];
    const char *name = (const char *)w->data + 2;
    const uint8_t *eq = memchr(name, '=', w->len - 2);
    size_t nlen = eq ? (size_t)((const char *)eq - name) : w->len - 2;
    kvctl_bytes value;
    int o;

    for (o = 0; o < OPT_COUNT_OF_OPTIONS; o++)
        if (strlen(kvctl_cmd_options[o].name) == nlen
            && memcmp(kvctl_cmd_options[o].name, name, nlen) == 0)
            break;
    if (o == OPT_COUNT_OF_OPTIONS || memchr(w->data, 0, w->len)) {
        char quoted[80];
        kvctl_out_quote(w->data, eq ? (size_t)(eq - w->data) : w->len, quoted, sizeof quoted);
        snprintf(err, errlen, "%s: unknown option %s; put -- before a KEY or VALUE that "
                 "starts with '-'", spec->name, quoted);
        return -1;
    }
    if (!(options_of(spec) & BIT(o))) {
        snprintf(err, errlen, "%s: --%s is not an option of %s", spec->name,
                 kvctl_cmd_options[o].name, spec->name);
        return -1;
    }
    g->set |= BIT(o);
    if (!kvctl_cmd_options[o].has_arg) {
        if (eq) {
            snprintf(err, errlen, "%s: --%s takes no value", spec->name, kvctl_cmd_options[o].name);
            return -1;
        }
        return 0;
    }
    if (eq) {
        value.data = (uint8_t *)eq + 1;
        value.len = w->len - (size_t)(eq + 1 - w->data);
    } else if (*i + 1 < n) {
        value = words[++*i];
    } else {
        snprintf(err, errlen, "%s: --%s needs a value", spec->name, kvctl_cmd_options[o].name);
        return -1;
    }
    if (o == OPT_CONSISTENCY) {
        /* etcdctl's spelling: s serializable, l linearizable. */
        if (value.len == 1 && (value.data[0] == 's' || value.data[0] == 'l')) {
            g->serializable = value.data[0] == 's';
            return 0;
        }
        snprintf(err, errlen, "%s: --consistency wants s (serializable) or l (linearizable)",
                 spec->name);
        return -1;
    }
    if (o == OPT_TTL ? kvctl_dur_parse(value.data, value.len, &g->ttl_ms)
                     : parse_number(&value, o == OPT_LIMIT ? &g->limit
                                            : o == OPT_REV ? &g->rev
                                            : o == OPT_ID ? &g->id : &g->if_revision)) {
        char quoted[64];
        kvctl_out_quote(value.data, value.len, quoted, sizeof quoted);
        snprintf(err, errlen, "%s: --%s wants %s, not %s", spec->name,
                 kvctl_cmd_options[o].name,
                 o == OPT_TTL ? "a duration such as 30s, 500ms or 1.5m" : "a number", quoted);
        return -1;
    }
    return 0;
}

/* The name of argument I (0-based) in ARGS ("KEY", "VALUE"), copied into
 * BUF without brackets. */
static const char *arg_name(const char *args, int i, char *buf, size_t len)
{
    const char *p = args;
    size_t n;

    for (; i > 0 && p; i--) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (!p || !*p)
        return "argument";
    p += strspn(p, "[");
    n = strcspn(p, " ]");
    snprintf(buf, len, "%.*s", (int)n, p);
    return buf;
}

/* The arguments one form of a command takes: "clear --prefix PREFIX". */
typedef struct form {
    const char *opt;    /* the option that selects it ("--prefix"), or "" */
    const char *args;   /* "PREFIX" */
    int min, max;       /* max -1: no limit */
} form;

/* Picks the form of SPEC that the options G select. Returns 0, or -1 with
 * ERR set when they do not go together. */
static int pick_form(const kvctl_cmd_spec *spec, const given *g, int lines, form *f,
                     char *err, size_t errlen)
{
    unsigned selectors = g->set & SELECTORS;

    *f = (form){ "", kvctl_cmd_args(spec, lines), spec->min_args, spec->max_args };
    if (spec->op == KVCTL_OP_GET && (g->set & RANGE_OPTS) && !(g->set & BIT(OPT_PREFIX))) {
        snprintf(err, errlen, "get: --limit, --keys-only, --count and --reverse go with "
                 "--prefix (or use range)");
        return -1;
    }
    if (spec->op == KVCTL_OP_CLEAR
        && ((selectors & (selectors - 1)) || (selectors && (g->set & BIT(OPT_IF_REVISION))))) {
        snprintf(err, errlen, "clear: --if-revision, --prefix, --range and --all go alone");
        return -1;
    }
    if (spec->op == KVCTL_OP_WATCH && (selectors & (selectors - 1))) {
        snprintf(err, errlen, "watch: --prefix, --range and --all go alone");
        return -1;
    }
    if (spec->op == KVCTL_OP_SET && (g->set & BIT(OPT_TTL)) && (g->set & BIT(OPT_KEEP_TTL))) {
        snprintf(err, errlen, "set: --ttl and --keep-ttl do not go together");
        return -1;
    }
    if (g->set & BIT(OPT_PREFIX))
        *f = (form){ "--prefix", "PREFIX", 1, 1 };
    else if (g->set & BIT(OPT_RANGE))
        *f = (form){ "--range", "START [END]", 1, 2 };
    else if (g->set & BIT(OPT_ALL))
        *f = (form){ "--all", "", 0, 0 };
    return 0;
}

/* Checks the count NARGS of arguments against form F of SPEC. Returns 0,
 * or -1 with ERR set. */
static int check_count(const kvctl_cmd_spec *spec, const form *f, int nargs, int stdin_ok,
                       char *err, size_t errlen)
{
    char name[32];
    const char *sp = *f->opt ? " " : "";

    if (nargs < f->min || (spec->op == KVCTL_OP_SET && !stdin_ok && nargs < 2)) {
        snprintf(err, errlen, "%s%s%s: missing %s", spec->name, sp, f->opt,
                 arg_name(f->args, nargs, name, sizeof name));
        return -1;
    }
    if (f->max >= 0 && nargs > f->max && f->max == 0) {
        snprintf(err, errlen, "%s%s%s: takes no arguments", spec->name, sp, f->opt);
        return -1;
    }
    if (f->max >= 0 && nargs > f->max) {
        snprintf(err, errlen, "%s: too many arguments (usage: %s%s%s %s; quote "
                 "words that contain blanks)", spec->name, spec->name, sp, f->opt, f->args);
        return -1;
    }
    return 0;
}

/* The words of the cluster command: status | add ID RAFT_ADDR
 * [CLIENT_ADDR] | remove ID | transfer [ID]. */
static const struct cluster_form {
    const char *word;
    kvctl_cluster_sub sub;
    int min, max;           /* arguments after the word */
    const char *args;
} cluster_forms[] = {
    { "status", KVCTL_CLUSTER_STATUS, 0, 0, "" },
    { "add", KVCTL_CLUSTER_ADD, 2, 3, "ID RAFT_ADDR [CLIENT_ADDR]" },
    { "remove", KVCTL_CLUSTER_REMOVE, 1, 1, "ID" },
    { "transfer", KVCTL_CLUSTER_TRANSFER, 0, 1, "[ID]" },
};

/* Fills the cluster command CMD from its NARGS arguments ARGS (at least
 * one, the subcommand). Returns 0, or -1 with ERR set. */
static int fill_cluster(kvctl_cmd *cmd, const kvctl_bytes *const *args, int nargs,
                        char *err, size_t errlen)
{
    const struct cluster_form *f = NULL;

    for (size_t i = 0; i < sizeof cluster_forms / sizeof *cluster_forms; i++)
        if (strcmp((const char *)args[0]->data, cluster_forms[i].word) == 0)
            f = &cluster_forms[i];
    if (!f || memchr(args[0]->data, 0, args[0]->len)) {
        snprintf(err, errlen, "cluster: unknown subcommand (status, add, remove or transfer)");
        return -1;
    }
    if (nargs - 1 < f->min || nargs - 1 > f->max) {
        snprintf(err, errlen, "cluster %s: %s (usage: cluster %s%s%s)", f->word,
                 nargs - 1 < f->min ? "missing arguments" : "too many arguments", f->word,
                 *f->args ? " " : "", f->args);
        return -1;
    }
    cmd->cluster = f->sub;
    if (nargs > 1 && f->sub != KVCTL_CLUSTER_STATUS
        && (parse_number(args[1], &cmd->member_id) < 0 || cmd->member_id == 0)) {
        snprintf(err, errlen, "cluster %s: ID must be a positive number", f->word);
        return -1;
    }
    for (int i = 2; i < nargs; i++)
        if (memchr(args[i]->data, 0, args[i]->len)) {
            snprintf(err, errlen, "cluster %s: an address must not contain NUL bytes", f->word);
            return -1;
        }
    if (nargs > 2)
        cmd->raft_addr = kvctl_mem_strdup((const char *)args[2]->data);
    if (nargs > 3)
        cmd->client_addr = kvctl_mem_strdup((const char *)args[3]->data);
    return 0;
}

/* Fills the clients command CMD from the options G and its NARGS
 * arguments ARGS: none (the list), kill PEER, or kill --id N. Returns 0,
 * or -1 with ERR set. */
static int fill_clients(kvctl_cmd *cmd, const given *g, const kvctl_bytes *const *args,
                        int nargs, char *err, size_t errlen)
{
    int by_id = !!(g->set & BIT(OPT_ID));

    if (nargs == 0 && !by_id)
        return 0;
    if (nargs == 0 || strcmp((const char *)args[0]->data, "kill") != 0
        || memchr(args[0]->data, 0, args[0]->len)) {
        snprintf(err, errlen, "clients: the only subcommand is kill (usage: clients, "
                 "clients kill PEER, clients kill --id N)");
        return -1;
    }
    if (by_id ? nargs != 1 || g->id == 0 : nargs != 2) {
        snprintf(err, errlen, "clients kill: give one PEER (HOST:PORT) or --id N (N > 0)");
        return -1;
    }
    cmd->clients_kill = 1;
    cmd->kill_id = g->id;
    if (!by_id) {
        if (memchr(args[1]->data, 0, args[1]->len) || args[1]->len == 0) {
            snprintf(err, errlen, "clients kill: PEER must be HOST:PORT");
            return -1;
        }
        cmd->kill_peer = kvctl_mem_strdup((const char *)args[1]->data);
    }
    return 0;
}

/* Fills snapshot save FILE, dump [FILE] or load [FILE]. Returns 0, or -1
 * with ERR set. */
static int fill_path(kvctl_cmd *cmd, const kvctl_bytes *const *args, int nargs,
                     char *err, size_t errlen)
{
    const kvctl_bytes *file = nargs ? args[nargs - 1] : NULL;

    if (strcmp(cmd->name, "snapshot") == 0 && strcmp((const char *)args[0]->data, "save") != 0) {
        snprintf(err, errlen, "snapshot: unknown subcommand (save FILE)");
        return -1;
    }
    if (file && (memchr(file->data, 0, file->len) || !file->len)) {
        snprintf(err, errlen, "%s: FILE must be a path", cmd->name);
        return -1;
    }
    cmd->path = file ? kvctl_mem_strdup((const char *)file->data) : NULL;
    return 0;
}

/* Fills CMD (op and name set) from the options G and the NARGS arguments
 * ARGS, whose count was checked. Returns 0, or -1 with ERR set. */
static int fill(kvctl_cmd *cmd, const given *g, const kvctl_bytes *const *args, int nargs,
                int stdin_ok, char *err, size_t errlen)
{
    cmd->serializable = (g->set & BIT(OPT_SERIALIZABLE)) || g->serializable;
    switch (cmd->op) {
    case KVCTL_OP_STATS:
        return 0;
    case KVCTL_OP_OWN:
        if (strcmp(cmd->name, "cluster") == 0)
            return fill_cluster(cmd, args, nargs, err, errlen);
        if (strcmp(cmd->name, "clients") == 0)
            return fill_clients(cmd, g, args, nargs, err, errlen);
        if (strcmp(cmd->name, "slowlog") != 0)
            return fill_path(cmd, args, nargs, err, errlen);
        cmd->limit = g->limit;
        cmd->reset = !!(g->set & BIT(OPT_RESET));
        return 0;
    case KVCTL_OP_PING:
        if (nargs == 1) {
            if (memchr(args[0]->data, 0, args[0]->len)) {
                snprintf(err, errlen, "ping: MESSAGE must not contain NUL bytes");
                return -1;
            }
            cmd->message = kvctl_mem_strdup((const char *)args[0]->data);
        }
        return 0;
    case KVCTL_OP_TXN:
        return 0;   /* read by the caller: its words are contiguous */
    case KVCTL_OP_TOUCH:
        if (kvctl_dur_parse(args[1]->data, args[1]->len, &cmd->ttl_ms) < 0) {
            char quoted[64];
            kvctl_out_quote(args[1]->data, args[1]->len, quoted, sizeof quoted);
            snprintf(err, errlen, "touch: DUR must be a duration such as 10s, 500ms or 1.5m "
                     "(0: no time to live), not %s", quoted);
            return -1;
        }
        kvctl_mem_bytes(&cmd->key, args[0]->data, args[0]->len);
        return 0;
    default:
        break;
    }
    cmd->has_if_revision = !!(g->set & BIT(OPT_IF_REVISION));
    cmd->if_revision = g->if_revision;
    cmd->prefix = !!(g->set & BIT(OPT_PREFIX));
    cmd->all = !!(g->set & BIT(OPT_ALL));
    cmd->limit = g->limit;
    cmd->keys_only = !!(g->set & BIT(OPT_KEYS_ONLY));
    cmd->count_only = !!(g->set & BIT(OPT_COUNT));
    cmd->reverse = !!(g->set & BIT(OPT_REVERSE));
    cmd->ttl_ms = g->ttl_ms;
    cmd->keep_ttl = !!(g->set & BIT(OPT_KEEP_TTL));
    cmd->start_revision = g->rev;
    cmd->prev_kv = !!(g->set & BIT(OPT_PREV));
    cmd->range = cmd->op == KVCTL_OP_WATCH && (g->set & BIT(OPT_RANGE));
    if (cmd->op == KVCTL_OP_GET && cmd->prefix)
        cmd->op = KVCTL_OP_RANGE;
    if (cmd->op == KVCTL_OP_CLEAR && (cmd->prefix || cmd->all || (g->set & BIT(OPT_RANGE))))
        cmd->op = KVCTL_OP_CLEAR_RANGE;
    if (nargs > 0)
        kvctl_mem_bytes(&cmd->key, args[0]->data, args[0]->len);
    else
        kvctl_mem_bytes(&cmd->key, NULL, 0);
    if (cmd->op == KVCTL_OP_SET) {
        if (nargs == 1 || (stdin_ok && args[1]->len == 1 && args[1]->data[0] == '-'))
            cmd->value_from_stdin = 1;
        else
            kvctl_mem_bytes(&cmd->value, args[1]->data, args[1]->len);
    } else {
        kvctl_mem_bytes(&cmd->end, nargs > 1 ? args[1]->data : NULL, nargs > 1 ? args[1]->len : 0);
    }
    return 0;
}

int kvctl_cmd_parse(const kvctl_bytes *words, int n, int stdin_ok,
                    kvctl_cmd *cmd, char *err, size_t errlen)
{
    const kvctl_cmd_spec *spec;
    const kvctl_bytes **args;
    given g = { 0 };
    form f;
    int nargs = 0, options_done, rc = -1;

    memset(cmd, 0, sizeof *cmd);
    if (n < 1) {
        snprintf(err, errlen, "no command given");
        return -1;
    }
    spec = memchr(words[0].data, 0, words[0].len) ? NULL
                                                  : kvctl_cmd_find((const char *)words[0].data);
    if (!spec) {
        char quoted[128];
        kvctl_out_quote(words[0].data, words[0].len, quoted, sizeof quoted);
        snprintf(err, errlen, "unknown command %s", quoted);
        return -1;
    }
    args = kvctl_mem_alloc((size_t)n * sizeof *args);
    options_done = !spec->opts;
    for (int i = 1; i < n; i++) {
        const kvctl_bytes *w = &words[i];
        if (!options_done && w->len == 2 && memcmp(w->data, "--", 2) == 0)
            options_done = 1;
        else if (!options_done && w->len > 2 && memcmp(w->data, "--", 2) == 0) {
            if (read_option(spec, words, n, &i, &g, err, errlen) < 0)
                goto out;
        } else
            args[nargs++] = w;
    }
    if (pick_form(spec, &g, !stdin_ok, &f, err, errlen) < 0
        || check_count(spec, &f, nargs, stdin_ok, err, errlen) < 0)
        goto out;
    cmd->op = spec->op;
    cmd->name = spec->name;
    cmd->run = spec->run;
    if (fill(cmd, &g, args, nargs, stdin_ok, err, errlen) < 0)
        goto out;
    if (cmd->op == KVCTL_OP_TXN) {
        if (nargs == 0 && stdin_ok)
            cmd->txn_from_stdin = 1;
        else if (kvctl_txn_parse(words + 1, n - 1, &cmd->txn, err, errlen) < 0)
            goto out;
    }
    rc = 0;
out:
    free(args);
    if (rc < 0)
        kvctl_cmd_clear(cmd);
    return rc;
}
