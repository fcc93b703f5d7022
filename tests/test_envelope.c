/* test_envelope.c - the hand-written envelope codec must agree with
 * protobuf-c exactly: same accept/reject decision and same fields for
 * every input (valid, truncated, mutated and random bytes), and the same
 * bytes when encoding answers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "envelope.h"
#include "arena.h"
#include "hotpack.h"
#include "pbview.h"
#include "support/wirecheck.h"
#include "kvstore/v1/kv.pb-c.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Decodes BUF with both codecs and asserts they agree. Returns whether it
 * was accepted. */
static int agree(const uint8_t *buf, size_t len)
{
    kv_envelope e;
    int ours = kv_envelope_decode(buf, len, &e) == 0;
    Kvstore__V1__RpcRequest *r = kvstore__v1__rpc_request__unpack(NULL, len, buf);

    if (!ours && r && kv_wire_stricter_than_protobuf_c(buf, len)) {
        kvstore__v1__rpc_request__free_unpacked(r, NULL);
        return 0;
    }
    if (ours != (r != NULL))
    {
        for (size_t i = 0; i < len; i++) fprintf(stderr, "%02x ", buf[i]);
        fail_msg("decision differs on %zu bytes: ours %d, protobuf-c %d", len, ours, r != NULL);
    }
    if (r) {
        assert_int_equal(e.id, r->id);
        assert_int_equal(e.method_len, strlen(r->method) + (memchr(e.method, 0, e.method_len) ? e.method_len - strlen(r->method) : 0));
        assert_memory_equal(e.method, r->method, strlen(r->method));
        assert_int_equal(e.payload_len, r->payload.len);
        if (r->payload.len)
            assert_memory_equal(e.payload, r->payload.data, r->payload.len);
        assert_int_equal(e.client_id_len, r->client_id.len);
        if (r->client_id.len)
            assert_memory_equal(e.client_id, r->client_id.data, r->client_id.len);
        assert_int_equal(e.seq, r->seq);
        kvstore__v1__rpc_request__free_unpacked(r, NULL);
    }
    return ours;
}

static size_t random_request(uint8_t *buf)
{
    Kvstore__V1__RpcRequest req = KVSTORE__V1__RPC_REQUEST__INIT;
    char method[40];
    uint8_t payload[64];

    req.id = next() >> (next() % 64);
    snprintf(method, sizeof method, "/kvstore.v1.KV/M%u", (unsigned)(next() % 1000));
    req.method = next() % 4 ? method : "";
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)next();
    req.payload.data = payload;
    req.payload.len = next() % sizeof payload;
    if (next() % 2) {   /* v3: a write's retry identity */
        req.client_id.data = payload;
        req.client_id.len = next() % 17;
        req.seq = next() >> (next() % 64);
    }
    return kvstore__v1__rpc_request__pack(&req, buf);
}

static void valid_requests_decode_to_the_same_fields(void **state)
{
    uint8_t buf[256];

    (void)state;
    for (int i = 0; i < 2000; i++)
        assert_true(agree(buf, random_request(buf)));
}

static void every_truncation_gets_the_same_decision(void **state)
{
    uint8_t buf[256];

    (void)state;
    for (int i = 0; i < 300; i++) {
        size_t n = random_request(buf);
        for (size_t cut = 0; cut <= n; cut++)
            agree(buf, cut);
    }
}

static void mutated_and_random_bytes_get_the_same_decision(void **state)
{
    uint8_t buf[256];
    int accepted = 0, rejected = 0;

    (void)state;
    for (int i = 0; i < 20000; i++) {
        size_t n = random_request(buf);
        for (int k = 0; n > 0 && k < 3; k++)
            buf[next() % n] = (uint8_t)next();
        agree(buf, n) ? accepted++ : rejected++;
    }
    for (int i = 0; i < 20000; i++) {
        size_t n = next() % 32;
        for (size_t j = 0; j < n; j++)
            buf[j] = (uint8_t)next();
        agree(buf, n) ? accepted++ : rejected++;
    }
    /* Both outcomes were exercised. */
    assert_true(accepted > 1000);
    assert_true(rejected > 1000);
}

