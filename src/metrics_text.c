/* metrics_text.c - StatsResponse to Prometheus's text format; see
 * metrics_text.h. Owns the names, types and HELP of the families; the
 * figures themselves are stats_report.c's, the transport metrics_http.c's.
 *
 * The families are a table keyed by StatsResponse's field names, read
 * through protobuf-c's descriptor: a field added to the proto without an
 * entry here still shows up (as kvstore_<field>, see render_fallback), so
 * /metrics never lags Stats. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kvstore/status.h"
#include "metrics_text.h"

#define PREFIX "kvstore_"

/* Where the text goes: appends stop at the first failure, which
 * kv_metrics_render reports once at the end. */
typedef struct text {
    kv_buf *b;
    int failed;
    const char *family;     /* the last family whose HELP and TYPE went out */
    const kv_latency *lat;
    size_t n_lat;
} text;

static void emit(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(text *t, const char *fmt, ...)
{
    va_list ap;

    if (t->failed)
        return;
    for (size_t room = 256;;) {
        if (kv_buf_reserve(t->b, room) < 0) {
            t->failed = 1;
            return;
        }
        va_start(ap, fmt);
        int n = vsnprintf((char *)kv_buf_tail(t->b), kv_buf_room(t->b), fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < kv_buf_room(t->b)) {
            kv_buf_commit(t->b, (size_t)n);
            return;
        }
        room = (size_t)n + 1;
    }
}

/* A label value: \, " and newline escaped, as the format asks. */
static void emit_label_value(text *t, const char *v)
{
    const char *run = v;

    for (; *v; v++) {
        const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
        if (!esc)
            continue;
        emit(t, "%.*s%s", (int)(v - run), run, esc);
        run = v + 1;
    }
    emit(t, "%s", run);
}

/* The shortest decimal that reads back as D ("1e-05", "10.48576"), so
 * that bucket bounds look as written, not as binary fractions. */
static void format_double(double d, char *buf, size_t len)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, len, "%.*g", digits, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

static void emit_double(text *t, double d)
{
    char num[32];

    format_double(d, num, sizeof num);
    emit(t, "%s", num);
}

/* HELP and TYPE of FAMILY (after the prefix), once for a run of samples. */
static void header(text *t, const char *family, const char *type, const char *help)
{
    if (t->family && strcmp(t->family, family) == 0)
        return;
    t->family = family;
    emit(t, "# HELP " PREFIX "%s %s\n# TYPE " PREFIX "%s %s\n", family, help, family, type);
}

/* One family: its field, its name, how it is rendered. */
typedef struct family family;
typedef void render_fn(text *t, const Kvstore__V1__StatsResponse *r, const family *f);

struct family {
    const char *field;      /* StatsResponse's */
    const char *name;       /* after "kvstore_" */
    const char *type;       /* "gauge", "counter" */
    const char *label;      /* a number: a fixed label pair (mode="user"), or NULL;
                               a string: the label its value goes in (value 1,
                               none when empty) */
    double per;             /* a number: divided by this (1000: ms to s); 0: as it is */
    const char *help;
    render_fn *render;      /* NULL: by the field's type (render_field) */
};

/* A number field as text into BUF, divided by PER (0: as it is). Returns
 * 0, -1 when F is not a number. */
static int number_text(const void *msg, const ProtobufCFieldDescriptor *f, double per,
                       char *buf, size_t len)
{
    const char *p = (const char *)msg + f->offset;
    double d;

    switch (f->type) {
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        if (!per) {
            snprintf(buf, len, "%" PRIu64, *(const uint64_t *)p);
            return 0;
        }
        d = (double)*(const uint64_t *)p;
        break;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        d = (double)*(const int64_t *)p;
        break;
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
        d = *(const uint32_t *)p;
        break;
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        d = *(const int32_t *)p;
        break;
    case PROTOBUF_C_TYPE_BOOL:
        d = *(const protobuf_c_boolean *)p ? 1 : 0;
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        d = *(const float *)p;
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        d = *(const double *)p;
        break;
    default:
        return -1;
    }
    format_double(per ? d / per : d, buf, len);
    return 0;
}

/* The strings of a string field F of MSG: *N of them at the returned array
 * (one for a singular field). NULL when F is not a string field. */
static char *const *strings_of(const void *msg, const ProtobufCFieldDescriptor *f, size_t *n)
{
    const char *p = (const char *)msg + f->offset;

    if (f->type != PROTOBUF_C_TYPE_STRING)
        return NULL;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        *n = *(const size_t *)((const char *)msg + f->quantifier_offset);
        return *(char *const *const *)p;
    }
    *n = 1;
    return (char *const *)p;
}

