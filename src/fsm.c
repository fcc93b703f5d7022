/* fsm.c - the replicated state machine: entries applied, reads run,
 * snapshots written and loaded; see fsm.h. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "dispatch.h"
#include "expire.h"
#include "fsm.h"
#include "ops.h"
#include "txn.h"
#include "varint.h"

#define ENTRY_CHUNK (64 * 1024)

/* The snapshot's first bytes and format version. */
static const uint8_t SNAP_MAGIC[6] = { 'K', 'V', 'S', 'N', 'A', 'P' };
#define SNAP_VERSION 1

/* The data model's methods as the cluster runs them: the write methods by
 * their clog code, and the two reads. */
typedef kv_status (*run_fn)(kv_op *op, const void *in, void *out);

static kv_status run_set(kv_op *op, const void *in, void *out) { return kv_op_set(op, in, out); }
static kv_status run_clear(kv_op *op, const void *in, void *out) { return kv_op_clear(op, in, out); }
static kv_status run_clear_range(kv_op *op, const void *in, void *out)
{ return kv_op_clear_range(op, in, out); }
static kv_status run_txn(kv_op *op, const void *in, void *out) { return kv_txn_run(op, in, out); }
static kv_status run_touch(kv_op *op, const void *in, void *out) { return kv_op_touch(op, in, out); }
static kv_status run_get(kv_op *op, const void *in, void *out) { return kv_op_get(op, in, out); }
static kv_status run_range(kv_op *op, const void *in, void *out) { return kv_op_range(op, in, out); }

typedef struct method {
    const char *name;
    int code;               /* kv_clog_code; 0: a read */
    run_fn run;
    unsigned index;         /* in the service descriptor, filled on first use */
} method;

static method methods[] = {
    { "Set", KV_CLOG_SET, run_set, 0 },
    { "Clear", KV_CLOG_CLEAR, run_clear, 0 },
    { "ClearRange", KV_CLOG_CLEAR_RANGE, run_clear_range, 0 },
    { "Txn", KV_CLOG_TXN, run_txn, 0 },
    { "Touch", KV_CLOG_TOUCH, run_touch, 0 },
    { "Get", 0, run_get, 0 },
    { "Range", 0, run_range, 0 },
};
#define N_METHODS (sizeof methods / sizeof methods[0])

static const ProtobufCServiceDescriptor *service(void)
{
    static int filled;
    const ProtobufCServiceDescriptor *d = &kvstore__v1__kv__descriptor;

    if (!filled) {
        filled = 1;
        for (size_t i = 0; i < N_METHODS; i++)
            for (unsigned j = 0; j < d->n_methods; j++)
                if (strcmp(d->methods[j].name, methods[i].name) == 0)
                    methods[i].index = j;
    }
    return d;
}

static const method *by_index(unsigned index)
{
    service();
    for (size_t i = 0; i < N_METHODS; i++)
        if (methods[i].index == index)
            return &methods[i];
    return NULL;
}

static const method *by_code(int code)
{
    service();
    for (size_t i = 0; i < N_METHODS; i++)
        if (methods[i].code == code)
            return &methods[i];
    return NULL;
}

int kv_fsm_write_code(unsigned index)
{
    const method *m = by_index(index);

    return m ? m->code : 0;
}

int kv_fsm_is_read(unsigned index)
{
    const method *m = by_index(index);

    return m && !m->code;
}

int kv_fsm_init(kv_fsm *f, const kv_service_env *env, size_t dedup_entries)
{
    memset(f, 0, sizeof *f);
    f->env = env;
    f->apply_limits = env->limits;
    f->apply_limits.max_memory_bytes = 0;
    kv_arena_init(&f->arena, ENTRY_CHUNK);
    return kv_dedup_init(&f->dedup, dedup_entries);
}

void kv_fsm_free(kv_fsm *f)
{
    kv_dedup_free(&f->dedup);
    kv_arena_free(&f->arena);
}

/* Room for any response message of the methods above. */
typedef union response {
    ProtobufCMessage base;
    Kvstore__V1__GetResponse get;
    Kvstore__V1__SetResponse set;
    Kvstore__V1__ClearResponse clear;
    Kvstore__V1__RangeResponse range;
    Kvstore__V1__ClearRangeResponse clear_range;
    Kvstore__V1__TxnResponse txn;
    Kvstore__V1__TouchResponse touch;
} response;

static const ProtobufCMethodDescriptor *descriptor_of(const method *m)
{
    return &service()->methods[m->index];
}

/* Answers W (may be NULL) with ST and OUT or WHY. */
static void answer(kv_pending *w, kv_status st, const ProtobufCMessage *out, const char *why)
{
    if (!w || !w->call)
        return;
    if (st != KV_OK) {
        kv_call_fail(w->call, st, why && *why ? why : "request failed");
        out = NULL;
    }
    w->closure(out, w->call);
    w->call = NULL;
}

