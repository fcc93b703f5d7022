/* kvstore/client.h - the C client library of kvstore.
 *
 * Two layers:
 *  - kv_client_service() hands out a ProtobufCService for the KV service, so
 *    callers use protoc-c's generated stubs directly:
 *        kvstore__v1__kv__get(kv_client_service(c), &req, on_get, &data);
 *    The closure receives the decoded response, or NULL when the call failed;
 *    kv_client_last_status()/kv_client_last_message() then say why.
 *  - A blocking convenience API (kv_client_ping/get/set/clear) on top, and
 *    for the v2 data model: revisions (kv_client_get_rev/set_rev/
 *    clear_rev), conditional writes (kv_client_cas, kv_client_cas_clear),
 *    ordered ranges read a page at a time (kv_client_range and
 *    kv_client_range_next), kv_client_clear_range and kv_client_txn; for
 *    v2.1: keys that expire (kv_client_set_ttl, kv_client_get_ttl,
 *    kv_client_touch) and watches (kv_client_watch, kv_client_poll,
 *    kv_client_watch_cancel).
 *
 * Calls are synchronous: the closure has run when the stub returns. Between
 * kv_client_pipeline_begin() and kv_client_pipeline_end() calls are queued
 * and sent without waiting; their closures run in call order, at the latest
 * inside _end() (earlier when a large batch needs its answers read to make
 * room). Inside a closure, kv_client_last_status() is that call's status.
 *
 * A kv_client is one TCP connection at a time and is not thread-safe: use
 * one per thread.
 *
 * Clusters (protocol v3). A client is given one endpoint or a list
 * ("a:7379,b:7379,c:7379") and connects to the first that accepts. A
 * call that cannot be answered where it is goes elsewhere, within the
 * client's timeout (measured from the start of the call, retries
 * included; 10 s when the client has none), and then fails with the last
 * error:
 *  - UNAVAILABLE with a leader's address (a node that is not the leader):
 *    the client connects to that address, even if not in the list, and
 *    sends the call again there, at once;
 *  - UNAVAILABLE without one, a refused, reset or closed connection, or a
 *    timeout: it tries the next endpoint of the list, pausing 25 ms
 *    doubling to 1 s (with jitter) between tries; the first retry of a
 *    call is immediate;
 *  - a TLS alert from the server (it refused the client's certificate,
 *    or the lack of one): the calls fail at once with UNAVAILABLE and the
 *    alert's reason, since a new connection would be refused too.
 * Which calls are sent again: reads (Get, Range, Ping, Stats,
 * ClusterStatus) always; writes (Set, Clear, ClearRange, Txn, Touch)
 * too, because each carries the client's id (16 random bytes, chosen per
 * kv_client) and a sequence number, one more for every write and the same
 * on each retry of it, so a cluster applies it at most once and answers a
 * retry with the first outcome; but a write that went out and was cut off
 * (a lost connection, a timeout) only to a cluster: when more than one
 * endpoint was given or a node named a leader (a single kvstored does not
 * deduplicate and may have applied it: the call fails instead). ABORTED
 * is never retried. Any other call
 * (MemberAdd, MemberRemove, LeaderTransfer, CancelWatch, Auth, methods
 * this library does not know) only when it surely did not run: it was
 * never sent, or a node answered UNAVAILABLE. kv_client_call_raw()
 * follows the same rules by method path, so a raw write carries an id and
 * seq too. Pipelined calls follow them as well, and their closures still
 * run in call order; a call waiting to be sent again holds back the calls
 * queued after it, so they are applied in call order too.
 * Moving to another node closes the connection: its watches end (their
 * callback gets NULL, KV_UNAVAILABLE), and a watch is never moved; a
 * token given to kv_client_auth() is presented again on every new
 * connection. A client whose server went away connects again on its next
 * call. */
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
 * refused before connecting), or to the first of a comma-separated list
 * of them that accepts, each tried once in order (later calls use the
 * whole list, see "Clusters" above). TIMEOUT_MS bounds each connect and,
 * afterwards, each call with its retries (0 means no timeout). Returns a
 * client the caller frees with kv_client_free(), or NULL with a one-line
 * reason in ERR (ERRLEN bytes, may be NULL): the last endpoint's. */
kv_client *kv_client_connect(const char *endpoint, int timeout_ms,
                             char *err, size_t errlen);

