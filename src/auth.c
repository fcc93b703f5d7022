/* auth.c - token loading and constant-time comparison, on libsodium. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sodium.h>
#include "auth.h"

int kv_auth_load(kv_auth *a, const char *path, char *err, size_t errlen)
{
    char buf[4096];
    FILE *f;
    size_t n;

    if (sodium_init() < 0) {
        snprintf(err, errlen, "cannot initialise libsodium");
        return -1;
    }
    f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read token file %s: %s", path, strerror(errno));
        return -1;
    }
    n = fread(buf, 1, sizeof buf, f);
    int too_long = n == sizeof buf;
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (too_long || n == 0) {
        snprintf(err, errlen, "token file %s must hold one token of 1 to %zu bytes",
                 path, sizeof buf - 1);
        return -1;
    }
    crypto_generichash(a->digest, sizeof a->digest, (const unsigned char *)buf, n, NULL, 0);
    sodium_memzero(buf, sizeof buf);
    return 0;
}

int kv_auth_check(const kv_auth *a, const uint8_t *token, size_t len)
{
    uint8_t d[sizeof a->digest];

    crypto_generichash(d, sizeof d, token, len, NULL, 0);
    return sodium_memcmp(d, a->digest, sizeof d) == 0;
}
