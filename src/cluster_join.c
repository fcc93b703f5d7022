/* cluster_join.c - a node's outbound MemberAdd calls, on a thread; see
 * cluster_join.h. The call is made here with the framing of kvcore and
 * protobuf-c rather than the C client library: the server does not link
 * the client's shared library (its own ABI, soname and release pace) for
 * two calls a node makes in its life. */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <ev.h>
#include <sodium.h>
#include "cluster.h"
#include "cluster_join.h"
#include "endpoint.h"
#include "frame.h"
#include "log.h"
#include "tls.h"
#include "token.h"

#define CALL_TIMEOUT_MS 3000
#define JOIN_SECONDS 60.0
#define ANNOUNCE_SECONDS 5.0
#define ANNOUNCE_EVERY 2.0

typedef struct kv_join {
    pthread_t thread;
    atomic_int running;         /* the thread is out */
    atomic_int quit;            /* the node is stopping: give up */
    int started;                /* pthread_create succeeded: join it */
    double next_try;            /* loop side: the next announce may start */
    int joining;                /* --join rather than an announce */
    int checking;               /* a check whether we were removed */
    atomic_int removed;         /* a leader's configuration lacks us */
    char others[KV_FSM_MAX_MEMBERS][KV_FSM_ADDR_MAX];  /* checking: where to ask */
    size_t n_others;
    uint64_t term;              /* checking: our term when it started */
    uint64_t id;
    char target[KV_FSM_ADDR_MAX];
    char raft[KV_FSM_ADDR_MAX];
    char client[KV_FSM_ADDR_MAX];
    kv_tls_config tls;          /* the members speak TLS when tls.cert */
    const char *token_file;     /* they ask for this token, or NULL */
} kv_join;

static kv_join joiner;          /* one node per process */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* One call's connection: the socket, and when the members speak TLS the
 * context and stream over it. */
typedef struct peer {
    const char *addr;           /* for the log */
    int fd;
    kv_tls *ctx;
    kv_tls_conn *tls;
} peer;

static void hang_up(peer *p)
{
    kv_tls_conn_free(p->tls);
    kv_tls_free(p->ctx);
    if (p->fd >= 0)
        close(p->fd);
}

/* Waits up to CALL_TIMEOUT_MS for FD to be ready for EVENTS. Returns 0, or
 * -1 when it was not. */
static int ready(int fd, short events)
{
    struct pollfd pfd = { fd, events, 0 };

    return poll(&pfd, 1, CALL_TIMEOUT_MS) > 0 ? 0 : -1;
}

/* Waits for what the TLS step that returned RC wants; -1 when RC is a
 * failure (logged: a certificate refused on either side shows here) or
 * the socket did not become ready in time. */
static int tls_wait(const peer *p, long rc)
{
    if (rc == KV_TLS_WANT_READ || rc == KV_TLS_WANT_WRITE)
        return ready(p->fd, rc == KV_TLS_WANT_READ ? POLLIN : POLLOUT);
    kv_log(KV_LOG_WARN, "cluster: calling %s: %s", p->addr, kv_tls_conn_why(p->tls));
    return -1;
}

/* The TLS handshake of P with HOST, under TLS's settings. The context is
 * made for each call from the files, so renewed certificates are used
 * from the next call on (calls are rare: a join, an announce). Returns 0,
 * or -1 (a TLS failure logged). */
static int tls_start(peer *p, const kv_tls_config *tls, const char *host)
{
    char err[400];
    int rc;

    if (!(p->ctx = kv_tls_client_new(tls, err, sizeof err))) {
        kv_log(KV_LOG_ERROR, "cluster: cannot call %s over TLS: %s", p->addr, err);
        return -1;
    }
    if (!(p->tls = kv_tls_conn_dial(p->ctx, p->fd, host))) {
        kv_log(KV_LOG_ERROR, "cluster: cannot call %s over TLS: out of memory, or \"%s\" is "
               "not a name a certificate can carry", p->addr, host);
        return -1;
    }
    while ((rc = kv_tls_handshake(p->tls)) != 1)
        if (tls_wait(p, rc) < 0)
            return -1;
    return 0;
}

/* Connects P to the client port at ADDR, with TLS's handshake when the
 * members speak TLS. Returns 0, or -1 (P still to hang_up). */
