/* cmd.c - the table of kvctl commands, their options and their help, and
 * what a parsed kvctl_cmd says about itself. It knows nothing of
 * connections or output; turning words into a command is parse.c's job
 * (txn.c's for a transaction), running it exec.c's, printing it out.c's. */
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "clients.h"
#include "cluster.h"
#include "cmd.h"
#include "out.h"
#include "slowlog.h"
#include "txn.h"

/* What -w json and -w table add to a single-key command's help. */
#define REVISIONS_HELP \
    "-w json adds the revisions (create_revision, mod_revision, version and\n" \
    "the store's revision at the read) and ttl_ms, the milliseconds the key\n" \
    "has left to live (0: it does not expire); -w table shows them in\n" \
    "columns, with a TTL column for a key that expires.\n"

/* How a duration is written, for set --ttl and touch. */
#define DUR_HELP \
    "DUR is a number and a unit, ms, s, m or h (500ms, 30s, 1.5m, 2h); a\n" \
    "bare number is seconds. A fraction of a millisecond is rounded up.\n"

/* What set says of --ttl and --keep-ttl, on the command line and in the
 * shell. */
#define SET_TTL_HELP \
    "With --ttl DUR the key expires DUR after the write and is gone for every\n" \
    "read from then on.\n" DUR_HELP \
    "Without --ttl (or with --ttl 0) the key does not expire and loses any\n" \
    "time to live it had, unless --keep-ttl: then it keeps what is left of\n" \
    "it (nothing for a new key). --ttl and --keep-ttl do not go together.\n"

/* watch's forms and output, on the command line and in the shell. */
#define WATCH_HELP \
    "  watch --prefix PREFIX    every key that starts with PREFIX\n" \
    "  watch --range START [END]\n" \
    "                           the keys from START to END (END excluded;\n" \
    "                           left out or \"\": no end)\n" \
    "  watch --all              every key\n" \
    "With --rev N it starts with the changes of revision N, replayed from the\n" \
    "server's history, then goes on live; without, with the changes after\n" \
    "now. With --prev each event also has the value the key had before.\n" \
    "One line per event, in words as batch lines read them:\n" \
    "  PUT \"KEY\" \"VALUE\" rev N [ttl DUR] [prev \"OLD VALUE\"]\n" \
    "  DELETE \"KEY\" rev N [expired] [prev \"OLD VALUE\"]\n" \
    "(rev: the revision of the change; ttl: the time to live the write gave;\n" \
    "expired: removed by expiry; prev: with --prev, when the key existed).\n" \
    "-w json prints one object per event: {\"type\": \"PUT\" or \"DELETE\",\n" \
    "\"kv\": {\"key\", \"value\", \"create_revision\", \"mod_revision\",\n" \
    "\"version\", \"ttl_ms\"}, \"expired\", and with --prev \"prev_kv\"}.\n" \
    "When the server ends the watch (its history no longer holds revision N,\n" \
    "or kvctl read too slowly), the reason goes to stderr (\"kvctl: watch\n" \
    "\"k\": CANCELLED: REASON\"), with -w json also as a last object with\n" \
    "\"code\": \"CANCELLED\" and \"compact_revision\" (the oldest revision\n" \
    "still available, when that was the reason).\n"

/* The options of a range, for range and get --prefix. */
/* The words of a transaction, for txn's help on the command line and in
 * the shell. */
#define TXN_GRAMMAR_HELP \
  "A COMPARE is TARGET KEY CMP OPERAND, read as \"KEY's TARGET is CMP\n" \
  "OPERAND\"; CMP is =, !=, < or >:\n" \
  "  value KEY CMP VALUE      the value, byte by byte (an absent key has\n" \
  "                           none: every value compare on it is false)\n" \
  "  mod KEY CMP N            its mod_revision (0 when absent)\n" \
  "  create KEY CMP N         its create_revision (0 when absent)\n" \
  "  version KEY CMP N        its version (0 when absent)\n" \
  "An OP is one of:\n" \
  "  get KEY                  get-prefix PREFIX\n" \
  "  set KEY VALUE            range START END (END \"\": to the last key)\n" \
  "  clear KEY                clear-prefix PREFIX\n" \
  "                           clear-range START END\n"

