/* wire.c - encodes kvbench's request templates and reads answers in place.
 * Owns the template bytes; the receive buffers belong to run.c. The few
 * protobuf fields involved are written and read by hand so that the hot
 * path neither allocates nor walks protobuf-c descriptors. */
#include <stdlib.h>
#include <string.h>
#include "frame.h"
#include "wire.h"

static const struct {
    const char *path, *name, *title;
} methods[KB_METHOD_COUNT] = {
    [KB_PING] = { "/kvstore.v1.KV/Ping", "ping", "PING" },
    [KB_SET] = { "/kvstore.v1.KV/Set", "set", "SET" },
    [KB_GET] = { "/kvstore.v1.KV/Get", "get", "GET" },
    [KB_CLEAR] = { "/kvstore.v1.KV/Clear", "clear", "CLEAR" },
};

const char *kb_wire_method_path(kb_method m) { return methods[m].path; }
const char *kb_wire_method_name(kb_method m) { return methods[m].name; }
const char *kb_wire_method_title(kb_method m) { return methods[m].title; }

/* Protobuf tags (field number << 3 | wire type) used below. */
#define TAG_VARINT(f) ((uint8_t)((f) << 3 | 0))
#define TAG_BYTES(f) ((uint8_t)((f) << 3 | 2))

/* A length-delimited field: tag, length, then LEN bytes at P (copied when
 * P is not NULL). The frame prefix encoder is the varint encoder we need.
 * Returns the bytes written at OUT. */
static size_t put_bytes_field(uint8_t *out, unsigned field, const void *p, size_t len)
{
    size_t n = 0;

    out[n++] = TAG_BYTES(field);
    n += kv_frame_put_prefix(out + n, (uint32_t)len);
    if (p)
        memcpy(out + n, p, len);
    return n + len;
}

int kb_wire_tmpl_init(kb_tmpl *t, kb_method m, size_t value_len)
{
    const char *path = kb_wire_method_path(m);
    size_t path_len = strlen(path);
    uint8_t key[KB_KEY_LEN];
    size_t payload_len = 0, body_len, n = 0;

    memset(t, 0, sizeof *t);
    t->method = m;
    t->value_len = value_len;
    t->value = malloc(value_len ? value_len : 1);
    if (!t->value)
        return -1;
    memset(t->value, 'x', value_len);
    memcpy(key, KB_KEY_PREFIX, 4);
    kb_wire_put_key(key + 4, 0);

    /* Payload: PingRequest{} is empty; Get/Clear carry {key}; Set adds the
     * value (left out when empty, as proto3 encoders do). */
    if (m != KB_PING)
        payload_len = 2 + KB_KEY_LEN;
    if (m == KB_SET && value_len)
        payload_len += 1 + kv_frame_prefix_size((uint32_t)value_len) + value_len;
    body_len = 1 + 4 + 1 + kv_frame_prefix_size((uint32_t)path_len) + path_len;
    if (payload_len)
        body_len += 1 + kv_frame_prefix_size((uint32_t)payload_len) + payload_len;

    t->bytes = malloc(KV_FRAME_PREFIX_MAX + body_len);
    if (!t->bytes) {
        free(t->value);
        t->value = NULL;
        return -1;
    }
    uint8_t *b = t->bytes;
    n += kv_frame_put_prefix(b, (uint32_t)body_len);
    b[n++] = TAG_VARINT(1);
    t->id_off = n;
    kb_wire_put_id(b + n, KB_ID_MIN);
    n += 4;
    n += put_bytes_field(b + n, 2, path, path_len);
    if (payload_len) {
        n += put_bytes_field(b + n, 3, NULL, payload_len) - payload_len;
        n += put_bytes_field(b + n, 1, key, KB_KEY_LEN);
        t->key_off = n - KB_KEY_DIGITS;
        if (m == KB_SET && value_len)
            n += put_bytes_field(b + n, 2, t->value, value_len);
    }
    t->len = n;
    return 0;
}

void kb_wire_tmpl_free(kb_tmpl *t)
{
    free(t->bytes);
    free(t->value);
    memset(t, 0, sizeof *t);
}

/* Reads a varint at *P (before END) into *V and advances *P. Returns 0, or
 * -1 when it is cut off or longer than 10 bytes. */
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;

    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*p == end)
            return -1;
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* One field of a message: its number and, for the wire types we meet, its
 * value. Returns 1 with the field read, 0 at the end, -1 when malformed. */
typedef struct pb_field {
    uint64_t number, varint;
    const uint8_t *bytes;
    size_t len;
    int is_bytes;
} pb_field;

static int next_field(const uint8_t **p, const uint8_t *end, pb_field *f)
{
    uint64_t key, len;

    if (*p == end)
        return 0;
    if (get_varint(p, end, &key) < 0)
        return -1;
    f->number = key >> 3;
    f->is_bytes = 0;
    switch (key & 7) {
    case 0:
        return get_varint(p, end, &f->varint) < 0 ? -1 : 1;
    case 1:
        if (end - *p < 8)
            return -1;
        *p += 8;
        return 1;
    case 2:
        if (get_varint(p, end, &len) < 0 || len > (uint64_t)(end - *p))
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
    pb_field f;
    int r;

    memset(a, 0, sizeof *a);
    while ((r = next_field(&p, end, &f)) == 1) {
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
    pb_field f;
    int r, found = 0;

    *p = NULL;
    *len = 0;
    if (!cur)
        return 0;
    while ((r = next_field(&cur, end, &f)) == 1) {
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
