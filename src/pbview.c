/* pbview.c - in-place unpacking of flat request messages; see pbview.h.
 * Owns nothing: the message is the caller's allocator's, its bytes the
 * caller's buffer's. */
#include <string.h>
#include "pbfield.h"
#include "pbview.h"

/* What pbview does with one field, worked out once per message type from
 * its descriptor (a "plan"), so that the per-request loops are a table
 * walk: the generic descriptor walk cost as much as protobuf-c's. */
enum { K_OTHER, K_BYTES, K_U64, K_BOOL, K_U32, K_I32 };

typedef struct pv_field {
    uint32_t id;
    uint32_t offset;            /* of the value in the message */
    uint32_t has_offset;        /* of the has_ flag, or of the oneof's case
                                   when one_of; 0: none (plain proto3) */
    uint8_t one_of;             /* a oneof member: present when the case,
                                   a uint32, holds this field's number */
    uint8_t kind;               /* K_* */
    uint8_t wire;               /* KV_WT_VARINT or KV_WT_LEN */
    uint8_t key_len;            /* bytes of key */
    uint8_t key[5];             /* the field's key, encoded */
} pv_field;

#define PV_MAX_FIELDS KV_PBVIEW_MAX_FIELDS
#define PV_PLANS 256            /* message types remembered: four times the
                                   proto's, so that a type's home slot is
                                   rarely another's (a collision costs every
                                   call of that type a probe: Get's cost 27
                                   instructions once v2.1 added messages) */
#define PV_PLAN_BITS 8

typedef struct pv_plan {
    const ProtobufCMessageDescriptor *desc;
    int flat;                   /* every field has a kind other than K_OTHER */
    unsigned n;
    pv_field f[PV_MAX_FIELDS];
    size_t fixed;               /* the most a packed message takes besides
                                   the bytes of its bytes fields */
    unsigned n_bytes;           /* its bytes fields, */
    uint32_t bytes_offset[PV_MAX_FIELDS];  /* at these offsets */
    const kv_pbview_packer *packer;        /* written by hand; NULL: by plan */
} pv_plan;

/* The hand-written packers (kv_pbview_use_packer), by message type. */
#define PV_PACKERS 8
static struct {
    const ProtobufCMessageDescriptor *desc;
    const kv_pbview_packer *packer;
} packers[PV_PACKERS];

static int kind_of(const ProtobufCFieldDescriptor *f)
{
    if (f->label != PROTOBUF_C_LABEL_NONE && f->label != PROTOBUF_C_LABEL_OPTIONAL)
        return K_OTHER;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_ENUM:
        return K_I32;
    case PROTOBUF_C_TYPE_UINT32:
        return K_U32;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
        return K_U64;
    case PROTOBUF_C_TYPE_BOOL:
        return K_BOOL;
    case PROTOBUF_C_TYPE_BYTES:
        return K_BYTES;
    default:
        return K_OTHER;
    }
}

/* The plan of DESC, from a table keyed by the descriptor's address, probed
 * linearly: every message type the server packs or unpacks keeps its plan
 * once built (the service has about thirty; a collision that rebuilt the
 * plan on every call, as a direct-mapped table did, cost 300 instructions
 * per answer). Should more types than PV_PLANS come, the rest are planned
 * afresh at each call in a scratch plan: correct, only slower. A message
 * type with more than PV_MAX_FIELDS fields is not flat. */
static pv_plan plans[PV_PLANS], plan_scratch;

static const pv_plan *plan_lookup(const ProtobufCMessageDescriptor *desc);

/* The slot of DESC's plan when nothing collided with it. */
static inline size_t plan_home(const ProtobufCMessageDescriptor *desc)
{
    return (size_t)(((uint64_t)(uintptr_t)desc * 0x9E3779B97F4A7C15ull) >> (64 - PV_PLAN_BITS));
}

static inline const pv_plan *plan_of(const ProtobufCMessageDescriptor *desc)
{
    const pv_plan *at = &plans[plan_home(desc)];

    return at->desc == desc ? at : plan_lookup(desc);
}

