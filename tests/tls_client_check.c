/* tls_client_check - a small C program test_tls_clients.py drives: it
 * connects with kv_client_connect_opts() as its options say, then Sets a
 * key, Gets it back, opens a watch on it, Sets it again and waits for the
 * event; then has the server close its connection (ClientKill of its own
 * id), and Gets again, which connects again with the same settings.
 * With --idle MS it first waits MS and pings: a server with a shorter
 * --idle-timeout has closed the connection, so the ping connects again.
 * Prints "ok" and exits 0, or the library's one-line reason on stderr and
 * exits 1 (connect) or 2 (a call). Usage:
 *   tls_client_check ENDPOINT [--ca FILE] [--cert FILE --key FILE]
 *                    [--server-name NAME] [--insecure] [--plaintext]
 *                    [--idle MS]
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <kvstore/client.h>

/* Watch callback: counts the events of the watch. */
static void on_event(kv_client *c, uint64_t watch_id, const Kvstore__V1__WatchResponse *r,
                     void *arg)
{
    (void)c;
    (void)watch_id;
    if (r)
        *(size_t *)arg += r->n_events;
}

/* ClientList closure: the id of the connection asking, 0 on failure. */
static void on_list(const Kvstore__V1__ClientListResponse *r, void *arg)
{
    for (size_t i = 0; r && i < r->n_clients; i++)
        if (r->clients[i]->current)
            *(uint64_t *)arg = r->clients[i]->id;
}

/* ClientKill closure: its answer may never come (the connection closes
 * at once); either way is fine. */
static void on_kill(const Kvstore__V1__ClientKillResponse *r, void *arg)
{
    (void)r;
    (void)arg;
}

static int call_failed(kv_client *c, const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", what, kv_status_name(kv_client_last_status(c)),
            kv_client_last_message(c));
    kv_client_free(c);
    return 2;
}

/* Gets "k" (WHAT names the step) and checks it holds WANT. Returns 0, or
 * the exit code after saying why (C freed). */
static int get_is(kv_client *c, const char *what, const char *want)
{
    uint8_t *value = NULL;
    size_t len = 0;
    int same;

    if (kv_client_get(c, (const uint8_t *)"k", 1, &value, &len) != KV_OK)
        return call_failed(c, what);
    same = len == strlen(want) && memcmp(value, want, len) == 0;
    free(value);
    if (same)
        return 0;
    fprintf(stderr, "%s: %zu bytes, not %s\n", what, len, want);
    kv_client_free(c);
    return 2;
}

int main(int argc, char **argv)
{
    kv_client_options o = KV_CLIENT_OPTIONS_INIT;
    char err[512];
    size_t events = 0;
    uint64_t watch_id;
    kv_client *c;
    int idle_ms = 0, rc;

    o.timeout_ms = 10000;
    o.tls = 1;
    for (int i = 2; i < argc; i++) {
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--ca") == 0 && next)
            o.ca_file = argv[++i];
        else if (strcmp(argv[i], "--cert") == 0 && next)
            o.cert_file = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && next)
            o.key_file = argv[++i];
        else if (strcmp(argv[i], "--server-name") == 0 && next)
            o.server_name = argv[++i];
        else if (strcmp(argv[i], "--insecure") == 0)
            o.insecure_skip_verify = 1;
        else if (strcmp(argv[i], "--idle") == 0 && next)
            idle_ms = atoi(argv[++i]);
        else if (strcmp(argv[i], "--plaintext") == 0)
            o.tls = 0;
        else {
            fprintf(stderr, "tls_client_check: unknown argument %s\n", argv[i]);
            return 64;
        }
    }
    if (argc < 2)
        return 64;
    c = kv_client_connect_opts(argv[1], &o, err, sizeof err);
    if (!c) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (idle_ms > 0) {
        char *pong = NULL;
        poll(NULL, 0, idle_ms);
        if (kv_client_ping(c, NULL, &pong) != KV_OK)
            return call_failed(c, "ping after idling");
        free(pong);
    }
    if (kv_client_set(c, (const uint8_t *)"k", 1, (const uint8_t *)"v1", 2) != KV_OK)
        return call_failed(c, "set");
    if ((rc = get_is(c, "get", "v1")) != 0)
        return rc;
    Kvstore__V1__WatchRequest w = KVSTORE__V1__WATCH_REQUEST__INIT;
    w.key.data = (uint8_t *)"k";
    w.key.len = 1;
    if (kv_client_watch(c, &w, on_event, &events, &watch_id) != KV_OK)
        return call_failed(c, "watch");
    if (kv_client_set(c, (const uint8_t *)"k", 1, (const uint8_t *)"v2", 2) != KV_OK)
        return call_failed(c, "set");
    while (events == 0)
        if (kv_client_poll(c, 10000) != KV_OK)
            return call_failed(c, "poll");
    Kvstore__V1__ClientListRequest list = KVSTORE__V1__CLIENT_LIST_REQUEST__INIT;
    Kvstore__V1__ClientKillRequest kill = KVSTORE__V1__CLIENT_KILL_REQUEST__INIT;
    kvstore__v1__kv__client_list(kv_client_service(c), &list, on_list, &kill.id);
    if (kill.id == 0)
        return call_failed(c, "client list");
    kvstore__v1__kv__client_kill(kv_client_service(c), &kill, on_kill, NULL);
    if ((rc = get_is(c, "get after the kill", "v2")) != 0)
        return rc;
    kv_client_free(c);
    puts("ok");
    return 0;
}
