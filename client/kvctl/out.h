/* out.h - printing results (simple, JSON or table) and one-line errors,
 * and the exit code each result means. */
#ifndef KVCTL_OUT_H
#define KVCTL_OUT_H

#include <stdio.h>
#include <json.h>
#include "cmd.h"
#include "exec.h"

/* How kvctl writes JSON (json_object_to_json_string_ext): one line, and
 * "/" not escaped. */
#define KVCTL_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

typedef struct kvctl_out {
    FILE *fp;            /* results go here (stdout); errors go to stderr */
    kvctl_format format;
    int lines;           /* one line per command, always ending in "\n",
                          * even for a failure (batch mode) */
    int tty;             /* fp is a terminal: end values with "\n", and
                          * quote those that are not plain text (text.h) */
} kvctl_out;

/* Sets O up to print to stdout in FORMAT. */
void kvctl_out_init(kvctl_out *o, kvctl_format format, int lines);

/* Prints the result R of CMD: the result on o->fp; when it failed, also
 * one line "kvctl: get "k": CODE: message" on stderr ("kvctl: auth: CODE:
 * message" when R->auth). For a range kvctl_out_page() started, the rest
 * of it. Returns the exit code R means (KVCTL_EXIT_*). */
int kvctl_out_result(const kvctl_out *o, const kvctl_cmd *cmd,
                     const kvctl_result *r);

/* The page hook of kvctl_exec_run() (exec.h), OUT being a kvctl_out:
 * prints PAGE of the range CMD at once in the simple and JSON formats
 * (the start of R's output with its first page; kvctl_out_result() ends
 * it) and returns 1. Returns 0, printing nothing, for -w table (a column
 * is as wide as its widest cell, over all pages) and --count (no keys):
 * kvctl_out_result() prints those whole. When a later page fails, what
 * was printed stays: the simple format stops there (in lines mode the
 * line ends), the JSON object ends with "more": true and "error": {"code",
 * "message"}. */
int kvctl_out_page(void *out, const kvctl_cmd *cmd, kvctl_result *r,
                   const Kvstore__V1__RangeResponse *page);

/* The exit code of result R of CMD: 2 when R->auth says the token file
 * could not be used (INVALID_ARGUMENT), 5 for a conditional write refused
 * (FAILED_PRECONDITION), else by its status. */
int kvctl_out_exit_code(const kvctl_cmd *cmd, const kvctl_result *r);

/* Prints a command line that could not be parsed: "kvctl: REASON" on
 * stderr and, in lines mode, the failure's line on o->fp (blank, or a
 * JSON object with code "USAGE"). NAME is the command word, may be NULL. */
void kvctl_out_usage(const kvctl_out *o, const char *name, const char *reason);

/* Writes OBJ to FP as one line of JSON (KVCTL_JSON_FLAGS) and frees it. */
void kvctl_out_json_line(FILE *fp, json_object *obj);

/* Ends a command run through kvctl_conn_call_once() (conn.h) whose answer
 * was ST: on a failure prints R's error line (an undecodable answer, ST
 * KV_INTERNAL without a message, says so) and returns its exit code;
 * returns KVCTL_EXIT_OK on success. Clears R. */
int kvctl_out_call_end(const kvctl_out *o, const kvctl_cmd *cmd, kv_status st, kvctl_result *r);

/* Writes DATA (LEN bytes) into BUF (BUFLEN bytes, NUL-terminated) as a
 * double-quoted C-style string (kvctl_text_escape() for each byte), cut
 * with "..." after the quote when it does not fit. */
void kvctl_out_quote(const uint8_t *data, size_t len, char *buf, size_t buflen);

/* Writes a key or a value from the server: the raw bytes, except on a
 * terminal (o->tty), where anything but plain text goes in double quotes
 * with escapes (text.h). */
void kvctl_out_value(const kvctl_out *o, const uint8_t *data, size_t len);

/* Adds FIELD = base64(DATA[0..LEN)) to the JSON object OBJ. */
void kvctl_out_json_bytes(json_object *obj, const char *field, const uint8_t *data,
                          size_t len);

#endif
