/* envelope.c - the RpcRequest/RpcResponse wire format by hand; see
 * envelope.h for why. Field numbers come from kv.proto:
 *   RpcRequest  { uint64 id = 1; string method = 2; bytes payload = 3; }
 *   RpcResponse { uint64 id = 1; StatusCode code = 2; string message = 3;
 *                 bytes payload = 4; } */
#include <string.h>
#include "envelope.h"
#include "varint.h"

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2, WT_FIXED32 = 5 };

int kv_envelope_decode(const uint8_t *buf, size_t len, kv_envelope *out)
{
    const uint8_t *p = buf, *end = buf + len;

    memset(out, 0, sizeof *out);
    out->method = out->payload = buf;   /* empty, but not NULL */
    while (p < end) {
        uint32_t key;
        uint64_t v;
        if (kv_varint_get32(&p, end, &key) < 0 || (key >> 3) == 0)
            return -1;
        unsigned field = key >> 3, wt = key & 7;
        const uint8_t *data = NULL;

        switch (wt) {
        case WT_VARINT:
            if (kv_varint_get(&p, end, KV_VARINT_MAX, &v) < 0)
                return -1;
            break;
        case WT_FIXED64:
        case WT_FIXED32: {
            size_t skip = wt == WT_FIXED64 ? 8 : 4;
            if ((size_t)(end - p) < skip)
                return -1;
            p += skip;
            break;
        }
        case WT_LEN:
            /* At most 5 bytes, as protobuf-c reads lengths; no width
             * check needed: a length wider than the input is refused. */
            if (kv_varint_get(&p, end, KV_VARINT32_MAX, &v) < 0 || v > (uint64_t)(end - p))
                return -1;
            data = p;
            p += v;
            break;
        default:
            return -1;      /* groups and reserved wire types */
        }
        if (field == 1) {
            if (wt != WT_VARINT)
                return -1;
            out->id = v;
        } else if (field == 2 || field == 3) {
            if (wt != WT_LEN)
                return -1;
            if (field == 2) {
                out->method = data;
                out->method_len = (size_t)v;
            } else {
                out->payload = data;
                out->payload_len = (size_t)v;
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
        *p++ = (1 << 3) | WT_VARINT;
        p = kv_varint_put(p, id);
    }
    if (code) {
        *p++ = (2 << 3) | WT_VARINT;
        p = kv_varint_put(p, code);
    }
    if (mlen) {
        *p++ = (3 << 3) | WT_LEN;
        p = kv_varint_put(p, mlen);
        memcpy(p, message, mlen);
        p += mlen;
    }
    if (plen) {
        *p++ = (4 << 3) | WT_LEN;
        p = kv_varint_put(p, plen);
    }
    return (size_t)(p - out);
}
