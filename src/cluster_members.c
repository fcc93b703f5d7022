/* cluster_members.c - the cluster rpcs: ClusterStatus (any node), and the
 * leader's MemberAdd, MemberRemove and LeaderTransfer, one membership
 * change at a time; Stats' cluster figures. See cluster.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster.h"
#include "cluster_internal.h"
#include "log.h"

/* A membership change or a leader transfer, and the call it answers. */
typedef struct change_req {
    union {
        struct raft_change change;  /* the transfer's request is the cluster's */
    } u;
    kv_cluster *c;
    kv_pending w;
    uint64_t id;                /* the member added, removed or handed to */
    char client[KV_FSM_ADDR_MAX];   /* MemberAdd's client address */
    int assigning;              /* the promotion's failure, while the node
                                   added is taken out again */
} change_req;


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
    kv_cluster_leader(c, &leader);
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

void kv_cluster_status(kv_cluster *c, ProtobufCClosure closure, kv_call *call)
{
    Kvstore__V1__ClusterStatusResponse out = KVSTORE__V1__CLUSTER_STATUS_RESPONSE__INIT;
    raft_id leader;
    const char *hint = kv_cluster_leader(c, &leader);

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
        kv_cluster_fail(w, KV_RESOURCE_EXHAUSTED, "server out of memory");
        return NULL;
    }
    r->c = c;
    r->id = id;
    r->w.closure = w->closure;
    r->w.call = kv_call_defer(w->call);
    if (!r->w.call) {
        free(r);
        kv_cluster_fail(w, KV_RESOURCE_EXHAUSTED, "server out of memory");
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

    if (!status || !kv_cluster_leads(c)) {
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
            kv_cluster_propose_member(c, r->id, r->client, NULL);
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
    if (!kv_cluster_leads(c)) {
        kv_cluster_unavailable(c, w, "membership changes go to the leader");
        return 0;
    }
    if (c->changing || c->raft.configuration_uncommitted_index) {
        kv_cluster_fail(w, KV_FAILED_PRECONDITION, "a membership change is in progress: one at a time; "
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

void kv_cluster_member_add(kv_cluster *c, const Kvstore__V1__MemberAddRequest *in, kv_pending *w)
{
    const struct raft_server *s;

    if (!in->id || !in->raft_address || !*in->raft_address
        || strlen(in->raft_address) >= KV_FSM_ADDR_MAX
        || (in->client_address && strlen(in->client_address) >= KV_FSM_ADDR_MAX)) {
        kv_cluster_fail(w, KV_INVALID_ARGUMENT, "MemberAdd needs an id above 0 and a raft_address "
             "(HOST:PORT)");
        return;
    }
    if ((s = configured(c, in->id)) != NULL) {
        if (strcmp(s->address, in->raft_address) != 0) {
            kv_cluster_fail(w, KV_ALREADY_EXISTS, "a member with this id has another raft address");
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
        if (!kv_cluster_leads(c)) {
            kv_cluster_unavailable(c, w, "this node is not the leader");
            return;
        }
        kv_pending kept = { kv_call_defer(w->call), w->closure };
        if (!kept.call) {
            kv_cluster_fail(w, KV_RESOURCE_EXHAUSTED, "server out of memory");
            return;
        }
        kv_cluster_propose_member(c, in->id, in->client_address ? in->client_address : "", &kept);
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

void kv_cluster_member_remove(kv_cluster *c, const Kvstore__V1__MemberRemoveRequest *in,
                          kv_pending *w)
{
    if (!configured(c, in->id)) {
        kv_cluster_fail(w, KV_NOT_FOUND, "no member with this id");
        return;
    }
    change_req *r = change_start(c, w, in->id);
    if (!r)
        return;
    int rv = raft_remove(&c->raft, &r->u.change, in->id, assign_done);
    if (rv)
        change_answer(r, rv);
}

static void transfer_done(kv_cluster *c, void *arg)
{
    change_req *r = arg;
    raft_id leader;

    kv_cluster_leader(c, &leader);
    if (!leader || leader == c->cfg.node_id) {
        kv_cluster_fail(&r->w, KV_UNAVAILABLE, "the leader transfer did not complete");
    } else {
        Kvstore__V1__LeaderTransferResponse out = KVSTORE__V1__LEADER_TRANSFER_RESPONSE__INIT;
        out.leader_id = leader;
        r->w.closure(&out.base, r->w.call);
    }
    free(r);
}

void kv_cluster_leader_transfer(kv_cluster *c, const Kvstore__V1__LeaderTransferRequest *in,
                            kv_pending *w)
{
    const struct raft_server *s = in->id ? configured(c, in->id) : NULL;

    if (!kv_cluster_leads(c)) {
        kv_cluster_unavailable(c, w, "a leader transfer goes to the leader");
        return;
    }
    if (in->id && (!s || s->role != RAFT_VOTER || in->id == c->cfg.node_id)) {
        kv_cluster_fail(w, KV_INVALID_ARGUMENT, "transfer to a voter other than the leader");
        return;
    }
    if (c->transferring) {
        kv_cluster_fail(w, KV_FAILED_PRECONDITION, "a leader transfer is in progress");
        return;
    }
    change_req *r = change_new(c, w, in->id);
    if (!r)
        return;
    int rv = kv_cluster_transfer(c, in->id, transfer_done, r);
    if (rv) {
        char *msg = r->w.call->alloc->alloc(r->w.call->alloc->allocator_data, 160);
        if (msg)
            snprintf(msg, 160, "leader transfer refused: %s", raft_strerror(rv));
        kv_cluster_fail(&r->w, KV_FAILED_PRECONDITION, msg ? msg : "leader transfer refused");
        free(r);
    }
}
void kv_cluster_stats(kv_cluster *c, Kvstore__V1__StatsResponse *out)
{
    raft_id leader;

    kv_cluster_leader(c, &leader);
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