static const pv_plan *plan_lookup(const ProtobufCMessageDescriptor *desc)
{
    size_t h = plan_home(desc);
    pv_plan *pl = &plan_scratch;

    for (size_t i = 0; i < PV_PLANS; i++) {
        pv_plan *at = &plans[(h + i) % PV_PLANS];
        if (at->desc == desc)
            return at;
        if (!at->desc) {
            pl = at;
            break;
        }
    }
    pl->desc = desc;
    pl->flat = desc->n_fields <= PV_MAX_FIELDS;
    pl->n = pl->flat ? desc->n_fields : 0;
    pl->fixed = 0;
    pl->n_bytes = 0;
    pl->packer = NULL;
    for (unsigned i = 0; i < PV_PACKERS; i++)
        if (packers[i].desc == desc)
            pl->packer = packers[i].packer;
    for (unsigned i = 0; i < pl->n; i++) {
        const ProtobufCFieldDescriptor *fd = &desc->fields[i];
        pv_field *f = &pl->f[i];
        f->id = fd->id;
        f->offset = fd->offset;
        f->kind = (uint8_t)kind_of(fd);
        f->wire = f->kind == K_BYTES ? KV_WT_LEN : KV_WT_VARINT;
        /* A oneof of scalars or bytes (proto3 `optional`, as protoc-c 1.4
         * is given it, is a oneof of one): its case says which is set. */
        f->one_of = (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
        f->has_offset = fd->label == PROTOBUF_C_LABEL_OPTIONAL || f->one_of
                        ? fd->quantifier_offset : 0;
        f->key_len = (uint8_t)(kv_varint_put(f->key, (uint64_t)fd->id << 3 | f->wire) - f->key);
        if (f->kind == K_OTHER)
            pl->flat = 0;
        pl->fixed += f->key_len + KV_VARINT_MAX;
        if (f->kind == K_BYTES)
            pl->bytes_offset[pl->n_bytes++] = f->offset;
    }
    return pl;
}

/* Stores the varint V of field F into the message at M. RAW is the
 * varint's first byte: bool follows protobuf-c, which reads true when any
 * of its bytes has a value bit set, even past the 64 bits V holds. */
static void store_varint(const pv_field *f, uint8_t *m, uint64_t v, const uint8_t *raw)
{
    if (f->kind == K_U64) {
        memcpy(m + f->offset, &v, sizeof v);
    } else if (f->kind == K_BOOL) {
        protobuf_c_boolean b = 0;
        for (const uint8_t *p = raw;; p++) {
            b |= (*p & 0x7f) != 0;
            if (!(*p & 0x80))
                break;
        }
        memcpy(m + f->offset, &b, sizeof b);
    } else {                    /* int32, uint32, enum: the low 32 bits */
        uint32_t w = (uint32_t)v;
        memcpy(m + f->offset, &w, sizeof w);
    }
}

int kv_pbview_unpack(const ProtobufCMessageDescriptor *desc, ProtobufCAllocator *alloc,
                     const uint8_t *data, size_t len, ProtobufCMessage **out)
{
    const pv_plan *pl = plan_of(desc);
    const uint8_t *p = data, *end = data + len;
    kv_pb_field w;

    if (desc->n_fields > PV_MAX_FIELDS)
        return 1;
    uint8_t *m = alloc->alloc(alloc->allocator_data, desc->sizeof_message);
    if (!m)
        return -1;
    desc->message_init((ProtobufCMessage *)(void *)m);
    while (p < end) {
        if (kv_pb_next(&p, end, &w) < 0)
            return -1;
        const pv_field *f = NULL;
        for (unsigned i = 0; i < pl->n; i++) {
            if (pl->f[i].id == w.number) {
                f = &pl->f[i];
                break;
            }
        }
        if (!f)
            continue;           /* unknown: skipped */
        if (f->kind == K_OTHER)
            return 1;           /* a kind read by protobuf-c only */
        if (w.wire != f->wire)  /* a known field of the wrong wire type: */
            return f->kind == K_BOOL ? 1 : -1;
                                /* protobuf-c reads a bool of any wire type
                                   (true when a byte of it is not 0): its
                                   reading, not a second one */
        if (f->kind == K_BYTES) {
            /* Empty: NULL data, as protobuf-c leaves it. */
            ProtobufCBinaryData b = { (size_t)w.value, w.value ? (uint8_t *)w.data : NULL };
            memcpy(m + f->offset, &b, sizeof b);
        } else {
            store_varint(f, m, w.value, w.data);
        }
        if (f->one_of) {
            memcpy(m + f->has_offset, &f->id, sizeof f->id);
        } else if (f->has_offset) {
            protobuf_c_boolean has = 1;
            memcpy(m + f->has_offset, &has, sizeof has);
        }
    }
    *out = (ProtobufCMessage *)(void *)m;
    return 0;
}

/* Field F of message M as it goes on the wire: whether it is written at
 * all (a proto3 field at its default is not, an optional one unless set),
 * its varint value or, for bytes, its length, with *DATA its bytes. */
static inline int field_value(const pv_field *f, const uint8_t *m, uint64_t *v,
                              const uint8_t **data)
{
    const uint8_t *at = m + f->offset;

    switch (f->kind) {
    case K_BYTES: {
        ProtobufCBinaryData b;
        memcpy(&b, at, sizeof b);
        *v = b.len;
        *data = b.data;
        break;
    }
    case K_U64:
        memcpy(v, at, sizeof *v);
        break;
    case K_BOOL: {
        protobuf_c_boolean x;
        memcpy(&x, at, sizeof x);
        *v = x != 0;
        break;
    }
    case K_U32: {
        uint32_t x;
        memcpy(&x, at, sizeof x);
        *v = x;
        break;
    }
    default: {                  /* int32, enum: negative ones sign-extended */
        int32_t x;
        memcpy(&x, at, sizeof x);
        *v = (uint64_t)(int64_t)x;
        break;
    }
    }
    if (!f->has_offset)
        return *v != 0;
    if (f->one_of) {
        uint32_t which;
        memcpy(&which, m + f->has_offset, sizeof which);
        return which == f->id;
    }
    protobuf_c_boolean has;
    memcpy(&has, m + f->has_offset, sizeof has);
    return has != 0;
}

/* Field F of message M: whether it is written, with its varint or length
 * in *V and its bytes in *DATA. The common kinds (a proto3 uint64, bytes
 * or bool, written unless at its default) are read inline, the rest
 * through field_value(): an answer of six fields took 290 instructions
 * through field_value() alone, its out-parameters kept in memory. */
static inline int read_field(const pv_field *f, const uint8_t *m, uint64_t *v,
                             const uint8_t **data)
{
    const uint8_t *at = m + f->offset;

    if (f->has_offset)
        return field_value(f, m, v, data);
    if (f->kind == K_U64) {
        memcpy(v, at, sizeof *v);
        return *v != 0;
    }
    if (f->kind == K_BYTES) {
        ProtobufCBinaryData b;
        memcpy(&b, at, sizeof b);
        *v = b.len;
        *data = b.data;
        return b.len != 0;
    }
    if (f->kind == K_BOOL) {
        protobuf_c_boolean x;
        memcpy(&x, at, sizeof x);
        *v = x != 0;
        return x != 0;
    }
    return field_value(f, m, v, data);
}

/* Writes field F with value V (bytes: DATA) at P; returns the end. */
static inline uint8_t *put_field(uint8_t *p, const pv_field *f, uint64_t v, const uint8_t *data)
{
    p[0] = f->key[0];           /* keys are 1 byte below field 16 */
    if (f->key_len > 1)
        memcpy(p + 1, f->key + 1, f->key_len - 1u);
    p += f->key_len;
    if (v < 0x80)
        *p++ = (uint8_t)v;
    else
        p = kv_varint_put(p, v);
    if (f->kind == K_BYTES && v) {
        memcpy(p, data, v);
        p += v;
    }
    return p;
}

size_t kv_pbview_measure(const ProtobufCMessage *msg, kv_pbview_sized *out)
{
    const pv_plan *pl = plan_of(msg->descriptor);
    const uint8_t *m = (const uint8_t *)msg;
    size_t n = 0;
    unsigned k = 0;

    out->flat = pl->flat;
    out->msg = msg;
    out->packer = pl->packer;
    if (pl->packer) {
        out->n = 0;
        return pl->packer->size(msg);
    }
    for (const pv_field *f = pl->f, *end = pl->flat ? f + pl->n : f; f < end; f++) {
        const uint8_t *data = NULL;
        uint64_t v;
        if (!read_field(f, m, &v, &data))
            continue;
        out->at[k++] = (kv_pbview_value){ f, v, data };
        n += f->key_len + kv_varint_size(v) + (f->kind == K_BYTES ? v : 0);
    }
    out->n = k;
    return n;
}

size_t kv_pbview_bound(const ProtobufCMessage *msg, int *flat)
{
    const pv_plan *pl = plan_of(msg->descriptor);
    size_t n = pl->fixed;

    *flat = pl->flat;
    if (!pl->flat)
        return 0;
    if (pl->packer)
        return pl->packer->bound(msg);
    for (unsigned i = 0; i < pl->n_bytes; i++) {
        ProtobufCBinaryData b;
        memcpy(&b, (const uint8_t *)msg + pl->bytes_offset[i], sizeof b);
        n += b.len;     /* a oneof's other member may read as any length:
                           still a bound, if a loose one */
    }
    return n;
}

size_t kv_pbview_write(const kv_pbview_sized *in, uint8_t *out)
{
    uint8_t *p = out;

    if (in->packer)
        return in->packer->pack(in->msg, out);
    for (unsigned i = 0; i < in->n; i++)
        p = put_field(p, in->at[i].field, in->at[i].v, in->at[i].data);
    return (size_t)(p - out);
}

size_t kv_pbview_size(const ProtobufCMessage *msg, int *supported)
{
    kv_pbview_sized s;
    size_t n = kv_pbview_measure(msg, &s);

    *supported = s.flat;
    return n;
}

size_t kv_pbview_pack(const ProtobufCMessage *msg, uint8_t *out)
{
    const pv_plan *pl = plan_of(msg->descriptor);
    const uint8_t *m = (const uint8_t *)msg;
    uint8_t *p = out;

    if (pl->packer)
        return pl->packer->pack(msg, out);
    for (const pv_field *f = pl->f, *end = f + pl->n; f < end; f++) {
        const uint8_t *data = NULL;
        uint64_t v;
        if (read_field(f, m, &v, &data))
            p = put_field(p, f, v, data);
    }
    return (size_t)(p - out);
}

int kv_pbview_use_packer(const ProtobufCMessageDescriptor *desc, const kv_pbview_packer *packer)
{
    for (unsigned i = 0; i < PV_PACKERS; i++) {
        if (packers[i].desc && packers[i].desc != desc)
            continue;
        packers[i].desc = desc;
        packers[i].packer = packer;
        /* A plan built before this call takes the packer too. */
        ((pv_plan *)plan_of(desc))->packer = packer;
        return 0;
    }
    return -1;
}
