/* utf8.h - UTF-8 validation: for what the server puts in a protobuf
 * `string` (proto3 requires valid UTF-8 there, and a client in a strict
 * language, Python, Java, Go, fails to decode an answer that is not), and
 * for kvctl deciding whether a value is text it can show as is. Pure: no
 * allocation, no state. */
#ifndef KV_UTF8_H
#define KV_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Checks P[0..LEN) against UTF-8 as RFC 3629 and Unicode (table 3-7) define
 * it: no overlong forms, no surrogates (U+D800..U+DFFF), nothing past
 * U+10FFFF, no sequence cut short. NUL is a valid character. Returns LEN
 * when all of it is valid, else the offset of the first byte of the first
 * ill-formed sequence. */
size_t kv_utf8_check(const uint8_t *p, size_t len);

/* The well-formed sequence at P[0..LEN) (LEN >= 1), by the same rules:
 * returns its length (1 to 4) and sets *CP to its code point, or returns 0
 * when it is ill-formed or cut short. */
size_t kv_utf8_sequence(const uint8_t *p, size_t len, uint32_t *cp);

#endif
