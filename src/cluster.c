/* cluster.c - kvstored as a Raft cluster member: the calls that wait on
 * libraft (writes batched per turn into entries, reads behind a barrier),
 * routing, the leader's expiry, libraft's fsm hooks, leaving and closing;
 * see cluster.h. The membership rpcs are cluster_members.c's, starting a
 * node cluster_start.c's, what an entry does fsm.c's, the outbound calls
 * of a joining node cluster_join.c's. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cluster.h"
#include "cluster_internal.h"
#include "cluster_join.h"
#include "clog.h"
#include "dispatch.h"
#include "expire.h"
#include "log.h"
#include "snapshot.h"

/* A proposed entry, the calls waiting for it, and its raft request. */
typedef struct kv_batch {
    struct raft_apply req;      /* first: libraft hands it back */
    kv_cluster *c;
    struct kv_batch *next;      /* in the proposed list */
    uint64_t number;
    kv_clog_kind kind;
    kv_buf entry;               /* until proposed */
    kv_pending *calls;          /* this node's calls, one per command */
    size_t n, cap;
    int applied;                /* the fsm ran it and answered the calls */
    kv_pending member_call;     /* a MEMBER entry's MemberAdd, if any */
} kv_batch;

/* A linearizable read, waiting for the barrier of its turn. */
typedef struct kv_read {
    struct kv_read *next;
    kv_pending w;
    unsigned method;
    size_t len;
    uint8_t payload[];
} kv_read;

typedef struct kv_read_batch {
    struct raft_barrier req;    /* first */
    kv_cluster *c;
    kv_read *first, **tail;
} kv_read_batch;


/* The biggest entry made from one turn's writes: past it, the turn's
 * writes go in more than one entry. */
#define ENTRY_SPLIT_BYTES ((size_t)4 << 20)



static void fatal(kv_cluster *c, const char *why)
{
    if (c->fatal)
        return;
    c->fatal = why;
    kv_log(KV_LOG_ERROR, "cluster: %s; stopping this node", why);
    if (c->stop)
        c->stop(c->stop_arg, why);
}

int kv_cluster_leads(kv_cluster *c)
{
    return !c->fatal && raft_state(&c->raft) == RAFT_LEADER;
}

/* The leader's client address as far as this node knows, or NULL. */
const char *kv_cluster_leader(kv_cluster *c, raft_id *id_out)
{
    raft_id id = 0;
    const char *addr = NULL;

    raft_leader(&c->raft, &id, &addr);
    if (id_out)
        *id_out = id;
    return id ? kv_fsm_client_address(&c->fsm, id) : NULL;
}

/* Answers W UNAVAILABLE because this node cannot serve it: not the leader,
 * or leadership lost; WHAT says which. The leader's address goes with it. */
void kv_cluster_unavailable(kv_cluster *c, kv_pending *w, const char *what)
{
    raft_id id;
    const char *hint = kv_cluster_leader(c, &id);
    kv_call *call = w->call;
    char *msg = call->alloc->alloc(call->alloc->allocator_data, 512);

    if (msg) {
        if (hint && id != c->cfg.node_id)
            snprintf(msg, 512, "%s; the leader is node %" PRIu64 " at %s", what, (uint64_t)id, hint);
        else if (id && id != c->cfg.node_id)
            snprintf(msg, 512, "%s; the leader is node %" PRIu64 ", whose client address is not "
                     "known here yet", what, (uint64_t)id);
        else
            snprintf(msg, 512, "%s; no leader known (an election may be under way)", what);
    }
    kv_call_fail_leader(call, KV_UNAVAILABLE, msg ? msg : what, id != c->cfg.node_id ? hint : NULL);
    w->closure(NULL, call);
    w->call = NULL;
}

void kv_cluster_fail(kv_pending *w, kv_status st, const char *why)
{
    kv_call_fail(w->call, st, why);
    w->closure(NULL, w->call);
    w->call = NULL;
}

/* ---- entries proposed ------------------------------------------------ */

