/* auth.h - the optional shared-secret token (--auth-token-file): loading it
 * and checking a presented token in constant time. */
#ifndef KV_AUTH_H
#define KV_AUTH_H

#include <stddef.h>
#include <stdint.h>

/* A connection may fail Auth this many times; the next failure closes it. */
#define KV_AUTH_MAX_FAILURES 3

typedef struct kv_auth {
    uint8_t digest[32];     /* BLAKE2b of the token; the token is not kept */
} kv_auth;

/* Reads the token from PATH with kv_token_read (token.h: the first line of
 * a regular file, 1 to 4095 bytes) and keeps only its digest. Returns 0, or
 * -1 with a one-line reason in ERR. */
int kv_auth_load(kv_auth *a, const char *path, char *err, size_t errlen);

/* Whether TOKEN[0..LEN) is the configured token. Takes the same time
 * whatever the input: both sides are hashed, then compared with
 * sodium_memcmp, so neither content nor length leaks. */
int kv_auth_check(const kv_auth *a, const uint8_t *token, size_t len);

#endif
