/* test_dedup.c - the cluster's retry table (dedup.c) and log entries
 * (clog.c) alone: an outcome comes back byte for byte for its (client_id,
 * seq) and for no other; the first outcome stands; a client's oldest make
 * way for its newest, and a retry below them is refused; all clients
 * together are bounded by count and bytes, the least recent writer losing
 * first; a snapshot of the table reads back the same, in the same order; entries read back as written, padding and all,
 * and a truncated or unknown entry is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include "clog.h"
#include "dedup.h"

static const uint8_t A[16] = { 0xaa, 0, 1 }, B[16] = { 0xbb, 0, 1 };

static void an_outcome_comes_back_for_its_client_and_seq_only(void **state)
{
    kv_dedup d;
    kv_dedup_outcome o;

    (void)state;
    assert_int_equal(kv_dedup_init(&d, 100), 0);
    assert_int_equal(kv_dedup_add(&d, A, 16, 7, KV_OK, NULL, (const uint8_t *)"\0resp", 5), 0);
    assert_int_equal(kv_dedup_add(&d, A, 16, 8, KV_FAILED_PRECONDITION, "no", NULL, 0), 0);
    assert_int_equal(kv_dedup_find(&d, A, 16, 7, &o), 1);
    assert_int_equal(o.status, KV_OK);
    assert_int_equal(o.response_len, 5);
    assert_memory_equal(o.response, "\0resp", 5);
    assert_int_equal(kv_dedup_find(&d, A, 16, 8, &o), 1);
    assert_int_equal(o.status, KV_FAILED_PRECONDITION);
    assert_string_equal(o.message, "no");
    assert_int_equal(kv_dedup_find(&d, B, 16, 7, &o), 0);     /* another client */
    assert_int_equal(kv_dedup_find(&d, A, 15, 7, &o), 0);     /* a prefix of it */
    assert_int_equal(kv_dedup_find(&d, A, 16, 9, &o), 0);     /* another seq */
    /* A second outcome for the same write does not replace the first. */
    assert_int_equal(kv_dedup_add(&d, A, 16, 7, KV_INTERNAL, "later", NULL, 0), 0);
    assert_int_equal(kv_dedup_find(&d, A, 16, 7, &o), 1);
    assert_int_equal(o.status, KV_OK);
    kv_dedup_free(&d);
}

static void a_clients_oldest_make_way_and_a_retry_below_them_is_refused(void **state)
{
    kv_dedup d;
    kv_dedup_outcome o;

    (void)state;
    assert_int_equal(kv_dedup_init(&d, 1000), 0);
    d.per_client = 10;
    for (uint64_t s = 1; s <= 25; s++)
        assert_int_equal(kv_dedup_add(&d, A, 16, s, KV_OK, NULL, NULL, 0), 0);
    assert_int_equal(d.n, 10);
    for (uint64_t s = 1; s <= 25; s++)   /* forgotten: -1, not "unknown" */
        assert_int_equal(kv_dedup_find(&d, A, 16, s, &o), s > 15 ? 1 : -1);
    assert_int_equal(kv_dedup_find(&d, A, 16, 26, &o), 0);     /* not yet written */
    assert_int_equal(kv_dedup_find(&d, B, 16, 3, &o), 0);      /* another client */
    kv_dedup_free(&d);
}

static void a_busy_client_keeps_its_outcomes_while_the_least_recent_lose_theirs(void **state)
{
    kv_dedup d;
    kv_dedup_outcome o;

    (void)state;
    assert_int_equal(kv_dedup_init(&d, 8), 0);
    for (uint64_t s = 1; s <= 4; s++)
        assert_int_equal(kv_dedup_add(&d, B, 16, s, KV_OK, NULL, NULL, 0), 0);
    /* A writes 6 after B's 4: B wrote least recently, so B's oldest go. */
    for (uint64_t s = 1; s <= 6; s++)
        assert_int_equal(kv_dedup_add(&d, A, 16, s, KV_OK, NULL, NULL, 0), 0);
    assert_int_equal(d.n, 8);
    for (uint64_t s = 1; s <= 6; s++)
        assert_int_equal(kv_dedup_find(&d, A, 16, s, &o), 1);
    assert_int_equal(kv_dedup_find(&d, B, 16, 2, &o), -1);
    assert_int_equal(kv_dedup_find(&d, B, 16, 3, &o), 1);
    /* By bytes too: a big answer pushes out as many as it needs. */
    d.max_bytes = d.bytes + 100;
    static uint8_t big[1000];
    assert_int_equal(kv_dedup_add(&d, A, 16, 99, KV_OK, NULL, big, sizeof big), 0);
    assert_true(d.bytes <= d.max_bytes || d.n == 1);
    assert_int_equal(kv_dedup_find(&d, A, 16, 99, &o), 1);
    assert_int_equal(kv_dedup_find(&d, B, 16, 4, &o), -1);     /* B went first */
    /* Past the most clients known, the one idle longest is dropped whole. */
    d.max_clients = d.clients;
    uint8_t c[16] = { 0xcc };
    assert_int_equal(kv_dedup_add(&d, c, 16, 1, KV_OK, NULL, NULL, 0), 0);
    assert_int_equal(kv_dedup_find(&d, B, 16, 4, &o), 0);      /* unknown now */
    kv_dedup_free(&d);
}

