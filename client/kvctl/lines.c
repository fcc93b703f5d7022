/* lines.c - a line reader over a file descriptor for batch mode. It owns
 * its buffer; lines it hands out point into that buffer. Unlike stdio it
 * can tell whether more input is ready without blocking. Also a whole
 * input read at once (set's value, txn, load). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lines.h"
#include "mem.h"

enum { READ_CHUNK = 64 * 1024 };

void kvctl_lines_init(kvctl_lines *r, int fd)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
}

void kvctl_lines_free(kvctl_lines *r)
{
    free(r->buf);
    r->buf = NULL;
}

int kvctl_lines_take(kvctl_lines *r, const char **line, size_t *len)
{
    char *p, *nl;
    size_t avail = r->len - r->start, n;

    if (!avail)
        return r->eof ? -1 : 0;
    p = r->buf + r->start;
    nl = memchr(p, '\n', avail);
    if (nl) {
        n = (size_t)(nl - p);
        r->start += n + 1;
    } else if (r->eof) {
        n = avail;
        r->start = r->len;
    } else {
        return 0;
    }
    if (n && p[n - 1] == '\r')
        n--;
    *line = p;
    *len = n;
    return 1;
}

int kvctl_lines_fill(kvctl_lines *r, int wait)
{
    ssize_t got;

    if (r->eof)
        return 0;
    if (!wait) {
        struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
        if (poll(&pfd, 1, 0) <= 0)
            return 0;
    }
    /* Keep only unread bytes, then make room for one more chunk. */
    if (r->start) {
        memmove(r->buf, r->buf + r->start, r->len - r->start);
        r->len -= r->start;
        r->start = 0;
    }
    if (r->cap - r->len < READ_CHUNK) {
        r->cap = r->len + READ_CHUNK;
        r->buf = kvctl_mem_realloc(r->buf, r->cap);
    }
    do
        got = read(r->fd, r->buf + r->len, r->cap - r->len);
    while (got < 0 && errno == EINTR);
    if (got < 0)
        return -1;
    if (got == 0) {
        r->eof = 1;
        return 0;
    }
    r->len += (size_t)got;
    return 1;
}

int kvctl_read_all(int fd, kvctl_bytes *b)
{
    size_t cap = 64 * 1024;

    b->data = kvctl_mem_alloc(cap + 1);
    b->len = 0;
    for (;;) {
        ssize_t got;
        if (b->len == cap) {
            cap *= 2;
            b->data = kvctl_mem_realloc(b->data, cap + 1);
        }
        got = read(fd, b->data + b->len, cap - b->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -1;
        if (got == 0)
            break;
        b->len += (size_t)got;
    }
    b->data[b->len] = 0;
    return 0;
}
