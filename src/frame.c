/* frame.c - decodes the varint length prefix of a frame (the encoders are
 * inline in frame.h). Owns nothing: callers keep the buffers and do the
 * I/O. */
#include "frame.h"

kv_frame_result kv_frame_decode(const uint8_t *buf, size_t len, uint32_t max,
                                size_t *body_off, size_t *body_len)
{
    const uint8_t *p = buf, *end = buf + len;
    uint32_t n;
    int rc = kv_varint_get32(&p, end, &n);

    if (rc < 0)
        return rc == KV_VARINT_TRUNCATED ? KV_FRAME_PARTIAL : KV_FRAME_MALFORMED;
    *body_off = (size_t)(p - buf);
    *body_len = n;
    if (n > max)
        return KV_FRAME_TOO_LARGE;
    if ((size_t)(end - p) < n)
        return KV_FRAME_PARTIAL;
    return KV_FRAME_OK;
}