static kv_batch *batch_new(kv_cluster *c, kv_clog_kind kind)
{
    kv_batch *b = calloc(1, sizeof *b);
    kv_clog_head h = { kind, wall_ms(), c->incarnation, ++c->next_batch };

    if (!b)
        return NULL;
    b->c = c;
    b->kind = kind;
    b->number = h.batch;
    b->req.data = b;
    if (kv_clog_put_head(&b->entry, &h) < 0) {
        free(b);
        return NULL;
    }
    return b;
}

static void batch_free(kv_batch *b)
{
    kv_buf_free(&b->entry);
    free(b->calls);
    free(b);
}

/* Answers every call of B still waiting with WHY. */
static void batch_fail(kv_batch *b, const char *why)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->calls[i].call)
            kv_cluster_unavailable(b->c, &b->calls[i], why);
    if (b->member_call.call)
        kv_cluster_unavailable(b->c, &b->member_call, why);
}

static void unlink_batch(kv_cluster *c, kv_batch *b)
{
    kv_batch **pp = &c->first, *prev = NULL;

    while (*pp && *pp != b) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = b->next;
    if (c->last == b)
        c->last = prev;
}

static void apply_done(struct raft_apply *req, int status, void *result)
{
    kv_batch *b = req->data;
    kv_cluster *c = b->c;

    (void)result;
    unlink_batch(c, b);
    if (b->kind == KV_CLOG_EXPIRE)
        c->expiring = 0;
    if (!b->applied)
        batch_fail(b, status == RAFT_LEADERSHIPLOST || status == RAFT_NOTLEADER
                      ? "leadership was lost before this write was committed: it may still be "
                        "applied; a retry with the same client_id and seq is safe"
                      : "the write could not be committed: it may still be applied; a retry "
                        "with the same client_id and seq is safe");
    else if (b->member_call.call) {
        Kvstore__V1__MemberAddResponse out = KVSTORE__V1__MEMBER_ADD_RESPONSE__INIT;
        b->member_call.closure(&out.base, b->member_call.call);
    }
    batch_free(b);
}

/* Proposes B (taking it): on success it joins the proposed list. Returns
 * 0, or -1 when raft refused it (its calls answered, B freed). */
static int propose(kv_cluster *c, kv_batch *b)
{
    struct raft_buffer buf = { NULL, 0 };
    int rv = RAFT_NOMEM;

    if (kv_clog_pad(&b->entry) == 0) {
        buf.len = kv_buf_len(&b->entry);
        buf.base = raft_malloc(buf.len);
    }
    if (buf.base) {
        memcpy(buf.base, kv_buf_head(&b->entry), buf.len);
        rv = raft_apply(&c->raft, &b->req, &buf, 1, apply_done);
        if (rv)
            raft_free(buf.base);
    }
    kv_buf_free(&b->entry);
    if (rv) {
        batch_fail(b, rv == RAFT_NOTLEADER ? "this node is not the leader (it lost its leadership this turn)"
                                           : "the write could not be proposed");
        if (b->kind == KV_CLOG_EXPIRE)
            c->expiring = 0;
        batch_free(b);
        return -1;
    }
    b->next = NULL;
    if (c->last)
        c->last->next = b;
    else
        c->first = b;
    c->last = b;
    return 0;
}

static kv_batch *find_batch(kv_cluster *c, uint64_t number)
{
    for (kv_batch *b = c->first; b; b = b->next)
        if (b->number == number)
            return b;
    return NULL;
}

/* A MEMBER entry for node ID at client address ADDR; W (may be NULL) is
 * answered once it is applied. */
int kv_cluster_propose_member(kv_cluster *c, uint64_t id, const char *addr, kv_pending *w)
{
    kv_batch *b = batch_new(c, KV_CLOG_MEMBER);

    if (!b || kv_clog_put_varint(&b->entry, id) < 0
        || kv_clog_put_bytes(&b->entry, (const uint8_t *)addr, strlen(addr)) < 0) {
        if (b)
            batch_free(b);
        if (w)
            kv_cluster_fail(w, KV_RESOURCE_EXHAUSTED, "server out of memory");
        return -1;
    }
    if (w)
        b->member_call = *w;
    return propose(c, b);
}

/* A new leader's first act: a MEMBER entry for itself, which tells every
 * node where clients find it and, as an entry of the new term, commits
 * what earlier terms left uncommitted before anything is answered (the
 * no-op of Raft's section 8; libraft 0.15 does not append one itself). */
