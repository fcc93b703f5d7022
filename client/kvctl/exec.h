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
    int found;          /* clear: whether the key existed */
    Kvstore__V1__StatsResponse *stats;  /* stats: the answer, owned */
    kv_client_revs revs;    /* get: the key's revisions, and the store's */
    uint64_t revision;      /* set, clear, clear range: the revision the
                             * write made (0: nothing changed); range: the
                             * store's at the first page */
    Kvstore__V1__RangeResponse **pages; /* range: every page read, owned */
    size_t npages;
    uint64_t count;         /* range: the keys in the whole range */
    int more;               /* range: --limit stopped before its end */
    uint64_t deleted;       /* clear range: how many keys went */
    Kvstore__V1__TxnResponse *txn;      /* txn: the answer, owned */
} kvctl_result;

/* Runs CMDS[0..N) on C in order and fills RES[0..N). Single-key commands,
 * ping and stats go pipelined, through the generated stubs; a range (all
 * its pages), a clear range and a txn each wait for the calls before them
 * and go through the library's blocking helpers. Returns KV_OK when the
 * server answered every command (each answer may be an error), else the
 * transport failure that ended the batch; the commands the lost
 * connection cut off have transport set. */
kv_status kvctl_exec_run(kv_client *c, const kvctl_cmd *cmds,
                         kvctl_result *res, size_t n);

/* Fills RES with a copy of WHY, the failure of kvctl_conn_open(): for a
 * command that could not run because there is no connection. */
void kvctl_exec_fail(kvctl_result *res, const kvctl_result *why);

/* Frees what RES owns and empties it. */
void kvctl_exec_result_clear(kvctl_result *res);

#endif
