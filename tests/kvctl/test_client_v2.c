/* test_client_v2.c - the C client library's blocking helpers for the v2
 * data model (include/kvstore/client.h), which kvctl's range, clear range
 * and txn are built on: each against a real kvstored (support/fixture.c;
 * once per engine), and kv_client_range_next on pages made up here; the
 * conditional writes also against a fake server before protocol v2 (a
 * child process here). The server's rules themselves are
 * tests/test_data_model.c's to check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <kvstore/client.h>
#include "frame.h"
#include "support/fixture.h"

#define B(s) ((ProtobufCBinaryData){ sizeof(s) - 1, (uint8_t *)(s) })

static void set_ok(kv_client *c, const char *key, const char *value)
{
    assert_int_equal(kv_client_set(c, key, strlen(key), value, strlen(value)), KV_OK);
}

static void assert_bytes(ProtobufCBinaryData got, const void *want, size_t len)
{
    assert_int_equal(got.len, len);
    if (len)
        assert_memory_equal(got.data, want, len);
}

static void revisions(void **state)
{
    kv_client *c = ((kv_fixture *)*state)->c;
    kv_client_revs revs;
    uint64_t rev = 99;
    uint8_t *v;
    size_t vlen;
    int found;

    assert_int_equal(kv_client_set_rev(c, "k", 1, "v1", 2, &rev), KV_OK);
    assert_int_equal(rev, 1);
    assert_int_equal(kv_client_set_rev(c, "other", 5, "x", 1, NULL), KV_OK);
    assert_int_equal(kv_client_set_rev(c, "k", 1, "v2", 2, &rev), KV_OK);
    assert_int_equal(rev, 3);

    assert_int_equal(kv_client_get_rev(c, "k", 1, &v, &vlen, &revs), KV_OK);
    assert_int_equal(vlen, 2);
    assert_memory_equal(v, "v2", 2);
    free(v);
    assert_int_equal(revs.create_revision, 1);
    assert_int_equal(revs.mod_revision, 3);
    assert_int_equal(revs.version, 2);
    assert_int_equal(revs.revision, 3);
    assert_int_equal(kv_client_get_rev(c, "nope", 4, NULL, NULL, &revs), KV_NOT_FOUND);
    assert_int_equal(revs.mod_revision, 0);

    assert_int_equal(kv_client_clear_rev(c, "k", 1, &found, NULL, NULL, &rev), KV_OK);
    assert_true(found);
    assert_int_equal(rev, 4);
    /* Nothing changed: no revision. */
    assert_int_equal(kv_client_clear_rev(c, "k", 1, &found, NULL, NULL, &rev), KV_OK);
    assert_false(found);
    assert_int_equal(rev, 0);
    /* A failed call zeroes what it would have filled. */
    rev = 7;
    assert_int_equal(kv_client_set_rev(c, "", 0, "v", 1, &rev), KV_INVALID_ARGUMENT);
    assert_int_equal(rev, 0);
}

static void cas(void **state)
{
    kv_client *c = ((kv_fixture *)*state)->c;
    uint64_t rev;
    uint8_t *v;
    size_t vlen;
    int found = 1;

    /* 0: create only. */
    assert_int_equal(kv_client_cas(c, "lock", 4, "me", 2, 0, &rev), KV_OK);
    assert_int_equal(rev, 1);
    assert_int_equal(kv_client_cas(c, "lock", 4, "you", 3, 0, &rev), KV_FAILED_PRECONDITION);
    assert_int_equal(rev, 0);
    assert_non_null(strstr(kv_client_last_message(c), "1"));   /* names the mod_revision */
    kv_assert_value(c, "lock", 4, "me", 2);

    assert_int_equal(kv_client_cas(c, "lock", 4, "you", 3, 1, &rev), KV_OK);
    assert_int_equal(rev, 2);

    assert_int_equal(kv_client_cas_clear(c, "lock", 4, 1, &found, &v, &vlen, &rev),
                     KV_FAILED_PRECONDITION);
    assert_false(found);
    assert_null(v);
    kv_assert_value(c, "lock", 4, "you", 3);
    assert_int_equal(kv_client_cas_clear(c, "lock", 4, 2, &found, &v, &vlen, &rev), KV_OK);
    assert_true(found);
    assert_int_equal(vlen, 3);
    assert_memory_equal(v, "you", 3);
    free(v);
    assert_int_equal(rev, 3);
    assert_int_equal(kv_client_get(c, "lock", 4, NULL, NULL), KV_NOT_FOUND);
}

