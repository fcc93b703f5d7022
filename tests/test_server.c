/* test_server.c - the service end to end: each test starts a real kvstored
 * on a free port (support/server.c), talks to it through the C client
 * library or raw bytes, and asserts on what comes back. Teardown checks the
 * server still exits 0 on SIGTERM, so no test may leave it broken. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <kvstore/client.h>
#include "frame.h"
#include "support/fixture.h"

#define TIMEOUT_MS KV_TEST_TIMEOUT_MS

typedef kv_fixture fixture;
#define assert_value kv_assert_value

static int setup_small_frames(void **state)
{
    static const char *const extra[] = { "--max-frame-bytes", "1024", NULL };
    return kv_fixture_start(state, extra);
}

static void ping_without_message_answers_pong(void **state)
{
    fixture *f = *state;
    char *reply;

    assert_int_equal(kv_client_ping(f->c, NULL, &reply), KV_OK);
    assert_string_equal(reply, "PONG");
    free(reply);
}

static void ping_with_message_echoes_it(void **state)
{
    fixture *f = *state;
    char *reply;

    assert_int_equal(kv_client_ping(f->c, "hello there", &reply), KV_OK);
    assert_string_equal(reply, "hello there");
    free(reply);
}

/* The seed's test: set, override, get answers the second value. */
static void set_then_override_then_get(void **state)
{
    fixture *f = *state;

    assert_int_equal(kv_client_set(f->c, "key", 3, "value1", 6), KV_OK);
    assert_int_equal(kv_client_set(f->c, "key", 3, "value2", 6), KV_OK);
    assert_value(f->c, "key", 3, "value2", 6);
}

static void on_set_key(const Kvstore__V1__SetResponse *m, void *data)
{
    ProtobufCBinaryData *out = data;
    assert_non_null(m);
    out->len = m->key.len;
    out->data = malloc(m->key.len);
    memcpy(out->data, m->key.data, m->key.len);
}

static void set_answers_the_key(void **state)
{
    fixture *f = *state;
    Kvstore__V1__SetRequest req = KVSTORE__V1__SET_REQUEST__INIT;
    ProtobufCBinaryData got = { 0, NULL };

    req.key.data = (uint8_t *)"the-key";
    req.key.len = 7;
    kvstore__v1__kv__set(kv_client_service(f->c), &req, on_set_key, &got);
    assert_int_equal(got.len, 7);
    assert_memory_equal(got.data, "the-key", 7);
    free(got.data);
}

static void on_get_expect_null(const Kvstore__V1__GetResponse *m, void *data)
{
    *(int *)data = m == NULL ? 1 : 2;
}

static void get_missing_is_not_found(void **state)
{
    fixture *f = *state;
    Kvstore__V1__GetRequest req = KVSTORE__V1__GET_REQUEST__INIT;
    int seen = 0;

    /* Through the generated stub: the closure gets NULL, the status says why. */
    req.key.data = (uint8_t *)"nope";
    req.key.len = 4;
    kvstore__v1__kv__get(kv_client_service(f->c), &req, on_get_expect_null, &seen);
    assert_int_equal(seen, 1);
    assert_int_equal(kv_client_last_status(f->c), KV_NOT_FOUND);
    assert_string_equal(kv_client_last_message(f->c), "key not found");

    uint8_t *v = (uint8_t *)"x";
    size_t vl = 9;
    assert_int_equal(kv_client_get(f->c, "nope", 4, &v, &vl), KV_NOT_FOUND);
    assert_null(v);
    assert_int_equal(vl, 0);
}

static void clear_present_answers_old_value_and_removes(void **state)
{
    fixture *f = *state;
    uint8_t *old;
    size_t olen;
    int found = 0;

    assert_int_equal(kv_client_set(f->c, "k", 1, "old", 3), KV_OK);
    assert_int_equal(kv_client_clear(f->c, "k", 1, &found, &old, &olen), KV_OK);
    assert_true(found);
    assert_int_equal(olen, 3);
    assert_memory_equal(old, "old", 3);
    free(old);
    assert_int_equal(kv_client_get(f->c, "k", 1, NULL, NULL), KV_NOT_FOUND);
}

