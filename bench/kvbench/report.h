/* report.h - how kvbench prints a test's figures: redis-benchmark's three
 * styles (full summary, -q one line, --csv rows), plus the problems that
 * make the exit status non-zero. */
#ifndef KB_REPORT_H
#define KB_REPORT_H

#include "run.h"

typedef enum kb_style { KB_STYLE_FULL, KB_STYLE_QUIET, KB_STYLE_CSV } kb_style;

/* Prints redis-benchmark's CSV header line on stdout. */
void kb_report_csv_header(void);

/* Prints the figures of test P on stdout in STYLE: requests per second
 * counts OK answers only; latencies are in milliseconds. */
void kb_report_result(kb_style style, const kb_plan *p, const kb_result *r);

/* Prints on stderr what went wrong in test P (error answers, wrong answers,
 * a fatal stop), prefixed with WHAT ("SET", "populating GET keys").
 * Returns 0 when nothing did, else -1. */
int kb_report_problems(const char *what, const kb_result *r);

#endif
