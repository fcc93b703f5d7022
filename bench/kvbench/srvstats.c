/* srvstats.c - fetches the Stats rpc through the C client library and
 * compares the server's call counters with kvbench's own. Owns nothing
 * beyond one short-lived connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <kvstore/client.h>
#include "srvstats.h"

#define STATS_PATH "/kvstore.v1.KV/Stats"

int kb_srvstats_fetch(const char *endpoint, int timeout_ms, kb_srvstats *out,
                      char *err, size_t errlen)
{
    kv_client *c = kv_client_connect(endpoint, timeout_ms, err, errlen);
    Kvstore__V1__StatsResponse *st = NULL;
    uint8_t *payload = NULL;
    size_t len = 0, found = 0;
    int rc = -1;

    memset(out, 0, sizeof *out);
    if (!c)
        return -1;
    kv_status s = kv_client_call_raw(c, STATS_PATH, NULL, 0, &payload, &len);
    if (s != KV_OK) {
        snprintf(err, errlen, "Stats: %s: %s", kv_status_name(s), kv_client_last_message(c));
        goto out;
    }
    st = kvstore__v1__stats_response__unpack(NULL, len, payload);
    if (!st) {
        snprintf(err, errlen, "Stats: the answer is not a StatsResponse");
        goto out;
    }
    for (size_t i = 0; i < st->n_methods; i++) {
        for (int m = 0; m < KB_METHOD_COUNT; m++) {
            if (st->methods[i]->method && !strcmp(st->methods[i]->method, kb_wire_method_path(m))) {
                out->calls[m] = st->methods[i]->calls;
                out->errors[m] = st->methods[i]->errors;
                found += !out->has[m];
                out->has[m] = 1;
            }
        }
    }
    out->keys = st->keys;
    /* A server before v2 counts no Range: fine unless kvbench calls it. */
    for (int m = 0; m < KB_RANGE; m++)
        if (!out->has[m]) {
            snprintf(err, errlen, "Stats: the answer counts %zu of the %d methods kvbench uses",
                     found, KB_METHOD_COUNT);
            goto out;
        }
    rc = 0;
out:
    if (st)
        kvstore__v1__stats_response__free_unpacked(st, NULL);
    free(payload);
    kv_client_free(c);
    return rc;
}

int kb_srvstats_compare(const kb_srvstats *before, const kb_srvstats *after,
                        const uint64_t sent[KB_METHOD_COUNT],
                        const uint64_t errors[KB_METHOD_COUNT], char *msg, size_t len)
{
    size_t n = 0;
    int bad = 0;

    msg[0] = 0;
    for (int m = 0; m < KB_METHOD_COUNT; m++) {
        uint64_t calls = after->calls[m] - before->calls[m];
        uint64_t errs = after->errors[m] - before->errors[m];
        const char *sep = n ? ", " : "";
        int w;

        if (!before->has[m] || !after->has[m]) {
            if (!sent[m])
                continue;       /* not counted, not called */
            bad = 1;
            w = snprintf(msg + n, len - n, "%sno %s calls where kvbench made %llu", sep,
                         kb_wire_method_title(m), (unsigned long long)sent[m]);
        } else if (calls == sent[m] && errs == errors[m]) {
            w = snprintf(msg + n, len - n, "%s%s +%llu", sep, kb_wire_method_title(m),
                         (unsigned long long)calls);
        } else {
            bad = 1;
            w = snprintf(msg + n, len - n, "%s%s +%llu calls +%llu errors where kvbench "
                         "made %llu calls and got %llu errors", sep, kb_wire_method_title(m),
                         (unsigned long long)calls, (unsigned long long)errs,
                         (unsigned long long)sent[m], (unsigned long long)errors[m]);
        }
        if (w > 0)
            n += (size_t)w < len - n ? (size_t)w : len - n - 1;
    }
    return bad ? -1 : 0;
}