static void clear_missing_is_ok_not_found(void **state)
{
    fixture *f = *state;
    uint8_t *old;
    size_t olen;
    int found = 1;

    assert_int_equal(kv_client_clear(f->c, "ghost", 5, &found, &old, &olen), KV_OK);
    assert_false(found);
    assert_int_equal(olen, 0);
    free(old);
}

static void binary_keys_and_values_round_trip(void **state)
{
    fixture *f = *state;
    const uint8_t k1[] = { 'a', 0, 'b' }, k2[] = { 'a', 0, 'c' }, k3[] = { 0xff, 0xfe, 0 };
    uint8_t all[256];

    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)(255 - i);
    assert_int_equal(kv_client_set(f->c, k1, 3, all, 256), KV_OK);
    assert_int_equal(kv_client_set(f->c, k2, 3, "\0\0", 2), KV_OK);
    assert_int_equal(kv_client_set(f->c, k3, 3, "", 0), KV_OK);
    assert_value(f->c, k1, 3, all, 256);
    assert_value(f->c, k2, 3, "\0\0", 2);
    assert_value(f->c, k3, 3, "", 0);     /* an empty value is a value */
    assert_int_equal(kv_client_get(f->c, "a", 1, NULL, NULL), KV_NOT_FOUND);
}

static void empty_key_is_invalid_argument(void **state)
{
    fixture *f = *state;

    assert_int_equal(kv_client_set(f->c, "", 0, "v", 1), KV_INVALID_ARGUMENT);
    assert_string_equal(kv_client_last_message(f->c), "key must not be empty");
    assert_int_equal(kv_client_get(f->c, "", 0, NULL, NULL), KV_INVALID_ARGUMENT);
    assert_int_equal(kv_client_clear(f->c, "", 0, NULL, NULL, NULL), KV_INVALID_ARGUMENT);
}

static void four_mib_value_round_trips(void **state)
{
    fixture *f = *state;
    size_t n = 4u << 20;
    uint8_t *big = malloc(n);

    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t)(i * 2654435761u >> 13);
    assert_int_equal(kv_client_set(f->c, "big", 3, big, n), KV_OK);
    assert_value(f->c, "big", 3, big, n);
    free(big);
}

typedef struct order_check {
    int next;       /* index the next closure must carry */
    int bad;
} order_check;

typedef struct order_call {
    order_check *chk;
    int index;
} order_call;

static void on_pipelined_get(const Kvstore__V1__GetResponse *m, void *data)
{
    order_call *oc = data;
    char want[32];

    snprintf(want, sizeof want, "value-%d", oc->index);
    if (oc->index != oc->chk->next++ || !m || m->value.len != strlen(want)
        || memcmp(m->value.data, want, m->value.len) != 0)
        oc->chk->bad++;
}

static void thousand_pipelined_requests_answer_in_order(void **state)
{
    fixture *f = *state;
    enum { N = 1000 };
    order_call calls[N];
    order_check chk = { 0, 0 };
    char key[32], val[32];

    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        snprintf(val, sizeof val, "value-%d", i);
        assert_int_equal(kv_client_set(f->c, key, strlen(key), val, strlen(val)), KV_OK);
    }
    kv_client_pipeline_begin(f->c);
    for (int i = 0; i < N; i++) {
        Kvstore__V1__GetRequest req = KVSTORE__V1__GET_REQUEST__INIT;
        snprintf(key, sizeof key, "key-%d", i);
        req.key.data = (uint8_t *)key;
        req.key.len = strlen(key);
        calls[i] = (order_call){ &chk, i };
        kvstore__v1__kv__get(kv_client_service(f->c), &req, on_pipelined_get, &calls[i]);
    }
    assert_int_equal(kv_client_pipeline_end(f->c), KV_OK);
    assert_int_equal(chk.next, N);
    assert_int_equal(chk.bad, 0);
}