static void repeated_fields_last_wins_and_unknown_fields_are_skipped(void **state)
{
    /* id=1, unknown field 9 (fixed32), id=7, method "a", unknown 15 (len 2), method "bc" */
    const uint8_t buf[] = { 0x08, 0x01, 0x4d, 1, 2, 3, 4, 0x08, 0x07, 0x12, 0x01, 'a',
                            0x7a, 0x02, 'x', 'y', 0x12, 0x02, 'b', 'c' };
    kv_envelope e;

    (void)state;
    assert_true(agree(buf, sizeof buf));
    assert_int_equal(kv_envelope_decode(buf, sizeof buf, &e), 0);
    assert_int_equal(e.id, 7);
    assert_int_equal(e.method_len, 2);
    assert_memory_equal(e.method, "bc", 2);
}

/* pbview (in-place unpacking of request messages) against protobuf-c:
 * valid messages, every truncation, mutations and random bytes. */
static void request_messages_unpack_in_place_as_protobuf_c_does(void **state)
{
    uint8_t buf[96], value[40];
    size_t accepted = 0, refused = 0;

    (void)state;
    /* A string field present: left to protobuf-c, which NUL-terminates. */
    static const uint8_t ping[] = { 0x0a, 0x02, 'h', 'i' };
    ProtobufCMessage *m;
    kv_arena arena;
    kv_arena_init(&arena, 1024);
    assert_int_equal(kv_pbview_unpack(&kvstore__v1__ping_request__descriptor, &arena.pb, ping,
                                      sizeof ping, &m), 1);
    assert_int_equal(kv_pbview_unpack(&kvstore__v1__ping_request__descriptor, &arena.pb, ping, 0,
                                      &m), 0);                        /* absent: fine */
    kv_arena_free(&arena);
    for (int round = 0; round < 3000; round++) {
        Kvstore__V1__SetRequest set = KVSTORE__V1__SET_REQUEST__INIT;
        for (size_t k = 0; k < sizeof value; k++)
            value[k] = (uint8_t)next();
        set.key = (ProtobufCBinaryData){ next() % 12, value };
        set.value = (ProtobufCBinaryData){ next() % 40, value };
        size_t n = kvstore__v1__set_request__pack(&set, buf);
        if (round % 3 == 1 && n)
            buf[next() % n] ^= (uint8_t)(1u << (next() % 8));       /* a flipped bit */
        if (round % 3 == 2)
            n = next() % (n + 1);                                   /* cut short */
        for (int i = 0; kv_wire_request_messages[i]; i++) {
            int rc = kv_wire_pbview_agrees(kv_wire_request_messages[i], buf, n);
            assert_int_not_equal(rc, -1);
            rc ? accepted++ : refused++;
        }
    }
    for (int round = 0; round < 3000; round++) {
        size_t n = next() % 24;
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)next();
        for (int i = 0; kv_wire_request_messages[i]; i++)
            assert_int_not_equal(kv_wire_pbview_agrees(kv_wire_request_messages[i], buf, n), -1);
    }
    assert_true(accepted > 1000 && refused > 1000);
}

/* Flat answers packed by pbview: the bytes protobuf-c writes, for values
 * at and off their defaults; StatsResponse (repeated, strings) is left to
 * protobuf-c. */
/* 0, a one-byte varint or any 64-bit number, a third of the time each. */
static uint64_t some_number(void)
{
    switch (next() % 3) {
    case 0:
        return 0;
    case 1:
        return next() % 128;
    default:
        return (uint64_t)next() << 32 | next();
    }
}

/* The flat answers, at and off their defaults, packed by plan and, once
 * hotpack.c's packers are in use, by hand: both as protobuf-c packs. */
