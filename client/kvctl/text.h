/* text.h - how kvctl shows bytes to a person: as a C-style string in
 * double quotes, and whether a value is plain text that can go to a
 * terminal as it is. */
#ifndef KVCTL_TEXT_H
#define KVCTL_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Writes into ESC (NUL-terminated) how byte C appears between double
 * quotes: itself when printable ASCII, else \" \\ \n \r \t or \xHH, the
 * escapes the shell reads back (args.h). Returns its length, 1 to 4. */
size_t kvctl_text_escape(uint8_t c, char esc[5]);

/* Whether DATA[0..LEN) is plain text: printable ASCII and well-formed UTF-8
 * of printable code points (no C0 or C1 control, no DEL), not starting
 * with a double quote, so it cannot be taken for a quoted string. An
 * empty value is plain. */
int kvctl_text_is_plain(const uint8_t *data, size_t len);

/* Writes DATA[0..LEN) to FP in double quotes, every byte through
 * kvctl_text_escape(): the whole value, however long. */
void kvctl_text_put_quoted(FILE *fp, const uint8_t *data, size_t len);

#endif
