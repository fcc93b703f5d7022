/* table.h - the columns of -w table: cells added row by row, printed with
 * each column as wide as its widest cell. */
#ifndef KVCTL_TABLE_H
#define KVCTL_TABLE_H

#include <stdint.h>
#include <stdio.h>

/* A table being filled. Owns its cells; kvctl_table_print() frees them. */
typedef struct kvctl_table {
    size_t ncols;
    char **cells;   /* row after row, ncols each; the first row the header */
    size_t ncells;
} kvctl_table;

/* Starts T with the header row: the NCOLS names in HEADERS. */
void kvctl_table_init(kvctl_table *t, size_t ncols, const char *const *headers);

/* Adds the next cell (rows fill left to right, then the next row starts):
 * TEXT copied, a number, or bytes shown as they are when plain text
 * (text.h) and else as a double-quoted string with escapes, so a cell is
 * always one line that cannot drive a terminal. */
void kvctl_table_text(kvctl_table *t, const char *text);
void kvctl_table_number(kvctl_table *t, uint64_t v);
void kvctl_table_bytes(kvctl_table *t, const uint8_t *data, size_t len);

/* Prints T to FP, a row per line, columns two spaces apart (a row that
 * was left short is ended by empty cells), and frees its cells. */
void kvctl_table_print(kvctl_table *t, FILE *fp);

#endif