typedef struct worker {
    const char *endpoint;
    int id;
    int failures;
} worker;

static void *client_worker(void *arg)
{
    worker *w = arg;
    kv_client *c = kv_client_connect(w->endpoint, TIMEOUT_MS, NULL, 0);
    char key[32], val[32];

    if (!c) {
        w->failures = -1;
        return NULL;
    }
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "w%d-%d", w->id, i);
        snprintf(val, sizeof val, "v%d-%d", w->id, i * 7);
        uint8_t *got = NULL;
        size_t glen = 0;
        if (kv_client_set(c, key, strlen(key), val, strlen(val)) != KV_OK
            || kv_client_get(c, key, strlen(key), &got, &glen) != KV_OK
            || glen != strlen(val) || memcmp(got, val, glen) != 0)
            w->failures++;
        free(got);
    }
    kv_client_free(c);
    return NULL;
}

static void concurrent_clients_each_see_their_writes(void **state)
{
    fixture *f = *state;
    enum { N = 8 };
    pthread_t t[N];
    worker w[N];

    for (int i = 0; i < N; i++) {
        w[i] = (worker){ f->srv.endpoint, i, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, client_worker, &w[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    /* And they all share one store. */
    assert_value(f->c, "w3-10", 5, "v3-70", 5);
}

static void unknown_method_is_unimplemented_and_connection_lives(void **state)
{
    fixture *f = *state;
    uint8_t *resp;
    size_t rlen;
    char *reply;

    assert_int_equal(kv_client_call_raw(f->c, "/kvstore.v1.KV/Explode", NULL, 0, &resp, &rlen),
                     KV_UNIMPLEMENTED);
    assert_non_null(strstr(kv_client_last_message(f->c), "/kvstore.v1.KV/Explode"));
    assert_int_equal(kv_client_call_raw(f->c, "/other.Service/Get", NULL, 0, &resp, &rlen),
                     KV_UNIMPLEMENTED);
    assert_int_equal(kv_client_ping(f->c, "still here", &reply), KV_OK);
    assert_string_equal(reply, "still here");
    free(reply);
}

static void bad_payload_is_invalid_argument_with_its_id(void **state)
{
    fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);
    const uint8_t garbage[] = { 0x0a, 0x7f, 0x01 };     /* key field claims 127 bytes */

    assert_true(fd >= 0);
    assert_int_equal(kv_test_send_request(fd, 42, "/kvstore.v1.KV/Get", garbage, sizeof garbage), 0);
    Kvstore__V1__RpcResponse *r = kv_test_read_response(fd);
    assert_non_null(r);
    assert_int_equal(r->id, 42);
    assert_int_equal(r->code, KV_INVALID_ARGUMENT);
    assert_non_null(strstr(r->message, "kvstore.v1.GetRequest"));
    kvstore__v1__rpc_response__free_unpacked(r, NULL);

    /* Same connection keeps serving. */
    assert_int_equal(kv_test_send_request(fd, 43, "/kvstore.v1.KV/Ping", NULL, 0), 0);
    r = kv_test_read_response(fd);
    assert_non_null(r);
    assert_int_equal(r->id, 43);
    assert_int_equal(r->code, KV_OK);
    kvstore__v1__rpc_response__free_unpacked(r, NULL);
    close(fd);
}

static void bad_envelope_is_invalid_argument_with_id_zero(void **state)
{
    fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);
    /* A frame of 3 bytes: field 1 with wire type 7 (does not exist). */
    const uint8_t frame[] = { 0x03, 0x0f, 0x01, 0x02 };

    assert_true(fd >= 0);
    assert_int_equal(kv_test_send_all(fd, frame, sizeof frame), 0);
    Kvstore__V1__RpcResponse *r = kv_test_read_response(fd);
    assert_non_null(r);
    assert_int_equal(r->id, 0);
    assert_int_equal(r->code, KV_INVALID_ARGUMENT);
    kvstore__v1__rpc_response__free_unpacked(r, NULL);

    assert_int_equal(kv_test_send_request(fd, 7, "/kvstore.v1.KV/Ping", NULL, 0), 0);
    r = kv_test_read_response(fd);
    assert_non_null(r);
    assert_int_equal(r->id, 7);
    assert_int_equal(r->code, KV_OK);
    kvstore__v1__rpc_response__free_unpacked(r, NULL);
    close(fd);
}

static void zero_length_frame_is_unimplemented_empty_method(void **state)
{
    fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);

    assert_true(fd >= 0);
    assert_int_equal(kv_test_send_all(fd, "\0", 1), 0);
    Kvstore__V1__RpcResponse *r = kv_test_read_response(fd);
    assert_non_null(r);
    assert_int_equal(r->id, 0);
    assert_int_equal(r->code, KV_UNIMPLEMENTED);
    kvstore__v1__rpc_response__free_unpacked(r, NULL);
    close(fd);
}

