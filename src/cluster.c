/* cluster.c - kvstored as a Raft cluster member: libraft driven from our
 * loop, the calls that wait on it, membership; see cluster.h. What an
 * entry does is fsm.c's; the outbound calls of a joining node are
 * cluster_join.c's. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cluster.h"
#include "cluster_join.h"
#include "clog.h"
#include "dispatch.h"
#include "expire.h"
#include "listen.h"
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

/* A membership change or a leader transfer, and the call it answers. */
typedef struct change_req {
    union {
        struct raft_change change;
        struct raft_transfer transfer;
    } u;
    kv_cluster *c;
    kv_pending w;
    uint64_t id;                /* the member added, removed or handed to */
    char client[KV_FSM_ADDR_MAX];   /* MemberAdd's client address */
    int assigning;              /* the promotion's failure, while the node
                                   added is taken out again */
} change_req;

/* The biggest entry made from one turn's writes: past it, the turn's
 * writes go in more than one entry. */
#define ENTRY_SPLIT_BYTES ((size_t)4 << 20)

#define CONTAINER(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void fatal(kv_cluster *c, const char *why)
{
    if (c->fatal)
        return;
    c->fatal = why;
    kv_log(KV_LOG_ERROR, "cluster: %s; stopping this node", why);
    if (c->stop)
        c->stop(c->stop_arg, why);
}

static int is_leader(kv_cluster *c)
{
    return !c->fatal && raft_state(&c->raft) == RAFT_LEADER;
}