static void a_snapshot_of_the_table_reads_back_in_order(void **state)
{
    kv_dedup d, e;
    kv_buf b = KV_BUF_INIT, c = KV_BUF_INIT;
    kv_dedup_outcome o;

    (void)state;
    assert_int_equal(kv_dedup_init(&d, 8), 0);
    assert_int_equal(kv_dedup_init(&e, 8), 0);
    for (uint64_t s = 1; s <= 12; s++)
        assert_int_equal(kv_dedup_add(&d, A, 16, s, s % 3 ? KV_OK : KV_NOT_FOUND,
                                      s % 3 ? NULL : "gone", (const uint8_t *)&s, sizeof s), 0);
    assert_int_equal(kv_dedup_encode(&d, &b), 0);
    const uint8_t *p = kv_buf_head(&b);
    assert_int_equal(kv_dedup_decode(&e, &p, p + kv_buf_len(&b)), 0);
    assert_ptr_equal(p, kv_buf_head(&b) + kv_buf_len(&b));
    assert_int_equal(kv_dedup_encode(&e, &c), 0);
    assert_int_equal(kv_buf_len(&b), kv_buf_len(&c));
    assert_memory_equal(kv_buf_head(&b), kv_buf_head(&c), kv_buf_len(&b));
    assert_int_equal(kv_dedup_find(&e, A, 16, 12, &o), 1);
    assert_string_equal(o.message, "gone");
    assert_int_equal(kv_dedup_find(&e, A, 16, 4, &o), -1);    /* the floor came too */
    /* The next one added pushes out the same oldest one in both. */
    kv_dedup_add(&d, B, 16, 1, KV_OK, NULL, NULL, 0);
    kv_dedup_add(&e, B, 16, 1, KV_OK, NULL, NULL, 0);
    assert_int_equal(kv_dedup_find(&d, A, 16, 5, &o), -1);
    assert_int_equal(kv_dedup_find(&e, A, 16, 5, &o), -1);
    assert_int_equal(kv_dedup_find(&e, A, 16, 6, &o), 1);
    kv_buf_consume(&b, kv_buf_len(&b));
    kv_buf_consume(&c, kv_buf_len(&c));
    assert_int_equal(kv_dedup_encode(&d, &b), 0);
    assert_int_equal(kv_dedup_encode(&e, &c), 0);
    assert_int_equal(kv_buf_len(&b), kv_buf_len(&c));
    assert_memory_equal(kv_buf_head(&b), kv_buf_head(&c), kv_buf_len(&b));
    /* Truncated: refused. */
    p = kv_buf_head(&b);
    assert_int_equal(kv_dedup_decode(&e, &p, p + kv_buf_len(&b) - 1), -1);
    kv_buf_free(&b);
    kv_buf_free(&c);
    kv_dedup_free(&d);
    kv_dedup_free(&e);
}

static void entries_read_back_as_written_and_padding_ends_them(void **state)
{
    kv_buf b = KV_BUF_INIT;
    kv_clog_head h = { KV_CLOG_WRITES, 1700000000123ull, 42, 7 }, g;
    kv_clog_cmd one = { KV_CLOG_SET, A, 16, 5, (const uint8_t *)"\x0a\x01k", 3 };
    kv_clog_cmd two = { KV_CLOG_TXN, NULL, 0, 0, NULL, 0 }, c;

    (void)state;
    assert_int_equal(kv_clog_put_head(&b, &h), 0);
    assert_int_equal(kv_clog_put_cmd(&b, &one), 0);
    assert_int_equal(kv_clog_put_cmd(&b, &two), 0);
    assert_int_equal(kv_clog_pad(&b), 0);
    assert_int_equal(kv_buf_len(&b) % 8, 0);
    const uint8_t *p = kv_buf_head(&b), *end = p + kv_buf_len(&b);
    assert_int_equal(kv_clog_get_head(&p, end, &g), 0);
    assert_int_equal(g.kind, h.kind);
    assert_true(g.time_ms == h.time_ms && g.origin == 42 && g.batch == 7);
    assert_int_equal(kv_clog_get_cmd(&p, end, &c), 1);
    assert_int_equal(c.code, KV_CLOG_SET);
    assert_int_equal(c.seq, 5);
    assert_memory_equal(c.client_id, A, 16);
    assert_int_equal(c.payload_len, 3);
    assert_int_equal(kv_clog_get_cmd(&p, end, &c), 1);
    assert_int_equal(c.code, KV_CLOG_TXN);
    assert_int_equal(c.client_id_len + c.payload_len, 0);
    assert_int_equal(kv_clog_get_cmd(&p, end, &c), 0);         /* the padding */
    /* Cut inside the first command: refused, not read past the end. */
    p = kv_buf_head(&b);
    assert_int_equal(kv_clog_get_head(&p, end, &g), 0);
    assert_int_equal(kv_clog_get_cmd(&p, p + 10, &c), -1);
    /* Another version, another magic, an unknown kind: not an entry. */
    uint8_t bad[16];
    memcpy(bad, kv_buf_head(&b), sizeof bad);
    bad[1] = KV_CLOG_VERSION + 1;
    p = bad;
    assert_int_equal(kv_clog_get_head(&p, bad + sizeof bad, &g), -1);
    bad[1] = KV_CLOG_VERSION;
    bad[2] = 9;
    p = bad;
    assert_int_equal(kv_clog_get_head(&p, bad + sizeof bad, &g), -1);
    kv_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_outcome_comes_back_for_its_client_and_seq_only),
        cmocka_unit_test(a_clients_oldest_make_way_and_a_retry_below_them_is_refused),
        cmocka_unit_test(a_busy_client_keeps_its_outcomes_while_the_least_recent_lose_theirs),
        cmocka_unit_test(a_snapshot_of_the_table_reads_back_in_order),
        cmocka_unit_test(entries_read_back_as_written_and_padding_ends_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
