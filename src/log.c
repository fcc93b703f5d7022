/* log.c - formatting and writing log lines; see log.h. Owns the level, the
 * format and where lines go (stderr or --log-file), process-wide: there is
 * one log, as there is one stderr. Knows nothing of what is logged. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "log.h"
#include "utf8.h"

/* The longest message kept; a longer one is cut and ends in "...". */
#define MSG_MAX 1024
/* The most one message byte becomes once escaped: "\u001f". */
#define ESCAPE_MAX 6

kv_log_level kv_log_threshold = KV_LOG_INFO;
static kv_log_format log_format = KV_LOG_TEXT;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* Where lines go: stderr, or the --log-file at log_path (owned here). */
static int log_fd = STDERR_FILENO;
static char *log_path;

/* Opens PATH for appending lines; returns the descriptor, or -1 with the
 * reason in ERR. */
static int open_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

    if (fd < 0)
        snprintf(err, errlen, "cannot open log file %s: %s", path, strerror(errno));
    return fd;
}

int kv_log_open(const char *path, char *err, size_t errlen)
{
    char *copy = strdup(path);
    int fd;

    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    fd = open_file(path, err, errlen);
    if (fd < 0) {
        free(copy);
        return -1;
    }
    if (log_fd != STDERR_FILENO)
        close(log_fd);
    free(log_path);
    log_fd = fd;
    log_path = copy;
    return 0;
}

const char *kv_log_path(void)
{
    return log_path;
}

int kv_log_reopen(char *err, size_t errlen)
{
    int fd;

    if (!log_path) {
        snprintf(err, errlen, "no log file");
        return -1;
    }
    fd = open_file(log_path, err, errlen);
    if (fd < 0)
        return -1;
    close(log_fd);
    log_fd = fd;
    return 0;
}

void kv_log_setup(kv_log_level level, kv_log_format format)
{
    kv_log_threshold = level;
    log_format = format;
}

int kv_log_level_parse(const char *name, kv_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (kv_log_level)i;
            return 0;
        }
    }
    return -1;
}

int kv_log_format_parse(const char *name, kv_log_format *out)
{
    if (strcmp(name, "text") == 0)
        *out = KV_LOG_TEXT;
    else if (strcmp(name, "json") == 0)
        *out = KV_LOG_JSON;
    else
        return -1;
    return 0;
}

const char *kv_log_level_name(kv_log_level level)
{
    return level_names[level];
}

const char *kv_log_format_name(kv_log_format format)
{
    return format == KV_LOG_JSON ? "json" : "text";
}

/* Copies MSG (LEN bytes) into OUT, which has room for LEN * ESCAPE_MAX + 1,
 * so that the result is one line of valid UTF-8 and, for JSON, the inside
 * of a valid string: a newline becomes \n, other control bytes \u00XX,
 * and a byte that is not part of well-formed UTF-8 (a peer's bytes, a cut
 * message) the four characters \xHH, since a JSON decoder or a collector
 * would reject it or turn it into U+FFFD, losing what it was. JSON also
 * escapes quotes and backslashes. Returns the length written. */
static size_t escape(char *out, const char *msg, size_t len, int json)
{
    const unsigned char *p = (const unsigned char *)msg;
    size_t o = 0, i = 0;
    size_t bad = kv_utf8_check(p, len);     /* the first ill-formed byte */

    while (i < len) {
        unsigned char c = p[i];
        if (i == bad) {
            o += (size_t)sprintf(out + o, json ? "\\\\x%02x" : "\\x%02x", c);
            i++;
            bad = i + kv_utf8_check(p + i, len - i);
            continue;
        }
        if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)sprintf(out + o, "\\u%04x", c);
        } else if (json && (c == '"' || c == '\\')) {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else {
            out[o++] = (char)c;
        }
        i++;
    }
    out[o] = 0;
    return o;
}

void kv_log(kv_log_level level, const char *fmt, ...)
{
    char msg[MSG_MAX + 4], esc[(MSG_MAX + 3) * ESCAPE_MAX + 1], ts[40];
    char line[sizeof esc + 96];
    struct timespec now;
    struct tm tm;
    va_list ap;
    int n;

    if (!kv_log_on(level))
        return;
    va_start(ap, fmt);
    n = vsnprintf(msg, MSG_MAX + 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = snprintf(msg, sizeof msg, "(unprintable log message)");
    else if (n > MSG_MAX)
        n = snprintf(msg + MSG_MAX, 4, "...") + MSG_MAX;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t tn = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tn, sizeof ts - tn, ".%03ldZ", now.tv_nsec / 1000000);
    escape(esc, msg, (size_t)n, log_format == KV_LOG_JSON);
    if (log_format == KV_LOG_JSON)
        n = snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n",
                     ts, level_names[level], esc);
    else
        n = snprintf(line, sizeof line, "%s %-5s %s\n", ts, level_names[level], esc);
    /* One write per line, unbuffered: a line written in one call is not
     * interleaved with another process's, and is in the file (or the pipe)
     * as soon as the event happens. A failed write has nowhere to be told. */
    ssize_t w = write(log_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    (void)w;
}
