/* fuzz_fsm.c - libFuzzer harness for the cluster's state machine (fsm.c)
 * and its log entries (clog.c) and retry table (dedup.c): what a node does
 * with the bytes of a committed entry and of a snapshot a peer sends.
 *
 * Byte 0, bit 0 clear: a program. Each instruction makes one entry with
 * clog's writers, as a leader would, from a few input bytes: a WRITES
 * entry of one to four commands (Set with a value, a TTL or not, a
 * conditional Set, Clear, ClearRange of a prefix, Touch; on 16 keys; each
 * with one of 3 client ids and a small seq, so that retries repeat), an
 * EXPIRE entry, a MEMBER entry, or raw input bytes as an entry (malformed
 * ones must be refused, not crash). After each entry the state must
 * survive a snapshot round trip: encode, restore into a fresh engine,
 * encode again: the same bytes. A retried (client_id, seq) must get the
 * first outcome: the store's revision does not move.
 * Bit 0 set: the rest is a snapshot, restored into a fresh node: refused
 * or, when taken, round-tripped as above. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "clog.h"
#include "engine.h"
#include "fsm.h"
#include "kvstore/v1/kv.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct node {
    kv_engine *engine;
    kv_stats stats;
    uint64_t expired;
    kv_service_env env;
    kv_fsm fsm;
} node;

static void node_open(node *n)
{
    char err[256];
    kv_engine_options opts = { 0 };

    memset(n, 0, sizeof *n);
    if (kv_engine_open("memory", NULL, &opts, &n->engine, err, sizeof err) != KV_OK)
        abort();
    kv_engine_set_clock(n->engine, CLOCK_REALTIME);
    n->env = (kv_service_env){ .engine = n->engine, .stats = &n->stats,
                               .limits = { 64, 256, 0, 0 }, .expired_keys = &n->expired };
    if (kv_fsm_init(&n->fsm, &n->env, 8) < 0)
        abort();
}

static void node_close(node *n)
{
    kv_fsm_free(&n->fsm);
    kv_engine_close(n->engine);
}

/* The snapshot of N must load into a fresh node and encode the same. */
static void round_trip(node *n)
{
    kv_buf a = KV_BUF_INIT, b = KV_BUF_INIT;
    node m;

    if (kv_fsm_encode(&n->fsm, &a) < 0)
        abort();
    node_open(&m);
    if (kv_fsm_restore(&m.fsm, kv_buf_head(&a), kv_buf_len(&a)) < 0
        || kv_fsm_encode(&m.fsm, &b) < 0 || kv_buf_len(&a) != kv_buf_len(&b)
        || memcmp(kv_buf_head(&a), kv_buf_head(&b), kv_buf_len(&a)) != 0
        || kv_engine_revision(m.engine) != kv_engine_revision(n->engine))
        abort();
    node_close(&m);
    kv_buf_free(&a);
    kv_buf_free(&b);
}

static const uint8_t client_ids[3][16] = { { 1 }, { 2 }, { 3 } };

/* Appends one command made of P[0..2] to B. */
static int put_command(kv_buf *b, const uint8_t *p)
{
    uint8_t key[2] = { 'k', (uint8_t)('a' + (p[1] & 15)) }, payload[300];
    uint8_t value[8] = { p[2], p[1], p[0] };
    kv_clog_cmd c = { 0 };
    ProtobufCMessage *msg;
    Kvstore__V1__SetRequest set = KVSTORE__V1__SET_REQUEST__INIT;
    Kvstore__V1__ClearRequest clear = KVSTORE__V1__CLEAR_REQUEST__INIT;
    Kvstore__V1__ClearRangeRequest cr = KVSTORE__V1__CLEAR_RANGE_REQUEST__INIT;
    Kvstore__V1__TouchRequest touch = KVSTORE__V1__TOUCH_REQUEST__INIT;

    set.key = clear.key = touch.key = (ProtobufCBinaryData){ 2, key };
    switch (p[0] % 6) {
    case 0: case 1:
        set.value = (ProtobufCBinaryData){ (size_t)(p[2] & 7), value };
        set.ttl_ms = p[0] % 6 == 1 ? (uint64_t)(p[2] >> 3) * 100 : 0;
        c.code = KV_CLOG_SET;
        msg = &set.base;
        break;
    case 2:
        set.value = (ProtobufCBinaryData){ 1, value };
        set._if_mod_revision_case = KVSTORE__V1__SET_REQUEST___IF_MOD_REVISION_IF_MOD_REVISION;
        set.if_mod_revision = p[2] & 7;
        c.code = KV_CLOG_SET;
        msg = &set.base;
        break;
    case 3: c.code = KV_CLOG_CLEAR; msg = &clear.base; break;
    case 4:
        cr.prefix = (ProtobufCBinaryData){ 1 + (p[2] & 1), key };
        c.code = KV_CLOG_CLEAR_RANGE;
        msg = &cr.base;
        break;
    default:
        touch.ttl_ms = (uint64_t)(p[2] & 7) * 1000;
        c.code = KV_CLOG_TOUCH;
        msg = &touch.base;
        break;
    }
    c.payload = payload;
    c.payload_len = protobuf_c_message_pack(msg, payload);
    if (p[1] >> 6) {
        c.client_id = client_ids[(p[1] >> 6) - 1];
        c.client_id_len = 16;
        c.seq = 1 + (p[1] >> 4 & 3);
    }
    return kv_clog_put_cmd(b, &c);
}

