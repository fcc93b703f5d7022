/* test_engine.c - the storage engines through the engine interface
 * (engine.h). First the conformance tests, run once per engine (memory,
 * and lmdb in a fresh directory per test): revisions on create, overwrite
 * and unset, the revision left alone by writes that change nothing,
 * ordered walks (byte order, reverse, bounds, stopping, keys only),
 * counts, range removal and atomic batches (kept, undone, read from
 * inside); deadlines (v2.1: set and replaced, touched, handed back by
 * set's callback, unset and range removal, found when due by
 * walk_expiring, undone with a batch, on keys longer than LMDB's index
 * keeps whole); and a seeded random run of all of them against a sorted
 * reference model with revisions and deadlines. Then the memory engine's
 * own: its hash
 * table's integrity under growth and heavy deletion (backward-shift
 * deletion must keep every remaining key reachable) while its incremental
 * resizes leave every request facing a table half moved, each answer and
 * the stats checked after every request against a model, with the
 * ordered index walked whole against the same model under the same churn. */
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "arena.h"
#include "engine.h"

typedef struct fixture {
    const char *engine;
    char dir[64];       /* the engine's directory; "" for memory */
    kv_engine *e;
    kv_arena arena;
} fixture;

/* Setup: opens the engine named by the test's prestate (lmdb in a new
 * directory under /tmp, syncing nothing: these tests never crash it). */
static int open_engine(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    kv_engine_options opts = { .sync = KV_SYNC_NONE };
    char err[256];

    assert_non_null(f);
    f->engine = *state ? *state : "memory";
    if (strcmp(f->engine, "memory") != 0) {
        snprintf(f->dir, sizeof f->dir, "/tmp/kvtest-engine.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
    }
    kv_status st = kv_engine_open(f->engine, f->dir[0] ? f->dir : NULL, &opts, &f->e, err,
                                  sizeof err);
    if (st != KV_OK)
        fail_msg("open %s: %s", f->engine, err);
    kv_arena_init(&f->arena, 4096);
    *state = f;
    return 0;
}

/* Removes DIR and the files in it (an engine's directory has no subdirectories). */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[512];

    if (!d)
        return;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static int close_engine(void **state)
{
    fixture *f = *state;

    assert_int_equal(kv_engine_close(f->e), KV_OK);
    kv_arena_free(&f->arena);
    if (f->dir[0])
        remove_dir(f->dir);
    free(f);
    return 0;
}

#define K(s) (const uint8_t *)(s), sizeof(s) - 1

/* The revision the next request that changes data gets (engine.h). */
static uint64_t next_rev(fixture *f)
{
    return kv_engine_revision(f->e) + 1;
}

static void set_ok(fixture *f, const uint8_t *key, size_t klen, const char *value)
{
    assert_int_equal(kv_engine_set(f->e, key, klen, (const uint8_t *)value, strlen(value),
                                   next_rev(f)), KV_OK);
}

static void expect_meta(const kv_meta *m, uint64_t create, uint64_t mod, uint64_t version)
{
    assert_int_equal(m->create_revision, create);
    assert_int_equal(m->mod_revision, mod);
    assert_int_equal(m->version, version);
}

/* KEY reads as VALUE with those revisions, through get and get_view. */
static void expect_get(fixture *f, const uint8_t *key, size_t klen, const char *value,
                       uint64_t create, uint64_t mod, uint64_t version)
{
    ProtobufCBinaryData v, view;
    kv_meta m, mv;

    assert_int_equal(kv_engine_get(f->e, key, klen, &f->arena.pb, &v, &m), KV_OK);
    assert_int_equal(v.len, strlen(value));
    if (v.len)
        assert_memory_equal(v.data, value, v.len);
    expect_meta(&m, create, mod, version);
    assert_int_equal(kv_engine_get_view(f->e, key, klen, &f->arena.pb, &view, &mv), KV_OK);
    assert_int_equal(view.len, strlen(value));
    if (view.len)
        assert_memory_equal(view.data, value, view.len);
    expect_meta(&mv, create, mod, version);
}

static void expect_missing(fixture *f, const uint8_t *key, size_t klen)
{
    ProtobufCBinaryData v;

    assert_int_equal(kv_engine_get(f->e, key, klen, &f->arena.pb, &v, NULL), KV_NOT_FOUND);
    assert_int_equal(kv_engine_get_view(f->e, key, klen, &f->arena.pb, &v, NULL), KV_NOT_FOUND);
}

static uint64_t stats_keys(fixture *f)
{
    kv_engine_stats st;

    kv_engine_stats_get(f->e, &st);
    return st.keys;
}

static void unknown_engine_is_refused_with_the_list(void **state)
{
    kv_engine *e;
    char err[128];

    (void)state;
    assert_int_equal(kv_engine_open("nosuch", NULL, NULL, &e, err, sizeof err), KV_INVALID_ARGUMENT);
    assert_non_null(strstr(err, "memory"));
}

static void set_get_overwrite_unset(void **state)
{
    fixture *f = *state;
    ProtobufCBinaryData v;
    kv_engine_stats st;

    set_ok(f, K("k"), "one");
    assert_int_equal(kv_engine_get(f->e, K("k"), &f->arena.pb, &v, NULL), KV_OK);
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.data, "one", 3);
    /* Same length may overwrite in place; the copy we got must not change. */
    set_ok(f, K("k"), "two");
    assert_memory_equal(v.data, "one", 3);
    set_ok(f, K("k"), "three");
    kv_engine_stats_get(f->e, &st);
    assert_int_equal(st.keys, 1);
    assert_int_equal(st.data_bytes, 6);
    assert_int_equal(kv_engine_unset(f->e, K("k"), &f->arena.pb, &v, next_rev(f)), KV_OK);
    assert_int_equal(v.len, 5);
    assert_memory_equal(v.data, "three", 5);
    expect_missing(f, K("k"));
    assert_int_equal(kv_engine_unset(f->e, K("k"), NULL, NULL, next_rev(f)), KV_NOT_FOUND);
    kv_engine_stats_get(f->e, &st);
    assert_int_equal(st.keys, 0);
    assert_int_equal(st.data_bytes, 0);
}

static void empty_value_is_stored(void **state)
{
    fixture *f = *state;
    ProtobufCBinaryData v = { 7, (uint8_t *)"x" };

    set_ok(f, K("e"), "");
    assert_int_equal(kv_engine_get(f->e, K("e"), &f->arena.pb, &v, NULL), KV_OK);
    assert_int_equal(v.len, 0);
    expect_get(f, K("e"), "", 1, 1, 1);
}

/* A new key gets {REV, REV, 1}; an overwrite keeps create_revision, takes
 * mod_revision REV and one more version; a key removed and made again
 * starts over; the store's revision follows every write that changes data. */
static void revisions_follow_create_overwrite_and_unset(void **state)
{
    fixture *f = *state;

    assert_int_equal(kv_engine_revision(f->e), 0);
    set_ok(f, K("a"), "1");
    assert_int_equal(kv_engine_revision(f->e), 1);
    expect_get(f, K("a"), "1", 1, 1, 1);
    set_ok(f, K("b"), "x");
    set_ok(f, K("a"), "22");
    expect_get(f, K("a"), "22", 1, 3, 2);
    expect_get(f, K("b"), "x", 2, 2, 1);
    set_ok(f, K("a"), "22");       /* the same value is still a write */
    expect_get(f, K("a"), "22", 1, 4, 3);
    assert_int_equal(kv_engine_revision(f->e), 4);
    assert_int_equal(kv_engine_unset(f->e, K("a"), NULL, NULL, next_rev(f)), KV_OK);
    assert_int_equal(kv_engine_revision(f->e), 5);
    expect_missing(f, K("a"));
    set_ok(f, K("a"), "new");
    expect_get(f, K("a"), "new", 6, 6, 1);
    expect_get(f, K("b"), "x", 2, 2, 1);
    /* Every write of one request may share a revision (a Txn). */
    uint64_t rev = next_rev(f);
    assert_int_equal(kv_engine_set(f->e, K("c"), (const uint8_t *)"c", 1, rev), KV_OK);
    assert_int_equal(kv_engine_set(f->e, K("b"), (const uint8_t *)"y", 1, rev), KV_OK);
    assert_int_equal(kv_engine_revision(f->e), 7);
    expect_get(f, K("c"), "c", 7, 7, 1);
    expect_get(f, K("b"), "y", 2, 7, 2);
}

/* Revisions wide enough for every varint length an engine may pack. */
static void large_revisions_are_kept_exactly(void **state)
{
    fixture *f = *state;
    const uint64_t revs[] = { 127, 128, 16383, 16384, 2097151, 2097152, 268435456,
                              (uint64_t)1 << 35, (uint64_t)1 << 56, UINT64_MAX - 1 };
    uint64_t first = revs[0];

    for (size_t i = 0; i < sizeof revs / sizeof revs[0]; i++) {
        char v[32];
        snprintf(v, sizeof v, "value %zu", i);
        assert_int_equal(kv_engine_set(f->e, K("wide"), (const uint8_t *)v, strlen(v), revs[i]), KV_OK);
        assert_int_equal(kv_engine_revision(f->e), revs[i]);
        expect_get(f, K("wide"), v, first, revs[i], i + 1);
    }
}

/* A Clear of a missing key and a range that removes nothing change
 * nothing: the store's revision stays. */
