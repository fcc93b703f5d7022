/* hist_test.c - checks kvbench's latency histogram (hist.c): that a value
 * anywhere from 1 us to 10 s comes back within the promised 1/64, that
 * percentiles of a known distribution land where they should, and that the
 * HdrHistogram-style table is well formed. Plain asserts, no server. */
#undef NDEBUG
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hist.h"

static kb_hist h;

/* Within 1/64 of WANT, and never below it (a bucket reports its top). */
static void near(uint64_t got, uint64_t want)
{
    if (got < want || (double)(got - want) > (double)want / 64.0) {
        fprintf(stderr, "got %llu, want %llu (+1/64)\n", (unsigned long long)got,
                (unsigned long long)want);
        abort();
    }
}

static void one_value_each(void)
{
    /* 1 us .. 10 s in nanoseconds, and odd values between. */
    const uint64_t vs[] = { 1000, 1001, 1023, 12345, 999999, 1000000, 77777777,
                            1000000000, 9999999999ull, 10000000000ull };

    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        kb_hist_init(&h);
        kb_hist_add(&h, vs[i] - 1, 1);      /* a neighbour below */
        kb_hist_add(&h, vs[i], 98);
        kb_hist_add(&h, vs[i] * 2, 1);      /* the exact max */
        near(kb_hist_percentile(&h, 50), vs[i]);
        near(kb_hist_percentile(&h, 99), vs[i]);
        assert(kb_hist_percentile(&h, 100) == vs[i] * 2);
    }
}

static void uniform_distribution(void)
{
    /* 1..100000 us, once each: p50 50 ms, p99 99 ms, p99.9 99.9 ms. */
    kb_hist_init(&h);
    for (uint64_t us = 1; us <= 100000; us++)
        kb_hist_add(&h, us * 1000, 1);
    near(kb_hist_percentile(&h, 50), 50000 * 1000ull);
    near(kb_hist_percentile(&h, 99), 99000 * 1000ull);
    near(kb_hist_percentile(&h, 99.9), 99900 * 1000ull);
    assert(kb_hist_percentile(&h, 100) == 100000 * 1000ull);
    assert(h.min == 1000);
}

static void distribution_table(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    double last_value = -1, last_pct = -1, value, pct, inv;
    unsigned long long count, rows = 0;

    assert(f);
    assert(kb_hist_write_distribution(&h, f, 1e6) == 0);
    fclose(f);
    char *line = strtok(text, "\n");
    assert(line && strstr(line, "Percentile"));
    while ((line = strtok(NULL, "\n")) != NULL && line[0] != '#') {
        int k = sscanf(line, "%lf %lf %llu %lf", &value, &pct, &count, &inv);
        assert(k == 4 || (k == 3 && pct == 1.0));
        assert(value >= last_value && pct > last_pct && count <= h.count);
        last_value = value;
        last_pct = pct;
        rows++;
    }
    /* 5 steps per halving until the last bucket (99.6..100 ms) holds every
     * sample left: about 40 rows, ending at the maximum and 100%. */
    assert(rows > 30 && rows < 200);
    assert(pct == 1.0 && count == h.count && fabs(value - 100.0) < 1e-9);
    assert(line && strstr(line, "#[Mean"));
    free(text);
}

int main(void)
{
    one_value_each();
    uniform_distribution();
    distribution_table();
    puts("hist: ok");
    return 0;
}
