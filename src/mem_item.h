/* mem_item.h - the memory engine's item: the one malloc'd block that holds
 * a key, its revisions and its value, packed as varints (varint.h's
 * encoding). Owns the layout only; the hash table and the ordered index
 * (engine_memory.c, mem_index.c) hold pointers to items and read and write
 * them through these functions. Two forms, told apart by the low bit of
 * the value's length word (vlen*4 + T*2 + once):
 *
 *   written once:   [klen][key][vlen*4+T*2+1][ttl][mod_revision][value]
 *                   (create_revision is mod_revision, version 1)
 *   written again:  [klen][key][vlen*4+T*2][ttl][version][mod_revision][create_revision][value]
 *
 * where [ttl] is there only when T is 1, for a key with a deadline: the
 * deadline as a varint, then 4 bytes (host order) holding the item's
 * place in the engine's deadline heap (mem_ttl.h), which the heap updates
 * as it reorders, so that a key's deadline is found and removed in
 * O(log n) without a lookup table of its own. A key without a deadline
 * pays nothing but the second flag bit (a value of 32..63 bytes takes a
 * 2-byte length word, still inside the chunk below).
 *
 * Why: a 16-byte key with a 32-byte value, loaded once, takes 1 + 16 + 2 +
 * 3 + 32 = 54 bytes while the store's revision is under 2^21 (and at most
 * 56 up to 2^35), which fits glibc's 64-byte chunk (56 usable) as the item
 * did before it had revisions; three fixed uint64s would take the 80-byte
 * chunk, 16 bytes more a key. A key written again needs both revisions,
 * 58 bytes here, and moves to the 80-byte chunk once. Its revisions come
 * in the order that lets the next overwrite change them where they are:
 * version and mod_revision first, as they nearly always keep their widths,
 * then create_revision, which never changes: a Set of a value of the same
 * length rewrites two varints and the value (mem_item_rewrite). The key
 * comes first so that a lookup checks klen's first byte and compares the
 * key after it. */
#ifndef KV_MEM_ITEM_H
#define KV_MEM_ITEM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "engine.h"
#include "varint.h"

/* Never defined: an item is its bytes. */
typedef struct mem_item mem_item;

/* An item decoded: views of its bytes, valid while it lives. */
typedef struct mem_item_view {
    const uint8_t *key;
    size_t klen;
    const uint8_t *value;   /* always the value's place, even when empty */
    size_t vlen;
    kv_meta meta;
    size_t size;            /* the item's bytes */
} mem_item_view;

/* The most bytes between the key and the value. */
#define MEM_ITEM_HEAD_MAX (5 * KV_VARINT_MAX + 4)

/* The bits of the value's length word. */
#define MEM_ITEM_ONCE 1u
#define MEM_ITEM_TTL 2u

/* Reads the varint at *P and moves *P past it. Not kv_varint_get(): an
 * item's varints are this engine's own, complete by construction, so the
 * bounds and length checks that wire bytes need are skipped, and the
 * first three bytes are unrolled (revisions under 2^21 take three). */
static inline uint64_t mem_item_varint(const uint8_t **p)
{
    const uint8_t *q = *p;
    uint64_t v = q[0];

    if (v < 0x80) {
        *p = q + 1;
        return v;
    }
    v = (v & 0x7f) | (uint64_t)q[1] << 7;
    if (q[1] < 0x80) {
        *p = q + 2;
        return v;
    }
    v = (v & 0x3fff) | (uint64_t)q[2] << 14;
    if (q[2] < 0x80) {
        *p = q + 3;
        return v;
    }
    v &= 0x1fffff;
    q += 3;
    for (unsigned shift = 21;; shift += 7) {
        uint64_t b = *q++;
        v |= (b & 0x7f) << shift;
        if (b < 0x80)
            break;
    }
    *p = q;
    return v;
}

/* The bytes kv_varint_put() writes for V, from its bit length (n * 37 >> 8
 * is n / 7 for n below 64): no loop. */
static inline size_t mem_item_varint_size(uint64_t v)
{
    return 1 + (size_t)((63 - __builtin_clzll(v | 1)) * 37 >> 8);
}

/* Writes the varints between the key and the value for a VLEN-byte value
 * and META at HEAD, in the form META calls for. Returns their bytes. */
static inline size_t mem_item_head(uint8_t head[MEM_ITEM_HEAD_MAX], size_t vlen,
                                   const kv_meta *meta)
{
    uint8_t *p;
    int once = meta->version == 1 && meta->create_revision == meta->mod_revision;
    uint64_t word = (uint64_t)vlen << 2 | (meta->expires_ms ? MEM_ITEM_TTL : 0) |
                    (once ? MEM_ITEM_ONCE : 0);

    p = kv_varint_put(head, word);
    if (meta->expires_ms) {
        p = kv_varint_put(p, meta->expires_ms);
        memset(p, 0, 4);
        p += 4;
    }
    if (once) {
        p = kv_varint_put(p, meta->mod_revision);
    } else {
        p = kv_varint_put(p, meta->version);
        p = kv_varint_put(p, meta->mod_revision);
        p = kv_varint_put(p, meta->create_revision);
    }
    return (size_t)(p - head);
}

/* The bytes of an item with a KLEN-byte key, a VLEN-byte value and a head
 * (mem_item_head) of HEADLEN bytes. */
static inline size_t mem_item_size(size_t klen, size_t vlen, size_t headlen)
{
    return kv_varint_size(klen) + klen + headlen + vlen;
}

