/* text.c - showing bytes to a person: the C-style quoting used for keys in
 * errors, server text in stats and, on a terminal, values that are not
 * plain text; and the test of what plain text is. It decides nothing about
 * when to quote: out.c and stats.c do. */
#include <string.h>

#include "text.h"
#include "utf8.h"

size_t kvctl_text_escape(uint8_t c, char esc[5])
{
    if (c == '"' || c == '\\')
        snprintf(esc, 5, "\\%c", c);
    else if (c == '\n')
        snprintf(esc, 5, "\\n");
    else if (c == '\r')
        snprintf(esc, 5, "\\r");
    else if (c == '\t')
        snprintf(esc, 5, "\\t");
    else if (c < 0x20 || c >= 0x7f)
        snprintf(esc, 5, "\\x%02x", c);
    else
        snprintf(esc, 5, "%c", c);
    return strlen(esc);
}

/* The length of the well-formed UTF-8 sequence of a printable code point
 * at P (N bytes left), or 0. Printable here means not a C1 control
 * (U+0080..U+009F): terminals act on those (U+009B starts an escape
 * sequence like ESC [). */
static size_t utf8_printable(const uint8_t *p, size_t n)
{
    uint32_t cp;
    size_t len = kv_utf8_sequence(p, n, &cp);

    return len && cp >= 0xa0 ? len : 0;
}

int kvctl_text_is_plain(const uint8_t *data, size_t len)
{
    if (len && data[0] == '"')
        return 0;
    for (size_t i = 0; i < len;) {
        if (data[i] >= 0x20 && data[i] < 0x7f) {
            i++;
            continue;
        }
        size_t n = utf8_printable(data + i, len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

void kvctl_text_put_quoted(FILE *fp, const uint8_t *data, size_t len)
{
    char esc[5];

    fputc('"', fp);
    for (size_t i = 0; i < len; i++) {
        size_t n = kvctl_text_escape(data[i], esc);
        fwrite(esc, 1, n, fp);
    }
    fputc('"', fp);
}
