/* lines.h - reading batch input line by line, with a way to ask "what has
 * already arrived?" so that batch mode can pipeline everything available
 * without waiting for more. */
#ifndef KVCTL_LINES_H
#define KVCTL_LINES_H

#include <stddef.h>
#include "kvctl.h"

typedef struct kvctl_lines {
    int fd;       /* read from; not owned (never closed here) */
    char *buf;    /* owned; unread bytes are buf[start .. len) */
    size_t start;
    size_t len;
    size_t cap;
    int eof;      /* read() returned 0: no more input will come */
} kvctl_lines;

/* Starts reading FD. Free with kvctl_lines_free(). */
void kvctl_lines_init(kvctl_lines *r, int fd);
void kvctl_lines_free(kvctl_lines *r);

/* Takes the next whole line out of the buffer without reading. Returns 1
 * and sets *LINE and *LEN (the line without its "\n" or "\r\n"; valid until
 * the next kvctl_lines_fill()); 0 when no whole line is buffered; -1 when
 * the input is over. At end of input a last line without "\n" counts. */
int kvctl_lines_take(kvctl_lines *r, const char **line, size_t *len);

/* Reads more input. With WAIT it blocks until some arrives; without, it
 * reads only when input is ready now. Returns 1 when bytes were added, 0
 * when none were (nothing ready, or end of input: see r->eof), -1 on a read
 * error (errno says which). */
int kvctl_lines_fill(kvctl_lines *r, int wait);

/* Reads all of FD, to its end, into B (NUL-terminated; the caller frees
 * B->data, also after a failure). Returns 0, or -1 with errno. */
int kvctl_read_all(int fd, kvctl_bytes *b);

#endif