/* A server before protocol v2, as far as conditional writes go: it does
 * not know if_mod_revision, skips it and writes, answering as for a plain
 * write: Set with an empty SetResponse, Clear with found (but for the key
 * "absent") and the old value "old", never a revision. Tests cannot start
 * an old kvstored, so this child process serves one connection. */
typedef struct fake_v1 {
    pid_t pid;
    char endpoint[64];
} fake_v1;

/* Answers the RpcRequest BODY[0..LEN) on FD. Returns 0, or -1 to stop. */
static int fake_v1_answer(int fd, const uint8_t *body, size_t len)
{
    Kvstore__V1__RpcRequest *req = kvstore__v1__rpc_request__unpack(NULL, len, body);
    Kvstore__V1__RpcResponse resp = KVSTORE__V1__RPC_RESPONSE__INIT;
    Kvstore__V1__ClearResponse clear = KVSTORE__V1__CLEAR_RESPONSE__INIT;
    uint8_t payload[64], frame[128];
    size_t n, pre;

    if (!req)
        return -1;
    resp.id = req->id;
    if (strcmp(req->method, "/kvstore.v1.KV/Clear") == 0) {
        Kvstore__V1__ClearRequest *cr = kvstore__v1__clear_request__unpack(
            NULL, req->payload.len, req->payload.data);
        clear.found = cr && !(cr->key.len == 6 && memcmp(cr->key.data, "absent", 6) == 0);
        if (clear.found)
            clear.value = B("old");
        if (cr)
            kvstore__v1__clear_request__free_unpacked(cr, NULL);
        resp.payload = (ProtobufCBinaryData){ kvstore__v1__clear_response__pack(&clear, payload),
                                              payload };
    } else if (strcmp(req->method, "/kvstore.v1.KV/Set") != 0) {
        resp.code = KVSTORE__V1__STATUS_CODE__UNIMPLEMENTED;
        resp.message = (char *)"unknown method";
    }
    kvstore__v1__rpc_request__free_unpacked(req, NULL);
    n = kvstore__v1__rpc_response__get_packed_size(&resp);
    if (n + KV_FRAME_PREFIX_MAX > sizeof frame)
        return -1;
    pre = kv_frame_put_prefix(frame, (uint32_t)n);
    kvstore__v1__rpc_response__pack(&resp, frame + pre);
    return kv_test_send_all(fd, frame, pre + n);
}

/* The child: serves the first connection on LFD until it closes, for 30
 * seconds at most (should the test fail before it connects). */
static void fake_v1_serve(int lfd)
{
    uint8_t buf[4096];
    size_t len = 0, off, blen;
    int fd;

    alarm(30);
    fd = accept(lfd, NULL, NULL);

    while (fd >= 0) {
        kv_frame_result fr = kv_frame_decode(buf, len, sizeof buf - KV_FRAME_PREFIX_MAX,
                                             &off, &blen);
        if (fr == KV_FRAME_PARTIAL) {
            ssize_t got = recv(fd, buf + len, sizeof buf - len, 0);
            if (got <= 0)
                break;
            len += (size_t)got;
            continue;
        }
        if (fr != KV_FRAME_OK || fake_v1_answer(fd, buf + off, blen) < 0)
            break;
        len -= off + blen;
        memmove(buf, buf + off + blen, len);
    }
    _exit(0);
}

static void fake_v1_start(fake_v1 *f)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof a;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 1), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
    snprintf(f->endpoint, sizeof f->endpoint, "127.0.0.1:%d", ntohs(a.sin_port));
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0)
        fake_v1_serve(lfd);
    close(lfd);
}

