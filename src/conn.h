/* conn.h - one client connection: moves bytes between its socket and its
 * session (session.h), through TLS (tls.h) when the listener speaks it, and
 * keeps the socket-level limits: reads bounded per loop turn, back-pressure
 * while the client does not read, the idle timeout. Knows nothing of frames
 * or requests, and of the server only the narrow kv_conn_ctx. */
#ifndef KV_CONN_H
#define KV_CONN_H

#include <ev.h>
#include "authguard.h"
#include "session.h"
#include "tls.h"

struct kv_conn;

/* What every connection of a server shares; owned by the server. */
typedef struct kv_conn_ctx {
    struct ev_loop *loop;
    double idle_timeout;        /* seconds without progress before a close; 0 = never */
    kv_session_ctx session;     /* what every session shares; its stats
                                   count bytes and closes too */
    uint64_t last_id;           /* the id of the newest connection */
    /* C has answers (or a close) to carry out at the end of this loop turn,
     * once the engine flushed (see kv_conn_flush). Idempotent. */
    void (*schedule)(struct kv_conn_ctx *ctx, struct kv_conn *c);
    /* C is being closed and freed: forget it. */
    void (*closed)(struct kv_conn_ctx *ctx, struct kv_conn *c);
} kv_conn_ctx;

typedef struct kv_conn {
    ev_io rio;                  /* first: callbacks cast the watcher back */
    ev_io wio;                  /* active only while output is pending */
    ev_timer idle;              /* closes the connection after --idle-timeout
                                   without progress (see conn_idle_cb) */
    ev_tstamp last_progress;    /* last whole request or written answer */
    ev_tstamp last_sent;        /* read-only: last time answer bytes left, or
                                   the output was empty: how long a client
                                   has not read */
    ev_tstamp created;          /* read-only: when it was accepted */
    ev_tstamp last_request;     /* read-only: the last loop turn that took
                                   a whole request from it (created until
                                   then): what ClientList's idle_ms counts */
    uint64_t id;                /* read-only: increasing, from 1 (ClientList) */
    kv_conn_ctx *ctx;           /* borrowed */
    int fd;
    int paused;                 /* reading stopped: too much unread output */
    int peer_done;              /* the peer shut down its side: answer, then close */
    kv_tls_conn *tls;           /* the TLS stream, or NULL: plaintext */
    int handshaking;            /* TLS: no byte reaches the session until
                                   the handshake is done */
    int read_wants_write;       /* TLS: a read waits for the socket to be
                                   writable (wio serves it) */
    int write_wants_read;       /* TLS: a write waits for the socket to be
                                   readable (rio serves it) */
    kv_session session;         /* the protocol state */
    struct kv_conn *prev, *next;    /* the owner's: its list of connections */
    int pending;                    /* the owner's: on its flush list */
    struct kv_conn *pprev, *pnext;
} kv_conn;

/* Takes ownership of FD (non-blocking, connected to PEER) and starts
 * serving it, over TLS with TLS (borrowed: the stream keeps its own
 * reference) or in plaintext when TLS is NULL. Returns the connection or
 * NULL (FD is then closed). */
kv_conn *kv_conn_new(kv_conn_ctx *ctx, kv_tls *tls, int fd, const kv_peer *peer);

/* Stops reading; closes once pending answers are written (shutdown). */
void kv_conn_drain(kv_conn *c);

/* Writes this turn's answers. The owner calls it once per loop turn, after
 * the engine's flush succeeded: only then may the answers of the turn's
 * writes leave. Returns 0, or -1 when C was closed. */
int kv_conn_flush(kv_conn *c);

/* Closes the socket (after TLS's close_notify when the stream is sound),
 * counts the close under REASON, tells the owner (ctx->closed) and frees
 * C. WHY is logged at debug with the peer's address, before anything is
 * freed: static, or text of C's TLS stream. */
void kv_conn_close(kv_conn *c, kv_close_reason reason, const char *why);

/* The memory C's output holds (buffer capacity, sent or not). */
static inline size_t kv_conn_output_memory(const kv_conn *c)
{
    return kv_session_output_memory(&c->session);
}

#endif
