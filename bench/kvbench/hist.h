/* hist.h - a latency histogram with log-linear buckets (HdrHistogram's
 * idea), one per thread, merged at the end, and its percentile
 * distribution in HdrHistogram's text form. No allocation: it is a plain
 * struct. Values are nanoseconds: exact below 64 ns, then within 1/64
 * (1.6%) of the true value all the way up (8 ns wide buckets at 1 us,
 * 134 ms wide at 10 s), so 1 us .. 10 s and beyond are all resolved. */
#ifndef KB_HIST_H
#define KB_HIST_H

#include <stdint.h>
#include <stdio.h>

/* Each power of two is split into 2^KB_HIST_SUB_BITS buckets. */
#define KB_HIST_SUB_BITS 6
#define KB_HIST_BUCKETS ((64 - KB_HIST_SUB_BITS + 1) << KB_HIST_SUB_BITS)

typedef struct kb_hist {
    uint64_t count, sum, min, max;   /* exact; min is UINT64_MAX when empty */
    uint64_t bucket[KB_HIST_BUCKETS];
} kb_hist;

void kb_hist_init(kb_hist *h);

/* Records N samples of value V. */
void kb_hist_add(kb_hist *h, uint64_t v, uint64_t n);

/* Adds FROM's samples to INTO. */
void kb_hist_merge(kb_hist *into, const kb_hist *from);

/* Returns the smallest recorded value such that PCT percent (0..100) of the
 * samples are at or below it, to the histogram's resolution (the top of a
 * bucket, but never above the exact maximum). 0 when empty. */
uint64_t kb_hist_percentile(const kb_hist *h, double pct);

/* Returns the mean of the samples, 0 when empty. */
double kb_hist_mean(const kb_hist *h);

/* Writes H's percentile distribution to F as HdrHistogram's
 * outputPercentileDistribution does (so its plotters read it): a header,
 * then "value percentile total-count 1/(1-percentile)" lines at percentile
 * steps that halve towards 100% (5 per halving), then the mean, standard
 * deviation (from the buckets), maximum and count. Values are divided by
 * UNIT (1e6: milliseconds from nanoseconds). Returns 0, or -1 when writing
 * fails. */
int kb_hist_write_distribution(const kb_hist *h, FILE *f, double unit);

#endif
