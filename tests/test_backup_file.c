/* test_backup_file.c - the backup file format alone (src/backup_file.c):
 * a file written with its writers is read back record for record; every
 * file cut short, every bit flipped, and a file of another version are
 * refused by kv_bfile_check, as a restore must refuse them; the streaming
 * check fed in pieces of every size agrees with the whole-file check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "backup_file.h"

#define KEYS 40

/* A backup of KEYS keys at revision 100, every byte value among them. */
static void build(kv_buf *b)
{
    XXH3_state_t *h = XXH3_createState();
    uint8_t head[KV_BFILE_HEADER_BYTES], tail[KV_BFILE_TRAILER_BYTES];

    assert_non_null(h);
    XXH3_64bits_reset(h);
    kv_bfile_header_put(head, 100, 1700000000000ull);
    assert_int_equal(kv_buf_append(b, head, sizeof head), 0);
    for (int i = 0; i < KEYS; i++) {
        uint8_t key[3] = { 'k', (uint8_t)i, (uint8_t)(i * 7) }, value[16];
        for (int j = 0; j < 16; j++)
            value[j] = (uint8_t)(i * 16 + j);
        kv_bfile_record r = { key, sizeof key, value, (size_t)(i % 17), (uint64_t)i + 1,
                              (uint64_t)i + 50, 2, i % 3 ? 0 : 1800000000000ull + (uint64_t)i };
        assert_int_equal(kv_bfile_record_put(b, &r), 0);
    }
    XXH3_64bits_update(h, kv_buf_head(b), kv_buf_len(b));
    kv_bfile_trailer_put(tail, KEYS, h);
    assert_int_equal(kv_buf_append(b, tail, sizeof tail), 0);
    XXH3_freeState(h);
}

static void reads_back(void **state)
{
    kv_buf b = KV_BUF_INIT;
    kv_bfile_info info;
    char why[300];

    (void)state;
    build(&b);
    if (kv_bfile_check(kv_buf_head(&b), kv_buf_len(&b), &info, why, sizeof why) < 0)
        fail_msg("refused: %s", why);
    assert_int_equal(info.revision, 100);
    assert_int_equal(info.created_ms, 1700000000000ull);
    assert_int_equal(info.count, KEYS);
    const uint8_t *p = info.records;
    for (int i = 0; i < KEYS; i++) {
        kv_bfile_record r;
        assert_int_equal(kv_bfile_record_get(&p, info.records_end, &r), 0);
        assert_int_equal(r.klen, 3);
        assert_int_equal(r.key[1], i);
        assert_int_equal(r.vlen, i % 17);
        for (size_t j = 0; j < r.vlen; j++)
            assert_int_equal(r.value[j], (uint8_t)(i * 16 + (int)j));
        assert_int_equal(r.create_revision, i + 1);
        assert_int_equal(r.mod_revision, i + 50);
        assert_int_equal(r.deadline_ms, i % 3 ? 0 : 1800000000000ull + (uint64_t)i);
    }
    assert_ptr_equal(p, info.records_end);
    kv_buf_free(&b);
}

static void refuses_every_cut_and_flip(void **state)
{
    kv_buf b = KV_BUF_INIT;
    kv_bfile_info info;
    char why[300];

    (void)state;
    build(&b);
    uint8_t *p = kv_buf_head(&b);
    size_t len = kv_buf_len(&b);
    for (size_t n = 0; n < len; n++)
        if (kv_bfile_check(p, n, &info, why, sizeof why) == 0)
            fail_msg("the first %zu of %zu bytes were taken for a backup", n, len);
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            p[i] ^= (uint8_t)(1 << bit);
            if (kv_bfile_check(p, len, &info, why, sizeof why) == 0)
                fail_msg("bit %d of byte %zu flipped went unseen", bit, i);
            p[i] ^= (uint8_t)(1 << bit);
        }
    p[8] = 2;   /* version 2: refused by name, not by its sum */
    assert_int_equal(kv_bfile_check(p, len, &info, why, sizeof why), -1);
    assert_non_null(strstr(why, "format version 2"));
    kv_buf_free(&b);
}

/* A backup at REVISION of one key whose revisions are all REVISION. */
static void build_at(kv_buf *b, uint64_t revision)
{
    XXH3_state_t *h = XXH3_createState();
    uint8_t head[KV_BFILE_HEADER_BYTES], tail[KV_BFILE_TRAILER_BYTES];

    assert_non_null(h);
    XXH3_64bits_reset(h);
    kv_bfile_header_put(head, revision, 1700000000000ull);
    assert_int_equal(kv_buf_append(b, head, sizeof head), 0);
    kv_bfile_record r = { (const uint8_t *)"k", 1, (const uint8_t *)"v", 1, revision, revision,
                          1, 0 };
    assert_int_equal(kv_bfile_record_put(b, &r), 0);
    XXH3_64bits_update(h, kv_buf_head(b), kv_buf_len(b));
    kv_bfile_trailer_put(tail, 1, h);
    assert_int_equal(kv_buf_append(b, tail, sizeof tail), 0);
    XXH3_freeState(h);
}

/* A revision past 2^63 - 1, well summed, is refused (the whole-file and
 * the streaming checks): restored at 2^64 - 1, the store's next write
 * took revision 0. 2^63 - 1 itself is taken. */
static void refuses_a_revision_no_store_reaches(void **state)
{
    static const uint64_t revisions[] = { UINT64_MAX, (uint64_t)INT64_MAX + 1, INT64_MAX };
    kv_bfile_info info;
    char why[300];

    (void)state;
    for (size_t i = 0; i < sizeof revisions / sizeof *revisions; i++) {
        kv_buf b = KV_BUF_INIT;
        kv_bfile_stream s;
        build_at(&b, revisions[i]);
        int want = revisions[i] > INT64_MAX ? -1 : 0;
        assert_int_equal(kv_bfile_check(kv_buf_head(&b), kv_buf_len(&b), &info, why, sizeof why),
                         want);
        assert_int_equal(kv_bfile_stream_init(&s), 0);
        kv_bfile_stream_feed(&s, kv_buf_head(&b), kv_buf_len(&b));
        assert_int_equal(kv_bfile_stream_end(&s, &info, why, sizeof why), want);
        kv_bfile_stream_free(&s);
        if (want < 0)
            assert_non_null(strstr(why, "past 2^63 - 1"));
        kv_buf_free(&b);
    }
}

static void stream_agrees(void **state)
{
    kv_buf b = KV_BUF_INIT;
    kv_bfile_info info;
    char why[300];

    (void)state;
    build(&b);
    const uint8_t *p = kv_buf_head(&b);
    size_t len = kv_buf_len(&b);
    for (size_t piece = 1; piece <= len; piece++)
        for (size_t cut = len - 30; cut <= len; cut++) {
            kv_bfile_stream s;
            assert_int_equal(kv_bfile_stream_init(&s), 0);
            for (size_t at = 0; at < cut; at += piece)
                kv_bfile_stream_feed(&s, p + at, cut - at < piece ? cut - at : piece);
            int rc = kv_bfile_stream_end(&s, &info, why, sizeof why);
            kv_bfile_stream_free(&s);
            if ((rc == 0) != (cut == len))
                fail_msg("pieces of %zu, %zu of %zu bytes: %s", piece, cut, len,
                         rc ? why : "taken");
            if (rc == 0)
                assert_int_equal(info.count, KEYS);
        }
    kv_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_back),
        cmocka_unit_test(refuses_every_cut_and_flip),
        cmocka_unit_test(stream_agrees),
        cmocka_unit_test(refuses_a_revision_no_store_reaches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
