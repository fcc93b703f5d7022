/* mem.h - allocation that cannot fail: kvctl is a short-lived tool, so
 * running out of memory prints one line and exits. */
#ifndef KVCTL_MEM_H
#define KVCTL_MEM_H

#include <stddef.h>
#include "kvctl.h"

/* Each returns memory the caller frees with free(); never NULL. */
void *kvctl_mem_alloc(size_t n);
void *kvctl_mem_realloc(void *p, size_t n);
char *kvctl_mem_strdup(const char *s);

/* Copies LEN bytes of P into DST->data (NUL-terminated; the caller frees
 * DST->data). P may be NULL when LEN is 0. */
void kvctl_mem_bytes(kvctl_bytes *dst, const void *p, size_t len);

#endif
