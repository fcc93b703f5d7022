/* stats_report.c - the StatsResponse every reader of the figures shares;
 * see stats_report.h. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <ev.h>
#include "dispatch.h"
#include "rss.h"
#include "slowlog.h"
#include "stats_report.h"

#define ALLOC(alloc, n) ((alloc)->alloc((alloc)->allocator_data, (n)))

static const char *const close_names[KV_CLOSE_REASONS] = {
    [KV_CLOSE_CLIENT] = "client",   [KV_CLOSE_IDLE] = "idle",
    [KV_CLOSE_OUTPUT] = "output",   [KV_CLOSE_PROTOCOL] = "protocol",
    [KV_CLOSE_AUTH] = "auth",       [KV_CLOSE_KILLED] = "killed",
    [KV_CLOSE_ERROR] = "error",     [KV_CLOSE_SHUTDOWN] = "shutdown",
};

uint64_t kv_stats_calls(const kv_stats *st, unsigned method)
{
    uint64_t n = 0;

    for (unsigned c = 0; c < KV_STATS_CODES; c++)
        n += st->codes[method][c];
    return n;
}

uint64_t kv_stats_errors(const kv_stats *st, unsigned method)
{
    return kv_stats_calls(st, method) - st->codes[method][KV_OK];
}

const char *kv_close_reason_name(kv_close_reason r)
{
    return r < KV_CLOSE_REASONS ? close_names[r] : "unknown";
}

/* The method entries: calls, errors, latency quantiles, codes seen. */
static int report_methods(const kv_stats *st, ProtobufCAllocator *alloc,
                          Kvstore__V1__StatsResponse *out)
{
    const ProtobufCServiceDescriptor *d = &kvstore__v1__kv__descriptor;
    unsigned n = d->n_methods < KV_STATS_MAX_METHODS ? d->n_methods : KV_STATS_MAX_METHODS;
    Kvstore__V1__MethodStats *ms = ALLOC(alloc, n * sizeof *ms);
    Kvstore__V1__MethodStats **msp = ALLOC(alloc, n * sizeof *msp);

    if (!ms || !msp)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        kvstore__v1__method_stats__init(&ms[i]);
        ms[i].method = (char *)kv_dispatch_method_path(d, i);
        ms[i].calls = kv_stats_calls(st, i);
        ms[i].errors = kv_stats_errors(st, i);
        ms[i].latency_p50_us = kv_latency_quantile_ns(&st->latency[i], 0.5) / 1000;
        ms[i].latency_p99_us = kv_latency_quantile_ns(&st->latency[i], 0.99) / 1000;
        ms[i].latency_p999_us = kv_latency_quantile_ns(&st->latency[i], 0.999) / 1000;
        size_t seen = 0;
        for (unsigned c = 0; c < KV_STATS_CODES; c++)
            seen += st->codes[i][c] != 0;
        if (seen) {
            Kvstore__V1__CodeCount *cc = ALLOC(alloc, seen * sizeof *cc);
            Kvstore__V1__CodeCount **ccp = ALLOC(alloc, seen * sizeof *ccp);
            if (!cc || !ccp)
                return -1;
            for (unsigned c = 0, k = 0; c < KV_STATS_CODES; c++) {
                if (!st->codes[i][c])
                    continue;
                kvstore__v1__code_count__init(&cc[k]);
                cc[k].code = (Kvstore__V1__StatusCode)c;
                cc[k].count = st->codes[i][c];
                ccp[k] = &cc[k];
                k++;
            }
            ms[i].n_codes = seen;
            ms[i].codes = ccp;
        }
        msp[i] = &ms[i];
    }
    out->n_methods = n;
    out->methods = msp;
    return 0;
}

