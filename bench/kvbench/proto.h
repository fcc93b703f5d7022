/* proto.h - the protocols kvbench speaks, each a table of two functions:
 * build a method's request template, and read one answer from the front
 * of a receive buffer. run.c drives every protocol through the same loop,
 * key sequence and pipeline discipline, so two servers measured by kvbench
 * differ only in their encoding. Pure functions over bytes, no I/O. */
#ifndef KB_PROTO_H
#define KB_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include "wire.h"

/* The largest answer accepted (a Get of a 1 GiB value would pass). */
#define KB_ANSWER_MAX (1u << 30)

/* What an answer says about its request. */
typedef enum kb_verdict {
    KB_VERDICT_OK,      /* what the protocol promises: counted and timed */
    KB_VERDICT_ERROR,   /* an error answer: a status other than OK, a RESP
                           error, a GET of a missing key (NOT_FOUND, $-1) */
    KB_VERDICT_WRONG,   /* a success answer that is not what was asked */
} kb_verdict;

/* One answer read by a protocol. WHAT is static text (a status name, or
 * what is wrong); DETAIL, when not empty, is the server's own text and
 * points into the receive buffer (not NUL-terminated). */
typedef struct kb_reply {
    kb_verdict verdict;
    const char *what;
    const uint8_t *detail;
    size_t detail_len;
} kb_reply;

typedef struct kb_proto {
    const char *name;       /* as --protocol spells it */
    int has_stats;          /* the server counts calls in a Stats rpc, which
                               kvbench checks against its own counts */
    int needs_keys;         /* a GET of a key never SET is an error answer,
                               so GET tests load their keys first */

    /* Encodes the request of method M (key 0, a value of VALUE_LEN bytes of
     * 'x' for SET, and for SET with TTL_MS > 0 that time to live: kvstore's
     * SetRequest.ttl_ms, RESP's SET ... PX TTL_MS) into T. T->id_off is 0
     * when requests carry no id. Returns 0, or -1 when memory is out;
     * kb_wire_tmpl_free() frees it. */
    int (*tmpl_init)(kb_tmpl *t, kb_method m, size_t value_len, uint64_t ttl_ms);

    /* Reads the answer to REQ (a request built from T, its id and key
     * patched in) at the front of P[0..N). Returns the bytes it took (> 0)
     * with R filled in; 0 when the answer is not all there yet, with *NEED
     * the bytes the whole answer takes when that is known already (else 0);
     * -1 when the bytes cannot be the answer due (the stream is lost), with
     * the reason in R. */
    ptrdiff_t (*answer)(const kb_tmpl *t, const uint8_t *req, const uint8_t *p, size_t n,
                        size_t *need, kb_reply *r);
} kb_proto;

/* kvstore's envelopes (wire.c); RESP for Redis (resp.c); echo: kvstore's
 * request bytes, to be sent back unchanged by an echo server (proto.c);
 * etcd v3's HTTP/JSON gateway, SET and GET only (etcd.c). */
extern const kb_proto kb_proto_kvstore, kb_proto_resp, kb_proto_echo, kb_proto_etcd;

/* Measures the one RESP2 reply at P[0..N) (resp.c): its length; 0 when it
 * is not all there, with *NEED its full length once known (else 0); -1
 * when the bytes are not RESP2. */
ptrdiff_t kb_resp_reply_len(const uint8_t *p, size_t n, size_t *need);

/* Returns the protocol called NAME, or NULL. */
const kb_proto *kb_proto_find(const char *name);

#endif
