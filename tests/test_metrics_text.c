/* test_metrics_text.c - /metrics' text (src/metrics_text.c) without a
 * socket: every field of StatsResponse has a family and shows up with its
 * value, each family has one HELP and one TYPE before its samples and its
 * samples together, the latency histograms are cumulative and end in +Inf
 * equal to their count, and label values are escaped. (promtool and a
 * real Prometheus read the live text in tests/test_metrics.py.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "metrics_text.h"

#define MAX_METHODS 32

/* A StatsResponse whose every number is distinct (field number * 1000 +
 * 7; doubles + 0.5), strings "s<number>", two methods with codes, close
 * reasons and settings; plus latency histograms for its methods. */
typedef struct sample {
    Kvstore__V1__StatsResponse r;
    Kvstore__V1__MethodStats ms[2], *msp[2];
    Kvstore__V1__CodeCount cc[3], *ccp[3];
    Kvstore__V1__CloseReason cr[2], *crp[2];
    Kvstore__V1__Setting set[2], *setp[2];
    char *listen[2];
    char strings[64][16];
    kv_latency lat[MAX_METHODS];
} sample;

static void fill(sample *s)
{
    const ProtobufCMessageDescriptor *d = &kvstore__v1__stats_response__descriptor;

    memset(s, 0, sizeof *s);
    kvstore__v1__stats_response__init(&s->r);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *p = (char *)&s->r + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            continue;
        if (f->type == PROTOBUF_C_TYPE_UINT64)
            *(uint64_t *)p = f->id * 1000u + 7;
        else if (f->type == PROTOBUF_C_TYPE_DOUBLE)
            *(double *)p = f->id + 0.5;
        else if (f->type == PROTOBUF_C_TYPE_STRING) {
            snprintf(s->strings[f->id], sizeof s->strings[f->id], "s%u", f->id);
            *(char **)p = s->strings[f->id];
        }
    }
    static const char *const paths[2] = { "/kvstore.v1.KV/Get", "/kvstore.v1.KV/Set" };
    for (unsigned i = 0; i < 2; i++) {
        kvstore__v1__method_stats__init(&s->ms[i]);
        s->ms[i].method = (char *)paths[i];
        s->ms[i].errors = 40 + i;
        s->ms[i].latency_p50_us = 10;
        s->ms[i].latency_p99_us = 1500;
        s->ms[i].latency_p999_us = 2000000;
        s->msp[i] = &s->ms[i];
    }
    for (unsigned c = 0; c < 3; c++) {
        kvstore__v1__code_count__init(&s->cc[c]);
        s->ccp[c] = &s->cc[c];
    }
    s->cc[0].code = KVSTORE__V1__STATUS_CODE__OK, s->cc[0].count = 3;
    s->cc[1].code = KVSTORE__V1__STATUS_CODE__NOT_FOUND, s->cc[1].count = 2;
    s->cc[2].code = KVSTORE__V1__STATUS_CODE__OK, s->cc[2].count = 5;
    s->ms[0].n_codes = 2, s->ms[0].codes = s->ccp;
    s->ms[1].n_codes = 1, s->ms[1].codes = s->ccp + 2;
    s->r.n_methods = 2, s->r.methods = s->msp;
    for (unsigned i = 0; i < 2; i++) {
        kvstore__v1__close_reason__init(&s->cr[i]);
        s->cr[i].reason = (char *)(i ? "idle" : "client");
        s->cr[i].count = 60 + i;
        s->crp[i] = &s->cr[i];
        kvstore__v1__setting__init(&s->set[i]);
        s->setp[i] = &s->set[i];
    }
    s->r.n_connections_closed = 2, s->r.connections_closed = s->crp;
    s->set[0].name = "max-clients", s->set[0].value = "10000";
    s->set[1].name = "odd", s->set[1].value = "a\"b\\c\nd";
    s->r.n_settings = 2, s->r.settings = s->setp;
    s->listen[0] = "127.0.0.1:7000", s->listen[1] = "[::1]:7000";
    s->r.n_listen_addresses = 2, s->r.listen_addresses = s->listen;
    /* Get: 5 us (first bucket), 15 us, 1 ms, 20 s (past the last bound). */
    kv_latency_record(&s->lat[0], 5000);
    kv_latency_record(&s->lat[0], 15000);
    kv_latency_record(&s->lat[0], 1000000);
    kv_latency_record(&s->lat[0], 20000000000ull);
    kv_latency_record(&s->lat[1], 10000);
}

/* The rendered text, NUL-terminated; the caller frees it. */
static char *render(const sample *s)
{
    kv_buf out = KV_BUF_INIT;

    assert_int_equal(kv_metrics_render(&s->r, s->lat, 2, &out), 0);
    assert_int_equal(kv_buf_append(&out, "", 1), 0);
    return (char *)out.data;
}

