/* dumpfmt.h - the text format of kvctl dump and kvctl load: a header
 * line, then one key a line, every byte value written so that it survives
 * any text tool (docs/PROTOCOL.md, "Backups"):
 *
 *   # kvstore dump 1 revision=R keys=N
 *   KEY VALUE [TTL_MS]
 *
 * KEY and VALUE: bytes 0x21..0x7e as they are, except \ " # written
 * \x5c \x22 \x23 like every other byte (\xHH, two hex digits); an empty
 * VALUE is "". TTL_MS: the milliseconds the key had left when the
 * snapshot was taken; none: it does not expire. One space between
 * fields; lines end with \n; lines starting with # are comments. Pure
 * functions: no I/O but the FILE written to. */
#ifndef KVCTL_DUMPFMT_H
#define KVCTL_DUMPFMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KVCTL_DUMP_HEADER "# kvstore dump 1"

/* One line of a dump, decoded. */
typedef struct kvctl_dump_line {
    uint8_t *key;       /* into the caller's output buffer */
    size_t klen;
    uint8_t *value;
    size_t vlen;
    uint64_t ttl_ms;    /* 0: none */
} kvctl_dump_line;

/* Writes the line for KEY, VALUE and TTL_MS (0: none) to FP. */
void kvctl_dump_put(FILE *fp, const uint8_t *key, size_t klen, const uint8_t *value, size_t vlen,
                    uint64_t ttl_ms);

/* Decodes the line LINE[0..LEN) (without its \n) into *OUT, its bytes
 * written at BUF (room for LEN bytes: decoding never grows). Returns 1 for
 * a key, 0 for a comment, or -1 with a one-line reason in ERR. */
int kvctl_dump_get(const char *line, size_t len, uint8_t *buf, kvctl_dump_line *out,
                   char *err, size_t errlen);

#endif
