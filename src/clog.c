/* clog.c - the cluster's log entries as bytes; see clog.h. */
#include "clog.h"
#include "varint.h"

int kv_clog_put_varint(kv_buf *b, uint64_t v)
{
    if (kv_buf_reserve(b, KV_VARINT_MAX) < 0)
        return -1;
    kv_buf_commit(b, (size_t)(kv_varint_put(kv_buf_tail(b), v) - kv_buf_tail(b)));
    return 0;
}

int kv_clog_put_bytes(kv_buf *b, const uint8_t *p, size_t n)
{
    if (kv_clog_put_varint(b, n) < 0)
        return -1;
    return n ? kv_buf_append(b, p, n) : 0;
}

int kv_clog_put_head(kv_buf *b, const kv_clog_head *h)
{
    uint8_t fixed[3] = { KV_CLOG_MAGIC, KV_CLOG_VERSION, (uint8_t)h->kind };

    if (kv_buf_append(b, fixed, sizeof fixed) < 0 || kv_clog_put_varint(b, h->time_ms) < 0
        || kv_clog_put_varint(b, h->origin) < 0)
        return -1;
    return kv_clog_put_varint(b, h->batch);
}

int kv_clog_put_cmd(kv_buf *b, const kv_clog_cmd *c)
{
    if (kv_clog_put_varint(b, c->code) < 0
        || kv_clog_put_bytes(b, c->client_id, c->client_id_len) < 0
        || kv_clog_put_varint(b, c->seq) < 0)
        return -1;
    return kv_clog_put_bytes(b, c->payload, c->payload_len);
}

int kv_clog_pad(kv_buf *b)
{
    static const uint8_t zeros[8];
    size_t n = kv_buf_len(b) % 8;

    return n ? kv_buf_append(b, zeros, 8 - n) : 0;
}

int kv_clog_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    if (*p == end)
        return 0;
    return kv_varint_get(p, end, KV_VARINT_MAX, v) == 0 ? 1 : -1;
}

int kv_clog_get_bytes(const uint8_t **p, const uint8_t *end, const uint8_t **data, size_t *n)
{
    uint64_t len;
    int rc = kv_clog_get_varint(p, end, &len);

    if (rc <= 0)
        return rc;
    if (len > (uint64_t)(end - *p))
        return -1;
    *data = *p;
    *n = (size_t)len;
    *p += len;
    return 1;
}

int kv_clog_get_key(const uint8_t **p, const uint8_t *end, const uint8_t **data, size_t *n)
{
    int rc = kv_clog_get_bytes(p, end, data, n);

    return rc == 1 && *n == 0 ? 0 : rc;
}

int kv_clog_get_head(const uint8_t **p, const uint8_t *end, kv_clog_head *h)
{
    const uint8_t *q = *p;

    if (end - q < 3 || q[0] != KV_CLOG_MAGIC || q[1] != KV_CLOG_VERSION
        || q[2] < KV_CLOG_WRITES || q[2] > KV_CLOG_MEMBER)
        return -1;
    h->kind = (kv_clog_kind)q[2];
    q += 3;
    if (kv_clog_get_varint(&q, end, &h->time_ms) != 1 || kv_clog_get_varint(&q, end, &h->origin) != 1
        || kv_clog_get_varint(&q, end, &h->batch) != 1)
        return -1;
    *p = q;
    return 0;
}

int kv_clog_get_cmd(const uint8_t **p, const uint8_t *end, kv_clog_cmd *c)
{
    uint64_t code;
    int rc = kv_clog_get_varint(p, end, &code);

    if (rc <= 0 || code == 0)
        return rc <= 0 ? rc : 0;
    if (code < KV_CLOG_SET || code > KV_CLOG_TOUCH)
        return -1;
    c->code = (kv_clog_code)code;
    if (kv_clog_get_bytes(p, end, &c->client_id, &c->client_id_len) != 1
        || c->client_id_len > KV_CLOG_MAX_CLIENT_ID
        || kv_clog_get_varint(p, end, &c->seq) != 1
        || kv_clog_get_bytes(p, end, &c->payload, &c->payload_len) != 1)
        return -1;
    return 1;
}
