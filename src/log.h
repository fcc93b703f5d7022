/* log.h - kvstored's log: one line per event on stderr, or in a file
 * (--log-file), with a timestamp and a level, as text or as JSON
 * (--log-level, --log-format).
 *
 * Events below the configured level cost one comparison: call sites on
 * paths that run per connection test kv_log_on() before formatting. */
#ifndef KV_LOG_H
#define KV_LOG_H

#include <stdarg.h>
#include <stddef.h>

typedef enum kv_log_level {
    KV_LOG_ERROR = 0,
    KV_LOG_WARN = 1,
    KV_LOG_INFO = 2,
    KV_LOG_DEBUG = 3,
} kv_log_level;

typedef enum kv_log_format {
    KV_LOG_TEXT = 0,    /* 2026-11-26T00:49:58.123Z info  listening on ... */
    KV_LOG_JSON = 1,    /* {"ts":"...","level":"info","msg":"listening on ..."} */
} kv_log_format;

/* The level below which nothing is written; read-only outside log.c. */
extern kv_log_level kv_log_threshold;

/* Sets what is written from now on (default: info, text). */
void kv_log_setup(kv_log_level level, kv_log_format format);

/* Sends the lines to the file at PATH (created 0640 if missing, appended
 * to) instead of stderr, and remembers PATH for kv_log_reopen. Returns 0,
 * or -1 with the reason in ERR (ERRLEN bytes); the log is unchanged then. */
int kv_log_open(const char *path, char *err, size_t errlen);

/* The file given to kv_log_open, or NULL when the log is stderr. */
const char *kv_log_path(void);

/* Opens the log file's path again (after logrotate renamed it) and writes
 * there from now on. Returns 0, or -1 with the reason in ERR; the old
 * file stays in use then. */
int kv_log_reopen(char *err, size_t errlen);

/* Parses "error", "warn", "info" or "debug" (resp. "text", "json").
 * Returns 0, or -1 when NAME is none of them. */
int kv_log_level_parse(const char *name, kv_log_level *out);
int kv_log_format_parse(const char *name, kv_log_format *out);

/* The names those parse (static strings). */
const char *kv_log_level_name(kv_log_level level);
const char *kv_log_format_name(kv_log_format format);

static inline int kv_log_on(kv_log_level level)
{
    return level <= kv_log_threshold;
}

/* Writes one event at LEVEL: the printf-style message, one line. Newlines
 * and control bytes in the message are escaped, so a line is an event. */
void kv_log(kv_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
