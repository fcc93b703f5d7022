/* usage.c - the help texts kvctl prints: --help, --version and the shell's
 * help. The per-command texts live with the command table in cmd.c; the
 * long form of all of it is the man page, kvctl.1.scd. */
#include <string.h>
#include <kvstore/client.h>

#include "cmd.h"
#include "usage.h"

/* The command list, in the shell's syntax with SHELL. */
static void print_commands(FILE *fp, int shell)
{
    for (const kvctl_cmd_spec *s = kvctl_cmd_specs; s->name; s++) {
        const char *args = kvctl_cmd_args(s, shell);
        char head[64];
        snprintf(head, sizeof head, "%s%s%s", s->name, *args ? " " : "", args);
        if (strlen(head) > 18)  /* txn's words: the summary on a line of its own */
            fprintf(fp, "  %s\n  %-18s %s\n", head, "", kvctl_cmd_summary(s, shell));
        else
            fprintf(fp, "  %-18s %s\n", head, kvctl_cmd_summary(s, shell));
    }
}

void kvctl_usage_print(FILE *fp)
{
    fputs("Usage: kvctl [OPTIONS] COMMAND [ARGS]\n"
          "       kvctl [OPTIONS]          (shell on a terminal, else batch from stdin)\n"
          "\n"
          "Talks to a kvstored server.\n"
          "\n"
          "Commands:\n", fp);
    print_commands(fp, 0);
    fputs("\n"
          "Options:\n"
          "  -e, --endpoint HOST:PORT[,HOST:PORT...]\n"
          "                            server to use, or the nodes of a cluster:\n"
          "                            the first that answers, then the leader it\n"
          "                            names (default: $KVCTL_ENDPOINT, else\n"
          "                            127.0.0.1:7379)\n"
          "  -w, --write-out FORMAT    simple (default); json: one JSON object per\n"
          "                            command, keys and values in base64, with\n"
          "                            the revisions; table: columns for people,\n"
          "                            with the revisions\n"
          "      --timeout SECONDS     limit for connecting and for each call, its\n"
          "                            retries on other nodes included (default 5;\n"
          "                            0 waits forever, retrying for 10 s)\n"
          "      --token-file FILE     authenticate with the token in FILE (its first\n"
          "                            line) for a server started with\n"
          "                            --auth-token-file (default: $KVCTL_TOKEN_FILE)\n"
          "      --tls                 speak TLS, trusting the system's CA store\n"
          "      --cacert FILE         speak TLS, trusting the CAs in FILE (PEM)\n"
          "                            (default: $KVCTL_CACERT)\n"
          "      --cert FILE, --key FILE\n"
          "                            speak TLS, presenting this client certificate\n"
          "                            and its key, for a server with --tls-client-ca\n"
          "                            (default: $KVCTL_CERT, $KVCTL_KEY)\n"
          "      --insecure-skip-verify\n"
          "                            speak TLS and accept any server certificate:\n"
          "                            anyone can pose as the server; for tests\n"
          "                            (default: $KVCTL_INSECURE_SKIP_VERIFY=1)\n"
          "  -h, --help                this help; 'kvctl COMMAND --help' for a command\n"
          "  -V, --version             print the version\n", fp);
    fputs("Command options (see 'kvctl COMMAND --help'):\n"
          "  --prefix                  get, range, clear, watch: KEY is a prefix\n"
          "  --limit N, --keys-only, --count, --reverse\n"
          "                            get --prefix, range: how to list\n"
          "  --if-revision N           set, clear: only if KEY's mod_revision is N\n"
          "                            (0: only if KEY is absent)\n"
          "  --range, --all            clear, watch: the keys from START to END,\n"
          "                            or all\n"
          "  --ttl DUR, --keep-ttl     set: expire DUR after the write (500ms, 30s,\n"
          "                            5m, 2h; a bare number is seconds), or keep\n"
          "                            the time to live the key has\n"
          "  --rev N, --prev           watch: from revision N on; with the values\n"
          "                            before each change\n"
          "  --serializable, --consistency=s|l\n"
          "                            get, range: read from the node connected to\n"
          "                            (maybe stale; l, the default: linearizable)\n"
          "Options may follow the command, but not txn, whose words are all its\n"
          "own: put kvctl's before it. Long options are spelt out in full. Put --\n"
          "before a KEY or VALUE that starts with '-'.\n"
          "\n"
          "Without a COMMAND, kvctl reads commands from standard input, one per\n"
          "line (set \"a key\" \"a value\"; \"\\x00\" escapes in double quotes):\n"
          "on a terminal an interactive shell with history and 'help'; otherwise\n"
          "a batch, pipelined, printing one line per command (a blank line for a\n"
          "failed command, whose error goes to stderr; stats prints name=value\n"
          "pairs on its line).\n"
          "\n"
          "Exit status:\n"
          "  0  success\n"
          "  1  key not found (get, clear, touch, ttl); no such connection\n"
          "     (clients kill)\n"
          "  2  usage error, standard input/output failed, or the token file is\n"
          "     unreadable or empty, or a TLS file cannot be opened\n"
          "  3  could not connect to the server (the TLS handshake included), or\n"
          "     it did not answer in time\n"
          "  4  the server answered another error (code and message on stderr),\n"
          "     such as a wrong token: kvctl: auth: UNAUTHENTICATED: wrong token;\n"
          "     or --if-revision went to a server before protocol v2, which wrote\n"
          "     without the check (UNIMPLEMENTED)\n"
          "  5  a conditional write was refused: set or clear --if-revision N and\n"
          "     the key's mod_revision is not N (FAILED_PRECONDITION)\n"
          "  6  the server ended a watch (the reason on stderr): its history no\n"
          "     longer holds the revision asked for, or kvctl read too slowly\n"
          "Errors are one line on stderr: kvctl: get \"k\": NOT_FOUND: key not found\n"
          "\n"
          "Examples:\n"
          "  kvctl set greeting hello            kvctl get greeting\n"
          "  kvctl set photo < photo.jpg         kvctl get photo > copy.jpg\n"
          "  for k in a b c; do echo \"set $k 1\"; done | kvctl\n"
          "  kvctl -w json get greeting | jq -r .value | base64 -d\n"
          "  kvctl get --prefix user/            kvctl range a b --keys-only\n"
          "  kvctl set --if-revision 0 lock me   (create only if absent)\n"
          "  kvctl txn mod lock = 7 then clear lock else get lock\n"
          "  kvctl set --if-revision 0 --ttl 10s lock me   (a lock that lapses)\n"
          "  kvctl touch lock 10s                kvctl ttl lock\n"
          "  kvctl watch --prefix cfg/           (one line per change, Ctrl-C ends)\n"
          "  kvctl --token-file ~/.kvstore-token stats\n"
          "  kvctl -e db1.example:7379 --cacert ca.pem get greeting\n"
          "  kvctl clients                       kvctl clients kill 10.0.0.7:51234\n"
          "See kvctl(1) for more.\n", fp);
}

void kvctl_usage_shell(FILE *fp)
{
    fputs("Commands:\n", fp);
    print_commands(fp, 1);
    fputs("  help [COMMAND]     this help, or a command's\n"
          "  quit, exit         leave (or press Ctrl-D)\n"
          "Quote words with blanks: set \"a key\" 'a value'. In double quotes\n"
          "\\n \\t \\0 \\xHH \\\" \\\\ are escapes. On a terminal, a value\n"
          "that is not plain text is shown in double quotes with those escapes.\n", fp);
}

void kvctl_usage_version(FILE *fp)
{
    fprintf(fp, "kvctl %s (client library %s)\n", KV_VERSION, kv_client_version());
}
