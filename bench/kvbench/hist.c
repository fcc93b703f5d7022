/* hist.c - the latency histogram of hist.h. Values below 2^SUB_BITS get a
 * bucket each; above, a value's top SUB_BITS+1 bits pick its bucket. */
#include <math.h>
#include <string.h>
#include "hist.h"

#define SUB (1u << KB_HIST_SUB_BITS)

void kb_hist_init(kb_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

static unsigned bucket_of(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - KB_HIST_SUB_BITS;
    return (shift + 1) * SUB + (unsigned)((v >> shift) - SUB);
}

/* The largest value that falls in bucket I. */
static uint64_t bucket_top(unsigned i)
{
    if (i < SUB)
        return i;
    unsigned shift = i / SUB - 1;
    uint64_t lead = (uint64_t)(i % SUB) + SUB;
    return ((lead + 1) << shift) - 1;
}

void kb_hist_add(kb_hist *h, uint64_t v, uint64_t n)
{
    h->bucket[bucket_of(v)] += n;
    h->count += n;
    h->sum += v * n;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void kb_hist_merge(kb_hist *into, const kb_hist *from)
{
    for (unsigned i = 0; i < KB_HIST_BUCKETS; i++)
        into->bucket[i] += from->bucket[i];
    into->count += from->count;
    into->sum += from->sum;
    if (from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t kb_hist_percentile(const kb_hist *h, double pct)
{
    if (!h->count)
        return 0;
    /* The rank of the wanted sample, 1-based, rounded up. */
    uint64_t rank = (uint64_t)(pct / 100.0 * (double)h->count + 0.999999);
    uint64_t seen = 0;

    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < KB_HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t top = bucket_top(i);
            if (top > h->max)
                top = h->max;
            return top < h->min ? h->min : top;
        }
    }
    return h->max;
}

double kb_hist_mean(const kb_hist *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}

/* The bucket holding the sample of rank RANK (1-based); *SEEN gets the
 * number of samples in it and below. */
static unsigned bucket_of_rank(const kb_hist *h, uint64_t rank, uint64_t *seen)
{
    uint64_t n = 0;

    for (unsigned i = 0; i < KB_HIST_BUCKETS; i++) {
        n += h->bucket[i];
        if (n >= rank) {
            *seen = n;
            return i;
        }
    }
    *seen = n;
    return KB_HIST_BUCKETS - 1;
}

/* The value a bucket reports: its top, within the exact min and max. */
static uint64_t clamp_value(const kb_hist *h, unsigned i)
{
    uint64_t v = bucket_top(i);
    return v > h->max ? h->max : v < h->min ? h->min : v;
}

int kb_hist_write_distribution(const kb_hist *h, FILE *f, double unit)
{
    double mean = kb_hist_mean(h), var = 0;

    fprintf(f, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount",
            "1/(1-Percentile)");
    /* HdrHistogram's percentile iterator: from 0%, steps of
     * 100 / (5 * 2^(k+1)) while 1/(1 - level) is below 2^(k+1), until the
     * step reaches the last sample. */
    for (double level = 0; h->count && level < 100.0;) {
        uint64_t rank = (uint64_t)ceil(level / 100.0 * (double)h->count), seen;
        unsigned i = bucket_of_rank(h, rank < 1 ? 1 : rank, &seen);
        fprintf(f, "%12.4f %14.12f %10llu %14.2f\n", (double)clamp_value(h, i) / unit,
                level / 100.0, (unsigned long long)seen, 1.0 / (1.0 - level / 100.0));
        if (seen >= h->count)
            break;
        double halvings = floor(log2(100.0 / (100.0 - level)));
        level += 100.0 / (5.0 * pow(2.0, halvings + 1));
    }
    if (h->count)
        fprintf(f, "%12.4f %14.12f %10llu\n", (double)h->max / unit, 1.0,
                (unsigned long long)h->count);
    for (unsigned i = 0; i < KB_HIST_BUCKETS; i++) {
        if (h->bucket[i]) {
            double d = (double)clamp_value(h, i) - mean;
            var += d * d * (double)h->bucket[i];
        }
    }
    fprintf(f, "#[Mean    = %12.4f, StdDeviation   = %12.4f]\n", mean / unit,
            h->count ? sqrt(var / (double)h->count) / unit : 0.0);
    fprintf(f, "#[Max     = %12.4f, Total count    = %12llu]\n",
            (double)(h->count ? h->max : 0) / unit, (unsigned long long)h->count);
    fprintf(f, "#[Buckets = %12d, SubBuckets     = %12d]\n", KB_HIST_BUCKETS,
            1 << KB_HIST_SUB_BITS);
    return ferror(f) ? -1 : 0;
}
