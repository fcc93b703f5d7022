/* test_load.c - load that a server on a network meets, bounded in count
 * and time, loopback only: 10,000 connections open at once, each doing a
 * round trip; and a 1 GiB stream of pipelined Sets from 4 clients, during
 * which the server's peak resident memory must stay under FLOOD_RSS_BOUND
 * (documented in README). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "support/fixture.h"

#define CONNECTIONS 10000
#define FLOOD_CLIENTS 4
#define FLOOD_BYTES (1024L * 1024 * 1024)
#define FLOOD_VALUE 1024
#define FLOOD_KEYS 20000
/* Stored data is FLOOD_KEYS x ~1 KiB = 20 MiB; the rest is buffers. */
#define FLOOD_RSS_BOUND (128L * 1024 * 1024)

/* The server's peak resident set (VmHWM), in bytes. */
static long server_peak_rss(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb * 1024;
}

static int setup_many_clients(void **state)
{
    /* Room for our 10,000 beside the fixture's own client. */
    static const char *const extra[] = { "--max-clients", "10050", NULL };
    return kv_fixture_start(state, extra);
}

static void ten_thousand_connections_each_round_trip(void **state)
{
    kv_fixture *f = *state;
    struct rlimit rl;
    int *fds = calloc(CONNECTIONS, sizeof *fds);

    /* Room for our end of every connection. */
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < CONNECTIONS + 100) {
        rl.rlim_cur = rl.rlim_max < CONNECTIONS + 100 ? rl.rlim_max : CONNECTIONS + 100;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < CONNECTIONS + 100)
        skip();     /* the hard limit forbids it; nothing to measure */
    for (int i = 0; i < CONNECTIONS; i++) {
        fds[i] = kv_test_connect(f->srv.port);
        assert_true(fds[i] >= 0);
    }
    for (int i = 0; i < CONNECTIONS; i++)
        assert_int_equal(kv_test_send_request(fds[i], (uint64_t)i + 1, "/kvstore.v1.KV/Ping", NULL, 0), 0);
    for (int i = 0; i < CONNECTIONS; i++) {
        Kvstore__V1__RpcResponse *r = kv_test_read_response(fds[i]);
        assert_non_null(r);
        assert_int_equal(r->id, (uint64_t)i + 1);
        assert_int_equal(r->code, KV_OK);
        kvstore__v1__rpc_response__free_unpacked(r, NULL);
    }
    assert_int_equal(kv_client_ping(f->c, NULL, NULL), KV_OK);
    for (int i = 0; i < CONNECTIONS; i++)
        close(fds[i]);
    free(fds);
    printf("held %d connections at once, each answered\n", CONNECTIONS + 1);
}

typedef struct flooder {
    const char *endpoint;
    int id;
    long sent, ok;
} flooder;

static void on_set(const Kvstore__V1__SetResponse *m, void *data)
{
    if (m)
        ((flooder *)data)->ok++;
}

static void *flood(void *arg)
{
    flooder *w = arg;
    kv_client *c = kv_client_connect(w->endpoint, 30000, NULL, 0);
    static uint8_t value[FLOOD_VALUE];
    char key[32];

    if (!c)
        return NULL;
    long per_client = FLOOD_BYTES / FLOOD_CLIENTS / FLOOD_VALUE;
    for (long done = 0; done < per_client;) {
        kv_client_pipeline_begin(c);
        for (int i = 0; i < 1000 && done < per_client; i++, done++) {
            Kvstore__V1__SetRequest req = KVSTORE__V1__SET_REQUEST__INIT;
            int kl = snprintf(key, sizeof key, "flood:%ld", (done * FLOOD_CLIENTS + w->id) % FLOOD_KEYS);
            req.key = (ProtobufCBinaryData){ (size_t)kl, (uint8_t *)key };
            req.value = (ProtobufCBinaryData){ sizeof value, value };
            kvstore__v1__kv__set(kv_client_service(c), &req, on_set, w);
            w->sent++;
        }
        if (kv_client_pipeline_end(c) != KV_OK)
            break;
    }
    kv_client_free(c);
    return NULL;
}

static void one_gib_of_pipelined_sets_stays_within_memory_bound(void **state)
{
    kv_fixture *f = *state;
    pthread_t t[FLOOD_CLIENTS];
    flooder w[FLOOD_CLIENTS];
    long ok = 0;

    for (int i = 0; i < FLOOD_CLIENTS; i++) {
        w[i] = (flooder){ f->srv.endpoint, i, 0, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, flood, &w[i]), 0);
    }
    for (int i = 0; i < FLOOD_CLIENTS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].ok, w[i].sent);
        ok += w[i].ok;
    }
    assert_int_equal(ok, FLOOD_BYTES / FLOOD_VALUE);
    long peak = server_peak_rss(f->srv.pid);
    printf("1 GiB of Sets (%ld), server peak RSS %.1f MiB (bound %ld MiB)\n",
           ok, peak / 1048576.0, FLOOD_RSS_BOUND >> 20);
    assert_true(peak > 0 && peak < FLOOD_RSS_BOUND);
    assert_int_equal(kv_client_ping(f->c, NULL, NULL), KV_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ten_thousand_connections_each_round_trip,
                                        setup_many_clients, kv_fixture_teardown),
        cmocka_unit_test_setup_teardown(one_gib_of_pipelined_sets_stays_within_memory_bound,
                                        kv_fixture_setup, kv_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
