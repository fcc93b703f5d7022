/* auth.c - token loading and constant-time comparison, on libsodium. */
#include <stdio.h>
#include <string.h>
#include <sodium.h>
#include "auth.h"
#include "token.h"

int kv_auth_load(kv_auth *a, const char *path, char *err, size_t errlen)
{
    uint8_t token[KV_TOKEN_MAX];
    size_t n;

    if (sodium_init() < 0) {
        snprintf(err, errlen, "cannot initialise libsodium");
        return -1;
    }
    if (kv_token_read(path, token, &n, err, errlen) < 0)
        return -1;
    crypto_generichash(a->digest, sizeof a->digest, token, n, NULL, 0);
    sodium_memzero(token, sizeof token);
    return 0;
}

int kv_auth_check(const kv_auth *a, const uint8_t *token, size_t len)
{
    uint8_t d[sizeof a->digest];

    crypto_generichash(d, sizeof d, token, len, NULL, 0);
    return sodium_memcmp(d, a->digest, sizeof d) == 0;
}
