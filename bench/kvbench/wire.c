/* wire.c - encodes kvbench's request templates and reads answers in place.
 * Owns the template bytes; the receive buffers belong to run.c. The few
 * protobuf fields involved are written and read by hand so that the hot
 * path neither allocates nor walks protobuf-c descriptors. */
#include <stdlib.h>
#include <string.h>
#include <kvstore/status.h>
#include "frame.h"
#include "proto.h"
#include "varint.h"
#include "wire.h"

static const struct {
    const char *path, *name, *title;
} methods[KB_METHOD_COUNT] = {
    [KB_PING] = { "/kvstore.v1.KV/Ping", "ping", "PING" },
    [KB_SET] = { "/kvstore.v1.KV/Set", "set", "SET" },
    [KB_GET] = { "/kvstore.v1.KV/Get", "get", "GET" },
    [KB_CLEAR] = { "/kvstore.v1.KV/Clear", "clear", "CLEAR" },
    [KB_RANGE] = { "/kvstore.v1.KV/Range", "range", "RANGE" },
};

const char *kb_wire_method_path(kb_method m) { return methods[m].path; }
const char *kb_wire_method_name(kb_method m) { return methods[m].name; }
const char *kb_wire_method_title(kb_method m) { return methods[m].title; }

/* Protobuf tags (field number << 3 | wire type) used below. */
#define TAG_VARINT(f) ((uint8_t)((f) << 3 | 0))
#define TAG_BYTES(f) ((uint8_t)((f) << 3 | 2))

/* A length-delimited field at OUT: tag, length, then LEN bytes from P
 * (left for the caller to write when P is NULL). Returns the byte after
 * the field. */
static uint8_t *put_bytes_field(uint8_t *out, unsigned field, const void *p, size_t len)
{
    *out++ = TAG_BYTES(field);
    out = kv_varint_put(out, len);
    if (p)
        memcpy(out, p, len);
    return out + len;
}

/* The bytes put_bytes_field() writes for LEN bytes of content. */
static size_t bytes_field_size(size_t len)
{
    return 1 + kv_varint_size(len) + len;
}

int kb_wire_tmpl_init(kb_tmpl *t, kb_method m, size_t value_len, uint64_t ttl_ms)
{
    const char *path = kb_wire_method_path(m);
    size_t path_len = strlen(path);
    uint8_t key[KB_KEY_LEN];
    size_t payload_len = 0, body_len;

    memset(t, 0, sizeof *t);
    if (m == KB_RANGE)
        return -1;
    t->method = m;
    t->value_len = value_len;
    t->value = malloc(value_len ? value_len : 1);
    if (!t->value)
        return -1;
    memset(t->value, 'x', value_len);
    memcpy(key, KB_KEY_PREFIX, 4);
    kb_wire_put_key(key + 4, 0);

    /* Payload: PingRequest{} is empty; Get/Clear carry {key}; Set adds the
     * value (left out when empty, as proto3 encoders do) and, with a TTL,
     * SetRequest.ttl_ms (field 3, a varint). */
    if (m != KB_PING)
        payload_len = bytes_field_size(KB_KEY_LEN);
    if (m == KB_SET && value_len)
        payload_len += bytes_field_size(value_len);
    if (m == KB_SET && ttl_ms)
        payload_len += 1 + kv_varint_size(ttl_ms);
    body_len = 1 + 4 + bytes_field_size(path_len);
    if (payload_len)
        body_len += bytes_field_size(payload_len);

    t->bytes = malloc(KV_FRAME_PREFIX_MAX + body_len);
    if (!t->bytes) {
        free(t->value);
        t->value = NULL;
        return -1;
    }
    uint8_t *b = t->bytes;
    b += kv_frame_put_prefix(b, (uint32_t)body_len);
    *b++ = TAG_VARINT(1);
    t->id_off = (size_t)(b - t->bytes);
    kb_wire_put_id(b, KB_ID_MIN);
    b += 4;
    b = put_bytes_field(b, 2, path, path_len);
    if (payload_len) {
        b = put_bytes_field(b, 3, NULL, payload_len) - payload_len;
        b = put_bytes_field(b, 1, key, KB_KEY_LEN);
        t->key_off = (size_t)(b - t->bytes) - KB_KEY_DIGITS;
        if (m == KB_SET && value_len)
            b = put_bytes_field(b, 2, t->value, value_len);
        if (m == KB_SET && ttl_ms) {
            *b++ = TAG_VARINT(3);
            b = kv_varint_put(b, ttl_ms);
        }
    }
    t->len = (size_t)(b - t->bytes);
    return 0;
}

void kb_wire_tmpl_free(kb_tmpl *t)
{
    free(t->bytes);
    free(t->value);
    memset(t, 0, sizeof *t);
}

int kb_pb_next_field(const uint8_t **p, const uint8_t *end, kb_pb_field *f)
{
    uint64_t key, len;

    if (*p == end)
        return 0;
    if (kv_varint_get(p, end, KV_VARINT_MAX, &key) < 0)
        return -1;
    f->number = key >> 3;
    f->is_bytes = 0;
    switch (key & 7) {
    case 0:
        return kv_varint_get(p, end, KV_VARINT_MAX, &f->varint) < 0 ? -1 : 1;
    case 1:
        if (end - *p < 8)
            return -1;
        *p += 8;
        return 1;
    case 2:
        if (kv_varint_get(p, end, KV_VARINT_MAX, &len) < 0 || len > (uint64_t)(end - *p))
            return -1;
        f->bytes = *p;
        f->len = (size_t)len;
        f->is_bytes = 1;
        *p += len;
        return 1;
    case 5:
        if (end - *p < 4)
            return -1;
        *p += 4;
        return 1;
    default:
        return -1;
    }
}