static void check_answers(int rounds)
{
    uint8_t value[40];

    for (int round = 0; round < rounds; round++) {
        for (size_t k = 0; k < sizeof value; k++)
            value[k] = (uint8_t)next();
        ProtobufCBinaryData b = { next() % 3 ? next() % 40 : 0, value };
        Kvstore__V1__GetResponse get = KVSTORE__V1__GET_RESPONSE__INIT;
        Kvstore__V1__SetResponse set = KVSTORE__V1__SET_RESPONSE__INIT;
        Kvstore__V1__ClearResponse clear = KVSTORE__V1__CLEAR_RESPONSE__INIT;
        Kvstore__V1__ClearRangeResponse clear_range = KVSTORE__V1__CLEAR_RANGE_RESPONSE__INIT;
        Kvstore__V1__AuthResponse auth = KVSTORE__V1__AUTH_RESPONSE__INIT;
        get.value = b;
        get.create_revision = some_number();
        get.mod_revision = some_number();
        get.version = some_number();
        get.revision = some_number();
        get.found = (protobuf_c_boolean)(next() % 2);
        set.key = b;
        set.revision = some_number();
        clear.found = (protobuf_c_boolean)(next() % 2);
        clear.value = b;
        clear.revision = some_number();
        clear_range.deleted = some_number();
        clear_range.revision = some_number();
        assert_true(kv_wire_pbview_packs_as_protobuf_c(&get.base));
        assert_true(kv_wire_pbview_packs_as_protobuf_c(&set.base));
        assert_true(kv_wire_pbview_packs_as_protobuf_c(&clear.base));
        assert_true(kv_wire_pbview_packs_as_protobuf_c(&clear_range.base));
        assert_true(kv_wire_pbview_packs_as_protobuf_c(&auth.base));
    }
}

static void answers_pack_byte_for_byte_as_protobuf_c(void **state)
{
    int flat;

    (void)state;
    kv_hotpack_use(0);
    check_answers(2000);
    kv_hotpack_use(1);
    check_answers(2000);
    Kvstore__V1__StatsResponse stats = KVSTORE__V1__STATS_RESPONSE__INIT;
    kv_pbview_size(&stats.base, &flat);
    assert_false(flat);
}

static void responses_encode_exactly_as_protobuf_c(void **state)
{
    uint8_t ours[512], theirs[512];
    char message[100];
    uint8_t payload[100];

    (void)state;
    for (int i = 0; i < 5000; i++) {
        Kvstore__V1__RpcResponse r = KVSTORE__V1__RPC_RESPONSE__INIT;
        size_t mlen = next() % 3 ? 0 : next() % 60;
        for (size_t j = 0; j < mlen; j++)
            message[j] = (char)('a' + next() % 26);
        message[mlen] = 0;
        r.id = next() % 2 ? next() >> (next() % 64) : 0;
        r.code = (Kvstore__V1__StatusCode)(next() % 17);
        r.message = message;
        r.payload.len = next() % sizeof payload;
        for (size_t j = 0; j < r.payload.len; j++)
            payload[j] = (uint8_t)next();
        r.payload.data = payload;

        size_t n = kvstore__v1__rpc_response__pack(&r, theirs);
        assert_int_equal(kv_envelope_response_size(r.id, r.code, mlen, r.payload.len), n);
        size_t h = kv_envelope_put_response_head(ours, r.id, r.code, message, mlen, r.payload.len);
        memcpy(ours + h, payload, r.payload.len);
        assert_int_equal(h + r.payload.len, n);
        assert_memory_equal(ours, theirs, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_requests_decode_to_the_same_fields),
        cmocka_unit_test(every_truncation_gets_the_same_decision),
        cmocka_unit_test(mutated_and_random_bytes_get_the_same_decision),
        cmocka_unit_test(repeated_fields_last_wins_and_unknown_fields_are_skipped),
        cmocka_unit_test(request_messages_unpack_in_place_as_protobuf_c_does),
        cmocka_unit_test(answers_pack_byte_for_byte_as_protobuf_c),
        cmocka_unit_test(responses_encode_exactly_as_protobuf_c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