static const ProtobufCFieldDescriptor *field_of(const char *name)
{
    return protobuf_c_message_descriptor_get_field_by_name(
        &kvstore__v1__stats_response__descriptor, name);
}

/* A family of one field of R: a number is one sample; a string is one
 * sample of value 1 per non-empty string, in label F->label. */
static void render_field(text *t, const Kvstore__V1__StatsResponse *r, const family *f)
{
    const ProtobufCFieldDescriptor *fd = field_of(f->field);
    char num[32];
    size_t n = 0;
    char *const *s;

    if (!fd)
        return;
    if (fd->label != PROTOBUF_C_LABEL_REPEATED && number_text(r, fd, f->per, num, sizeof num) == 0) {
        header(t, f->name, f->type, f->help);
        if (f->label)
            emit(t, PREFIX "%s{%s} %s\n", f->name, f->label, num);
        else
            emit(t, PREFIX "%s %s\n", f->name, num);
        return;
    }
    if (!(s = strings_of(r, fd, &n)))
        return;
    for (size_t i = 0; i < n; i++) {
        if (!s[i] || !*s[i])
            continue;
        header(t, f->name, "gauge", f->help);
        emit(t, PREFIX "%s{%s=\"", f->name, f->label);
        emit_label_value(t, s[i]);
        emit(t, "\"} 1\n");
    }
}

/* The method's name ("Get") in its gRPC path ("/kvstore.v1.KV/Get"). */
static const char *method_name(const Kvstore__V1__MethodStats *m)
{
    const char *slash = m->method ? strrchr(m->method, '/') : NULL;

    return slash ? slash + 1 : m->method ? m->method : "";
}

static void emit_method(text *t, const char *family, const Kvstore__V1__MethodStats *m)
{
    emit(t, PREFIX "%s{method=\"", family);
    emit_label_value(t, method_name(m));
    emit(t, "\"");
}

/* FAMILY_sum and FAMILY_count of method M, from its histogram H. */
static void emit_sum_count(text *t, const char *family, const Kvstore__V1__MethodStats *m,
                           const kv_latency *h)
{
    emit(t, PREFIX "%s_sum{method=\"", family);
    emit_label_value(t, method_name(m));
    emit(t, "\"} ");
    emit_double(t, (double)h->sum_ns / 1e9);
    emit(t, "\n" PREFIX "%s_count{method=\"", family);
    emit_label_value(t, method_name(m));
    emit(t, "\"} %" PRIu64 "\n", h->count);
}

/* A method's latency histogram: the 82 fine buckets folded to their powers
 * of two (le = 10 us, 20 us, ... 10.49 s: each fourth bucket's upper bound
 * ends a doubling), cumulative, then +Inf, _sum and _count. */
static void render_histogram(text *t, const Kvstore__V1__MethodStats *m, const kv_latency *h)
{
    uint64_t below = 0;
    unsigned b = 0;

    for (unsigned k = 0; k <= KV_LATENCY_DOUBLINGS; k++) {
        for (; b <= 4 * k; b++)
            below += h->buckets[b];
        emit_method(t, "request_duration_seconds_bucket", m);
        emit(t, ",le=\"");
        emit_double(t, (double)kv_latency_upper_ns(4 * k) / 1e9);
        emit(t, "\"} %" PRIu64 "\n", below);
    }
    emit_method(t, "request_duration_seconds_bucket", m);
    emit(t, ",le=\"+Inf\"} %" PRIu64 "\n", h->count);
    emit_sum_count(t, "request_duration_seconds", m, h);
}

/* StatsResponse.methods: answers per method and code, errors, the
 * quantiles Stats estimates, and the histograms they come from. A
 * method's calls are the sum of its codes (and its histogram's count). */