/* How kv_client_connect_opts() connects. Start from
 * KV_CLIENT_OPTIONS_INIT (or zero it) and set what differs. The strings
 * are read during the call only. Its layout is part of the ABI: a later
 * setting comes with a function of its own, never as a field here. */
typedef struct kv_client_options {
    int timeout_ms;             /* as kv_client_connect()'s TIMEOUT_MS; the
                                   TLS handshake is within it too */
    int tls;                    /* nonzero: speak TLS (1.2 or 1.3) */
    const char *ca_file;        /* PEM CA certificates that sign the server's;
                                   NULL: the system's store */
    const char *cert_file;      /* PEM client certificate (chain) to present,
                                   for a server started with --tls-client-ca;
                                   NULL: none. Goes with KEY_FILE. */
    const char *key_file;       /* PEM private key of CERT_FILE */
    const char *server_name;    /* the name the server's certificate must
                                   carry (DNS name or IP address), also sent
                                   as SNI when a name; NULL: the host of
                                   each endpoint connected to */
    int insecure_skip_verify;   /* nonzero: accept any server certificate
                                   (encrypts, but anyone can pose as the
                                   server: for tests) */
} kv_client_options;

#define KV_CLIENT_OPTIONS_INIT { 0, 0, NULL, NULL, NULL, NULL, 0 }

/* As kv_client_connect(ENDPOINT, O->timeout_ms, ERR, ERRLEN), with O's
 * settings (O NULL: the defaults, plaintext). With O->tls, every
 * connection of the client (each endpoint of a list, each reconnect, a
 * leader a node names) speaks TLS with the same settings, and the server's
 * certificate is verified (unless O->insecure_skip_verify): signed by a CA
 * of O->ca_file or the system store, and naming O->server_name or the
 * endpoint's host (an IP address checked as one). A file that does not
 * load, or a handshake that fails, gives NULL with a one-line reason in
 * ERR, such as "TLS handshake with 127.0.0.1:7379 failed: certificate
 * verify failed: hostname mismatch". Returns a client freed with
 * kv_client_free(). */
kv_client *kv_client_connect_opts(const char *endpoint, const kv_client_options *o,
                                  char *err, size_t errlen);

/* Closes the connection and frees the client. Queued pipelined calls that
 * were never flushed get closure(NULL). Accepts NULL. */
void kv_client_free(kv_client *c);

/* Changes the per-call timeout (milliseconds, 0 = none). */
void kv_client_set_timeout(kv_client *c, int timeout_ms);

/* With ON, the Get and Range of the blocking API (kv_client_get*,
 * kv_client_range) ask for serializable reads: answered by whichever node
 * the client is connected to, from its applied state (may be stale, never
 * torn), with no trip to the leader. Off (the default): linearizable
 * reads, which only a cluster's leader answers. A single server answers
 * both alike. Stub callers set GetRequest.serializable themselves. */
void kv_client_set_serializable(kv_client *c, int on);

/* The "HOST:PORT" C is connected to, or tried last: one of its endpoints
 * or a leader a node named. Owned by C, valid until the next call. */
const char *kv_client_endpoint(const kv_client *c);

/* Copies C's client id (RpcRequest.client_id of its writes) into ID. */
void kv_client_client_id(const kv_client *c, uint8_t id[16]);

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
 * remaining closures in call order. Calls are retried as "Clusters" above
 * says, within the timeout from the start of _end(); a call that cannot
 * be retried, or whose time is up, fails (closure(NULL)). Returns KV_OK
 * when every call got an answer (each answer may still be an error
 * status, seen by its closure), or the transport error (KV_UNAVAILABLE,
 * KV_DEADLINE_EXCEEDED) that failed some of them. */
void kv_client_pipeline_begin(kv_client *c);
kv_status kv_client_pipeline_end(kv_client *c);

