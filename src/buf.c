/* buf.c - growable byte buffer; see buf.h. Owns only its data array. */
#include <stdlib.h>
#include <string.h>
#include "buf.h"

int kv_buf_reserve(kv_buf *b, size_t n)
{
    if (b->cap - b->end >= n)
        return 0;
    size_t len = b->end - b->start;
    if (b->start > 0) {
        memmove(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = len;
        if (b->cap - b->end >= n)
            return 0;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - len < n) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    uint8_t *d = realloc(b->data, cap);
    if (!d)
        return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

int kv_buf_append(kv_buf *b, const void *p, size_t n)
{
    if (kv_buf_reserve(b, n) < 0)
        return -1;
    memcpy(kv_buf_tail(b), p, n);
    kv_buf_commit(b, n);
    return 0;
}

void kv_buf_consume(kv_buf *b, size_t n)
{
    b->start += n;
    if (b->start == b->end)
        b->start = b->end = 0;
}

void kv_buf_shrink(kv_buf *b, size_t keep)
{
    if (b->start == b->end && b->cap > keep) {
        free(b->data);
        b->data = NULL;
        b->start = b->end = b->cap = 0;
    }
}

void kv_buf_free(kv_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}
