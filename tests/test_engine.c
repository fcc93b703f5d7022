/* test_engine.c - the memory engine through the engine interface: the
 * lifecycle, overwrite and unset semantics, and the hash table's integrity
 * under growth and heavy deletion (backward-shift deletion must keep every
 * remaining key reachable). Its resizes are incremental, so every request
 * may meet a table half moved: the tests below check each answer and the
 * stats after every request against a reference model while the table
 * grows, shrinks and grows again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arena.h"
#include "engine.h"

typedef struct fixture {
    kv_engine *e;
    kv_arena arena;
} fixture;

static int open_memory(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[128];

    assert_int_equal(kv_engine_open("memory", NULL, NULL, &f->e, err, sizeof err), KV_OK);
    kv_arena_init(&f->arena, 4096);
    *state = f;
    return 0;
}

static int close_engine(void **state)
{
    fixture *f = *state;

    assert_int_equal(kv_engine_close(f->e), KV_OK);
    kv_arena_free(&f->arena);
    free(f);
    return 0;
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

    assert_int_equal(kv_engine_set(f->e, (const uint8_t *)"k", 1, (const uint8_t *)"one", 3, 0), KV_OK);
    assert_int_equal(kv_engine_get(f->e, (const uint8_t *)"k", 1, &f->arena.pb, &v, NULL), KV_OK);
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.data, "one", 3);
    /* Same length overwrites in place; the copy we got must not change. */
    assert_int_equal(kv_engine_set(f->e, (const uint8_t *)"k", 1, (const uint8_t *)"two", 3, 0), KV_OK);
    assert_memory_equal(v.data, "one", 3);
    assert_int_equal(kv_engine_set(f->e, (const uint8_t *)"k", 1, (const uint8_t *)"three", 5, 0), KV_OK);
    kv_engine_stats_get(f->e, &st);
    assert_int_equal(st.keys, 1);
    assert_int_equal(st.data_bytes, 6);
    assert_int_equal(kv_engine_unset(f->e, (const uint8_t *)"k", 1, &f->arena.pb, &v, 0), KV_OK);
    assert_int_equal(v.len, 5);
    assert_memory_equal(v.data, "three", 5);
    assert_int_equal(kv_engine_get(f->e, (const uint8_t *)"k", 1, &f->arena.pb, &v, NULL), KV_NOT_FOUND);
    assert_int_equal(kv_engine_unset(f->e, (const uint8_t *)"k", 1, NULL, NULL, 0), KV_NOT_FOUND);
    kv_engine_stats_get(f->e, &st);
    assert_int_equal(st.keys, 0);
    assert_int_equal(st.data_bytes, 0);
}

static void empty_value_is_stored(void **state)
{
    fixture *f = *state;
    ProtobufCBinaryData v = { 7, (uint8_t *)"x" };

    assert_int_equal(kv_engine_set(f->e, (const uint8_t *)"e", 1, NULL, 0, 0), KV_OK);
    assert_int_equal(kv_engine_get(f->e, (const uint8_t *)"e", 1, &f->arena.pb, &v, NULL), KV_OK);
    assert_int_equal(v.len, 0);
}

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
        assert_int_equal(kv_engine_set(f->e, (uint8_t *)key, (size_t)kl, (uint8_t *)val, (size_t)vl, 0), KV_OK);
    }
    for (int i = 0; i < N; i += 3) {
        int kl = snprintf(key, sizeof key, "key:%012d", i);
        assert_int_equal(kv_engine_unset(f->e, (uint8_t *)key, (size_t)kl, NULL, NULL, 0), KV_OK);
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
        assert_int_equal(kv_engine_unset(f->e, (uint8_t *)key, (size_t)kl, NULL, NULL, 0),
                         i % 3 == 0 ? KV_NOT_FOUND : KV_OK);
    }
    kv_engine_stats_get(f->e, &st);
    assert_int_equal(st.keys, 0);
}

/* The reference: what the table must hold. gen[i] < 0: key i is absent;
 * otherwise its value is value_of(i, gen[i]). */
typedef struct model {
    int n;
    int *gen;
    uint64_t keys, data_bytes;
} model;

static void model_init(model *md, int n)
{
    md->n = n;
    md->gen = malloc((size_t)n * sizeof *md->gen);
    assert_non_null(md->gen);
    for (int i = 0; i < n; i++)
        md->gen[i] = -1;
    md->keys = md->data_bytes = 0;
}

static size_t key_of(int i, char *buf)
{
    return (size_t)snprintf(buf, 32, "key:%012d", i);
}

