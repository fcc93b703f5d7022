/* dur.c - reading and writing durations ("30s", "1.5m", "250ms"); see
 * dur.h. Integer arithmetic only, so every millisecond count up to
 * UINT64_MAX reads exactly. No I/O. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dur.h"

/* The units and their length in milliseconds; a bare number is seconds. */
static const struct {
    const char *name;
    uint64_t ms;
} units[] = {
    { "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 }, { "h", 60 * 60 * 1000 }, { "", 1000 },
};

int kvctl_dur_parse(const uint8_t *text, size_t len, uint64_t *ms)
{
    uint64_t whole = 0, frac = 0, scale = 1, unit = 0;
    size_t i = 0, digits = 0;
    int frac_left = 0;     /* digits past the ninth, not all 0: round up */

    for (; i < len && text[i] >= '0' && text[i] <= '9'; i++, digits++) {
        unsigned d = text[i] - '0';
        if (whole > (UINT64_MAX - d) / 10)
            return -1;
        whole = whole * 10 + d;
    }
    if (i < len && text[i] == '.') {
        size_t start = ++i;
        for (; i < len && text[i] >= '0' && text[i] <= '9'; i++) {
            if (i - start < 9) {
                frac = frac * 10 + (uint64_t)(text[i] - '0');
                scale *= 10;
            } else if (text[i] != '0') {
                frac_left = 1;
            }
        }
        if (i == start)
            return -1;
        digits += i - start;
    }
    if (digits == 0)
        return -1;
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++)
        if (strlen(units[u].name) == len - i && memcmp(units[u].name, text + i, len - i) == 0) {
            unit = units[u].ms;
            break;
        }
    if (!unit || whole > UINT64_MAX / unit)
        return -1;
    /* frac / scale of a unit, rounded up: frac < 10^9 and unit <= 3.6e6,
     * so the product fits. */
    uint64_t part = (frac * unit + scale - 1) / scale;
    if (frac_left && part * scale == frac * unit)
        part++;
    if (whole * unit > UINT64_MAX - part)
        return -1;
    *ms = whole * unit + part;
    return 0;
}

void kvctl_dur_format(uint64_t ms, char *buf, size_t len)
{
    char frac[8];
    size_t n;

    if (ms < 1000) {
        snprintf(buf, len, "%" PRIu64 "ms", ms);
        return;
    }
    snprintf(frac, sizeof frac, ".%03u", (unsigned)(ms % 1000));
    for (n = strlen(frac); n > 0 && (frac[n - 1] == '0' || frac[n - 1] == '.'); n--)
        if (frac[n - 1] == '.') {
            n--;
            break;
        }
    frac[n] = 0;
    snprintf(buf, len, "%" PRIu64 "%ss", ms / 1000, frac);
}
