/* test_lmdb_replay - the lmdb engine's replay of a lost transaction, through
 * the engine interface. A write that fails inside LMDB after it began
 * changing pages (here: the malloc of a new page fails, as a full map
 * would) makes LMDB refuse the whole transaction; the engine begins it
 * again and replays its oplog without the failed write. The test checks
 * that the replay makes exactly what was accepted: every key with the
 * revisions and the deadline it had (the deadline index with them: the
 * keys due, the next deadline, the count of keys with one), kept batches
 * whole, an undone batch, Touches and range deletes as they were, the
 * store's revision; before the commit and after a reopen. Once for the
 * turn's transaction, once inside a batch (only the batch's child is
 * begun again, and the batch is still kept whole), and for Sets whose
 * record was written before their index entry failed (a torn write);
 * and for loads, which a replay must give back their exact meta.
 *
 * The failure comes from this file's malloc, which LMDB's calls reach by
 * symbol interposition: so the test is skipped under a sanitizer, whose
 * own malloc this one would hide (exit status 77, meson's "skipped"). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "arena.h"
#include "engine.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define SANITIZED 1
#endif
#endif

/* How many of the next mallocs of one page (LMDB's dirty pages) fail,
 * after skip_pages more have succeeded. */
static int fail_pages, skip_pages;
static size_t page_size;

#ifndef SANITIZED
extern void *__libc_malloc(size_t);

void *malloc(size_t n)
{
    if (fail_pages && n == page_size) {
        if (skip_pages) {
            skip_pages--;
        } else {
            fail_pages--;
            return NULL;
        }
    }
    return __libc_malloc(n);
}
#endif

typedef struct fixture {
    char dir[64];
    kv_engine *e;
    kv_arena arena;
} fixture;

static const uint8_t big[1000];     /* four to a leaf page: new pages soon */

static kv_engine *open_dir(const char *dir)
{
    kv_engine_options opts = { .sync = KV_SYNC_NONE, .map_bytes = 64 << 20 };
    kv_engine *e;
    char err[256];

    if (kv_engine_open("lmdb", dir, &opts, &e, err, sizeof err) != KV_OK)
        fail_msg("open lmdb: %s", err);
    return e;
}

