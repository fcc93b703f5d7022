/* pbfield.h - one protobuf field at a time, for the decoders written by
 * hand (envelope.c, pbview.c): the key, then the value as its wire type
 * says. Pure and static inline (it runs several times per request); the
 * rules are protobuf-c 1.4's, stricter only where the protobuf spec is:
 * field number 0 and keys wider than 32 bits are refused. */
#ifndef KV_PBFIELD_H
#define KV_PBFIELD_H

#include <stddef.h>
#include <stdint.h>
#include "varint.h"

enum { KV_WT_VARINT = 0, KV_WT_FIXED64 = 1, KV_WT_LEN = 2, KV_WT_FIXED32 = 5 };

/* One field as read from the wire. */
typedef struct kv_pb_field {
    uint32_t number;
    unsigned wire;          /* KV_WT_* */
    uint64_t value;         /* a varint's value; a length-delimited field's length */
    const uint8_t *data;    /* where the value starts (the varint's first byte,
                               the bytes after a length) */
} kv_pb_field;

/* Reads the field at *P (before END) into *F and moves *P past it.
 * Returns 0, or -1 when the bytes are not a valid field: truncated, over-
 * long varint (more than 10 bytes; more than 5 for keys and lengths), a
 * length past END, field number 0, a group or reserved wire type. */
static inline int kv_pb_next(const uint8_t **p, const uint8_t *end, kv_pb_field *f)
{
    uint32_t key;

    if (kv_varint_get32(p, end, &key) < 0 || (key >> 3) == 0)
        return -1;
    f->number = key >> 3;
    f->wire = key & 7;
    f->data = *p;
    switch (f->wire) {
    case KV_WT_VARINT:
        return kv_varint_get(p, end, KV_VARINT_MAX, &f->value) < 0 ? -1 : 0;
    case KV_WT_FIXED64:
    case KV_WT_FIXED32: {
        size_t skip = f->wire == KV_WT_FIXED64 ? 8 : 4;
        if ((size_t)(end - *p) < skip)
            return -1;
        *p += skip;
        f->value = 0;       /* not read: no reader here takes fixed types */
        return 0;
    }
    case KV_WT_LEN:
        /* At most 5 bytes, as protobuf-c reads lengths; no width check
         * needed: a length wider than the input is refused. */
        if (kv_varint_get(p, end, KV_VARINT32_MAX, &f->value) < 0 ||
            f->value > (uint64_t)(end - *p))
            return -1;
        f->data = *p;
        *p += f->value;
        return 0;
    default:
        return -1;      /* groups and reserved wire types */
    }
}

#endif
