/* args.c - splits a line of the shell or of batch input into words, with
 * shell-like quoting (no expansions, no variables). It owns the word array
 * it hands back until the caller frees it; it does no I/O. */
#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "mem.h"

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int kvctl_args_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the escape whose backslash is at S[*I - 1] (so S[*I] is the
 * letter) into *OUT and moves *I past it. Returns 0, or -1 with ERR set. */
static int unescape(const char *s, size_t n, size_t *i, uint8_t *out,
                    char *err, size_t errlen)
{
    char c = s[*i];
    int hi, lo;

    switch (c) {
    case 'n': *out = '\n'; break;
    case 't': *out = '\t'; break;
    case 'r': *out = '\r'; break;
    case '0': *out = 0; break;
    case '\\': case '"': case '\'': *out = (uint8_t)c; break;
    case 'x':
        if (*i + 2 >= n || (hi = kvctl_args_hex_value(s[*i + 1])) < 0
            || (lo = kvctl_args_hex_value(s[*i + 2])) < 0) {
            snprintf(err, errlen, "\\x needs two hex digits, as in \"\\x00\"");
            return -1;
        }
        *out = (uint8_t)(hi << 4 | lo);
        *i += 2;
        break;
    default:
        if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
            snprintf(err, errlen, "unknown escape \\%c inside double quotes "
                     "(use \\\\ for a backslash)", c);
        else
            snprintf(err, errlen, "unknown escape inside double quotes");
        return -1;
    }
    (*i)++;
    return 0;
}

/* Reads one word starting at S[*I] (not a blank) into W. Returns 0, or -1
 * with ERR set. W->data holds at least N - *I + 1 bytes. */
static int read_word(const char *s, size_t n, size_t *i, kvctl_bytes *w,
                     char *err, size_t errlen)
{
    while (*i < n && !is_blank(s[*i])) {
        char c = s[(*i)++];
        if (c == '\'') {
            while (*i < n && s[*i] != '\'')
                w->data[w->len++] = (uint8_t)s[(*i)++];
            if (*i >= n) {
                snprintf(err, errlen, "unterminated single quote");
                return -1;
            }
            (*i)++;
        } else if (c == '"') {
            while (*i < n && s[*i] != '"') {
                if (s[*i] == '\\') {
                    (*i)++;
                    if (*i >= n)
                        break;
                    if (unescape(s, n, i, &w->data[w->len], err, errlen) < 0)
                        return -1;
                    w->len++;
                } else {
                    w->data[w->len++] = (uint8_t)s[(*i)++];
                }
            }
            if (*i >= n) {
                snprintf(err, errlen, "unterminated double quote");
                return -1;
            }
            (*i)++;
        } else if (c == '\\') {
            if (*i >= n) {
                snprintf(err, errlen, "backslash at the end of the line");
                return -1;
            }
            w->data[w->len++] = (uint8_t)s[(*i)++];
        } else {
            w->data[w->len++] = (uint8_t)c;
        }
    }
    w->data[w->len] = 0;
    return 0;
}

int kvctl_args_split(const char *line, size_t len, kvctl_bytes **words,
                     char *err, size_t errlen)
{
    kvctl_bytes *v = NULL;
    int count = 0, cap = 0;
    size_t i = 0;

    for (;;) {
        while (i < len && is_blank(line[i]))
            i++;
        if (i >= len)
            break;
        if (count == cap) {
            cap = cap ? cap * 2 : 4;
            v = kvctl_mem_realloc(v, (size_t)cap * sizeof *v);
        }
        /* A word is never longer than what is left of the line. */
        v[count].data = kvctl_mem_alloc(len - i + 1);
        v[count].len = 0;
        count++;
        if (read_word(line, len, &i, &v[count - 1], err, errlen) < 0)
            goto err;
    }
    *words = v;
    return count;
err:
    kvctl_args_free(v, count);
    *words = NULL;
    return -1;
}

void kvctl_args_free(kvctl_bytes *words, int n)
{
    if (!words)
        return;
    for (int i = 0; i < n; i++)
        free(words[i].data);
    free(words);
}