static int dial(peer *p, const char *addr, const kv_tls_config *tls)
{
    kv_endpoint ep;
    char err[300];
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
    const char *host;

    *p = (peer){ .addr = addr, .fd = -1 };
    if (kv_endpoint_parse(addr, -1, &ep, err, sizeof err) < 0)
        return -1;
    host = ep.host[0] ? ep.host : "127.0.0.1";
    if (getaddrinfo(host, ep.service, &hints, &ai) != 0)
        return -1;
    /* Non-blocking, so that a peer cut off by a partition costs at most
     * CALL_TIMEOUT_MS, not the kernel's two minutes of SYN retries: the
     * node's stop waits for this thread. */
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        int err = 0;
        socklen_t len = sizeof err;
        if (errno != EINPROGRESS || ready(fd, POLLOUT) < 0
            || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    p->fd = fd;
    if (fd < 0)
        return -1;
    return tls->cert ? tls_start(p, tls, host) : 0;
}

static int io_all(peer *p, uint8_t *b, size_t n, int writing)
{
    while (n) {
        ssize_t k;
        if (p->tls) {
            k = writing ? kv_tls_write(p->tls, b, n) : kv_tls_read(p->tls, b, n);
            if (k < 0) {
                if (tls_wait(p, k) < 0)
                    return -1;
                continue;
            }
        } else {
            if (ready(p->fd, writing ? POLLOUT : POLLIN) < 0)
                return -1;
            k = writing ? send(p->fd, b, n, MSG_NOSIGNAL) : recv(p->fd, b, n, 0);
            if (k < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
        }
        if (k <= 0)
            return -1;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* The longest request frame sent: an Auth with the longest token. */
#define REQUEST_MAX (KV_TOKEN_MAX + 512)

/* Frames request ID, a call of METHOD with IN, at OUT (ROOM bytes).
 * Returns its length, or 0 when it does not fit. */
static size_t put_request(uint8_t *out, size_t room, uint64_t id, const char *method,
                          const ProtobufCMessage *in)
{
    Kvstore__V1__RpcRequest req = KVSTORE__V1__RPC_REQUEST__INIT;
    uint8_t payload[REQUEST_MAX];

    if (protobuf_c_message_get_packed_size(in) > sizeof payload)
        return 0;
    req.id = id;
    req.method = (char *)method;
    req.payload.data = payload;
    req.payload.len = protobuf_c_message_pack(in, payload);
    size_t blen = kvstore__v1__rpc_request__get_packed_size(&req);
    if (blen + KV_FRAME_PREFIX_MAX > room)
        return 0;
    size_t plen = kv_frame_put_prefix(out, (uint32_t)blen);
    kvstore__v1__rpc_request__pack(&req, out + plen);
    sodium_memzero(payload, sizeof payload);    /* it may have held the token */
    return plen + blen;
}

/* The next answer on P (free with kvstore__v1__rpc_response__free_unpacked),
 * or NULL when the transport failed. */
static Kvstore__V1__RpcResponse *read_answer(peer *p)
{
    uint8_t head[KV_FRAME_PREFIX_MAX], *buf;
    size_t have = 0, off, len;
    Kvstore__V1__RpcResponse *resp;

    for (;;) {  /* the prefix a byte at a time, then the body */
        if (have == sizeof head || io_all(p, head + have, 1, 0) < 0)
            return NULL;
        have++;
        len = 0;    /* set by the decoder only once the prefix is whole */
        kv_frame_result r = kv_frame_decode(head, have, 1u << 20, &off, &len);
        if (r == KV_FRAME_PARTIAL && len == 0 && have < sizeof head)
            continue;
        if (r != KV_FRAME_PARTIAL && r != KV_FRAME_OK)
            return NULL;
        break;
    }
    if (!(buf = malloc(len ? len : 1)) || io_all(p, buf, len, 0) < 0) {
        free(buf);
        return NULL;
    }
    resp = kvstore__v1__rpc_response__unpack(NULL, len, buf);
    free(buf);
    return resp;
}

/* Frames an Auth with the token of the --auth-token-file at OUT (ROOM
 * bytes), read anew for each call like the TLS files. Returns its length,
 * or 0 (logged) when the file cannot be read. */
static size_t put_auth(uint8_t *out, size_t room, const char *path, const char *addr)
{
    Kvstore__V1__AuthRequest in = KVSTORE__V1__AUTH_REQUEST__INIT;
    uint8_t token[KV_TOKEN_MAX];
    char err[300];
    size_t len, n = 0;

    if (kv_token_read(path, token, &len, err, sizeof err) < 0) {
        kv_log(KV_LOG_ERROR, "cluster: cannot call %s: %s", addr, err);
        return 0;
    }
    in.token.data = token;
    in.token.len = len;
    n = put_request(out, room, 1, "/kvstore.v1.KV/Auth", &in.base);
    sodium_memzero(token, sizeof token);
    return n;
}

/* One call of METHOD with IN at ADDR, after an Auth when the servers ask
 * for a token (the members share one). Returns the answer (free with
 * kvstore__v1__rpc_response__free_unpacked), or NULL when the transport
 * failed or Auth was refused (logged). */
static Kvstore__V1__RpcResponse *call(const char *addr, const char *method,
                                      const ProtobufCMessage *in)
{
    const char *token_file = joiner.token_file;
    uint8_t out[2 * REQUEST_MAX];
    Kvstore__V1__RpcResponse *resp = NULL;
    size_t n = 0, k;
    peer p;

    if (dial(&p, addr, &joiner.tls) < 0)
        goto out;
    if (token_file && !(n = put_auth(out, sizeof out, token_file, addr)))
        goto out;
    if (!(k = put_request(out + n, sizeof out - n, 2, method, in)) || io_all(&p, out, n + k, 1) < 0)
        goto out;
    if (token_file) {
        Kvstore__V1__RpcResponse *a = read_answer(&p);
        int refused = a && a->code != 0;
        if (refused)
            kv_log(KV_LOG_ERROR, "cluster: calling %s: Auth refused: %s", addr,
                   a->message ? a->message : "?");
        if (a)
            kvstore__v1__rpc_response__free_unpacked(a, NULL);
        if (!a || refused)
            goto out;
    }
    resp = read_answer(&p);
out:
    sodium_memzero(out, sizeof out);
    hang_up(&p);
    return resp;
}

/* Where the leader is, asked of ADDR: copied into OUT; 0, or -1. */
static int find_leader(const char *addr, char *out, size_t outlen)
{
    Kvstore__V1__ClusterStatusRequest in = KVSTORE__V1__CLUSTER_STATUS_REQUEST__INIT;
    Kvstore__V1__RpcResponse *r = call(addr, "/kvstore.v1.KV/ClusterStatus", &in.base);
    int rc = -1;

    if (r && r->code == 0) {
        Kvstore__V1__ClusterStatusResponse *s =
            kvstore__v1__cluster_status_response__unpack(NULL, r->payload.len, r->payload.data);
        if (s && s->leader && *s->leader) {
            snprintf(out, outlen, "%s", s->leader);
            rc = 0;
        }
        if (s)
            kvstore__v1__cluster_status_response__free_unpacked(s, NULL);
    }
    if (r)
        kvstore__v1__rpc_response__free_unpacked(r, NULL);
    return rc;
}

/* Whether the node at ADDR is a leader, of TERM or later, whose
 * configuration lacks ID: 1 yes, 0 no or no answer. (A stale leader cut
 * off since before this node joined must not make it stop.) */
static int leader_without(const char *addr, uint64_t id, uint64_t term)
{
    Kvstore__V1__ClusterStatusRequest in = KVSTORE__V1__CLUSTER_STATUS_REQUEST__INIT;
    Kvstore__V1__RpcResponse *r = call(addr, "/kvstore.v1.KV/ClusterStatus", &in.base);
    int without = 0;

    if (r && r->code == 0) {
        Kvstore__V1__ClusterStatusResponse *s =
            kvstore__v1__cluster_status_response__unpack(NULL, r->payload.len, r->payload.data);
        if (s && s->role && strcmp(s->role, "leader") == 0 && s->n_members && s->term >= term) {
            without = 1;
            for (size_t i = 0; i < s->n_members; i++)
                without &= s->members[i]->id != id;
        }
        if (s)
            kvstore__v1__cluster_status_response__free_unpacked(s, NULL);
    }
    if (r)
        kvstore__v1__rpc_response__free_unpacked(r, NULL);
    return without;
}

/* A member that hears from no leader asks the others whether a leader
 * still counts it: a removed node is told nothing by the log (the leader
 * replicates the configuration that removes it to the others only). */
static void check(kv_join *j)
{
    for (size_t i = 0; i < j->n_others && !atomic_load(&j->quit); i++)
        if (leader_without(j->others[i], j->id, j->term)) {
            atomic_store(&j->removed, 1);
            return;
        }
}

static void *run(void *arg)
{
    kv_join *j = arg;
    Kvstore__V1__MemberAddRequest in = KVSTORE__V1__MEMBER_ADD_REQUEST__INIT;
    double until = now_s() + (j->joining ? JOIN_SECONDS : ANNOUNCE_SECONDS);
    char target[KV_FSM_ADDR_MAX];
    long backoff = 100;

    if (j->checking) {
        check(j);
        atomic_store(&j->running, 0);
        return NULL;
    }
    in.id = j->id;
    in.raft_address = j->raft;
    in.client_address = j->client;
    snprintf(target, sizeof target, "%s", j->target);
    while (now_s() < until && !atomic_load(&j->quit)) {
        Kvstore__V1__RpcResponse *r = call(target, "/kvstore.v1.KV/MemberAdd", &in.base);
        int code = r ? (int)r->code : -1;
        if (code == 14 && r->leader && *r->leader)
            snprintf(target, sizeof target, "%s", r->leader);
        else if (code == 14)
            (void)find_leader(target, target, sizeof target);
        if (code == 0 || (code > 0 && code != 14 && code != 9)) {
            if (code == 0 && j->joining)
                kv_log(KV_LOG_INFO, "cluster: joined through %s", target);
            else if (code != 0)
                kv_log(KV_LOG_ERROR, "cluster: MemberAdd at %s refused: %s", target,
                       r->message ? r->message : "?");
            kvstore__v1__rpc_response__free_unpacked(r, NULL);
            break;
        }
        if (r)
            kvstore__v1__rpc_response__free_unpacked(r, NULL);
        pause_ms(backoff);
        if (backoff < 1000)
            backoff *= 2;
    }
    atomic_store(&j->running, 0);
    return NULL;
}

static void spawn(kv_cluster *c, const char *target, int joining, int checking)
{
    kv_join *j = &joiner;

    if (atomic_load(&j->running))
        return;
    if (j->started)
        pthread_join(j->thread, NULL);
    j->started = 0;
    j->joining = joining;
    j->checking = checking;
    j->n_others = 0;
    for (size_t i = 0; checking && i < c->fsm.n_members; i++)
        if (c->fsm.members[i].id != c->cfg.node_id && c->fsm.members[i].client[0])
            snprintf(j->others[j->n_others++], KV_FSM_ADDR_MAX, "%s", c->fsm.members[i].client);
    j->id = c->cfg.node_id;
    j->term = c->raft.current_term;
    snprintf(j->target, sizeof j->target, "%s", target);
    snprintf(j->raft, sizeof j->raft, "%s", c->raft_address);
    snprintf(j->client, sizeof j->client, "%s", c->client_address);
    j->tls = c->cfg.tls;
    j->token_file = c->cfg.token_file;
    atomic_store(&j->running, 1);
    if (pthread_create(&j->thread, NULL, run, j) != 0) {
        atomic_store(&j->running, 0);
        kv_log(KV_LOG_ERROR, "cluster: cannot start a thread to call %s", target);
        return;
    }
    j->started = 1;
}

void kv_cluster_join_start(kv_cluster *c, const char *member)
{
    spawn(c, member, 1, 0);
}

void kv_cluster_join_check(kv_cluster *c)
{
    if (atomic_load(&joiner.running) || ev_time() < joiner.next_try)
        return;
    joiner.next_try = ev_time() + ANNOUNCE_EVERY;
    spawn(c, "", 0, 1);
}

int kv_cluster_join_removed(void)
{
    return atomic_load(&joiner.removed);
}

void kv_cluster_join_announce(kv_cluster *c)
{
    const char *mine = kv_fsm_client_address(&c->fsm, c->cfg.node_id);
    raft_id leader = 0;
    const char *unused;

    if (mine && strcmp(mine, c->client_address) == 0)
        return;
    if (atomic_load(&joiner.running) || ev_time() < joiner.next_try)
        return;
    raft_leader(&c->raft, &leader, &unused);
    const char *where = leader ? kv_fsm_client_address(&c->fsm, leader) : NULL;
    if (!where)
        return;
    joiner.next_try = ev_time() + ANNOUNCE_EVERY;
    spawn(c, where, 0, 0);
}

void kv_cluster_join_stop(kv_cluster *c)
{
    (void)c;
    atomic_store(&joiner.quit, 1);
    if (joiner.started)
        pthread_join(joiner.thread, NULL);
    joiner.started = 0;
}
