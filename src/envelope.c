/* envelope.c - the RpcRequest/RpcResponse wire format by hand; see
 * envelope.h for why. Field numbers come from kv.proto:
 *   RpcRequest  { uint64 id = 1; string method = 2; bytes payload = 3; }
 *   RpcResponse { uint64 id = 1; StatusCode code = 2; string message = 3;
 *                 bytes payload = 4; } */
#include <string.h>
#include "envelope.h"
#include "pbfield.h"

int kv_envelope_decode(const uint8_t *buf, size_t len, kv_envelope *out)
{
    const uint8_t *p = buf, *end = buf + len;
    kv_pb_field f;

    memset(out, 0, sizeof *out);
    out->method = out->payload = buf;   /* empty, but not NULL */
    while (p < end) {
        if (kv_pb_next(&p, end, &f) < 0)
            return -1;
        if (f.number == 1) {
            if (f.wire != KV_WT_VARINT)
                return -1;
            out->id = f.value;
        } else if (f.number == 2 || f.number == 3) {
            if (f.wire != KV_WT_LEN)
                return -1;
            if (f.number == 2) {
                out->method = f.data;
                out->method_len = (size_t)f.value;
            } else {
                out->payload = f.data;
                out->payload_len = (size_t)f.value;
            }
        }
    }
    return 0;
}

size_t kv_envelope_response_size(uint64_t id, uint32_t code, size_t mlen, size_t plen)
{
    size_t n = 0;

    if (id)
        n += 1 + kv_varint_size(id);
    if (code)
        n += 1 + kv_varint_size(code);
    if (mlen)
        n += 1 + kv_varint_size(mlen) + mlen;
    if (plen)
        n += 1 + kv_varint_size(plen) + plen;
    return n;
}

size_t kv_envelope_put_response_head(uint8_t *out, uint64_t id, uint32_t code,
                                     const char *message, size_t mlen, size_t plen)
{
    uint8_t *p = out;

    if (id) {
        *p++ = (1 << 3) | KV_WT_VARINT;
        p = kv_varint_put(p, id);
    }
    if (code) {
        *p++ = (2 << 3) | KV_WT_VARINT;
        p = kv_varint_put(p, code);
    }
    if (mlen) {
        *p++ = (3 << 3) | KV_WT_LEN;
        p = kv_varint_put(p, mlen);
        memcpy(p, message, mlen);
        p += mlen;
    }
    if (plen) {
        *p++ = (4 << 3) | KV_WT_LEN;
        p = kv_varint_put(p, plen);
    }
    return (size_t)(p - out);
}
