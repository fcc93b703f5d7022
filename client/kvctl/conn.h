/* conn.h - opening kvctl's connection to the server, authenticated when
 * the run has a token file. */
#ifndef KVCTL_CONN_H
#define KVCTL_CONN_H

#include <kvstore/client.h>
#include "exec.h"
#include "kvctl.h"

/* The endpoint CONF names, for prompts and messages: conf->endpoint, or
 * "127.0.0.1:7379" when that is NULL. A string owned by CONF or static. */
const char *kvctl_conn_name(const kvctl_conf *conf);

/* Connects as CONF says and, when conf->token_file is set, authenticates
 * with the token in that file before returning. Returns a client (free
 * with kv_client_free()), or NULL with why in *WHY (free with
 * kvctl_exec_result_clear()), which is either
 *  - transport: no connection, the library's reason ("cannot connect to
 *    HOST:PORT: Connection refused"), or
 *  - auth: authentication failed: UNAUTHENTICATED "wrong token" from the
 *    server, INVALID_ARGUMENT when the token file cannot be used, or a
 *    transport failure during the call (transport set too). */
kv_client *kvctl_conn_open(const kvctl_conf *conf, kvctl_result *why);

/* Runs METHOD ("/kvstore.v1.KV/Get") with the request IN, packed here, on
 * C: for the rpcs the library has no function for. Returns KV_OK with the
 * answer's payload in *OUT (malloc'd, may be NULL when empty; the caller
 * frees it), else the failure recorded in *WHY (message and transport;
 * free with kvctl_exec_result_clear()). */
kv_status kvctl_conn_call(kv_client *c, const char *method, const ProtobufCMessage *in,
                          uint8_t **out, size_t *outlen, kvctl_result *why);

#endif
