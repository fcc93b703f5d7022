/* simple.c - the blocking convenience API (kv_client_ping/get/set/clear,
 * their revisions and times to live, conditional writes, Touch, ranges and
 * their paging, ClearRange and Txn), written on the generated stubs exactly as a library user
 * would, except that Range and Txn answers are handed over without a copy
 * (kvc_call_owned). Owns nothing: results belong to the caller. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <kvstore/client.h>
#include "internal.h"
#include "token.h"

/* What a closure saw. */
typedef struct result {
    int ok;
    int found;
    uint8_t *data;
    size_t len;
    kv_client_revs revs;    /* get */
    uint64_t ttl_ms;        /* get: left to live */
    uint64_t revision;      /* set, clear: of the write */
} result;

/* Copies N bytes into R as a NUL-terminated buffer. */
static void keep(result *r, const void *p, size_t n)
{
    r->ok = 1;
    r->data = malloc(n + 1);
    if (!r->data) {
        r->ok = 0;
        return;
    }
    if (n)
        memcpy(r->data, p, n);
    r->data[n] = 0;
    r->len = n;
}

static void on_ping(const Kvstore__V1__PingResponse *m, void *data)
{
    if (m)
        keep(data, m->message, strlen(m->message));
}

static void on_get(const Kvstore__V1__GetResponse *m, void *data)
{
    result *r = data;

    if (!m)
        return;
    keep(r, m->value.data, m->value.len);
    r->revs = (kv_client_revs){ m->create_revision, m->mod_revision, m->version, m->revision };
    r->ttl_ms = m->ttl_ms;
}

static void on_set(const Kvstore__V1__SetResponse *m, void *data)
{
    if (m) {
        ((result *)data)->ok = 1;
        ((result *)data)->revision = m->revision;
    }
}

static void on_clear(const Kvstore__V1__ClearResponse *m, void *data)
{
    if (m) {
        keep(data, m->value.data, m->value.len);
        ((result *)data)->found = m->found;
        ((result *)data)->revision = m->revision;
    }
}

/* Hands R's buffer to the caller (or frees it), returns the call status. */
static kv_status deliver(kv_client *c, result *r, uint8_t **out, size_t *outlen)
{
    kv_status st = r->ok ? KV_OK : kv_client_last_status(c);

    if (st == KV_OK && r->ok && !r->data)
        st = KV_RESOURCE_EXHAUSTED;
    if (st != KV_OK) {
        free(r->data);
        r->data = NULL;
        r->len = 0;
    }
    if (out)
        *out = r->data;
    else
        free(r->data);
    if (outlen)
        *outlen = r->len;
    return st == KV_OK && !r->ok ? KV_INTERNAL : st;
}

kv_status kv_client_ping(kv_client *c, const char *message, char **reply)
{
    Kvstore__V1__PingRequest req = KVSTORE__V1__PING_REQUEST__INIT;
    result r = { 0 };

    if (message)
        req.message = (char *)message;
    kvstore__v1__kv__ping(kv_client_service(c), &req, on_ping, &r);
    return deliver(c, &r, (uint8_t **)reply, NULL);
}

/* What a conditional write answered with revision 0 means. A server
 * before protocol v2 does not know if_mod_revision: it skips the unknown
 * field and writes unconditionally, answering as for a plain write. A v2
 * server's successful Set always makes a revision (>= 1), and so does its
 * Clear of a key it found, so revision 0 there says the check never ran. */
#define PRE_V2_WRITE "the server does not support conditional writes (a server before " \
                     "protocol v2): the write was applied without its check"

/* Set with TTL_MS and KEEP_TTL, conditional when IF_REV is not NULL. */
static kv_status set_call(kv_client *c, const void *key, size_t klen, const void *value,
                          size_t vlen, uint64_t ttl_ms, int keep_ttl, const uint64_t *if_rev,
                          uint64_t *revision)
{
    Kvstore__V1__SetRequest req = KVSTORE__V1__SET_REQUEST__INIT;
    result r = { 0 };

    req.key.data = (uint8_t *)key;
    req.key.len = klen;
    req.value.data = (uint8_t *)value;
    req.value.len = vlen;
    req.ttl_ms = ttl_ms;
    req.keep_ttl = keep_ttl != 0;
    if (if_rev) {
        req._if_mod_revision_case = KVSTORE__V1__SET_REQUEST___IF_MOD_REVISION_IF_MOD_REVISION;
        req.if_mod_revision = *if_rev;
    }
    kvstore__v1__kv__set(kv_client_service(c), &req, on_set, &r);
    if (r.ok && if_rev && r.revision == 0) {
        r.ok = 0;
        kvc_set_status(c, KV_UNIMPLEMENTED, PRE_V2_WRITE);
    }
    if (revision)
        *revision = r.ok ? r.revision : 0;
    if (r.ok)
        return KV_OK;
    return kv_client_last_status(c) != KV_OK ? kv_client_last_status(c) : KV_INTERNAL;
}

kv_status kv_client_set(kv_client *c, const void *key, size_t klen,
                        const void *value, size_t vlen)
{
    return set_call(c, key, klen, value, vlen, 0, 0, NULL, NULL);
}