static void render_methods(text *t, const Kvstore__V1__StatsResponse *r, const family *f)
{
    static const struct { const char *label; size_t offset; } quantiles[] = {
        { "0.5", offsetof(Kvstore__V1__MethodStats, latency_p50_us) },
        { "0.99", offsetof(Kvstore__V1__MethodStats, latency_p99_us) },
        { "0.999", offsetof(Kvstore__V1__MethodStats, latency_p999_us) },
    };

    header(t, f->name, "counter", f->help);
    for (size_t i = 0; i < r->n_methods; i++) {
        const Kvstore__V1__MethodStats *m = r->methods[i];
        for (size_t c = 0; c < m->n_codes; c++) {
            emit_method(t, f->name, m);
            emit(t, ",code=\"%s\"} %" PRIu64 "\n", kv_status_name(m->codes[c]->code),
                 m->codes[c]->count);
        }
    }
    header(t, "request_errors_total", "counter",
           "Requests answered with a status other than OK, by method.");
    for (size_t i = 0; i < r->n_methods; i++) {
        emit_method(t, "request_errors_total", r->methods[i]);
        emit(t, "} %" PRIu64 "\n", r->methods[i]->errors);
    }
    /* A summary, because its quantile label means that to Prometheus;
     * its _sum and _count are the histogram's. */
    header(t, "request_latency_seconds", "summary",
           "The latency quantiles Stats reports (p50, p99, p999), by method, estimated "
           "from kvstore_request_duration_seconds.");
    for (size_t i = 0; i < r->n_methods && i < t->n_lat; i++) {
        for (size_t q = 0; q < sizeof quantiles / sizeof *quantiles; q++) {
            uint64_t us = *(const uint64_t *)((const char *)r->methods[i] + quantiles[q].offset);
            emit_method(t, "request_latency_seconds", r->methods[i]);
            emit(t, ",quantile=\"%s\"} ", quantiles[q].label);
            emit_double(t, (double)us / 1e6);
            emit(t, "\n");
        }
        emit_sum_count(t, "request_latency_seconds", r->methods[i], &t->lat[i]);
    }
    header(t, "request_duration_seconds", "histogram",
           "The time from a request read to its answer written, by method.");
    for (size_t i = 0; i < r->n_methods && i < t->n_lat; i++)
        render_histogram(t, r->methods[i], &t->lat[i]);
}

/* version and engine: kvstore_build_info{version,engine} 1. */
static void render_build_info(text *t, const Kvstore__V1__StatsResponse *r, const family *f)
{
    header(t, f->name, "gauge", f->help);
    emit(t, PREFIX "%s{version=\"", f->name);
    emit_label_value(t, r->version ? r->version : "");
    emit(t, "\",engine=\"");
    emit_label_value(t, r->engine ? r->engine : "");
    emit(t, "\"} 1\n");
}

static void render_closed(text *t, const Kvstore__V1__StatsResponse *r, const family *f)
{
    header(t, f->name, "counter", f->help);
    for (size_t i = 0; i < r->n_connections_closed; i++) {
        emit(t, PREFIX "%s{reason=\"", f->name);
        emit_label_value(t, r->connections_closed[i]->reason);
        emit(t, "\"} %" PRIu64 "\n", r->connections_closed[i]->count);
    }
}

static void render_settings(text *t, const Kvstore__V1__StatsResponse *r, const family *f)
{
    if (!r->n_settings)
        return;
    header(t, f->name, "gauge", f->help);
    for (size_t i = 0; i < r->n_settings; i++) {
        emit(t, PREFIX "%s{name=\"", f->name);
        emit_label_value(t, r->settings[i]->name);
        emit(t, "\",value=\"");
        emit_label_value(t, r->settings[i]->value);
        emit(t, "\"} 1\n");
    }
}

/* Rendered by another field's entry (engine: with version). */
static void render_none(text *t, const Kvstore__V1__StatsResponse *r, const family *f)
{
    (void)t;
    (void)r;
    (void)f;
}

#define G "gauge"
#define C "counter"

/* In the order /metrics shows them. Counters end in _total; a field that
 * counts without the suffix gets it here. */
