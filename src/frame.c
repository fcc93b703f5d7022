/* frame.c - encodes and decodes the varint length prefix of a frame.
 * Owns nothing: callers keep the buffers and do the I/O. */
#include "frame.h"

kv_frame_result kv_frame_decode(const uint8_t *buf, size_t len, uint32_t max,
                                size_t *body_off, size_t *body_len)
{
    uint64_t n = 0;
    size_t i;

    for (i = 0; i < KV_FRAME_PREFIX_MAX; i++) {
        if (i == len)
            return KV_FRAME_PARTIAL;
        n |= (uint64_t)(buf[i] & 0x7f) << (7 * i);
        if (!(buf[i] & 0x80))
            break;
    }
    if (i == KV_FRAME_PREFIX_MAX || n > UINT32_MAX)
        return KV_FRAME_MALFORMED;

    *body_off = i + 1;
    *body_len = (size_t)n;
    if (n > max)
        return KV_FRAME_TOO_LARGE;
    if (len - *body_off < *body_len)
        return KV_FRAME_PARTIAL;
    return KV_FRAME_OK;
}

size_t kv_frame_put_prefix(uint8_t *out, uint32_t len)
{
    size_t i = 0;

    while (len >= 0x80) {
        out[i++] = (uint8_t)(len | 0x80);
        len >>= 7;
    }
    out[i++] = (uint8_t)len;
    return i;
}

size_t kv_frame_prefix_size(uint32_t len)
{
    size_t n = 1;

    while (len >= 0x80) {
        len >>= 7;
        n++;
    }
    return n;
}
