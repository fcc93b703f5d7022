/* latency.c - the histogram's bounds and quantiles; see latency.h. */
#include "latency.h"

uint64_t kv_latency_upper_ns(unsigned i)
{
    if (i == 0)
        return 4ull * KV_LATENCY_UNIT_NS;
    if (i >= KV_LATENCY_BUCKETS - 1)
        return UINT64_MAX;
    unsigned e = 2 + (i - 1) / 4, sub = (i - 1) % 4;
    /* Bucket i holds v in [(4+sub) << (e-2), (5+sub) << (e-2)), durations
     * up to that end in units. */
    return ((uint64_t)(5 + sub) << (e - 2)) * KV_LATENCY_UNIT_NS;
}

uint64_t kv_latency_count(const kv_latency *h)
{
    uint64_t n = 0;

    for (unsigned i = 0; i < KV_LATENCY_BUCKETS; i++)
        n += h->buckets[i];
    return n;
}

uint64_t kv_latency_quantile_ns(const kv_latency *h, double q)
{
    uint64_t count = kv_latency_count(h);

    if (count == 0)
        return 0;
    double rank = q * (double)count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < KV_LATENCY_BUCKETS; i++) {
        uint64_t n = h->buckets[i];
        if (n == 0 || (double)(seen + n) < rank) {
            seen += n;
            continue;
        }
        if (i == KV_LATENCY_BUCKETS - 1)
            return kv_latency_upper_ns(i - 1);
        uint64_t lo = i ? kv_latency_upper_ns(i - 1) : 0, hi = kv_latency_upper_ns(i);
        double f = (rank - (double)seen) / (double)n;
        if (f < 0)
            f = 0;
        return lo + (uint64_t)(f * (double)(hi - lo));
    }
    return kv_latency_upper_ns(KV_LATENCY_BUCKETS - 2);
}