/* Sends a frame whose body is BODY_LEN bytes of a valid Ping request padded
 * with an unknown field, so any accepted size decodes. */
static int send_ping_of_size(int fd, uint64_t id, size_t body_len)
{
    Kvstore__V1__RpcRequest req = KVSTORE__V1__RPC_REQUEST__INIT;
    req.id = id;
    req.method = "/kvstore.v1.KV/Ping";
    size_t n = kvstore__v1__rpc_request__get_packed_size(&req);
    uint8_t *buf = calloc(1, body_len + 16);
    size_t pre = kv_frame_put_prefix(buf, (uint32_t)body_len);

    kvstore__v1__rpc_request__pack(&req, buf + pre);
    /* Unknown field 15, length-delimited, filling the rest (2-byte length). */
    size_t pad = body_len - n - 3;
    buf[pre + n] = (15 << 3) | 2;
    buf[pre + n + 1] = (uint8_t)(pad | 0x80);
    buf[pre + n + 2] = (uint8_t)(pad >> 7);
    int rc = kv_test_send_all(fd, buf, pre + body_len);
    free(buf);
    return rc;
}

static void frame_of_exactly_the_maximum_is_accepted(void **state)
{
    fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);

    assert_int_equal(send_ping_of_size(fd, 5, 1024), 0);
    Kvstore__V1__RpcResponse *r = kv_test_read_response(fd);
    assert_non_null(r);
    assert_int_equal(r->id, 5);
    assert_int_equal(r->code, KV_OK);
    kvstore__v1__rpc_response__free_unpacked(r, NULL);
    close(fd);
}

static void oversized_frame_gets_resource_exhausted_then_close(void **state)
{
    fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);
    uint8_t buf[64];

    assert_true(fd >= 0);
    /* A Set before the bad frame is answered; a Set after it in the same
     * write must not run. */
    Kvstore__V1__SetRequest set = KVSTORE__V1__SET_REQUEST__INIT;
    set.key.data = (uint8_t *)"before";
    set.key.len = 6;
    size_t n = kvstore__v1__set_request__pack(&set, buf);
    assert_int_equal(kv_test_send_request(fd, 1, "/kvstore.v1.KV/Set", buf, n), 0);
    uint8_t pre[8];
    size_t pl = kv_frame_put_prefix(pre, 1025);
    assert_int_equal(kv_test_send_all(fd, pre, pl), 0);
    set.key.data = (uint8_t *)"after";
    set.key.len = 5;
    n = kvstore__v1__set_request__pack(&set, buf);
    assert_int_equal(kv_test_send_request(fd, 2, "/kvstore.v1.KV/Set", buf, n), 0);

    Kvstore__V1__RpcResponse *r = kv_test_read_response(fd);
    assert_non_null(r);
    assert_int_equal(r->id, 1);
    assert_int_equal(r->code, KV_OK);
    kvstore__v1__rpc_response__free_unpacked(r, NULL);
    r = kv_test_read_response(fd);
    assert_non_null(r);
    assert_int_equal(r->id, 0);
    assert_int_equal(r->code, KV_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(r->message, "1025"));
    kvstore__v1__rpc_response__free_unpacked(r, NULL);
    assert_true(kv_test_peer_closed(fd));
    close(fd);

    assert_int_equal(kv_client_get(f->c, "before", 6, NULL, NULL), KV_OK);
    assert_int_equal(kv_client_get(f->c, "after", 5, NULL, NULL), KV_NOT_FOUND);
}

