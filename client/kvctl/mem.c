/* mem.c - allocation that cannot fail (see mem.h). It owns no memory
 * itself; everything it returns belongs to the caller. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

static void die(void)
{
    fputs("kvctl: out of memory\n", stderr);
    exit(KVCTL_EXIT_USAGE);
}

void *kvctl_mem_alloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die();
    return p;
}

void *kvctl_mem_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        die();
    return q;
}

char *kvctl_mem_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(kvctl_mem_alloc(n), s, n);
}

void kvctl_mem_bytes(kvctl_bytes *dst, const void *p, size_t len)
{
    dst->data = kvctl_mem_alloc(len + 1);
    if (len)
        memcpy(dst->data, p, len);
    dst->data[len] = 0;
    dst->len = len;
}