/* The item's key; its length in *KLEN. */
static inline const uint8_t *mem_item_key(const mem_item *it, size_t *klen)
{
    const uint8_t *p = (const uint8_t *)it;

    *klen = (size_t)mem_item_varint(&p);
    return p;
}

/* Whether IT's key is KEY (KLEN bytes). Short keys (under 128 bytes, one
 * byte of length) are the hot path: a byte compare and a memcmp. */
static inline int mem_item_has_key(const mem_item *it, const uint8_t *key, size_t klen)
{
    const uint8_t *p = (const uint8_t *)it;

    if (klen < 0x80)
        return p[0] == klen && memcmp(p + 1, key, klen) == 0;
    size_t n;
    p = mem_item_key(it, &n);
    return n == klen && memcmp(p, key, klen) == 0;
}

/* Byte order (kv_key_cmp) of IT's key against KEY: <0, 0, >0. */
static inline int mem_item_cmp(const mem_item *it, const uint8_t *key, size_t klen)
{
    size_t n;
    const uint8_t *p = mem_item_key(it, &n);

    return kv_key_cmp(p, n, key, klen);
}

/* The first byte after IT's key, whose length the caller knows is KLEN. */
static inline uint8_t *mem_item_tail(mem_item *it, size_t klen)
{
    return (uint8_t *)it + (klen < 0x80 ? 1 : kv_varint_size(klen)) + klen;
}

/* Decodes the part after the key, which starts at P, into V (key fields
 * left alone); P..: as mem_item_open(). */
static inline void mem_item_open_tail(const uint8_t *p, mem_item_view *v)
{
    uint64_t lv = mem_item_varint(&p);

    v->vlen = (size_t)(lv >> 2);
    v->meta.expires_ms = 0;
    if (lv & MEM_ITEM_TTL) {
        v->meta.expires_ms = mem_item_varint(&p);
        p += 4;
    }
    if (lv & MEM_ITEM_ONCE) {
        v->meta.mod_revision = v->meta.create_revision = mem_item_varint(&p);
        v->meta.version = 1;
    } else {
        v->meta.version = mem_item_varint(&p);
        v->meta.mod_revision = mem_item_varint(&p);
        v->meta.create_revision = mem_item_varint(&p);
    }
    v->value = p;
}

/* Decodes IT into V. */
static inline void mem_item_open(const mem_item *it, mem_item_view *v)
{
    v->key = mem_item_key(it, &v->klen);
    mem_item_open_tail(v->key + v->klen, v);
    v->size = (size_t)(v->value + v->vlen - (const uint8_t *)it);
}

/* A Set's fast path on the item whose part after the key starts at TAIL:
 * when it was written again already, its value has VLEN bytes too, and
 * version + 1 and REV take the bytes version and mod_revision take now,
 * writes them and the value (which may lie in the old value's bytes)
 * where they are. Returns 1, or 0 having changed nothing. The byte-width
 * tests are cheap and exact but for a version + 1 that is a multiple of
 * 128 (once in 128 writes of a key), which goes the long way. */
static inline int mem_item_rewrite(uint8_t *tail, const uint8_t *value, size_t vlen, uint64_t rev)
{
    const uint8_t *q = tail;

    if (mem_item_varint(&q) != (uint64_t)vlen << 2)    /* again, no deadline */
        return 0;
    uint8_t *at_version = tail + (q - tail);
    uint64_t version = mem_item_varint(&q) + 1;
    uint8_t *at_mod = tail + (q - tail);
    while (*q++ & 0x80)
        ;
    if (!(version & 0x7f) || mem_item_varint_size(rev) != (size_t)(q - at_mod))
        return 0;
    while (*q++ & 0x80)     /* create_revision stays */
        ;
    (void)kv_varint_put(at_version, version);
    (void)kv_varint_put(at_mod, rev);
    if (vlen)
        memmove(tail + (q - tail), value, vlen);
    return 1;
}

/* Writes what follows the key at P, the byte after the key, with room
 * for it: HEADLEN bytes of HEAD (mem_item_head), then the value. VALUE may
 * lie in the bytes being rewritten (a caller's view of this very item):
 * it is moved first. */
static inline void mem_item_put_tail(uint8_t *p, const uint8_t *head, size_t headlen,
                                     const uint8_t *value, size_t vlen)
{
    if (vlen)
        memmove(p + headlen, value, vlen);
    memcpy(p, head, headlen);
}

/* Writes a whole item at IT, which has mem_item_size() bytes of room. */
static inline void mem_item_put(mem_item *it, const uint8_t *key, size_t klen,
                                const uint8_t *head, size_t headlen,
                                const uint8_t *value, size_t vlen)
{
    uint8_t *p = kv_varint_put((uint8_t *)it, klen);

    if (klen)
        memcpy(p, key, klen);
    mem_item_put_tail(p + klen, head, headlen, value, vlen);
}

/* The 4 bytes of a key with a deadline that hold its place in the
 * deadline heap, found from the part after its KLEN-byte key; NULL for a
 * key without a deadline. */
static inline uint8_t *mem_item_heap_slot(mem_item *it, size_t klen)
{
    uint8_t *p = mem_item_tail(it, klen);
    const uint8_t *q = p;
    uint64_t lv = mem_item_varint(&q);

    if (!(lv & MEM_ITEM_TTL))
        return NULL;
    (void)mem_item_varint(&q);
    return p + (q - p);
}

#endif
