/* utf8.c - UTF-8 validation; see utf8.h. Owns nothing. Byte by byte, with
 * the second byte's range depending on the first, as in Unicode's table of
 * well-formed sequences: that is where overlong forms, surrogates and code
 * points past U+10FFFF are told apart. Strings checked here are short (Ping
 * messages), so no word-at-a-time ASCII fast path. */
#include "utf8.h"

size_t kv_utf8_check(const uint8_t *p, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint8_t b = p[i];
        uint8_t lo = 0x80, hi = 0xbf;   /* the second byte's range */
        size_t n;

        if (b < 0x80) {
            i++;
            continue;
        }
        if (b >= 0xc2 && b <= 0xdf) {
            n = 2;
        } else if (b >= 0xe0 && b <= 0xef) {
            n = 3;
            if (b == 0xe0)
                lo = 0xa0;              /* below: overlong */
            else if (b == 0xed)
                hi = 0x9f;              /* above: surrogates */
        } else if (b >= 0xf0 && b <= 0xf4) {
            n = 4;
            if (b == 0xf0)
                lo = 0x90;              /* below: overlong */
            else if (b == 0xf4)
                hi = 0x8f;              /* above: past U+10FFFF */
        } else {
            return i;                   /* 80..C1 (continuation, overlong), F5..FF */
        }
        if (len - i < n || p[i + 1] < lo || p[i + 1] > hi)
            return i;
        for (size_t k = 2; k < n; k++)
            if (p[i + k] < 0x80 || p[i + k] > 0xbf)
                return i;
        i += n;
    }
    return len;
}
