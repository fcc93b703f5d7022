/* simple.c - the blocking convenience API (kv_client_ping/get/set/clear),
 * written on the generated stubs exactly as a library user would. Owns
 * nothing: results are copied into malloc'd buffers for the caller. */
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
    if (m)
        keep(data, m->value.data, m->value.len);
}

static void on_set(const Kvstore__V1__SetResponse *m, void *data)
{
    if (m)
        ((result *)data)->ok = 1;
}

static void on_clear(const Kvstore__V1__ClearResponse *m, void *data)
{
    if (m) {
        keep(data, m->value.data, m->value.len);
        ((result *)data)->found = m->found;
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

kv_status kv_client_set(kv_client *c, const void *key, size_t klen,
                        const void *value, size_t vlen)
{
    Kvstore__V1__SetRequest req = KVSTORE__V1__SET_REQUEST__INIT;
    result r = { 0 };

    req.key.data = (uint8_t *)key;
    req.key.len = klen;
    req.value.data = (uint8_t *)value;
    req.value.len = vlen;
    kvstore__v1__kv__set(kv_client_service(c), &req, on_set, &r);
    if (r.ok)
        return KV_OK;
    return kv_client_last_status(c) != KV_OK ? kv_client_last_status(c) : KV_INTERNAL;
}

kv_status kv_client_get(kv_client *c, const void *key, size_t klen,
                        uint8_t **value, size_t *vlen)
{
    Kvstore__V1__GetRequest req = KVSTORE__V1__GET_REQUEST__INIT;
    result r = { 0 };

    req.key.data = (uint8_t *)key;
    req.key.len = klen;
    kvstore__v1__kv__get(kv_client_service(c), &req, on_get, &r);
    return deliver(c, &r, value, vlen);
}

kv_status kv_client_clear(kv_client *c, const void *key, size_t klen,
                          int *found, uint8_t **value, size_t *vlen)
{
    Kvstore__V1__ClearRequest req = KVSTORE__V1__CLEAR_REQUEST__INIT;
    result r = { 0 };

    req.key.data = (uint8_t *)key;
    req.key.len = klen;
    kvstore__v1__kv__clear(kv_client_service(c), &req, on_clear, &r);
    kv_status st = deliver(c, &r, value, vlen);
    if (found)
        *found = st == KV_OK && r.found;
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