typedef struct seen_status {
    kv_client *c;
    kv_status got[3];
    int n;
} seen_status;

static void on_any(const ProtobufCMessage *m, void *data)
{
    seen_status *s = data;
    s->got[s->n++] = m ? KV_OK : kv_client_last_status(s->c);
}

/* Regression: a refused frame in a pipeline keeps its own
 * RESOURCE_EXHAUSTED; the server closes the connection after it, and the
 * later calls (reads) are sent again on a new one. */
static void oversized_call_in_a_pipeline_keeps_its_status(void **state)
{
    fixture *f = *state;
    Kvstore__V1__PingRequest ping = KVSTORE__V1__PING_REQUEST__INIT;
    Kvstore__V1__SetRequest set = KVSTORE__V1__SET_REQUEST__INIT;
    static uint8_t big[2000];
    seen_status s = { f->c, { 0 }, 0 };

    set.key.data = (uint8_t *)"k";
    set.key.len = 1;
    set.value.data = big;
    set.value.len = sizeof big;
    kv_client_pipeline_begin(f->c);
    kvstore__v1__kv__ping(kv_client_service(f->c), &ping, (Kvstore__V1__PingResponse_Closure)on_any, &s);
    kvstore__v1__kv__set(kv_client_service(f->c), &set, (Kvstore__V1__SetResponse_Closure)on_any, &s);
    kvstore__v1__kv__ping(kv_client_service(f->c), &ping, (Kvstore__V1__PingResponse_Closure)on_any, &s);
    assert_int_equal(kv_client_pipeline_end(f->c), KV_OK);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.got[0], KV_OK);
    assert_int_equal(s.got[1], KV_RESOURCE_EXHAUSTED);
    assert_int_equal(s.got[2], KV_OK);

    /* Blocking: the refused call itself says RESOURCE_EXHAUSTED; the next
     * call connects again. */
    kv_client_free(f->c);
    f->c = kv_client_connect(f->srv.endpoint, TIMEOUT_MS, NULL, 0);
    assert_int_equal(kv_client_set(f->c, "k", 1, big, sizeof big), KV_RESOURCE_EXHAUSTED);
    assert_int_equal(kv_client_ping(f->c, NULL, NULL), KV_OK);
}

static void malformed_length_prefix_closes_only_that_connection(void **state)
{
    fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);
    const uint8_t six[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };   /* 6-byte varint */
    const uint8_t big5[] = { 0xff, 0xff, 0xff, 0xff, 0x7f };        /* > 32 bits */
    char *reply;

    assert_int_equal(kv_test_send_all(fd, six, sizeof six), 0);
    assert_true(kv_test_peer_closed(fd));
    close(fd);
    fd = kv_test_connect(f->srv.port);
    assert_int_equal(kv_test_send_all(fd, big5, sizeof big5), 0);
    assert_true(kv_test_peer_closed(fd));
    close(fd);
    assert_int_equal(kv_client_ping(f->c, NULL, &reply), KV_OK);
    free(reply);
}

