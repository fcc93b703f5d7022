/* size.c - parsing and writing flag sizes; see size.h. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "size.h"

/* A digit must come first: strtoull skips blanks and takes a sign, so
 * " -1" would read as 2^64 - 1, no limit at all. */
int kv_size_parse(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: break;
    }
    if (*end || v > (max >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

const char *kv_size_text(uint64_t n, char *buf, size_t len)
{
    static const char units[] = "GMK";

    for (int i = 0; i < 3; i++) {
        uint64_t u = (uint64_t)1 << (30 - 10 * i);
        if (n && n % u == 0) {
            snprintf(buf, len, "%llu%c", (unsigned long long)(n / u), units[i]);
            return buf;
        }
    }
    snprintf(buf, len, "%llu", (unsigned long long)n);
    return buf;
}
