/* conn.c - how kvctl opens its one connection: the endpoint and timeout of
 * the run's kvctl_conf handed to kv_client_connect(), and the wording of a
 * failure. Choosing the endpoint (-e, KVCTL_ENDPOINT) is main.c's job. */
#include <stdio.h>

#include "conn.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const char *kvctl_conn_name(const kvctl_conf *conf)
{
    return conf->endpoint ? conf->endpoint
                          : KV_DEFAULT_HOST ":" STR(KV_DEFAULT_PORT);
}

kv_client *kvctl_conn_open(const kvctl_conf *conf, char *err, size_t errlen)
{
    char why[256] = "";
    kv_client *c = kv_client_connect(conf->endpoint, conf->timeout_ms, why,
                                     sizeof why);

    /* The library's reason already names the endpoint. */
    if (!c && *why)
        snprintf(err, errlen, "%s", why);
    else if (!c)
        snprintf(err, errlen, "cannot connect to %s", kvctl_conn_name(conf));
    return c;
}