static void client_vanishing_mid_frame_harms_no_one(void **state)
{
    fixture *f = *state;
    char *reply;

    for (int i = 0; i < 20; i++) {
        int fd = kv_test_connect(f->srv.port);
        const uint8_t partial[] = { 0x20, 0x08, 0x01, 0x12 };  /* 32 bytes announced, 3 sent */
        assert_true(fd >= 0);
        assert_int_equal(kv_test_send_all(fd, partial, sizeof partial), 0);
        close(fd);
    }
    assert_int_equal(kv_client_set(f->c, "alive", 5, "yes", 3), KV_OK);
    assert_value(f->c, "alive", 5, "yes", 3);
    assert_int_equal(kv_client_ping(f->c, NULL, &reply), KV_OK);
    free(reply);
}

static void frames_split_across_writes_are_reassembled(void **state)
{
    fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);
    Kvstore__V1__RpcRequest req = KVSTORE__V1__RPC_REQUEST__INIT;
    uint8_t buf[128];

    req.id = 99;
    req.method = "/kvstore.v1.KV/Ping";
    size_t n = kvstore__v1__rpc_request__get_packed_size(&req);
    size_t pre = kv_frame_put_prefix(buf, (uint32_t)n);
    kvstore__v1__rpc_request__pack(&req, buf + pre);
    for (size_t i = 0; i < pre + n; i++) {      /* one byte per write */
        assert_int_equal(kv_test_send_all(fd, buf + i, 1), 0);
        usleep(1000);
    }
    Kvstore__V1__RpcResponse *r = kv_test_read_response(fd);
    assert_non_null(r);
    assert_int_equal(r->id, 99);
    assert_int_equal(r->code, KV_OK);
    kvstore__v1__rpc_response__free_unpacked(r, NULL);
    close(fd);
}

static void dead_server_fails_calls_instead_of_hanging(void **state)
{
    fixture *f = *state;
    char err[256];

    kv_test_server_stop(&f->srv);
    assert_int_equal(kv_client_ping(f->c, NULL, NULL), KV_UNAVAILABLE);
    assert_int_equal(kv_client_get(f->c, "k", 1, NULL, NULL), KV_UNAVAILABLE);
    assert_null(kv_client_connect(f->srv.endpoint, 1000, err, sizeof err));
    assert_non_null(strstr(err, "cannot connect"));
    /* Teardown expects a server to stop: start a fresh one. */
    assert_int_equal(kv_test_server_start(&f->srv, NULL), 0);
}

typedef struct stats_copy {
    int ok;
    uint64_t keys, data_bytes, conns_current, conns_total, requests, errors, rss;
    uint64_t calls[8], call_errors[8];
    char engine[32], method2[64];
} stats_copy;

static void on_stats(const Kvstore__V1__StatsResponse *m, void *data)
{
    stats_copy *s = data;

    if (!m)
        return;
    s->ok = 1;
    s->keys = m->keys;
    s->data_bytes = m->data_bytes;
    s->conns_current = m->connections_current;
    s->conns_total = m->connections_total;
    s->requests = m->requests_total;
    s->errors = m->errors_total;
    s->rss = m->resident_memory_bytes;
    snprintf(s->engine, sizeof s->engine, "%s", m->engine);
    for (size_t i = 0; i < m->n_methods && i < 8; i++) {
        s->calls[i] = m->methods[i]->calls;
        s->call_errors[i] = m->methods[i]->errors;
    }
    if (m->n_methods > 1)
        snprintf(s->method2, sizeof s->method2, "%s", m->methods[1]->method);
}

