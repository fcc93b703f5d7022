/* rss.c - the process's resident set size, read from /proc; see rss.h. */
#include <stdio.h>
#include <unistd.h>
#include "rss.h"

uint64_t kv_rss_bytes(void)
{
    unsigned long long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    int n;

    if (!f)
        return 0;
    n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    return n == 2 ? resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}
