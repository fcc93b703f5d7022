/* conn.h - one client connection: its socket, its input and output bytes,
 * and its executor. Reads frames, dispatches each, writes answers in one
 * write per batch, applies back-pressure when a client stops reading. */
#ifndef KV_CONN_H
#define KV_CONN_H

#include <ev.h>
#include "authguard.h"
#include "buf.h"
#include "exec.h"

struct kv_server;

/* Where the connection is in its life. */
typedef enum kv_conn_state {
    KV_CONN_OPEN,       /* reading and answering */
    KV_CONN_CLOSING,    /* reads no more; closes once output is written */
} kv_conn_state;

typedef struct kv_conn {
    ev_io rio;                  /* first: callbacks cast the watcher back */
    ev_io wio;                  /* active only while output is pending */
    ev_timer idle;              /* closes the connection after --idle-timeout
                                   without progress (see conn_idle_cb) */
    ev_tstamp last_progress;    /* last whole request or written answer */
    ev_tstamp last_sent;        /* last time answer bytes left, or the output
                                   was empty: how long a client has not read */
    size_t in_counted;          /* what in.cap adds to srv->stats.input_bytes */
    size_t out_counted;         /* out.cap as counted in srv->stats.output_bytes */
    size_t out_held;            /* the last out_held bytes of out answer
                                   requests of this loop turn: they may not
                                   leave before the engine's flush, which
                                   makes this turn's writes durable (see
                                   kv_conn_flush) */
    struct kv_server *srv;
    int fd;
    kv_conn_state state;
    int paused;                 /* reading stopped: too much unread output */
    int peer_done;              /* the peer shut down its side: answer, then close */
    kv_buf in;                  /* bytes received, not yet a whole frame */
    kv_buf out;                 /* answers not yet written */
    kv_exec exec;               /* this connection's executor */
    struct kv_conn *prev, *next;/* in srv->conns */
    int pending;                /* on srv->pending: answers to write this turn */
    struct kv_conn *pprev, *pnext;
} kv_conn;

/* Takes ownership of FD (non-blocking, connected to PEER) and starts
 * serving it. Returns the connection or NULL (FD is then closed). */
kv_conn *kv_conn_new(struct kv_server *srv, int fd, const kv_peer *peer);

/* Stops reading; closes once pending answers are written (shutdown). */
void kv_conn_drain(kv_conn *c);

/* Writes this turn's answers. The server calls it once per loop turn, after
 * the engine's flush succeeded: only then may the answers of the turn's
 * writes leave. Returns 0, or -1 when C was closed. */
int kv_conn_flush(kv_conn *c);

/* Closes the socket, unlinks from the server and frees C. */
void kv_conn_close(kv_conn *c);

#endif