/* Runs method M on PAYLOAD at the state now, with OP prepared; the answer
 * in *OUT, or the failure (op->why). */
static kv_status run(kv_fsm *f, const method *m, kv_op *op, const uint8_t *payload, size_t len,
                     response *out)
{
    const ProtobufCMethodDescriptor *d = descriptor_of(m);
    ProtobufCMessage *in = kv_dispatch_unpack(d->input, &f->arena, payload, len);

    protobuf_c_message_init(d->output, out);
    if (!in) {
        op->why = "payload does not decode";
        return KV_INVALID_ARGUMENT;
    }
    kv_status st = m->run(op, in, out);
    if (st != KV_OK)
        kv_watch_discard(op->watch);
    else if (kv_watch_recording(op->watch))
        kv_watch_commit(op->watch);
    return st;
}

static void op_prepare(kv_fsm *f, kv_op *op)
{
    kv_op_init(op, f->env, &f->arena.pb);
    op->limits = &f->apply_limits;
    op->now = f->time_ms;
}

/* A retry answered from the outcome remembered: the response unpacked. */
static void answer_remembered(kv_fsm *f, const method *m, const kv_dedup_outcome *o,
                              kv_pending *w)
{
    const ProtobufCMessage *out = NULL;

    f->dedup_hits++;
    if (o->status == KV_OK) {
        out = protobuf_c_message_unpack(descriptor_of(m)->output, &f->arena.pb,
                                        o->response_len, o->response);
        if (!out) {
            answer(w, KV_RESOURCE_EXHAUSTED, NULL, "server out of memory");
            return;
        }
    }
    answer(w, o->status, out, o->message);
}

/* Remembers the outcome of C: ST, and OUT packed when it succeeded. */
static void remember(kv_fsm *f, const kv_clog_cmd *c, kv_status st, const response *out,
                     const char *why)
{
    uint8_t *packed = NULL;
    size_t len = 0;

    if (st == KV_OK) {
        len = protobuf_c_message_get_packed_size(&out->base);
        packed = len ? kv_arena_alloc(&f->arena, len) : NULL;
        if (len && !packed)
            return;     /* forgotten at once: a retry would run again */
        if (len)
            protobuf_c_message_pack(&out->base, packed);
    }
    (void)kv_dedup_add(&f->dedup, c->client_id, c->client_id_len, c->seq, st,
                       st == KV_OK ? NULL : why, packed, len);
}

/* Whether the write failed in a way that may leave this node's state
 * unlike the others': a failure the request's own checks did not decide.
 * Every node refuses a bad request the same way; an engine out of memory,
 * a full LMDB map or an I/O error happens on one (the reviewer's finding:
 * a follower out of room dropped a committed write and served on). */
static int engine_broke(kv_status st, const kv_op *op)
{
    return st != KV_OK && (op->engine_failed || st == KV_INTERNAL || st == KV_DATA_LOSS
                           || st == KV_UNAVAILABLE);
}

static int apply_writes(kv_fsm *f, const uint8_t *p, const uint8_t *end, kv_pending *waiting,
                        size_t n)
{
    kv_clog_cmd c;
    size_t i = 0;
    int rc;

    while ((rc = kv_clog_get_cmd(&p, end, &c)) == 1) {
        kv_pending *w = waiting && i < n ? &waiting[i] : NULL;
        const method *m = by_code((int)c.code);
        kv_dedup_outcome o;
        int known = c.client_id_len && c.seq
                    ? kv_dedup_find(&f->dedup, c.client_id, c.client_id_len, c.seq, &o) : 0;
        i++;
        if (known > 0) {
            answer_remembered(f, m, &o, w);
            continue;
        }
        if (known < 0) {
            /* Older than this client's outcomes remembered: it may have
             * been applied, so it is not applied again (dedup.h). */
            answer(w, KV_ABORTED, NULL, "this write's seq is older than the outcomes the "
                   "cluster remembers for its client_id: it may have been applied; read, then "
                   "write again with a new seq");
            continue;
        }
        kv_op op;
        response out;
        op_prepare(f, &op);
        kv_status st = run(f, m, &op, c.payload, c.payload_len, &out);
        if (engine_broke(st, &op)) {
            f->failed = "the engine failed to apply a committed write";
            answer(w, KV_UNAVAILABLE, NULL, "this node's engine failed; it is stopping");
            return -1;
        }
        if (c.client_id_len && c.seq)
            remember(f, &c, st, &out, op.why);
        answer(w, st, &out.base, op.why);
    }
    return rc;
}