static int setup(void **state)
{
    fixture *f;

    page_size = (size_t)sysconf(_SC_PAGESIZE);
    f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/kvtest-replay.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->e = open_dir(f->dir);
    kv_arena_init(&f->arena, 4096);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char path[128];

    if (f->e)
        assert_int_equal(kv_engine_close(f->e), KV_OK);
    kv_arena_free(&f->arena);
    for (const char *const *name = (const char *const[]){ "data.mdb", "lock.mdb",
                                                          "kvstored.lock", NULL }; *name; name++) {
        snprintf(path, sizeof path, "%s/%s", f->dir, *name);
        unlink(path);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static void reopen(fixture *f)
{
    assert_int_equal(kv_engine_close(f->e), KV_OK);
    f->e = open_dir(f->dir);
}

#define K(s) (const uint8_t *)(s), strlen(s)

static void set(fixture *f, const char *key, const uint8_t *v, size_t vlen, uint64_t rev)
{
    assert_int_equal(kv_engine_set(f->e, K(key), v, vlen, rev), KV_OK);
}

static void set_ttl(fixture *f, const char *key, const uint8_t *v, size_t vlen, uint64_t rev,
                    uint64_t expires)
{
    assert_int_equal(kv_engine_set_ttl(f->e, K(key), v, vlen, rev, expires, NULL, NULL), KV_OK);
}

/* KEY holds {CREATE, MOD, VERSION} and deadline EXPIRES, or (CREATE 0)
 * is absent. */
static void expect_ttl(fixture *f, const char *key, uint64_t create, uint64_t mod,
                       uint64_t version, uint64_t expires)
{
    ProtobufCBinaryData v;
    kv_meta m;
    kv_status st = kv_engine_get(f->e, K(key), &f->arena.pb, &v, &m);

    if (!create) {
        assert_int_equal(st, KV_NOT_FOUND);
        return;
    }
    if (st != KV_OK)
        fail_msg("%s: status %d", key, st);
    if (m.create_revision != create || m.mod_revision != mod || m.version != version ||
        m.expires_ms != expires)
        fail_msg("%s: revisions {%llu, %llu, %llu} deadline %llu, want {%llu, %llu, %llu} %llu",
                 key, (unsigned long long)m.create_revision, (unsigned long long)m.mod_revision,
                 (unsigned long long)m.version, (unsigned long long)m.expires_ms,
                 (unsigned long long)create, (unsigned long long)mod,
                 (unsigned long long)version, (unsigned long long)expires);
}

static void expect(fixture *f, const char *key, uint64_t create, uint64_t mod, uint64_t version)
{
    expect_ttl(f, key, create, mod, version, 0);
}

/* What walk_expiring hands over: the keys, which must each have the
 * deadline the walk was asked about at most. */
typedef struct due {
    uint64_t now, n;
    char first[64];     /* the first key handed over */
} due;

static int count_due(void *ctx, const kv_entry *en)
{
    due *d = ctx;

    if (!en->meta.expires_ms || en->meta.expires_ms > d->now)
        fail_msg("a key with deadline %llu handed over as due at %llu",
                 (unsigned long long)en->meta.expires_ms, (unsigned long long)d->now);
    if (!d->n++)
        snprintf(d->first, sizeof d->first, "%.*s", (int)en->klen, (const char *)en->key);
    return 0;
}

/* The index agrees: N keys due at NOW, WITH_TTL keys with a deadline, the
 * earliest NEXT. */
static void expect_index(fixture *f, uint64_t now, uint64_t n, uint64_t with_ttl, uint64_t next)
{
    due d = { now, 0, "" };
    kv_engine_stats st;

    assert_int_equal(kv_engine_walk_expiring(f->e, now, 0, count_due, &d), KV_OK);
    assert_int_equal(d.n, n);
    kv_engine_stats_get(f->e, &st);
    assert_int_equal(st.keys_with_ttl, with_ttl);
    assert_int_equal(kv_engine_next_deadline(f->e), next);
}

/* Sets new keys PREFIX000... at REV (REV 0: one more each), the i-th with
 * deadline EXPIRES + i (EXPIRES 0: none), until one is refused for the
 * failed page; returns how many were accepted. */
static int write_until_refused(fixture *f, const char *prefix, uint64_t rev, int arm_after,
                               uint64_t expires)
{
    char key[32];

    for (int i = 0; i < 500; i++) {
        if (i == arm_after)
            fail_pages = 1;
        snprintf(key, sizeof key, "%s%03d", prefix, i);
        uint64_t r = rev ? rev : kv_engine_revision(f->e) + 1;
        kv_status st = kv_engine_set_ttl(f->e, K(key), big, sizeof big, r,
                                         expires ? expires + (uint64_t)i : 0, NULL, NULL);
        if (st != KV_OK) {
            fail_pages = 0;
            assert_int_equal(st, KV_RESOURCE_EXHAUSTED);
            assert_string_equal(kv_engine_last_error(f->e), "server out of memory");
            return i;
        }
    }
    fail_pages = 0;
    fail_msg("no page was allocated in 500 writes: nothing failed");
    return 0;
}

static void a_lost_turn_is_replayed_with_its_revisions(void **state)
{
    fixture *f = *state;
    kv_range r = { K("a10"), K("a15") };
    uint64_t deleted;
    char key[32];

    for (int i = 0; i < 20; i++) {                          /* revisions 1..20 */
        snprintf(key, sizeof key, "a%02d", i);
        set(f, key, big, sizeof big, (uint64_t)i + 1);
    }
    set(f, "a05", K("over"), 21);
    assert_int_equal(kv_engine_batch_begin(f->e), KV_OK);   /* kept: 22 */
    set(f, "b1", K("v"), 22);
    set(f, "a06", K("w"), 22);
    assert_int_equal(kv_engine_batch_end(f->e, 1), KV_OK);
    assert_int_equal(kv_engine_batch_begin(f->e), KV_OK);   /* undone */
    set(f, "gone", K("v"), 23);
    assert_int_equal(kv_engine_batch_end(f->e, 0), KV_OK);
    assert_int_equal(kv_engine_unset_range(f->e, &r, 23, &deleted), KV_OK);
    assert_int_equal(deleted, 5);
    assert_int_equal(kv_engine_unset(f->e, K("a00"), NULL, NULL, 24), KV_OK);

    int n = write_until_refused(f, "c", 0, 0, 0);           /* c000.. at 25.. */
    assert_int_equal(kv_engine_revision(f->e), 24 + (uint64_t)n);
    for (int pass = 0; pass < 2; pass++) {
        expect(f, "a00", 0, 0, 0);
        expect(f, "a01", 2, 2, 1);
        expect(f, "a05", 6, 21, 2);
        expect(f, "a06", 7, 22, 2);
        expect(f, "b1", 22, 22, 1);
        expect(f, "gone", 0, 0, 0);
        expect(f, "a12", 0, 0, 0);
        expect(f, "a15", 16, 16, 1);
        for (int i = 0; i < n; i++) {
            snprintf(key, sizeof key, "c%03d", i);
            expect(f, key, 25 + (uint64_t)i, 25 + (uint64_t)i, 1);
        }
        snprintf(key, sizeof key, "c%03d", n);
        expect(f, key, 0, 0, 0);
        kv_engine_stats st;
        kv_engine_stats_get(f->e, &st);
        assert_int_equal(st.keys, 20 - 1 - 5 + 1 + n);
        assert_int_equal(st.data_bytes, 12 * (3 + sizeof big) + (3 + 4) + (3 + 1) + (2 + 1) +
                                        (uint64_t)n * (4 + sizeof big));
        assert_int_equal(f->e->ops->flush(f->e), KV_OK);
        reopen(f);
        assert_int_equal(kv_engine_revision(f->e), 24 + (uint64_t)n);
    }
}

static void a_lost_batch_is_replayed_and_kept_whole(void **state)
{
    fixture *f = *state;
    kv_range r = { K("a2"), K("a4") };
    uint64_t deleted;
    char key[32];

    for (int i = 0; i < 6; i++) {                           /* revisions 1..6 */
        snprintf(key, sizeof key, "a%d", i);
        set(f, key, K("v"), (uint64_t)i + 1);
    }
    set(f, "t", K("turn"), 7);
    assert_int_equal(kv_engine_batch_begin(f->e), KV_OK);   /* every write at 8 */
    set(f, "a1", K("in the batch"), 8);
    assert_int_equal(kv_engine_unset_range(f->e, &r, 8, &deleted), KV_OK);
    assert_int_equal(deleted, 2);
    int n = write_until_refused(f, "d", 8, 3, 0);
    assert_true(n >= 3);
    /* The batch reads as it was before the refused write... */
    expect(f, "a1", 2, 8, 2);
    expect(f, "a2", 0, 0, 0);
    expect(f, "d000", 8, 8, 1);
    assert_int_equal(kv_engine_revision(f->e), 8);
    /* ... and is kept whole, the turn's write before it too. */
    assert_int_equal(kv_engine_batch_end(f->e, 1), KV_OK);
    assert_int_equal(f->e->ops->flush(f->e), KV_OK);
    reopen(f);
    assert_int_equal(kv_engine_revision(f->e), 8);
    expect(f, "t", 7, 7, 1);
    expect(f, "a1", 2, 8, 2);
    expect(f, "a2", 0, 0, 0);
    expect(f, "a3", 0, 0, 0);
    expect(f, "a4", 5, 5, 1);
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "d%03d", i);
        expect(f, key, 8, 8, 1);
    }
    snprintf(key, sizeof key, "d%03d", n);
    expect(f, key, 0, 0, 0);
}

