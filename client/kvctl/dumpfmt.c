/* dumpfmt.c - the dump text format's lines; see dumpfmt.h. Owns no file:
 * backup.c writes dumps, load.c reads them. */
#include <stdio.h>
#include <string.h>
#include "args.h"
#include "dumpfmt.h"

static int plain(uint8_t c)
{
    return c >= 0x21 && c <= 0x7e && c != '\\' && c != '"' && c != '#';
}

static void put_field(FILE *fp, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";

    if (!n) {
        fputs("\"\"", fp);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (plain(p[i])) {
            putc(p[i], fp);
        } else {
            char esc[4] = { '\\', 'x', hex[p[i] >> 4], hex[p[i] & 15] };
            fwrite(esc, 1, 4, fp);
        }
    }
}

void kvctl_dump_put(FILE *fp, const uint8_t *key, size_t klen, const uint8_t *value, size_t vlen,
                    uint64_t ttl_ms)
{
    put_field(fp, key, klen);
    putc(' ', fp);
    put_field(fp, value, vlen);
    if (ttl_ms)
        fprintf(fp, " %llu", (unsigned long long)ttl_ms);
    putc('\n', fp);
}

/* Decodes the field at *P (up to a space or END) into OUT, moving *P past
 * it. Returns its length, or -1 with ERR naming the field WHAT. */
static long get_field(const char **p, const char *end, uint8_t *out, const char *what,
                      char *err, size_t errlen)
{
    const char *s = *p;
    size_t n = 0;

    if (end - s >= 2 && s[0] == '"' && s[1] == '"' && (end - s == 2 || s[2] == ' ')) {
        *p = s + 2;
        return 0;
    }
    for (; s < end && *s != ' '; n++) {
        uint8_t c = (uint8_t)*s;
        if (c == '\\') {
            int hi = end - s >= 4 && s[1] == 'x' ? kvctl_args_hex_value(s[2]) : -1;
            int lo = hi >= 0 ? kvctl_args_hex_value(s[3]) : -1;
            if (lo < 0) {
                snprintf(err, errlen, "%s: a \\ that is not \\xHH", what);
                return -1;
            }
            out[n] = (uint8_t)(hi << 4 | lo);
            s += 4;
        } else if (!plain(c)) {
            snprintf(err, errlen, "%s: byte 0x%02x written as it is (write it \\x%02x)", what,
                     c, c);
            return -1;
        } else {
            out[n] = c;
            s++;
        }
    }
    if (!n) {
        snprintf(err, errlen, "%s: empty (an empty value is \"\")", what);
        return -1;
    }
    *p = s;
    return (long)n;
}

int kvctl_dump_get(const char *line, size_t len, uint8_t *buf, kvctl_dump_line *out,
                   char *err, size_t errlen)
{
    const char *p = line, *end = line + len;
    long n;

    if (len && line[0] == '#')
        return 0;
    memset(out, 0, sizeof *out);
    if ((n = get_field(&p, end, buf, "KEY", err, errlen)) < 0)
        return -1;
    if (n == 0) {
        snprintf(err, errlen, "KEY: empty (keys have at least one byte)");
        return -1;
    }
    out->key = buf;
    out->klen = (size_t)n;
    if (p == end || *p++ != ' ' || p == end) {
        snprintf(err, errlen, "no VALUE after KEY (one space between fields)");
        return -1;
    }
    if ((n = get_field(&p, end, buf + out->klen, "VALUE", err, errlen)) < 0)
        return -1;
    out->value = buf + out->klen;
    out->vlen = (size_t)n;
    if (p == end)
        return 1;
    if (*p++ != ' ' || p == end) {
        snprintf(err, errlen, "one space between fields, and TTL_MS after it");
        return -1;
    }
    uint64_t ttl = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || ttl > (UINT64_MAX - 9) / 10) {
            snprintf(err, errlen, "TTL_MS: not a number of milliseconds");
            return -1;
        }
        ttl = ttl * 10 + (uint64_t)(*p - '0');
    }
    if (!ttl) {
        snprintf(err, errlen, "TTL_MS: 0 (leave it out for a key that does not expire)");
        return -1;
    }
    out->ttl_ms = ttl;
    return 1;
}