/* 8, 16 or 24 bytes by GEN % 3: a new generation may keep the length (the
 * engine overwrites in place) or change it (a new item). */
static size_t value_of(int i, int gen, char *buf)
{
    size_t len = 8 + (size_t)(gen % 3) * 8;

    memset(buf, '.', len);
    memcpy(buf, &i, sizeof i);
    memcpy(buf + sizeof i, &gen, sizeof gen);
    return len;
}

/* Sets key I to generation GEN, in the engine and in the model. */
static void model_set(fixture *f, model *md, int i, int gen)
{
    char key[32], val[32];
    size_t kl = key_of(i, key), vl = value_of(i, gen, val);

    assert_int_equal(kv_engine_set(f->e, (uint8_t *)key, kl, (uint8_t *)val, vl, 0), KV_OK);
    if (md->gen[i] < 0) {
        md->keys++;
    } else {
        md->data_bytes -= kl + value_of(i, md->gen[i], val);
    }
    md->data_bytes += kl + vl;
    md->gen[i] = gen;
}

/* Clears key I: KV_OK and its value when the model has it, else NOT_FOUND. */
static void model_clear(fixture *f, model *md, int i)
{
    char key[32], val[32];
    size_t kl = key_of(i, key);
    ProtobufCBinaryData old;

    if (md->gen[i] < 0) {
        assert_int_equal(kv_engine_unset(f->e, (uint8_t *)key, kl, &f->arena.pb, &old, 0),
                         KV_NOT_FOUND);
        return;
    }
    size_t vl = value_of(i, md->gen[i], val);
    assert_int_equal(kv_engine_unset(f->e, (uint8_t *)key, kl, &f->arena.pb, &old, 0), KV_OK);
    assert_int_equal(old.len, vl);
    assert_memory_equal(old.data, val, vl);
    md->keys--;
    md->data_bytes -= kl + vl;
    md->gen[i] = -1;
}

/* Key I reads as the model says, through get and through the engine's
 * borrowed view (get_view): its value, or NOT_FOUND. */
static void expect_key(fixture *f, const model *md, int i)
{
    char key[32], val[32];
    size_t kl = key_of(i, key);
    ProtobufCBinaryData v, view;
    kv_status s = kv_engine_get(f->e, (uint8_t *)key, kl, &f->arena.pb, &v, NULL);
    kv_status sv = kv_engine_get_view(f->e, (uint8_t *)key, kl, &f->arena.pb, &view, NULL);

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
}

static void expect_stats(fixture *f, const model *md)
{
    kv_engine_stats st;

    kv_engine_stats_get(f->e, &st);
    assert_int_equal(st.keys, md->keys);
    assert_int_equal(st.data_bytes, md->data_bytes);
}

/* Every key of the model, present or absent, reads as it should. */
static void expect_all(fixture *f, const model *md)
{
    for (int i = 0; i < md->n; i++) {
        expect_key(f, md, i);
        if (i % 1024 == 0)
            kv_arena_reset(&f->arena);
    }
    expect_stats(f, md);
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
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return (int)(*x % (uint64_t)n);
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
    }
    expect_all(f, &md);
    free(md.gen);
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
    free(md.gen);
}

/* Grown to 200,000 keys, then cleared down to 100: the table shrinks
 * (memory goes down with it) and keeps the last keys; then it grows back
 * to 200,000 and every key is right again. */
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
    free(md.gen);
}

/* Random Sets, Gets and Clears over 60,000 keys, in phases that mostly
 * add (the table grows) and phases that mostly remove (it shrinks), three
 * times over; every answer and the stats checked after every request. */
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
    free(md.gen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unknown_engine_is_refused_with_the_list),
        cmocka_unit_test_setup_teardown(set_get_overwrite_unset, open_memory, close_engine),
        cmocka_unit_test_setup_teardown(empty_value_is_stored, open_memory, close_engine),
        cmocka_unit_test_setup_teardown(table_survives_growth_and_churn, open_memory, close_engine),
        cmocka_unit_test_setup_teardown(every_key_stays_readable_while_the_table_grows,
                                        open_memory, close_engine),
        cmocka_unit_test_setup_teardown(deletes_during_growth_keep_the_rest_reachable,
                                        open_memory, close_engine),
        cmocka_unit_test_setup_teardown(table_shrinks_after_mass_deletes_and_grows_back,
                                        open_memory, close_engine),
        cmocka_unit_test_setup_teardown(random_requests_match_the_reference,
                                        open_memory, close_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