/* The turn's deadlines, each kind of write that moves one, replayed: Sets
 * giving, replacing and removing deadlines, Touches, a Clear and a range
 * delete of keys with one, a kept batch and an undone one. */
static void a_lost_turn_is_replayed_with_its_deadlines(void **state)
{
    fixture *f = *state;
    kv_range r = { K("t10"), K("t15") };
    uint64_t deleted;
    char key[32];

    for (int i = 0; i < 20; i++) {                          /* revisions 1..20 */
        snprintf(key, sizeof key, "t%02d", i);
        set_ttl(f, key, big, sizeof big, (uint64_t)i + 1, i % 2 ? 0 : 5000 + (uint64_t)i);
    }
    assert_int_equal(f->e->ops->flush(f->e), KV_OK);        /* 10 with deadlines */
    set_ttl(f, "t00", K("moved"), 21, 4000);                /* replaced */
    set(f, "t02", K("none now"), 22);                       /* removed */
    set_ttl(f, "t01", K("given"), 23, 6000);                /* given one */
    assert_int_equal(kv_engine_touch(f->e, K("t04"), 3000), KV_OK);
    assert_int_equal(kv_engine_touch(f->e, K("t06"), 0), KV_OK);
    assert_int_equal(kv_engine_touch(f->e, K("t03"), 7000), KV_OK);
    assert_int_equal(kv_engine_unset(f->e, K("t08"), NULL, NULL, 24), KV_OK);
    assert_int_equal(kv_engine_unset_range(f->e, &r, 25, &deleted), KV_OK);  /* 10 12 14 */
    assert_int_equal(deleted, 5);
    assert_int_equal(kv_engine_batch_begin(f->e), KV_OK);   /* kept: 26 */
    set_ttl(f, "b1", K("v"), 26, 2000);
    set_ttl(f, "t16", K("w"), 26, 0);
    assert_int_equal(kv_engine_batch_end(f->e, 1), KV_OK);
    assert_int_equal(kv_engine_batch_begin(f->e), KV_OK);   /* undone */
    set_ttl(f, "gone", K("v"), 27, 1);
    set_ttl(f, "t18", K("v"), 27, 1);
    assert_int_equal(kv_engine_batch_end(f->e, 0), KV_OK);

    int n = write_until_refused(f, "c", 0, 0, 9000);        /* c000.. at 27.. */
    assert_true(n > 0);
    for (int pass = 0; pass < 2; pass++) {
        expect_ttl(f, "t00", 1, 21, 2, 4000);
        expect_ttl(f, "t01", 2, 23, 2, 6000);
        expect_ttl(f, "t02", 3, 22, 2, 0);
        expect_ttl(f, "t03", 4, 4, 1, 7000);
        expect_ttl(f, "t04", 5, 5, 1, 3000);
        expect_ttl(f, "t06", 7, 7, 1, 0);
        expect_ttl(f, "t08", 0, 0, 0, 0);
        expect_ttl(f, "t12", 0, 0, 0, 0);
        expect_ttl(f, "t16", 17, 26, 2, 0);
        expect_ttl(f, "t18", 19, 19, 1, 5018);
        expect_ttl(f, "b1", 26, 26, 1, 2000);
        expect_ttl(f, "gone", 0, 0, 0, 0);
        for (int i = 0; i < n; i++) {
            snprintf(key, sizeof key, "c%03d", i);
            expect_ttl(f, key, 27 + (uint64_t)i, 27 + (uint64_t)i, 1, 9000 + (uint64_t)i);
        }
        snprintf(key, sizeof key, "c%03d", n);
        expect(f, key, 0, 0, 0);
        /* With one: t00 t01 t03 t04 t18 b1, and the c's. */
        expect_index(f, UINT64_MAX, 6 + (uint64_t)n, 6 + (uint64_t)n, 2000);
        expect_index(f, 4000, 3, 6 + (uint64_t)n, 2000);
        assert_int_equal(kv_engine_revision(f->e), 26 + (uint64_t)n);
        assert_int_equal(f->e->ops->flush(f->e), KV_OK);
        reopen(f);
    }
}