static void check_role(kv_cluster *c)
{
    if (c->fatal)
        return;
    if (raft_state(&c->raft) == RAFT_UNAVAILABLE) {
        /* libraft gives up on a log it cannot write (a disk error): the
         * node stops, to be restarted on a log it reads back, rather than
         * go on with an unknown state (libraft #320: a leader whose disk
         * write failed could diverge). */
        fatal(c, "raft stopped: its log could not be written");
        return;
    }
    if (raft_state(&c->raft) == RAFT_LEADER && c->hello_term != c->raft.current_term
        && kv_cluster_propose_member(c, c->cfg.node_id, c->client_address, NULL) == 0) {
        /* Said once proposed: refused (a transfer under way), it is
         * proposed again next turn. */
        c->hello_term = c->raft.current_term;
        c->elections_won++;
        kv_log(KV_LOG_INFO, "cluster: node %" PRIu64 " is the leader (term %llu)",
               c->cfg.node_id, (unsigned long long)c->raft.current_term);
    }
    int member = 0;
    raft_id leader = 0;
    const char *unused;
    for (unsigned i = 0; i < c->raft.configuration.n; i++)
        member |= c->raft.configuration.servers[i].id == c->cfg.node_id;
    if (member)
        c->was_member = 1;
    if ((c->was_member && !member && c->raft.configuration_uncommitted_index == 0
         && c->raft.configuration_index) || kv_cluster_join_removed()) {
        fatal(c, "this node was removed from the cluster");
        return;
    }
    if (kv_cluster_leads(c) || !member)
        return;
    kv_cluster_join_announce(c);
    /* No leader for three election timeouts: maybe we were removed, and
     * the log, which the leader no longer sends us, will not say so. */
    raft_leader(&c->raft, &leader, &unused);
    if (leader)
        c->leaderless_since = 0;
    else if (!c->leaderless_since)
        c->leaderless_since = ev_time();
    else if (ev_time() - c->leaderless_since > 3 * c->cfg.election_ms / 1000.0)
        kv_cluster_join_check(c);
}

/* ---- routing --------------------------------------------------------- */

/* Whether this node leads and may take W; else W is answered UNAVAILABLE
 * with WHY (and the leader's address). A leader says hello first. */
static int leading(kv_cluster *c, kv_pending *w, const char *why)
{
    if (!kv_cluster_leads(c)) {
        kv_cluster_unavailable(c, w, why);
        return 0;
    }
    check_role(c);
    return 1;
}

/* --max-memory-bytes, checked by the leader before it proposes a write
 * that may add data (Set, Txn): the memory an engine holds differs from
 * node to node, so every node applying the check itself could refuse a
 * committed write on one node only (fsm.c applies without it). */
static int memory_full(kv_cluster *c, int code, size_t adds)
{
    uint64_t max = c->env->limits.max_memory_bytes;
    kv_engine_stats es;

    if (!max || (code != KV_CLOG_SET && code != KV_CLOG_TXN))
        return 0;
    kv_engine_stats_get(c->env->engine, &es);
    return es.memory_bytes + adds > max;
}

