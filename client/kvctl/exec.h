/* exec.h - running commands on a connection and keeping their results. */
#ifndef KVCTL_EXEC_H
#define KVCTL_EXEC_H

#include <kvstore/client.h>
#include "cmd.h"

/* The outcome of one command. Owns its strings; free with
 * kvctl_exec_result_clear(). */
typedef struct kvctl_result {
    kv_status status;   /* KV_OK, or why the command failed */
    int transport;      /* 1: the failure came from the connection (could
                         * not connect, lost, timed out), not the server */
    int auth;           /* 1: authenticating the connection failed, so the
                         * command did not run (status and message are the
                         * authentication's) */
    char *message;      /* why, when status != KV_OK; else NULL */
    kvctl_bytes value;  /* ping: the reply; get: the value; set: the key
                         * the server answered; clear: the old value */
    int found;          /* clear, touch: whether the key existed */
    int canceled;       /* watch: the server ended it (status CANCELLED,
                         * message its reason) */
    Kvstore__V1__StatsResponse *stats;  /* stats: the answer, owned */
    kv_client_revs revs;    /* get, ttl: the key's revisions, and the store's */
    uint64_t ttl_ms;        /* get, ttl: the milliseconds the key has left
                             * to live; 0: it does not expire */
    uint64_t revision;      /* set, clear, clear range: the revision the
                             * write made (0: nothing changed); range: the
                             * store's at the first page; a canceled watch:
                             * its compact_revision */
    Kvstore__V1__RangeResponse **pages; /* range: the pages kept (those the
                                         * page hook did not take), owned */
    size_t npages;
    uint64_t count;         /* range: the keys in the whole range */
    int more;               /* range: --limit stopped before its end */
    int streamed;           /* range: its output was started page by page
                             * as the pages came (kvctl_out_page) ... */
    uint64_t shown;         /* ... with this many keys printed so far */
    uint64_t deleted;       /* clear range: how many keys went */
    Kvstore__V1__TxnResponse *txn;      /* txn: the answer, owned */
} kvctl_result;

/* What kvctl_exec_run() tells its caller as it goes, so that a range is
 * printed as its pages come instead of held whole in memory. */
typedef struct kvctl_exec_hooks {
    void *arg;      /* passed to both */
    /* A page of the range CMD came; R has the range's count and revision
     * (from its first page) and may be written to. Returns 1 when done
     * with PAGE (it is freed at once), 0 to keep it in R->pages. NULL:
     * every page is kept. */
    int (*page)(void *arg, const kvctl_cmd *cmd, kvctl_result *r,
                const Kvstore__V1__RangeResponse *page);
    /* RES[I] is final: called once per command, in order, each before
     * the next command's pages. NULL: nothing to do. */
    void (*done)(void *arg, size_t i);
} kvctl_exec_hooks;

/* Runs CMDS[0..N) on C in order and fills RES[0..N), telling HOOKS (may be
 * NULL) as it goes. A watch is not run here (watch.h): it fails with
 * KV_INTERNAL. Single-key commands, ping and stats go pipelined,
 * through the generated stubs; a range (page after page), a clear range
 * and a txn each wait for the calls before them and go through the
 * library's blocking helpers. Returns KV_OK when the server answered every
 * command (each answer may be an error), else the transport failure that
 * ended the batch; the commands the lost connection cut off have transport
 * set. */
kv_status kvctl_exec_run(kv_client *c, const kvctl_cmd *cmds,
                         kvctl_result *res, size_t n, const kvctl_exec_hooks *hooks);

/* Fills RES with a copy of WHY, the failure of kvctl_conn_open(): for a
 * command that could not run because there is no connection. */
void kvctl_exec_fail(kvctl_result *res, const kvctl_result *why);

/* Frees what RES owns and empties it. */
void kvctl_exec_result_clear(kvctl_result *res);

#endif
