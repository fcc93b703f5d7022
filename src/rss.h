/* rss.h - the process's resident memory, for the Stats rpc. */
#ifndef KV_RSS_H
#define KV_RSS_H

#include <stdint.h>

/* The process's resident set size in bytes (from /proc), 0 if unknown. */
uint64_t kv_rss_bytes(void);

#endif
