/* test_lmdb_replay - the lmdb engine's replay of a lost transaction, through
 * the engine interface. A write that fails inside LMDB after it began
 * changing pages (here: the malloc of a new page fails) makes LMDB refuse
 * the whole transaction; the engine begins it again and replays its oplog
 * without the failed write. The test checks that the replay makes exactly
 * what was accepted: every key with the revisions it had, kept batches
 * whole, an undone batch and range deletes as they were, the store's
 * revision; before the commit and after a reopen. Once for the turn's
 * transaction, once inside a batch (only the batch's child is begun
 * again, and the batch is still kept whole).
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

/* How many of the next mallocs of one page (LMDB's dirty pages) fail. */
static int fail_pages;
static size_t page_size;

#ifndef SANITIZED
extern void *__libc_malloc(size_t);

void *malloc(size_t n)
{
    if (fail_pages && n == page_size) {
        fail_pages--;
        return NULL;
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

/* KEY holds {CREATE, MOD, VERSION}, or (CREATE 0) is absent. */
static void expect(fixture *f, const char *key, uint64_t create, uint64_t mod, uint64_t version)
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
    if (m.create_revision != create || m.mod_revision != mod || m.version != version)
        fail_msg("%s: revisions {%llu, %llu, %llu}, want {%llu, %llu, %llu}", key,
                 (unsigned long long)m.create_revision, (unsigned long long)m.mod_revision,
                 (unsigned long long)m.version, (unsigned long long)create,
                 (unsigned long long)mod, (unsigned long long)version);
}

/* Sets new keys PREFIX000... at REV (REV 0: one more each) until one is
 * refused for the failed page; returns how many were accepted. */
static int write_until_refused(fixture *f, const char *prefix, uint64_t rev, int arm_after)
{
    char key[32];

    for (int i = 0; i < 500; i++) {
        if (i == arm_after)
            fail_pages = 1;
        snprintf(key, sizeof key, "%s%03d", prefix, i);
        uint64_t r = rev ? rev : kv_engine_revision(f->e) + 1;
        kv_status st = kv_engine_set(f->e, K(key), big, sizeof big, r);
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

    int n = write_until_refused(f, "c", 0, 0);              /* c000.. at 25.. */
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
    int n = write_until_refused(f, "d", 8, 3);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