static int apply_expire(kv_fsm *f, const uint8_t *p, const uint8_t *end)
{
    ProtobufCBinaryData *keys = NULL;
    size_t n = 0, cap = 0, removed;
    const uint8_t *k;
    size_t klen;
    int rc;
    kv_op op;

    op_prepare(f, &op);
    while ((rc = kv_clog_get_key(&p, end, &k, &klen)) == 1) {
        if (n == cap) {
            ProtobufCBinaryData *more = kv_arena_alloc(&f->arena, (cap ? cap * 2 : 64) * sizeof *more);
            if (!more)
                goto failed;
            if (n)
                memcpy(more, keys, n * sizeof *keys);
            keys = more;
            cap = cap ? cap * 2 : 64;
        }
        keys[n++] = (ProtobufCBinaryData){ klen, (uint8_t *)k };
    }
    if (rc < 0)
        return -1;
    if (kv_expire_keys(&op, keys, n, &removed) == KV_OK)
        return 0;
failed:
    f->failed = "the engine failed to remove expired keys";
    return -1;
}

static int set_member(kv_fsm *f, uint64_t id, const uint8_t *addr, size_t len)
{
    kv_fsm_member *m = NULL;

    if (len >= KV_FSM_ADDR_MAX || !id)
        return -1;
    for (size_t i = 0; i < f->n_members && !m; i++)
        if (f->members[i].id == id)
            m = &f->members[i];
    if (!m) {
        if (f->n_members == KV_FSM_MAX_MEMBERS)
            return 0;   /* more members than we keep addresses of: not an error */
        m = &f->members[f->n_members++];
        m->id = id;
    }
    memcpy(m->client, addr, len);
    m->client[len] = 0;
    return 0;
}

static int apply_member(kv_fsm *f, const uint8_t *p, const uint8_t *end)
{
    uint64_t id;
    const uint8_t *addr;
    size_t len;

    if (kv_clog_get_varint(&p, end, &id) != 1 || kv_clog_get_bytes(&p, end, &addr, &len) != 1)
        return -1;
    return set_member(f, id, addr, len);
}

/* The engine's writes of this entry, flushed: an engine with files (lmdb)
 * commits them; durability is the raft log's. */
static int flush_engine(kv_fsm *f)
{
    kv_engine *e = f->env->engine;

    if (e->ops->flush && e->ops->flush(e) != KV_OK) {
        f->failed = "the engine failed to commit applied writes";
        return -1;
    }
    return 0;
}

int kv_fsm_apply(kv_fsm *f, const uint8_t *entry, size_t len, kv_pending *waiting, size_t n)
{
    const uint8_t *p = entry, *end = entry + len;
    kv_clog_head h;
    int rc = -1;

    if (kv_clog_get_head(&p, end, &h) < 0) {
        f->failed = "a log entry of an unknown format (a newer kvstored wrote it?)";
        return -1;
    }
    if (h.time_ms > f->time_ms)
        f->time_ms = h.time_ms;
    switch (h.kind) {
    case KV_CLOG_WRITES: rc = apply_writes(f, p, end, waiting, n); break;
    case KV_CLOG_EXPIRE: rc = apply_expire(f, p, end); break;
    case KV_CLOG_MEMBER: rc = apply_member(f, p, end); break;
    }
    if (rc < 0 && !f->failed)
        f->failed = "a malformed log entry";
    for (size_t i = 0; i < n && waiting; i++)
        answer(&waiting[i], KV_INTERNAL, NULL, "the entry did not hold this call");
    kv_arena_reset(&f->arena);
    if (rc < 0 || flush_engine(f) < 0)
        return -1;
    return 0;
}

void kv_fsm_read(kv_fsm *f, unsigned index, const uint8_t *payload, size_t len, kv_call *call,
                 ProtobufCClosure closure)
{
    const method *m = by_index(index);
    kv_pending w = { call, closure };
    kv_op op;
    response out;

    kv_op_init(&op, f->env, &f->arena.pb);
    /* Never earlier than the clock of the entries applied: a key that a
     * leader with a clock ahead found expired stays expired for a read at
     * the next leader, whose clock may be behind. */
    op.now = kv_engine_now_ms(f->env->engine);
    if (op.now < f->time_ms)
        op.now = f->time_ms;
    kv_status st = run(f, m, &op, payload, len, &out);
    answer(&w, st, &out.base, op.why);
    kv_arena_reset(&f->arena);
}

const char *kv_fsm_client_address(const kv_fsm *f, uint64_t id)
{
    for (size_t i = 0; i < f->n_members; i++)
        if (f->members[i].id == id && f->members[i].client[0])
            return f->members[i].client;
    return NULL;
}

/* ---- snapshots ------------------------------------------------------- */

