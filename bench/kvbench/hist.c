/* hist.c - the latency histogram of hist.h. Values below 2^SUB_BITS get a
 * bucket each; above, a value's top SUB_BITS+1 bits pick its bucket. */
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
