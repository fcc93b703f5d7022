/* pbview.h - unpacking a request message in place (its bytes fields point
 * into the frame instead of being copied out; the message itself comes
 * from the request arena), and packing a flat answer message.
 *
 * Why not protobuf_c_message_unpack() for every request: it was the largest
 * cost of the server in user space after the envelope was done by hand
 * (callgrind, kvbench Set and Get at -P 16: unpack and its helpers about a
 * quarter of the server's instructions, plus an arena allocation per field
 * and a copy of every key and value). Requests are small flat messages, so
 * a reader driven by the same protoc-c descriptor fills the same struct:
 * a field added to the proto is read without code here. Packing answers
 * the same way removes protobuf-c's generic size-then-pack walk (another
 * 180 instructions per Set).
 *
 * What it reads and writes: fields that are singular (proto3, proto2-style
 * `optional` with its has_ flag, or members of a oneof, which proto3
 * `optional` is for protoc-c 1.4: see proto/kvstore/v1/meson.build) varint
 * scalars (int32, int64, uint32, uint64, bool, enum) or bytes. Anything
 * else (strings, which protoc-c NUL-terminates; repeated fields; messages;
 * fixed and zigzag types) is left to protobuf-c: when such a field is present, the caller
 * is told to use protobuf-c for that message. The result is protobuf-c's (tests/
 * test_envelope.c and fuzz_frame check both agree), except that field
 * number 0 and keys wider than 32 bits are refused (see pbfield.h), and
 * unknown fields are skipped, not kept. */
#ifndef KV_PBVIEW_H
#define KV_PBVIEW_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

/* Unpacks DATA[0..LEN) as a DESC into memory from ALLOC; its bytes fields
 * point into DATA, which must outlive the message; nothing is freed
 * separately. Returns 0 with *OUT set; -1 when the bytes are not a valid
 * DESC or memory is out; 1 when DESC has a field of a kind pbview does not
 * read, present in DATA (then protobuf-c must unpack it). */
int kv_pbview_unpack(const ProtobufCMessageDescriptor *desc, ProtobufCAllocator *alloc,
                     const uint8_t *data, size_t len, ProtobufCMessage **out);

/* Messages with more fields than this are left to protobuf-c. */
#define KV_PBVIEW_MAX_FIELDS 16

/* One field of a measured message: what kv_pbview_write() will write. */
typedef struct kv_pbview_value {
    const void *field;          /* private: pbview's plan of the field */
    uint64_t v;                 /* the varint, or the length of bytes */
    const uint8_t *data;        /* bytes: the message's own */
} kv_pbview_value;

/* A packer written by hand for one message type whose answers are the hot
 * path, where reading fields by plan costs more than the rest of the
 * request (see hotpack.c). BOUND: at least the packed size, from what is
 * cheap to read (the lengths of bytes); SIZE: the exact packed size;
 * PACK: the bytes protobuf_c_message_pack() writes; returns their number. */
typedef struct kv_pbview_packer {
    size_t (*bound)(const ProtobufCMessage *msg);
    size_t (*size)(const ProtobufCMessage *msg);
    size_t (*pack)(const ProtobufCMessage *msg, uint8_t *out);
} kv_pbview_packer;

/* From now on pbview packs messages of type DESC (flat) with PACKER
 * (static; NULL: by plan again). Returns 0, or -1 when too many types
 * have one (8). */
int kv_pbview_use_packer(const ProtobufCMessageDescriptor *desc, const kv_pbview_packer *packer);

/* A flat message measured for packing, so that writing it does not read
 * its fields a second time (an answer needs its size before its bytes). */
typedef struct kv_pbview_sized {
    int flat;                   /* pbview writes it (else protobuf-c must) */
    const ProtobufCMessage *msg;
    const kv_pbview_packer *packer;     /* its type's packer, or NULL */
    unsigned n;                 /* fields to write, in order */
    kv_pbview_value at[KV_PBVIEW_MAX_FIELDS];
} kv_pbview_sized;

/* Measures MSG into *OUT for kv_pbview_write(). Returns the packed size,
 * as protobuf_c_message_get_packed_size() would say, or 0 with out->flat
 * cleared when MSG has a field of a kind pbview does not write. OUT points
 * into MSG: write it before MSG changes. */
size_t kv_pbview_measure(const ProtobufCMessage *msg, kv_pbview_sized *out);

/* Writes what kv_pbview_measure() measured (flat) at OUT, byte for byte as
 * protobuf_c_message_pack() would, except that unknown fields are not
 * written. Returns the bytes written: the measured size. */
size_t kv_pbview_write(const kv_pbview_sized *in, uint8_t *out);

/* kv_pbview_measure() for its size and whether pbview writes MSG (in
 * *SUPPORTED). */
size_t kv_pbview_size(const ProtobufCMessage *msg, int *supported);

/* The most bytes MSG can take packed, from the lengths of its bytes fields
 * alone, so cheaper than kv_pbview_measure(); *FLAT as there (0: 0). */
size_t kv_pbview_bound(const ProtobufCMessage *msg, int *flat);

/* Packs MSG (flat) at OUT in one pass, byte for byte as
 * protobuf_c_message_pack() would (OUT has room for kv_pbview_bound());
 * returns the bytes written. */
size_t kv_pbview_pack(const ProtobufCMessage *msg, uint8_t *out);

#endif