static void writes_that_change_nothing_leave_the_revision(void **state)
{
    fixture *f = *state;
    uint64_t deleted = 99;

    set_ok(f, K("m"), "v");
    assert_int_equal(kv_engine_revision(f->e), 1);
    assert_int_equal(kv_engine_unset(f->e, K("nope"), NULL, NULL, 2), KV_NOT_FOUND);
    assert_int_equal(kv_engine_revision(f->e), 1);
    kv_range r = { K("x"), K("z") };
    assert_int_equal(kv_engine_unset_range(f->e, &r, 2, &deleted), KV_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(kv_engine_revision(f->e), 1);
    kv_range backwards = { K("z"), K("a") };
    assert_int_equal(kv_engine_unset_range(f->e, &backwards, 2, &deleted), KV_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(kv_engine_revision(f->e), 1);
    expect_get(f, K("m"), "v", 1, 1, 1);
}

/* What a walk handed over, copied. */
typedef struct seen_entry {
    uint8_t key[600];
    size_t klen;
    uint8_t value[64];
    size_t vlen;
    int value_null;
    kv_meta meta;
} seen_entry;

typedef struct seen {
    seen_entry e[512];
    size_t n;
    size_t stop_after;  /* the callback says stop after this many; 0: never */
} seen;

static int collect(void *ctx, const kv_entry *en)
{
    seen *s = ctx;

    if (s->n == sizeof s->e / sizeof s->e[0])
        fail_msg("walk handed over more keys than the test has");
    seen_entry *x = &s->e[s->n++];
    if (en->klen > sizeof x->key)
        fail_msg("walk handed over a key of %zu bytes", en->klen);
    memcpy(x->key, en->key, en->klen);
    x->klen = en->klen;
    x->vlen = en->vlen;
    x->value_null = en->value == NULL;
    if (en->value)
        memcpy(x->value, en->value, en->vlen < sizeof x->value ? en->vlen : sizeof x->value);
    x->meta = en->meta;
    return s->stop_after && s->n == s->stop_after;
}

static void walk_into(fixture *f, const kv_range *r, int reverse, int with_values, seen *s,
                      size_t stop_after)
{
    s->n = 0;
    s->stop_after = stop_after;
    assert_int_equal(kv_engine_walk(f->e, r, reverse, with_values, collect, s), KV_OK);
}

/* Keys in byte order: memcmp, the shorter first on a tie; 0x00 and 0xff
 * bytes anywhere. Set in a scrambled order. */
static const struct { const char *k; size_t len; } ordered[] = {
    { "\x00", 1 }, { "\x00\x00", 2 }, { "\x00\x01", 2 }, { "\x01", 1 }, { "a", 1 },
    { "a\x00", 2 }, { "a\x00\x00", 3 }, { "a\x00\xff", 3 }, { "a\x01", 2 }, { "ab", 2 },
    { "abc", 3 }, { "ab\xff", 3 }, { "b", 1 }, { "\x7f", 1 }, { "\x80", 1 }, { "\xfe\xff", 2 },
    { "\xff", 1 }, { "\xff\x00", 2 }, { "\xff\xff", 2 }, { "\xff\xff\xff", 3 },
};
#define N_ORDERED (sizeof ordered / sizeof ordered[0])

/* The revision set_ordered() gives ordered[J]: its place in the order of
 * setting, plus one. */
static uint64_t ordered_rev(size_t j)
{
    for (size_t i = 0; i < N_ORDERED; i++)
        if ((i * 7 + 3) % N_ORDERED == j)
            return i + 1;
    return 0;
}

static void set_ordered(fixture *f)
{
    for (size_t i = 1; i < N_ORDERED; i++)
        assert_true(kv_key_cmp((const uint8_t *)ordered[i - 1].k, ordered[i - 1].len,
                               (const uint8_t *)ordered[i].k, ordered[i].len) < 0);
    for (size_t i = 0; i < N_ORDERED; i++) {
        size_t j = (i * 7 + 3) % N_ORDERED;     /* 7 is prime to 20: a permutation */
        char v[24];
        snprintf(v, sizeof v, "v%zu", j);
        set_ok(f, (const uint8_t *)ordered[j].k, ordered[j].len, v);
    }
}

/* S holds ordered[FROM..TO) ascending, or descending when REVERSE. */
static void expect_ordered(const seen *s, size_t from, size_t to, int reverse)
{
    assert_int_equal(s->n, to - from);
    for (size_t i = 0; i < s->n; i++) {
        size_t j = reverse ? to - 1 - i : from + i;
        assert_int_equal(s->e[i].klen, ordered[j].len);
        assert_memory_equal(s->e[i].key, ordered[j].k, ordered[j].len);
    }
}

static void walks_go_in_byte_order_both_ways(void **state)
{
    fixture *f = *state;
    static seen s;
    kv_range all = { 0 };

    set_ordered(f);
    walk_into(f, &all, 0, 1, &s, 0);
    expect_ordered(&s, 0, N_ORDERED, 0);
    for (size_t j = 0; j < s.n; j++) {
        char v[24];
        size_t i = j;
        snprintf(v, sizeof v, "v%zu", j);
        assert_int_equal(s.e[i].vlen, strlen(v));
        assert_memory_equal(s.e[i].value, v, strlen(v));
        expect_meta(&s.e[i].meta, ordered_rev(j), ordered_rev(j), 1);
    }
    walk_into(f, &all, 1, 1, &s, 0);
    expect_ordered(&s, 0, N_ORDERED, 1);
}

/* START is inclusive, END exclusive, either empty for no bound; a range
 * that ends before it starts is empty. */
static void walk_bounds(void **state)
{
    fixture *f = *state;
    static seen s;

    set_ordered(f);
    for (size_t a = 0; a <= N_ORDERED; a++) {
        for (size_t b = 0; b <= N_ORDERED; b++) {
            /* a == N_ORDERED: no start bound... as the range's own edge */
            kv_range r = { 0 };
            size_t from = 0, to = N_ORDERED;
            if (a < N_ORDERED) {
                r.start = (const uint8_t *)ordered[a].k;
                r.start_len = ordered[a].len;
                from = a;
            }
            if (b < N_ORDERED) {
                r.end = (const uint8_t *)ordered[b].k;
                r.end_len = ordered[b].len;
                to = b;
            }
            if (to < from)
                to = from;
            for (int reverse = 0; reverse < 2; reverse++) {
                walk_into(f, &r, reverse, 0, &s, 0);
                expect_ordered(&s, from, to, reverse);
            }
            uint64_t n = 99;
            assert_int_equal(kv_engine_count(f->e, &r, &n), KV_OK);
            assert_int_equal(n, to - from);
        }
    }
    /* Bounds that are not keys: between, before and after them all. */
    kv_range mid = { K("a\x00\x01"), K("ab\x00") };
    walk_into(f, &mid, 0, 0, &s, 0);
    expect_ordered(&s, 7, 10, 0);
    walk_into(f, &mid, 1, 0, &s, 0);
    expect_ordered(&s, 7, 10, 1);
    kv_range after = { K("\xff\xff\xff\x00"), 0, 0 };
    walk_into(f, &after, 0, 0, &s, 0);
    assert_int_equal(s.n, 0);
    walk_into(f, &after, 1, 0, &s, 0);
    assert_int_equal(s.n, 0);
    kv_range before = { 0, 0, K("\x00") };
    walk_into(f, &before, 1, 0, &s, 0);
    assert_int_equal(s.n, 0);
}

static void walk_stops_when_the_callback_says_so(void **state)
{
    fixture *f = *state;
    static seen s;
    kv_range all = { 0 };

    set_ordered(f);
    walk_into(f, &all, 0, 1, &s, 3);
    expect_ordered(&s, 0, 3, 0);
    walk_into(f, &all, 1, 1, &s, 3);
    expect_ordered(&s, N_ORDERED - 3, N_ORDERED, 1);
    walk_into(f, &all, 0, 0, &s, 1);
    expect_ordered(&s, 0, 1, 0);
}

/* Keys only: no value, its length still told; with values, an empty one
 * is NULL; revisions either way. */
static void walk_keys_only_and_with_values(void **state)
{
    fixture *f = *state;
    static seen s;
    kv_range all = { 0 };

    set_ok(f, K("a"), "alpha");
    set_ok(f, K("b"), "");
    set_ok(f, K("a"), "alpha2");
    walk_into(f, &all, 0, 0, &s, 0);
    assert_int_equal(s.n, 2);
    assert_true(s.e[0].value_null);
    assert_int_equal(s.e[0].vlen, 6);
    expect_meta(&s.e[0].meta, 1, 3, 2);
    assert_true(s.e[1].value_null);
    assert_int_equal(s.e[1].vlen, 0);
    expect_meta(&s.e[1].meta, 2, 2, 1);
    walk_into(f, &all, 0, 1, &s, 0);
    assert_false(s.e[0].value_null);
    assert_memory_equal(s.e[0].value, "alpha2", 6);
    assert_true(s.e[1].value_null);
    assert_int_equal(s.e[1].vlen, 0);
}

static void unset_range_removes_just_its_keys(void **state)
{
    fixture *f = *state;
    static seen s;
    kv_range all = { 0 };
    uint64_t deleted, n;

    set_ordered(f);
    uint64_t rev = next_rev(f);
    kv_range r = { K("a"), K("b") };      /* ordered[4..12) */
    assert_int_equal(kv_engine_unset_range(f->e, &r, rev, &deleted), KV_OK);
    assert_int_equal(deleted, 8);
    assert_int_equal(kv_engine_revision(f->e), rev);
    assert_int_equal(stats_keys(f), N_ORDERED - 8);
    walk_into(f, &all, 0, 0, &s, 0);
    assert_int_equal(s.n, N_ORDERED - 8);
    for (size_t i = 0; i < s.n; i++) {
        size_t j = i < 4 ? i : i + 8;
        assert_int_equal(s.e[i].klen, ordered[j].len);
        assert_memory_equal(s.e[i].key, ordered[j].k, ordered[j].len);
    }
    assert_int_equal(kv_engine_count(f->e, &r, &n), KV_OK);
    assert_int_equal(n, 0);
    expect_missing(f, K("ab"));
    expect_get(f, K("b"), "v12", ordered_rev(12), ordered_rev(12), 1);
    /* Unbounded above: the rest from \xff. */
    kv_range top = { K("\xff"), 0, 0 };
    assert_int_equal(kv_engine_unset_range(f->e, &top, next_rev(f), &deleted), KV_OK);
    assert_int_equal(deleted, 4);
    /* Everything, from the first possible key. */
    kv_range rest = { K("\x00"), 0, 0 };
    assert_int_equal(kv_engine_unset_range(f->e, &rest, next_rev(f), &deleted), KV_OK);
    assert_int_equal(deleted, N_ORDERED - 12);
    assert_int_equal(stats_keys(f), 0);
    assert_int_equal(kv_engine_revision(f->e), rev + 2);
    walk_into(f, &all, 1, 0, &s, 0);
    assert_int_equal(s.n, 0);
}

/* Long keys: a two-byte length in the memory engine's items. */
static void long_keys_keep_their_order(void **state)
{
    fixture *f = *state;
    static seen s;
    uint8_t key[300], val[200];
    kv_range all = { 0 };

    memset(key, 'k', sizeof key);
    for (size_t i = 0; i < sizeof val; i++)
        val[i] = (uint8_t)i;
    for (size_t len = 120; len <= sizeof key; len += 30) {
        key[len - 1] = (uint8_t)len;
        assert_int_equal(kv_engine_set(f->e, key, len, val, len % sizeof val, next_rev(f)), KV_OK);
    }
    walk_into(f, &all, 0, 1, &s, 0);
    assert_int_equal(s.n, 7);
    for (size_t i = 0; i < s.n; i++) {
        assert_int_equal(s.e[i].klen, 120 + 30 * i);
        assert_int_equal(s.e[i].vlen, s.e[i].klen % sizeof val);
        assert_memory_equal(s.e[i].key, key, s.e[i].klen - 1);
        assert_memory_equal(s.e[i].value, val, s.e[i].vlen < 64 ? s.e[i].vlen : 64);
    }
    walk_into(f, &all, 1, 0, &s, 0);
    assert_int_equal(s.n, 7);
    assert_int_equal(s.e[0].klen, 300);
    assert_int_equal(kv_engine_unset(f->e, key, 180, NULL, NULL, next_rev(f)), KV_OK);
    kv_range r = { key, 150, key, 240 };
    uint64_t n;
    assert_int_equal(kv_engine_count(f->e, &r, &n), KV_OK);
    assert_int_equal(n, 2);     /* 150 and 210 */
}

/* Memory engine: a value given as the engine's own bytes of that very key
 * (a view, shifted): an overwrite in place must move it before writing
 * the lengths and revisions over it. */
static void a_value_from_its_own_view_survives_the_overwrite(void **state)
{
    fixture *f = *state;
    uint8_t val[200];
    ProtobufCBinaryData view;

    for (size_t i = 0; i < sizeof val; i++)
        val[i] = (uint8_t)i;
    assert_int_equal(kv_engine_set(f->e, K("own"), val, 150, next_rev(f)), KV_OK);
    /* Revisions that need more bytes each time push the value on. */
    uint64_t revs[] = { 200, 20000, 3000000 };
    size_t skip[] = { 1, 10, 3 }, at = 0, len = 150;
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(kv_engine_get_view(f->e, K("own"), &f->arena.pb, &view, NULL), KV_OK);
        at += skip[i];
        len -= skip[i] + 5;
        assert_int_equal(kv_engine_set(f->e, K("own"), view.data + skip[i], len, revs[i]), KV_OK);
        assert_int_equal(kv_engine_get(f->e, K("own"), &f->arena.pb, &view, NULL), KV_OK);
        assert_int_equal(view.len, len);
        assert_memory_equal(view.data, val + at, len);
    }
}

/* The writes of a kept batch stay, with the batch's one revision; reads
 * inside it see them. */
static void batch_keep_applies_every_write(void **state)
{
    fixture *f = *state;
    static seen s;
    kv_range all = { 0 };
    uint64_t deleted, n;

    set_ok(f, K("a"), "a1");
    set_ok(f, K("b"), "b1");
    set_ok(f, K("c"), "c1");
    set_ok(f, K("d"), "d1");
    uint64_t rev = next_rev(f);
    assert_int_equal(kv_engine_batch_begin(f->e), KV_OK);
    assert_int_equal(kv_engine_set(f->e, K("a"), (const uint8_t *)"a2", 2, rev), KV_OK);
    assert_int_equal(kv_engine_set(f->e, K("e"), (const uint8_t *)"e1", 2, rev), KV_OK);
    assert_int_equal(kv_engine_unset(f->e, K("b"), NULL, NULL, rev), KV_OK);
    kv_range cd = { K("c"), K("d\x00") };
    assert_int_equal(kv_engine_unset_range(f->e, &cd, rev, &deleted), KV_OK);
    assert_int_equal(deleted, 2);
    assert_int_equal(kv_engine_set(f->e, K("c"), (const uint8_t *)"c2", 2, rev), KV_OK);
    /* Reads inside see the batch. */
    expect_get(f, K("a"), "a2", 1, rev, 2);
    expect_get(f, K("e"), "e1", rev, rev, 1);
    expect_get(f, K("c"), "c2", rev, rev, 1);
    expect_missing(f, K("b"));
    expect_missing(f, K("d"));
    assert_int_equal(kv_engine_count(f->e, &all, &n), KV_OK);
    assert_int_equal(n, 3);
    walk_into(f, &all, 0, 1, &s, 0);
    assert_int_equal(s.n, 3);
    assert_memory_equal(s.e[1].key, "c", 1);
    assert_int_equal(kv_engine_batch_end(f->e, 1), KV_OK);
    assert_int_equal(kv_engine_revision(f->e), rev);
    expect_get(f, K("a"), "a2", 1, rev, 2);
    expect_get(f, K("c"), "c2", rev, rev, 1);
    expect_get(f, K("e"), "e1", rev, rev, 1);
    expect_missing(f, K("b"));
    expect_missing(f, K("d"));
    assert_int_equal(stats_keys(f), 3);
    walk_into(f, &all, 1, 0, &s, 0);
    assert_int_equal(s.n, 3);
    assert_memory_equal(s.e[0].key, "e", 1);
}

/* A batch undone leaves no trace: values, revisions, the store's
 * revision, keys it created (one of them removed again) and keys it
 * removed (one of them made again), the counts and the walks. */
static void batch_undo_restores_everything(void **state)
{
    fixture *f = *state;
    static seen before, after;
    kv_range all = { 0 };
    uint64_t deleted, n;
    kv_engine_stats st0, st1;

    for (int i = 0; i < 40; i++) {
        char k[16], v[16];
        snprintf(k, sizeof k, "k%02d", i);
        snprintf(v, sizeof v, "v%d", i);
        set_ok(f, (const uint8_t *)k, strlen(k), v);
    }
    set_ok(f, K("k05"), "v5 again");
    walk_into(f, &all, 0, 1, &before, 0);
    kv_engine_stats_get(f->e, &st0);
    uint64_t rev0 = kv_engine_revision(f->e), rev = rev0 + 1;

    assert_int_equal(kv_engine_batch_begin(f->e), KV_OK);
    assert_int_equal(kv_engine_set(f->e, K("k05"), (const uint8_t *)"changed, longer", 15, rev), KV_OK);
    assert_int_equal(kv_engine_set(f->e, K("k06"), (const uint8_t *)"s", 1, rev), KV_OK);
    assert_int_equal(kv_engine_set(f->e, K("new1"), (const uint8_t *)"n", 1, rev), KV_OK);
    assert_int_equal(kv_engine_set(f->e, K("new2"), (const uint8_t *)"n", 1, rev), KV_OK);
    assert_int_equal(kv_engine_unset(f->e, K("new2"), NULL, NULL, rev), KV_OK);
    assert_int_equal(kv_engine_unset(f->e, K("k07"), NULL, NULL, rev), KV_OK);
    assert_int_equal(kv_engine_set(f->e, K("k07"), (const uint8_t *)"back", 4, rev), KV_OK);
    kv_range r = { K("k10"), K("k30") };
    assert_int_equal(kv_engine_unset_range(f->e, &r, rev, &deleted), KV_OK);
    assert_int_equal(deleted, 20);
    expect_get(f, K("k07"), "back", rev, rev, 1);
    expect_missing(f, K("k15"));
    assert_int_equal(kv_engine_count(f->e, &all, &n), KV_OK);
    assert_int_equal(n, 40 - 20 + 1);
    assert_int_equal(kv_engine_revision(f->e), rev);
    assert_int_equal(kv_engine_batch_end(f->e, 0), KV_OK);

    assert_int_equal(kv_engine_revision(f->e), rev0);
    walk_into(f, &all, 0, 1, &after, 0);
    assert_int_equal(after.n, before.n);
    for (size_t i = 0; i < after.n; i++) {
        assert_int_equal(after.e[i].klen, before.e[i].klen);
        assert_memory_equal(after.e[i].key, before.e[i].key, before.e[i].klen);
        assert_int_equal(after.e[i].vlen, before.e[i].vlen);
        assert_memory_equal(after.e[i].value, before.e[i].value, before.e[i].vlen);
        expect_meta(&after.e[i].meta, before.e[i].meta.create_revision,
                    before.e[i].meta.mod_revision, before.e[i].meta.version);
    }
    expect_get(f, K("k05"), "v5 again", 6, 41, 2);
    expect_missing(f, K("new1"));
    expect_missing(f, K("new2"));
    assert_int_equal(kv_engine_count(f->e, &all, &n), KV_OK);
    assert_int_equal(n, 40);
    kv_engine_stats_get(f->e, &st1);
    assert_int_equal(st1.keys, st0.keys);
    assert_int_equal(st1.data_bytes, st0.data_bytes);
    /* The store goes on from where it was. */
    set_ok(f, K("k99"), "after");
    expect_get(f, K("k99"), "after", rev, rev, 1);
}

static void batches_do_not_nest(void **state)
{
    fixture *f = *state;

    assert_int_equal(kv_engine_batch_begin(f->e), KV_OK);
    assert_int_not_equal(kv_engine_batch_begin(f->e), KV_OK);
    assert_int_equal(kv_engine_batch_end(f->e, 1), KV_OK);
    /* One can begin again once it ended, and an empty batch changes nothing. */
    assert_int_equal(kv_engine_batch_begin(f->e), KV_OK);
    assert_int_equal(kv_engine_batch_end(f->e, 0), KV_OK);
    assert_int_equal(kv_engine_revision(f->e), 0);
}

/* ---- Deadlines (v2.1): stored, found when due, never acted on ---- */

/* Engines never read a clock of their own for deadlines: these tests give
 * made-up ones (1000, 2000, ...) and a made-up NOW. */

static void set_ttl(fixture *f, const uint8_t *key, size_t klen, const char *value,
                    uint64_t expires)
{
    assert_int_equal(kv_engine_set_ttl(f->e, key, klen, (const uint8_t *)value, strlen(value),
                                       next_rev(f), expires, NULL, NULL), KV_OK);
}

/* KEY's deadline, the same through get, get_view and a walk of it alone. */
static uint64_t deadline_of(fixture *f, const uint8_t *key, size_t klen)
{
    static seen s;
    ProtobufCBinaryData v;
    kv_meta m, mv;
    kv_range just = { key, klen, NULL, 0 };

    assert_int_equal(kv_engine_get(f->e, key, klen, &f->arena.pb, &v, &m), KV_OK);
    assert_int_equal(kv_engine_get_view(f->e, key, klen, &f->arena.pb, &v, &mv), KV_OK);
    assert_int_equal(m.expires_ms, mv.expires_ms);
    walk_into(f, &just, 0, 0, &s, 1);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.e[0].meta.expires_ms, m.expires_ms);
    return m.expires_ms;
}