/* Sets with deadlines refused when the page that fails is the index's,
 * not the record's: the record was already written, and the write is
 * taken out whole by the replay. Each run fails a later page. */
static void a_write_torn_between_record_and_index_leaves_nothing(void **state)
{
    fixture *f = *state;
    char key[400];

    for (int skip = 0; skip < 24; skip++) {
        char prefix[8];
        /* Long keys: the index's leaves fill as fast as the records'. */
        snprintf(prefix, sizeof prefix, "%c", 'a' + skip);
        uint64_t rev0 = kv_engine_revision(f->e);
        kv_engine_stats st0;
        kv_engine_stats_get(f->e, &st0);
        int n = 0;
        skip_pages = skip;
        fail_pages = 1;
        for (; n < 2000; n++) {
            snprintf(key, sizeof key, "%s%0350d", prefix, n);
            kv_status st = kv_engine_set_ttl(f->e, K(key), (const uint8_t *)"v", 1,
                                             kv_engine_revision(f->e) + 1,
                                             100000 * (uint64_t)(skip + 1) + (uint64_t)n,
                                             NULL, NULL);
            if (st != KV_OK) {
                assert_int_equal(st, KV_RESOURCE_EXHAUSTED);
                break;
            }
        }
        fail_pages = skip_pages = 0;
        assert_true(n < 2000);
        for (int pass = 0; pass < 2; pass++) {
            snprintf(key, sizeof key, "%s%0350d", prefix, n);
            expect(f, key, 0, 0, 0);
            assert_int_equal(kv_engine_revision(f->e), rev0 + (uint64_t)n);
            expect_index(f, 100000 * (uint64_t)(skip + 1) - 1, st0.keys_with_ttl,
                         st0.keys_with_ttl + (uint64_t)n, 100000);
            expect_index(f, UINT64_MAX, st0.keys_with_ttl + (uint64_t)n,
                         st0.keys_with_ttl + (uint64_t)n, 100000);
            if (n) {
                snprintf(key, sizeof key, "%s%0350d", prefix, n - 1);
                expect_ttl(f, key, rev0 + (uint64_t)n, rev0 + (uint64_t)n, 1,
                           100000 * (uint64_t)(skip + 1) + (uint64_t)n - 1);
            }
            assert_int_equal(f->e->ops->flush(f->e), KV_OK);
            if (pass == 0)
                reopen(f);
        }
    }
}