/* Whether TEXT has LINE as a whole line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

/* Fails naming the first of LINES[0..N) that TEXT does not have. */
static void assert_lines(const char *text, const char *const *lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!has_line(text, lines[i]))
            fail_msg("no line %s in:\n%s", lines[i], text);
}

static void every_field_of_stats_has_a_family(void **state)
{
    const ProtobufCMessageDescriptor *d = &kvstore__v1__stats_response__descriptor;

    (void)state;
    for (unsigned i = 0; i < d->n_fields; i++)
        if (!kv_metrics_family_of(d->fields[i].name))
            fail_msg("StatsResponse.%s has no family in src/metrics_text.c", d->fields[i].name);
    assert_null(kv_metrics_family_of("no_such_field"));
}

static void every_number_shows_up_with_its_value(void **state)
{
    const ProtobufCMessageDescriptor *d = &kvstore__v1__stats_response__descriptor;
    sample s;
    char want[256];

    (void)state;
    fill(&s);
    char *text = render(&s);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *family = kv_metrics_family_of(f->name);
        if (f->label == PROTOBUF_C_LABEL_REPEATED || f->type == PROTOBUF_C_TYPE_STRING)
            continue;
        char value[32];
        if (f->type == PROTOBUF_C_TYPE_DOUBLE)
            snprintf(value, sizeof value, "%g", f->id + 0.5);
        else if (strcmp(f->name, "engine_last_sync_unix_ms") == 0)
            snprintf(value, sizeof value, "%g", (f->id * 1000 + 7) / 1000.0);  /* ms to s */
        else
            snprintf(value, sizeof value, "%u", f->id * 1000 + 7);
        snprintf(want, sizeof want, "kvstore_%s", family);
        const char *p = strstr(text, want);
        int found = 0;
        for (; p && !found; p = strstr(p + 1, want)) {
            const char *eol = strchr(p, '\n');
            const char *sp = eol ? memrchr(p, ' ', (size_t)(eol - p)) : NULL;
            found = sp && (size_t)(eol - sp - 1) == strlen(value)
                    && memcmp(sp + 1, value, strlen(value)) == 0
                    && (p == text || p[-1] == '\n');
        }
        if (!found)
            fail_msg("StatsResponse.%s: no sample of kvstore_%s with %s", f->name, family, value);
    }
    static const char *const lines[] = {
        "kvstore_up 1",
        "kvstore_build_info{version=\"s12\",engine=\"s11\"} 1",
        "kvstore_cpu_seconds_total{mode=\"user\"} 40.5",
        "kvstore_cpu_seconds_total{mode=\"system\"} 41.5",
        "kvstore_engine_sync_info{mode=\"s18\"} 1",
        "kvstore_cluster_role_info{role=\"s30\"} 1",
        "kvstore_metrics_listen_info{address=\"s53\"} 1",
        "kvstore_listen_info{address=\"[::1]:7000\"} 1",
        "kvstore_connections_closed_total{reason=\"idle\"} 61",
        "kvstore_requests_total{method=\"Get\",code=\"NOT_FOUND\"} 2",
        "kvstore_requests_total{method=\"Set\",code=\"OK\"} 5",
        "kvstore_request_errors_total{method=\"Set\"} 41",
        "kvstore_request_latency_seconds{method=\"Get\",quantile=\"0.99\"} 0.0015",
        "kvstore_setting_info{name=\"max-clients\",value=\"10000\"} 1",
    };
    assert_lines(text, lines, sizeof lines / sizeof *lines);
    free(text);
}

static void label_values_are_escaped(void **state)
{
    sample s;

    (void)state;
    fill(&s);
    char *text = render(&s);
    assert_true(has_line(text, "kvstore_setting_info{name=\"odd\",value=\"a\\\"b\\\\c\\nd\"} 1"));
    free(text);
}

/* A value that is not valid UTF-8 (a --dir path's bytes): Prometheus
 * refuses the whole scrape over one invalid label value, so each
 * ill-formed byte goes out as the text \xHH; well-formed UTF-8 as is. */
static void label_values_are_valid_utf8(void **state)
{
    sample s;

    (void)state;
    fill(&s);
    s.set[1].value = "/tmp/kv\xff\xe2\x82|\xc3\xa9\"";
    char *text = render(&s);
    assert_true(has_line(text, "kvstore_setting_info{name=\"odd\","
                               "value=\"/tmp/kv\\\\xff\\\\xe2\\\\x82|\xc3\xa9\\\"\"} 1"));
    free(text);
}