static uint64_t stats_ttl(fixture *f)
{
    kv_engine_stats st;

    kv_engine_stats_get(f->e, &st);
    return st.keys_with_ttl;
}

static int by_key(const void *a, const void *b)
{
    const seen_entry *x = a, *y = b;

    return kv_key_cmp(x->key, x->klen, y->key, y->klen);
}

/* walk_expiring at NOW into S, sorted by key (the engine's order is its own). */
static void expiring_into(fixture *f, uint64_t now, int with_values, seen *s, size_t stop_after)
{
    s->n = 0;
    s->stop_after = stop_after;
    assert_int_equal(kv_engine_walk_expiring(f->e, now, with_values, collect, s), KV_OK);
    qsort(s->e, s->n, sizeof s->e[0], by_key);
}

/* S holds exactly the N keys of WANT (NUL-terminated strings, in key order). */
static void expect_keys(const seen *s, const char *const *want, size_t n)
{
    assert_int_equal(s->n, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(s->e[i].klen, strlen(want[i]));
        assert_memory_equal(s->e[i].key, want[i], s->e[i].klen);
    }
}

/* A Set's deadline is the key's until the next Set, which replaces it:
 * with another, or with none (0). */
static void a_set_gives_its_deadline_and_the_next_replaces_it(void **state)
{
    fixture *f = *state;
    ProtobufCBinaryData v;
    kv_meta m;

    /* A write at revision 0 (allowed on a new store) without a deadline:
     * LMDB's record then takes its longer form all the same. */
    assert_int_equal(kv_engine_set_ttl(f->e, K("zero"), (const uint8_t *)"z", 1, 0, 0, NULL,
                                       NULL), KV_OK);
    assert_int_equal(kv_engine_get(f->e, K("zero"), &f->arena.pb, &v, &m), KV_OK);
    expect_meta(&m, 0, 0, 1);
    assert_int_equal(deadline_of(f, K("zero")), 0);
    assert_int_equal(kv_engine_unset(f->e, K("zero"), NULL, NULL, 0), KV_OK);
    assert_int_equal(stats_ttl(f), 0);
    set_ttl(f, K("k"), "v", 1000);
    assert_int_equal(deadline_of(f, K("k")), 1000);
    expect_get(f, K("k"), "v", 1, 1, 1);
    assert_int_equal(stats_ttl(f), 1);
    set_ttl(f, K("k"), "v2", 3000);
    assert_int_equal(deadline_of(f, K("k")), 3000);
    assert_int_equal(stats_ttl(f), 1);
    set_ok(f, K("k"), "v3");                /* no deadline: none after it */
    assert_int_equal(deadline_of(f, K("k")), 0);
    expect_get(f, K("k"), "v3", 1, 3, 3);
    assert_int_equal(stats_ttl(f), 0);
    assert_int_equal(kv_engine_next_deadline(f->e), 0);
    set_ttl(f, K("k"), "v4", 2000);
    set_ttl(f, K("other"), "", 500);
    assert_int_equal(stats_ttl(f), 2);
    assert_int_equal(kv_engine_next_deadline(f->e), 500);
    /* A deadline as wide as the type. */
    set_ttl(f, K("wide"), "w", UINT64_MAX);
    assert_true(deadline_of(f, K("wide")) == UINT64_MAX);
    assert_int_equal(stats_ttl(f), 3);
    assert_int_equal(kv_engine_next_deadline(f->e), 500);
}

/* Touch sets or removes the deadline and nothing else: not the value,
 * not the revisions, not the store's revision; a missing key is NOT_FOUND. */
static void touch_changes_only_the_deadline(void **state)
{
    fixture *f = *state;
    static uint8_t big[20000];          /* over LMDB's pages: rewritten whole */
    ProtobufCBinaryData v;
    kv_engine_stats st0, st1;

    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    set_ok(f, K("a"), "alpha");
    set_ok(f, K("b"), "beta");
    assert_int_equal(kv_engine_set(f->e, K("big"), big, sizeof big, next_rev(f)), KV_OK);
    set_ok(f, K("a"), "alpha2");
    uint64_t rev = kv_engine_revision(f->e);
    kv_engine_stats_get(f->e, &st0);

    assert_int_equal(kv_engine_touch(f->e, K("a"), 5000), KV_OK);
    assert_int_equal(deadline_of(f, K("a")), 5000);
    expect_get(f, K("a"), "alpha2", 1, 4, 2);
    assert_int_equal(kv_engine_touch(f->e, K("a"), 4000), KV_OK);     /* earlier: allowed */
    assert_int_equal(deadline_of(f, K("a")), 4000);
    assert_int_equal(kv_engine_touch(f->e, K("a"), 4000), KV_OK);     /* the same: fine */
    assert_int_equal(kv_engine_touch(f->e, K("big"), 9000), KV_OK);
    assert_int_equal(kv_engine_get(f->e, K("big"), &f->arena.pb, &v, NULL), KV_OK);
    assert_int_equal(v.len, sizeof big);
    assert_memory_equal(v.data, big, sizeof big);
    assert_int_equal(deadline_of(f, K("big")), 9000);
    assert_int_equal(kv_engine_touch(f->e, K("nope"), 5000), KV_NOT_FOUND);
    expect_missing(f, K("nope"));
    assert_int_equal(kv_engine_revision(f->e), rev);
    assert_int_equal(stats_ttl(f), 2);
    assert_int_equal(kv_engine_next_deadline(f->e), 4000);
    kv_engine_stats_get(f->e, &st1);
    assert_int_equal(st1.keys, st0.keys);
    assert_int_equal(st1.data_bytes, st0.data_bytes);

    assert_int_equal(kv_engine_touch(f->e, K("a"), 0), KV_OK);        /* removed */
    assert_int_equal(deadline_of(f, K("a")), 0);
    assert_int_equal(kv_engine_touch(f->e, K("big"), 0), KV_OK);
    assert_int_equal(kv_engine_get(f->e, K("big"), &f->arena.pb, &v, NULL), KV_OK);
    assert_memory_equal(v.data, big, sizeof big);
    assert_int_equal(stats_ttl(f), 0);
    assert_int_equal(kv_engine_next_deadline(f->e), 0);
    expect_get(f, K("a"), "alpha2", 1, 4, 2);
    expect_get(f, K("b"), "beta", 2, 2, 1);
    assert_int_equal(kv_engine_revision(f->e), rev);
    /* The next write goes on from the store's revision. */
    set_ok(f, K("b"), "beta2");
    expect_get(f, K("b"), "beta2", 2, rev + 1, 2);
}

/* walk_expiring: exactly the keys whose deadline is at or before NOW (and
 * not 0), each once, values only when asked; next_deadline: the earliest. */