static void stats_count_calls_keys_and_connections(void **state)
{
    fixture *f = *state;
    Kvstore__V1__StatsRequest req = KVSTORE__V1__STATS_REQUEST__INIT;
    kv_client *other = kv_client_connect(f->srv.endpoint, TIMEOUT_MS, NULL, 0);
    stats_copy st = { 0 };

    assert_non_null(other);
    assert_int_equal(kv_client_set(f->c, "ab", 2, "cdef", 4), KV_OK);
    assert_int_equal(kv_client_set(f->c, "x", 1, "y", 1), KV_OK);
    assert_int_equal(kv_client_get(f->c, "ab", 2, NULL, NULL), KV_OK);
    assert_int_equal(kv_client_get(f->c, "zz", 2, NULL, NULL), KV_NOT_FOUND);
    assert_int_equal(kv_client_call_raw(f->c, "/nope", NULL, 0, NULL, NULL), KV_UNIMPLEMENTED);
    kvstore__v1__kv__stats(kv_client_service(f->c), &req, on_stats, &st);
    assert_true(st.ok);
    assert_int_equal(st.keys, 2);
    assert_int_equal(st.data_bytes, 8);
    assert_int_equal(st.conns_current, 2);
    assert_int_equal(st.conns_total, 2);
    /* Methods in proto order: Ping, Get, Set, Clear, Stats. */
    assert_string_equal(st.method2, "/kvstore.v1.KV/Get");
    assert_int_equal(st.calls[1], 2);
    assert_int_equal(st.call_errors[1], 1);
    assert_int_equal(st.calls[2], 2);
    assert_int_equal(st.calls[4], 0);        /* this Stats call is not in yet */
    assert_int_equal(st.requests, 5);
    assert_int_equal(st.errors, 2);
    assert_string_equal(st.engine, kv_test_engine());
    assert_true(st.rss > 0);
    kv_client_free(other);
}

/* Sends Ping{message = MSG[0..LEN)} with id ID on FD, the request built by
 * hand so that any bytes go out as they are (a C string would stop at NUL),
 * and returns the answer. */
static Kvstore__V1__RpcResponse *ping_bytes(int fd, uint64_t id, const char *msg, size_t len)
{
    uint8_t req[140];

    assert_true(len < 128);
    req[0] = 0x0a;                      /* field 1, length-delimited */
    req[1] = (uint8_t)len;
    memcpy(req + 2, msg, len);
    assert_int_equal(kv_test_send_request(fd, id, "/kvstore.v1.KV/Ping", req, len + 2), 0);
    Kvstore__V1__RpcResponse *r = kv_test_read_response(fd);
    assert_non_null(r);
    assert_int_equal(r->id, id);
    return r;
}

/* Asserts that Ping answers OK with exactly the LEN bytes of MSG, read from
 * the raw PingResponse so that nothing after a NUL can go unseen. */
static void assert_ping_echoes(int fd, uint64_t id, const char *msg, size_t len)
{
    Kvstore__V1__RpcResponse *r = ping_bytes(fd, id, msg, len);

    assert_int_equal(r->code, KV_OK);
    assert_int_equal(r->payload.len, len + 2);
    assert_int_equal(r->payload.data[0], 0x0a);
    assert_int_equal(r->payload.data[1], len);
    assert_memory_equal(r->payload.data + 2, msg, len);
    kvstore__v1__rpc_response__free_unpacked(r, NULL);
}

static void ping_echoes_nul_bytes_exactly(void **state)
{
    fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);

    assert_true(fd >= 0);
    assert_ping_echoes(fd, 1, "ab\0cd", 5);
    assert_ping_echoes(fd, 2, "\0x", 2);
    assert_ping_echoes(fd, 3, "\0", 1);
    assert_ping_echoes(fd, 4, "x\0", 2);
    close(fd);
}

static void ping_echoes_multibyte_utf8_exactly(void **state)
{
    fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);
    /* "héllo ✓ 😀", then the edges: U+007F, U+0080, U+07FF, U+0800,
     * U+D7FF and U+E000 (either side of the surrogates), U+FFFF, U+10000,
     * U+10FFFF. */
    static const char hello[] = "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80";
    static const char edges[] = "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80"
                                "\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf";

    assert_true(fd >= 0);
    assert_ping_echoes(fd, 1, hello, sizeof hello - 1);
    assert_ping_echoes(fd, 2, edges, sizeof edges - 1);
    close(fd);
}

