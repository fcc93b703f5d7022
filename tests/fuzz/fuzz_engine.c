/* fuzz_engine.c - libFuzzer harness for the memory engine: the input is a
 * program of Sets, Gets and Clears (one at a time or over a range of keys)
 * on 2,048 keys, enough for the table to grow from its first size twice
 * and shrink back, and every request meets whatever resize is half
 * done at that moment. Each answer and the engine's stats are checked
 * against a reference model after every request, and every key at the end;
 * any difference aborts, so the fuzzer reports it as a crash.
 *
 * Input: byte 0 picks the opening size hint (the table never shrinks
 * below it); then instructions, each an opcode byte and its arguments:
 *   0 KK L      Set key K (11 bits), value of L % 32 bytes of the opcode's
 *               high bits: same-length rewrites overwrite in place
 *   1 KK        Get key K          2 KK    Clear key K
 *   3 KK N L    Set keys K .. K+N*4 (wrapping), values as for 0
 *   4 KK N      Clear keys K .. K+N*4
 *   5           Get every key
 * Other opcodes are Gets of key KK. A truncated instruction ends the run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "arena.h"
#include "engine.h"

#define KEYS 2048

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The reference: len[k] < 0 when key k is absent, else its value is
 * len[k] bytes of fill[k]. */
typedef struct model {
    int len[KEYS];
    uint8_t fill[KEYS];
    uint64_t keys, data_bytes;
} model;

typedef struct run {
    kv_engine *e;
    kv_arena arena;
    model md;
} run;

/* K in decimal: keys of 1 to 4 bytes, so they also differ in length. By
 * hand, as snprintf took half of the harness's time. */
static size_t key_of(unsigned k, char *buf)
{
    char digits[8];
    size_t n = 0;

    do {
        digits[n++] = (char)('0' + k % 10);
        k /= 10;
    } while (k);
    for (size_t i = 0; i < n; i++)
        buf[i] = digits[n - 1 - i];
    return n;
}

static void check_stats(run *r)
{
    kv_engine_stats st;

    kv_engine_stats_get(r->e, &st);
    if (st.keys != r->md.keys || st.data_bytes != r->md.data_bytes
        || st.memory_bytes < st.data_bytes)
        abort();
}

static void do_get(run *r, unsigned k)
{
    char key[16];
    size_t kl = key_of(k, key);
    ProtobufCBinaryData v, view;
    kv_status s = kv_engine_get(r->e, (uint8_t *)key, kl, &r->arena.pb, &v, NULL);
    kv_status sv = kv_engine_get_view(r->e, (uint8_t *)key, kl, &r->arena.pb, &view, NULL);

    if (r->md.len[k] < 0) {
        if (s != KV_NOT_FOUND || sv != KV_NOT_FOUND)
            abort();
        return;
    }
    if (s != KV_OK || v.len != (size_t)r->md.len[k] || sv != KV_OK || view.len != v.len)
        abort();
    for (size_t i = 0; i < v.len; i++)
        if (v.data[i] != r->md.fill[k] || view.data[i] != r->md.fill[k])
            abort();
}

static void do_set(run *r, unsigned k, size_t vlen, uint8_t fill)
{
    char key[16];
    uint8_t val[32];
    size_t kl = key_of(k, key);

    memset(val, fill, vlen);
    if (kv_engine_set(r->e, (uint8_t *)key, kl, val, vlen, 0) != KV_OK)
        abort();
    if (r->md.len[k] < 0) {
        r->md.keys++;
        r->md.data_bytes += kl;
    } else {
        r->md.data_bytes -= (size_t)r->md.len[k];
    }
    r->md.data_bytes += vlen;
    r->md.len[k] = (int)vlen;
    r->md.fill[k] = fill;
}

static void do_clear(run *r, unsigned k)
{
    char key[16];
    size_t kl = key_of(k, key);
    ProtobufCBinaryData old;
    kv_status s = kv_engine_unset(r->e, (uint8_t *)key, kl, &r->arena.pb, &old, 0);

    if (r->md.len[k] < 0) {
        if (s != KV_NOT_FOUND)
            abort();
        return;
    }
    if (s != KV_OK || old.len != (size_t)r->md.len[k])
        abort();
    for (size_t i = 0; i < old.len; i++)
        if (old.data[i] != r->md.fill[k])
            abort();
    r->md.keys--;
    r->md.data_bytes -= kl + (size_t)r->md.len[k];
    r->md.len[k] = -1;
}

static void get_all(run *r)
{
    for (unsigned k = 0; k < KEYS; k++) {
        do_get(r, k);
        kv_arena_reset(&r->arena);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static run r;   /* the model is 10 KB: kept off the stack */
    kv_engine_options opts = { 0 };
    char err[128];
    size_t p = 1;

    if (size < 1)
        return 0;
    opts.expected_keys = (size_t)data[0] * 8;
    if (kv_engine_open("memory", NULL, &opts, &r.e, err, sizeof err) != KV_OK)
        abort();
    kv_arena_init(&r.arena, 4096);
    for (unsigned k = 0; k < KEYS; k++)
        r.md.len[k] = -1;
    r.md.keys = r.md.data_bytes = 0;
    while (p < size) {
        uint8_t op = data[p];
        size_t need = op % 8 == 5 ? 1 : op % 8 == 0 || op % 8 == 4 ? 4 : op % 8 == 3 ? 5 : 3;
        if (size - p < need)
            break;
        unsigned k = need > 1 ? ((unsigned)data[p + 1] << 8 | data[p + 2]) % KEYS : 0;
        uint8_t fill = op >> 3;
        switch (op % 8) {
        case 0:
            do_set(&r, k, data[p + 3] % 32, fill);
            break;
        case 2:
            do_clear(&r, k);
            break;
        case 3:
            for (unsigned i = 0; i <= data[p + 3] * 4u; i++)
                do_set(&r, (k + i) % KEYS, data[p + 4] % 32, fill);
            break;
        case 4:
            for (unsigned i = 0; i <= data[p + 3] * 4u; i++) {
                do_clear(&r, (k + i) % KEYS);
                kv_arena_reset(&r.arena);
            }
            break;
        case 5:
            get_all(&r);
            break;
        default:
            do_get(&r, k);
            break;
        }
        check_stats(&r);
        kv_arena_reset(&r.arena);
        p += need;
    }
    get_all(&r);
    check_stats(&r);
    kv_arena_free(&r.arena);
    if (kv_engine_close(r.e) != KV_OK)
        abort();
    return 0;
}
