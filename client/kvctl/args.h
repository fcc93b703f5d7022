/* args.h - splitting a shell or batch line into words. */
#ifndef KVCTL_ARGS_H
#define KVCTL_ARGS_H

#include <stddef.h>
#include "kvctl.h"

/* Splits LINE (LEN bytes, need not be NUL-terminated) into words:
 *  - blanks (space, tab, CR, LF) separate words;
 *  - 'single quotes' keep every byte literally;
 *  - "double quotes" take the escapes \" \\ \' \n \t \r \0 and \xHH;
 *  - outside quotes a backslash takes the next byte literally.
 * Returns the number of words (0 for a blank line) and sets *WORDS to an
 * array the caller frees with kvctl_args_free(); or -1 with a one-line
 * reason in ERR (an unterminated quote, a bad escape) and *WORDS NULL. */
int kvctl_args_split(const char *line, size_t len, kvctl_bytes **words,
                     char *err, size_t errlen);

/* The value of the hex digit C (either case), or -1. */
int kvctl_args_hex_value(char c);

/* Frees the N words of kvctl_args_split(). Accepts NULL. */
void kvctl_args_free(kvctl_bytes *words, int n);

#endif
