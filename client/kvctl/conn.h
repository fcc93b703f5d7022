/* conn.h - opening kvctl's connection to the server. */
#ifndef KVCTL_CONN_H
#define KVCTL_CONN_H

#include <kvstore/client.h>
#include "kvctl.h"

/* The endpoint CONF names, for prompts and messages: conf->endpoint, or
 * "127.0.0.1:7379" when that is NULL. A string owned by CONF or static. */
const char *kvctl_conn_name(const kvctl_conf *conf);

/* Connects as CONF says. Returns a client (free with kv_client_free()),
 * or NULL with a one-line reason in ERR, the library's ("cannot connect to
 * HOST:PORT: Connection refused"). */
kv_client *kvctl_conn_open(const kvctl_conf *conf, char *err, size_t errlen);

#endif