/* Sends one call by method path ("/kvstore.v1.KV/Get") with a raw payload
 * and waits for its answer; for tools and tests that speak to methods this
 * header does not know. Retried by its method path as "Clusters" says (a
 * write carries the client's id and a seq). On return *RESP_PAYLOAD (malloc'd, caller frees;
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

/* The data model v2 (docs/PROTOCOL.md): the store counts revisions, one
 * per request that changes data; each key records the revision that
 * created it, the revision of its last change (the number a conditional
 * write compares) and how many times it was written. These helpers are
 * blocking: each waits for its answer (and for every call queued before
 * it), so do not call them between kv_client_pipeline_begin() and _end().
 * A server that predates v2 answers KV_UNIMPLEMENTED for Range, ClearRange
 * and Txn, and 0 for every revision; it ignores if_mod_revision, so
 * kv_client_cas and kv_client_cas_clear report its unconditional writes
 * as KV_UNIMPLEMENTED (see there). */

/* What a Get answers besides the value. */
typedef struct kv_client_revs {
    uint64_t create_revision;   /* the revision that created the key */
    uint64_t mod_revision;      /* the revision of its last change */
    uint64_t version;           /* writes since it was created; 1 after the first */
    uint64_t revision;          /* the store's revision at the read */
} kv_client_revs;

/* kv_client_get, and *REVS (may be NULL) filled from the answer; all zero
 * on failure. */
kv_status kv_client_get_rev(kv_client *c, const void *key, size_t klen,
                            uint8_t **value, size_t *vlen, kv_client_revs *revs);

/* kv_client_set, and *REVISION (may be NULL) the revision the write made;
 * 0 on failure. */
kv_status kv_client_set_rev(kv_client *c, const void *key, size_t klen,
                            const void *value, size_t vlen, uint64_t *revision);

/* kv_client_clear, and *REVISION (may be NULL) the revision of the
 * removal: 0 when the key was absent (nothing changed) or on failure. */
kv_status kv_client_clear_rev(kv_client *c, const void *key, size_t klen,
                              int *found, uint8_t **value, size_t *vlen,
                              uint64_t *revision);

/* Compare-and-set: stores VALUE under KEY only if the key's mod_revision
 * is IF_MOD_REVISION, where an absent key's is 0 (so 0 means "create, only
 * if absent"). KV_FAILED_PRECONDITION when it is not: nothing changed, and
 * kv_client_last_message() names the key's current mod_revision. Else as
 * kv_client_set_rev.
 * KV_UNIMPLEMENTED, *REVISION 0, when the server answered OK with revision
 * 0: a server before protocol v2, which does not know if_mod_revision and
 * stored VALUE without checking it (a v2 server's writes always make a
 * revision of at least 1). kv_client_last_message() then says "the server
 * does not support conditional writes (a server before protocol v2): the
 * write was applied without its check". */
kv_status kv_client_cas(kv_client *c, const void *key, size_t klen,
                        const void *value, size_t vlen, uint64_t if_mod_revision,
                        uint64_t *revision);

/* Compare-and-clear: kv_client_clear_rev only if the key's mod_revision is
 * IF_MOD_REVISION; KV_FAILED_PRECONDITION as kv_client_cas says. When the
 * server answered found with revision 0, a server before protocol v2 removed
 * the key without the check: KV_UNIMPLEMENTED with kv_client_cas's message,
 * *FOUND 0, *VALUE NULL, *REVISION 0. (An absent key is found = 0 and
 * revision 0 on every server: that is KV_OK.) */
kv_status kv_client_cas_clear(kv_client *c, const void *key, size_t klen,
                              uint64_t if_mod_revision, int *found,
                              uint8_t **value, size_t *vlen, uint64_t *revision);

/* Reads one page of the range REQ selects ([start, end), or a prefix; in
 * byte order, or descending with reverse; at most limit keys, and never
 * more than the server's page or frame allows). Returns KV_OK with *PAGE
 * the answer, which the caller frees with
 * kvstore__v1__range_response__free_unpacked(*PAGE, NULL); else the
 * failure and *PAGE NULL. (*PAGE)->more says whether keys are left: ask
 * kv_client_range_next() for the request that reads them. REQ is not
 * changed and need live only during the call. */
kv_status kv_client_range(kv_client *c, const Kvstore__V1__RangeRequest *req,
                          Kvstore__V1__RangeResponse **page);

