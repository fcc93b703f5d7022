/* utf8.h - UTF-8 validation for what the server puts in a protobuf
 * `string`: proto3 requires valid UTF-8 there, and a client in a strict
 * language (Python, Java, Go) fails to decode an answer that is not. Pure:
 * no allocation, no state. */
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

#endif
