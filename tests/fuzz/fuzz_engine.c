/* fuzz_engine.c - libFuzzer harness for a storage engine (the memory
 * engine; KV_FUZZ_ENGINE=lmdb runs the same programs against lmdb, in a
 * fresh directory per input): the input is a program of Sets (with
 * deadlines or without), Touches, Gets and Clears (one at a time or over a
 * run of keys), ordered walks, counts, walks of the keys due, range
 * removals and atomic batches on 2,048 keys, enough for the table to grow
 * from its first size twice and shrink back, so that every request meets
 * whatever resize is half done at that moment, and for the ordered index
 * to split and merge its nodes. Each answer, what the callbacks of set,
 * unset and unset_range are shown, the stats (keys with a deadline too)
 * and the store's revision are checked against a reference model (in byte
 * order, with revisions and deadlines) after every request, and every key
 * at the end; any difference aborts, so the fuzzer reports it as a crash.
 *
 * Input: byte 0 picks the opening size hint (the table never shrinks
 * below it); then instructions, each an opcode byte and its arguments:
 *   0 KK L      Set key K (11 bits), value of L % 32 bytes of the opcode's
 *               high bits: same-length rewrites may overwrite in place;
 *               deadline (L >> 5) * 1000 (0: none)
 *   1 KK        opcode >> 3 below 16: Get key K; else Touch key K to
 *               deadline (opcode >> 3 & 7) * 1000 (skipped in a batch)
 *   2 KK        Clear key K
 *   3 KK N L    Set keys K .. K+N*4 (wrapping), values and deadline as for 0
 *   4 KK N      Clear keys K .. K+N*4
 *   5           opcode >> 3 0: Get every key; else the keys due at
 *               (opcode >> 3) * 250 (keys only when odd), and the next
 *               deadline
 *   6 KK N F    Walk and count: keys from the K-th in byte order to the
 *               (K+N*8)-th; F's bits: 1 no start, 2 no end, 4 bounds just
 *               after those keys (key + "\0"), 8 reverse, 16 values,
 *               F >> 5: stop after that many keys (0: never)
 *   7 KK N F    F % 4: 0 remove the keys of the range of 6 (F as there),
 *               1 begin a batch, 2 end it kept, 3 end it undone
 * Writes in a batch share one revision. A batch still open at the end is
 * undone. A truncated instruction ends the run. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "arena.h"
#include "engine.h"

#define KEYS 2048

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the model keeps about a key: len < 0 when absent, else its value
 * is len bytes of fill; its revisions and deadline in meta. */
typedef struct model_key {
    int len;
    uint8_t fill;
    kv_meta meta;
} model_key;

/* The reference. */
typedef struct model {
    model_key k[KEYS];
    uint64_t keys, data_bytes, revision;
    uint64_t with_ttl;      /* keys with a deadline */
} model;

typedef struct run {
    kv_engine *e;
    kv_arena arena;
    model md;
    model saved;        /* the model when the open batch began */
    int in_batch;
    uint64_t batch_rev; /* the revision every write of the batch makes */
} run;

/* The keys in byte order: sorted[i] is the i-th key, a permutation. */
static unsigned sorted[KEYS];

/* K in decimal: keys of 1 to 4 bytes, so they also differ in length, and
 * their byte order is not their numeric order. By hand, as snprintf took
 * half of the harness's time. */
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

static int key_order(const void *a, const void *b)
{
    char ka[8], kb[8];
    size_t la = key_of(*(const unsigned *)a, ka), lb = key_of(*(const unsigned *)b, kb);

    return kv_key_cmp((uint8_t *)ka, la, (uint8_t *)kb, lb);
}

static void sort_keys(void)
{
    static int done;

    if (done)
        return;
    done = 1;
    for (unsigned k = 0; k < KEYS; k++)
        sorted[k] = k;
    qsort(sorted, KEYS, sizeof sorted[0], key_order);
}

/* The revision the next write makes: the batch's, or one past the store's. */
static uint64_t write_rev(const run *r)
{
    return r->in_batch ? r->batch_rev : r->md.revision + 1;
}