/* Paging: turns REQ, the request whose answer was PAGE, into the request
 * for the page after PAGE: start = PAGE's last key + "\x00" (reverse: end
 * = PAGE's last key), the other bound kept, and a prefix turned into the
 * [start, end) it stands for. Limit and flags are left as they are (the
 * limit is per page: lower it yourself to stop at a total). The new bounds
 * are copied into *BOUNDS, a buffer this function owns through the
 * caller: pass the address of a NULL pointer on the first call and the
 * same one after, and free(*BOUNDS) once done with REQ (it is replaced,
 * and the old one freed, on each call). PAGE may be freed afterwards.
 * Returns 1 when REQ now asks for the next page, 0 when PAGE was the last
 * (not more, or no keys: count_only), -1 when out of memory (REQ unchanged). */
int kv_client_range_next(Kvstore__V1__RangeRequest *req,
                         const Kvstore__V1__RangeResponse *page, uint8_t **bounds);

/* Removes every key of the range REQ selects, as one write. *DELETED and
 * *REVISION (either may be NULL) receive how many keys went and the
 * revision of the removal (0 when nothing was deleted); both 0 on failure.
 * A request with no selector is KV_INVALID_ARGUMENT (from the server), so
 * that a forgotten field never wipes the store: to clear everything, set
 * start to the one byte "\x00". */
kv_status kv_client_clear_range(kv_client *c, const Kvstore__V1__ClearRangeRequest *req,
                                uint64_t *deleted, uint64_t *revision);

/* Runs the transaction REQ, built by the caller with the generated types
 * (compares, then the success and the failure operations). Returns KV_OK
 * when it ran, whichever branch: *RESP then holds the answer (succeeded
 * says which branch, results has one entry per operation run), which the
 * caller frees with kvstore__v1__txn_response__free_unpacked(*RESP, NULL).
 * Else the failure (KV_INVALID_ARGUMENT for a Txn the server refuses as a
 * whole, nothing applied) and *RESP NULL. */
kv_status kv_client_txn(kv_client *c, const Kvstore__V1__TxnRequest *req,
                        Kvstore__V1__TxnResponse **resp);

/* Keys that expire (protocol v2.1, docs/PROTOCOL.md). A time to live is
 * in milliseconds; the server refuses more than KV_CLIENT_TTL_MAX_MS
 * (about 31.7 years) with KV_INVALID_ARGUMENT. An expired key is gone for
 * every read at once. A server before v2.1 answers KV_UNIMPLEMENTED for
 * Touch, ignores ttl_ms and keep_ttl (it stores the key without a time to
 * live: nothing in its answer tells) and answers ttl 0 for every key. */
#define KV_CLIENT_TTL_MAX_MS UINT64_C(1000000000000)

/* Stores VALUE under KEY as kv_client_set_rev does, with a time to live:
 * TTL_MS > 0: the key expires TTL_MS milliseconds after the write; 0: it
 * does not expire, and loses any time to live it had unless KEEP_TTL is
 * set, which keeps what is left of it (nothing for a new key). TTL_MS > 0
 * with KEEP_TTL is KV_INVALID_ARGUMENT (from the server). When
 * IF_MOD_REVISION is not NULL, the write is conditional on it as for
 * kv_client_cas (KV_FAILED_PRECONDITION, KV_UNIMPLEMENTED from a server
 * before v2): kv_client_cas with a time to live takes a lock that lapses
 * unless its holder keeps touching it. *REVISION (may be NULL) receives
 * the revision of the write; 0 on failure. */
kv_status kv_client_set_ttl(kv_client *c, const void *key, size_t klen,
                            const void *value, size_t vlen, uint64_t ttl_ms,
                            int keep_ttl, const uint64_t *if_mod_revision,
                            uint64_t *revision);

/* kv_client_get_rev, and *TTL_MS (may be NULL) the milliseconds KEY has
 * left to live, rounded up (never 0 for a key that expires); 0 when it
 * does not expire, and on failure. */
kv_status kv_client_get_ttl(kv_client *c, const void *key, size_t klen,
                            uint8_t **value, size_t *vlen, kv_client_revs *revs,
                            uint64_t *ttl_ms);

/* Sets KEY to expire TTL_MS milliseconds from now (0: never), without
 * changing its value or its revisions; no watch sees it. Returns KV_OK
 * with *FOUND (may be NULL) 1, or KV_OK with *FOUND 0 when KEY is absent
 * or expired (nothing changed); else the failure, *FOUND 0. */
kv_status kv_client_touch(kv_client *c, const void *key, size_t klen,
                          uint64_t ttl_ms, int *found);

