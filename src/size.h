/* size.h - byte sizes as the flags write them: "123", "64K", "16M", "1G"
 * (powers of 1024), read from flags and written back in logs and errors. */
#ifndef KV_SIZE_H
#define KV_SIZE_H

#include <stddef.h>
#include <stdint.h>

/* Parses S up to MAX into *OUT. Returns 0, or -1 when S is not such a size
 * or is over MAX. A digit must come first. */
int kv_size_parse(const char *s, uint64_t max, uint64_t *out);

/* Writes N into BUF (LEN bytes) in the largest unit that divides it
 * exactly, so it reads back as N. Returns BUF. */
const char *kv_size_text(uint64_t n, char *buf, size_t len);

#endif