static void empty_strings_and_missing_lists_render_nothing(void **state)
{
    sample s;

    (void)state;
    fill(&s);
    s.r.cluster_role = "";
    s.r.n_listen_addresses = 0;
    s.r.n_settings = 0;
    char *text = render(&s);
    assert_null(strstr(text, "kvstore_cluster_role_info"));
    assert_null(strstr(text, "kvstore_listen_info"));
    assert_null(strstr(text, "kvstore_setting_info"));
    free(text);
}

/* Whether the N bytes at S are what may follow a family's name in its
 * samples' names: nothing, _bucket, _sum or _count. */
static int suffix_ok(const char *s, size_t n)
{
    static const char *const ok[] = { "", "_bucket", "_sum", "_count" };

    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (n == strlen(ok[i]) && strncmp(s, ok[i], n) == 0)
            return 1;
    return 0;
}

/* One HELP and one TYPE per family, before its samples, and a family's
 * samples all in one run (the format's rule). */
static void families_are_whole_and_described_once(void **state)
{
    sample s;
    char seen[256][96];
    size_t n_seen = 0;
    char current[96] = "";

    (void)state;
    fill(&s);
    char *text = render(&s);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char name[96];
        if (strncmp(line, "# HELP ", 7) == 0) {
            assert_int_equal(sscanf(line + 7, "%95s", name), 1);
            for (size_t i = 0; i < n_seen; i++)
                if (strcmp(seen[i], name) == 0)
                    fail_msg("%s described twice", name);
            assert_true(n_seen < 256);
            snprintf(seen[n_seen++], sizeof seen[0], "%s", name);
            snprintf(current, sizeof current, "%s", name);
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_int_equal(sscanf(line + 7, "%95s", name), 1);
            assert_string_equal(name, current);
            continue;
        }
        size_t len = strcspn(line, "{ ");
        size_t cur = strlen(current);
        /* A sample of the current family, or of its _bucket, _sum, _count. */
        if (len < cur || strncmp(line, current, cur) != 0 || !suffix_ok(line + cur, len - cur))
            fail_msg("%s is not a sample of %s", line, current);
    }
    free(text);
}

#define GET_BUCKET "kvstore_request_duration_seconds_bucket{method=\"Get\","

static void histograms_are_cumulative_up_to_inf_equal_to_count(void **state)
{
    sample s;

    (void)state;
    fill(&s);
    char *text = render(&s);
    /* 5 us and 15 us are under 20 us; 1 ms under 1.28 ms; 20 s only under
     * +Inf. */
    static const char *const lines[] = {
        GET_BUCKET "le=\"1e-05\"} 1",
        GET_BUCKET "le=\"2e-05\"} 2",
        GET_BUCKET "le=\"0.00064\"} 2",
        GET_BUCKET "le=\"0.00128\"} 3",
        GET_BUCKET "le=\"10.48576\"} 3",
        GET_BUCKET "le=\"+Inf\"} 4",
        "kvstore_request_duration_seconds_count{method=\"Get\"} 4",
        "kvstore_request_duration_seconds_sum{method=\"Get\"} 20.00102",
        "kvstore_request_duration_seconds_bucket{method=\"Set\",le=\"1e-05\"} 1",
    };
    assert_lines(text, lines, sizeof lines / sizeof *lines);
    /* Every bucket line: 21 bounds and +Inf per method, never decreasing. */
    const char *p = text;
    unsigned n_buckets = 0;
    uint64_t last = 0;
    char method[16] = "", m[16];
    static const char bucket[] = "kvstore_request_duration_seconds_bucket{method=\"";
    while ((p = strstr(p, bucket))) {
        uint64_t v;
        const char *sp = strchr(p, '}');
        assert_int_equal(sscanf(p + strlen(bucket), "%15[^\"]", m), 1);
        assert_int_equal(sscanf(sp + 1, " %" SCNu64, &v), 1);
        if (strcmp(m, method) != 0) {
            snprintf(method, sizeof method, "%s", m);
            last = 0;
        }
        assert_true(v >= last);
        last = v;
        n_buckets++;
        p = sp;
    }
    assert_int_equal(n_buckets, 2 * (KV_LATENCY_DOUBLINGS + 2));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_field_of_stats_has_a_family),
        cmocka_unit_test(every_number_shows_up_with_its_value),
        cmocka_unit_test(label_values_are_escaped),
        cmocka_unit_test(label_values_are_valid_utf8),
        cmocka_unit_test(empty_strings_and_missing_lists_render_nothing),
        cmocka_unit_test(families_are_whole_and_described_once),
        cmocka_unit_test(histograms_are_cumulative_up_to_inf_equal_to_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