static void walk_expiring_finds_exactly_the_keys_due(void **state)
{
    fixture *f = *state;
    static seen s;

    assert_int_equal(kv_engine_next_deadline(f->e), 0);
    expiring_into(f, UINT64_MAX, 1, &s, 0);
    assert_int_equal(s.n, 0);
    set_ttl(f, K("a"), "va", 1000);
    set_ttl(f, K("b"), "vb", 2000);
    set_ttl(f, K("c"), "vc", 1500);
    set_ok(f, K("d"), "vd");
    set_ttl(f, K("e"), "", 1000);           /* the same deadline as a */
    set_ttl(f, K("f"), "vf", 1501);
    assert_int_equal(kv_engine_next_deadline(f->e), 1000);

    expiring_into(f, 1500, 1, &s, 0);
    expect_keys(&s, (const char *const[]){ "a", "c", "e" }, 3);
    assert_int_equal(s.e[0].vlen, 2);
    assert_memory_equal(s.e[0].value, "va", 2);
    assert_int_equal(s.e[0].meta.expires_ms, 1000);
    expect_meta(&s.e[0].meta, 1, 1, 1);
    assert_int_equal(s.e[1].meta.expires_ms, 1500);
    assert_true(s.e[2].value_null);         /* empty */
    assert_int_equal(s.e[2].vlen, 0);
    expiring_into(f, 1500, 0, &s, 0);       /* keys only: lengths, no values */
    expect_keys(&s, (const char *const[]){ "a", "c", "e" }, 3);
    assert_true(s.e[0].value_null);
    assert_int_equal(s.e[0].vlen, 2);
    expiring_into(f, 999, 1, &s, 0);
    assert_int_equal(s.n, 0);
    expiring_into(f, 1000, 1, &s, 0);       /* at the deadline: due */
    expect_keys(&s, (const char *const[]){ "a", "e" }, 2);
    expiring_into(f, UINT64_MAX, 0, &s, 0);
    expect_keys(&s, (const char *const[]){ "a", "b", "c", "e", "f" }, 5);
    expiring_into(f, UINT64_MAX, 0, &s, 2); /* stopped by the callback */
    assert_int_equal(s.n, 2);
    /* Walks change nothing: the keys stay, and so do their deadlines. */
    assert_int_equal(stats_keys(f), 6);
    assert_int_equal(stats_ttl(f), 5);

    /* A later deadline moves a key out; Clears take theirs away. */
    set_ttl(f, K("a"), "va", 2500);
    assert_int_equal(kv_engine_unset(f->e, K("e"), NULL, NULL, next_rev(f)), KV_OK);
    assert_int_equal(kv_engine_next_deadline(f->e), 1500);
    expiring_into(f, 1500, 0, &s, 0);
    expect_keys(&s, (const char *const[]){ "c" }, 1);
    assert_int_equal(kv_engine_unset(f->e, K("c"), NULL, NULL, next_rev(f)), KV_OK);
    assert_int_equal(kv_engine_next_deadline(f->e), 1501);
    kv_range all = { K("\x00"), 0, 0 };
    uint64_t deleted;
    assert_int_equal(kv_engine_unset_range(f->e, &all, next_rev(f), &deleted), KV_OK);
    assert_int_equal(deleted, 4);
    assert_int_equal(kv_engine_next_deadline(f->e), 0);
    expiring_into(f, UINT64_MAX, 1, &s, 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(stats_ttl(f), 0);
}

/* Long keys that differ only past their 503rd byte (LMDB's index keeps
 * that much of a key beside the deadline), one deadline for them all. */
static void long_keys_share_a_deadline(void **state)
{
    fixture *f = *state;
    static seen s;
    uint8_t key[511];
    const size_t lens[] = { 502, 503, 504, 505, 511, 511, 1 };

    memset(key, 'L', sizeof key);
    for (size_t i = 0; i < 7; i++) {
        key[lens[i] - 1] = (uint8_t)('0' + i);
        assert_int_equal(kv_engine_set_ttl(f->e, key, lens[i], key, 3, next_rev(f), 777,
                                           NULL, NULL), KV_OK);
        key[lens[i] - 1] = 'L';
    }
    assert_int_equal(stats_ttl(f), 7);
    expiring_into(f, 777, 1, &s, 0);
    assert_int_equal(s.n, 7);
    for (size_t i = 0; i < s.n; i++) {
        size_t j = 0;
        while (j < 7 && !(s.e[i].klen == lens[j] && s.e[i].key[lens[j] - 1] == '0' + j))
            j++;
        assert_true(j < 7);
        assert_memory_equal(s.e[i].key, key, lens[j] - 1);
        assert_int_equal(s.e[i].meta.expires_ms, 777);
        assert_int_equal(s.e[i].vlen, 3);
    }
    /* Each one moved or removed alone. */
    key[510] = '4';
    assert_int_equal(kv_engine_touch(f->e, key, 511, 778), KV_OK);
    key[510] = '5';
    assert_int_equal(kv_engine_unset(f->e, key, 511, NULL, NULL, next_rev(f)), KV_OK);
    expiring_into(f, 777, 0, &s, 0);
    assert_int_equal(s.n, 5);
    expiring_into(f, 778, 0, &s, 0);
    assert_int_equal(s.n, 6);
    kv_range all = { 0 };
    uint64_t deleted;
    assert_int_equal(kv_engine_unset_range(f->e, &(kv_range){ K("L"), 0, 0 }, next_rev(f),
                                           &deleted), KV_OK);
    assert_int_equal(deleted, 5);
    expiring_into(f, UINT64_MAX, 0, &s, 0);
    assert_int_equal(s.n, 1);               /* "0", one byte */
    assert_int_equal(s.e[0].klen, 1);
    walk_into(f, &all, 0, 0, &s, 0);
    assert_int_equal(s.n, 1);
}

/* Counts the calls of a seen() callback and keeps the entry of the last. */
typedef struct seen_once {
    int calls;
    seen_entry last;
} seen_once;

static int seen_one(void *ctx, const kv_entry *en)
{
    seen_once *o = ctx;

    o->calls++;
    o->last.klen = en->klen;
    memcpy(o->last.key, en->key, en->klen < sizeof o->last.key ? en->klen : sizeof o->last.key);
    o->last.vlen = en->vlen;
    o->last.value_null = en->value == NULL;
    if (en->value)
        memcpy(o->last.value, en->value,
               en->vlen < sizeof o->last.value ? en->vlen : sizeof o->last.value);
    o->last.meta = en->meta;
    return 1;       /* ignored */
}

/* set's SEEN: called once with the old value and meta when the key
 * existed, never for a new key. */
static void set_shows_the_old_entry_to_seen(void **state)
{
    fixture *f = *state;
    seen_once o = { 0 };

    assert_int_equal(kv_engine_set_ttl(f->e, K("k"), (const uint8_t *)"one", 3, next_rev(f),
                                       1000, seen_one, &o), KV_OK);
    assert_int_equal(o.calls, 0);
    assert_int_equal(kv_engine_set_ttl(f->e, K("k"), (const uint8_t *)"two!", 4, next_rev(f),
                                       0, seen_one, &o), KV_OK);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.last.klen, 1);
    assert_memory_equal(o.last.key, "k", 1);
    assert_int_equal(o.last.vlen, 3);
    assert_memory_equal(o.last.value, "one", 3);
    expect_meta(&o.last.meta, 1, 1, 1);
    assert_int_equal(o.last.meta.expires_ms, 1000);
    assert_int_equal(kv_engine_set_ttl(f->e, K("k"), NULL, 0, next_rev(f), 2000, seen_one, &o),
                     KV_OK);
    assert_int_equal(o.calls, 2);
    assert_memory_equal(o.last.value, "two!", 4);
    expect_meta(&o.last.meta, 1, 2, 2);
    assert_int_equal(o.last.meta.expires_ms, 0);
    assert_int_equal(kv_engine_set_ttl(f->e, K("k"), (const uint8_t *)"x", 1, next_rev(f), 0,
                                       seen_one, &o), KV_OK);
    assert_int_equal(o.calls, 3);
    assert_true(o.last.value_null);         /* the old value was empty */
    assert_int_equal(o.last.vlen, 0);
    assert_int_equal(o.last.meta.expires_ms, 2000);
    expect_get(f, K("k"), "x", 1, 4, 4);
}

/* unset hands back the old value and meta, deadline included. */
static void unset_hands_back_the_old_meta(void **state)
{
    fixture *f = *state;
    ProtobufCBinaryData old;
    kv_meta m;

    set_ttl(f, K("k"), "v1", 7000);
    set_ttl(f, K("k"), "v2", 8000);
    set_ok(f, K("plain"), "p");
    assert_int_equal(kv_engine_unset_meta(f->e, K("k"), &f->arena.pb, &old, &m, next_rev(f)),
                     KV_OK);
    assert_int_equal(old.len, 2);
    assert_memory_equal(old.data, "v2", 2);
    expect_meta(&m, 1, 2, 2);
    assert_int_equal(m.expires_ms, 8000);
    assert_int_equal(kv_engine_unset_meta(f->e, K("plain"), NULL, NULL, &m, next_rev(f)),
                     KV_OK);
    expect_meta(&m, 3, 3, 1);
    assert_int_equal(m.expires_ms, 0);
    assert_int_equal(kv_engine_unset_meta(f->e, K("k"), NULL, NULL, &m, next_rev(f)),
                     KV_NOT_FOUND);
    assert_int_equal(kv_engine_revision(f->e), 5);
    assert_int_equal(stats_ttl(f), 0);
    assert_int_equal(kv_engine_next_deadline(f->e), 0);
}

/* unset_range's callback sees every key it removes, in key order, with its
 * value and meta, and the index loses their deadlines. */