/* Watches (protocol v2.1). A watch is a stream of the changes to a key, a
 * range or a prefix, opened on this connection with kv_client_watch() and
 * delivered to a callback: the server sends its events as stream frames,
 * which may come between the answers of any calls, and the library hands
 * each one to its watch's callback whenever it reads from the socket:
 * while it waits for the answer of any call, pipelined ones included, and
 * in kv_client_poll(), which waits for frames when no call is pending.
 *
 * The callback gets the decoded WatchResponse RESP, owned by the library
 * and valid only during the call (copy what you keep): its events in
 * revision order, the events of one write together in one frame. When
 * RESP->canceled is set the watch has ended (RESP->cancel_reason says why;
 * RESP->compact_revision, when not 0, is the oldest revision a new watch
 * may start from): that was its last call. RESP is NULL when the watch
 * ended without that frame: the connection broke, the client was freed,
 * or the server sent an error in its stream; kv_client_last_status() and
 * kv_client_last_message() then say why, during the callback. Either way
 * a watch's callback is called once with its end, so that is where to
 * free ARG.
 *
 * A callback runs inside a call of this client: it must not call
 * anything of the client but kv_client_watch_cancel(),
 * kv_client_last_status() and kv_client_last_message(), and must not free
 * it. Calls that send or wait fail there with KV_FAILED_PRECONDITION. The
 * status of the call that was reading is kept across the callback.
 * Stream frames of an id that names no watch of this client (a watch
 * opened with the generated stub, or already canceled) are skipped. */
typedef void (*kv_client_watch_fn)(kv_client *c, uint64_t watch_id,
                                   const Kvstore__V1__WatchResponse *resp, void *arg);

/* Opens a watch of what REQ selects (prefix alone, key alone, or key and
 * end for [key, end), end "\x00" meaning no upper bound) from
 * REQ->start_revision (0: the changes after now; N: every change of
 * revision N on, replayed from the server's history and then live), with
 * prev_kv if asked. Waits for the answer (after every call queued before
 * it), then returns KV_OK with *WATCH_ID (may be NULL) the server's id of
 * the watch, FN called with ARG for its frames from then on. Else the
 * failure (KV_INVALID_ARGUMENT for a selection the server refuses,
 * KV_RESOURCE_EXHAUSTED past the server's watches per connection,
 * KV_UNIMPLEMENTED from a server before v2.1), *WATCH_ID 0, and FN is
 * never called. FN may run before this returns, for frames read with the
 * answer. A start_revision older than the server keeps is not a failure:
 * the watch opens and its first frame cancels it, with compact_revision
 * set (maybe before this returns). REQ need live only during the call. */
kv_status kv_client_watch(kv_client *c, const Kvstore__V1__WatchRequest *req,
                          kv_client_watch_fn fn, void *arg, uint64_t *watch_id);

/* Ends the watch WATCH_ID of this connection: sends CancelWatch and waits
 * for its answer, before which the watch's callback has run with its last
 * frame (canceled = true). Returns KV_OK, or KV_NOT_FOUND when the server
 * knows no such watch of this connection (it has ended already), or the
 * failure. From a callback it only queues the CancelWatch and returns
 * KV_OK: the last frame comes during a later call or kv_client_poll(). */
kv_status kv_client_watch_cancel(kv_client *c, uint64_t watch_id);

/* Waits up to TIMEOUT_MS milliseconds (-1: no limit, 0: no wait) for
 * stream frames and hands them to their callbacks, writing what is queued
 * and completing any call whose answer comes meanwhile. Returns KV_OK
 * once it has called at least one callback (every whole frame read by
 * then is handled); KV_DEADLINE_EXCEEDED when the time ran out first (the
 * connection stays up); KV_CANCELLED when a signal interrupted the wait,
 * so a program may look at a flag its handler set and call again;
 * KV_FAILED_PRECONDITION when there is nothing to wait for (no watch and
 * no call in flight) or it is called from a callback; or the failure
 * that broke the connection (every watch's callback has then run with
 * NULL). The per-call timeout of kv_client_connect() does not apply. */
kv_status kv_client_poll(kv_client *c, int timeout_ms);

/* Presents TOKEN[0..LEN) to a server started with --auth-token-file; until
 * this succeeds every other call is KV_UNAUTHENTICATED. Once accepted, the
 * client keeps a copy and presents it again on each new connection. A wrong token is
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
