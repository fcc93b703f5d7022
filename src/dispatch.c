/* dispatch.c - envelope decoding, method lookup and answer packing; see
 * dispatch.h. Owns no state: everything lives in the caller's arena and
 * output buffer. */
#include <stdio.h>
#include <string.h>
#include "dispatch.h"
#include "envelope.h"
#include "frame.h"
#include "pbview.h"
#include "varint.h"

/* Answers whose payload is at most this (by kv_pbview_bound) are packed
 * in one pass, in place, their head written after; larger ones are
 * measured first, so that a large value is not moved. */
#define ONE_PASS_MAX ((size_t)16 << 10)

/* One pass: the payload is packed where a head of the largest size its
 * bound allows would end it, then the head (frame prefix, envelope fields)
 * goes before it and, if shorter than allowed, the payload moves down the
 * few bytes of difference. Measuring every field of a small answer before
 * packing it cost 190 instructions of a Get's 1,500 (callgrind). */
static int answer_one_pass(kv_buf *out, uint64_t id, const ProtobufCMessage *msg, size_t bound)
{
    size_t head_max = kv_envelope_response_size(id, KV_OK, 0, bound) - bound;
    size_t frame_max = head_max + bound;
    size_t at = kv_varint_size(frame_max) + head_max;

    if (kv_buf_reserve(out, at + bound) < 0)
        return -1;
    uint8_t *p = kv_buf_tail(out);
    size_t plen = kv_pbview_pack(msg, p + at);
    size_t n = kv_envelope_response_size(id, KV_OK, 0, plen);
    size_t start = kv_varint_size(n) + (n - plen);
    if (start != at)
        memmove(p + start, p + at, plen);
    uint8_t *h = p + kv_frame_put_prefix(p, (uint32_t)n);
    kv_envelope_put_response_head(h, id, KV_OK, NULL, 0, plen);
    kv_buf_commit(out, start + plen);
    return 0;
}

/* Reserves room for an answer with a payload of PLEN bytes and writes its
 * head; returns where the payload goes, or NULL when memory is out. */
static uint8_t *answer_head(kv_buf *out, uint64_t id, size_t plen)
{
    size_t n = kv_envelope_response_size(id, KV_OK, 0, plen);

    if (n > UINT32_MAX || kv_buf_reserve(out, KV_FRAME_PREFIX_MAX + n) < 0)
        return NULL;
    uint8_t *p = kv_buf_tail(out);
    p += kv_frame_put_prefix(p, (uint32_t)n);
    return p + kv_envelope_put_response_head(p, id, KV_OK, NULL, 0, plen);
}

int kv_dispatch_answer(kv_buf *out, uint64_t id, const ProtobufCMessage *msg)
{
    kv_pbview_sized sized;
    int flat;
    size_t bound = kv_pbview_bound(msg, &flat);

    if (flat && bound <= ONE_PASS_MAX)
        return answer_one_pass(out, id, msg, bound);
    size_t plen = flat ? kv_pbview_measure(msg, &sized) : protobuf_c_message_get_packed_size(msg);
    uint8_t *p = answer_head(out, id, plen);
    if (!p)
        return -1;
    p += flat ? kv_pbview_write(&sized, p) : protobuf_c_message_pack(msg, p);
    kv_buf_commit(out, (size_t)(p - kv_buf_tail(out)));
    return 0;
}

/* The stream flag (RpcResponse.stream = 5, true) goes after the payload,
 * in field order: the head is the answer's, two bytes longer. */
int kv_dispatch_stream(kv_buf *out, uint64_t id, const ProtobufCMessage *msg)
{
    size_t plen = protobuf_c_message_get_packed_size(msg);
    size_t n = kv_envelope_response_size(id, KV_OK, 0, plen) + 2;

    if (n > UINT32_MAX || kv_buf_reserve(out, KV_FRAME_PREFIX_MAX + n) < 0)
        return -1;
    uint8_t *p = kv_buf_tail(out);
    p += kv_frame_put_prefix(p, (uint32_t)n);
    p += kv_envelope_put_response_head(p, id, KV_OK, NULL, 0, plen);
    p += protobuf_c_message_pack(msg, p);
    *p++ = (5 << 3) | KV_WT_VARINT;
    *p++ = 1;
    kv_buf_commit(out, (size_t)(p - kv_buf_tail(out)));
    return 0;
}

int kv_dispatch_error(kv_buf *out, uint64_t id, kv_status code, const char *message,
                      const char *leader)
{
    size_t mlen = message ? strlen(message) : 0;
    size_t llen = leader ? strlen(leader) : 0;
    size_t n = kv_envelope_response_size(id, code, mlen, 0);

    if (llen)
        n += 1 + kv_varint_size(llen) + llen;

    if (kv_buf_reserve(out, KV_FRAME_PREFIX_MAX + n) < 0)
        return -1;
    uint8_t *p = kv_buf_tail(out);
    p += kv_frame_put_prefix(p, (uint32_t)n);
    p += kv_envelope_put_response_head(p, id, code, message, mlen, 0);
    if (llen) {     /* RpcResponse.leader = 6, after the head's fields */
        *p++ = (6 << 3) | KV_WT_LEN;
        p = kv_varint_put(p, llen);
        memcpy(p, leader, llen);
        p += llen;
    }
    kv_buf_commit(out, (size_t)(p - kv_buf_tail(out)));
    return 0;
}