static void unset_range_shows_each_key_it_removes(void **state)
{
    fixture *f = *state;
    static seen s, due;
    uint64_t deleted;

    set_ordered(f);
    /* Deadlines on every other key, inside the range and out. */
    for (size_t j = 0; j < N_ORDERED; j += 2)
        assert_int_equal(kv_engine_touch(f->e, (const uint8_t *)ordered[j].k, ordered[j].len,
                                         100 + j), KV_OK);
    uint64_t rev = next_rev(f);
    kv_range r = { K("a"), K("b") };      /* ordered[4..12) */
    s.n = 0;
    s.stop_after = 1;                       /* its return value is ignored */
    assert_int_equal(kv_engine_unset_range_each(f->e, &r, rev, &deleted, collect, &s), KV_OK);
    assert_int_equal(deleted, 8);
    expect_ordered(&s, 4, 12, 0);
    for (size_t i = 0; i < s.n; i++) {
        size_t j = 4 + i;
        char v[24];
        snprintf(v, sizeof v, "v%zu", j);
        assert_int_equal(s.e[i].vlen, strlen(v));
        assert_memory_equal(s.e[i].value, v, strlen(v));
        expect_meta(&s.e[i].meta, ordered_rev(j), ordered_rev(j), 1);
        assert_int_equal(s.e[i].meta.expires_ms, j % 2 ? 0 : 100 + j);
    }
    assert_int_equal(stats_ttl(f), N_ORDERED / 2 - 4);
    expiring_into(f, UINT64_MAX, 0, &due, 0);
    assert_int_equal(due.n, N_ORDERED / 2 - 4);
    for (size_t i = 0; i < due.n; i++)
        assert_false(kv_range_has(&r, due.e[i].key, due.e[i].klen));
    /* An empty range calls nothing. */
    s.n = 0;
    assert_int_equal(kv_engine_unset_range_each(f->e, &r, next_rev(f), &deleted, collect, &s),
                     KV_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(kv_engine_revision(f->e), rev);
}

/* The deadlines of every key, as walk_expiring(UINT64_MAX) sees them,
 * with next_deadline and keys_with_ttl: what a batch undone must restore. */
typedef struct deadlines {
    seen due;
    uint64_t next, with_ttl;
} deadlines;

static void deadlines_into(fixture *f, deadlines *d)
{
    expiring_into(f, UINT64_MAX, 1, &d->due, 0);
    d->next = kv_engine_next_deadline(f->e);
    d->with_ttl = stats_ttl(f);
}

static void expect_same_deadlines(const deadlines *a, const deadlines *b)
{
    assert_int_equal(a->due.n, b->due.n);
    for (size_t i = 0; i < a->due.n; i++) {
        assert_int_equal(a->due.e[i].klen, b->due.e[i].klen);
        assert_memory_equal(a->due.e[i].key, b->due.e[i].key, a->due.e[i].klen);
        assert_int_equal(a->due.e[i].meta.expires_ms, b->due.e[i].meta.expires_ms);
        assert_int_equal(a->due.e[i].vlen, b->due.e[i].vlen);
    }
    assert_int_equal(a->next, b->next);
    assert_int_equal(a->with_ttl, b->with_ttl);
}

/* A batch's deadline changes (new, moved, removed by a Set, a Clear, a
 * range) are seen inside it, gone when it is undone, and kept when kept. */
static void batches_undo_and_keep_deadlines(void **state)
{
    fixture *f = *state;
    static deadlines before, after, inside;
    uint64_t deleted;

    for (int i = 0; i < 20; i++) {
        char k[16], v[16];
        snprintf(k, sizeof k, "k%02d", i);
        snprintf(v, sizeof v, "v%d", i);
        set_ttl(f, (const uint8_t *)k, strlen(k), v, i % 3 ? 1000 + 10 * (uint64_t)i : 0);
    }
    deadlines_into(f, &before);
    assert_int_equal(before.with_ttl, 13);
    assert_int_equal(before.next, 1010);
    for (int keep = 0; keep < 2; keep++) {
        uint64_t rev = next_rev(f);
        assert_int_equal(kv_engine_batch_begin(f->e), KV_OK);
        assert_int_equal(kv_engine_set_ttl(f->e, K("k01"), (const uint8_t *)"x", 1, rev, 5,
                                           NULL, NULL), KV_OK);               /* moved */
        assert_int_equal(kv_engine_set_ttl(f->e, K("k02"), (const uint8_t *)"x", 1, rev, 0,
                                           NULL, NULL), KV_OK);               /* removed */
        assert_int_equal(kv_engine_set_ttl(f->e, K("k03"), (const uint8_t *)"x", 1, rev, 7,
                                           NULL, NULL), KV_OK);               /* given one */
        assert_int_equal(kv_engine_set_ttl(f->e, K("new"), (const uint8_t *)"x", 1, rev, 6,
                                           NULL, NULL), KV_OK);               /* a new key */
        assert_int_equal(kv_engine_unset(f->e, K("k04"), NULL, NULL, rev), KV_OK);
        kv_range r = { K("k10"), K("k15") };
        assert_int_equal(kv_engine_unset_range(f->e, &r, rev, &deleted), KV_OK);
        assert_int_equal(deleted, 5);
        deadlines_into(f, &inside);
        assert_int_equal(inside.next, 5);
        /* 13, -k02 -k04 -k10 k11 k13 k14 (k12 had none) +k03 +new */
        assert_int_equal(inside.with_ttl, 13 - 6 + 2);
        assert_int_equal(inside.due.n, inside.with_ttl);
        assert_int_equal(kv_engine_batch_end(f->e, keep), KV_OK);
        deadlines_into(f, &after);
        if (!keep) {
            expect_same_deadlines(&after, &before);
            assert_int_equal(deadline_of(f, K("k01")), 1010);
            assert_int_equal(deadline_of(f, K("k02")), 1020);
            assert_int_equal(deadline_of(f, K("k03")), 0);
            expect_missing(f, K("new"));
        } else {
            expect_same_deadlines(&after, &inside);
            assert_int_equal(deadline_of(f, K("k01")), 5);
            assert_int_equal(deadline_of(f, K("k02")), 0);
            assert_int_equal(deadline_of(f, K("new")), 6);
        }
    }
}

/* The sorted reference model: what the engine must hold, with revisions. */
typedef struct ref_entry {
    uint8_t key[8];
    size_t klen;
    uint8_t value[40];
    size_t vlen;
    kv_meta meta;
} ref_entry;

typedef struct ref {
    ref_entry e[1024];
    size_t n;
    uint64_t revision;
} ref;

/* The index of KEY in R, or -1 with where it would go in *AT. */
static long ref_find(const ref *r, const uint8_t *key, size_t klen, size_t *at)
{
    size_t lo = 0, hi = r->n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = kv_key_cmp(r->e[mid].key, r->e[mid].klen, key, klen);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *at = lo;
    return -1;
}

static void ref_set(ref *r, const uint8_t *key, size_t klen, const uint8_t *v, size_t vlen,
                    uint64_t rev, uint64_t expires)
{
    size_t at;
    long i = ref_find(r, key, klen, &at);
    ref_entry *x;

    if (i < 0) {
        assert_true(r->n < sizeof r->e / sizeof r->e[0]);
        memmove(&r->e[at + 1], &r->e[at], (r->n - at) * sizeof r->e[0]);
        r->n++;
        x = &r->e[at];
        memcpy(x->key, key, klen);
        x->klen = klen;
        x->meta = (kv_meta){ rev, rev, 1, 0 };
    } else {
        x = &r->e[i];
        x->meta.mod_revision = rev;
        x->meta.version++;
    }
    memcpy(x->value, v, vlen);
    x->vlen = vlen;
    x->meta.expires_ms = expires;
    r->revision = rev;
}

static void ref_remove_at(ref *r, size_t i, uint64_t rev)
{
    memmove(&r->e[i], &r->e[i + 1], (r->n - i - 1) * sizeof r->e[0]);
    r->n--;
    r->revision = rev;
}

/* The first entry of R at or after KEY (KLEN 0: the first). */
static size_t ref_lower(const ref *r, const uint8_t *key, size_t klen)
{
    size_t at = 0;
    long i = klen ? ref_find(r, key, klen, &at) : 0;

    return i >= 0 ? (size_t)i : at;
}

/* R's entries in RANGE: [*FROM, *TO). */
static void ref_span(const ref *r, const kv_range *range, size_t *from, size_t *to)
{
    *from = ref_lower(r, range->start, range->start_len);
    *to = range->end_len ? ref_lower(r, range->end, range->end_len) : r->n;
    if (*to < *from)
        *to = *from;
}

/* The next number of a deterministic stream (xorshift). */
static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* A random key of 1 to 3 bytes from {0x00, 'a', 'b', 0xff}: 84 keys that
 * share prefixes and sort around both extremes. */
static size_t random_key(uint64_t *x, uint8_t *out)
{
    static const uint8_t alphabet[] = { 0x00, 'a', 'b', 0xff };
    size_t len = 1 + rnd(x) % 3;

    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[rnd(x) % 4];
    return len;
}

/* A random range: each bound absent (a quarter of the time) or a random key. */
static void random_range(uint64_t *x, kv_range *r, uint8_t *a, uint8_t *b)
{
    *r = (kv_range){ 0 };
    if (rnd(x) % 4) {
        r->start_len = random_key(x, a);
        r->start = a;
    }
    if (rnd(x) % 4) {
        r->end_len = random_key(x, b);
        r->end = b;
    }
}

/* The engine and the model agree on every key of the key space and on
 * a walk over RANGE (with or without values, either way, maybe cut short)
 * and its count. */
static void expect_ref_walk(fixture *f, const ref *md, const kv_range *range, uint64_t *x)
{
    static seen s;
    size_t from, to;
    int reverse = (int)(rnd(x) % 2), with_values = (int)(rnd(x) % 2);
    size_t stop = rnd(x) % 3 ? 0 : 1 + rnd(x) % 5;
    uint64_t n;

    ref_span(md, range, &from, &to);
    walk_into(f, range, reverse, with_values, &s, stop);
    size_t want = to - from;
    if (stop && stop < want)
        want = stop;
    assert_int_equal(s.n, want);
    for (size_t i = 0; i < s.n; i++) {
        const ref_entry *m = &md->e[reverse ? to - 1 - i : from + i];
        assert_int_equal(s.e[i].klen, m->klen);
        assert_memory_equal(s.e[i].key, m->key, m->klen);
        assert_int_equal(s.e[i].vlen, m->vlen);
        if (with_values && m->vlen)
            assert_memory_equal(s.e[i].value, m->value, m->vlen);
        else
            assert_true(s.e[i].value_null);
        expect_meta(&s.e[i].meta, m->meta.create_revision, m->meta.mod_revision, m->meta.version);
        assert_int_equal(s.e[i].meta.expires_ms, m->meta.expires_ms);
    }
    assert_int_equal(kv_engine_count(f->e, range, &n), KV_OK);
    assert_int_equal(n, to - from);
}

static void expect_ref_get(fixture *f, const ref *md, const uint8_t *key, size_t klen)
{
    size_t at;
    long i = ref_find(md, key, klen, &at);
    ProtobufCBinaryData v;
    kv_meta m;

    if (i < 0) {
        expect_missing(f, key, klen);
        return;
    }
    const ref_entry *e = &md->e[i];
    assert_int_equal(kv_engine_get(f->e, key, klen, &f->arena.pb, &v, &m), KV_OK);
    assert_int_equal(v.len, e->vlen);
    if (v.len)
        assert_memory_equal(v.data, e->value, v.len);
    expect_meta(&m, e->meta.create_revision, e->meta.mod_revision, e->meta.version);
    assert_int_equal(m.expires_ms, e->meta.expires_ms);
}

/* The engine's keys due at a random NOW are the model's, and so are the
 * next deadline and the count of keys with one. */
static void expect_ref_expiring(fixture *f, const ref *md, uint64_t *x)
{
    static seen s;
    uint64_t now = rnd(x) % 6000, next = 0, with_ttl = 0;
    size_t j = 0;

    expiring_into(f, now, (int)(rnd(x) % 2), &s, 0);
    for (size_t i = 0; i < md->n; i++) {
        uint64_t d = md->e[i].meta.expires_ms;
        if (!d)
            continue;
        with_ttl++;
        if (!next || d < next)
            next = d;
        if (d > now)
            continue;
        assert_true(j < s.n);
        assert_int_equal(s.e[j].klen, md->e[i].klen);
        assert_memory_equal(s.e[j].key, md->e[i].key, md->e[i].klen);
        assert_int_equal(s.e[j].meta.expires_ms, d);
        assert_int_equal(s.e[j].meta.mod_revision, md->e[i].meta.mod_revision);
        j++;
    }
    assert_int_equal(s.n, j);
    assert_int_equal(kv_engine_next_deadline(f->e), next);
    assert_int_equal(stats_ttl(f), with_ttl);
}

/* A random deadline: none half the time, else one of 1000, 2000, ...
 * 5000, the same for many keys. */
static uint64_t random_deadline(uint64_t *x)
{
    return rnd(x) % 2 ? 0 : 1000 * (1 + rnd(x) % 5);
}

/* One random write at REV, in the engine and the model; a Touch now and
 * then, unless IN_BATCH (engine.h: not inside a batch). */
static void random_write(fixture *f, ref *md, uint64_t *x, uint64_t rev, int in_batch)
{
    uint8_t key[8], a[8], b[8], val[40];
    size_t klen = random_key(x, key);
    unsigned what = (unsigned)(rnd(x) % 11);

    if (what == 10 && !in_batch) {
        size_t at;
        long i = ref_find(md, key, klen, &at);
        uint64_t d = random_deadline(x);
        assert_int_equal(kv_engine_touch(f->e, key, klen, d), i < 0 ? KV_NOT_FOUND : KV_OK);
        if (i >= 0)
            md->e[i].meta.expires_ms = d;
    } else if (what < 6 || what == 10) {
        size_t vlen = rnd(x) % 33;
        uint64_t d = random_deadline(x);
        memset(val, (int)(rnd(x) & 0xff), vlen);
        assert_int_equal(kv_engine_set_ttl(f->e, key, klen, val, vlen, rev, d, NULL, NULL),
                         KV_OK);
        ref_set(md, key, klen, val, vlen, rev, d);
    } else if (what < 9) {
        size_t at;
        long i = ref_find(md, key, klen, &at);
        ProtobufCBinaryData old;
        kv_status st = kv_engine_unset(f->e, key, klen, &f->arena.pb, &old, rev);
        if (i < 0) {
            assert_int_equal(st, KV_NOT_FOUND);
            return;
        }
        assert_int_equal(st, KV_OK);
        assert_int_equal(old.len, md->e[i].vlen);
        if (old.len)
            assert_memory_equal(old.data, md->e[i].value, old.len);
        ref_remove_at(md, (size_t)i, rev);
    } else {
        kv_range r;
        uint64_t deleted;
        size_t from, to;
        random_range(x, &r, a, b);
        if (!r.start_len && !r.end_len)
            return;     /* a whole-store clear now and then is enough: see below */
        ref_span(md, &r, &from, &to);
        assert_int_equal(kv_engine_unset_range(f->e, &r, rev, &deleted), KV_OK);
        assert_int_equal(deleted, to - from);
        for (size_t i = from; i < to; i++)
            ref_remove_at(md, from, rev);
    }
}

/* Random writes (a fixed seed) with and without deadlines, single and in
 * batches kept or undone, Touches outside them, with reads (get, walks,
 * counts, the keys due at a random moment) inside and outside the
 * batches, all checked against the model. */
static void random_operations_match_a_sorted_model(void **state)
{
    fixture *f = *state;
    static ref md, saved;
    uint64_t x = 0x5eed2024u;
    uint8_t key[8], a[8], b[8];
    kv_range r;
    int rounds = strcmp(f->engine, "memory") == 0 ? 20000 : 4000;

    md.n = 0;
    md.revision = 0;
    for (int round = 0; round < rounds; round++) {
        unsigned what = (unsigned)(rnd(&x) % 20);
        if (what < 10) {
            random_write(f, &md, &x, kv_engine_revision(f->e) + 1, 0);
            assert_int_equal(kv_engine_revision(f->e), md.revision);
        } else if (what < 14) {
            size_t klen = random_key(&x, key);
            expect_ref_get(f, &md, key, klen);
        } else if (what < 18) {
            random_range(&x, &r, a, b);
            expect_ref_walk(f, &md, &r, &x);
            expect_ref_expiring(f, &md, &x);
        } else if (what < 19) {
            int keep = (int)(rnd(&x) % 2), writes = (int)(rnd(&x) % 8);
            uint64_t rev = kv_engine_revision(f->e) + 1;
            saved = md;
            assert_int_equal(kv_engine_batch_begin(f->e), KV_OK);
            for (int w = 0; w < writes; w++) {
                random_write(f, &md, &x, rev, 1);
                random_range(&x, &r, a, b);
                expect_ref_walk(f, &md, &r, &x);
                size_t klen = random_key(&x, key);
                expect_ref_get(f, &md, key, klen);
                expect_ref_expiring(f, &md, &x);
            }
            assert_int_equal(kv_engine_batch_end(f->e, keep), KV_OK);
            if (!keep)
                md = saved;
            assert_int_equal(kv_engine_revision(f->e), md.revision);
            expect_ref_expiring(f, &md, &x);
        } else if (rnd(&x) % 50 == 0) {
            kv_range everything = { K("\x00"), 0, 0 };
            uint64_t deleted, rev = kv_engine_revision(f->e) + 1;
            assert_int_equal(kv_engine_unset_range(f->e, &everything, rev, &deleted), KV_OK);
            assert_int_equal(deleted, md.n);
            if (md.n)
                md.revision = rev;
            md.n = 0;
        }
        assert_int_equal(stats_keys(f), md.n);
        kv_arena_reset(&f->arena);
    }
    kv_range all = { 0 };
    expect_ref_walk(f, &md, &all, &x);
}

/* ---- The memory engine's own: its hash table and its ordered index ---- */

/* 200,000 keys in, every third out, the rest checked; then all out. */
static void table_survives_growth_and_churn(void **state)
{
    fixture *f = *state;
    enum { N = 200000 };
    char key[32], val[32];
    ProtobufCBinaryData v;
    kv_engine_stats st;

    for (int i = 0; i < N; i++) {
        int kl = snprintf(key, sizeof key, "key:%012d", i);
        int vl = snprintf(val, sizeof val, "v%d", i);
        assert_int_equal(kv_engine_set(f->e, (uint8_t *)key, (size_t)kl, (uint8_t *)val, (size_t)vl,
                                       next_rev(f)), KV_OK);
    }
    for (int i = 0; i < N; i += 3) {
        int kl = snprintf(key, sizeof key, "key:%012d", i);
        assert_int_equal(kv_engine_unset(f->e, (uint8_t *)key, (size_t)kl, NULL, NULL, next_rev(f)),
                         KV_OK);
    }
    for (int i = 0; i < N; i++) {
        int kl = snprintf(key, sizeof key, "key:%012d", i);
        int vl = snprintf(val, sizeof val, "v%d", i);
        kv_status s = kv_engine_get(f->e, (uint8_t *)key, (size_t)kl, &f->arena.pb, &v, NULL);
        if (i % 3 == 0) {
            assert_int_equal(s, KV_NOT_FOUND);
        } else {
            assert_int_equal(s, KV_OK);
            assert_int_equal(v.len, (size_t)vl);
            assert_memory_equal(v.data, val, (size_t)vl);
        }
        if (i % 1000 == 0)
            kv_arena_reset(&f->arena);
    }
    kv_engine_stats_get(f->e, &st);
    assert_int_equal(st.keys, N - (N + 2) / 3);
    for (int i = 0; i < N; i++) {
        int kl = snprintf(key, sizeof key, "key:%012d", i);
        assert_int_equal(kv_engine_unset(f->e, (uint8_t *)key, (size_t)kl, NULL, NULL, next_rev(f)),
                         i % 3 == 0 ? KV_NOT_FOUND : KV_OK);
    }
    kv_engine_stats_get(f->e, &st);
    assert_int_equal(st.keys, 0);
}

/* The reference: what the table must hold. gen[i] < 0: key i is absent;
 * otherwise its value is value_of(i, gen[i]) and its revisions meta[i].
 * Keys are "key:" and 12 digits, so their byte order is i's order. */
typedef struct model {
    int n;
    int *gen;
    kv_meta *meta;
    uint64_t keys, data_bytes, revision;
} model;

static void model_init(model *md, int n)
{
    md->n = n;
    md->gen = malloc((size_t)n * sizeof *md->gen);
    md->meta = calloc((size_t)n, sizeof *md->meta);
    assert_non_null(md->gen);
    assert_non_null(md->meta);
    for (int i = 0; i < n; i++)
        md->gen[i] = -1;
    md->keys = md->data_bytes = md->revision = 0;
}

static void model_free(model *md)
{
    free(md->gen);
    free(md->meta);
}

static size_t key_of(int i, char *buf)
{
    return (size_t)snprintf(buf, 32, "key:%012d", i);
}

/* 8, 16 or 24 bytes by GEN % 3: a new generation may keep the length (the
 * engine may overwrite in place) or change it (a new item). */
static size_t value_of(int i, int gen, char *buf)
{
    size_t len = 8 + (size_t)(gen % 3) * 8;

    memset(buf, '.', len);
    memcpy(buf, &i, sizeof i);
    memcpy(buf + sizeof i, &gen, sizeof gen);
    return len;
}

/* Key I takes generation GEN at REV in the model only. */
static void model_put(model *md, int i, int gen, uint64_t rev)
{
    char key[32], val[32];
    size_t kl = key_of(i, key), vl = value_of(i, gen, val);

    if (md->gen[i] < 0) {
        md->keys++;
        md->meta[i] = (kv_meta){ rev, rev, 1, 0 };
    } else {
        md->data_bytes -= kl + value_of(i, md->gen[i], val);
        md->meta[i].mod_revision = rev;
        md->meta[i].version++;
    }
    md->data_bytes += kl + vl;
    md->gen[i] = gen;
    md->revision = rev;
}

/* Key I goes at REV, if the model has it, in the model only. */
static void model_drop(model *md, int i, uint64_t rev)
{
    char key[32], val[32];

    if (md->gen[i] < 0)
        return;
    md->keys--;
    md->data_bytes -= key_of(i, key) + value_of(i, md->gen[i], val);
    md->gen[i] = -1;
    md->revision = rev;
}

/* Sets key I to generation GEN, in the engine and in the model. */
static void model_set(fixture *f, model *md, int i, int gen)
{
    char key[32], val[32];
    size_t kl = key_of(i, key), vl = value_of(i, gen, val);
    uint64_t rev = md->revision + 1;

    assert_int_equal(kv_engine_set(f->e, (uint8_t *)key, kl, (uint8_t *)val, vl, rev), KV_OK);
    model_put(md, i, gen, rev);
}

/* Clears key I: KV_OK and its value when the model has it, else NOT_FOUND. */
static void model_clear(fixture *f, model *md, int i)
{
    char key[32], val[32];
    size_t kl = key_of(i, key);
    ProtobufCBinaryData old;
    uint64_t rev = md->revision + 1;
    kv_status st = kv_engine_unset(f->e, (uint8_t *)key, kl, &f->arena.pb, &old, rev);

    if (md->gen[i] < 0) {
        assert_int_equal(st, KV_NOT_FOUND);
        return;
    }
    size_t vl = value_of(i, md->gen[i], val);
    assert_int_equal(st, KV_OK);
    assert_int_equal(old.len, vl);
    assert_memory_equal(old.data, val, vl);
    model_drop(md, i, rev);
}

/* Key I reads as the model says, through get and through the engine's
 * borrowed view (get_view): its value and revisions, or NOT_FOUND. */
static void expect_key(fixture *f, const model *md, int i)
{
    char key[32], val[32];
    size_t kl = key_of(i, key);
    ProtobufCBinaryData v, view;
    kv_meta m, mv;
    kv_status s = kv_engine_get(f->e, (uint8_t *)key, kl, &f->arena.pb, &v, &m);
    kv_status sv = kv_engine_get_view(f->e, (uint8_t *)key, kl, &f->arena.pb, &view, &mv);

    if (md->gen[i] < 0) {
        assert_int_equal(s, KV_NOT_FOUND);
        assert_int_equal(sv, KV_NOT_FOUND);
        return;
    }
    size_t vl = value_of(i, md->gen[i], val);
    assert_int_equal(s, KV_OK);
    assert_int_equal(v.len, vl);
    assert_memory_equal(v.data, val, vl);
    assert_int_equal(sv, KV_OK);
    assert_int_equal(view.len, vl);
    if (vl)
        assert_memory_equal(view.data, val, vl);
    expect_meta(&m, md->meta[i].create_revision, md->meta[i].mod_revision, md->meta[i].version);
    expect_meta(&mv, md->meta[i].create_revision, md->meta[i].mod_revision, md->meta[i].version);
}

static void expect_stats(fixture *f, const model *md)
{
    kv_engine_stats st;

    kv_engine_stats_get(f->e, &st);
    assert_int_equal(st.keys, md->keys);
    assert_int_equal(st.data_bytes, md->data_bytes);
    assert_int_equal(kv_engine_revision(f->e), md->revision);
}

/* A walk's check against the model: the keys present, in order. */
typedef struct index_check {
    const model *md;
    int next;       /* the model's key expected next (ascending) */
    int step;       /* +1, or -1 when walking down */
    int values;
} index_check;

/* The model's next present key from I in direction STEP, or -1. */
static int model_next(const model *md, int i, int step)
{
    while (i >= 0 && i < md->n && md->gen[i] < 0)
        i += step;
    return i >= 0 && i < md->n ? i : -1;
}

static int check_entry(void *ctx, const kv_entry *en)
{
    index_check *c = ctx;
    char key[32], val[32];

    c->next = model_next(c->md, c->next, c->step);
    if (c->next < 0)
        fail_msg("the index walks past the model's last key");
    size_t kl = key_of(c->next, key);
    if (en->klen != kl || memcmp(en->key, key, kl) != 0)
        fail_msg("the index has %.*s where the model has %s", (int)en->klen, en->key, key);
    size_t vl = value_of(c->next, c->md->gen[c->next], val);
    if (en->vlen != vl || (c->values && memcmp(en->value, val, vl) != 0))
        fail_msg("the index's %s has another value", key);
    const kv_meta *m = &c->md->meta[c->next];
    if (memcmp(&en->meta, m, sizeof *m) != 0)
        fail_msg("the index's %s has other revisions", key);
    c->next += c->step;
    return 0;
}

/* The ordered index holds what the table holds: a walk up (with values)
 * and one down (keys only) each hand over exactly the model's keys, in
 * order, and count() agrees over the whole and over a few ranges. */
static void expect_index(fixture *f, const model *md)
{
    kv_range all = { 0 };
    index_check up = { md, 0, 1, 1 }, down = { md, md->n - 1, -1, 0 };
    uint64_t n;

    assert_int_equal(kv_engine_walk(f->e, &all, 0, 1, check_entry, &up), KV_OK);
    assert_int_equal(model_next(md, up.next, 1), -1);
    assert_int_equal(kv_engine_walk(f->e, &all, 1, 0, check_entry, &down), KV_OK);
    assert_int_equal(model_next(md, down.next, -1), -1);
    assert_int_equal(kv_engine_count(f->e, &all, &n), KV_OK);
    assert_int_equal(n, md->keys);
    for (int a = 0; a < md->n; a += md->n / 7 + 1) {
        char ka[32], kb[32];
        int b = a + md->n / 5;
        kv_range r = { (uint8_t *)ka, key_of(a, ka), (uint8_t *)kb, key_of(b, kb) };
        uint64_t want = 0;
        for (int i = a; i < b && i < md->n; i++)
            want += md->gen[i] >= 0;
        assert_int_equal(kv_engine_count(f->e, &r, &n), KV_OK);
        assert_int_equal(n, want);
    }
}

/* Every key of the model, present or absent, reads as it should, and the
 * index agrees. */
static void expect_all(fixture *f, const model *md)
{
    for (int i = 0; i < md->n; i++) {
        expect_key(f, md, i);
        if (i % 1024 == 0)
            kv_arena_reset(&f->arena);
    }
    expect_stats(f, md);
    expect_index(f, md);
}

static uint64_t memory_bytes(fixture *f)
{
    kv_engine_stats st;

    kv_engine_stats_get(f->e, &st);
    return st.memory_bytes;
}

/* A deterministic stream of numbers below N (xorshift). */
static int next_below(uint64_t *x, int n)
{
    return (int)(rnd(x) % (uint64_t)n);
}

/* 300,000 keys one at a time, through resizes from 1,024 slots to 512K;
 * after each Set the new key, an older one (rewritten now and then, so
 * some rewrites land in the half-emptied old table) and a key not yet
 * stored read right, and the stats are exact. */
static void every_key_stays_readable_while_the_table_grows(void **state)
{
    fixture *f = *state;
    enum { N = 300000 };
    model md;
    uint64_t x = 88172645463325252ull;

    model_init(&md, N);
    for (int i = 0; i < N; i++) {
        model_set(f, &md, i, 0);
        int older = next_below(&x, i + 1);
        if (i % 7 == 0)
            model_set(f, &md, older, md.gen[older] + 1);
        expect_key(f, &md, i);
        expect_key(f, &md, older);
        if (i + 1 < N)
            expect_key(f, &md, i + 1);
        expect_stats(f, &md);
        kv_arena_reset(&f->arena);
        if (i % 100000 == 99999)
            expect_index(f, &md);
    }
    expect_all(f, &md);
    model_free(&md);
}

/* While the table grows, every Set is followed by a Clear of an older key
 * (a third of them already gone): Clears in the old table and in the new
 * one must both leave every other key reachable. */
static void deletes_during_growth_keep_the_rest_reachable(void **state)
{
    fixture *f = *state;
    enum { N = 300000 };
    model md;
    uint64_t x = 2463534242ull;

    model_init(&md, N);
    for (int i = 0; i < N; i++) {
        model_set(f, &md, i, 0);
        int victim = next_below(&x, i + 1);
        model_clear(f, &md, victim);
        expect_key(f, &md, victim);
        expect_key(f, &md, next_below(&x, i + 1));
        expect_stats(f, &md);
        kv_arena_reset(&f->arena);
        if (i % 50000 == 49999)
            expect_all(f, &md);
    }
    expect_all(f, &md);
    model_free(&md);
}

/* Grown to 200,000 keys, then cleared down to 100: the table shrinks
 * (memory goes down with it: the index's nodes too) and keeps the last
 * keys; then it grows back to 200,000 and every key is right again. */
static void table_shrinks_after_mass_deletes_and_grows_back(void **state)
{
    fixture *f = *state;
    enum { N = 200000, KEEP = 100 };
    model md;

    model_init(&md, N);
    for (int i = 0; i < N; i++)
        model_set(f, &md, i, 1);
    uint64_t full = memory_bytes(f);
    for (int i = KEEP; i < N; i++) {
        model_clear(f, &md, i);
        expect_key(f, &md, i % KEEP);
        expect_stats(f, &md);
        kv_arena_reset(&f->arena);
    }
    expect_all(f, &md);     /* 200,000 requests: every resize has ended */
    /* The 100 items are a few KB; the slots are back at the first size. */
    assert_true(memory_bytes(f) < 64 * 1024);
    assert_true(memory_bytes(f) < full / 100);
    for (int i = 0; i < N; i++) {
        model_set(f, &md, i, 2 + i % 2);
        if (i % 5 == 0)
            model_clear(f, &md, i / 2);
        expect_key(f, &md, i / 3);
        expect_stats(f, &md);
        kv_arena_reset(&f->arena);
    }
    expect_all(f, &md);
    model_free(&md);
}

/* Random Sets, Gets and Clears over 60,000 keys, in phases that mostly
 * add (the table grows) and phases that mostly remove (it shrinks), three
 * times over; every answer and the stats checked after every request, the
 * index after every phase. */
static void random_requests_match_the_reference(void **state)
{
    fixture *f = *state;
    enum { N = 60000, PHASE = 150000 };
    model md;
    uint64_t x = 0x9e3779b97f4a7c15ull;

    model_init(&md, N);
    for (int phase = 0; phase < 6; phase++) {
        int set_pct = phase % 2 == 0 ? 70 : 20, clear_pct = phase % 2 == 0 ? 10 : 60;
        for (int r = 0; r < PHASE; r++) {
            int i = next_below(&x, N), what = next_below(&x, 100);
            if (what < set_pct)
                model_set(f, &md, i, md.gen[i] + 1 + next_below(&x, 3));
            else if (what < set_pct + clear_pct)
                model_clear(f, &md, i);
            else
                expect_key(f, &md, i);
            expect_stats(f, &md);
            kv_arena_reset(&f->arena);
        }
        expect_all(f, &md);
    }
    model_free(&md);
}

/* Ranges cleared from a large store, alone and in batches with Sets
 * (undone, kept) while the table resizes: the table, the index and the
 * model agree after each. */
static void range_clears_and_batches_keep_table_and_index_together(void **state)
{
    fixture *f = *state;
    enum { N = 120000, SETS = 50 };
    model md;
    uint64_t x = 0xc0ffee;

    model_init(&md, N);
    for (int round = 0; round < 12; round++) {
        for (int k = 0; k < N / 3; k++)
            model_set(f, &md, next_below(&x, N), next_below(&x, 5));
        int a = next_below(&x, N), b = a + next_below(&x, N / 4), sets[SETS];
        char ka[32], kb[32];
        kv_range r = { (uint8_t *)ka, key_of(a, ka), (uint8_t *)kb, key_of(b, kb) };
        uint64_t want = 0, deleted, rev = md.revision + 1;
        int in_batch = round % 3 != 0, keep = round % 3 == 2;

        for (int i = a; i < b && i < N; i++)
            want += md.gen[i] >= 0;
        if (in_batch)
            assert_int_equal(kv_engine_batch_begin(f->e), KV_OK);
        assert_int_equal(kv_engine_unset_range(f->e, &r, rev, &deleted), KV_OK);
        assert_int_equal(deleted, want);
        if (in_batch) {
            for (int k = 0; k < SETS; k++) {
                char key[32], val[32];
                sets[k] = next_below(&x, N);
                size_t kl = key_of(sets[k], key), vl = value_of(sets[k], 7, val);
                assert_int_equal(kv_engine_set(f->e, (uint8_t *)key, kl, (uint8_t *)val, vl, rev),
                                 KV_OK);
            }
            assert_int_equal(kv_engine_batch_end(f->e, keep), KV_OK);
        }
        if (!in_batch || keep) {
            for (int i = a; i < b && i < N; i++)
                model_drop(&md, i, rev);
            for (int k = 0; in_batch && k < SETS; k++)
                model_put(&md, sets[k], 7, rev);
        }
        expect_all(f, &md);
    }
    model_free(&md);
}

/* ---- Snapshots: reset() empties the store, load() puts keys back with
 * their exact revisions and deadlines ---- */

/* Loads KEY = VALUE with meta {CREATE, MOD, VERSION, EXPIRES}. */
static kv_status load(fixture *f, const uint8_t *key, size_t klen, const char *value,
                      uint64_t create, uint64_t mod, uint64_t version, uint64_t expires)
{
    kv_entry en = { key, klen, (const uint8_t *)value, strlen(value),
                    { create, mod, version, expires } };

    return kv_engine_load(f->e, &en);
}

static uint64_t count_all(fixture *f)
{
    kv_range all = { NULL, 0, NULL, 0 };
    uint64_t n;

    assert_int_equal(kv_engine_count(f->e, &all, &n), KV_OK);
    return n;
}

/* The turn's writes committed, as the server's loop would at its end. */
static void flush(fixture *f)
{
    if (f->e->ops->flush)
        assert_int_equal(f->e->ops->flush(f->e), KV_OK);
}

static void reset_empties_the_store_and_sets_the_revision(void **state)
{
    fixture *f = *state;
    static seen s;
    kv_range all = { NULL, 0, NULL, 0 };
    kv_engine_stats st;

    set_ok(f, K("a"), "va");
    set_ttl(f, K("b"), "vb", 1000);
    set_ttl(f, K("c"), "vc", 2000);
    flush(f);
    set_ok(f, K("d"), "vd");                /* not flushed: reset takes it too */
    assert_int_equal(kv_engine_reset(f->e, 42), KV_OK);
    assert_int_equal(kv_engine_revision(f->e), 42);
    assert_int_equal(count_all(f), 0);
    kv_engine_stats_get(f->e, &st);
    assert_int_equal(st.keys, 0);
    assert_int_equal(st.data_bytes, 0);
    assert_int_equal(st.keys_with_ttl, 0);
    assert_int_equal(kv_engine_next_deadline(f->e), 0);
    expiring_into(f, UINT64_MAX, 0, &s, 0);
    assert_int_equal(s.n, 0);
    walk_into(f, &all, 0, 1, &s, 0);
    assert_int_equal(s.n, 0);
    expect_missing(f, K("a"));
    expect_missing(f, K("d"));
    /* The next write goes on from REV. */
    set_ok(f, K("a"), "new");
    expect_get(f, K("a"), "new", 43, 43, 1);
    /* REV may be below the store's: a snapshot older than the data. */
    assert_int_equal(kv_engine_reset(f->e, 5), KV_OK);
    assert_int_equal(kv_engine_revision(f->e), 5);
    assert_int_equal(count_all(f), 0);
    /* Not inside a batch. */
    assert_int_equal(kv_engine_batch_begin(f->e), KV_OK);
    assert_int_equal(kv_engine_reset(f->e, 9), KV_FAILED_PRECONDITION);
    assert_int_equal(kv_engine_batch_end(f->e, 0), KV_OK);
    assert_int_equal(kv_engine_revision(f->e), 5);
}

static void load_keeps_the_meta_it_is_given(void **state)
{
    fixture *f = *state;
    static seen s;
    kv_range all = { NULL, 0, NULL, 0 };
    kv_engine_stats st;

    assert_int_equal(load(f, K("b"), "vb", 3, 7, 4, 0), KV_OK);
    assert_int_equal(kv_engine_revision(f->e), 7);
    assert_int_equal(load(f, K("a"), "", 2, 2, 1, 5000), KV_OK);
    assert_int_equal(kv_engine_revision(f->e), 7);  /* max, never back */
    assert_int_equal(load(f, K("c"), "vc", 1, 1000000000000ull, 999999, 0), KV_OK);
    assert_int_equal(kv_engine_revision(f->e), 1000000000000ull);
    expect_get(f, K("b"), "vb", 3, 7, 4);
    expect_get(f, K("a"), "", 2, 2, 1);
    expect_get(f, K("c"), "vc", 1, 1000000000000ull, 999999);
    assert_int_equal(deadline_of(f, K("a")), 5000);
    assert_int_equal(deadline_of(f, K("b")), 0);
    walk_into(f, &all, 0, 1, &s, 0);
    expect_keys(&s, (const char *const[]){ "a", "b", "c" }, 3);
    expect_meta(&s.e[0].meta, 2, 2, 1);
    assert_int_equal(s.e[0].meta.expires_ms, 5000);
    expect_meta(&s.e[1].meta, 3, 7, 4);
    assert_int_equal(s.e[1].meta.expires_ms, 0);
    assert_int_equal(s.e[1].vlen, 2);
    assert_memory_equal(s.e[1].value, "vb", 2);
    expect_meta(&s.e[2].meta, 1, 1000000000000ull, 999999);
    assert_int_equal(count_all(f), 3);
    kv_engine_stats_get(f->e, &st);
    assert_int_equal(st.keys, 3);
    assert_int_equal(st.data_bytes, 3 + 4);
    assert_int_equal(st.keys_with_ttl, 1);
}

/* A load over a key replaces it whole: value, revisions and deadline. */
static void load_over_a_key_replaces_it(void **state)
{
    fixture *f = *state;
    static seen s;
    kv_engine_stats st;

    set_ttl(f, K("k"), "old value", 1000);
    set_ok(f, K("k"), "old value");         /* version 2 */
    set_ttl(f, K("k"), "old value", 1000);
    assert_int_equal(load(f, K("k"), "v", 1, 2, 2, 0), KV_OK);
    expect_get(f, K("k"), "v", 1, 2, 2);
    assert_int_equal(deadline_of(f, K("k")), 0);
    assert_int_equal(kv_engine_next_deadline(f->e), 0);
    assert_int_equal(stats_ttl(f), 0);
    assert_int_equal(kv_engine_revision(f->e), 3); /* max(3, 2) */
    /* And gives one to a key that had none, and moves one it had. */
    assert_int_equal(load(f, K("k"), "w", 1, 9, 5, 3000), KV_OK);
    assert_int_equal(load(f, K("k"), "x", 1, 9, 5, 2000), KV_OK);
    expect_get(f, K("k"), "x", 1, 9, 5);
    assert_int_equal(kv_engine_next_deadline(f->e), 2000);
    expiring_into(f, UINT64_MAX, 0, &s, 0);
    expect_keys(&s, (const char *const[]){ "k" }, 1);
    assert_int_equal(s.e[0].meta.expires_ms, 2000);
    kv_engine_stats_get(f->e, &st);
    assert_int_equal(st.keys, 1);
    assert_int_equal(st.data_bytes, 2);
    assert_int_equal(st.keys_with_ttl, 1);
}

static void load_refuses_meta_no_write_could_make(void **state)
{
    fixture *f = *state;

    set_ok(f, K("k"), "v");
    assert_int_equal(load(f, K("a"), "v", 0, 5, 1, 0), KV_INVALID_ARGUMENT);
    assert_int_equal(load(f, K("a"), "v", 5, 5, 0, 0), KV_INVALID_ARGUMENT);
    assert_int_equal(load(f, K("a"), "v", 6, 5, 1, 0), KV_INVALID_ARGUMENT);
    assert_int_equal(load(f, K("k"), "w", 0, 0, 0, 0), KV_INVALID_ARGUMENT);
    expect_missing(f, K("a"));
    expect_get(f, K("k"), "v", 1, 1, 1);
    assert_int_equal(kv_engine_revision(f->e), 1);
    /* Not inside a batch. */
    assert_int_equal(kv_engine_batch_begin(f->e), KV_OK);
    assert_int_equal(load(f, K("a"), "v", 2, 2, 1, 0), KV_FAILED_PRECONDITION);
    assert_int_equal(kv_engine_batch_end(f->e, 1), KV_OK);
    expect_missing(f, K("a"));
}

/* A snapshot installed (reset, loads), then writes go on from its revision. */
static void reset_then_load_then_writes_go_on(void **state)
{
    fixture *f = *state;
    ProtobufCBinaryData old;
    kv_meta m;

    set_ok(f, K("gone"), "v");
    assert_int_equal(kv_engine_reset(f->e, 100), KV_OK);
    assert_int_equal(load(f, K("k"), "v", 50, 90, 3, 0), KV_OK);
    assert_int_equal(load(f, K("t"), "v", 60, 60, 1, 7000), KV_OK);
    assert_int_equal(kv_engine_revision(f->e), 100);
    set_ok(f, K("k"), "w");
    expect_get(f, K("k"), "w", 50, 101, 4);
    set_ok(f, K("n"), "v");
    expect_get(f, K("n"), "v", 102, 102, 1);
    assert_int_equal(kv_engine_unset_meta(f->e, K("t"), &f->arena.pb, &old, &m, next_rev(f)),
                     KV_OK);
    expect_meta(&m, 60, 60, 1);
    assert_int_equal(m.expires_ms, 7000);
    assert_int_equal(kv_engine_revision(f->e), 103);
    assert_int_equal(stats_ttl(f), 0);
    expect_missing(f, K("gone"));
    assert_int_equal(count_all(f), 2);
}

static void loaded_deadlines_are_found_when_due(void **state)
{
    fixture *f = *state;
    static seen s;

    assert_int_equal(kv_engine_reset(f->e, 10), KV_OK);
    assert_int_equal(load(f, K("a"), "va", 1, 4, 2, 3000), KV_OK);
    assert_int_equal(load(f, K("b"), "vb", 2, 2, 1, 1000), KV_OK);
    assert_int_equal(load(f, K("c"), "vc", 3, 3, 1, 0), KV_OK);
    assert_int_equal(load(f, K("d"), "vd", 5, 8, 2, 2000), KV_OK);
    assert_int_equal(kv_engine_next_deadline(f->e), 1000);
    assert_int_equal(stats_ttl(f), 3);
    expiring_into(f, 2000, 1, &s, 0);
    expect_keys(&s, (const char *const[]){ "b", "d" }, 2);
    expect_meta(&s.e[1].meta, 5, 8, 2);
    assert_int_equal(s.e[1].meta.expires_ms, 2000);
    assert_int_equal(s.e[1].vlen, 2);
    assert_memory_equal(s.e[1].value, "vd", 2);
    expiring_into(f, UINT64_MAX, 0, &s, 0);
    expect_keys(&s, (const char *const[]){ "a", "b", "d" }, 3);
}

#define MANY_LOADS 100000

typedef struct many_walk {
    uint64_t n;
    int bad;
} many_walk;

/* Key I of the many loaded: in byte order as I grows. */
static size_t many_key(char *out, uint64_t i)
{
    return (size_t)sprintf(out, "key%08llu", (unsigned long long)i);
}

/* Its value. */
static size_t many_value(char *out, uint64_t i)
{
    return (size_t)sprintf(out, "v%llu", (unsigned long long)i * 3);
}

static int check_many(void *ctx, const kv_entry *en)
{
    many_walk *w = ctx;
    char key[32], value[32];
    size_t klen = many_key(key, w->n), vlen = many_value(value, w->n);
    uint64_t i = w->n++;

    if (en->klen != klen || memcmp(en->key, key, klen) != 0 || en->vlen != vlen ||
        memcmp(en->value, value, vlen) != 0 || en->meta.create_revision != i + 1 ||
        en->meta.mod_revision != 2 * i + 1 || en->meta.version != i % 5 + 1 ||
        en->meta.expires_ms != (i % 10 ? 0 : 1000000 + i))
        w->bad++;
    return 0;
}

/* A snapshot's worth of loads, in a scrambled order, walks back in key
 * order with every meta as loaded. */
static void many_loads_walk_back_in_order(void **state)
{
    fixture *f = *state;
    kv_range all = { NULL, 0, NULL, 0 };
    many_walk w = { 0, 0 };

    assert_int_equal(kv_engine_reset(f->e, 1), KV_OK);
    for (uint64_t j = 0; j < MANY_LOADS; j++) {
        uint64_t i = j * 7919 % MANY_LOADS;     /* 7919 is prime: a permutation */
        char key[32], value[32];
        size_t klen = many_key(key, i), vlen = many_value(value, i);
        kv_entry en = { (const uint8_t *)key, klen, (const uint8_t *)value, vlen,
                        { i + 1, 2 * i + 1, i % 5 + 1, i % 10 ? 0 : 1000000 + i } };
        assert_int_equal(kv_engine_load(f->e, &en), KV_OK);
    }
    flush(f);
    assert_int_equal(kv_engine_revision(f->e), 2 * (MANY_LOADS - 1) + 1);
    assert_int_equal(count_all(f), MANY_LOADS);
    assert_int_equal(stats_ttl(f), MANY_LOADS / 10);
    assert_int_equal(kv_engine_next_deadline(f->e), 1000000);
    assert_int_equal(kv_engine_walk(f->e, &all, 0, 1, check_many, &w), KV_OK);
    assert_int_equal(w.n, MANY_LOADS);
    assert_int_equal(w.bad, 0);
}

/* LMDB: what reset and load leave is on disk after a close and a reopen. */
static void reset_and_load_survive_a_reopen(void **state)
{
    fixture *f = *state;
    kv_engine_options opts = { .sync = KV_SYNC_NONE };
    char err[256];
    static seen s;
    kv_range all = { NULL, 0, NULL, 0 };

    set_ok(f, K("old"), "v");
    set_ttl(f, K("older"), "v", 500);
    flush(f);
    assert_int_equal(kv_engine_reset(f->e, 7), KV_OK);
    assert_int_equal(load(f, K("a"), "va", 2, 5, 2, 9000), KV_OK);
    assert_int_equal(load(f, K("b"), "vb", 3, 12, 4, 0), KV_OK);
    flush(f);
    assert_int_equal(kv_engine_close(f->e), KV_OK);
    assert_int_equal(kv_engine_open(f->engine, f->dir, &opts, &f->e, err, sizeof err), KV_OK);
    assert_int_equal(kv_engine_revision(f->e), 12);
    walk_into(f, &all, 0, 1, &s, 0);
    expect_keys(&s, (const char *const[]){ "a", "b" }, 2);
    expect_meta(&s.e[0].meta, 2, 5, 2);
    assert_int_equal(s.e[0].meta.expires_ms, 9000);
    expect_meta(&s.e[1].meta, 3, 12, 4);
    assert_int_equal(stats_ttl(f), 1);
    assert_int_equal(kv_engine_next_deadline(f->e), 9000);
    kv_engine_stats st;
    kv_engine_stats_get(f->e, &st);
    assert_int_equal(st.data_bytes, 1 + 2 + 1 + 2);
    /* A reset alone, with nothing after it, is on disk too. */
    assert_int_equal(kv_engine_reset(f->e, 30), KV_OK);
    assert_int_equal(kv_engine_close(f->e), KV_OK);
    assert_int_equal(kv_engine_open(f->engine, f->dir, &opts, &f->e, err, sizeof err), KV_OK);
    assert_int_equal(kv_engine_revision(f->e), 30);
    assert_int_equal(count_all(f), 0);
    assert_int_equal(stats_ttl(f), 0);
}

/* An instance's deadlines are on the clock it is given. */
static void the_clock_is_the_instance_s(void **state)
{
    fixture *f = *state;
    struct timespec ts;

    assert_int_equal(f->e->clock, f->e->ops->clock);
    kv_engine_set_clock(f->e, CLOCK_REALTIME);
    assert_int_equal(f->e->clock, CLOCK_REALTIME);
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wall = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    uint64_t now = kv_engine_now_ms(f->e);
    assert_true(now >= wall && now - wall < 1000);
}

#define ON(engine, test) \
    cmocka_unit_test_prestate_setup_teardown(test, open_engine, close_engine, (void *)(engine))

#define CONFORMANCE(engine) \
    ON(engine, set_get_overwrite_unset), \
    ON(engine, empty_value_is_stored), \
    ON(engine, revisions_follow_create_overwrite_and_unset), \
    ON(engine, large_revisions_are_kept_exactly), \
    ON(engine, writes_that_change_nothing_leave_the_revision), \
    ON(engine, walks_go_in_byte_order_both_ways), \
    ON(engine, walk_bounds), \
    ON(engine, walk_stops_when_the_callback_says_so), \
    ON(engine, walk_keys_only_and_with_values), \
    ON(engine, unset_range_removes_just_its_keys), \
    ON(engine, long_keys_keep_their_order), \
    ON(engine, batch_keep_applies_every_write), \
    ON(engine, batch_undo_restores_everything), \
    ON(engine, batches_do_not_nest), \
    ON(engine, a_set_gives_its_deadline_and_the_next_replaces_it), \
    ON(engine, touch_changes_only_the_deadline), \
    ON(engine, walk_expiring_finds_exactly_the_keys_due), \
    ON(engine, long_keys_share_a_deadline), \
    ON(engine, set_shows_the_old_entry_to_seen), \
    ON(engine, unset_hands_back_the_old_meta), \
    ON(engine, unset_range_shows_each_key_it_removes), \
    ON(engine, batches_undo_and_keep_deadlines), \
    ON(engine, random_operations_match_a_sorted_model), \
    ON(engine, reset_empties_the_store_and_sets_the_revision), \
    ON(engine, load_keeps_the_meta_it_is_given), \
    ON(engine, load_over_a_key_replaces_it), \
    ON(engine, load_refuses_meta_no_write_could_make), \
    ON(engine, reset_then_load_then_writes_go_on), \
    ON(engine, loaded_deadlines_are_found_when_due), \
    ON(engine, many_loads_walk_back_in_order), \
    ON(engine, the_clock_is_the_instance_s)

int main(void)
{
    const struct CMUnitTest memory[] = {
        cmocka_unit_test(unknown_engine_is_refused_with_the_list),
        CONFORMANCE("memory"),
        ON("memory", a_value_from_its_own_view_survives_the_overwrite),
        ON("memory", table_survives_growth_and_churn),
        ON("memory", every_key_stays_readable_while_the_table_grows),
        ON("memory", deletes_during_growth_keep_the_rest_reachable),
        ON("memory", table_shrinks_after_mass_deletes_and_grows_back),
        ON("memory", random_requests_match_the_reference),
        ON("memory", range_clears_and_batches_keep_table_and_index_together),
    };
    const struct CMUnitTest lmdb[] = {
        CONFORMANCE("lmdb"),
        ON("lmdb", reset_and_load_survive_a_reopen),
    };
    int failed = cmocka_run_group_tests_name("engine memory", memory, NULL, NULL);

    failed += cmocka_run_group_tests_name("engine lmdb", lmdb, NULL, NULL);
    return failed;
}
