/* report.c - formats results; see report.h. Owns no state: the progress
 * line lives with the loop that knows the counts (run.c). */
#include <stdio.h>
#include <string.h>
#include "report.h"

#define MS(ns) ((double)(ns) / 1e6)


/* The latency summary's table, in milliseconds, as redis-benchmark prints it. */
static void print_latency(double avg, double min, double p50, double p95, double p99,
                          double p999, double max)
{
    printf("    %9s %9s %9s %9s %9s %9s %9s\n", "avg", "min", "p50", "p95", "p99", "p99.9",
           "max");
    printf("    %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n\n", avg, min, p50, p95, p99, p999,
           max);
}

void kb_report_csv_header(void)
{
    printf("\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\","
           "\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\",\"p999_latency_ms\"\n");
}

void kb_report_result(kb_style style, const kb_plan *p, const kb_result *r)
{
    const kb_hist *h = &r->latency;
    const char *title = kb_wire_method_title(p->method);
    double rps = r->seconds > 0 ? (double)r->ok / r->seconds : 0.0;
    double avg = kb_hist_mean(h) / 1e6, min = h->count ? MS(h->min) : 0.0;
    double p50 = MS(kb_hist_percentile(h, 50)), p95 = MS(kb_hist_percentile(h, 95));
    double p99 = MS(kb_hist_percentile(h, 99)), max = MS(h->max);
    double p999 = MS(kb_hist_percentile(h, 99.9));

    switch (style) {
    case KB_STYLE_CSV:
        printf("\"%s\",\"%.2f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\"\n",
               title, rps, avg, min, p50, p95, p99, max, p999);
        break;
    case KB_STYLE_QUIET:
        printf("%s: %.2f requests per second, p50=%.3f p99=%.3f p99.9=%.3f max=%.3f msec\n",
               title, rps, p50, p99, p999, max);
        break;
    default:
        printf("====== %s ======\n", title);
        printf("  %llu requests completed in %.2f seconds\n",
               (unsigned long long)r->ok, r->seconds);
        printf("  %d parallel clients, pipeline %d, %zu bytes payload, %d thread%s, "
               "protocol %s\n", p->clients, p->pipeline, p->value_len, p->threads,
               p->threads == 1 ? "" : "s", p->proto->name);
        if (p->method == KB_PING)
            printf("  keys: none\n");
        else if (p->keys == KB_KEYS_RANDOM)
            printf("  keys: random over %llu\n", (unsigned long long)p->keyspace);
        else if (p->keys == KB_KEYS_SEQUENTIAL)
            printf("  keys: sequential from 0\n");
        else
            printf("  keys: one fixed key\n");
        printf("\nSummary:\n");
        printf("  throughput summary: %.2f requests per second\n", rps);
        printf("  latency summary (msec):\n");
        print_latency(avg, min, p50, p95, p99, p999, max);
        break;
    }
    fflush(stdout);
}

int kb_report_hist(FILE *f, const kb_plan *p, const kb_result *r, int first)
{
    fprintf(f, "%s#[Test %s -c %d -P %d -d %zu, protocol %s, %.2f requests per second; "
            "latency in ms]\n", first ? "" : "\n\n", kb_wire_method_title(p->method), p->clients,
            p->pipeline, p->value_len, p->proto->name,
            r->seconds > 0 ? (double)r->ok / r->seconds : 0.0);
    return kb_hist_write_distribution(&r->latency, f, 1e6);
}

int kb_report_problems(const char *what, const kb_result *r)
{
    int bad = 0;

    if (r->errors) {
        fprintf(stderr, "kvbench: %s: %llu error answer%s (first: %s)\n", what,
                (unsigned long long)r->errors, r->errors == 1 ? "" : "s", r->first_error);
        bad = -1;
    }
    if (r->wrong) {
        fprintf(stderr, "kvbench: %s: %llu wrong answer%s (first: %s)\n", what,
                (unsigned long long)r->wrong, r->wrong == 1 ? "" : "s", r->first_wrong);
        bad = -1;
    }
    if (r->fatal[0]) {
        fprintf(stderr, "kvbench: %s: stopped after %llu answers: %s\n", what,
                (unsigned long long)r->answered, r->fatal);
        bad = -1;
    }
    return bad;
}