static void ping_with_invalid_utf8_is_invalid_argument_and_connection_lives(void **state)
{
    fixture *f = *state;
    int fd = kv_test_connect(f->srv.port);
    static const struct { const char *bytes; size_t len; } bad[] = {
        { "\xff", 1 },                  /* never in UTF-8 */
        { "a\xfe" "b", 3 },
        { "\x80", 1 },                  /* a continuation byte alone */
        { "\xc0\x80", 2 },              /* overlong NUL */
        { "\xc1\xbf", 2 },              /* overlong U+007F */
        { "\xe0\x80\xaf", 3 },          /* overlong '/' in three bytes */
        { "\xf0\x8f\xbf\xbf", 4 },      /* overlong U+FFFF in four */
        { "\xed\xa0\x80", 3 },          /* lone high surrogate U+D800 */
        { "\xed\xbf\xbf", 3 },          /* lone low surrogate U+DFFF */
        { "\xf4\x90\x80\x80", 4 },      /* U+110000, past Unicode */
        { "\xf5\x80\x80\x80", 4 },
        { "ok\xe2\x9c", 4 },            /* cut in the middle of a character */
        { "\xf0\x9f\x98", 3 },
        { "\xc3", 1 },
        { "\xc3(", 2 },                 /* lead byte, then no continuation */
    };

    assert_true(fd >= 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Kvstore__V1__RpcResponse *r = ping_bytes(fd, 100 + i, bad[i].bytes, bad[i].len);
        assert_int_equal(r->code, KV_INVALID_ARGUMENT);
        assert_non_null(strstr(r->message, "UTF-8"));
        assert_int_equal(r->payload.len, 0);
        kvstore__v1__rpc_response__free_unpacked(r, NULL);
    }
    /* The same connection, and the client library, keep being served. */
    assert_ping_echoes(fd, 200, "still here", 10);
    close(fd);
    char *reply;
    assert_int_equal(kv_client_ping(f->c, NULL, &reply), KV_OK);
    assert_string_equal(reply, "PONG");
    free(reply);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, kv_fixture_setup, kv_fixture_teardown)
#define TSMALL(fn) cmocka_unit_test_setup_teardown(fn, setup_small_frames, kv_fixture_teardown)
        T(ping_without_message_answers_pong),
        T(ping_with_message_echoes_it),
        T(ping_echoes_nul_bytes_exactly),
        T(ping_echoes_multibyte_utf8_exactly),
        T(ping_with_invalid_utf8_is_invalid_argument_and_connection_lives),
        T(set_then_override_then_get),
        T(set_answers_the_key),
        T(get_missing_is_not_found),
        T(clear_present_answers_old_value_and_removes),
        T(clear_missing_is_ok_not_found),
        T(binary_keys_and_values_round_trip),
        T(empty_key_is_invalid_argument),
        T(four_mib_value_round_trips),
        T(thousand_pipelined_requests_answer_in_order),
        T(concurrent_clients_each_see_their_writes),
        T(unknown_method_is_unimplemented_and_connection_lives),
        T(bad_payload_is_invalid_argument_with_its_id),
        T(bad_envelope_is_invalid_argument_with_id_zero),
        T(zero_length_frame_is_unimplemented_empty_method),
        TSMALL(frame_of_exactly_the_maximum_is_accepted),
        TSMALL(oversized_frame_gets_resource_exhausted_then_close),
        TSMALL(oversized_call_in_a_pipeline_keeps_its_status),
        T(malformed_length_prefix_closes_only_that_connection),
        T(client_vanishing_mid_frame_harms_no_one),
        T(frames_split_across_writes_are_reassembled),
        T(dead_server_fails_calls_instead_of_hanging),
        T(stats_count_calls_keys_and_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
