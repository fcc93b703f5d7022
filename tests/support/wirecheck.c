/* wirecheck.c - see wirecheck.h. Walks protobuf fields without decoding,
 * and compares two unpacked messages field by field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pbview.h"
#include "wirecheck.h"
#include "varint.h"
#include "kvstore/v1/kv.pb-c.h"
#include "ping_view.pb-c.h"

int kv_wire_stricter_than_protobuf_c(const uint8_t *buf, size_t len)
{
    const uint8_t *p = buf, *end = buf + len;
    uint64_t key, v;

    /* A cut-off or over-long varint is something else going wrong first. */
    while (p < end) {
        if (kv_varint_get(&p, end, KV_VARINT_MAX, &key) < 0)
            return 0;
        if (key > UINT32_MAX || key >> 3 == 0)
            return 1;
        switch (key & 7) {
        case 0:
            if (kv_varint_get(&p, end, KV_VARINT_MAX, &v) < 0)
                return 0;
            break;
        case 1:
        case 5: {
            size_t skip = (key & 7) == 1 ? 8 : 4;
            if ((size_t)(end - p) < skip)
                return 0;
            p += skip;
            break;
        }
        case 2:
            if (kv_varint_get(&p, end, KV_VARINT_MAX, &v) < 0 || v > (uint64_t)(end - p))
                return 0;
            p += v;
            break;
        default:
            return 0;
        }
    }
    return 0;
}

const ProtobufCMessageDescriptor *const kv_wire_answer_messages[] = {
    &kvstore__server__ping_view__descriptor,
    &kvstore__v1__get_response__descriptor,
    &kvstore__v1__set_response__descriptor,
    &kvstore__v1__clear_response__descriptor,
    &kvstore__v1__auth_response__descriptor,
    &kvstore__v1__stats_response__descriptor,
    &kvstore__v1__key_value__descriptor,
    &kvstore__v1__range_response__descriptor,
    &kvstore__v1__clear_range_response__descriptor,
    &kvstore__v1__txn_response__descriptor,
    NULL,
};

int kv_wire_pbview_packs_as_protobuf_c(const ProtobufCMessage *msg)
{
    int flat;
    size_t n = kv_pbview_size(msg, &flat);

    if (!flat)
        return 1;               /* the server leaves this one to protobuf-c */
    size_t want = protobuf_c_message_get_packed_size(msg);
    uint8_t *ours = malloc(n + 1), *theirs = malloc(want + 1);
    int same = ours && theirs && n == want && kv_pbview_pack(msg, ours) == n &&
               protobuf_c_message_pack(msg, theirs) == want && memcmp(ours, theirs, n) == 0;
    if (!same)
        fprintf(stderr, "pbview packs a %s in %zu bytes, protobuf-c in %zu\n",
                msg->descriptor->name, n, want);
    free(ours);
    free(theirs);
    return same;
}

const ProtobufCMessageDescriptor *const kv_wire_request_messages[] = {
    &kvstore__server__ping_view__descriptor,
    &kvstore__v1__get_request__descriptor,
    &kvstore__v1__set_request__descriptor,
    &kvstore__v1__clear_request__descriptor,
    &kvstore__v1__stats_request__descriptor,
    &kvstore__v1__auth_request__descriptor,
    &kvstore__v1__range_request__descriptor,
    &kvstore__v1__clear_range_request__descriptor,
    &kvstore__v1__compare__descriptor,
    &kvstore__v1__txn_request__descriptor,
    NULL,
};

/* Whether field FD holds the same value in A and B. */
static int same_field(const ProtobufCFieldDescriptor *fd, const uint8_t *a, const uint8_t *b)
{
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t ca, cb;
        memcpy(&ca, a + fd->quantifier_offset, sizeof ca);
        memcpy(&cb, b + fd->quantifier_offset, sizeof cb);
        if (ca != cb)
            return 0;
        if (ca != fd->id)
            return 1;           /* another member's bytes */
    } else if (fd->label == PROTOBUF_C_LABEL_OPTIONAL &&
        memcmp(a + fd->quantifier_offset, b + fd->quantifier_offset, sizeof(protobuf_c_boolean))) {
        return 0;
    }
    switch (fd->type) {
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *x = (const void *)(a + fd->offset);
        const ProtobufCBinaryData *y = (const void *)(b + fd->offset);
        return x->len == y->len && (x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
        return memcmp(a + fd->offset, b + fd->offset, 8) == 0;
    case PROTOBUF_C_TYPE_BOOL:
        return memcmp(a + fd->offset, b + fd->offset, sizeof(protobuf_c_boolean)) == 0;
    default:
        return memcmp(a + fd->offset, b + fd->offset, 4) == 0;
    }
}

/* pbview's memory here: the one block a message takes, kept in *DATA. */
static void *one_alloc(void *data, size_t size)
{
    void **block = data;

    *block = malloc(size);
    return *block;
}

static void one_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

int kv_wire_pbview_agrees(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len)
{
    void *block = NULL;
    ProtobufCAllocator one = { one_alloc, one_free, &block };
    ProtobufCMessage *theirs = protobuf_c_message_unpack(desc, NULL, len, buf);
    ProtobufCMessage *ours = NULL;
    int rc = kv_pbview_unpack(desc, &one, buf, len, &ours);

    if (rc > 0) {               /* the server leaves this one to protobuf-c */
        free(block);
        if (theirs)
            protobuf_c_message_free_unpacked(theirs, NULL);
        return 1;
    }
    if (rc < 0)
        ours = NULL;

    if (!ours && theirs && kv_wire_stricter_than_protobuf_c(buf, len))
        rc = 0;
    else if ((ours != NULL) != (theirs != NULL))
        rc = -1;
    else
        rc = ours != NULL;
    for (unsigned i = 0; rc == 1 && i < desc->n_fields; i++)
        if (!same_field(&desc->fields[i], (const uint8_t *)ours, (const uint8_t *)theirs))
            rc = -1;
    if (rc < 0) {
        fprintf(stderr, "pbview and protobuf-c differ on a %zu-byte %s: ours %s, theirs %s:",
                len, desc->name, ours ? "accepts" : "refuses", theirs ? "accepts" : "refuses");
        for (size_t i = 0; i < len && i < 64; i++)
            fprintf(stderr, " %02x", buf[i]);
        fprintf(stderr, "\n");
    }
    free(block);
    if (theirs)
        protobuf_c_message_free_unpacked(theirs, NULL);
    return rc;
}
