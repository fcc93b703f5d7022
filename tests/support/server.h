/* server.h - the one way tests start a real kvstored: on a free port, wait
 * until it says it is listening, stop it and check how it exited. Also raw
 * socket helpers for tests that must send bytes no client would. */
#ifndef KV_TEST_SERVER_H
#define KV_TEST_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "kvstore/v1/kv.pb-c.h"

typedef struct kv_test_server {
    pid_t pid;
    int port;
    char endpoint[64];      /* "127.0.0.1:PORT" */
    char dir[64];           /* the engine's fresh --dir, removed on stop; "" if none */
} kv_test_server;

/* Starts $KVSTORED --listen 127.0.0.1:0, then the engine flags of
 * $KVSTORED_ENGINE when set (--engine NAME and, for any engine but memory,
 * --dir of a fresh temporary directory), then EXTRA (NULL-terminated, may
 * be NULL; it comes last, so a test's own --engine or --dir wins), and
 * waits up to 10 s for "listening on". Returns 0 or -1. */
int kv_test_server_start(kv_test_server *s, const char *const *extra);

/* SIGTERM, then waits up to 10 s; removes the temporary --dir. Returns the
 * exit status, or -1 when it did not exit by itself (it is then killed) or
 * died of a signal. */
int kv_test_server_stop(kv_test_server *s);

/* The engine the live suites run against: $KVSTORED_ENGINE, or "memory". */
const char *kv_test_engine(void);

/* A blocking TCP connection to PORT with 5 s send/receive timeouts, or -1. */
int kv_test_connect(int port);

/* Writes all N bytes. Returns 0 or -1. */
int kv_test_send_all(int fd, const void *p, size_t n);

/* Sends an RpcRequest {ID, METHOD, PAYLOAD} as one frame. Returns 0 or -1. */
int kv_test_send_request(int fd, uint64_t id, const char *method,
                         const void *payload, size_t len);

/* Reads one RpcResponse frame. Returns it (free with
 * kvstore__v1__rpc_response__free_unpacked(r, NULL)), or NULL on EOF,
 * timeout or garbage. */
Kvstore__V1__RpcResponse *kv_test_read_response(int fd);

/* Whether the server closed FD: reads until EOF (1), data or timeout (0). */
int kv_test_peer_closed(int fd);

#endif