static const family families[] = {
    { "uptime_seconds", "uptime_seconds", G, NULL, 0, "Seconds since kvstored started.", NULL },
    { "version", "build_info", G, NULL, 0,
      "The version of kvstored and its storage engine; always 1.", render_build_info },
    { "engine", "build_info", G, NULL, 0, NULL, render_none },
    { "pid", "pid", G, NULL, 0, "kvstored's process id.", NULL },
    { "cpu_user_seconds", "cpu_seconds_total", C, "mode=\"user\"", 0,
      "CPU time kvstored has used, by mode.", NULL },
    { "cpu_system_seconds", "cpu_seconds_total", C, "mode=\"system\"", 0,
      "CPU time kvstored has used, by mode.", NULL },
    { "resident_memory_bytes", "resident_memory_bytes", G, NULL, 0,
      "The process's resident set size.", NULL },
    { "listen_addresses", "listen_info", G, "address", 0,
      "A client listener's address (HOST:PORT); always 1.", NULL },
    { "metrics_address", "metrics_listen_info", G, "address", 0,
      "The address of /metrics and /health (--metrics-listen); always 1.", NULL },
    { "settings", "setting_info", G, NULL, 0,
      "A setting in force (flags, --config file, defaults); always 1.", render_settings },
    /* Connections and the buffers' budgets. */
    { "connections_current", "connections_current", G, NULL, 0,
      "Client connections open now.", NULL },
    { "connections_total", "connections_total", C, NULL, 0,
      "Client connections accepted since start.", NULL },
    { "connections_rejected", "connections_rejected_total", C, NULL, 0,
      "Client connections refused for --max-clients.", NULL },
    { "connections_closed", "connections_closed_total", C, NULL, 0,
      "Client connections closed, by reason.", render_closed },
    { "connections_closed_output", "connections_closed_output_total", C, NULL, 0,
      "Connections closed for leaving answers unread while all connections' were over "
      "--max-output-bytes.", NULL },
    { "input_buffer_bytes", "input_buffer_bytes", G, NULL, 0,
      "Input buffered by all connections, as charged to --max-input-bytes.", NULL },
    { "output_buffer_bytes", "output_buffer_bytes", G, NULL, 0,
      "Answers buffered for all connections, not yet read by their clients.", NULL },
    { "net_input_bytes", "net_input_bytes_total", C, NULL, 0,
      "Bytes read from client sockets.", NULL },
    { "net_output_bytes", "net_output_bytes_total", C, NULL, 0,
      "Bytes written to client sockets.", NULL },
    { "auth_refused", "auth_refused_total", C, NULL, 0,
      "Auth calls refused unchecked: their address had failed too often.", NULL },
    /* Requests. */
    { "requests_total", "responses_total", C, NULL, 0,
      "Requests answered, malformed ones (which have no method) included.", NULL },
    { "errors_total", "response_errors_total", C, NULL, 0,
      "Answers with a status other than OK, malformed requests included.", NULL },
    { "methods", "requests_total", C, NULL, 0, "Requests answered, by method and status.",
      render_methods },
    { "ops_per_second", "ops_per_second", G, NULL, 0,
      "Requests answered in the last whole second.", NULL },
    { "get_hits", "get_hits_total", C, NULL, 0, "Get calls that found their key.", NULL },
    { "get_misses", "get_misses_total", C, NULL, 0, "Get calls answered NOT_FOUND.", NULL },
    { "slowlog_length", "slowlog_length", G, NULL, 0, "Entries in the slow log now.", NULL },
    { "slowlog_total", "slowlog_total", C, NULL, 0,
      "Requests logged as slower than --slowlog-us.", NULL },
    /* The data and the engine. */
    { "keys", "keys", G, NULL, 0, "Keys stored.", NULL },
    { "keys_with_ttl", "keys_with_ttl", G, NULL, 0, "Keys that have a time to live.", NULL },
    { "data_bytes", "data_bytes", G, NULL, 0, "The lengths of the keys and values stored.", NULL },
    { "expired_keys_total", "expired_keys_total", C, NULL, 0,
      "Keys removed by expiry.", NULL },
    { "revision", "revision", G, NULL, 0, "The store's revision.", NULL },
    { "engine_memory_bytes", "engine_memory_bytes", G, NULL, 0,
      "What the engine holds in memory, its overhead included.", NULL },
    { "max_memory_bytes", "max_memory_bytes", G, NULL, 0,
      "--max-memory-bytes; 0: no limit.", NULL },
    { "engine_file_bytes", "engine_file_bytes", G, NULL, 0,
      "The size of the engine's files (0: it keeps none).", NULL },
    { "engine_map_bytes", "engine_map_bytes", G, NULL, 0,
      "lmdb: the map size, the most its data may take.", NULL },
    { "engine_sync", "engine_sync_info", G, "mode", 0,
      "The engine's --sync mode; always 1.", NULL },
    { "engine_last_sync_unix_ms", "engine_last_sync_timestamp_seconds", G, NULL, 1000,
      "When writes were last made durable, in seconds since the Unix epoch; "
      "0: not since start.", NULL },
    { "engine_syncs_total", "engine_syncs_total", C, NULL, 0,
      "Times the engine made writes durable.", NULL },
    { "engine_sync_seconds_total", "engine_sync_seconds_total", C, NULL, 0,
      "The time those syncs took.", NULL },
    /* Watches. */
    { "watchers", "watchers", G, NULL, 0, "Open watches, all connections.", NULL },
    { "watch_events_total", "watch_events_total", C, NULL, 0,
      "Events sent to watchers.", NULL },
    { "watch_history_oldest", "watch_history_oldest_revision", G, NULL, 0,
      "The oldest revision a watch may start at.", NULL },
    /* The cluster: 0 on a single node. */
    { "cluster_node_id", "cluster_node_id", G, NULL, 0,
      "This node's id; 0: not a cluster member.", NULL },
    { "cluster_role", "cluster_role_info", G, "role", 0,
      "This node's role in the cluster (leader, follower, candidate, unavailable); "
      "always 1.", NULL },
    { "cluster_leader_id", "cluster_leader_id", G, NULL, 0,
      "The leader's id as this node knows it; 0: none known.", NULL },
    { "cluster_term", "cluster_term", G, NULL, 0, "The raft term.", NULL },
    { "cluster_commit_index", "cluster_commit_index", G, NULL, 0,
      "The highest raft log index known committed.", NULL },
    { "cluster_applied_index", "cluster_applied_index", G, NULL, 0,
      "The highest raft log index applied here.", NULL },
    { "cluster_members", "cluster_members", G, NULL, 0,
      "Members of the cluster's configuration.", NULL },
    { "cluster_dedup_entries", "cluster_dedup_entries", G, NULL, 0,
      "Outcomes of writes remembered for clients' retries.", NULL },
    { "cluster_elections_won", "cluster_elections_won_total", C, NULL, 0,
      "Times this node became leader.", NULL },
};

