/* log.c - formatting and writing log lines; see log.h. Owns the level and
 * format, process-wide: there is one log, as there is one stderr. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "log.h"

kv_log_level kv_log_threshold = KV_LOG_INFO;
static kv_log_format log_format = KV_LOG_TEXT;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

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

/* Copies MSG into OUT (room CAP > 0), escaping what would break a line (and,
 * for JSON, a string): quotes, backslashes, control bytes. Bytes >= 0x80
 * pass unchanged. */
static void escape(char *out, size_t cap, const char *msg, int json)
{
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)msg; *p && o + 7 < cap; p++) {
        if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (*p < 0x20 || *p == 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", *p);
        } else if (json && (*p == '"' || *p == '\\')) {
            out[o++] = '\\';
            out[o++] = (char)*p;
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = 0;
}

void kv_log(kv_log_level level, const char *fmt, ...)
{
    char msg[1024], esc[2048], ts[40];
    struct timespec now;
    struct tm tm;
    va_list ap;

    if (!kv_log_on(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);
    escape(esc, sizeof esc, msg, log_format == KV_LOG_JSON);
    /* One fprintf per line: stderr is unbuffered, and a line written in
     * one call is not interleaved with another process's. */
    if (log_format == KV_LOG_JSON)
        fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n", ts, level_names[level], esc);
    else
        fprintf(stderr, "%s %-5s %s\n", ts, level_names[level], esc);
}