static void take_write(kv_cluster *c, int code, ProtobufCClosure closure, void *data)
{
    kv_call *call = data;
    const kv_request *req = call->request;
    kv_pending w = { call, closure };

    if (!leading(c, &w, "this node is not the leader"))
        return;
    if (req->env.client_id_len > KV_CLOG_MAX_CLIENT_ID) {
        kv_cluster_fail(&w, KV_INVALID_ARGUMENT, "client_id is longer than 64 bytes (16 is usual)");
        return;
    }
    if (memory_full(c, code, req->env.payload_len)) {
        kv_cluster_fail(&w, KV_RESOURCE_EXHAUSTED, "memory limit reached (--max-memory-bytes): "
                        "Clear keys or raise the limit");
        return;
    }
    if (c->open && kv_buf_len(&c->open->entry) > ENTRY_SPLIT_BYTES) {
        propose(c, c->open);
        c->open = NULL;
    }
    if (!c->open && !(c->open = batch_new(c, KV_CLOG_WRITES))) {
        kv_cluster_fail(&w, KV_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    kv_batch *b = c->open;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        kv_pending *calls = realloc(b->calls, cap * sizeof *calls);
        if (!calls) {
            kv_cluster_fail(&w, KV_RESOURCE_EXHAUSTED, "server out of memory");
            return;
        }
        b->calls = calls;
        b->cap = cap;
    }
    const kv_envelope *env = &req->env;
    kv_clog_cmd cmd = { (kv_clog_code)code, env->client_id, env->client_id_len,
                        env->client_id_len ? env->seq : 0, env->payload, env->payload_len };
    size_t mark = kv_buf_len(&b->entry);
    if (kv_clog_put_cmd(&b->entry, &cmd) < 0) {
        b->entry.end = b->entry.start + mark;
        kv_cluster_fail(&w, KV_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    kv_call *kept = kv_call_defer(data);
    if (!kept) {
        b->entry.end = b->entry.start + mark;
        kv_cluster_fail(&w, KV_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    b->calls[b->n++] = (kv_pending){ kept, closure };
}

static void barrier_done(struct raft_barrier *req, int status)
{
    kv_read_batch *rb = req->data;
    kv_cluster *c = rb->c;

    for (kv_read *r = rb->first, *next; r; r = next) {
        next = r->next;
        if (status == 0 && !c->fatal)
            kv_fsm_read(&c->fsm, r->method, r->payload, r->len, r->w.call, r->w.closure);
        else
            kv_cluster_unavailable(c, &r->w, "leadership was lost before this read could be served");
        free(r);
    }
    free(rb);
}

static void take_read(kv_cluster *c, unsigned method, ProtobufCClosure closure, void *data)
{
    kv_call *call = data;
    const kv_request *req = call->request;
    kv_pending w = { call, closure };

    if (!leading(c, &w, "this node is not the leader (a serializable read is served by any "
                 "node)"))
        return;
    if (!c->reads) {
        kv_read_batch *rb = calloc(1, sizeof *rb);
        if (!rb) {
            kv_cluster_fail(&w, KV_RESOURCE_EXHAUSTED, "server out of memory");
            return;
        }
        rb->c = c;
        rb->req.data = rb;
        rb->tail = &rb->first;
        c->reads = rb;
    }
    kv_read *r = malloc(sizeof *r + req->env.payload_len);
    kv_call *kept = r ? kv_call_defer(data) : NULL;
    if (!kept) {
        free(r);
        kv_cluster_fail(&w, KV_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    r->next = NULL;
    r->w = (kv_pending){ kept, closure };
    r->method = method;
    r->len = req->env.payload_len;
    if (r->len)
        memcpy(r->payload, req->env.payload, r->len);
    *c->reads->tail = r;
    c->reads->tail = &r->next;
}

static void submit_reads(kv_cluster *c)
{
    kv_read_batch *rb = c->reads;
    int rv;

    c->reads = NULL;
    if ((rv = raft_barrier(&c->raft, &rb->req, barrier_done)) != 0)
        barrier_done(&rb->req, rv);
}

void kv_cluster_turn(kv_cluster *c)
{
    check_role(c);
    if (c->open) {
        kv_batch *b = c->open;
        c->open = NULL;
        propose(c, b);
    }
    if (c->reads)
        submit_reads(c);
    kv_uvembed_run(&c->embed);
}

int kv_cluster_route(kv_cluster *c, ProtobufCService *svc, unsigned method,
                     const ProtobufCMessage *input, ProtobufCClosure closure, void *data)
{
    const char *name = svc->descriptor->methods[method].name;
    int code = kv_fsm_write_code(method);
    kv_pending w = { data, closure };

    if (code) {
        take_write(c, code, closure, data);
        return 1;
    }
    if (kv_fsm_is_read(method)) {
        if (input->descriptor == &kvstore__v1__get_request__descriptor
                ? ((const Kvstore__V1__GetRequest *)input)->serializable
                : ((const Kvstore__V1__RangeRequest *)input)->serializable)
            return 0;
        take_read(c, method, closure, data);
        return 1;
    }
    if (strcmp(name, "ClusterStatus") == 0)
        kv_cluster_status(c, closure, data);
    else if (strcmp(name, "MemberAdd") == 0)
        kv_cluster_member_add(c, (const Kvstore__V1__MemberAddRequest *)input, &w);
    else if (strcmp(name, "MemberRemove") == 0)
        kv_cluster_member_remove(c, (const Kvstore__V1__MemberRemoveRequest *)input, &w);
    else if (strcmp(name, "LeaderTransfer") == 0)
        kv_cluster_leader_transfer(c, (const Kvstore__V1__LeaderTransferRequest *)input, &w);
    else
        return 0;
    return 1;
}
/* ---- expiry, stats --------------------------------------------------- */

double kv_cluster_expire(kv_cluster *c)
{
    kv_arena arena;
    kv_op op;
    ProtobufCBinaryData *keys;
    size_t n;
    int more;

    if (!kv_cluster_leads(c))
        return 1.0;     /* the leader removes them; reads hide them meanwhile */
    if (c->expiring)
        return 0.01;
    kv_arena_init(&arena, 64 * 1024);
    kv_op_init(&op, c->env, &arena.pb);
    op.now = wall_ms();
    kv_status st = kv_expire_find(&op, KV_EXPIRE_BATCH, &keys, &n, &more);
    kv_batch *b = st == KV_OK && n ? batch_new(c, KV_CLOG_EXPIRE) : NULL;
    for (size_t i = 0; b && i < n; i++)
        if (kv_clog_put_bytes(&b->entry, keys[i].data, keys[i].len) < 0) {
            batch_free(b);
            b = NULL;
        }
    kv_arena_free(&arena);
    if (!b)
        return st == KV_OK && !n ? -1.0 : 1.0;
    c->expiring = 1;
    propose(c, b);
    return 0.01;
}

/* ---- the fsm, for libraft -------------------------------------------- */

static int fsm_apply(struct raft_fsm *hooks, const struct raft_buffer *buf, void **result)
{
    kv_cluster *c = hooks->data;
    const uint8_t *p = buf->base, *end = p + buf->len;
    kv_clog_head h;
    kv_batch *b = NULL;

    *result = NULL;
    if (c->fatal)
        return 0;
    if (kv_clog_get_head(&p, end, &h) == 0 && h.origin == c->incarnation)
        b = find_batch(c, h.batch);
    int rc = kv_fsm_apply(&c->fsm, buf->base, buf->len, b ? b->calls : NULL, b ? b->n : 0);
    if (b)
        b->applied = 1;
    if (rc < 0)
        fatal(c, c->fsm.failed);
    return 0;
}

/* Snapshots (snapshot.h): the state frozen on the loop in snapshot(), its
 * keys encoded on libraft's worker thread in snapshot_async(), freed on
 * the loop in snapshot_finalize(). libraft takes one at a time. */
static int fsm_snapshot(struct raft_fsm *hooks, struct raft_buffer *bufs[], unsigned *n)
{
    kv_cluster *c = hooks->data;
    double t0 = ev_time();

    *bufs = NULL;
    *n = 0;
    if (!(c->snap = kv_snap_begin(&c->fsm)))
        return RAFT_NOMEM;
    c->snap_started = t0;
    c->snap_loop_seconds = ev_time() - t0;
    return 0;
}

/* On libraft's worker thread: touches only the snapshot. */
static int fsm_snapshot_async(struct raft_fsm *hooks, struct raft_buffer *bufs[], unsigned *n)
{
    kv_cluster *c = hooks->data;

    return kv_snap_finish(c->snap, bufs, n) == 0 ? 0 : RAFT_IOERR;
}

static int fsm_snapshot_finalize(struct raft_fsm *hooks, struct raft_buffer *bufs[],
                                 unsigned *n)
{
    kv_cluster *c = hooks->data;
    size_t bytes = 0;

    for (unsigned i = 0; *bufs && i < *n; i++)
        bytes += (*bufs)[i].len;
    if (c->snap)
        kv_log(KV_LOG_INFO, "cluster: snapshot of %zu bytes taken in %.3f s (%.3f s of it on "
               "the loop)", bytes, ev_time() - c->snap_started, c->snap_loop_seconds);
    kv_snap_end(c->snap);
    c->snap = NULL;
    *bufs = NULL;
    *n = 0;
    return 0;
}

static int fsm_restore(struct raft_fsm *hooks, struct raft_buffer *buf)
{
    kv_cluster *c = hooks->data;
    double t0 = ev_time();
    int rc = kv_fsm_restore(&c->fsm, buf->base, buf->len);

    if (rc < 0) {
        /* libraft frees the buffer of a restore that failed itself. */
        fatal(c, c->fsm.failed);
        return RAFT_CORRUPT;
    }
    raft_free(buf->base);
    kv_log(KV_LOG_INFO, "cluster: snapshot restored in %.3f s (revision %" PRIu64 ")",
           ev_time() - t0, kv_engine_revision(c->env->engine));
    return 0;
}
void kv_cluster_hooks_init(kv_cluster *c)
{
    c->hooks = (struct raft_fsm){ .version = 3, .data = c, .apply = fsm_apply,
                                  .snapshot = fsm_snapshot, .restore = fsm_restore,
                                  .snapshot_finalize = fsm_snapshot_finalize,
                                  .snapshot_async = fsm_snapshot_async };
}

/* ---- leaving --------------------------------------------------------- */

/* The transfer's end: once. libraft 0.15 calls the callback of a transfer
 * that timed out once more when it closes: with a request freed by the
 * first call, that second call jumped to garbage (a segfault of the last
 * leader stopping, its hand-over with nowhere to go: test_cluster's
 * restart of all nodes, 3 runs in 20). */
static void transfer_cb(struct raft_transfer *req)
{
    kv_cluster *c = req->data;

    if (!c->transferring)
        return;
    c->transferring = 0;
    c->transfer_then(c, c->transfer_arg);
}

int kv_cluster_transfer(kv_cluster *c, uint64_t id, void (*then)(kv_cluster *c, void *arg),
                        void *arg)
{
    if (c->transferring)
        return RAFT_BUSY;
    c->transfer.data = c;
    c->transfer_then = then;
    c->transfer_arg = arg;
    c->transferring = 1;
    int rv = raft_transfer(&c->raft, &c->transfer, id, transfer_cb);
    if (rv)
        c->transferring = 0;
    return rv;
}

static void left(kv_cluster *c, void *arg)
{
    (void)arg;
    c->leave_done(c->leave_arg);
}

int kv_cluster_leave(kv_cluster *c, double seconds, void (*done)(void *arg), void *arg)
{
    (void)seconds;
    if (!kv_cluster_leads(c) || c->raft.configuration.n < 2 || c->transferring)
        return 0;
    c->leave_done = done;
    c->leave_arg = arg;
    if (kv_cluster_transfer(c, 0, left, NULL) != 0)
        return 0;
    kv_log(KV_LOG_INFO, "cluster: handing leadership over before stopping");
    return 1;
}

static void closed_cb(struct raft *r)
{
    kv_cluster *c = r->data;

    c->closed = 1;
}

void kv_cluster_close(kv_cluster *c)
{
    if (c->open) {
        batch_fail(c->open, "the node is stopping");
        batch_free(c->open);
        c->open = NULL;
    }
    if (c->reads) {
        kv_read_batch *rb = c->reads;
        c->reads = NULL;
        barrier_done(&rb->req, RAFT_SHUTDOWN);
    }
    kv_cluster_join_stop(c);
    c->raft.data = c;
    raft_close(&c->raft, closed_cb);
    /* raft_uv does not know the snapshot work we run for it on libuv's
     * thread pool (cluster_start.c): raft may say closed while a worker
     * still walks the engine, which is freed next. So both are waited for,
     * bounded only by a snapshot's time. */
    double until = ev_time() + 60.0;
    while ((!c->closed || c->async_running) && ev_time() < until) {
        uv_run(&c->embed.uv, UV_RUN_NOWAIT);
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    if (!c->closed || c->async_running)
        kv_log(KV_LOG_ERROR, "cluster: raft did not close in 60 s; leaving anyway");
    raft_uv_close(&c->io);
    raft_uv_tcp_close(&c->transport);
    kv_uvembed_close(&c->embed, 2.0);
    kv_fsm_free(&c->fsm);
}
