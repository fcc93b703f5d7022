/* latency.h - the latency histogram every method has: fixed buckets from
 * 10 us to 10.49 s, four per doubling (HdrHistogram's layout: the bucket
 * of a duration is its power of two and the next two bits, found with one
 * count-leading-zeros; no search, no floating point on the request path).
 * Prometheus gets them folded to their powers of two (metrics_text.c); Stats
 * and kvctl get quantiles estimated from them. */
#ifndef KV_LATENCY_H
#define KV_LATENCY_H

#include <stdint.h>

#define KV_LATENCY_UNIT_NS 2500u        /* a quarter of the first bound */
#define KV_LATENCY_DOUBLINGS 20         /* 10 us * 2^20 = 10.49 s */
/* Bucket 0: up to 10 us; then 4 per doubling; the last: over 10.49 s. */
#define KV_LATENCY_BUCKETS (1 + 4 * KV_LATENCY_DOUBLINGS + 1)

typedef struct kv_latency {
    uint64_t buckets[KV_LATENCY_BUCKETS];
    uint64_t sum_ns;
} kv_latency;

/* The bucket of a duration of NS nanoseconds. Bucket i > 0 holds
 * (upper(i-1), upper(i)]; see kv_latency_upper_ns. */
static inline unsigned kv_latency_bucket(uint64_t ns)
{
    uint64_t v = ns ? (ns - 1) / KV_LATENCY_UNIT_NS : 0;

    if (v < 4)
        return 0;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);    /* >= 2 */
    unsigned i = 1 + 4 * (e - 2) + (unsigned)((v >> (e - 2)) & 3);
    return i < KV_LATENCY_BUCKETS - 1 ? i : KV_LATENCY_BUCKETS - 1;
}

/* Counts one duration of NS nanoseconds in H. */
static inline void kv_latency_record(kv_latency *h, uint64_t ns)
{
    h->buckets[kv_latency_bucket(ns)]++;
    h->sum_ns += ns;
}

/* How many durations H counted: its buckets' sum (kept as no counter of
 * its own: one increment less per request). */
uint64_t kv_latency_count(const kv_latency *h);

/* The upper bound of bucket I in nanoseconds; UINT64_MAX for the last. */
uint64_t kv_latency_upper_ns(unsigned i);

/* The duration below which a fraction Q (0 < Q <= 1) of H's counts fall,
 * in nanoseconds, interpolated linearly inside its bucket (as Prometheus's
 * histogram_quantile does); 0 when H is empty. A duration past the last
 * bound is reported as that bound. */
uint64_t kv_latency_quantile_ns(const kv_latency *h, double q);

#endif