/* Waits for the child, which ends when the client closes its connection. */
static void fake_v1_wait(fake_v1 *f)
{
    int status;

    assert_int_equal(waitpid(f->pid, &status, 0), f->pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A conditional write that a server before v2 applied unconditionally is
 * not reported as a success. */
static void cas_before_v2(void **state)
{
    static const char why[] = "the server does not support conditional writes (a server "
                              "before protocol v2): the write was applied without its check";
    char err[256];
    fake_v1 f;
    kv_client *c;
    uint64_t rev = 9;
    uint8_t *v = (uint8_t *)why;
    size_t vlen = 9;
    int found = 1;

    (void)state;
    fake_v1_start(&f);
    c = kv_client_connect(f.endpoint, KV_TEST_TIMEOUT_MS, err, sizeof err);
    assert_non_null(c);

    assert_int_equal(kv_client_cas(c, "k", 1, "v", 1, 0, &rev), KV_UNIMPLEMENTED);
    assert_int_equal(rev, 0);
    assert_int_equal(kv_client_last_status(c), KV_UNIMPLEMENTED);
    assert_string_equal(kv_client_last_message(c), why);
    assert_int_equal(kv_client_cas(c, "k", 1, "v", 1, 7, NULL), KV_UNIMPLEMENTED);

    rev = 9;
    assert_int_equal(kv_client_cas_clear(c, "k", 1, 3, &found, &v, &vlen, &rev),
                     KV_UNIMPLEMENTED);
    assert_false(found);
    assert_null(v);
    assert_int_equal(vlen, 0);
    assert_int_equal(rev, 0);
    assert_string_equal(kv_client_last_message(c), why);
    assert_int_equal(kv_client_cas_clear(c, "k", 1, 3, NULL, NULL, NULL, NULL),
                     KV_UNIMPLEMENTED);

    /* Nothing was found, so nothing was written: no revision is right. */
    assert_int_equal(kv_client_cas_clear(c, "absent", 6, 0, &found, &v, &vlen, &rev), KV_OK);
    assert_false(found);
    free(v);
    /* Plain writes: revision 0 is all such a server can say, and no error. */
    assert_int_equal(kv_client_set_rev(c, "k", 1, "v", 1, &rev), KV_OK);
    assert_int_equal(rev, 0);
    assert_int_equal(kv_client_clear_rev(c, "k", 1, &found, &v, &vlen, &rev), KV_OK);
    assert_true(found);
    assert_int_equal(vlen, 3);
    assert_memory_equal(v, "old", 3);
    free(v);
    kv_client_free(c);
    fake_v1_wait(&f);
}

/* Reads the whole range REQ selects, PAGE keys at a time, into KEYS (a
 * NUL-separated list); returns how many keys and checks the page count. */
static size_t read_all(kv_client *c, Kvstore__V1__RangeRequest req, uint32_t page,
                       char *keys, size_t len, size_t *pages)
{
    uint8_t *bounds = NULL;
    size_t n = 0, off = 0;
    int more;

    req.limit = page;
    *pages = 0;
    do {
        Kvstore__V1__RangeResponse *resp;
        assert_int_equal(kv_client_range(c, &req, &resp), KV_OK);
        assert_true(resp->n_kvs <= page);
        for (size_t i = 0; i < resp->n_kvs; i++) {
            ProtobufCBinaryData k = resp->kvs[i]->key;
            assert_true(off + k.len + 1 <= len);
            memcpy(keys + off, k.data, k.len);
            off += k.len;
            keys[off++] = 0;
            n++;
        }
        (*pages)++;
        more = kv_client_range_next(&req, resp, &bounds);
        assert_true(more >= 0);
        kvstore__v1__range_response__free_unpacked(resp, NULL);
    } while (more);
    free(bounds);
    return n;
}

static void range_pages(void **state)
{
    kv_client *c = ((kv_fixture *)*state)->c;
    Kvstore__V1__RangeRequest req = KVSTORE__V1__RANGE_REQUEST__INIT;
    char keys[256];
    size_t pages;

    /* Keys around the prefix "p\xff": its end is "q", not "p\x00". */
    static const char *const all[] = { "o", "p", "p\xff", "p\xff\x01", "p\xff\xff", "q", "qa" };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        set_ok(c, all[i], "v");

    req.prefix = B("p\xff");
    assert_int_equal(read_all(c, req, 1, keys, sizeof keys, &pages), 3);
    assert_memory_equal(keys, "p\xff\0p\xff\x01\0p\xff\xff\0", 11);
    assert_int_equal(pages, 3);

    req.reverse = 1;
    assert_int_equal(read_all(c, req, 2, keys, sizeof keys, &pages), 3);
    assert_memory_equal(keys, "p\xff\xff\0p\xff\x01\0p\xff\0", 11);
    assert_int_equal(pages, 2);

    req = (Kvstore__V1__RangeRequest)KVSTORE__V1__RANGE_REQUEST__INIT;
    req.start = B("p");
    req.end = B("q");
    assert_int_equal(read_all(c, req, 2, keys, sizeof keys, &pages), 4);
    assert_memory_equal(keys, "p\0p\xff\0p\xff\x01\0p\xff\xff\0", 13);
    req.start = B("");
    req.end = B("");
    assert_int_equal(read_all(c, req, 3, keys, sizeof keys, &pages), 7);
    assert_int_equal(pages, 3);

    /* count_only: one answer, no page after it. */
    Kvstore__V1__RangeResponse *resp;
    req.count_only = 1;
    req.limit = 1;
    assert_int_equal(kv_client_range(c, &req, &resp), KV_OK);
    assert_int_equal(resp->count, 7);
    assert_int_equal(resp->n_kvs, 0);
    uint8_t *bounds = NULL;
    assert_int_equal(kv_client_range_next(&req, resp, &bounds), 0);
    assert_null(bounds);
    kvstore__v1__range_response__free_unpacked(resp, NULL);

    /* A refused request (prefix with start): NULL page. */
    req.prefix = B("p");
    req.start = B("a");
    resp = (Kvstore__V1__RangeResponse *)1;
    assert_int_equal(kv_client_range(c, &req, &resp), KV_INVALID_ARGUMENT);
    assert_null(resp);
}

/* kv_client_range_next on made-up pages: the bounds it computes. */
static void range_next_bounds(void **state)
{
    Kvstore__V1__KeyValue kv = KVSTORE__V1__KEY_VALUE__INIT, *kvs[] = { &kv };
    Kvstore__V1__RangeResponse page = KVSTORE__V1__RANGE_RESPONSE__INIT;
    Kvstore__V1__RangeRequest req = KVSTORE__V1__RANGE_REQUEST__INIT;
    uint8_t *bounds = NULL;

    (void)state;
    page.n_kvs = 1;
    page.kvs = kvs;
    page.more = 1;
    kv.key = B("ab\x00z");

    req.prefix = B("a\xff\xff");        /* the end of the prefix: "b" */
    assert_int_equal(kv_client_range_next(&req, &page, &bounds), 1);
    assert_bytes(req.start, "ab\x00z\x00", 5);
    assert_bytes(req.end, "b", 1);
    assert_int_equal(req.prefix.len, 0);

    /* Again, from bounds that live in the buffer it replaces. */
    kv.key = B("a\xff\xff\x07");
    assert_int_equal(kv_client_range_next(&req, &page, &bounds), 1);
    assert_bytes(req.start, "a\xff\xff\x07\x00", 5);
    assert_bytes(req.end, "b", 1);

    req = (Kvstore__V1__RangeRequest)KVSTORE__V1__RANGE_REQUEST__INIT;
    req.prefix = B("\xff\xff");          /* no key after it: no upper bound */
    assert_int_equal(kv_client_range_next(&req, &page, &bounds), 1);
    assert_int_equal(req.end.len, 0);

    req = (Kvstore__V1__RangeRequest)KVSTORE__V1__RANGE_REQUEST__INIT;
    req.prefix = B("a");
    req.reverse = 1;                     /* reversed: start stays, end = last key */
    kv.key = B("am");
    assert_int_equal(kv_client_range_next(&req, &page, &bounds), 1);
    assert_bytes(req.start, "a", 1);
    assert_bytes(req.end, "am", 2);
    kv.key = B("ak");
    assert_int_equal(kv_client_range_next(&req, &page, &bounds), 1);
    assert_bytes(req.start, "a", 1);
    assert_bytes(req.end, "ak", 2);

    page.more = 0;
    assert_int_equal(kv_client_range_next(&req, &page, &bounds), 0);
    assert_bytes(req.end, "ak", 2);      /* left as it was */
    free(bounds);
}

static void clear_range(void **state)
{
    kv_client *c = ((kv_fixture *)*state)->c;
    Kvstore__V1__ClearRangeRequest req = KVSTORE__V1__CLEAR_RANGE_REQUEST__INIT;
    uint64_t deleted = 9, rev = 9;

    set_ok(c, "a/1", "1");
    set_ok(c, "a/2", "2");
    set_ok(c, "b", "3");
    req.prefix = B("a/");
    assert_int_equal(kv_client_clear_range(c, &req, &deleted, &rev), KV_OK);
    assert_int_equal(deleted, 2);
    assert_int_equal(rev, 4);
    assert_int_equal(kv_client_clear_range(c, &req, &deleted, &rev), KV_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(rev, 0);
    /* No selector: refused, so that a forgotten field never wipes the store. */
    req.prefix = B("");
    deleted = rev = 9;
    assert_int_equal(kv_client_clear_range(c, &req, &deleted, &rev), KV_INVALID_ARGUMENT);
    assert_int_equal(deleted, 0);
    assert_int_equal(rev, 0);
    req.start = B("\x00");
    assert_int_equal(kv_client_clear_range(c, &req, NULL, NULL), KV_OK);
    assert_int_equal(kv_client_get(c, "b", 1, NULL, NULL), KV_NOT_FOUND);
}

static void txn(void **state)
{
    kv_client *c = ((kv_fixture *)*state)->c;
    Kvstore__V1__Compare cmp = KVSTORE__V1__COMPARE__INIT, *cmps[] = { &cmp };
    Kvstore__V1__SetRequest set = KVSTORE__V1__SET_REQUEST__INIT;
    Kvstore__V1__GetRequest get = KVSTORE__V1__GET_REQUEST__INIT;
    Kvstore__V1__TxnOp op_set = KVSTORE__V1__TXN_OP__INIT, op_get = KVSTORE__V1__TXN_OP__INIT;
    Kvstore__V1__TxnOp *success[] = { &op_set, &op_get }, *failure[] = { &op_get };
    Kvstore__V1__TxnRequest req = KVSTORE__V1__TXN_REQUEST__INIT;
    Kvstore__V1__TxnResponse *resp;

    set_ok(c, "counter", "5");
    cmp.key = B("counter");
    cmp.target = KVSTORE__V1__COMPARE__TARGET__MOD_REVISION;
    cmp.op = KVSTORE__V1__COMPARE__OP__EQUAL;
    cmp.number = 1;
    set.key = B("counter");
    set.value = B("6");
    get.key = B("counter");
    op_set.op_case = KVSTORE__V1__TXN_OP__OP_SET;
    op_set.set = &set;
    op_get.op_case = KVSTORE__V1__TXN_OP__OP_GET;
    op_get.get = &get;
    req.n_compare = 1;
    req.compare = cmps;
    req.n_success = 2;
    req.success = success;
    req.n_failure = 1;
    req.failure = failure;

    assert_int_equal(kv_client_txn(c, &req, &resp), KV_OK);
    assert_true(resp->succeeded);
    assert_int_equal(resp->n_results, 2);
    assert_int_equal(resp->results[0]->result_case, KVSTORE__V1__TXN_OP_RESULT__RESULT_SET);
    assert_int_equal(resp->results[0]->set->revision, 2);
    assert_bytes(resp->results[1]->get->value, "6", 1);
    assert_int_equal(resp->revision, 2);
    kvstore__v1__txn_response__free_unpacked(resp, NULL);

    /* mod_revision is 2 now: the failure branch. */
    assert_int_equal(kv_client_txn(c, &req, &resp), KV_OK);
    assert_false(resp->succeeded);
    assert_int_equal(resp->n_results, 1);
    assert_bytes(resp->results[0]->get->value, "6", 1);
    kvstore__v1__txn_response__free_unpacked(resp, NULL);

    /* The same key written twice: refused as a whole. */
    success[1] = &op_set;
    resp = (Kvstore__V1__TxnResponse *)1;
    cmp.number = 2;
    assert_int_equal(kv_client_txn(c, &req, &resp), KV_INVALID_ARGUMENT);
    assert_null(resp);
    assert_true(*kv_client_last_message(c));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(revisions, kv_fixture_setup, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(cas, kv_fixture_setup, kv_fixture_teardown),
        cmocka_unit_test(cas_before_v2),
        cmocka_unit_test_setup_teardown(range_pages, kv_fixture_setup, kv_fixture_teardown),
        cmocka_unit_test(range_next_bounds),
        cmocka_unit_test_setup_teardown(clear_range, kv_fixture_setup, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(txn, kv_fixture_setup, kv_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
