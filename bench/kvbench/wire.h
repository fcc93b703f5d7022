/* wire.h - the methods kvbench measures, the request template every
 * protocol fills (bytes patched in place between requests), and kvstore's
 * own encoding: pre-encoded request frames and an RpcResponse reader that
 * allocates nothing. Pure functions over bytes, no I/O. kvstore's entry in
 * the protocol table (proto.h) is at the end of wire.c. */
#ifndef KB_WIRE_H
#define KB_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include "varint.h"

/* The methods kvbench measures, in the order it runs them. RANGE is not a
 * closed-loop test of one request template but a read of a whole key range
 * page by page (scan.h); it has no template. */
typedef enum kb_method { KB_PING, KB_SET, KB_GET, KB_CLEAR, KB_RANGE, KB_METHOD_COUNT } kb_method;

/* "/kvstore.v1.KV/Ping" ...; "ping" ... (as -t spells them); "PING" ...
 * (as the reports title them). Static strings. */
const char *kb_wire_method_path(kb_method m);
const char *kb_wire_method_name(kb_method m);
const char *kb_wire_method_title(kb_method m);

/* Keys look like redis-benchmark's: "key:" and 12 decimal digits. */
#define KB_KEY_PREFIX "key:"
#define KB_KEY_DIGITS 12
#define KB_KEY_LEN 16
#define KB_KEY_MAX 999999999999ULL

/* Request ids cycle through [KB_ID_MIN, KB_ID_END): every one of them is a
 * 4-byte varint, so the id can be rewritten in place in a template. */
#define KB_ID_MIN (1u << 21)
#define KB_ID_END (1u << 28)

/* One encoded request of a method (for kvstore, a frame with its prefix).
 * Between requests only the id and the key digits change, at fixed
 * offsets. */
typedef struct kb_tmpl {
    kb_method method;
    uint8_t *bytes;         /* the frame; owned */
    size_t len;             /* its length */
    size_t id_off;          /* where the 4 id bytes start; 0: no id (RESP) */
    size_t key_off;         /* where the 12 key digits start; 0 for Ping */
    uint8_t *value;         /* the value (VALUE_LEN bytes of 'x'); owned */
    size_t value_len;
} kb_tmpl;

/* Encodes the request of method M with id KB_ID_MIN, key 0 and, for Set, a
 * value of VALUE_LEN bytes of 'x' and, when TTL_MS is not 0, that time to
 * live (SetRequest.ttl_ms). Returns 0, or -1 when memory is out (or for
 * KB_RANGE, which has no template). kb_wire_tmpl_free() releases it. */
int kb_wire_tmpl_init(kb_tmpl *t, kb_method m, size_t value_len, uint64_t ttl_ms);
void kb_wire_tmpl_free(kb_tmpl *t);

/* Rewrites the id of a frame whose id field starts at P (4 bytes). ID must
 * lie in [KB_ID_MIN, KB_ID_END), where every varint is 4 bytes long. */
static inline void kb_wire_put_id(uint8_t *p, uint32_t id)
{
    kv_varint_put(p, id);
}

/* Writes KEY (<= KB_KEY_MAX) as 12 zero-padded digits at P. */
static inline void kb_wire_put_key(uint8_t *p, uint64_t key)
{
    for (int i = KB_KEY_DIGITS - 1; i >= 0; i--) {
        p[i] = (uint8_t)('0' + key % 10);
        key /= 10;
    }
}

/* An RpcResponse as it lies in the receive buffer: pointers into it. */
typedef struct kb_answer {
    uint64_t id;
    uint64_t code;                 /* 0 is OK */
    const uint8_t *message;        /* the error text, not NUL-terminated */
    size_t message_len;
    const uint8_t *payload;
    size_t payload_len;
} kb_answer;

/* One field of a protobuf message as kb_pb_next_field() reads it: its
 * number and, for the wire types met, its value (BYTES points into the
 * message). */
typedef struct kb_pb_field {
    uint64_t number, varint;
    const uint8_t *bytes;
    size_t len;
    int is_bytes;
} kb_pb_field;

/* Reads the field at *P (before END) and moves *P past it. Returns 1 with F
 * filled in, 0 at the end, -1 when the bytes are malformed. */
int kb_pb_next_field(const uint8_t **p, const uint8_t *end, kb_pb_field *f);

/* Reads the RpcResponse in P[0..N). Returns 0, or -1 when the bytes are not
 * a well-formed RpcResponse. Allocates nothing; A points into P. */
int kb_wire_answer_parse(const uint8_t *p, size_t n, kb_answer *a);

/* Checks the payload of an OK answer to request REQ (a frame built from T,
 * with its key patched in). Returns NULL when it is what the protocol
 * promises, else a static description of what is wrong. Clear answers are
 * only checked for well-formedness (their content depends on history). */
const char *kb_wire_answer_check(const kb_tmpl *t, const uint8_t *req, const kb_answer *a);

#endif