kv_status kv_client_set_rev(kv_client *c, const void *key, size_t klen,
                            const void *value, size_t vlen, uint64_t *revision)
{
    return set_call(c, key, klen, value, vlen, 0, 0, NULL, revision);
}

kv_status kv_client_cas(kv_client *c, const void *key, size_t klen,
                        const void *value, size_t vlen, uint64_t if_mod_revision,
                        uint64_t *revision)
{
    return set_call(c, key, klen, value, vlen, 0, 0, &if_mod_revision, revision);
}

kv_status kv_client_set_ttl(kv_client *c, const void *key, size_t klen,
                            const void *value, size_t vlen, uint64_t ttl_ms,
                            int keep_ttl, const uint64_t *if_mod_revision,
                            uint64_t *revision)
{
    return set_call(c, key, klen, value, vlen, ttl_ms, keep_ttl, if_mod_revision, revision);
}

kv_status kv_client_get_ttl(kv_client *c, const void *key, size_t klen,
                            uint8_t **value, size_t *vlen, kv_client_revs *revs,
                            uint64_t *ttl_ms)
{
    Kvstore__V1__GetRequest req = KVSTORE__V1__GET_REQUEST__INIT;
    result r = { 0 };

    req.key.data = (uint8_t *)key;
    req.key.len = klen;
    req.serializable = kvc_serializable(c);
    kvstore__v1__kv__get(kv_client_service(c), &req, on_get, &r);
    kv_status st = deliver(c, &r, value, vlen);
    if (revs)
        *revs = st == KV_OK ? r.revs : (kv_client_revs){ 0 };
    if (ttl_ms)
        *ttl_ms = st == KV_OK ? r.ttl_ms : 0;
    return st;
}

kv_status kv_client_get_rev(kv_client *c, const void *key, size_t klen,
                            uint8_t **value, size_t *vlen, kv_client_revs *revs)
{
    return kv_client_get_ttl(c, key, klen, value, vlen, revs, NULL);
}

kv_status kv_client_get(kv_client *c, const void *key, size_t klen,
                        uint8_t **value, size_t *vlen)
{
    return kv_client_get_ttl(c, key, klen, value, vlen, NULL, NULL);
}

static void on_touch(const Kvstore__V1__TouchResponse *m, void *data)
{
    if (m) {
        ((result *)data)->ok = 1;
        ((result *)data)->found = m->found;
    }
}

kv_status kv_client_touch(kv_client *c, const void *key, size_t klen,
                          uint64_t ttl_ms, int *found)
{
    Kvstore__V1__TouchRequest req = KVSTORE__V1__TOUCH_REQUEST__INIT;
    result r = { 0 };

    req.key.data = (uint8_t *)key;
    req.key.len = klen;
    req.ttl_ms = ttl_ms;
    kvstore__v1__kv__touch(kv_client_service(c), &req, on_touch, &r);
    if (found)
        *found = r.ok && r.found;
    if (r.ok)
        return KV_OK;
    return kv_client_last_status(c) != KV_OK ? kv_client_last_status(c) : KV_INTERNAL;
}

/* Clear, conditional when IF_REV is not NULL. */
static kv_status clear_call(kv_client *c, const void *key, size_t klen, const uint64_t *if_rev,
                            int *found, uint8_t **value, size_t *vlen, uint64_t *revision)
{
    Kvstore__V1__ClearRequest req = KVSTORE__V1__CLEAR_REQUEST__INIT;
    result r = { 0 };

    req.key.data = (uint8_t *)key;
    req.key.len = klen;
    if (if_rev) {
        req._if_mod_revision_case = KVSTORE__V1__CLEAR_REQUEST___IF_MOD_REVISION_IF_MOD_REVISION;
        req.if_mod_revision = *if_rev;
    }
    kvstore__v1__kv__clear(kv_client_service(c), &req, on_clear, &r);
    if (r.ok && if_rev && r.found && r.revision == 0) {
        r.ok = 0;
        kvc_set_status(c, KV_UNIMPLEMENTED, PRE_V2_WRITE);
    }
    kv_status st = deliver(c, &r, value, vlen);
    if (found)
        *found = st == KV_OK && r.found;
    if (revision)
        *revision = st == KV_OK ? r.revision : 0;
    return st;
}

kv_status kv_client_clear(kv_client *c, const void *key, size_t klen,
                          int *found, uint8_t **value, size_t *vlen)
{
    return clear_call(c, key, klen, NULL, found, value, vlen, NULL);
}

kv_status kv_client_clear_rev(kv_client *c, const void *key, size_t klen,
                              int *found, uint8_t **value, size_t *vlen,
                              uint64_t *revision)
{
    return clear_call(c, key, klen, NULL, found, value, vlen, revision);
}

kv_status kv_client_cas_clear(kv_client *c, const void *key, size_t klen,
                              uint64_t if_mod_revision, int *found,
                              uint8_t **value, size_t *vlen, uint64_t *revision)
{
    return clear_call(c, key, klen, &if_mod_revision, found, value, vlen, revision);
}