static void check_stats(run *r)
{
    kv_engine_stats st;

    kv_engine_stats_get(r->e, &st);
    if (st.keys != r->md.keys || st.data_bytes != r->md.data_bytes
        || st.memory_bytes < st.data_bytes || kv_engine_revision(r->e) != r->md.revision
        || st.keys_with_ttl != r->md.with_ttl)
        abort();
}

static void check_meta(const kv_meta *got, const kv_meta *want)
{
    if (got->create_revision != want->create_revision || got->mod_revision != want->mod_revision
        || got->version != want->version || got->expires_ms != want->expires_ms)
        abort();
}

static void do_get(run *r, unsigned k)
{
    char key[16];
    size_t kl = key_of(k, key);
    ProtobufCBinaryData v, view;
    kv_meta m, mv;
    kv_status s = kv_engine_get(r->e, (uint8_t *)key, kl, &r->arena.pb, &v, &m);
    kv_status sv = kv_engine_get_view(r->e, (uint8_t *)key, kl, &r->arena.pb, &view, &mv);
    const model_key *mk = &r->md.k[k];

    if (mk->len < 0) {
        if (s != KV_NOT_FOUND || sv != KV_NOT_FOUND)
            abort();
        return;
    }
    if (s != KV_OK || v.len != (size_t)mk->len || sv != KV_OK || view.len != v.len)
        abort();
    for (size_t i = 0; i < v.len; i++)
        if (v.data[i] != mk->fill || view.data[i] != mk->fill)
            abort();
    check_meta(&m, &mk->meta);
    check_meta(&mv, &mk->meta);
}

/* Key K leaves the model at REV. */
static void model_remove(run *r, unsigned k, size_t kl, uint64_t rev)
{
    r->md.with_ttl -= r->md.k[k].meta.expires_ms != 0;
    r->md.keys--;
    r->md.data_bytes -= kl + (size_t)r->md.k[k].len;
    r->md.k[k].len = -1;
    r->md.revision = rev;
}

/* Whether EN is key K as the model holds it: its bytes, value (NULL
 * unless VALUES and not empty) and meta. */
static int entry_is(const run *r, unsigned k, const kv_entry *en, int values)
{
    char key[8];
    size_t kl = key_of(k, key);
    const model_key *mk = &r->md.k[k];

    if (mk->len < 0 || en->klen != kl || memcmp(en->key, key, kl) != 0
        || en->vlen != (size_t)mk->len || (en->value != NULL) != (values && mk->len > 0))
        return 0;
    for (size_t i = 0; en->value && i < en->vlen; i++)
        if (en->value[i] != mk->fill)
            return 0;
    check_meta(&en->meta, &mk->meta);
    return 1;
}

/* set's SEEN: the old entry, once, only for a key that was there. */
typedef struct seen_check {
    const run *r;
    unsigned k;
    int calls;
} seen_check;

static int check_seen(void *ctx, const kv_entry *en)
{
    seen_check *c = ctx;

    if (c->calls++ || !entry_is(c->r, c->k, en, 1))
        abort();
    return 0;
}

static void do_set(run *r, unsigned k, size_t vlen, uint8_t fill, uint64_t expires)
{
    char key[16];
    uint8_t val[32];
    size_t kl = key_of(k, key);
    uint64_t rev = write_rev(r);
    model_key *mk = &r->md.k[k];
    seen_check c = { r, k, 0 };

    memset(val, fill, vlen);
    if (kv_engine_set_ttl(r->e, (uint8_t *)key, kl, val, vlen, rev, expires, check_seen, &c)
        != KV_OK || c.calls != (mk->len >= 0))
        abort();
    if (mk->len < 0) {
        r->md.keys++;
        r->md.data_bytes += kl;
        mk->meta = (kv_meta){ rev, rev, 1, 0 };
    } else {
        r->md.data_bytes -= (size_t)mk->len;
        r->md.with_ttl -= mk->meta.expires_ms != 0;
        mk->meta.mod_revision = rev;
        mk->meta.version++;
    }
    mk->meta.expires_ms = expires;
    r->md.with_ttl += expires != 0;
    r->md.data_bytes += vlen;
    mk->len = (int)vlen;
    mk->fill = fill;
    r->md.revision = rev;
}

