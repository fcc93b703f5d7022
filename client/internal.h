/* internal.h - what client.c shares with simple.c and nothing else (not
 * exported from the shared library). */
#ifndef KV_CLIENT_INTERNAL_H
#define KV_CLIENT_INTERNAL_H

#include <kvstore/client.h>

/* Records ST and a printf-style reason as the last call's outcome. */
void kvc_set_status(kv_client *c, kv_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
