/* dispatch.c - envelope decoding, method lookup and answer packing; see
 * dispatch.h. Owns no state: everything lives in the caller's arena and
 * output buffer. */
#include <stdio.h>
#include <string.h>
#include "dispatch.h"
#include "frame.h"
#include "kvstore/v1/kv.pb-c.h"

void kv_call_fail(void *closure_data, kv_status status, const char *message)
{
    kv_call *call = closure_data;

    call->status = status;
    call->message = message;
}

/* The ProtobufCClosure given to every handler: packs the response. */
static void call_done(const ProtobufCMessage *msg, void *closure_data)
{
    kv_call *call = closure_data;

    call->answered = 1;
    if (!msg) {
        if (call->status == KV_OK)
            kv_call_fail(call, KV_INTERNAL, "handler failed without a reason");
        return;
    }
    size_t n = protobuf_c_message_get_packed_size(msg);
    call->payload.len = n;
    call->payload.data = n ? call->alloc->alloc(call->alloc->allocator_data, n) : NULL;
    if (n && !call->payload.data) {
        kv_call_fail(call, KV_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    protobuf_c_message_pack(msg, call->payload.data);
}

int kv_dispatch_reply(kv_buf *out, kv_stats *stats, uint64_t id, kv_status code,
                      const char *message, const ProtobufCBinaryData *payload)
{
    Kvstore__V1__RpcResponse resp = KVSTORE__V1__RPC_RESPONSE__INIT;

    if (stats) {
        stats->requests++;
        stats->errors += code != KV_OK;
    }
    resp.id = id;
    resp.code = (Kvstore__V1__StatusCode)code;
    resp.message = (char *)(message ? message : "");
    if (payload)
        resp.payload = *payload;

    size_t n = kvstore__v1__rpc_response__get_packed_size(&resp);
    if (n > UINT32_MAX || kv_buf_reserve(out, KV_FRAME_PREFIX_MAX + n) < 0)
        return -1;
    uint8_t *p = out->data + out->end;
    size_t pre = kv_frame_put_prefix(p, (uint32_t)n);
    kvstore__v1__rpc_response__pack(&resp, p + pre);
    out->end += pre + n;
    return 0;
}

/* Finds the method named by a gRPC PATH ("/pkg.Service/Method") in DESC. */
static const ProtobufCMethodDescriptor *
find_method(const ProtobufCServiceDescriptor *desc, const char *path)
{
    size_t n = strlen(desc->name);

    if (path[0] != '/' || strncmp(path + 1, desc->name, n) != 0 || path[1 + n] != '/')
        return NULL;
    return protobuf_c_service_descriptor_get_method_by_name(desc, path + n + 2);
}

/* A message that lives in the arena: "what: detail". */
static const char *arena_msg(kv_arena *a, const char *what, const char *detail)
{
    size_t n = strlen(what) + strlen(detail) + 3;
    char *s = kv_arena_alloc(a, n);

    if (!s)
        return what;
    snprintf(s, n, "%s: %s", what, detail);
    return s;
}

int kv_dispatch_frame(ProtobufCService *service, kv_arena *arena, kv_stats *stats,
                      const uint8_t *body, size_t len, kv_buf *out)
{
    ProtobufCAllocator *alloc = &arena->pb;
    Kvstore__V1__RpcRequest *req = kvstore__v1__rpc_request__unpack(alloc, len, body);

    if (!req)
        return kv_dispatch_reply(out, stats, 0, KV_INVALID_ARGUMENT,
                                 "malformed RpcRequest envelope", NULL);

    const ProtobufCMethodDescriptor *m = find_method(service->descriptor, req->method);
    if (!m)
        return kv_dispatch_reply(out, stats, req->id, KV_UNIMPLEMENTED,
                                 arena_msg(arena, "unknown method", req->method[0] ? req->method : "(empty)"),
                                 NULL);

    ProtobufCMessage *input = protobuf_c_message_unpack(m->input, alloc,
                                                        req->payload.len, req->payload.data);
    if (!input)
        return kv_dispatch_reply(out, stats, req->id, KV_INVALID_ARGUMENT,
                                 arena_msg(arena, "payload does not decode as", m->input->name),
                                 NULL);

    kv_call call = { .alloc = alloc, .status = KV_OK };
    unsigned index = (unsigned)(m - service->descriptor->methods);
    service->invoke(service, index, input, call_done, &call);
    if (!call.answered)
        kv_call_fail(&call, KV_INTERNAL, "handler did not answer");
    if (index < KV_STATS_MAX_METHODS) {
        stats->calls[index]++;
        stats->call_errors[index] += call.status != KV_OK;
    }
    if (call.status != KV_OK)
        return kv_dispatch_reply(out, stats, req->id, call.status, call.message, NULL);
    return kv_dispatch_reply(out, stats, req->id, KV_OK, NULL, &call.payload);
}
