/* resp.c - RESP2, Redis's protocol, for the protocol table (proto.h): the
 * request templates of PING, SET, GET and CLEAR (as GETDEL, which like
 * kvstore's Clear removes a key and returns its value), and a reader of one
 * reply that allocates nothing. Owns the template bytes; the receive
 * buffers belong to run.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proto.h"

/* Arrays nest no deeper than this in a reply we can meet (we only send
 * commands answered with flat replies; one level is already unexpected). */
#define MAX_DEPTH 8

/* Appends the bulk string S[0..LEN) ("$LEN\r\nS\r\n") at OUT, S left for
 * the caller when NULL. Returns the byte after it. */
static char *put_bulk(char *out, const void *s, size_t len)
{
    out += sprintf(out, "$%zu\r\n", len);
    if (s)
        memcpy(out, s, len);
    memcpy(out + len, "\r\n", 2);
    return out + len + 2;
}

static int resp_tmpl_init(kb_tmpl *t, kb_method m, size_t value_len, uint64_t ttl_ms)
{
    static const char *const command[KB_METHOD_COUNT] = {
        [KB_PING] = "PING", [KB_SET] = "SET", [KB_GET] = "GET", [KB_CLEAR] = "GETDEL",
    };
    char key[KB_KEY_LEN];

    memset(t, 0, sizeof *t);
    if (m == KB_RANGE)
        return -1;      /* no template: scan.c speaks SCAN and MGET itself */
    t->method = m;
    t->value_len = value_len;
    t->value = malloc(value_len ? value_len : 1);
    /* Room for five bulk strings, their headers and the array header. */
    t->bytes = malloc(value_len + KB_KEY_LEN + 160);
    if (!t->value || !t->bytes) {
        kb_wire_tmpl_free(t);
        return -1;
    }
    memset(t->value, 'x', value_len);
    memcpy(key, KB_KEY_PREFIX, 4);
    kb_wire_put_key((uint8_t *)key + 4, 0);

    char *b = (char *)t->bytes;
    int with_px = m == KB_SET && ttl_ms;
    b += sprintf(b, "*%d\r\n", m == KB_PING ? 1 : m == KB_SET ? (with_px ? 5 : 3) : 2);
    b = put_bulk(b, command[m], strlen(command[m]));
    if (m != KB_PING) {
        b = put_bulk(b, key, KB_KEY_LEN);
        t->key_off = (size_t)(b - (char *)t->bytes) - 2 - KB_KEY_DIGITS;
    }
    if (m == KB_SET)
        b = put_bulk(b, t->value, value_len);
    if (with_px) {
        /* SET key value PX ms: Redis's TTL in milliseconds. */
        char ms[24];
        int n = snprintf(ms, sizeof ms, "%llu", (unsigned long long)ttl_ms);
        b = put_bulk(b, "PX", 2);
        b = put_bulk(b, ms, (size_t)n);
    }
    t->len = (size_t)(b - (char *)t->bytes);
    return 0;
}

/* Finds the "\r\n" ending the line that starts at P[0]. Returns the length
 * of the line without it, -2 when it is not all there yet, -1 when a bare
 * "\n" ends it (not RESP). */
static ptrdiff_t line_len(const uint8_t *p, size_t n)
{
    const uint8_t *nl = n ? memchr(p, '\n', n) : NULL;   /* P may be NULL when N is 0 */

    if (!nl)
        return -2;
    if (nl == p || nl[-1] != '\r')
        return -1;
    return nl - 1 - p;
}

/* Reads the decimal integer of a "$" or "*" header, P[1..LEN). Returns 0,
 * or -1 when it is not one ("-1" is one). */
static int header_num(const uint8_t *p, ptrdiff_t len, long long *v)
{
    char buf[24];
    char *end;

    if (len < 2 || len - 1 >= (ptrdiff_t)sizeof buf)
        return -1;
    memcpy(buf, p + 1, (size_t)len - 1);
    buf[len - 1] = 0;
    *v = strtoll(buf, &end, 10);
    return *end || *v < -1 ? -1 : 0;
}

/* Measures the one reply at P[0..N). Returns its length; 0 when it is not
 * all there, with *NEED its full length once the header says so (else 0);
 * -1 when the bytes are not RESP2. */