int kb_wire_answer_parse(const uint8_t *p, size_t n, kb_answer *a)
{
    const uint8_t *end = p + n;
    kb_pb_field f;
    int r;

    memset(a, 0, sizeof *a);
    while ((r = kb_pb_next_field(&p, end, &f)) == 1) {
        switch (f.number) {
        case 1: if (f.is_bytes) return -1; a->id = f.varint; break;
        case 2: if (f.is_bytes) return -1; a->code = f.varint; break;
        case 3:
            if (!f.is_bytes) return -1;
            a->message = f.bytes;
            a->message_len = f.len;
            break;
        case 4:
            if (!f.is_bytes) return -1;
            a->payload = f.bytes;
            a->payload_len = f.len;
            break;
        default: break;
        }
    }
    return r;
}

/* Finds the last occurrence of bytes field NUMBER in a payload (protobuf:
 * the last one wins). Returns 1 found, 0 absent (*P = NULL, *LEN = 0), -1
 * when the payload is malformed. */
static int find_bytes(const kb_answer *a, uint64_t number, const uint8_t **p, size_t *len)
{
    const uint8_t *cur = a->payload, *end = a->payload + a->payload_len;
    kb_pb_field f;
    int r, found = 0;

    *p = NULL;
    *len = 0;
    if (!cur)
        return 0;
    while ((r = kb_pb_next_field(&cur, end, &f)) == 1) {
        if (f.number != number)
            continue;
        if (!f.is_bytes)
            return -1;
        *p = f.bytes;
        *len = f.len;
        found = 1;
    }
    return r < 0 ? -1 : found;
}

const char *kb_wire_answer_check(const kb_tmpl *t, const uint8_t *req, const kb_answer *a)
{
    const uint8_t *v;
    size_t len;

    switch (t->method) {
    case KB_PING:
        if (find_bytes(a, 1, &v, &len) < 0)
            return "Ping answer payload is not a PingResponse";
        if (len != 4 || memcmp(v, "PONG", 4) != 0)
            return "Ping answer is not \"PONG\"";
        return NULL;
    case KB_SET:
        if (find_bytes(a, 1, &v, &len) < 0)
            return "Set answer payload is not a SetResponse";
        if (len != KB_KEY_LEN || memcmp(v, req + t->key_off - 4, KB_KEY_LEN) != 0)
            return "Set answer does not carry the key that was set";
        return NULL;
    case KB_GET:
        if (find_bytes(a, 1, &v, &len) < 0)
            return "Get answer payload is not a GetResponse";
        if (len != t->value_len || (len && memcmp(v, t->value, len) != 0))
            return "Get answer is not the value that was stored";
        return NULL;
    case KB_CLEAR:
        if (find_bytes(a, 2, &v, &len) < 0)
            return "Clear answer payload is not a ClearResponse";
        return NULL;
    default:
        return "answer to an unknown method";
    }
}

/* kvstore's answer reader for the protocol table: one frame, its id
 * checked against the request's (the server answers in request order),
 * then its status and payload. */
static ptrdiff_t kvstore_answer(const kb_tmpl *t, const uint8_t *req, const uint8_t *p, size_t n,
                                size_t *need, kb_reply *r)
{
    size_t off = 0, len = 0;
    kv_frame_result fr = kv_frame_decode(p, n, KB_ANSWER_MAX, &off, &len);
    kb_answer a;
    const uint8_t *idp = req + t->id_off;
    uint64_t want_id = 0;

    memset(r, 0, sizeof *r);
    if (fr == KV_FRAME_PARTIAL) {
        *need = len ? off + len : 0;
        return 0;
    }
    if (fr != KV_FRAME_OK) {
        r->what = "the server sent a malformed or oversized frame";
        return -1;
    }
    if (kb_wire_answer_parse(p + off, len, &a) < 0) {
        r->what = "the server sent a frame that is not an RpcResponse";
        return -1;
    }
    kv_varint_get(&idp, idp + 4, 4, &want_id);
    if (a.id != want_id) {
        /* Said with the answer's status and text: a frame with id 0 is
         * the server refusing the connection (too many clients). */
        r->what = a.id ? "the server answered with an id other than the one due"
                       : "the server answered with id 0, to no request";
        r->detail = a.message;
        r->detail_len = a.message_len;
        return -1;
    }
    if (a.code != 0) {
        r->verdict = KB_VERDICT_ERROR;
        r->what = kv_status_name((int)a.code);
        r->detail = a.message;
        r->detail_len = a.message_len;
    } else if ((r->what = kb_wire_answer_check(t, req, &a)) != NULL) {
        r->verdict = KB_VERDICT_WRONG;
    } else {
        r->verdict = KB_VERDICT_OK;
    }
    return (ptrdiff_t)(off + len);
}

const kb_proto kb_proto_kvstore = {
    .name = "kvstore",
    .has_stats = 1,
    .needs_keys = 1,
    .tmpl_init = kb_wire_tmpl_init,
    .answer = kvstore_answer,
};
