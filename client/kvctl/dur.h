/* dur.h - durations as kvctl reads and writes them: times to live, in
 * milliseconds on the wire, as "500ms", "30s", "1.5m" or "2h" for people. */
#ifndef KVCTL_DUR_H
#define KVCTL_DUR_H

#include <stddef.h>
#include <stdint.h>

/* Reads TEXT[0..LEN) as a duration into *MS: a decimal number (30, 1.5,
 * .5) and a unit, ms, s, m or h; a bare number is seconds. A fraction of a millisecond is rounded up
 * ("0.5ms" is 1). Returns 0, or -1 for anything else (a sign, blanks, an
 * unknown unit, more than UINT64_MAX milliseconds). */
int kvctl_dur_parse(const uint8_t *text, size_t len, uint64_t *ms);

/* Writes MS into BUF (LEN bytes, NUL-terminated) as kvctl_dur_parse()
 * reads it back: "250ms" below a second, else seconds with up to three
 * decimals and no trailing zeros ("29.5s", "3600s"). */
void kvctl_dur_format(uint64_t ms, char *buf, size_t len);

#endif
