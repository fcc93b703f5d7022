/* cmd.c - the table of kvctl commands and their help, and the parser that
 * turns words into a kvctl_cmd. It knows nothing of connections or output;
 * running a command is exec.c's job, printing its result out.c's. */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "mem.h"
#include "out.h"

const kvctl_cmd_spec kvctl_cmd_specs[] = {
    { "ping", KVCTL_OP_PING, "[MESSAGE]", NULL, 0, 1,
      "check that the server answers: prints PONG, or MESSAGE echoed", NULL,
      "Sends Ping and prints the answer: PONG when MESSAGE is left out, else\n"
      "MESSAGE echoed back. Use it to check that the server is up.\n", NULL },
    { "get", KVCTL_OP_GET, "KEY", NULL, 1, 1,
      "print the value stored under KEY, byte for byte", NULL,
      "Writes the value stored under KEY to standard output exactly as stored;\n"
      "a newline is added only when standard output is a terminal, so\n"
      "'kvctl get KEY > FILE' gives back the bytes that were set.\n"
      "On a terminal, a value that is not plain text (a control byte such as\n"
      "ESC, bytes that are not UTF-8, a leading \") is shown in double quotes\n"
      "with escapes instead, \"\\x1b[31m\" for ESC [31m, as redis-cli does.\n"
      "Exits 1 (with a NOT_FOUND line on stderr) when KEY is absent.\n", NULL },
    { "set", KVCTL_OP_SET, "KEY [VALUE]", "KEY VALUE", 1, 2,
      "store VALUE under KEY; without VALUE (or -), read it from stdin",
      "store VALUE under KEY",
      "Stores VALUE under KEY, replacing any value it had, and prints OK.\n"
      "When VALUE is left out or is '-', the value is read from standard input\n"
      "until its end, byte for byte: 'kvctl set photo < photo.jpg'.\n"
      "In the shell and in batch mode VALUE is required and taken literally.\n",
      "Stores VALUE under KEY, replacing any value it had, and prints OK.\n"
      "VALUE is required and taken literally, even '-': the shell reads its\n"
      "commands from standard input, so a value cannot come from there. Type\n"
      "any byte in double quotes (\"\\x00\\xff\"); for a file's contents run\n"
      "'kvctl set KEY < FILE' outside the shell.\n" },
    { "clear", KVCTL_OP_CLEAR, "KEY", NULL, 1, 1,
      "remove KEY and print the value it had", NULL,
      "Removes KEY and prints the value it had, like get. When KEY was absent\n"
      "it prints nothing and exits 1.\n", NULL },
    { "stats", KVCTL_OP_STATS, "", NULL, 0, 0,
      "print the server's counters: connections, calls, keys, memory", NULL,
      "Calls Stats and prints the server's figures, one 'name: value' line\n"
      "each: uptime_seconds, connections_current, connections_total,\n"
      "connections_rejected, requests_total, errors_total, keys, data_bytes,\n"
      "engine_memory_bytes, resident_memory_bytes, max_memory_bytes (0: no\n"
      "limit), engine_file_bytes, engine_map_bytes, engine_last_sync_unix_ms\n"
      "(engines that keep files; 0 for memory), engine, engine_sync, version;\n"
      "then one line per method of the service:\n"
      "  calls /kvstore.v1.KV/Get: 12 (errors 1)\n"
      "The Stats call being answered is not in its own figures.\n"
      "In batch mode (and when the shell's output is not a terminal) it\n"
      "prints one line instead: name=value pairs in the same order, each\n"
      "method as PATH=CALLS/ERRORS ('/kvstore.v1.KV/Get=12/1').\n"
      "With -w json, one object: the same names, numbers as JSON numbers,\n"
      "and \"methods\": [{\"method\", \"calls\", \"errors\"}, ...].\n", NULL },
    { NULL, 0, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL },
};