/* The server's own: pid, CPU, listeners, settings, close reasons. */
static int report_process(const kv_service_env *env, ProtobufCAllocator *alloc,
                          Kvstore__V1__StatsResponse *out)
{
    const kv_stats *st = env->stats;
    struct rusage ru;

    out->pid = (uint64_t)getpid();
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        out->cpu_user_seconds = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
        out->cpu_system_seconds = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    }
    out->n_listen_addresses = env->n_listen;
    out->listen_addresses = (char **)env->listen_addresses;
    out->metrics_address = (char *)(env->metrics_address ? env->metrics_address : "");
    if (env->n_settings) {
        Kvstore__V1__Setting *s = ALLOC(alloc, env->n_settings * sizeof *s);
        Kvstore__V1__Setting **sp = ALLOC(alloc, env->n_settings * sizeof *sp);
        if (!s || !sp)
            return -1;
        for (size_t i = 0; i < env->n_settings; i++) {
            kvstore__v1__setting__init(&s[i]);
            s[i].name = (char *)env->settings[2 * i];
            s[i].value = (char *)env->settings[2 * i + 1];
            sp[i] = &s[i];
        }
        out->n_settings = env->n_settings;
        out->settings = sp;
    }
    Kvstore__V1__CloseReason *cr = ALLOC(alloc, KV_CLOSE_REASONS * sizeof *cr);
    Kvstore__V1__CloseReason **crp = ALLOC(alloc, KV_CLOSE_REASONS * sizeof *crp);
    if (!cr || !crp)
        return -1;
    for (unsigned r = 0; r < KV_CLOSE_REASONS; r++) {
        kvstore__v1__close_reason__init(&cr[r]);
        cr[r].reason = (char *)kv_close_reason_name((kv_close_reason)r);
        cr[r].count = st->closed[r];
        crp[r] = &cr[r];
    }
    out->n_connections_closed = KV_CLOSE_REASONS;
    out->connections_closed = crp;
    return 0;
}

int kv_stats_report(const kv_service_env *env, ProtobufCAllocator *alloc,
                    Kvstore__V1__StatsResponse *out)
{
    const kv_stats *st = env->stats;
    kv_engine_stats es;
    kv_watch_stats ws;

    if (report_methods(st, alloc, out) < 0 || report_process(env, alloc, out) < 0)
        return -1;
    kv_engine_stats_get(env->engine, &es);
    out->uptime_seconds = (uint64_t)(ev_time() - st->started);
    out->connections_current = st->conns_current;
    out->connections_total = st->conns_total;
    out->connections_rejected = st->conns_rejected;
    out->requests_total = st->requests;
    out->errors_total = st->refused;
    for (unsigned i = 0; i < out->n_methods; i++)
        out->errors_total += out->methods[i]->errors;
    out->keys = es.keys;
    out->data_bytes = es.data_bytes;
    out->engine_memory_bytes = es.memory_bytes;
    out->resident_memory_bytes = kv_rss_bytes();
    out->max_memory_bytes = env->limits.max_memory_bytes;
    out->engine_file_bytes = es.file_bytes;
    out->engine_map_bytes = es.map_bytes;
    out->engine_last_sync_unix_ms = es.last_sync_ms;
    out->engine_sync = (char *)(es.sync ? es.sync : "");
    out->input_buffer_bytes = st->input_bytes;
    out->output_buffer_bytes = st->output_bytes;
    out->connections_closed_output = st->closed[KV_CLOSE_OUTPUT];
    out->auth_refused = env->guard ? env->guard->refused : 0;
    out->revision = kv_engine_revision(env->engine);
    kv_watch_stats_get(env->watch, &ws);
    out->expired_keys_total = env->expired_keys ? *env->expired_keys : 0;
    out->keys_with_ttl = es.keys_with_ttl;
    out->watchers = ws.watchers;
    out->watch_events_total = ws.events_sent;
    out->watch_history_oldest = ws.oldest;
    out->ops_per_second = st->ops_last_second;
    for (unsigned i = 0; i < out->n_methods; i++)
        if (strcmp(kvstore__v1__kv__descriptor.methods[i].name, "Get") == 0) {
            out->get_hits = st->codes[i][KV_OK];
            out->get_misses = st->codes[i][KV_NOT_FOUND];
        }
    out->net_input_bytes = st->net_in;
    out->net_output_bytes = st->net_out;
    out->engine_syncs_total = st->syncs;
    out->engine_sync_seconds_total = st->sync_seconds;
    if (env->slowlog)
        kv_slowlog_report(env->slowlog, out);
    if (env->router)
        env->router->stats(env->router->arg, out);
    out->engine = (char *)env->engine->ops->name;
    out->version = (char *)KV_VERSION;
    return 0;
}
