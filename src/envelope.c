/* envelope.c - the RpcRequest/RpcResponse wire format by hand; see
 * envelope.h for why. Field numbers come from kv.proto:
 *   RpcRequest  { uint64 id = 1; string method = 2; bytes payload = 3; }
 *   RpcResponse { uint64 id = 1; StatusCode code = 2; string message = 3;
 *                 bytes payload = 4; } */
#include <string.h>
#include "envelope.h"

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2, WT_FIXED32 = 5 };

/* Reads a varint of at most MAXLEN bytes (10 for values; 5 for field keys
 * and lengths, which are 32-bit) at *P (< END). Returns 0 or -1. */
static int get_varint(const uint8_t **p, const uint8_t *end, unsigned maxlen, uint64_t *v)
{
    uint64_t r = 0;

    for (unsigned shift = 0; shift < 7 * maxlen; shift += 7) {
        if (*p == end)
            return -1;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

int kv_envelope_decode(const uint8_t *buf, size_t len, kv_envelope *out)
{
    const uint8_t *p = buf, *end = buf + len;

    memset(out, 0, sizeof *out);
    out->method = out->payload = buf;   /* empty, but not NULL */
    while (p < end) {
        uint64_t key, v;
        if (get_varint(&p, end, 5, &key) < 0 || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
            return -1;
        unsigned field = (unsigned)(key >> 3), wt = (unsigned)(key & 7);
        const uint8_t *data = NULL;

        switch (wt) {
        case WT_VARINT:
            if (get_varint(&p, end, 10, &v) < 0)
                return -1;
            break;
        case WT_FIXED64:
        case WT_FIXED32: {
            size_t n = wt == WT_FIXED64 ? 8 : 4;
            if ((size_t)(end - p) < n)
                return -1;
            p += n;
            break;
        }
        case WT_LEN:
            if (get_varint(&p, end, 5, &v) < 0 || v > (uint64_t)(end - p))
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
        n += 1 + varint_size(id);
    if (code)
        n += 1 + varint_size(code);
    if (mlen)
        n += 1 + varint_size(mlen) + mlen;
    if (plen)
        n += 1 + varint_size(plen) + plen;
    return n;
}

size_t kv_envelope_put_response_head(uint8_t *out, uint64_t id, uint32_t code,
                                     const char *message, size_t mlen, size_t plen)
{
    uint8_t *p = out;

    if (id) {
        *p++ = (1 << 3) | WT_VARINT;
        p = put_varint(p, id);
    }
    if (code) {
        *p++ = (2 << 3) | WT_VARINT;
        p = put_varint(p, code);
    }
    if (mlen) {
        *p++ = (3 << 3) | WT_LEN;
        p = put_varint(p, mlen);
        memcpy(p, message, mlen);
        p += mlen;
    }
    if (plen) {
        *p++ = (4 << 3) | WT_LEN;
        p = put_varint(p, plen);
    }
    return (size_t)(p - out);
}