static void apply(node *n, kv_buf *b)
{
    (void)kv_clog_pad(b);
    if (kv_fsm_apply(&n->fsm, kv_buf_head(b), kv_buf_len(b), NULL, 0) < 0)
        abort();    /* made by the writers: must apply */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    node n;

    if (size < 1)
        return 0;
    node_open(&n);
    if (data[0] & 1) {
        if (kv_fsm_restore(&n.fsm, data + 1, size - 1) == 0)
            round_trip(&n);
        node_close(&n);
        return 0;
    }
    uint64_t now = 1700000000000ull;
    for (size_t i = 1; i + 4 <= size && i < 4000; ) {
        uint8_t op = data[i];
        kv_buf b = KV_BUF_INIT;
        kv_clog_head h = { KV_CLOG_WRITES, now += (op >> 4) * 100, 7, i };
        if (op % 4 == 3) {  /* raw bytes as an entry: refused or applied, never a crash */
            size_t len = data[i + 1] % 64;
            len = len > size - i - 2 ? size - i - 2 : len;
            (void)kv_fsm_apply(&n.fsm, data + i + 2, len, NULL, 0);
            n.fsm.failed = NULL;
            i += 2 + len;
            continue;
        }
        h.kind = op % 4 == 0 ? KV_CLOG_WRITES : op % 4 == 1 ? KV_CLOG_EXPIRE : KV_CLOG_MEMBER;
        if (kv_clog_put_head(&b, &h) < 0)
            abort();
        if (h.kind == KV_CLOG_WRITES) {
            unsigned cmds = 1 + (op >> 2 & 3);
            uint64_t before = kv_engine_revision(n.engine);
            int retry = 1;
            for (unsigned k = 0; k < cmds && i + 1 + 3 * (k + 1) <= size; k++) {
                const uint8_t *p = data + i + 1 + 3 * k;
                kv_dedup_outcome o;
                retry &= (p[1] >> 6) && kv_dedup_find(&n.fsm.dedup, client_ids[(p[1] >> 6) - 1],
                                                     16, 1 + (p[1] >> 4 & 3), &o);
                if (put_command(&b, p) < 0)
                    abort();
            }
            apply(&n, &b);
            /* One retry of a remembered write: nothing may have changed. (With
             * more commands, an earlier one may push it out of the window.) */
            if (cmds == 1 && retry && kv_engine_revision(n.engine) != before)
                abort();
            i += 1 + 3 * cmds;
        } else if (h.kind == KV_CLOG_EXPIRE) {
            uint8_t key[2] = { 'k', (uint8_t)('a' + (data[i + 1] & 15)) };
            if (kv_clog_put_bytes(&b, key, 2) < 0)
                abort();
            apply(&n, &b);
            i += 2;
        } else {
            char addr[16] = "127.0.0.1:7";
            addr[11] = (char)('0' + data[i + 1] % 10);
            if (kv_clog_put_varint(&b, 1 + data[i + 1] % 20) < 0
                || kv_clog_put_bytes(&b, (const uint8_t *)addr, 12) < 0)
                abort();
            apply(&n, &b);
            i += 2;
        }
        kv_buf_free(&b);
        round_trip(&n);
    }
    node_close(&n);
    return 0;
}
