/* varint.h - the protobuf base-128 varint, the one codec for it in the
 * tree: frame length prefixes (frame.h), protobuf field keys, lengths and
 * values (envelope.c, kvbench, the test helpers). Pure functions over
 * bytes, no I/O, no allocation; static inline because the server decodes
 * several per request. What a field may hold (field number 0, a length
 * past the end) is the caller's business, not this file's. */
#ifndef KV_VARINT_H
#define KV_VARINT_H

#include <stddef.h>
#include <stdint.h>

/* The longest varint of a uint64, and of a uint32 (field keys, lengths
 * and frame prefixes). */
#define KV_VARINT_MAX 10
#define KV_VARINT32_MAX 5

/* The errors of kv_varint_get() and kv_varint_get32(). */
enum {
    KV_VARINT_TRUNCATED = -1,   /* the bytes end inside the varint: more may come */
    KV_VARINT_OVERLONG = -2,    /* too many bytes (or, for get32, bits): never valid */
};

/* Reads a varint of at most MAXLEN bytes (1..KV_VARINT_MAX) at *P, which
 * lies before END, into *V. Returns 0 with *P moved past it; else
 * KV_VARINT_TRUNCATED when END comes first, or KV_VARINT_OVERLONG when
 * MAXLEN bytes all say "more follows", with *P and *V unspecified. Reads
 * nothing at or past END. Non-minimal encodings (0x80 0x00) are accepted
 * and bits past 64 in a 10th byte dropped, as protobuf's decoders do.
 * A cursor, not (buffer, length) in and a count out: with the count,
 * kv_envelope_decode() took 227 instructions a request instead of 194
 * (callgrind, kvbench -t set,get -n 100000 -P 16 against kvstored). */
static inline int kv_varint_get(const uint8_t **p, const uint8_t *end, size_t maxlen,
                                uint64_t *v)
{
    uint64_t r = 0;

    /* Most varints on the wire (keys, lengths, small ids) are one byte. */
    if (*p < end && !(**p & 0x80)) {
        *v = *(*p)++;
        return 0;
    }
    for (size_t shift = 0; shift < 7 * maxlen; shift += 7) {
        if (*p == end)
            return KV_VARINT_TRUNCATED;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return KV_VARINT_OVERLONG;
}

/* kv_varint_get() of a uint32: at most KV_VARINT32_MAX bytes, and a value
 * wider than 32 bits is KV_VARINT_OVERLONG too (the protobuf spec makes
 * it invalid; protobuf-c 1.4 would truncate it). */
static inline int kv_varint_get32(const uint8_t **p, const uint8_t *end, uint32_t *v)
{
    uint64_t r;
    int rc = kv_varint_get(p, end, KV_VARINT32_MAX, &r);

    if (rc < 0)
        return rc;
    if (r > UINT32_MAX)
        return KV_VARINT_OVERLONG;
    *v = (uint32_t)r;
    return 0;
}

/* Writes V's minimal encoding at OUT (room: kv_varint_size(V), at most
 * KV_VARINT_MAX bytes). Returns the byte after it: a cursor, like
 * kv_varint_get()'s and for the same measured reason. */
static inline uint8_t *kv_varint_put(uint8_t *out, uint64_t v)
{
    while (v >= 0x80) {
        *out++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *out++ = (uint8_t)v;
    return out;
}

/* The bytes kv_varint_put() writes for V (1..KV_VARINT_MAX). */
static inline size_t kv_varint_size(uint64_t v)
{
    /* 7 bits a byte: the bits V needs (1 for 0), rounded up to sevens. */
    return (size_t)(64 - __builtin_clzll(v | 1) + 6) / 7;
}

#endif