#define SERIALIZABLE_HELP \
    "--serializable (or etcdctl's --consistency=s) reads from the node kvctl\n" \
    "is connected to, from what it has applied: maybe stale, never torn, and\n" \
    "any node of a cluster answers. The default (--consistency=l) is a\n" \
    "linearizable read, which only the leader answers (kvctl follows it).\n"

#define RANGE_OPTIONS_HELP \
    "  --limit N     stop after N keys (0, the default: no limit)\n" \
    "  --keys-only   the keys without their values\n" \
    "  --count       only how many keys the range holds\n" \
    "  --reverse     in descending order\n"

const kvctl_cmd_spec kvctl_cmd_specs[] = {
    { "ping", KVCTL_OP_PING, "[MESSAGE]", NULL, 0, 1, NULL,
      "check that the server answers: prints PONG, or MESSAGE echoed", NULL,
      "Sends Ping and prints the answer: PONG when MESSAGE is left out, else\n"
      "MESSAGE echoed back. Use it to check that the server is up.\n", NULL, NULL },
    { "get", KVCTL_OP_GET, "KEY", NULL, 1, 1,
      "[--serializable] [--prefix [--limit N] [--keys-only] [--count] [--reverse]]",
      "print the value of KEY; with --prefix, every key under it",
      NULL,
      "Writes the value stored under KEY to standard output exactly as stored;\n"
      "a newline is added only when standard output is a terminal, so\n"
      "'kvctl get KEY > FILE' gives back the bytes that were set.\n"
      "On a terminal, a value that is not plain text (a control byte such as\n"
      "ESC, bytes that are not UTF-8, a leading \") is shown in double quotes\n"
      "with escapes instead, \"\\x1b[31m\" for ESC [31m, as redis-cli does.\n"
      "Exits 1 (with a NOT_FOUND line on stderr) when KEY is absent.\n"
      REVISIONS_HELP
      "With --prefix, KEY is a prefix: get lists every key that starts with it\n"
      "and its value, as 'range --prefix KEY' does (see 'range --help'), with\n"
      "these options:\n"
      RANGE_OPTIONS_HELP
      SERIALIZABLE_HELP, NULL, NULL },
    { "set", KVCTL_OP_SET, "KEY [VALUE]", "KEY VALUE", 1, 2,
      "[--if-revision N] [--ttl DUR | --keep-ttl]",
      "store VALUE under KEY; without VALUE (or -), read it from stdin",
      "store VALUE under KEY",
      "Stores VALUE under KEY, replacing any value it had, and prints OK.\n"
      "When VALUE is left out or is '-', the value is read from standard input\n"
      "until its end, byte for byte: 'kvctl set photo < photo.jpg'.\n"
      "In the shell and in batch mode VALUE is required and taken literally.\n"
      "With --if-revision N the value is stored only if the key's mod_revision\n"
      "(see 'get -w json') is N, an absent key's being 0: --if-revision 0\n"
      "creates KEY only if it is absent. Otherwise nothing changes and kvctl\n"
      "exits 5: FAILED_PRECONDITION, the message naming the key's mod_revision.\n"
      "A server before protocol v2 ignores --if-revision and stores the value\n"
      "anyway; kvctl tells by the revision 0 it answers and exits 4\n"
      "(UNIMPLEMENTED: the write was applied without its check).\n"
      SET_TTL_HELP
      "-w json and -w table show the revision the write made.\n",
      "Stores VALUE under KEY, replacing any value it had, and prints OK.\n"
      "VALUE is required and taken literally, even '-': the shell reads its\n"
      "commands from standard input, so a value cannot come from there. Type\n"
      "any byte in double quotes (\"\\x00\\xff\"); for a file's contents run\n"
      "'kvctl set KEY < FILE' outside the shell.\n"
      "With --if-revision N the value is stored only if the key's mod_revision\n"
      "is N (0: only if KEY is absent); else FAILED_PRECONDITION, nothing\n"
      "changed. On a server before protocol v2, which writes without the\n"
      "check, UNIMPLEMENTED.\n"
      SET_TTL_HELP, NULL },
    { "clear", KVCTL_OP_CLEAR, "KEY", NULL, 1, 1,
      "[--if-revision N | --prefix | --range | --all]",
      "remove KEY and print its value; --prefix: every key under it",
      NULL,
      "Removes KEY and prints the value it had, like get. When KEY was absent\n"
      "it prints nothing and exits 1.\n"
      "With --if-revision N, KEY is removed only if its mod_revision is N;\n"
      "otherwise nothing changes and kvctl exits 5 (FAILED_PRECONDITION).\n"
      "A server before protocol v2 removes KEY without the check: exit 4\n"
      "(UNIMPLEMENTED), as for set.\n"
      "-w json and -w table show the revision the removal made.\n"
      "Several keys at once, as one write, printing how many were removed:\n"
      "  clear --prefix PREFIX    every key that starts with PREFIX\n"
      "  clear --range START [END]\n"
      "                           the keys from START to END (END excluded;\n"
      "                           left out or \"\": to the last key)\n"
      "  clear --all              every key\n"
      "An empty PREFIX, or an empty START without END, selects nothing and is\n"
      "refused (INVALID_ARGUMENT), so that a mistake never wipes the store.\n",
      NULL, NULL },
    { "range", KVCTL_OP_RANGE, "[START [END]]", NULL, 0, 2,
      "[--prefix] [--limit N] [--keys-only] [--count] [--reverse] [--serializable]",
      "list keys and values from START to END, in byte order",
      NULL,
      "Lists the keys from START (included) to END (excluded) in byte order,\n"
      "each followed by its value: to the last key when END is left out or\n"
      "\"\", every key without START. With --prefix, the one argument is a\n"
      "prefix and range lists the keys that start with it.\n"
      "The server answers a page at a time; kvctl reads all the pages, so the\n"
      "list is complete, but one read in several pages is not a snapshot:\n"
      "writes made between two pages may show. Each page is printed as it\n"
      "comes (but with -w table), so a long list takes little memory; when a\n"
      "later page fails, what was printed stays and the error follows.\n"
      RANGE_OPTIONS_HELP
      "Prints each key, then its value, one line each (raw bytes; on a\n"
      "terminal quoted when not plain text, as get does). In batch mode, and\n"
      "in the shell when its output is not a terminal, one line: the keys and\n"
      "values as double-quoted strings (\"k1\" \"v1\" \"k2\" \"v2\").\n"
      "-w json gives {\"kvs\": [{\"key\", \"value\", \"create_revision\",\n"
      "\"mod_revision\", \"version\", \"ttl_ms\"}, ...], \"count\", \"more\",\n"
      "\"revision\"}; -w table a row per key with its revisions (and a TTL\n"
      "column when a key expires).\n"
      SERIALIZABLE_HELP, NULL, NULL },
    { "txn", KVCTL_OP_TXN, "[COMPARE...] then [OP...] [else [OP...]]", NULL, 0, -1, NULL,
      "compare, then run one of two lists of operations atomically", NULL,
      "Runs a transaction: when every COMPARE holds (or there is none), the\n"
      "OPs after 'then', else those after 'else', at once: nothing sees half\n"
      "of it, and all its writes get the same new revision. Without arguments\n"
      "kvctl reads the same words from standard input, newlines as blanks:\n"
      "\n"
      "  kvctl txn <<'EOF'\n"
      "  mod counter = 5\n"
      "  then\n"
      "    set counter 6\n"
      "    set log \"counter was 5\"\n"
      "  else\n"
      "    get counter\n"
      "  EOF\n"
      "\n"
      TXN_GRAMMAR_HELP
      "Every word after txn is its own: put kvctl's options before txn.\n"
      "A bare then or else where a KEY, VALUE, N, START, END or PREFIX is due\n"
      "is refused (\"set: VALUE missing before 'else'\"); for an operand that\n"
      "is one of those words, add a backslash, which kvctl drops, quoted so\n"
      "that it stays: kvctl txn then set mode '\\else'.\n"
      "A range in a transaction reads one page (the server's page size at\n"
      "most). Conditional writes (--if-revision) are compares here.\n"
      "Prints SUCCESS (the compares held) or FAILURE, then a line per OP\n"
      "run: for get and clear the value as a double-quoted string (- when the\n"
      "key was absent), OK for set, [ \"k1\" \"v1\" ... ] for a range, the\n"
      "number of keys removed for clear-prefix and clear-range. In batch mode\n"
      "all of it on one line. Exits 0 whichever branch ran.\n"
      "On a shell command line, quote < and >: kvctl txn mod k '>' 0 then ...\n",
      "Runs a transaction: when every COMPARE holds (or there is none), the\n"
      "OPs after 'then', else those after 'else', at once: nothing sees half\n"
      "of it, and all its writes get the same new revision. Example:\n"
      "\n"
      "  txn mod counter = 5 then set counter 6 set log \"was 5\" else get counter\n"
      "\n"
      TXN_GRAMMAR_HELP
      "A bare then or else where a KEY, VALUE, N, START, END or PREFIX is due\n"
      "is refused (\"set: VALUE missing before 'else'\"); for an operand that\n"
      "is one of those words, add a backslash, which kvctl drops: set mode\n"
      "'\\else'.\n"
      "Prints SUCCESS (the compares held) or FAILURE, then for each OP run:\n"
      "for get and clear the value as a double-quoted string (- when the key\n"
      "was absent), OK for set, [ \"k1\" \"v1\" ... ] for a range, the number of\n"
      "keys removed for clear-prefix and clear-range.\n", NULL },
    { "touch", KVCTL_OP_TOUCH, "KEY DUR", NULL, 2, 2, NULL,
      "make KEY expire DUR from now (0: never), keeping its value", NULL,
      "Sets KEY to expire DUR from now, keeping its value and its revisions\n"
      "(no watch sees it), and prints OK.\n" DUR_HELP
      "A DUR of 0 removes the time to live: KEY no longer expires.\n"
      "Exits 1 (with a NOT_FOUND line on stderr) when KEY is absent or has\n"
      "expired. The lock pattern: take it with set --if-revision 0 --ttl 10s,\n"
      "keep it with touch every few seconds.\n", NULL, NULL },
    { "ttl", KVCTL_OP_TTL, "KEY", NULL, 1, 1, NULL,
      "print how long KEY has left to live, or none", NULL,
      "Prints the time KEY has left to live, rounded up to the millisecond and\n"
      "written as set --ttl and touch read it (250ms, 29.5s), or none when it\n"
      "does not expire. Exits 1 (with a NOT_FOUND line on stderr) when KEY is\n"
      "absent or has expired. -w json gives \"ttl_ms\" (0: none).\n", NULL, NULL },
    { "watch", KVCTL_OP_WATCH, "KEY", NULL, 1, 1,
      "[--prefix | --range | --all] [--rev N] [--prev]",
      "print each change to KEY (or under --prefix P) until Ctrl-C",
      NULL,
      "Prints each change to KEY as it happens, until interrupted (Ctrl-C,\n"
      "SIGINT: exit 0), or to several keys:\n"
      WATCH_HELP
      "Then kvctl exits 6; when the connection is lost, 3. The per-call\n"
      "--timeout bounds opening the watch, not the wait for events. Not in\n"
      "batch mode (its commands come from standard input until its end).\n",
      "Prints each change to KEY as it happens, until Ctrl-C, which ends the\n"
      "watch and brings the prompt back; or to several keys:\n"
      WATCH_HELP, NULL },
    { "stats", KVCTL_OP_STATS, "", NULL, 0, 0, NULL,
      "print the server's counters: connections, calls, keys, memory", NULL,
      "Calls Stats and prints the server's figures, one 'name: value' line\n"
      "each: uptime_seconds, connections_current, connections_total,\n"
      "connections_rejected, requests_total, errors_total, keys, data_bytes,\n"
      "revision (the store's: one per request that changed data),\n"
      "engine_memory_bytes, resident_memory_bytes, max_memory_bytes (0: no\n"
      "limit), engine_file_bytes, engine_map_bytes, engine_last_sync_unix_ms\n"
      "(engines that keep files; 0 for memory), keys_with_ttl,\n"
      "expired_keys_total (keys removed by expiry), watchers (open watches),\n"
      "watch_events_total, watch_history_oldest (the oldest revision a watch\n"
      "may start from; 0: none dropped yet), pid, ops_per_second (requests\n"
      "answered in the last whole second), get_hits, get_misses,\n"
      "net_input_bytes, net_output_bytes, slowlog_length, slowlog_total,\n"
      "engine_syncs_total, cpu_user_seconds, cpu_system_seconds,\n"
      "engine_sync_seconds_total, closed_REASON (connections closed: client,\n"
      "idle, output, protocol, auth, killed, error, shutdown), engine,\n"
      "engine_sync, version, listen_address, and a cluster member's cluster_*\n"
      "figures; then one line per method of the service, with the latency\n"
      "quantiles of a method that was called:\n"
      "  calls /kvstore.v1.KV/Get: 12 (errors 1) p50 14us p99 61us p999 61us\n"
      "The Stats call being answered is not in its own figures.\n"
      "In batch mode (and when the shell's output is not a terminal) it\n"
      "prints one line instead: name=value pairs in the same order, each\n"
      "method as PATH=CALLS/ERRORS/P50/P99/P999 in microseconds\n"
      "('/kvstore.v1.KV/Get=12/1/14/61/61').\n"
      "With -w json, one object: the same names, numbers as JSON numbers,\n"
      "\"connections_closed\" and \"listen_addresses\", and \"methods\":\n"
      "[{\"method\", \"calls\", \"errors\", \"latency_p50_us\",\n"
      "\"latency_p99_us\", \"latency_p999_us\"}, ...].\n", NULL, NULL },
    { "cluster", KVCTL_OP_OWN,
      "status | add ID RAFT_ADDR [CLIENT_ADDR] | remove ID | transfer [ID]", NULL, 1, 4,
      NULL, "show or change the members of a cluster", NULL,
      "cluster status asks every node it knows (the -e endpoints, and the\n"
      "client address of each member the first answer names) for its view and\n"
      "prints a row per node: ID, CLIENT and RAFT addresses, ROLE (leader,\n"
      "follower, candidate, unavailable; unreachable when it did not answer),\n"
      "LEADER (* on the leader), TERM, COMMIT and APPLIED (raft log indexes)\n"
      "and REVISION (the store's on that node). A single server, not a\n"
      "cluster, says so. -w json gives {\"nodes\": [{\"endpoint\", \"id\",\n"
      "\"client_address\", \"raft_address\", \"role\", \"leader\", \"term\",\n"
      "\"commit_index\", \"applied_index\", \"revision\"}, ...]}, a node that\n"
      "did not answer with \"error\": {\"code\", \"message\"}. Exits 0 when a node\n"
      "answered, else 3.\n"
      "These go to the leader (kvctl follows it) and print the members after\n"
      "the change (transfer: the new leader's ID):\n"
      "  cluster add ID RAFT_ADDR [CLIENT_ADDR]\n"
      "                           add node ID, its peer traffic at RAFT_ADDR\n"
      "                           (a voter once it has caught up)\n"
      "  cluster remove ID        remove node ID (it stops)\n"
      "  cluster transfer [ID]    hand leadership to ID (left out: the most\n"
      "                           up to date voter)\n"
      "One membership change at a time; a single server refuses them\n"
      "(FAILED_PRECONDITION, exit 4). Only on the command line.\n", NULL, kvctl_cluster_run },
    { "slowlog", KVCTL_OP_OWN, "", NULL, 0, 0, "[--limit N] [--reset]",
      "print the server's slow log: its requests slower than --slowlog-us", NULL,
      "Prints the requests the server answered more slowly than its\n"
      "--slowlog-us (default 10 ms), newest first, from its slow log (the last\n"
      "--slowlog-max-len, default 128): a line saying how many were logged,\n"
      "then a row each: ID (increasing since the server started), TIME (UTC,\n"
      "when it was answered), DURATION (from its request being read to its\n"
      "answer being written), METHOD, KEY (or a Range's start; at most 64\n"
      "bytes, a longer one cut and followed by its length), PEER and CODE.\n"
      "  --limit N   the newest N only\n"
      "  --reset     then empty the log (and its count)\n"
      "A cluster's nodes keep their own: it asks the first endpoint. -w json\n"
      "gives {\"threshold_us\", \"capacity\", \"total\", \"entries\": [{\"id\",\n"
      "\"unix_ms\", \"duration_us\", \"method\", \"key\" (base64), \"key_bytes\",\n"
      "\"peer\", \"code\"}, ...]}. Only on the command line.\n", NULL, kvctl_slowlog_run },
    { "clients", KVCTL_OP_OWN, "[kill PEER | kill --id N]", NULL, 0, 2, "",
      "list the server's client connections, or close some", NULL,
      "clients prints a row per connection open to the server (ClientList):\n"
      "ID (the server's, increasing), PEER (HOST:PORT), AGE (since it connected),\n"
      "IDLE (since its last request), REQUESTS (answered), IN and OUT (bytes\n"
      "buffered: input not yet a whole request, answers not yet read) and\n"
      "WATCHES (open watch streams); the last column marks kvctl's own\n"
      "connection, and one not authenticated on a server with a token.\n"
      "-w json gives {\"clients\": [{\"id\", \"peer\", \"age_ms\", \"idle_ms\",\n"
      "\"requests\", \"input_buffer_bytes\", \"output_buffer_bytes\", \"watches\",\n"
      "\"authenticated\", \"current\"}, ...]}.\n"
      "  clients kill PEER        close every connection from PEER (HOST:PORT,\n"
      "                           as the list shows it)\n"
      "  clients kill --id N      close connection N\n"
      "They are closed at once, what they had not read lost, and counted as\n"
      "\"killed\" in stats; kvctl prints how many (killed N). Exits 1 when no\n"
      "connection matched (NOT_FOUND). Only on the command line.\n", NULL, kvctl_clients_run },
    { "snapshot", KVCTL_OP_OWN, "save FILE", NULL, 2, 2, NULL,
      "save a consistent copy of the whole store to FILE", NULL,
      "snapshot save FILE asks the server for a snapshot (the Snapshot rpc): a\n"
      "copy of every key at one revision, taken while it goes on serving\n"
      "writes, in the backup file format (versioned, checksummed; PROTOCOL.md,\n"
      "\"Backups\"): each key's value, revisions and deadline. It is pulled\n"
      "with SnapshotRead, its checksum checked as it comes, written to\n"
      "FILE.tmp, synced and renamed to FILE; then prints\n"
      "  saved FILE: revision R, N keys, B bytes\n"
      "(-w json: {\"revision\", \"keys\", \"bytes\"}). The Snapshot call may take\n"
      "10 minutes whatever --timeout says. A server keeps 2 snapshots open at\n"
      "once (more: RESOURCE_EXHAUSTED, exit 4). Load it with\n"
      "'kvstored --restore FILE'. Exits 4 when the bytes received are damaged,\n"
      "2 when FILE cannot be written. Only on the command line.\n", NULL, kvctl_backup_run },
    { "dump", KVCTL_OP_OWN, "[FILE|-]", NULL, 0, 1, NULL,
      "write every key as text, from a snapshot", NULL,
      "dump takes a snapshot as 'snapshot save' does (consistent: one\n"
      "revision) and writes it to FILE (through FILE.tmp) or, with - or\n"
      "nothing, standard output, as text (to FILE: then prints\n"
      "'dumped FILE: revision R, N keys'): a header line\n"
      "  # kvstore dump 1 revision=R keys=N\n"
      "then one key a line, KEY VALUE [TTL_MS]: bytes 0x21-0x7e as they\n"
      "are, except \\ \" # which, like every other byte, are \\xHH; an\n"
      "empty VALUE is \"\"; TTL_MS the milliseconds the key had left at the\n"
      "snapshot. Revisions are not kept (load writes the keys anew): for\n"
      "moving data between engines and versions. Only on the command line.\n",
      NULL, kvctl_backup_run },
    { "load", KVCTL_OP_OWN, "[FILE|-]", NULL, 0, 1, NULL,
      "write the keys of a dump with Set", NULL,
      "load reads a dump (see dump) from FILE or, with - or nothing, standard\n"
      "input, checks every line first and refuses a malformed one with its\n"
      "line number before writing anything (exit 2); then sets each key, its\n"
      "TTL with it, 1000 Sets pipelined at a time, and prints 'loaded N keys'.\n"
      "A Set the server refuses stops it there (exit 4), the keys before it\n"
      "written. Only on the command line.\n", NULL, kvctl_load_run },
    { NULL, 0, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL },
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
    return op == KVCTL_OP_CLEAR_RANGE ? "clear" : "?";
}