/* Loads (a snapshot's keys, engine.h) are replayed with the meta they
 * were given: their record is logged, not a Set's. */
static void lost_loads_are_replayed_with_their_meta(void **state)
{
    fixture *f = *state;
    char key[32];

    assert_int_equal(kv_engine_reset(f->e, 100), KV_OK);
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "l%02d", i);
        kv_entry en = { K(key), big, sizeof big,
                        { (uint64_t)i + 1, (uint64_t)i + 50, (uint64_t)i % 3 + 1,
                          i % 2 ? 0 : 9000 + (uint64_t)i } };
        assert_int_equal(kv_engine_load(f->e, &en), KV_OK);
    }
    /* Over a loaded key, and one that takes the revision past the reset's. */
    kv_entry over = { K("l03"), K("x"), { 2, 120, 7, 0 } };
    assert_int_equal(kv_engine_load(f->e, &over), KV_OK);
    assert_int_equal(kv_engine_revision(f->e), 120);

    int n = write_until_refused(f, "c", 0, 0, 0);           /* c000.. at 121.. */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 20; i++) {
            snprintf(key, sizeof key, "l%02d", i);
            if (i == 3)
                expect(f, key, 2, 120, 7);
            else
                expect_ttl(f, key, (uint64_t)i + 1, (uint64_t)i + 50, (uint64_t)i % 3 + 1,
                           i % 2 ? 0 : 9000 + (uint64_t)i);
        }
        expect(f, "c000", 121, 121, 1);
        expect_index(f, UINT64_MAX, 10, 10, 9000);
        assert_int_equal(kv_engine_revision(f->e), 120 + (uint64_t)n);
        assert_int_equal(f->e->ops->flush(f->e), KV_OK);
        reopen(f);
    }
}

int main(void)
{
#ifdef SANITIZED
    puts("skipped: a sanitizer's malloc cannot be replaced");
    return 77;      /* meson's "skipped" */
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_lost_turn_is_replayed_with_its_revisions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_lost_batch_is_replayed_and_kept_whole, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_lost_turn_is_replayed_with_its_deadlines, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_write_torn_between_record_and_index_leaves_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(lost_loads_are_replayed_with_their_meta, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
