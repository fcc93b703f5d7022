/* fixture.h - the cmocka fixture every live test uses: a fresh kvstored
 * (support/server.h) and one connected C client. */
#ifndef KV_TEST_FIXTURE_H
#define KV_TEST_FIXTURE_H

#include <kvstore/client.h>
#include "support/server.h"

#define KV_TEST_TIMEOUT_MS 5000

typedef struct kv_fixture {
    kv_test_server srv;
    kv_client *c;
} kv_fixture;

/* Starts kvstored with EXTRA flags (NULL-terminated, may be NULL), connects
 * a client, stores the fixture in *STATE. Fails the test on error. */
int kv_fixture_start(void **state, const char *const *extra);

/* For cmocka: kv_fixture_start with no extra flags. */
int kv_fixture_setup(void **state);

/* Frees the client, stops the server and asserts it exited 0. */
int kv_fixture_teardown(void **state);

/* Asserts that KEY holds exactly VALUE[0..VLEN). */
void kv_assert_value(kv_client *c, const void *key, size_t klen,
                     const void *value, size_t vlen);

/* The server's Stats figures the tests look at. */
typedef struct kv_stats_view {
    uint64_t conns, conns_rejected, max_memory, keys, rss, requests;
} kv_stats_view;

/* Calls Stats on C; fails the test when the call fails. */
kv_stats_view kv_fetch_stats(kv_client *c);

/* Polls Stats until connections_current is WANT; fails after
 * KV_WAIT_SECONDS (60: generous for valgrind on a loaded machine). */
#define KV_WAIT_SECONDS 60
void kv_wait_connections(kv_client *c, uint64_t want);

#endif