/* The gRPC paths of a service's methods ("/pkg.Service/Method"), built
 * once: every request names its method, and measuring the names per
 * request (strlen of the service and of each method, two memcmp) was a
 * tenth of dispatch's instructions. One service is cached; another
 * descriptor is built afresh. A path longer than PATH_MAX_LEN is never
 * matched (no method of ours comes near it). */
#define PATH_MAX_LEN 96

typedef struct method_paths {
    const ProtobufCServiceDescriptor *desc;
    unsigned n;
    size_t first;                       /* where method names start */
    size_t len[KV_STATS_MAX_METHODS];
    char path[KV_STATS_MAX_METHODS][PATH_MAX_LEN];
} method_paths;

static const method_paths *paths_of(const ProtobufCServiceDescriptor *desc)
{
    static method_paths cache;

    if (cache.desc != desc) {
        cache.desc = desc;
        cache.n = desc->n_methods < KV_STATS_MAX_METHODS ? desc->n_methods : KV_STATS_MAX_METHODS;
        cache.first = strlen(desc->name) + 2;
        for (unsigned i = 0; i < cache.n; i++) {
            int n = snprintf(cache.path[i], PATH_MAX_LEN, "/%s/%s", desc->name,
                             desc->methods[i].name);
            cache.len[i] = n > 0 && n < PATH_MAX_LEN ? (size_t)n : 0;
        }
    }
    return &cache;
}

const char *kv_dispatch_method_path(const ProtobufCServiceDescriptor *desc, unsigned method)
{
    const method_paths *mp = paths_of(desc);

    return method < mp->n && mp->len[method] ? mp->path[method] : "";
}

/* Finds the method named by a gRPC PATH (LEN bytes, not NUL-terminated)
 * in DESC. The method name's first byte is compared before the rest:
 * paths of one length (Get, Set) differ there. */
static const ProtobufCMethodDescriptor *
find_method(const ProtobufCServiceDescriptor *desc, const uint8_t *path, size_t len)
{
    const method_paths *mp = paths_of(desc);

    for (unsigned i = 0; i < mp->n; i++) {
        if (mp->len[i] == len && len > mp->first &&
            (uint8_t)mp->path[i][mp->first] == path[mp->first] &&
            memcmp(mp->path[i], path, len) == 0)
            return &desc->methods[i];
    }
    return NULL;
}

/* "WHAT: DETAIL" in the arena, DETAIL cut to 200 bytes and reduced to
 * printable ASCII (the answer's message is a protobuf string, which must be
 * valid UTF-8, and DETAIL comes from the client). */
static const char *arena_msg(kv_arena *a, const char *what, const uint8_t *detail, size_t dlen)
{
    size_t wl = strlen(what);
    char *s;

    if (dlen > 200)
        dlen = 200;
    s = kv_arena_alloc(a, wl + dlen + 3);
    if (!s)
        return what;
    memcpy(s, what, wl);
    memcpy(s + wl, ": ", 2);
    for (size_t i = 0; i < dlen; i++)
        s[wl + 2 + i] = detail[i] >= 0x20 && detail[i] < 0x7f ? (char)detail[i] : '?';
    s[wl + 2 + dlen] = 0;
    return s;
}

/* kv_dispatch_unpack, inlined into every request's decoding (a call of
 * its own cost a Get 22 instructions). */
static inline ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *desc, kv_arena *arena,
                                       const uint8_t *data, size_t len)
{
    ProtobufCMessage *msg = NULL;
    int rc = kv_pbview_unpack(desc, &arena->pb, data, len, &msg);

    if (rc < 0)
        return NULL;
    if (rc > 0)
        msg = protobuf_c_message_unpack(desc, &arena->pb, len, data);
    return msg;
}

ProtobufCMessage *kv_dispatch_unpack(const ProtobufCMessageDescriptor *desc, kv_arena *arena,
                                     const uint8_t *data, size_t len)
{
    return unpack(desc, arena, data, len);
}

void kv_dispatch_decode(const ProtobufCServiceDescriptor *desc,
                        const ProtobufCMessageDescriptor *const *inputs, kv_arena *arena,
                        const uint8_t *body, size_t len, kv_request *req)
{
    const kv_envelope *env = &req->env;

    req->status = KV_OK;
    if (kv_envelope_decode(body, len, &req->env) < 0) {
        req->id = 0;
        req->status = KV_INVALID_ARGUMENT;
        req->message = "malformed RpcRequest envelope";
        return;
    }
    req->id = env->id;
    const ProtobufCMethodDescriptor *m = find_method(desc, env->method, env->method_len);
    if (!m) {
        req->status = KV_UNIMPLEMENTED;
        req->message = env->method_len ? arena_msg(arena, "unknown method", env->method, env->method_len)
                                      : "unknown method: (empty)";
        return;
    }
    req->method = (unsigned)(m - desc->methods);
    const ProtobufCMessageDescriptor *input = inputs && inputs[req->method] ? inputs[req->method]
                                                                            : m->input;
    req->input = unpack(input, arena, env->payload, env->payload_len);
    if (!req->input) {
        const char *name = m->input->name;
        req->status = KV_INVALID_ARGUMENT;
        req->message = arena_msg(arena, "payload does not decode as", (const uint8_t *)name,
                                 strlen(name));
    }
}
