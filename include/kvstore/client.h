/* kvstore/client.h - the C client library of kvstore.
 *
 * Two layers:
 *  - kv_client_service() hands out a ProtobufCService for the KV service, so
 *    callers use protoc-c's generated stubs directly:
 *        kvstore__v1__kv__get(kv_client_service(c), &req, on_get, &data);
 *    The closure receives the decoded response, or NULL when the call failed;
 *    kv_client_last_status()/kv_client_last_message() then say why.
 *  - A blocking convenience API (kv_client_ping/get/set/clear) on top.
 *
 * Calls are synchronous: the closure has run when the stub returns. Between
 * kv_client_pipeline_begin() and kv_client_pipeline_end() calls are queued
 * and sent without waiting; their closures run in call order, at the latest
 * inside _end() (earlier when a large batch needs its answers read to make
 * room). Inside a closure, kv_client_last_status() is that call's status.
 *
 * A kv_client is one TCP connection and is not thread-safe: use one per
 * thread. All functions are safe to call after the connection broke; they
 * fail with KV_UNAVAILABLE. */
#ifndef KVSTORE_CLIENT_H
#define KVSTORE_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include <kvstore/status.h>
#include <kvstore/v1/kv.pb-c.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The server's default port, used when an endpoint names none. */
#define KV_DEFAULT_PORT 7379
#define KV_DEFAULT_HOST "127.0.0.1"

typedef struct kv_client kv_client;

/* Connects to ENDPOINT ("HOST:PORT", "HOST", "[V6ADDR]:PORT"; NULL means
 * 127.0.0.1:7379; a port that is not 0 to 65535 in decimal digits is
 * refused before connecting). TIMEOUT_MS bounds the connect and,
 * afterwards, each call (0 means no timeout). Returns a client the caller
 * frees with kv_client_free(), or NULL with a one-line reason in ERR
 * (ERRLEN bytes, may be NULL). */
kv_client *kv_client_connect(const char *endpoint, int timeout_ms,
                             char *err, size_t errlen);

/* Closes the connection and frees the client. Queued pipelined calls that
 * were never flushed get closure(NULL). Accepts NULL. */
void kv_client_free(kv_client *c);

/* Changes the per-call timeout (milliseconds, 0 = none). */
void kv_client_set_timeout(kv_client *c, int timeout_ms);

/* The KV service as a ProtobufCService, for protoc-c's generated stubs
 * (kvstore__v1__kv__ping/get/set/clear). Owned by C; valid until
 * kv_client_free(). Each closure gets a response message owned by the
 * library and freed after the closure returns (copy what you keep), or NULL
 * on failure. */
ProtobufCService *kv_client_service(kv_client *c);

/* Status and message of the last finished call (KV_OK and "" after a
 * success). The message is owned by C and valid until the next call. */
kv_status kv_client_last_status(const kv_client *c);
const char *kv_client_last_message(const kv_client *c);

/* Pipelining. After _begin(), stub calls are queued and written without
 * waiting; _end() sends what is left, reads every answer and runs the
 * remaining closures in call order. A timeout or a lost connection fails
 * every call still in flight (closure(NULL)). Returns KV_OK when every call got an answer
 * (each answer may still be an error status, seen by its closure), or the
 * transport error that failed the remaining calls. */
void kv_client_pipeline_begin(kv_client *c);
kv_status kv_client_pipeline_end(kv_client *c);

/* Sends one call by method path ("/kvstore.v1.KV/Get") with a raw payload
 * and waits for its answer; for tools and tests that speak to methods this
 * header does not know. On return *RESP_PAYLOAD (malloc'd, caller frees;
 * NULL when empty) and *RESP_LEN hold the answer's payload. Returns the
 * answer's status; its message is kv_client_last_message(). */
kv_status kv_client_call_raw(kv_client *c, const char *method,
                             const uint8_t *payload, size_t len,
                             uint8_t **resp_payload, size_t *resp_len);

/* Blocking convenience API. Each returns KV_OK or the failure status (its
 * message is kv_client_last_message()). Out-buffers are malloc'd and the
 * caller frees them; on failure they are set to NULL/0. */

/* *REPLY is a NUL-terminated copy of the answer ("PONG" for an empty or
 * NULL MESSAGE). */
kv_status kv_client_ping(kv_client *c, const char *message, char **reply);

kv_status kv_client_set(kv_client *c, const void *key, size_t klen,
                        const void *value, size_t vlen);

/* KV_NOT_FOUND when the key is absent. *VALUE is NUL-terminated for
 * convenience (not counted in *VLEN). */
kv_status kv_client_get(kv_client *c, const void *key, size_t klen,
                        uint8_t **value, size_t *vlen);

/* *FOUND says whether the key existed; VALUE/VLEN (may be NULL) receive the
 * old value as kv_client_get's do. */
kv_status kv_client_clear(kv_client *c, const void *key, size_t klen,
                          int *found, uint8_t **value, size_t *vlen);

/* Presents TOKEN[0..LEN) to a server started with --auth-token-file; until
 * this succeeds every other call is KV_UNAUTHENTICATED. A wrong token is
 * KV_UNAUTHENTICATED (the server hangs up after a few). OK and a no-op on a
 * server without a token. */
kv_status kv_client_auth(kv_client *c, const void *token, size_t len);

/* Reads the token from PATH as kvstored reads --auth-token-file (the first
 * line of a regular file without its newline and one '\r' before it, 1 to
 * 4095 bytes; docs/PROTOCOL.md) and calls kv_client_auth() with it.
 * KV_INVALID_ARGUMENT when the file cannot be read, is not a regular file,
 * or its first line is empty or too long (the message says why). */
kv_status kv_client_auth_file(kv_client *c, const char *path);

/* The library's version string ("0.1.0"). */
const char *kv_client_version(void);

#ifdef __cplusplus
}
#endif
#endif
