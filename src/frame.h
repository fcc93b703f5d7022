/* frame.h - the varint length prefix of every kvstore frame, as pure
 * functions over bytes: no I/O, no allocation (see docs/PROTOCOL.md).
 * Used by the server, the client library and the tests alike. */
#ifndef KV_FRAME_H
#define KV_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include "varint.h"

/* The prefix is the varint of a uint32, so it takes at most 5 bytes. */
#define KV_FRAME_PREFIX_MAX KV_VARINT32_MAX

/* What kv_frame_decode() found at the start of a buffer. */
typedef enum kv_frame_result {
    KV_FRAME_OK = 0,        /* a whole frame is there: *body_off, *body_len set */
    KV_FRAME_PARTIAL = -1,  /* need more bytes; *body_len is set once the prefix
                               is complete (so callers can grow buffers) */
    KV_FRAME_TOO_LARGE = -2,/* a valid prefix declares more than max bytes;
                               *body_len holds the declared length */
    KV_FRAME_MALFORMED = -3,/* the prefix is longer than 5 bytes or exceeds
                               32 bits: the stream cannot be resynchronised */
} kv_frame_result;

/* Looks for one frame at BUF[0..LEN). On KV_FRAME_OK the body is
 * BUF[*body_off .. *body_off + *body_len) and the frame ends there. Frames
 * whose declared length is <= MAX are accepted. Reads nothing past LEN. */
kv_frame_result kv_frame_decode(const uint8_t *buf, size_t len, uint32_t max,
                                size_t *body_off, size_t *body_len);

/* Writes the prefix for a body of LEN bytes into OUT (room for
 * KV_FRAME_PREFIX_MAX bytes). Returns the number of bytes written (1..5).
 * Inline: the server frames every answer with it. */
static inline size_t kv_frame_put_prefix(uint8_t *out, uint32_t len)
{
    return (size_t)(kv_varint_put(out, len) - out);
}

/* The number of bytes kv_frame_put_prefix() would write for LEN. */
static inline size_t kv_frame_prefix_size(uint32_t len)
{
    return kv_varint_size(len);
}

#endif
