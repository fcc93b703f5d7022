/* backup_file.c - the backup file format's bytes; see backup_file.h. Owns
 * no file and no socket: backup.c writes, restore.c and kvctl read. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "backup_file.h"
#include "varint.h"

static const uint8_t MAGIC[8] = { 'K', 'V', 'B', 'A', 'C', 'K', 'U', 'P' };
static const uint8_t END_MAGIC[8] = { 'K', 'V', 'B', 'K', 'E', 'N', 'D', '1' };

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void kv_bfile_header_put(uint8_t *out, uint64_t revision, uint64_t created_ms)
{
    memcpy(out, MAGIC, 8);
    put_u64(out + 8, KV_BFILE_VERSION);     /* version (u32), flags (u32): 0 */
    put_u64(out + 16, revision);
    put_u64(out + 24, created_ms);
}

static int put_varint(kv_buf *b, uint64_t v)
{
    if (kv_buf_reserve(b, KV_VARINT_MAX) < 0)
        return -1;
    kv_buf_commit(b, (size_t)(kv_varint_put(kv_buf_tail(b), v) - kv_buf_tail(b)));
    return 0;
}

int kv_bfile_record_put(kv_buf *b, const kv_bfile_record *r)
{
    if (kv_buf_reserve(b, r->klen + r->vlen + 6 * KV_VARINT_MAX) < 0)
        return -1;
    /* Room is reserved: none of these can fail. */
    put_varint(b, r->klen);
    kv_buf_append(b, r->key, r->klen);
    put_varint(b, r->vlen);
    if (r->vlen)
        kv_buf_append(b, r->value, r->vlen);
    put_varint(b, r->create_revision);
    put_varint(b, r->mod_revision);
    put_varint(b, r->version);
    put_varint(b, r->deadline_ms);
    return 0;
}

void kv_bfile_trailer_put(uint8_t *out, uint64_t count, XXH3_state_t *h)
{
    memcpy(out, END_MAGIC, 8);
    put_u64(out + 8, count);
    XXH3_64bits_update(h, out, 16);
    put_u64(out + 16, XXH3_64bits_digest(h));
}

static int get_bytes(const uint8_t **p, const uint8_t *end, const uint8_t **data, size_t *n)
{
    uint64_t len;

    if (kv_varint_get(p, end, KV_VARINT_MAX, &len) < 0 || len > (uint64_t)(end - *p))
        return -1;
    *data = *p;
    *n = (size_t)len;
    *p += len;
    return 0;
}

int kv_bfile_record_get(const uint8_t **p, const uint8_t *end, kv_bfile_record *r)
{
    if (get_bytes(p, end, &r->key, &r->klen) < 0 || get_bytes(p, end, &r->value, &r->vlen) < 0
        || kv_varint_get(p, end, KV_VARINT_MAX, &r->create_revision) < 0
        || kv_varint_get(p, end, KV_VARINT_MAX, &r->mod_revision) < 0
        || kv_varint_get(p, end, KV_VARINT_MAX, &r->version) < 0
        || kv_varint_get(p, end, KV_VARINT_MAX, &r->deadline_ms) < 0)
        return -1;
    return 0;
}

/* The header at P (32 bytes) into INFO. Returns 0, or -1 with WHY. */
static int header_get(const uint8_t *p, kv_bfile_info *info, char *why, size_t whylen)
{
    uint64_t vf = get_u64(p + 8);

    if (memcmp(p, MAGIC, 8) != 0) {
        snprintf(why, whylen, "not a kvstore backup (no KVBACKUP header)");
        return -1;
    }
    if ((uint32_t)vf != KV_BFILE_VERSION || vf >> 32) {
        snprintf(why, whylen, "a backup of format version %u (flags %u); this kvstore reads "
                 "version %d", (unsigned)(uint32_t)vf, (unsigned)(vf >> 32), KV_BFILE_VERSION);
        return -1;
    }
    info->revision = get_u64(p + 16);
    info->created_ms = get_u64(p + 24);
    /* No store gets there by writes, and a store restored at 2^64 - 1
     * would wrap its next write's revision to 0 (records' revisions are
     * bounded by this one, kv_bfile_check). */
    if (info->revision > INT64_MAX) {
        snprintf(why, whylen, "damaged: its revision %llu is past 2^63 - 1, more writes than "
                 "any store has made", (unsigned long long)info->revision);
        return -1;
    }
    return 0;
}

/* The trailer at T (24 bytes) whose sum should be SUM, the sum of every
 * byte before its last 8. Returns 0 with INFO's count, or -1 with WHY. */
static int trailer_get(const uint8_t *t, uint64_t sum, uint64_t len, kv_bfile_info *info,
                       char *why, size_t whylen)
{
    if (memcmp(t, END_MAGIC, 8) != 0) {
        snprintf(why, whylen, "truncated or damaged: %llu bytes without the end marker "
                 "(KVBKEND1) a whole backup ends with", (unsigned long long)len);
        return -1;
    }
    if (get_u64(t + 16) != sum) {
        snprintf(why, whylen, "corrupt: the checksum (XXH3-64) of its %llu bytes is "
                 "%016llx, the file says %016llx", (unsigned long long)len,
                 (unsigned long long)sum, (unsigned long long)get_u64(t + 16));
        return -1;
    }
    info->count = get_u64(t + 8);
    return 0;
}

