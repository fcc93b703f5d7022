/* report.h - how kvbench prints a test's figures: redis-benchmark's three
 * styles (full summary, -q one line, --csv rows) with p99.9 added, the
 * latency distribution for --hist, and the problems that make the exit
 * status non-zero. */
#ifndef KB_REPORT_H
#define KB_REPORT_H

#include <stdio.h>
#include "run.h"
#include "scan.h"

typedef enum kb_style { KB_STYLE_FULL, KB_STYLE_QUIET, KB_STYLE_CSV } kb_style;

/* Prints redis-benchmark's CSV header line on stdout, then the columns
 * kvbench adds after redis-benchmark's (so parsers of its columns still
 * work): p999_latency_ms. */
void kb_report_csv_header(void);

/* Prints the figures of test P on stdout in STYLE: requests per second
 * counts OK answers only; latencies are in milliseconds. */
void kb_report_result(kb_style style, const kb_plan *p, const kb_result *r);

/* Appends test P's latency distribution to F: a "#[Test ...]" line naming
 * the test, then hist.h's HdrHistogram-style table in milliseconds; tests
 * after the first are set apart by two blank lines (gnuplot's "index").
 * Returns 0, or -1 when writing fails. */
int kb_report_hist(FILE *f, const kb_plan *p, const kb_result *r, int first);

/* The same three for the range test (scan.h): keys and pages per second,
 * the distinct keys seen, and latencies per page. In CSV its "rps" column
 * counts pages per second (a page is its request) and the latencies are a
 * page's. */
void kb_report_scan(kb_style style, const kb_scan_plan *p, const kb_scan_result *r);
int kb_report_scan_hist(FILE *f, const kb_scan_plan *p, const kb_scan_result *r, int first);
int kb_report_scan_problems(const kb_scan_result *r);

/* Prints on stderr what went wrong in test P (error answers, wrong answers,
 * a fatal stop), prefixed with WHAT ("SET", "populating GET keys").
 * Returns 0 when nothing did, else -1. */
int kb_report_problems(const char *what, const kb_result *r);

#endif