static void do_clear(run *r, unsigned k)
{
    char key[16];
    size_t kl = key_of(k, key);
    ProtobufCBinaryData old;
    kv_meta m;
    uint64_t rev = write_rev(r);
    kv_status s = kv_engine_unset_meta(r->e, (uint8_t *)key, kl, &r->arena.pb, &old, &m, rev);

    if (r->md.k[k].len < 0) {
        if (s != KV_NOT_FOUND)
            abort();
        return;
    }
    if (s != KV_OK || old.len != (size_t)r->md.k[k].len)
        abort();
    check_meta(&m, &r->md.k[k].meta);
    for (size_t i = 0; i < old.len; i++)
        if (old.data[i] != r->md.k[k].fill)
            abort();
    model_remove(r, k, kl, rev);
}

/* A new deadline for key K (engine.h: never inside a batch). */
static void do_touch(run *r, unsigned k, uint64_t expires)
{
    char key[16];
    size_t kl = key_of(k, key);
    model_key *mk = &r->md.k[k];

    if (r->in_batch)
        return;
    if (kv_engine_touch(r->e, (uint8_t *)key, kl, expires) != (mk->len < 0 ? KV_NOT_FOUND : KV_OK))
        abort();
    if (mk->len < 0)
        return;
    r->md.with_ttl += (expires != 0) - (mk->meta.expires_ms != 0);
    mk->meta.expires_ms = expires;
}

/* walk_expiring's check: every key once, each due by the model. */
typedef struct due_check {
    run *r;
    uint64_t now;
    int values;
    unsigned seen;
    uint8_t met[KEYS];
} due_check;

static int check_due(void *ctx, const kv_entry *en)
{
    due_check *c = ctx;
    char digits[8];

    /* Keys are 1 to 4 decimal digits: K from its bytes. */
    if (en->klen < 1 || en->klen > 4)
        abort();
    memcpy(digits, en->key, en->klen);
    digits[en->klen] = 0;
    unsigned k = (unsigned)strtoul(digits, NULL, 10);
    const model_key *mk = &c->r->md.k[k % KEYS];
    if (k >= KEYS || c->met[k] || !entry_is(c->r, k, en, c->values)
        || !mk->meta.expires_ms || mk->meta.expires_ms > c->now)
        abort();
    c->met[k] = 1;
    c->seen++;
    return 0;
}

/* The keys due at NOW, and the next deadline, against the model. */
static void do_expiring(run *r, uint64_t now, int values)
{
    static due_check c;
    unsigned want = 0;
    uint64_t next = 0;

    memset(&c, 0, sizeof c);
    c.r = r;
    c.now = now;
    c.values = values;
    if (kv_engine_walk_expiring(r->e, now, values, check_due, &c) != KV_OK)
        abort();
    for (unsigned k = 0; k < KEYS; k++) {
        uint64_t d = r->md.k[k].len >= 0 ? r->md.k[k].meta.expires_ms : 0;
        want += d && d <= now;
        if (d && (!next || d < next))
            next = d;
    }
    if (c.seen != want || kv_engine_next_deadline(r->e) != next)
        abort();
}

static void get_all(run *r)
{
    for (unsigned k = 0; k < KEYS; k++) {
        do_get(r, k);
        kv_arena_reset(&r->arena);
    }
}

/* A range's bounds and their bytes. */
typedef struct bounds {
    kv_range r;
    uint8_t start[8], end[8];
} bounds;

/* The range of instructions 6 and 7: from the K-th key in byte order to
 * the (K + N*8)-th (past the last: no end), as F says. */
static void make_range(bounds *b, unsigned k, unsigned n, unsigned f)
{
    unsigned a = k % KEYS, z = a + n * 8;

    b->r = (kv_range){ 0 };
    if (!(f & 1)) {
        b->r.start_len = key_of(sorted[a], (char *)b->start);
        if (f & 4)
            b->start[b->r.start_len++] = 0;
        b->r.start = b->start;
    }
    if (!(f & 2) && z < KEYS) {
        b->r.end_len = key_of(sorted[z], (char *)b->end);
        if (f & 4)
            b->end[b->r.end_len++] = 0;
        b->r.end = b->end;
    }
}

