/* oplog.c - the replay log of an open transaction; see oplog.h. A record is
 * [kind:1][klen:4][vlen:4][rev:8][expires:8][key][value] followed by its
 * own length (4), so the last one can be dropped without a walk. Host byte
 * order: the log never leaves the process. (The deadline takes 8 bytes in
 * every record, Sets without one too: simpler than a kind of its own, and
 * the log lives one loop turn.) */
#include <stdlib.h>
#include <string.h>
#include "oplog.h"

#define HEAD 25
#define TAIL 4
/* A buffer above this is freed on clear rather than kept for the next turn. */
#define KEEP_BYTES ((size_t)1 << 20)

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

int kv_oplog_append(kv_oplog *l, kv_oplog_kind kind, const uint8_t *key, size_t klen,
                    const uint8_t *value, size_t vlen, uint64_t rev, uint64_t expires)
{
    if (klen > UINT32_MAX - HEAD - TAIL || vlen > UINT32_MAX - HEAD - TAIL - klen)
        return -1;
    size_t n = HEAD + klen + vlen + TAIL;

    if (l->cap - l->len < n) {
        size_t cap = l->cap ? l->cap : 4096;
        while (cap - l->len < n)
            cap *= 2;
        uint8_t *p = realloc(l->data, cap);
        if (!p)
            return -1;
        l->data = p;
        l->cap = cap;
    }
    uint8_t *p = l->data + l->len;
    p[0] = (uint8_t)kind;
    put32(p + 1, (uint32_t)klen);
    put32(p + 5, (uint32_t)vlen);
    memcpy(p + 9, &rev, 8);
    if (kind != KV_OPLOG_SET && kind != KV_OPLOG_TOUCH)
        expires = 0;
    memcpy(p + 17, &expires, 8);
    if (klen)
        memcpy(p + HEAD, key, klen);
    if (vlen)
        memcpy(p + HEAD + klen, value, vlen);
    put32(p + HEAD + klen + vlen, (uint32_t)n);
    l->len += n;
    l->count++;
    return 0;
}

void kv_oplog_drop_last(kv_oplog *l)
{
    if (!l->count)
        return;
    l->len -= get32(l->data + l->len - TAIL);
    l->count--;
}

void kv_oplog_truncate(kv_oplog *l, kv_oplog_mark mark)
{
    /* A mark past the end can only be one taken before a clear (which the
     * engine never lets happen between marking and truncating: every clear
     * follows the batch's end); nothing of it is left to cut. A mark before
     * a clear and a log grown back past it would not be noticed here. */
    if (mark.len > l->len || mark.count > l->count)
        return;
    l->len = mark.len;
    l->count = mark.count;
}

int kv_oplog_next(const kv_oplog *l, size_t *pos, kv_oplog_entry *e)
{
    if (*pos >= l->len)
        return 0;
    const uint8_t *p = l->data + *pos;
    e->kind = (kv_oplog_kind)p[0];
    e->klen = get32(p + 1);
    e->vlen = get32(p + 5);
    memcpy(&e->rev, p + 9, 8);
    memcpy(&e->expires, p + 17, 8);
    e->key = p + HEAD;
    e->value = p + HEAD + e->klen;
    *pos += HEAD + e->klen + e->vlen + TAIL;
    return 1;
}

void kv_oplog_clear(kv_oplog *l)
{
    if (l->cap > KEEP_BYTES)
        kv_oplog_free(l);
    l->len = 0;
    l->count = 0;
}

void kv_oplog_free(kv_oplog *l)
{
    free(l->data);
    *l = (kv_oplog)KV_OPLOG_INIT;
}
