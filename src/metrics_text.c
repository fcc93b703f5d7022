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
#include "utf8.h"

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

/* A label value: \, " and newline escaped, as the format asks, and a byte
 * that is not part of well-formed UTF-8 written as the text \xHH (its
 * backslash escaped): Prometheus refuses a scrape with an invalid label
 * value whole. */
static void emit_label_value(text *t, const char *v)
{
    const uint8_t *p = (const uint8_t *)v;
    size_t len = strlen(v), run = 0;
    size_t bad = kv_utf8_check(p, len);     /* the first ill-formed byte */

    for (size_t i = 0; i < len; i++) {
        const char *esc = p[i] == '\\' ? "\\\\" : p[i] == '"' ? "\\\"" : p[i] == '\n' ? "\\n" : NULL;
        char hex[8];
        if (i == bad) {
            snprintf(hex, sizeof hex, "\\\\x%02x", p[i]);
            esc = hex;
            bad = i + 1 + kv_utf8_check(p + i + 1, len - i - 1);
        }
        if (!esc)
            continue;
        emit(t, "%.*s%s", (int)(i - run), v + run, esc);
        run = i + 1;
    }
    emit(t, "%s", v + run);
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
    emit(t, "\"} %" PRIu64 "\n", kv_latency_count(h));
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
    emit(t, ",le=\"+Inf\"} %" PRIu64 "\n", kv_latency_count(h));
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
/* A field rendered by its type under its own name, or under NAME. */
#define GAUGE(field, help) { field, field, G, NULL, 0, help, NULL }
#define GAUGE_AS(field, name, help) { field, name, G, NULL, 0, help, NULL }
#define COUNTER(field, help) { field, field, C, NULL, 0, help, NULL }
#define COUNTER_AS(field, name, help) { field, name, C, NULL, 0, help, NULL }

/* In the order /metrics shows them. Counters end in _total; a field that
 * counts without the suffix gets it here. */
static const family families[] = {
    GAUGE("uptime_seconds", "Seconds since kvstored started."),
    { "version", "build_info", G, NULL, 0,
      "The version of kvstored and its storage engine; always 1.", render_build_info },
    { "engine", "build_info", G, NULL, 0, NULL, render_none },
    GAUGE("pid", "kvstored's process id."),
    { "cpu_user_seconds", "cpu_seconds_total", C, "mode=\"user\"", 0,
      "CPU time kvstored has used, by mode.", NULL },
    { "cpu_system_seconds", "cpu_seconds_total", C, "mode=\"system\"", 0,
      "CPU time kvstored has used, by mode.", NULL },
    GAUGE("resident_memory_bytes", "The process's resident set size."),
    { "listen_addresses", "listen_info", G, "address", 0,
      "A client listener's address (HOST:PORT); always 1.", NULL },
    { "metrics_address", "metrics_listen_info", G, "address", 0,
      "The address of /metrics and /health (--metrics-listen); always 1.", NULL },
    { "settings", "setting_info", G, NULL, 0,
      "A setting in force (flags, --config file, defaults); always 1.", render_settings },
    /* Connections and the buffers' budgets. */
    GAUGE("connections_current", "Client connections open now."),
    COUNTER("connections_total", "Client connections accepted since start."),
    COUNTER_AS("connections_rejected", "connections_rejected_total",
        "Client connections refused for --max-clients."),
    { "connections_closed", "connections_closed_total", C, NULL, 0,
      "Client connections closed, by reason.", render_closed },
    COUNTER_AS("connections_closed_output", "connections_closed_output_total",
        "Connections closed for answers left unread while the answers of all connections "
        "were over --max-output-bytes."),
    GAUGE("input_buffer_bytes",
        "Input buffered by all connections, as charged to --max-input-bytes."),
    GAUGE("output_buffer_bytes",
        "Answers buffered for all connections, not yet read by their clients."),
    COUNTER_AS("net_input_bytes", "net_input_bytes_total", "Bytes read from client sockets."),
    COUNTER_AS("net_output_bytes", "net_output_bytes_total", "Bytes written to client sockets."),
    COUNTER_AS("auth_refused", "auth_refused_total",
        "Auth calls refused unchecked: their address had failed too often."),
    /* Requests. */
    COUNTER_AS("requests_total", "responses_total",
        "Requests answered, malformed ones (which have no method) included."),
    COUNTER_AS("errors_total", "response_errors_total",
        "Answers with a status other than OK, malformed requests included."),
    { "methods", "requests_total", C, NULL, 0, "Requests answered, by method and status.",
      render_methods },
    GAUGE("ops_per_second", "Requests answered in the last whole second."),
    COUNTER_AS("get_hits", "get_hits_total", "Get calls that found their key."),
    COUNTER_AS("get_misses", "get_misses_total", "Get calls answered NOT_FOUND."),
    GAUGE("slowlog_length", "Entries in the slow log now."),
    COUNTER("slowlog_total", "Requests logged as slower than --slowlog-us."),
    /* The data and the engine. */
    GAUGE("keys", "Keys stored."),
    GAUGE("keys_with_ttl", "Keys that have a time to live."),
    GAUGE("data_bytes", "The lengths of the keys and values stored."),
    COUNTER("expired_keys_total", "Keys removed by expiry."),
    GAUGE("revision", "The store's revision."),
    GAUGE("engine_memory_bytes", "What the engine holds in memory, its overhead included."),
    GAUGE("max_memory_bytes", "--max-memory-bytes; 0: no limit."),
    GAUGE("engine_file_bytes", "The size of the engine's files (0: it keeps none)."),
    GAUGE("engine_map_bytes", "lmdb: the map size, the most its data may take."),
    { "engine_sync", "engine_sync_info", G, "mode", 0,
      "The engine's --sync mode; always 1.", NULL },
    { "engine_last_sync_unix_ms", "engine_last_sync_timestamp_seconds", G, NULL, 1000,
      "When writes were last made durable, in seconds since the Unix epoch; "
      "0: not since start.", NULL },
    COUNTER("engine_syncs_total", "Times the engine made writes durable."),
    COUNTER("engine_sync_seconds_total", "The time those syncs took."),
    /* Watches. */
    GAUGE("watchers", "Open watches, all connections."),
    COUNTER("watch_events_total", "Events sent to watchers."),
    GAUGE_AS("watch_history_oldest", "watch_history_oldest_revision",
        "The oldest revision a watch may start at."),
    /* The cluster: 0 on a single node. */
    GAUGE("cluster_node_id", "This node's id; 0: not a cluster member."),
    { "cluster_role", "cluster_role_info", G, "role", 0,
      "This node's role in the cluster (leader, follower, candidate, unavailable); "
      "always 1.", NULL },
    GAUGE("cluster_leader_id", "The leader's id as this node knows it; 0: none known."),
    GAUGE("cluster_term", "The raft term."),
    GAUGE("cluster_commit_index", "The highest raft log index known committed."),
    GAUGE("cluster_applied_index", "The highest raft log index applied here."),
    GAUGE("cluster_members", "Members of the cluster's configuration."),
    GAUGE("cluster_dedup_entries", "Outcomes of writes remembered for clients' retries."),
    COUNTER_AS("cluster_elections_won", "cluster_elections_won_total",
        "Times this node became leader."),
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
