/* etcd.c - etcd v3's HTTP/JSON gateway (POST /v3/kv/put and /v3/kv/range
 * over HTTP/1.1 keep-alive), for the protocol table (proto.h), so that
 * kvbench's loop measures etcd beside kvstore (bench/cluster-bench). Owns
 * the template bytes; the receive buffers belong to run.c. SET and GET
 * only: PING and CLEAR have no template here.
 *
 * etcd's JSON carries keys and values in base64. Each request's key is
 * the 16 base64 characters "key0" + 12 digits (the digits patched in place
 * like every protocol's): distinct digits decode to distinct 12-byte keys,
 * and the answer of a range carries the same 16 characters back. A range
 * is linearizable (etcd's default: serializable false). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "proto.h"

/* The longest head of an HTTP answer we read (etcd's is about 150 bytes). */
#define HEAD_MAX 4096

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes the base64 of S[0..N) at OUT; returns the characters written. */
static size_t base64(char *out, const uint8_t *s, size_t n)
{
    char *o = out;
    size_t i;

    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[v >> 12 & 63];
        *o++ = b64[v >> 6 & 63];
        *o++ = b64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        *o++ = b64[v >> 18];
        *o++ = b64[v >> 12 & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        *o++ = b64[v >> 18];
        *o++ = b64[v >> 12 & 63];
        *o++ = b64[v >> 6 & 63];
        *o++ = '=';
    }
    return (size_t)(o - out);
}

/* The JSON key written in every template: "key0" then the 12 digits. */
#define JSON_KEY_HEAD "key0"

static int etcd_tmpl_init(kb_tmpl *t, kb_method m, size_t value_len, uint64_t ttl_ms)
{
    char digits[KB_KEY_DIGITS];

    memset(t, 0, sizeof *t);
    if ((m != KB_SET && m != KB_GET) || ttl_ms)
        return -1;      /* no Ping or Clear here; a TTL is an etcd lease */
    t->method = m;
    t->value_len = value_len;
    t->value = malloc(value_len ? value_len : 1);
    size_t b64_len = (value_len + 2) / 3 * 4;
    size_t body_max = 64 + KB_KEY_LEN + b64_len;
    t->bytes = malloc(160 + body_max);
    char *body = malloc(body_max);
    if (!t->value || !t->bytes || !body) {
        free(body);
        kb_wire_tmpl_free(t);
        return -1;
    }
    memset(t->value, 'x', value_len);
    kb_wire_put_key((uint8_t *)digits, 0);

    /* The body first (the head carries its length), then head and body. */
    char *b = body;
    b += sprintf(b, "{\"key\":\"%s%.*s\"", JSON_KEY_HEAD, KB_KEY_DIGITS, digits);
    size_t key_in_body = (size_t)(b - body) - 1 - KB_KEY_DIGITS;
    if (m == KB_SET) {
        b += sprintf(b, ",\"value\":\"");
        b += base64(b, t->value, value_len);
        *b++ = '"';
    }
    *b++ = '}';
    size_t body_len = (size_t)(b - body);
    int head = sprintf((char *)t->bytes,
                       "POST /v3/kv/%s HTTP/1.1\r\nHost: etcd\r\n"
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                       m == KB_SET ? "put" : "range", body_len);
    memcpy(t->bytes + head, body, body_len);
    free(body);
    t->len = (size_t)head + body_len;
    t->key_off = (size_t)head + key_in_body;
    return 0;
}

/* Finds NEEDLE (NUL-terminated) in P[0..N); NULL when absent. */
static const uint8_t *find(const uint8_t *p, size_t n, const char *needle)
{
    size_t l = strlen(needle);

    for (size_t i = 0; i + l <= n; i++)
        if (p[i] == (uint8_t)needle[0] && memcmp(p + i, needle, l) == 0)
            return p + i;
    return NULL;
}

/* Reads one HTTP/1.1 answer at P[0..N): its status and where its body
 * lies. Returns its whole length; 0 when it is not all there (with *NEED
 * once the head says); -1 when it is not an answer we can read (R says
 * why). */