int kv_fsm_encode_key(kv_buf *b, const kv_entry *e)
{
    if (kv_clog_put_bytes(b, e->key, e->klen) < 0 || kv_clog_put_bytes(b, e->value, e->vlen) < 0
        || kv_clog_put_varint(b, e->meta.create_revision) < 0
        || kv_clog_put_varint(b, e->meta.mod_revision) < 0
        || kv_clog_put_varint(b, e->meta.version) < 0
        || kv_clog_put_varint(b, e->meta.expires_ms) < 0)
        return -1;
    return 0;
}

static int put_key(void *ctx, const kv_entry *e)
{
    return kv_fsm_encode_key(ctx, e) < 0;
}

size_t kv_fsm_keys_size(kv_fsm *f)
{
    kv_engine_stats es;

    kv_engine_stats_get(f->env->engine, &es);
    return es.data_bytes + es.keys * 24 + 4096;
}

/* The snapshot: magic, version, the clock, the store's revision, the
 * members, the remembered outcomes, then every key to the end (key,
 * value, create and mod revision, version, deadline). */
int kv_fsm_encode(kv_fsm *f, kv_buf *b)
{
    kv_range all = { 0 };

    /* Room for it all at once: growing by doubling copied it twice over. */
    if (kv_buf_reserve(b, kv_fsm_keys_size(f) + f->dedup.bytes) < 0 || kv_fsm_encode_head(f, b) < 0)
        return -1;
    return kv_engine_walk(f->env->engine, &all, 0, 1, put_key, b) == KV_OK ? 0 : -1;
}

int kv_fsm_encode_head(kv_fsm *f, kv_buf *b)
{
    kv_engine *e = f->env->engine;

    if (kv_buf_append(b, SNAP_MAGIC, sizeof SNAP_MAGIC) < 0
        || kv_clog_put_varint(b, SNAP_VERSION) < 0 || kv_clog_put_varint(b, f->time_ms) < 0
        || kv_clog_put_varint(b, kv_engine_revision(e)) < 0
        || kv_clog_put_varint(b, f->n_members) < 0)
        return -1;
    for (size_t i = 0; i < f->n_members; i++)
        if (kv_clog_put_varint(b, f->members[i].id) < 0
            || kv_clog_put_bytes(b, (const uint8_t *)f->members[i].client,
                                 strlen(f->members[i].client)) < 0)
            return -1;
    return kv_dedup_encode(&f->dedup, b);
}

static int restore_fail(kv_fsm *f, const char *why)
{
    f->failed = why;
    return -1;
}

int kv_fsm_restore(kv_fsm *f, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    kv_engine *e = f->env->engine;
    uint64_t version, time_ms, revision, n;

    if (len < sizeof SNAP_MAGIC || memcmp(p, SNAP_MAGIC, sizeof SNAP_MAGIC) != 0)
        return restore_fail(f, "a snapshot that is not kvstore's");
    p += sizeof SNAP_MAGIC;
    if (kv_clog_get_varint(&p, end, &version) != 1 || version != SNAP_VERSION)
        return restore_fail(f, "a snapshot of an unknown format version");
    if (kv_clog_get_varint(&p, end, &time_ms) != 1 || kv_clog_get_varint(&p, end, &revision) != 1
        || kv_clog_get_varint(&p, end, &n) != 1 || n > KV_FSM_MAX_MEMBERS)
        return restore_fail(f, "a truncated snapshot");
    f->time_ms = time_ms;
    f->n_members = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t id;
        const uint8_t *addr;
        size_t alen;
        if (kv_clog_get_varint(&p, end, &id) != 1 || kv_clog_get_bytes(&p, end, &addr, &alen) != 1
            || set_member(f, id, addr, alen) < 0)
            return restore_fail(f, "a snapshot with bad members");
    }
    if (kv_dedup_decode(&f->dedup, &p, end) < 0)
        return restore_fail(f, "a snapshot with bad retry outcomes");
    if (kv_engine_reset(e, revision) != KV_OK)
        return restore_fail(f, "the engine failed to empty itself for a snapshot");
    while (p < end) {
        kv_entry k;
        if (kv_clog_get_bytes(&p, end, &k.key, &k.klen) != 1
            || kv_clog_get_bytes(&p, end, &k.value, &k.vlen) != 1
            || kv_clog_get_varint(&p, end, &k.meta.create_revision) != 1
            || kv_clog_get_varint(&p, end, &k.meta.mod_revision) != 1
            || kv_clog_get_varint(&p, end, &k.meta.version) != 1
            || kv_clog_get_varint(&p, end, &k.meta.expires_ms) != 1)
            return restore_fail(f, "a truncated snapshot");
        if (kv_engine_load(e, &k) != KV_OK)
            return restore_fail(f, "the engine failed to load a snapshot's key");
    }
    kv_watch_jump(f->env->watch, "this node loaded a snapshot of the cluster's state: the "
                  "changes before it are not known here; watch again from compact_revision");
    return flush_engine(f);
}
