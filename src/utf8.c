/* utf8.c - UTF-8 validation; see utf8.h. Owns nothing. Byte by byte, with
 * the second byte's range depending on the first, as in Unicode's table of
 * well-formed sequences: that is where overlong forms, surrogates and code
 * points past U+10FFFF are told apart. Strings checked here are short (Ping
 * messages, values kvctl shows), so no word-at-a-time ASCII fast path. */
#include "utf8.h"

size_t kv_utf8_sequence(const uint8_t *p, size_t len, uint32_t *cp)
{
    uint8_t b = p[0];
    uint8_t lo = 0x80, hi = 0xbf;       /* the second byte's range */
    size_t n;

    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xc2 && b <= 0xdf) {
        n = 2;
    } else if (b >= 0xe0 && b <= 0xef) {
        n = 3;
        if (b == 0xe0)
            lo = 0xa0;                  /* below: overlong */
        else if (b == 0xed)
            hi = 0x9f;                  /* above: surrogates */
    } else if (b >= 0xf0 && b <= 0xf4) {
        n = 4;
        if (b == 0xf0)
            lo = 0x90;                  /* below: overlong */
        else if (b == 0xf4)
            hi = 0x8f;                  /* above: past U+10FFFF */
    } else {
        return 0;                       /* 80..C1 (continuation, overlong), F5..FF */
    }
    if (len < n || p[1] < lo || p[1] > hi)
        return 0;
    uint32_t c = b & (0x7fu >> n);
    for (size_t k = 1; k < n; k++) {
        if (p[k] < 0x80 || p[k] > 0xbf)
            return 0;
        c = c << 6 | (p[k] & 0x3fu);
    }
    *cp = c;
    return n;
}

size_t kv_utf8_check(const uint8_t *p, size_t len)
{
    size_t i = 0;
    uint32_t cp;

    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = kv_utf8_sequence(p + i, len - i, &cp);
        if (n == 0)
            return i;
        i += n;
    }
    return len;
}
