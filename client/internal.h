/* internal.h - what the files of the client library share with each other
 * (client.c: the connection; simple.c: the blocking helpers; watch.c: the
 * watches) and with the fuzz harness, and nothing else: none of it is
 * exported from the shared library. */
#ifndef KV_CLIENT_INTERNAL_H
#define KV_CLIENT_INTERNAL_H

#include <kvstore/client.h>

/* Keeps a copy of TOKEN[0..LEN), which kv_client_auth() just had
 * accepted, to present again on each new connection (wiped when replaced
 * or freed). Returns 0 or -1 (out of memory). */
int kvc_keep_token(kv_client *c, const void *token, size_t len);

/* Whether kv_client_set_serializable() turned serializable reads on. */
int kvc_serializable(const kv_client *c);

/* Records ST and a printf-style reason as the last call's outcome. */
void kvc_set_status(kv_client *c, kv_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Calls the KV method named METHOD ("Range") with INPUT and waits for its
 * answer, after every call queued before it. Returns KV_OK with *OUT the
 * decoded answer, which the caller owns and frees with
 * protobuf_c_message_free_unpacked(*OUT, NULL): no copy is made, unlike a
 * stub's closure. Else the failure (kv_client_last_message() says why)
 * and *OUT NULL. KV_INTERNAL when METHOD does not take INPUT's type. */
kv_status kvc_call_owned(kv_client *c, const char *method, const ProtobufCMessage *input,
                         ProtobufCMessage **out);

/* Queues a call of the KV method METHOD with INPUT whose answer goes to
 * CLOSURE as a stub's does (decoded, freed after CLOSURE returns; NULL on
 * failure). *ID (may be NULL) receives the call's id as soon as it is
 * queued, before any answer is read (0 when it could not be queued: the
 * closure has run with NULL). With WAIT, waits for the answer after every
 * call queued before it; without, returns at once (the call goes out with
 * the next call or kv_client_poll()), which is allowed in a watch
 * callback. Returns KV_OK when queued (and, with WAIT, answered: its
 * status is the closure's to see), else the failure. */
kv_status kvc_call(kv_client *c, const char *method, const ProtobufCMessage *input,
                   ProtobufCClosure closure, void *data, int wait, uint64_t *id);

/* Whether C is inside a watch callback, where calls that send or wait are
 * refused: then records KV_FAILED_PRECONDITION and returns 1. */
int kvc_refuse_in_callback(kv_client *c);

/* The watches of a connection (watch.c). Frames name a watch by the id
 * of its Watch call; a connection holds at most 1024 (the server's
 * limit), so a list searched in order does. */
typedef struct kvc_watch {
    uint64_t call_id;           /* the Watch call's id, in its stream frames */
    uint64_t watch_id;          /* the server's id of the watch */
    kv_client_watch_fn fn;
    void *arg;
} kvc_watch;

typedef struct kvc_watches {
    kvc_watch *v;
    size_t n, cap;
    int calling;                /* a callback is running */
    uint64_t delivered;         /* callbacks run for frames, ever (for poll) */
} kvc_watches;

/* C's watches, owned by C. */
kvc_watches *kvc_watches_of(kv_client *c);

/* Hands the stream frame R (R->stream set) to the watch it names, if any.
 * Returns 0, or -1 when its payload is not a WatchResponse of that watch
 * (the caller breaks the connection). */
int kvc_watch_frame(kv_client *c, const Kvstore__V1__RpcResponse *r);

/* Ends every watch of C: the connection is gone. Each callback runs with
 * NULL, C's last status saying why; the list is freed. */
void kvc_watch_end_all(kv_client *c);

/* A client on the connected socket FD (made non-blocking here), which it
 * owns from then on, closing it in kv_client_free(). TIMEOUT_MS as for
 * kv_client_connect(). Returns NULL when out of memory (FD closed). */
kv_client *kvc_adopt(int fd, int timeout_ms);

/* Hands DATA[0..LEN) to C as if read from its socket and handles every
 * whole frame in what C has read: answers to the calls in flight, stream
 * frames to their watches; a partial frame waits for more. What the fuzz
 * harness drives; the socket path runs the same code. Returns KV_OK, or
 * the failure that broke the connection (every call in flight and every
 * watch then failed). */
kv_status kvc_feed(kv_client *c, const uint8_t *data, size_t len);

#endif