static ptrdiff_t http_answer(const uint8_t *p, size_t n, size_t *need, int *status,
                             size_t *body_off, size_t *body_len, kb_reply *r)
{
    const uint8_t *end = find(p, n < HEAD_MAX ? n : HEAD_MAX, "\r\n\r\n");

    *need = 0;
    if (!end) {
        if (n >= HEAD_MAX) {
            r->what = "an HTTP answer's head is longer than 4 KiB";
            return -1;
        }
        return 0;
    }
    size_t head = (size_t)(end - p) + 4;
    if (head < 12 || memcmp(p, "HTTP/1.1 ", 9) != 0) {
        r->what = "the server sent bytes that are not an HTTP/1.1 answer";
        return -1;
    }
    *status = atoi((const char *)p + 9);
    long long clen = -1;
    for (const uint8_t *l = p; l < end;) {
        const uint8_t *nl = find(l, (size_t)(end - l) + 2, "\r\n");
        size_t ll = (size_t)(nl - l);
        if (ll > 15 && !strncasecmp((const char *)l, "Content-Length:", 15))
            clen = atoll((const char *)l + 15);
        if (ll > 18 && !strncasecmp((const char *)l, "Transfer-Encoding:", 18)) {
            r->what = "a chunked HTTP answer (not read: etcd sends small answers whole)";
            return -1;
        }
        l = nl + 2;
    }
    if (clen < 0 || clen > (long long)KB_ANSWER_MAX) {
        r->what = "an HTTP answer without a Content-Length";
        return -1;
    }
    *body_off = head;
    *body_len = (size_t)clen;
    if (n < head + (size_t)clen) {
        *need = head + (size_t)clen;
        return 0;
    }
    return (ptrdiff_t)(head + (size_t)clen);
}

static ptrdiff_t etcd_answer(const kb_tmpl *t, const uint8_t *req, const uint8_t *p, size_t n,
                             size_t *need, kb_reply *r)
{
    int status = 0;
    size_t off = 0, blen = 0;
    const char *bad = NULL;

    memset(r, 0, sizeof *r);
    ptrdiff_t len = http_answer(p, n, need, &status, &off, &blen, r);
    if (len <= 0)
        return len;
    const uint8_t *body = p + off;
    if (status != 200) {
        r->verdict = KB_VERDICT_ERROR;
        r->what = "HTTP status other than 200";
        r->detail = body;
        r->detail_len = blen;
        return len;
    }
    if (!find(body, blen, "\"header\"")) {
        bad = "the answer has no header";
    } else if (t->method == KB_GET) {
        char want[64 + KB_KEY_LEN];
        snprintf(want, sizeof want, "\"key\":\"%.*s\"", KB_KEY_LEN,
                          (const char *)req + t->key_off - 4);
        if (!find(body, blen, "\"kvs\"")) {
            r->verdict = KB_VERDICT_ERROR;
            r->what = "no kvs";
            r->detail = (const uint8_t *)"key not found";
            r->detail_len = strlen("key not found");
            return len;
        }
        const uint8_t *k = find(body, blen, want);
        const uint8_t *v = k ? find(k, blen - (size_t)(k - body), "\"value\":\"") : NULL;
        if (!k) {
            bad = "the range answer is not of the key asked";
        } else if (!v) {
            bad = "the range answer has no value";
        } else {
            /* Compare the value's base64 with the stored value's. */
            size_t enc_len = (t->value_len + 2) / 3 * 4;
            char *enc = malloc(enc_len + 1);
            v += strlen("\"value\":\"");
            if (!enc || (size_t)(body + blen - v) < enc_len + 1
                || base64(enc, t->value, t->value_len) != enc_len
                || memcmp(v, enc, enc_len) != 0 || v[enc_len] != '"')
                bad = "GET answer is not the value that was stored";
            free(enc);
        }
    }
    r->verdict = bad ? KB_VERDICT_WRONG : KB_VERDICT_OK;
    r->what = bad;
    return len;
}

const kb_proto kb_proto_etcd = {
    .name = "etcd",
    .has_stats = 0,
    .needs_keys = 1,
    .tmpl_init = etcd_tmpl_init,
    .answer = etcd_answer,
};
