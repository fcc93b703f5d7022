/* fuzz_frame.c - libFuzzer harness for the pure codecs: the frame prefix
 * (kv_frame_decode against kv_frame_put_prefix), the hand-written
 * envelope decoder and the in-place request unpacking (pbview), checked
 * differentially against protobuf-c. Any
 * disagreement aborts, so the fuzzer reports it as a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "envelope.h"
#include "frame.h"
#include "hotpack.h"
#include "support/wirecheck.h"
#include "kvstore/v1/kv.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off, len;
    uint32_t max = size ? (uint32_t)data[0] << 8 : 0;

    /* Frame prefix: a decoded length re-encodes to the same prefix. */
    kv_frame_result r = kv_frame_decode(data, size, max, &off, &len);
    if (r == KV_FRAME_OK || r == KV_FRAME_TOO_LARGE) {
        uint8_t pre[KV_FRAME_PREFIX_MAX];
        if (off > KV_FRAME_PREFIX_MAX || len > UINT32_MAX)
            abort();
        size_t n = kv_frame_put_prefix(pre, (uint32_t)len);
        /* Non-minimal encodings (e.g. 0x80 0x00) decode too; compare values. */
        size_t off2, len2;
        if (kv_frame_decode(pre, n, UINT32_MAX, &off2, &len2) == KV_FRAME_MALFORMED || len2 != len)
            abort();
        if (r == KV_FRAME_OK && (len > max || off + len > size))
            abort();
        if (r == KV_FRAME_TOO_LARGE && len <= max)
            abort();
    }

    /* Envelope: same decision and fields as protobuf-c. */
    kv_envelope e;
    int ours = kv_envelope_decode(data, size, &e) == 0;
    Kvstore__V1__RpcRequest *req = kvstore__v1__rpc_request__unpack(NULL, size, data);
    if (ours != (req != NULL) && !(req && kv_wire_stricter_than_protobuf_c(data, size)))
        abort();
    if (ours && req) {
        size_t ml = strlen(req->method);
        if (e.id != req->id || e.method_len < ml || memcmp(e.method, req->method, ml) != 0
            || e.payload_len != req->payload.len
            || (e.payload_len && memcmp(e.payload, req->payload.data, e.payload_len) != 0))
            abort();
    }
    if (req)
        kvstore__v1__rpc_request__free_unpacked(req, NULL);

    /* Request messages unpacked in place (pbview): as protobuf-c does. */
    for (int i = 0; kv_wire_request_messages[i]; i++)
        if (kv_wire_pbview_agrees(kv_wire_request_messages[i], data, size) < 0)
            abort();
    /* Answers packed by pbview: the bytes protobuf-c writes, for whatever
     * values these bytes unpack to (with no unknown fields: protobuf-c
     * would write those back, and answers built by handlers have none). */
    /* By plan and, for the answers hotpack.c packs, by hand too. */
    for (int i = 0; kv_wire_answer_messages[i]; i++) {
        ProtobufCMessage *m = protobuf_c_message_unpack(kv_wire_answer_messages[i], NULL, size, data);
        kv_hotpack_use(0);
        if (m && m->n_unknown_fields == 0 && !kv_wire_pbview_packs_as_protobuf_c(m))
            abort();
        kv_hotpack_use(1);
        if (m && m->n_unknown_fields == 0 && !kv_wire_pbview_packs_as_protobuf_c(m))
            abort();
        if (m)
            protobuf_c_message_free_unpacked(m, NULL);
    }
    return 0;
}
