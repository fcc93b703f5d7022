/* backup_file.h - the backup file format (docs/PROTOCOL.md, "Backups"):
 * what Snapshot produces, `kvctl snapshot save` stores and `kvstored
 * --restore` loads. Pure functions over bytes, no I/O, no allocation but a
 * caller's kv_buf: the server (backup.c, restore.c) and kvctl share them.
 *
 *   header   32 bytes: "KVBACKUP", version (u32 LE, 1), flags (u32 LE, 0),
 *            the store's revision (u64 LE), when it was taken (u64 LE,
 *            unix ms)
 *   records  one a key, in key order: varint klen, key, varint vlen,
 *            value, varints create_revision, mod_revision, version and
 *            deadline (unix ms; 0: none)
 *   trailer  24 bytes: "KVBKEND1", the record count (u64 LE), and the
 *            XXH3-64 (seed 0) of every byte before it (u64 LE)
 *
 * A reader checks the whole file (kv_bfile_check) before it uses any of
 * it: a file cut short has no trailer, a flipped bit breaks the sum. */
#ifndef KV_BACKUP_FILE_H
#define KV_BACKUP_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>
#include "buf.h"

#define KV_BFILE_VERSION 1
#define KV_BFILE_HEADER_BYTES 32
#define KV_BFILE_TRAILER_BYTES 24

/* One key of a backup. Bytes borrowed: from the caller when writing, views
 * of the file's bytes when reading. */
typedef struct kv_bfile_record {
    const uint8_t *key;
    size_t klen;
    const uint8_t *value;       /* may be NULL when vlen is 0 */
    size_t vlen;
    uint64_t create_revision;
    uint64_t mod_revision;
    uint64_t version;
    uint64_t deadline_ms;       /* unix ms; 0: does not expire */
} kv_bfile_record;

/* What a checked file holds. */
typedef struct kv_bfile_info {
    uint64_t revision;
    uint64_t created_ms;
    uint64_t count;             /* records */
    const uint8_t *records;     /* the first record ... */
    const uint8_t *records_end; /* ... and where they end (the trailer) */
} kv_bfile_info;

/* Writes the header for REVISION taken at CREATED_MS into OUT (32 bytes). */
void kv_bfile_header_put(uint8_t *out, uint64_t revision, uint64_t created_ms);

/* Appends record R to B. Returns 0, or -1 when memory is out. */
int kv_bfile_record_put(kv_buf *b, const kv_bfile_record *r);

/* Writes the trailer into OUT (24 bytes) for COUNT records, H being the
 * sum of every byte before it (the trailer's first 16 are added to H).
 * H is used up. */
void kv_bfile_trailer_put(uint8_t *out, uint64_t count, XXH3_state_t *h);

/* Reads the record at *P (before END) into *R and moves *P past it.
 * Returns 0, or -1 when the bytes are not a whole record. */
int kv_bfile_record_get(const uint8_t **p, const uint8_t *end, kv_bfile_record *r);

/* Checks the whole file P[0..LEN): header, trailer, sum, every record
 * (whole, meta a write could have made, keys ascending), their count.
 * Returns 0 with *INFO filled, or -1 with a one-line reason in WHY. */
int kv_bfile_check(const uint8_t *p, size_t len, kv_bfile_info *info, char *why, size_t whylen);

/* Checks a file as its bytes come, for a copy that is written as it is
 * read (kvctl snapshot save): the sum, the header and the trailer; the
 * records themselves are checked by kv_bfile_check when the file is used. */
typedef struct kv_bfile_stream {
    XXH3_state_t *sum;          /* private */
    uint8_t head[KV_BFILE_HEADER_BYTES];    /* private: the first bytes */
    uint8_t tail[KV_BFILE_TRAILER_BYTES];   /* private: the last bytes seen */
    uint64_t len;               /* read-only: bytes fed so far */
} kv_bfile_stream;

/* Prepares S. Returns 0, or -1 when memory is out. Free with _free. */
int kv_bfile_stream_init(kv_bfile_stream *s);
void kv_bfile_stream_feed(kv_bfile_stream *s, const uint8_t *p, size_t n);
/* After the last byte: 0 with *INFO's revision, created_ms and count
 * (records NULL), or -1 with the reason in WHY. */
int kv_bfile_stream_end(kv_bfile_stream *s, kv_bfile_info *info, char *why, size_t whylen);
void kv_bfile_stream_free(kv_bfile_stream *s);

#endif