static ptrdiff_t reply_len(const uint8_t *p, size_t n, size_t *need, int depth)
{
    ptrdiff_t len = line_len(p, n);
    long long v;

    *need = 0;
    if (len == -2)
        return 0;
    if (len < 1)
        return -1;
    size_t head = (size_t)len + 2;
    switch (p[0]) {
    case '+': case '-': case ':':
        return (ptrdiff_t)head;
    case '$':
        if (header_num(p, len, &v) < 0 || v > (long long)KB_ANSWER_MAX)
            return -1;
        if (v < 0)
            return (ptrdiff_t)head;                 /* $-1: nil */
        if (n < head + (size_t)v + 2) {
            *need = head + (size_t)v + 2;
            return 0;
        }
        if (memcmp(p + head + v, "\r\n", 2) != 0)
            return -1;
        return (ptrdiff_t)(head + (size_t)v + 2);
    case '*': {
        if (header_num(p, len, &v) < 0 || depth >= MAX_DEPTH)
            return -1;
        size_t off = head;
        for (long long i = 0; i < v; i++) {
            size_t ignored;
            ptrdiff_t e = reply_len(p + off, n - off, &ignored, depth + 1);
            if (e <= 0)
                return e;
            off += (size_t)e;
        }
        return (ptrdiff_t)off;
    }
    default:
        return -1;
    }
}

ptrdiff_t kb_resp_reply_len(const uint8_t *p, size_t n, size_t *need)
{
    return reply_len(p, n, need, 0);
}

static int is_line(const uint8_t *p, size_t len, const char *want)
{
    size_t wl = strlen(want);
    return len == wl + 2 && memcmp(p, want, wl) == 0;
}

static ptrdiff_t resp_answer(const kb_tmpl *t, const uint8_t *req, const uint8_t *p, size_t n,
                             size_t *need, kb_reply *r)
{
    ptrdiff_t len = reply_len(p, n, need, 0);
    const char *bad = NULL;

    (void)req;
    memset(r, 0, sizeof *r);
    if (len < 0)
        r->what = "the server sent bytes that are not a RESP reply";
    if (len <= 0)
        return len;
    if (p[0] == '-') {
        r->verdict = KB_VERDICT_ERROR;
        r->what = "error reply";
        r->detail = p + 1;
        r->detail_len = (size_t)len - 3;
        return len;
    }
    switch (t->method) {
    case KB_PING:
        if (!is_line(p, (size_t)len, "+PONG"))
            bad = "PING answer is not +PONG";
        break;
    case KB_SET:
        if (!is_line(p, (size_t)len, "+OK"))
            bad = "SET answer is not +OK";
        break;
    case KB_GET:
        if (is_line(p, (size_t)len, "$-1")) {
            /* Redis's nil is kvstore's NOT_FOUND: an error to a benchmark
             * that stored every key it reads. */
            r->verdict = KB_VERDICT_ERROR;
            r->what = "nil";
            r->detail = (const uint8_t *)"key not found";
            r->detail_len = strlen("key not found");
            return len;
        }
        if (p[0] != '$') {
            bad = "GET answer is not a bulk string";
        } else {
            /* reply_len() checked the frame: "$N\r\n", N bytes, "\r\n". */
            size_t head = (size_t)line_len(p, (size_t)len) + 2;
            size_t vlen = (size_t)len - head - 2;
            if (vlen != t->value_len || memcmp(p + head, t->value, vlen) != 0)
                bad = "GET answer is not the value that was stored";
        }
        break;
    case KB_CLEAR:
        /* GETDEL: the old value or nil, depending on history. */
        if (p[0] != '$')
            bad = "CLEAR (GETDEL) answer is not a bulk string or nil";
        break;
    default:
        bad = "answer to an unknown method";
        break;
    }
    r->verdict = bad ? KB_VERDICT_WRONG : KB_VERDICT_OK;
    r->what = bad;
    return len;
}

const kb_proto kb_proto_resp = {
    .name = "resp",
    .has_stats = 0,
    .needs_keys = 1,
    .tmpl_init = resp_tmpl_init,
    .answer = resp_answer,
};
