/* buf.h - a growable byte buffer with a read cursor, for socket input and
 * output in the server, the client library and kvbench.
 *
 *   data[0 .. start)      consumed, reclaimed by the next kv_buf_reserve()
 *   data[start .. end)    pending bytes
 *   data[end .. cap)      free room for the next read or append
 *
 * Writers never touch start/end: they reserve room, write at the tail and
 * commit what they wrote (sds's MakeRoomFor / IncrLen idiom):
 *
 *   if (kv_buf_reserve(b, max) < 0) return -1;
 *   n = write_into(kv_buf_tail(b), kv_buf_room(b));
 *   kv_buf_commit(b, n);
 */
#ifndef KV_BUF_H
#define KV_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct kv_buf {
    uint8_t *data;
    size_t start, end, cap;
} kv_buf;

#define KV_BUF_INIT { NULL, 0, 0, 0 }

static inline size_t kv_buf_len(const kv_buf *b) { return b->end - b->start; }
static inline uint8_t *kv_buf_head(const kv_buf *b) { return b->data + b->start; }
/* Where the next byte goes, and how many fit there without a reserve. */
static inline uint8_t *kv_buf_tail(const kv_buf *b) { return b->data + b->end; }
static inline size_t kv_buf_room(const kv_buf *b) { return b->cap - b->end; }
/* Marks N bytes written at the tail as pending; N <= kv_buf_room(). */
static inline void kv_buf_commit(kv_buf *b, size_t n) { b->end += n; }

/* Makes room for at least N more bytes after end, moving pending bytes to
 * the front first. Returns 0, or -1 when memory is out (B unchanged). */
int kv_buf_reserve(kv_buf *b, size_t n);

/* Appends N bytes. Returns 0 or -1 (out of memory, B unchanged). */
int kv_buf_append(kv_buf *b, const void *p, size_t n);

/* Marks N pending bytes consumed; empties cheaply when all are. */
void kv_buf_consume(kv_buf *b, size_t n);

/* Gives memory back when the buffer is empty and larger than KEEP bytes, so
 * one big frame does not pin memory on an idle connection. */
void kv_buf_shrink(kv_buf *b, size_t keep);

void kv_buf_free(kv_buf *b);

#endif
