/* hist.h - a latency histogram with log-linear buckets (HdrHistogram's
 * idea, about 1.5% resolution from 1 ns to hours), one per thread, merged
 * at the end. No allocation: it is a plain struct. */
#ifndef KB_HIST_H
#define KB_HIST_H

#include <stdint.h>

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

#endif