/* The first position in sorted[] whose key is at or after KEY. */
static int lower_pos(const uint8_t *key, size_t klen)
{
    int lo = 0, hi = KEYS;

    while (lo < hi) {
        int mid = (lo + hi) / 2;
        char k[8];
        size_t kl = key_of(sorted[mid], k);
        if (kv_key_cmp((uint8_t *)k, kl, key, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* RANGE as positions in sorted[]: [*LO, *HI). */
static void range_pos(const kv_range *range, int *lo, int *hi)
{
    *lo = range->start_len ? lower_pos(range->start, range->start_len) : 0;
    *hi = range->end_len ? lower_pos(range->end, range->end_len) : KEYS;
    if (*hi < *lo)
        *hi = *lo;
}

/* A walk's check: the model's keys of the range, in order. */
typedef struct walk_check {
    run *r;
    int pos;            /* the position in sorted[] to look from next */
    int lo, hi;         /* the range's positions */
    int step;           /* +1, or -1 when reversed */
    int values;
    unsigned seen, stop;
} walk_check;

/* The model's next present key from position C->pos on, or -1. */
static int next_in_range(walk_check *c)
{
    for (; c->pos >= c->lo && c->pos < c->hi; c->pos += c->step) {
        unsigned k = sorted[c->pos];
        if (c->r->md.k[k].len >= 0) {
            c->pos += c->step;
            return (int)k;
        }
    }
    return -1;
}

static int check_entry(void *ctx, const kv_entry *en)
{
    walk_check *c = ctx;
    int k = next_in_range(c);
    char key[8];

    if (k < 0)
        abort();
    size_t kl = key_of((unsigned)k, key);
    const model_key *mk = &c->r->md.k[k];
    if (en->klen != kl || memcmp(en->key, key, kl) != 0 || en->vlen != (size_t)mk->len)
        abort();
    if (c->values && mk->len) {
        if (!en->value)
            abort();
        for (size_t i = 0; i < en->vlen; i++)
            if (en->value[i] != mk->fill)
                abort();
    } else if (en->value) {
        abort();
    }
    check_meta(&en->meta, &mk->meta);
    return ++c->seen == c->stop;
}

/* The model's keys in positions [LO, HI). */
static uint64_t model_count(const run *r, int lo, int hi)
{
    uint64_t n = 0;

    for (int p = lo; p < hi; p++)
        n += r->md.k[sorted[p]].len >= 0;
    return n;
}

static void do_walk(run *r, unsigned k, unsigned n, unsigned f)
{
    bounds b;
    uint64_t count;
    int lo, hi, reverse = (f & 8) != 0;

    make_range(&b, k, n, f);
    range_pos(&b.r, &lo, &hi);
    walk_check c = { r, reverse ? hi - 1 : lo, lo, hi, reverse ? -1 : 1, (f & 16) != 0, 0, f >> 5 };
    if (kv_engine_walk(r->e, &b.r, reverse, c.values, check_entry, &c) != KV_OK)
        abort();
    /* Not stopped early: it went through every key of the range. */
    if (c.seen != c.stop && next_in_range(&c) >= 0)
        abort();
    if (kv_engine_count(r->e, &b.r, &count) != KV_OK || count != model_count(r, lo, hi))
        abort();
}

static void do_unset_range(run *r, unsigned k, unsigned n, unsigned f)
{
    bounds b;
    uint64_t deleted, rev = write_rev(r);
    int lo, hi;

    make_range(&b, k, n, f);
    range_pos(&b.r, &lo, &hi);
    /* The callback sees the keys as a walk with values would, in order. */
    walk_check c = { r, lo, lo, hi, 1, 1, 0, 0 };
    if (kv_engine_unset_range_each(r->e, &b.r, rev, &deleted, check_entry, &c) != KV_OK
        || deleted != model_count(r, lo, hi) || c.seen != deleted)
        abort();
    for (int p = lo; p < hi; p++) {
        unsigned i = sorted[p];
        char key[8];
        if (r->md.k[i].len >= 0)
            model_remove(r, i, key_of(i, key), rev);
    }
}

static void batch_begin(run *r)
{
    if (r->in_batch)
        return;
    if (kv_engine_batch_begin(r->e) != KV_OK)
        abort();
    r->saved = r->md;
    r->in_batch = 1;
    r->batch_rev = r->md.revision + 1;
}

static void batch_end(run *r, int keep)
{
    if (!r->in_batch)
        return;
    if (kv_engine_batch_end(r->e, keep) != KV_OK)
        abort();
    if (!keep)
        r->md = r->saved;
    r->in_batch = 0;
}

/* Removes DIR and the files in it (an engine's directory has no subdirectories). */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[512];

    while (d && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            unlink(path);
        }
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static run r;   /* the models are 100 KB: kept off the stack */
    kv_engine_options opts = { .sync = KV_SYNC_NONE };
    const char *engine = getenv("KV_FUZZ_ENGINE");
    char err[128], dir[64] = "";
    size_t p = 1;

    if (size < 1)
        return 0;
    sort_keys();
    if (!engine || !engine[0])
        engine = "memory";
    if (strcmp(engine, "memory") != 0) {
        snprintf(dir, sizeof dir, "/tmp/kvfuzz-engine.XXXXXX");
        if (!mkdtemp(dir))
            abort();
    }
    opts.expected_keys = (size_t)data[0] * 8;
    if (kv_engine_open(engine, dir[0] ? dir : NULL, &opts, &r.e, err, sizeof err) != KV_OK)
        abort();
    kv_arena_init(&r.arena, 4096);
    for (unsigned k = 0; k < KEYS; k++)
        r.md.k[k].len = -1;
    r.md.keys = r.md.data_bytes = r.md.revision = r.md.with_ttl = 0;
    r.in_batch = 0;
    while (p < size) {
        uint8_t op = data[p];
        size_t need = op % 8 == 5 ? 1 : op % 8 == 0 || op % 8 == 4 ? 4
                      : op % 8 == 3 || op % 8 >= 6 ? 5 : 3;
        if (size - p < need)
            break;
        unsigned k = need > 1 ? ((unsigned)data[p + 1] << 8 | data[p + 2]) % KEYS : 0;
        uint8_t fill = op >> 3;
        switch (op % 8) {
        case 0:
            do_set(&r, k, data[p + 3] % 32, fill, (uint64_t)(data[p + 3] >> 5) * 1000);
            break;
        case 1:
            if (fill < 16)
                do_get(&r, k);
            else
                do_touch(&r, k, (uint64_t)(fill & 7) * 1000);
            break;
        case 2:
            do_clear(&r, k);
            break;
        case 3:
            for (unsigned i = 0; i <= data[p + 3] * 4u; i++)
                do_set(&r, (k + i) % KEYS, data[p + 4] % 32, fill,
                       (uint64_t)(data[p + 4] >> 5) * 1000);
            break;
        case 4:
            for (unsigned i = 0; i <= data[p + 3] * 4u; i++) {
                do_clear(&r, (k + i) % KEYS);
                kv_arena_reset(&r.arena);
            }
            break;
        case 5:
            if (fill)
                do_expiring(&r, (uint64_t)fill * 250, !(fill & 1));
            else
                get_all(&r);
            break;
        case 6:
            do_walk(&r, k, data[p + 3], data[p + 4]);
            break;
        case 7:
            switch (data[p + 4] % 4) {
            case 0:
                do_unset_range(&r, k, data[p + 3], data[p + 4] >> 2);
                break;
            case 1:
                batch_begin(&r);
                break;
            default:
                batch_end(&r, data[p + 4] % 4 == 2);
                break;
            }
            break;
        }
        check_stats(&r);
        kv_arena_reset(&r.arena);
        p += need;
    }
    batch_end(&r, 0);
    check_stats(&r);
    get_all(&r);
    do_walk(&r, 0, KEYS, 3 | 16);
    do_walk(&r, 0, KEYS, 3 | 8);
    do_expiring(&r, UINT64_MAX, 1);
    kv_arena_free(&r.arena);
    if (kv_engine_close(r.e) != KV_OK)
        abort();
    if (dir[0])
        remove_dir(dir);
    return 0;
}
