/* hotpack.c - the answers of Get and Set packed by hand: the requests that
 * most workloads and every benchmark are made of. The bytes are protobuf-
 * c's (fields in number order, proto3 defaults left out), which
 * test_envelope and fuzz_frame check against protobuf_c_message_pack().
 *
 * Why by hand: with revisions a GetResponse has six fields, and pbview's
 * walk of a message's plan (a load, a kind test and a presence test per
 * field, then the same to write it) cost 246 instructions per Get answer
 * of the 1,480 a Get took (callgrind, 100k Gets at -c 50 -P 16 -d 3):
 * more than the engine's lookup. Here each field is one test and a store. */
#include <string.h>
#include "hotpack.h"
#include "pbfield.h"
#include "pbview.h"
#include "kvstore/v1/kv.pb-c.h"

/* A field key: field number N, wire type W (one byte below field 16). */
#define KEY(n, w) (uint8_t)((n) << 3 | (w))

static inline size_t u64_size(uint64_t v)
{
    return v ? 1 + kv_varint_size(v) : 0;
}

static inline uint8_t *put_u64(uint8_t *p, uint8_t key, uint64_t v)
{
    if (v) {
        *p++ = key;
        p = kv_varint_put(p, v);
    }
    return p;
}

static inline size_t bytes_size(const ProtobufCBinaryData *b)
{
    return b->len ? 1 + kv_varint_size(b->len) + b->len : 0;
}

static inline uint8_t *put_bytes(uint8_t *p, uint8_t key, const ProtobufCBinaryData *b)
{
    if (b->len) {
        *p++ = key;
        p = kv_varint_put(p, b->len);
        memcpy(p, b->data, b->len);
        p += b->len;
    }
    return p;
}

/* Bounds: each number at most a key and ten bytes, bytes a key, a length
 * of at most ten and their own. */
#define NUMBER_MAX (1 + KV_VARINT_MAX)

static size_t get_bound(const ProtobufCMessage *msg)
{
    const Kvstore__V1__GetResponse *g = (const Kvstore__V1__GetResponse *)(const void *)msg;

    return NUMBER_MAX + g->value.len + 5 * NUMBER_MAX + 2;
}

static size_t get_size(const ProtobufCMessage *msg)
{
    const Kvstore__V1__GetResponse *g = (const Kvstore__V1__GetResponse *)(const void *)msg;

    return bytes_size(&g->value) + u64_size(g->create_revision) + u64_size(g->mod_revision) +
           u64_size(g->version) + u64_size(g->revision) + (g->found ? 2 : 0) +
           u64_size(g->ttl_ms);
}

static size_t get_pack(const ProtobufCMessage *msg, uint8_t *out)
{
    const Kvstore__V1__GetResponse *g = (const Kvstore__V1__GetResponse *)(const void *)msg;
    uint8_t *p = put_bytes(out, KEY(1, KV_WT_LEN), &g->value);

    p = put_u64(p, KEY(2, KV_WT_VARINT), g->create_revision);
    p = put_u64(p, KEY(3, KV_WT_VARINT), g->mod_revision);
    p = put_u64(p, KEY(4, KV_WT_VARINT), g->version);
    p = put_u64(p, KEY(5, KV_WT_VARINT), g->revision);
    if (g->found) {
        *p++ = KEY(6, KV_WT_VARINT);
        *p++ = 1;
    }
    p = put_u64(p, KEY(7, KV_WT_VARINT), g->ttl_ms);
    return (size_t)(p - out);
}

static size_t set_bound(const ProtobufCMessage *msg)
{
    const Kvstore__V1__SetResponse *s = (const Kvstore__V1__SetResponse *)(const void *)msg;

    return NUMBER_MAX + s->key.len + NUMBER_MAX;
}

static size_t set_size(const ProtobufCMessage *msg)
{
    const Kvstore__V1__SetResponse *s = (const Kvstore__V1__SetResponse *)(const void *)msg;

    return bytes_size(&s->key) + u64_size(s->revision);
}

static size_t set_pack(const ProtobufCMessage *msg, uint8_t *out)
{
    const Kvstore__V1__SetResponse *s = (const Kvstore__V1__SetResponse *)(const void *)msg;
    uint8_t *p = put_bytes(out, KEY(1, KV_WT_LEN), &s->key);

    return (size_t)(put_u64(p, KEY(2, KV_WT_VARINT), s->revision) - out);
}

static const kv_pbview_packer get_packer = { get_bound, get_size, get_pack };
static const kv_pbview_packer set_packer = { set_bound, set_size, set_pack };

void kv_hotpack_use(int on)
{
    (void)kv_pbview_use_packer(&kvstore__v1__get_response__descriptor, on ? &get_packer : NULL);
    (void)kv_pbview_use_packer(&kvstore__v1__set_response__descriptor, on ? &set_packer : NULL);
}