const kvctl_cmd_spec *kvctl_cmd_find(const char *name)
{
    for (const kvctl_cmd_spec *s = kvctl_cmd_specs; s->name; s++)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

const char *kvctl_cmd_args(const kvctl_cmd_spec *spec, int lines)
{
    return lines && spec->line_args ? spec->line_args : spec->args;
}

const char *kvctl_cmd_summary(const kvctl_cmd_spec *spec, int lines)
{
    return lines && spec->line_summary ? spec->line_summary : spec->summary;
}

const char *kvctl_cmd_name(kvctl_op op)
{
    for (const kvctl_cmd_spec *s = kvctl_cmd_specs; s->name; s++)
        if (s->op == op)
            return s->name;
    return "?";
}

int kvctl_cmd_has_key(kvctl_op op)
{
    return op == KVCTL_OP_GET || op == KVCTL_OP_SET || op == KVCTL_OP_CLEAR;
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
    if (!p)
        return "argument";
    p += strspn(p, "[");
    n = strcspn(p, " ]");
    snprintf(buf, len, "%.*s", (int)n, p);
    return buf;
}

int kvctl_cmd_parse(const kvctl_bytes *words, int n, int stdin_ok,
                    kvctl_cmd *cmd, char *err, size_t errlen)
{
    const kvctl_cmd_spec *spec;
    char name[32];
    int nargs = n - 1;
    const char *args;

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
    args = kvctl_cmd_args(spec, !stdin_ok);
    if (nargs < spec->min_args || (spec->op == KVCTL_OP_SET && !stdin_ok && nargs < 2)) {
        snprintf(err, errlen, "%s: missing %s", spec->name,
                 arg_name(args, nargs, name, sizeof name));
        return -1;
    }
    if (nargs > spec->max_args && spec->max_args == 0) {
        snprintf(err, errlen, "%s: takes no arguments", spec->name);
        return -1;
    }
    if (nargs > spec->max_args) {
        snprintf(err, errlen, "%s: too many arguments (usage: %s %s; quote "
                 "words that contain blanks)", spec->name, spec->name, args);
        return -1;
    }
    cmd->op = spec->op;
    if (spec->op == KVCTL_OP_STATS)
        return 0;
    if (spec->op == KVCTL_OP_PING) {
        if (nargs == 1) {
            if (memchr(words[1].data, 0, words[1].len)) {
                snprintf(err, errlen, "ping: MESSAGE must not contain NUL bytes");
                return -1;
            }
            cmd->message = kvctl_mem_strdup((const char *)words[1].data);
        }
        return 0;
    }
    kvctl_mem_bytes(&cmd->key, words[1].data, words[1].len);
    if (spec->op == KVCTL_OP_SET) {
        if (nargs == 1 || (stdin_ok && words[2].len == 1 && words[2].data[0] == '-'))
            cmd->value_from_stdin = 1;
        else
            kvctl_mem_bytes(&cmd->value, words[2].data, words[2].len);
    }
    return 0;
}

void kvctl_cmd_usage_reason(const char *name, const char *err, int shell,
                            char *buf, size_t len)
{
    const kvctl_cmd_spec *spec = name ? kvctl_cmd_find(name) : NULL;

    if (shell)
        snprintf(buf, len, "%s (see 'help%s%s')", err, spec ? " " : "",
                 spec ? spec->name : "");
    else
        snprintf(buf, len, "%s (see 'kvctl %s%s--help')", err,
                 spec ? spec->name : "", spec ? " " : "");
}

void kvctl_cmd_clear(kvctl_cmd *cmd)
{
    free(cmd->key.data);
    free(cmd->value.data);
    free(cmd->message);
    memset(cmd, 0, sizeof *cmd);
}

void kvctl_cmd_print_help(const kvctl_cmd_spec *spec, int shell, FILE *fp)
{
    const char *args = kvctl_cmd_args(spec, shell);

    fprintf(fp, "Usage: %s%s%s%s\n\n%s", shell ? "" : "kvctl ", spec->name,
            *args ? " " : "", args,
            shell && spec->line_details ? spec->line_details : spec->details);
    if (!shell)
        fprintf(fp, "\nExit status: 0 success, 1 key not found, 2 usage error,\n"
                "3 could not connect or timed out, 4 other server error.\n"
                "Options (-e, -w, --timeout, --token-file): see 'kvctl --help'.\n");
}
