/* table.c - the aligned columns of -w table. It owns the cells it is
 * given until they are printed; what goes in them (which columns each
 * command shows) is out.c's, listing.c's and txnout.c's choice. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "table.h"
#include "text.h"

void kvctl_table_init(kvctl_table *t, size_t ncols, const char *const *headers)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    for (size_t i = 0; i < ncols; i++)
        kvctl_table_text(t, headers[i]);
}

/* Adds CELL, which the table now owns. The array doubles when full (at
 * 16 cells and each power of two after): one realloc a cell made a table
 * of N cells cost N reallocs, each a copy under allocators that cannot
 * grow a block in place (ASan, valgrind, musl): a slow log of 50,000
 * entries took kvctl 290 s to print under ASan. */
static void add(kvctl_table *t, char *cell)
{
    size_t n = t->ncells;

    if (n < 16 ? n == 0 : (n & (n - 1)) == 0)
        t->cells = kvctl_mem_realloc(t->cells, (n < 16 ? 16 : 2 * n) * sizeof *t->cells);
    t->cells[t->ncells++] = cell;
}

void kvctl_table_text(kvctl_table *t, const char *text)
{
    add(t, kvctl_mem_strdup(text));
}

void kvctl_table_number(kvctl_table *t, uint64_t v)
{
    char buf[24];

    snprintf(buf, sizeof buf, "%" PRIu64, v);
    kvctl_table_text(t, buf);
}

void kvctl_table_bytes(kvctl_table *t, const uint8_t *data, size_t len)
{
    char *text = NULL;
    size_t n = 0;
    FILE *fp;

    if (kvctl_text_is_plain(data, len)) {
        kvctl_bytes b;
        kvctl_mem_bytes(&b, data, len);
        add(t, (char *)b.data);
        return;
    }
    fp = open_memstream(&text, &n);
    if (!fp) {
        fputs("kvctl: out of memory\n", stderr);
        exit(KVCTL_EXIT_USAGE);
    }
    kvctl_text_put_quoted(fp, data, len);
    fclose(fp);
    add(t, text);
}

/* The columns TEXT takes on a terminal: one per UTF-8 character (wide
 * characters are rare in keys; they only shift a row). */
static size_t width(const char *text)
{
    size_t w = 0;

    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        w += (*p & 0xc0) != 0x80;
    return w;
}

void kvctl_table_print(kvctl_table *t, FILE *fp)
{
    size_t *widths = kvctl_mem_alloc(t->ncols * sizeof *widths);
    size_t rows = (t->ncells + t->ncols - 1) / t->ncols;

    memset(widths, 0, t->ncols * sizeof *widths);
    for (size_t i = 0; i < t->ncells; i++) {
        size_t w = width(t->cells[i]);
        if (w > widths[i % t->ncols])
            widths[i % t->ncols] = w;
    }
    for (size_t r = 0; r < rows; r++) {
        /* Pad every column but the last, and no trailing blanks. */
        size_t last = t->ncols;
        while (last > 1) {
            size_t i = r * t->ncols + last - 1;
            if (i < t->ncells && *t->cells[i])
                break;
            last--;
        }
        for (size_t c = 0; c < last; c++) {
            size_t i = r * t->ncols + c;
            const char *cell = i < t->ncells ? t->cells[i] : "";
            fputs(cell, fp);
            if (c + 1 < last)
                fprintf(fp, "%*s", (int)(widths[c] - width(cell) + 2), "");
        }
        fputc('\n', fp);
    }
    for (size_t i = 0; i < t->ncells; i++)
        free(t->cells[i]);
    free(t->cells);
    free(widths);
    memset(t, 0, sizeof *t);
}