#define N_FAMILIES (sizeof families / sizeof *families)

static const family *family_for(const char *field)
{
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (strcmp(families[i].field, field) == 0)
            return &families[i];
    return NULL;
}

const char *kv_metrics_family_of(const char *field)
{
    const family *f = family_for(field);

    return f ? f->name : NULL;
}

/* A field with no entry: kvstore_<field>, a counter when it ends in _total
 * (a gauge otherwise), or kvstore_<field>_info{value=...} for strings;
 * messages are left out until they have an entry. */
static void render_fallback(text *t, const Kvstore__V1__StatsResponse *r,
                            const ProtobufCFieldDescriptor *fd)
{
    size_t len = strlen(fd->name);
    int counter = len > 6 && strcmp(fd->name + len - 6, "_total") == 0;
    char name[128], help[192];
    family f = { fd->name, name, counter ? C : G, NULL, 0, help, NULL };

    snprintf(help, sizeof help, "StatsResponse.%s (no description here yet).", fd->name);
    if (fd->type == PROTOBUF_C_TYPE_STRING) {
        snprintf(name, sizeof name, "%s_info", fd->name);
        f.label = "value";
    } else {
        snprintf(name, sizeof name, "%s", fd->name);
    }
    render_field(t, r, &f);
    t->family = NULL;       /* NAME and HELP go out of scope */
}

int kv_metrics_render(const Kvstore__V1__StatsResponse *r, const kv_latency *lat,
                      size_t n_lat, kv_buf *out)
{
    const ProtobufCMessageDescriptor *d = &kvstore__v1__stats_response__descriptor;
    text t = { out, 0, NULL, lat, n_lat };

    header(&t, "up", G, "1: kvstored answered this scrape.");
    emit(&t, PREFIX "up 1\n");
    for (size_t i = 0; i < N_FAMILIES; i++)
        (families[i].render ? families[i].render : render_field)(&t, r, &families[i]);
    for (unsigned i = 0; i < d->n_fields; i++)
        if (!family_for(d->fields[i].name))
            render_fallback(&t, r, &d->fields[i]);
    return t.failed ? -1 : 0;
}