int kvctl_cmd_has_key(kvctl_op op)
{
    return op == KVCTL_OP_GET || op == KVCTL_OP_SET || op == KVCTL_OP_CLEAR
           || op == KVCTL_OP_TOUCH || op == KVCTL_OP_TTL;
}

void kvctl_cmd_target(const kvctl_cmd *cmd, char *buf, size_t len)
{
    char a[160], b[160];

    buf[0] = 0;
    kvctl_out_quote(cmd->key.data, cmd->key.len, a, sizeof a);
    kvctl_out_quote(cmd->end.data, cmd->end.len, b, sizeof b);
    if (kvctl_cmd_has_key(cmd->op) || (cmd->op == KVCTL_OP_WATCH && !cmd->prefix
                                         && !cmd->range && !cmd->all))
        snprintf(buf, len, "%s", a);
    else if (cmd->op != KVCTL_OP_RANGE && cmd->op != KVCTL_OP_CLEAR_RANGE
             && cmd->op != KVCTL_OP_WATCH)
        return;
    else if (cmd->all)
        snprintf(buf, len, "--all");
    else if (cmd->prefix)
        snprintf(buf, len, "--prefix %s", a);
    else if (cmd->op == KVCTL_OP_CLEAR_RANGE || cmd->op == KVCTL_OP_WATCH)
        snprintf(buf, len, "--range %s%s%s", a, cmd->end.len ? " " : "", cmd->end.len ? b : "");
    else if (cmd->key.len || cmd->end.len)   /* a range from START, to END */
        snprintf(buf, len, "%s%s%s", a, cmd->end.len ? " " : "", cmd->end.len ? b : "");
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
    free(cmd->end.data);
    free(cmd->value.data);
    free(cmd->message);
    free(cmd->raft_addr);
    free(cmd->client_addr);
    free(cmd->kill_peer);
    free(cmd->path);
    if (cmd->txn)
        kvctl_txn_free(cmd->txn);
    memset(cmd, 0, sizeof *cmd);
}

void kvctl_cmd_print_help(const kvctl_cmd_spec *spec, int shell, FILE *fp)
{
    const char *args = kvctl_cmd_args(spec, shell);

    fprintf(fp, "Usage: %s%s%s%s%s%s\n\n%s", shell ? "" : "kvctl ", spec->name,
            spec->opts && *spec->opts ? " " : "", spec->opts ? spec->opts : "",
            *args ? " " : "", args,
            shell && spec->line_details ? spec->line_details : spec->details);
    if (!shell)
        fprintf(fp, "\nExit status: 0 success, 1 key not found, 2 usage error,\n"
                "3 could not connect or timed out, 4 other server error,\n"
                "5 a conditional write refused (--if-revision),\n"
                "6 the server ended the watch.\n"
                "Options (-e, -w, --timeout, --token-file): see 'kvctl --help'.\n");
}