static int too_short(uint64_t len, char *why, size_t whylen)
{
    snprintf(why, whylen, "truncated: %llu bytes, fewer than the %d of an empty backup",
             (unsigned long long)len, KV_BFILE_HEADER_BYTES + KV_BFILE_TRAILER_BYTES);
    return -1;
}

int kv_bfile_check(const uint8_t *p, size_t len, kv_bfile_info *info, char *why, size_t whylen)
{
    const uint8_t *end = p + len - KV_BFILE_TRAILER_BYTES, *at, *prev = NULL;
    size_t prevlen = 0;
    uint64_t n = 0;

    if (len < KV_BFILE_HEADER_BYTES + KV_BFILE_TRAILER_BYTES)
        return too_short(len, why, whylen);
    if (header_get(p, info, why, whylen) < 0
        || trailer_get(end, XXH3_64bits(p, len - 8), len, info, why, whylen) < 0)
        return -1;
    for (at = p + KV_BFILE_HEADER_BYTES; at < end; n++) {
        kv_bfile_record r;
        uint64_t offset = (uint64_t)(at - p);
        if (kv_bfile_record_get(&at, end, &r) < 0) {
            snprintf(why, whylen, "damaged: record %llu (at byte %llu) is cut short",
                     (unsigned long long)n + 1, (unsigned long long)offset);
            return -1;
        }
        if (!r.create_revision || !r.version || r.mod_revision < r.create_revision
            || r.mod_revision > info->revision || !r.klen) {
            snprintf(why, whylen, "damaged: record %llu (at byte %llu) has revisions no "
                     "write could have made", (unsigned long long)n + 1,
                     (unsigned long long)offset);
            return -1;
        }
        int c = prev ? memcmp(prev, r.key, prevlen < r.klen ? prevlen : r.klen) : -1;
        if (prev && (c > 0 || (c == 0 && prevlen >= r.klen))) {
            snprintf(why, whylen, "damaged: record %llu (at byte %llu) is out of key order",
                     (unsigned long long)n + 1, (unsigned long long)offset);
            return -1;
        }
        prev = r.key;
        prevlen = r.klen;
    }
    if (n != info->count) {
        snprintf(why, whylen, "damaged: %llu records, the trailer says %llu",
                 (unsigned long long)n, (unsigned long long)info->count);
        return -1;
    }
    info->records = p + KV_BFILE_HEADER_BYTES;
    info->records_end = end;
    return 0;
}

int kv_bfile_stream_init(kv_bfile_stream *s)
{
    memset(s, 0, sizeof *s);
    if (!(s->sum = XXH3_createState()))
        return -1;
    XXH3_64bits_reset(s->sum);
    return 0;
}

/* Keeps the last KV_BFILE_TRAILER_BYTES fed out of the sum until the end,
 * since the file's last 8 bytes are the sum itself. */
void kv_bfile_stream_feed(kv_bfile_stream *s, const uint8_t *p, size_t n)
{
    size_t tl = s->len < KV_BFILE_TRAILER_BYTES ? (size_t)s->len : KV_BFILE_TRAILER_BYTES;

    if (s->len < KV_BFILE_HEADER_BYTES) {
        size_t k = KV_BFILE_HEADER_BYTES - (size_t)s->len;
        memcpy(s->head + s->len, p, k < n ? k : n);
    }
    s->len += n;
    if (n >= KV_BFILE_TRAILER_BYTES) {
        XXH3_64bits_update(s->sum, s->tail, tl);
        XXH3_64bits_update(s->sum, p, n - KV_BFILE_TRAILER_BYTES);
        memcpy(s->tail, p + n - KV_BFILE_TRAILER_BYTES, KV_BFILE_TRAILER_BYTES);
        return;
    }
    size_t drop = tl + n > KV_BFILE_TRAILER_BYTES ? tl + n - KV_BFILE_TRAILER_BYTES : 0;
    XXH3_64bits_update(s->sum, s->tail, drop);
    memmove(s->tail, s->tail + drop, tl - drop);
    memcpy(s->tail + tl - drop, p, n);
}

int kv_bfile_stream_end(kv_bfile_stream *s, kv_bfile_info *info, char *why, size_t whylen)
{
    memset(info, 0, sizeof *info);
    if (s->len < KV_BFILE_HEADER_BYTES + KV_BFILE_TRAILER_BYTES)
        return too_short(s->len, why, whylen);
    if (header_get(s->head, info, why, whylen) < 0)
        return -1;
    XXH3_64bits_update(s->sum, s->tail, 16);
    return trailer_get(s->tail, XXH3_64bits_digest(s->sum), s->len, info, why, whylen);
}

void kv_bfile_stream_free(kv_bfile_stream *s)
{
    XXH3_freeState(s->sum);
    s->sum = NULL;
}