kv_status kv_client_range(kv_client *c, const Kvstore__V1__RangeRequest *req,
                          Kvstore__V1__RangeResponse **page)
{
    Kvstore__V1__RangeRequest asked = *req;
    ProtobufCMessage *m;

    asked.serializable = req->serializable || kvc_serializable(c);
    kv_status st = kvc_call_owned(c, "Range", &asked.base, &m);

    *page = (Kvstore__V1__RangeResponse *)m;
    return st;
}

/* The first key after every key that starts with P[0..N): P with its
 * trailing 0xff bytes dropped and the last byte left incremented, into
 * OUT. Returns its length; 0 when there is none (P all 0xff, or empty):
 * then the range has no upper bound. */
static size_t prefix_end(const uint8_t *p, size_t n, uint8_t *out)
{
    while (n && p[n - 1] == 0xff)
        n--;
    if (!n)
        return 0;
    memcpy(out, p, n);
    out[n - 1]++;
    return n;
}

/* Copies N bytes of SRC to DST (SRC may be NULL when N is 0) and returns
 * them as a bytes field. */
static ProtobufCBinaryData put_bytes(uint8_t *dst, const uint8_t *src, size_t n)
{
    if (n)
        memcpy(dst, src, n);
    return (ProtobufCBinaryData){ n, dst };
}

int kv_client_range_next(Kvstore__V1__RangeRequest *req,
                         const Kvstore__V1__RangeResponse *page, uint8_t **bounds)
{
    const ProtobufCBinaryData *last;
    ProtobufCBinaryData start, end;
    uint8_t *buf;

    if (!page->more || page->n_kvs == 0)
        return 0;
    last = &page->kvs[page->n_kvs - 1]->key;
    /* The new bounds come from the old ones (which may live in *BOUNDS),
     * the prefix and the last key: copy them all out before freeing. */
    buf = malloc(last->len + 1 + req->start.len + req->end.len + req->prefix.len);
    if (!buf)
        return -1;
    if (req->reverse) {
        const ProtobufCBinaryData *from = req->prefix.len ? &req->prefix : &req->start;
        start = put_bytes(buf, from->data, from->len);
        end = put_bytes(buf + start.len, last->data, last->len);
    } else {
        start = put_bytes(buf, last->data, last->len);
        buf[start.len++] = 0;
        if (req->prefix.len)
            end = (ProtobufCBinaryData){ prefix_end(req->prefix.data, req->prefix.len,
                                                    buf + start.len), buf + start.len };
        else
            end = put_bytes(buf + start.len, req->end.data, req->end.len);
    }
    free(*bounds);
    *bounds = buf;
    req->start = start;
    req->end = end;
    req->prefix = (ProtobufCBinaryData){ 0, NULL };
    return 1;
}

kv_status kv_client_clear_range(kv_client *c, const Kvstore__V1__ClearRangeRequest *req,
                                uint64_t *deleted, uint64_t *revision)
{
    ProtobufCMessage *m;
    kv_status st = kvc_call_owned(c, "ClearRange", &req->base, &m);
    const Kvstore__V1__ClearRangeResponse *r = (const Kvstore__V1__ClearRangeResponse *)m;

    if (deleted)
        *deleted = r ? r->deleted : 0;
    if (revision)
        *revision = r ? r->revision : 0;
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    return st;
}

kv_status kv_client_txn(kv_client *c, const Kvstore__V1__TxnRequest *req,
                        Kvstore__V1__TxnResponse **resp)
{
    ProtobufCMessage *m;
    kv_status st = kvc_call_owned(c, "Txn", &req->base, &m);

    *resp = (Kvstore__V1__TxnResponse *)m;
    return st;
}

static void on_auth(const Kvstore__V1__AuthResponse *m, void *data)
{
    if (m)
        ((result *)data)->ok = 1;
}

kv_status kv_client_auth(kv_client *c, const void *token, size_t len)
{
    Kvstore__V1__AuthRequest req = KVSTORE__V1__AUTH_REQUEST__INIT;
    result r = { 0 };

    req.token.data = (uint8_t *)token;
    req.token.len = len;
    kvstore__v1__kv__auth(kv_client_service(c), &req, on_auth, &r);
    if (r.ok && kvc_keep_token(c, token, len) < 0) {
        kvc_set_status(c, KV_RESOURCE_EXHAUSTED, "client out of memory");
        return KV_RESOURCE_EXHAUSTED;
    }
    if (r.ok)
        return KV_OK;
    return kv_client_last_status(c) != KV_OK ? kv_client_last_status(c) : KV_INTERNAL;
}

kv_status kv_client_auth_file(kv_client *c, const char *path)
{
    uint8_t token[KV_TOKEN_MAX];
    char why[512];
    size_t n;

    if (kv_token_read(path, token, &n, why, sizeof why) < 0) {
        kvc_set_status(c, KV_INVALID_ARGUMENT, "%s", why);
        return KV_INVALID_ARGUMENT;
    }
    kv_status st = kv_client_auth(c, token, n);
    sodium_memzero(token, sizeof token);
    return st;
}
