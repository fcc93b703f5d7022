/* dispatch.c - envelope decoding, method lookup and answer packing; see
 * dispatch.h. Owns no state: everything lives in the caller's arena and
 * output buffer. */
#include <stdio.h>
#include <string.h>
#include "dispatch.h"
#include "envelope.h"
#include "frame.h"

void kv_call_fail(void *closure_data, kv_status status, const char *message)
{
    kv_call *call = closure_data;

    call->status = status;
    call->message = message;
}

/* The ProtobufCClosure given to every handler: packs the answer frame
 * straight into the output buffer (envelope head, then the message). */
static void call_done(const ProtobufCMessage *msg, void *closure_data)
{
    kv_call *call = closure_data;

    call->answered = 1;
    if (!msg) {
        if (call->status == KV_OK)
            kv_call_fail(call, KV_INTERNAL, "handler failed without a reason");
        return;
    }
    size_t plen = protobuf_c_message_get_packed_size(msg);
    size_t n = kv_envelope_response_size(call->id, KV_OK, 0, plen);
    if (n > UINT32_MAX || kv_buf_reserve(call->out, KV_FRAME_PREFIX_MAX + n) < 0) {
        kv_call_fail(call, KV_RESOURCE_EXHAUSTED, "server out of memory for the answer");
        return;
    }
    uint8_t *p = call->out->data + call->out->end;
    p += kv_frame_put_prefix(p, (uint32_t)n);
    p += kv_envelope_put_response_head(p, call->id, KV_OK, NULL, 0, plen);
    p += protobuf_c_message_pack(msg, p);
    call->out->end = (size_t)(p - call->out->data);
}

int kv_dispatch_reply(kv_buf *out, kv_stats *stats, uint64_t id, kv_status code,
                      const char *message)
{
    size_t mlen = message ? strlen(message) : 0;
    size_t n = kv_envelope_response_size(id, code, mlen, 0);

    if (stats) {
        stats->requests++;
        stats->errors += code != KV_OK;
    }
    if (kv_buf_reserve(out, KV_FRAME_PREFIX_MAX + n) < 0)
        return -1;
    uint8_t *p = out->data + out->end;
    p += kv_frame_put_prefix(p, (uint32_t)n);
    p += kv_envelope_put_response_head(p, id, code, message, mlen, 0);
    out->end = (size_t)(p - out->data);
    return 0;
}

/* Finds the method named by a gRPC PATH ("/pkg.Service/Method", LEN bytes,
 * not NUL-terminated) in DESC. */
static const ProtobufCMethodDescriptor *
find_method(const ProtobufCServiceDescriptor *desc, const uint8_t *path, size_t len)
{
    size_t n = strlen(desc->name);

    if (len < n + 3 || path[0] != '/' || memcmp(path + 1, desc->name, n) != 0 || path[1 + n] != '/')
        return NULL;
    const uint8_t *name = path + n + 2;
    size_t name_len = len - n - 2;
    for (unsigned i = 0; i < desc->n_methods; i++) {
        const char *m = desc->methods[i].name;
        if (strlen(m) == name_len && memcmp(m, name, name_len) == 0)
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

int kv_dispatch_frame(ProtobufCService *service, kv_arena *arena, kv_stats *stats,
                      const uint8_t *body, size_t len, kv_buf *out)
{
    ProtobufCAllocator *alloc = &arena->pb;
    kv_envelope env;

    if (kv_envelope_decode(body, len, &env) < 0)
        return kv_dispatch_reply(out, stats, 0, KV_INVALID_ARGUMENT, "malformed RpcRequest envelope");

    const ProtobufCMethodDescriptor *m = find_method(service->descriptor, env.method, env.method_len);
    if (!m)
        return kv_dispatch_reply(out, stats, env.id, KV_UNIMPLEMENTED,
                                 env.method_len ? arena_msg(arena, "unknown method", env.method, env.method_len)
                                                : "unknown method: (empty)");

    ProtobufCMessage *input = protobuf_c_message_unpack(m->input, alloc, env.payload_len, env.payload);
    if (!input) {
        const char *name = m->input->name;
        return kv_dispatch_reply(out, stats, env.id, KV_INVALID_ARGUMENT,
                                 arena_msg(arena, "payload does not decode as", (const uint8_t *)name,
                                           strlen(name)));
    }

    kv_call call = { .alloc = alloc, .status = KV_OK, .payload = env.payload,
                     .payload_len = env.payload_len, .id = env.id, .out = out };
    unsigned index = (unsigned)(m - service->descriptor->methods);
    service->invoke(service, index, input, call_done, &call);
    if (!call.answered)
        kv_call_fail(&call, KV_INTERNAL, "handler did not answer");
    if (index < KV_STATS_MAX_METHODS) {
        stats->calls[index]++;
        stats->call_errors[index] += call.status != KV_OK;
    }
    if (call.status != KV_OK)
        return kv_dispatch_reply(out, stats, env.id, call.status, call.message);
    stats->requests++;
    return 0;
}