void kb_report_scan(kb_style style, const kb_scan_plan *p, const kb_scan_result *r)
{
    const kb_hist *h = &r->latency;
    double pps = r->seconds > 0 ? (double)r->pages / r->seconds : 0.0;
    double kps = r->seconds > 0 ? (double)r->keys / r->seconds : 0.0;
    double avg = kb_hist_mean(h) / 1e6, min = h->count ? MS(h->min) : 0.0;
    double p50 = MS(kb_hist_percentile(h, 50)), p95 = MS(kb_hist_percentile(h, 95));
    double p99 = MS(kb_hist_percentile(h, 99)), max = MS(h->max);
    double p999 = MS(kb_hist_percentile(h, 99.9));

    switch (style) {
    case KB_STYLE_CSV:
        printf("\"RANGE\",\"%.2f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\","
               "\"%.3f\"\n", pps, avg, min, p50, p95, p99, max, p999);
        break;
    case KB_STYLE_QUIET:
        printf("RANGE: %.2f keys per second, %.2f pages per second (%llu keys, %llu distinct, "
               "in %llu pages of up to %u, %.3f s), p50=%.3f p99=%.3f p99.9=%.3f max=%.3f "
               "msec per page\n", kps, pps, (unsigned long long)r->keys,
               (unsigned long long)r->distinct, (unsigned long long)r->pages, p->page,
               r->seconds, p50, p99, p999, max);
        break;
    default:
        printf("====== RANGE ======\n");
        printf("  %llu keys (%llu distinct, %llu seen again, %llu outside the keyspace) in "
               "%llu pages of up to %u, in %.2f seconds\n", (unsigned long long)r->keys,
               (unsigned long long)r->distinct, (unsigned long long)r->repeats,
               (unsigned long long)r->foreign, (unsigned long long)r->pages, p->page,
               r->seconds);
        printf("  %d parallel client%s each reading key:0..%llu with its %zu-byte values, "
               "protocol %s (%s)\n", p->clients, p->clients == 1 ? "" : "s",
               (unsigned long long)(p->keyspace ? p->keyspace - 1 : 0), p->value_len,
               p->proto->name,
               p->proto == &kb_proto_resp ? "SCAN COUNT and MGET" : "Range, in key order");
        printf("\nSummary:\n");
        printf("  throughput summary: %.2f keys per second, %.2f pages per second\n", kps, pps);
        printf("  latency summary (msec per page):\n");
        print_latency(avg, min, p50, p95, p99, p999, max);
        break;
    }
    fflush(stdout);
}

int kb_report_scan_hist(FILE *f, const kb_scan_plan *p, const kb_scan_result *r, int first)
{
    fprintf(f, "%s#[Test RANGE -c %d --page %u -d %zu, protocol %s, %.2f pages per second; "
            "latency per page in ms]\n", first ? "" : "\n\n", p->clients, p->page,
            p->value_len, p->proto->name,
            r->seconds > 0 ? (double)r->pages / r->seconds : 0.0);
    return kb_hist_write_distribution(&r->latency, f, 1e6);
}

int kb_report_scan_problems(const kb_scan_result *r)
{
    kb_result k;

    memset(&k, 0, sizeof k);
    k.answered = r->pages;
    k.errors = r->errors;
    k.wrong = r->wrong;
    memcpy(k.first_error, r->first_error, sizeof k.first_error);
    memcpy(k.first_wrong, r->first_wrong, sizeof k.first_wrong);
    memcpy(k.fatal, r->fatal, sizeof k.fatal);
    return kb_report_problems("RANGE", &k);
}