/* The leader's client address as far as this node knows, or NULL. */
static const char *leader_hint(kv_cluster *c, raft_id *id_out)
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
static void unavailable(kv_cluster *c, kv_pending *w, const char *what)
{
    raft_id id;
    const char *hint = leader_hint(c, &id);
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

static void fail(kv_pending *w, kv_status st, const char *why)
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
            unavailable(b->c, &b->calls[i], why);
    if (b->member_call.call)
        unavailable(b->c, &b->member_call, why);
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

/* Proposes B (taking it): on success it joins the proposed list. */
static void propose(kv_cluster *c, kv_batch *b)
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
        return;
    }
    b->next = NULL;
    if (c->last)
        c->last->next = b;
    else
        c->first = b;
    c->last = b;
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
static void propose_member(kv_cluster *c, uint64_t id, const char *addr, kv_pending *w)
{
    kv_batch *b = batch_new(c, KV_CLOG_MEMBER);

    if (!b || kv_clog_put_varint(&b->entry, id) < 0
        || kv_clog_put_bytes(&b->entry, (const uint8_t *)addr, strlen(addr)) < 0) {
        if (b)
            batch_free(b);
        if (w)
            fail(w, KV_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    if (w)
        b->member_call = *w;
    propose(c, b);
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
    if (raft_state(&c->raft) == RAFT_LEADER && c->hello_term != c->raft.current_term) {
        c->hello_term = c->raft.current_term;
        c->elections_won++;
        kv_log(KV_LOG_INFO, "cluster: node %" PRIu64 " is the leader (term %llu)",
               c->cfg.node_id, (unsigned long long)c->raft.current_term);
        propose_member(c, c->cfg.node_id, c->client_address, NULL);
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
    if (is_leader(c) || !member)
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
    if (!is_leader(c)) {
        unavailable(c, w, why);
        return 0;
    }
    check_role(c);
    return 1;
}

static void take_write(kv_cluster *c, int code, ProtobufCClosure closure, void *data)
{
    kv_call *call = data;
    const kv_request *req = call->request;
    kv_pending w = { call, closure };

    if (!leading(c, &w, "this node is not the leader"))
        return;
    if (req->env.client_id_len > KV_CLOG_MAX_CLIENT_ID) {
        fail(&w, KV_INVALID_ARGUMENT, "client_id is longer than 64 bytes (16 is usual)");
        return;
    }
    if (c->open && kv_buf_len(&c->open->entry) > ENTRY_SPLIT_BYTES) {
        propose(c, c->open);
        c->open = NULL;
    }
    if (!c->open && !(c->open = batch_new(c, KV_CLOG_WRITES))) {
        fail(&w, KV_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    kv_batch *b = c->open;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        kv_pending *calls = realloc(b->calls, cap * sizeof *calls);
        if (!calls) {
            fail(&w, KV_RESOURCE_EXHAUSTED, "server out of memory");
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
        fail(&w, KV_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    kv_call *kept = kv_call_defer(data);
    if (!kept) {
        b->entry.end = b->entry.start + mark;
        fail(&w, KV_RESOURCE_EXHAUSTED, "server out of memory");
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
            unavailable(c, &r->w, "leadership was lost before this read could be served");
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
            fail(&w, KV_RESOURCE_EXHAUSTED, "server out of memory");
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
        fail(&w, KV_RESOURCE_EXHAUSTED, "server out of memory");
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

/* ---- the cluster rpcs ------------------------------------------------ */

static const char *role_name(int state)
{
    switch (state) {
    case RAFT_LEADER: return "leader";
    case RAFT_FOLLOWER: return "follower";
    case RAFT_CANDIDATE: return "candidate";
    default: return "unavailable";
    }
}

static const char *member_role(int role)
{
    switch (role) {
    case RAFT_VOTER: return "voter";
    case RAFT_STANDBY: return "standby";
    default: return "spare";
    }
}

/* The members, from the configuration this node has, in ALLOC's memory. */
static Kvstore__V1__Member **members_of(kv_cluster *c, ProtobufCAllocator *a, size_t *n)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    Kvstore__V1__Member *m = a->alloc(a->allocator_data, (conf->n + 1) * sizeof *m);
    Kvstore__V1__Member **mp = a->alloc(a->allocator_data, (conf->n + 1) * sizeof *mp);
    raft_id leader;

    *n = 0;
    if (!m || !mp)
        return NULL;
    leader_hint(c, &leader);
    for (unsigned i = 0; i < conf->n; i++) {
        const struct raft_server *s = &conf->servers[i];
        const char *client = kv_fsm_client_address(&c->fsm, s->id);
        kvstore__v1__member__init(&m[i]);
        m[i].id = s->id;
        m[i].raft_address = s->address;
        m[i].client_address = (char *)(client ? client : "");
        m[i].role = (char *)member_role(s->role);
        m[i].leader = s->id == leader;
        mp[i] = &m[i];
    }
    *n = conf->n;
    return mp;
}

static void cluster_status(kv_cluster *c, ProtobufCClosure closure, kv_call *call)
{
    Kvstore__V1__ClusterStatusResponse out = KVSTORE__V1__CLUSTER_STATUS_RESPONSE__INIT;
    raft_id leader;
    const char *hint = leader_hint(c, &leader);

    out.node_id = c->cfg.node_id;
    out.role = (char *)role_name(raft_state(&c->raft));
    out.leader_id = leader;
    out.leader = (char *)(hint ? hint : "");
    out.term = c->raft.current_term;
    out.commit_index = c->raft.commit_index;
    out.applied_index = raft_last_applied(&c->raft);
    out.last_index = raft_last_index(&c->raft);
    out.snapshot_index = c->raft.log.snapshot.last_index;
    out.members = members_of(c, call->alloc, &out.n_members);
    out.revision = kv_engine_revision(c->env->engine);
    closure(&out.base, call);
}

static change_req *change_new(kv_cluster *c, kv_pending *w, uint64_t id)
{
    change_req *r = calloc(1, sizeof *r);

    if (!r) {
        fail(w, KV_RESOURCE_EXHAUSTED, "server out of memory");
        return NULL;
    }
    r->c = c;
    r->id = id;
    r->w.closure = w->closure;
    r->w.call = kv_call_defer(w->call);
    if (!r->w.call) {
        free(r);
        fail(w, KV_RESOURCE_EXHAUSTED, "server out of memory");
        return NULL;
    }
    w->call = NULL;
    return r;
}

/* Answers a MemberAdd or MemberRemove that RV (libraft's) ended. */
static void change_answer(change_req *r, int rv)
{
    kv_cluster *c = r->c;

    c->changing = 0;
    if (rv) {
        char *msg = r->w.call->alloc->alloc(r->w.call->alloc->allocator_data, 256);
        if (msg)
            snprintf(msg, 256, "membership change of node %" PRIu64 " failed: %s", r->id,
                     raft_strerror(rv));
        kv_call_fail(r->w.call, rv == RAFT_NOTLEADER || rv == RAFT_LEADERSHIPLOST
                                ? KV_UNAVAILABLE : KV_FAILED_PRECONDITION,
                     msg ? msg : "membership change failed");
        r->w.closure(NULL, r->w.call);
    } else {
        Kvstore__V1__MemberAddResponse out = KVSTORE__V1__MEMBER_ADD_RESPONSE__INIT;
        out.members = members_of(c, r->w.call->alloc, &out.n_members);
        kv_log(KV_LOG_INFO, "cluster: membership of node %" PRIu64 " changed", r->id);
        r->w.closure(&out.base, r->w.call);   /* MemberRemoveResponse: the same fields */
    }
    free(r);
}

static void assign_done(struct raft_change *req, int status)
{
    change_answer(req->data, status);
}

/* The node added could not be made a voter (it never caught up: not
 * running, unreachable): it is taken out again, so that a failed
 * MemberAdd leaves the configuration as it was, and the call is answered
 * with the promotion's failure. */
static void undo_done(struct raft_change *req, int status)
{
    change_req *r = req->data;

    if (status)
        kv_log(KV_LOG_WARN, "cluster: node %" PRIu64 " could not be made a voter, nor taken "
               "out again (%s): it stays a spare; MemberRemove removes it", r->id,
               raft_strerror(status));
    change_answer(r, r->assigning);
}

static void promote_done(struct raft_change *req, int status)
{
    change_req *r = req->data;
    kv_cluster *c = r->c;

    if (!status || !is_leader(c)) {
        change_answer(r, status);
        return;
    }
    r->assigning = status;      /* the failure to report once undone */
    r->u.change.data = r;
    if (raft_remove(&c->raft, &r->u.change, r->id, undo_done) != 0)
        undo_done(&r->u.change, RAFT_CANTCHANGE);
}

static void add_done(struct raft_change *req, int status)
{
    change_req *r = req->data;
    kv_cluster *c = r->c;
    int rv = status;

    if (!rv) {
        if (r->client[0])
            propose_member(c, r->id, r->client, NULL);
        r->u.change.data = r;
        rv = raft_assign(&c->raft, &r->u.change, r->id, RAFT_VOTER, promote_done);
        if (!rv)
            return;
    }
    change_answer(r, rv);
}

static const struct raft_server *configured(kv_cluster *c, uint64_t id)
{
    for (unsigned i = 0; i < c->raft.configuration.n; i++)
        if (c->raft.configuration.servers[i].id == id)
            return &c->raft.configuration.servers[i];
    return NULL;
}

/* Whether a membership change may start now; else W is answered. */
static int may_change(kv_cluster *c, kv_pending *w)
{
    if (!is_leader(c)) {
        unavailable(c, w, "membership changes go to the leader");
        return 0;
    }
    if (c->changing || c->raft.configuration_uncommitted_index) {
        fail(w, KV_FAILED_PRECONDITION, "a membership change is in progress: one at a time; "
             "retry when it is done");
        return 0;
    }
    return 1;
}

/* A membership change of node ID for W, when one may start now: its
 * request, with the change marked in progress; else NULL (W answered). */
static change_req *change_start(kv_cluster *c, kv_pending *w, uint64_t id)
{
    if (!may_change(c, w))
        return NULL;
    change_req *r = change_new(c, w, id);
    if (r) {
        r->u.change.data = r;
        c->changing = 1;
    }
    return r;
}

static void member_add(kv_cluster *c, const Kvstore__V1__MemberAddRequest *in, kv_pending *w)
{
    const struct raft_server *s;

    if (!in->id || !in->raft_address || !*in->raft_address
        || strlen(in->raft_address) >= KV_FSM_ADDR_MAX
        || (in->client_address && strlen(in->client_address) >= KV_FSM_ADDR_MAX)) {
        fail(w, KV_INVALID_ARGUMENT, "MemberAdd needs an id above 0 and a raft_address "
             "(HOST:PORT)");
        return;
    }
    if ((s = configured(c, in->id)) != NULL) {
        if (strcmp(s->address, in->raft_address) != 0) {
            fail(w, KV_ALREADY_EXISTS, "a member with this id has another raft address");
            return;
        }
        if (s->role != RAFT_VOTER) {
            /* Added before but not yet a voter (a MemberAdd cut off):
             * the same call again goes on with the promotion. */
            change_req *r = change_start(c, w, in->id);
            if (!r)
                return;
            int rv = raft_assign(&c->raft, &r->u.change, in->id, RAFT_VOTER, promote_done);
            if (rv)
                change_answer(r, rv);
            return;
        }
        /* A member telling its client address (cluster_join.c). */
        if (!is_leader(c)) {
            unavailable(c, w, "this node is not the leader");
            return;
        }
        kv_pending kept = { kv_call_defer(w->call), w->closure };
        if (!kept.call) {
            fail(w, KV_RESOURCE_EXHAUSTED, "server out of memory");
            return;
        }
        propose_member(c, in->id, in->client_address ? in->client_address : "", &kept);
        return;
    }
    change_req *r = change_start(c, w, in->id);
    if (!r)
        return;
    if (in->client_address)
        snprintf(r->client, sizeof r->client, "%s", in->client_address);
    int rv = raft_add(&c->raft, &r->u.change, in->id, in->raft_address, add_done);
    if (rv)
        change_answer(r, rv);
}

static void member_remove(kv_cluster *c, const Kvstore__V1__MemberRemoveRequest *in,
                          kv_pending *w)
{
    if (!configured(c, in->id)) {
        fail(w, KV_NOT_FOUND, "no member with this id");
        return;
    }
    change_req *r = change_start(c, w, in->id);
    if (!r)
        return;
    int rv = raft_remove(&c->raft, &r->u.change, in->id, assign_done);
    if (rv)
        change_answer(r, rv);
}

static void transfer_done(struct raft_transfer *req)
{
    change_req *r = req->data;
    kv_cluster *c = r->c;
    raft_id leader;

    c->transferring = 0;
    leader_hint(c, &leader);
    if (!leader || leader == c->cfg.node_id) {
        fail(&r->w, KV_UNAVAILABLE, "the leader transfer did not complete");
    } else {
        Kvstore__V1__LeaderTransferResponse out = KVSTORE__V1__LEADER_TRANSFER_RESPONSE__INIT;
        out.leader_id = leader;
        r->w.closure(&out.base, r->w.call);
    }
    free(r);
}

static void leader_transfer(kv_cluster *c, const Kvstore__V1__LeaderTransferRequest *in,
                            kv_pending *w)
{
    const struct raft_server *s = in->id ? configured(c, in->id) : NULL;

    if (!is_leader(c)) {
        unavailable(c, w, "a leader transfer goes to the leader");
        return;
    }
    if (in->id && (!s || s->role != RAFT_VOTER || in->id == c->cfg.node_id)) {
        fail(w, KV_INVALID_ARGUMENT, "transfer to a voter other than the leader");
        return;
    }
    if (c->transferring) {
        fail(w, KV_FAILED_PRECONDITION, "a leader transfer is in progress");
        return;
    }
    change_req *r = change_new(c, w, in->id);
    if (!r)
        return;
    r->u.transfer.data = r;
    c->transferring = 1;
    int rv = raft_transfer(&c->raft, &r->u.transfer, in->id, transfer_done);
    if (rv) {
        c->transferring = 0;
        char *msg = r->w.call->alloc->alloc(r->w.call->alloc->allocator_data, 160);
        if (msg)
            snprintf(msg, 160, "leader transfer refused: %s", raft_strerror(rv));
        fail(&r->w, KV_FAILED_PRECONDITION, msg ? msg : "leader transfer refused");
        free(r);
    }
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
        cluster_status(c, closure, data);
    else if (strcmp(name, "MemberAdd") == 0)
        member_add(c, (const Kvstore__V1__MemberAddRequest *)input, &w);
    else if (strcmp(name, "MemberRemove") == 0)
        member_remove(c, (const Kvstore__V1__MemberRemoveRequest *)input, &w);
    else if (strcmp(name, "LeaderTransfer") == 0)
        leader_transfer(c, (const Kvstore__V1__LeaderTransferRequest *)input, &w);
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

    if (!is_leader(c))
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

void kv_cluster_stats(kv_cluster *c, Kvstore__V1__StatsResponse *out)
{
    raft_id leader;

    leader_hint(c, &leader);
    out->cluster_node_id = c->cfg.node_id;
    out->cluster_role = (char *)role_name(raft_state(&c->raft));
    out->cluster_leader_id = leader;
    out->cluster_term = c->raft.current_term;
    out->cluster_commit_index = c->raft.commit_index;
    out->cluster_applied_index = raft_last_applied(&c->raft);
    out->cluster_members = c->raft.configuration.n;
    out->cluster_dedup_entries = c->fsm.dedup.n;
    out->cluster_elections_won = c->elections_won;
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

    raft_free(buf->base);
    if (rc < 0) {
        fatal(c, c->fsm.failed);
        return RAFT_CORRUPT;
    }
    kv_log(KV_LOG_INFO, "cluster: snapshot restored in %.3f s (revision %" PRIu64 ")",
           ev_time() - t0, kv_engine_revision(c->env->engine));
    return 0;
}

/* ---- start and stop -------------------------------------------------- */

/* raft_uv (0.15) is a version 1 raft_io, without the async_work that
 * libraft's asynchronous snapshots run on: it is given one here, libuv's
 * thread pool on the same embedded loop (uv_queue_work). */
typedef struct async_work {
    uv_work_t w;                /* first */
    struct raft_io_async_work *req;
    raft_io_async_work_cb cb;
    int status;
} async_work;

static void async_run(uv_work_t *w)
{
    async_work *a = (async_work *)(void *)w;

    a->status = a->req->work(a->req);
}

static void async_done(uv_work_t *w, int status)
{
    async_work *a = (async_work *)(void *)w;
    struct raft_io_async_work *req = a->req;
    raft_io_async_work_cb cb = a->cb;
    int rv = status == UV_ECANCELED ? RAFT_CANCELED : a->status;

    free(a);
    cb(req, rv);
}

static int io_async_work(struct raft_io *io, struct raft_io_async_work *req,
                         raft_io_async_work_cb cb)
{
    kv_cluster *c = CONTAINER(io, kv_cluster, io);   /* io->data is libraft's */
    async_work *a = calloc(1, sizeof *a);

    if (!a)
        return RAFT_NOMEM;
    a->req = req;
    a->cb = cb;
    if (uv_queue_work(&c->embed.uv, &a->w, async_run, async_done) != 0) {
        free(a);
        return RAFT_IOERR;
    }
    return 0;
}

int kv_cluster_parse_initial(const char *text, struct raft_configuration *conf, char *err,
                             size_t errlen)
{
    const char *p = text;

    while (*p) {
        char *end;
        errno = 0;
        unsigned long long id = strtoull(p, &end, 10);
        if (errno || end == p || *end != '=' || id == 0) {
            snprintf(err, errlen, "--initial-cluster: expected ID=HOST:PORT at \"%s\"", p);
            return -1;
        }
        const char *addr = end + 1, *comma = strchr(addr, ',');
        size_t len = comma ? (size_t)(comma - addr) : strlen(addr);
        char buf[KV_FSM_ADDR_MAX];
        if (!len || len >= sizeof buf) {
            snprintf(err, errlen, "--initial-cluster: bad address for node %llu", id);
            return -1;
        }
        memcpy(buf, addr, len);
        buf[len] = 0;
        int rv = raft_configuration_add(conf, id, buf, RAFT_VOTER);
        if (rv) {
            snprintf(err, errlen, "--initial-cluster: node %llu at %s: %s", id, buf,
                     rv == RAFT_DUPLICATEID ? "the id is given twice"
                     : rv == RAFT_DUPLICATEADDRESS ? "the address is given twice"
                                                   : raft_strerror(rv));
            return -1;
        }
        p = comma ? comma + 1 : addr + len;
    }
    if (!conf->n) {
        snprintf(err, errlen, "--initial-cluster: no members");
        return -1;
    }
    return 0;
}

/* Whether DIR holds a raft log (libraft's metadata files). */
static int has_log(const char *dir)
{
    char path[4096];
    struct stat st;

    for (int i = 1; i <= 2; i++) {
        snprintf(path, sizeof path, "%s/metadata%d", dir, i);
        if (stat(path, &st) == 0)
            return 1;
    }
    return 0;
}

/* DIR/node-id holds the id the directory belongs to: a directory started
 * with another --node-id is refused rather than joined under a false id. */
static int check_identity(const kv_cluster_config *cfg, char *err, size_t errlen)
{
    char path[4096];
    unsigned long long id = 0;

    snprintf(path, sizeof path, "%s/node-id", cfg->dir);
    FILE *f = fopen(path, "r");
    if (f) {
        int ok = fscanf(f, "%llu", &id) == 1;
        fclose(f);
        if (!ok || id != cfg->node_id) {
            snprintf(err, errlen, "--cluster-dir %s belongs to node %llu, not %" PRIu64,
                     cfg->dir, id, cfg->node_id);
            return -1;
        }
        return 0;
    }
    if (!(f = fopen(path, "w")) || fprintf(f, "%" PRIu64 "\n", cfg->node_id) < 0 || fflush(f)
        || fsync(fileno(f)) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

int kv_cluster_start(kv_cluster *c, const kv_cluster_config *cfg, struct ev_loop *loop,
                     const kv_service_env *env, const char *client_address, char *err,
                     size_t errlen)
{
    int rv;

    memset(c, 0, sizeof *c);
    c->cfg = *cfg;
    c->loop = loop;
    c->env = env;
    snprintf(c->client_address, sizeof c->client_address, "%s", client_address);
    snprintf(c->raft_address, sizeof c->raft_address, "%s", cfg->raft_listen);
    if (getrandom(&c->incarnation, sizeof c->incarnation, 0) != sizeof c->incarnation)
        c->incarnation = (uint64_t)wall_ms() ^ ((uint64_t)getpid() << 32);
    if (mkdir(cfg->dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "--cluster-dir %s: %s", cfg->dir, strerror(errno));
        return -1;
    }
    if (check_identity(cfg, err, errlen) < 0)
        return -1;
    int fresh = !has_log(cfg->dir);
    if (fresh && !cfg->initial && !cfg->join) {
        snprintf(err, errlen, "--cluster-dir %s is empty: give --initial-cluster to start a new "
                 "cluster, or --join to join a running one", cfg->dir);
        return -1;
    }
    if (kv_fsm_init(&c->fsm, env, cfg->dedup_window) < 0) {
        snprintf(err, errlen, "out of memory for the retry table");
        return -1;
    }
    if ((rv = kv_uvembed_init(&c->embed, loop)) < 0) {
        snprintf(err, errlen, "libuv: %s", uv_strerror(rv));
        return -1;
    }
    c->hooks = (struct raft_fsm){ .version = 3, .data = c, .apply = fsm_apply,
                                  .snapshot = fsm_snapshot, .restore = fsm_restore,
                                  .snapshot_finalize = fsm_snapshot_finalize,
                                  .snapshot_async = fsm_snapshot_async };
    if ((rv = raft_uv_tcp_init(&c->transport, &c->embed.uv)) != 0
        || (rv = raft_uv_init(&c->io, &c->embed.uv, cfg->dir, &c->transport)) != 0) {
        snprintf(err, errlen, "raft I/O in %s: %s", cfg->dir,
                 c->io.errmsg[0] ? c->io.errmsg : raft_strerror(rv));
        return -1;
    }
    c->io.version = 2;
    c->io.async_work = io_async_work;
    if ((rv = raft_init(&c->raft, &c->io, &c->hooks, cfg->node_id, cfg->raft_listen)) != 0) {
        snprintf(err, errlen, "raft: %s", raft_errmsg(&c->raft));
        return -1;
    }
    if (fresh && cfg->initial) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        if (kv_cluster_parse_initial(cfg->initial, &conf, err, errlen) < 0) {
            raft_configuration_close(&conf);
            return -1;
        }
        int me = 0;
        for (unsigned i = 0; i < conf.n; i++)
            me |= conf.servers[i].id == cfg->node_id
                  && strcmp(conf.servers[i].address, cfg->raft_listen) == 0;
        if (!me) {
            raft_configuration_close(&conf);
            snprintf(err, errlen, "--initial-cluster does not list this node as %" PRIu64 "=%s "
                     "(--node-id and --raft-listen)", cfg->node_id, cfg->raft_listen);
            return -1;
        }
        rv = raft_bootstrap(&c->raft, &conf);
        raft_configuration_close(&conf);
        if (rv && rv != RAFT_CANTBOOTSTRAP) {
            snprintf(err, errlen, "raft bootstrap: %s", raft_errmsg(&c->raft));
            return -1;
        }
    }
    raft_set_pre_vote(&c->raft, true);
    raft_set_election_timeout(&c->raft, cfg->election_ms);
    raft_set_heartbeat_timeout(&c->raft, cfg->heartbeat_ms);
    raft_set_snapshot_threshold(&c->raft, cfg->snapshot_threshold);
    raft_set_snapshot_trailing(&c->raft, cfg->snapshot_trailing);
    if ((rv = raft_start(&c->raft)) != 0) {
        snprintf(err, errlen, "raft start: %s", raft_errmsg(&c->raft));
        return -1;
    }
    kv_log(KV_LOG_INFO, "cluster: node %" PRIu64 " started, raft on %s, log in %s%s",
           cfg->node_id, cfg->raft_listen, cfg->dir,
           fresh ? (cfg->initial ? " (bootstrapped from --initial-cluster)" : " (joining)") : "");
    if (fresh && cfg->join)
        kv_cluster_join_start(c, cfg->join);
    kv_uvembed_run(&c->embed);
    return 0;
}

/* ---- leaving --------------------------------------------------------- */

typedef struct leave_req {
    struct raft_transfer transfer;
    void (*done)(void *arg);
    void *arg;
} leave_req;

static void leave_done(struct raft_transfer *req)
{
    leave_req *l = req->data;

    l->done(l->arg);
    free(l);
}

int kv_cluster_leave(kv_cluster *c, double seconds, void (*done)(void *arg), void *arg)
{
    (void)seconds;
    if (!is_leader(c) || c->raft.configuration.n < 2 || c->transferring)
        return 0;
    leave_req *l = calloc(1, sizeof *l);
    if (!l)
        return 0;
    l->done = done;
    l->arg = arg;
    l->transfer.data = l;
    if (raft_transfer(&c->raft, &l->transfer, 0, leave_done) != 0) {
        free(l);
        return 0;
    }
    c->transferring = 1;
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
    double until = ev_time() + 5.0;
    while (!c->closed && ev_time() < until) {
        uv_run(&c->embed.uv, UV_RUN_NOWAIT);
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    raft_uv_close(&c->io);
    raft_uv_tcp_close(&c->transport);
    kv_uvembed_close(&c->embed, 2.0);
    kv_fsm_free(&c->fsm);
}
