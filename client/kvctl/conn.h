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

/* Runs METHOD (a gRPC path) with the request IN, packed here, on C: the
 * calls kvctl makes through kv_client_call_raw because the library has
 * no function of their own. Returns KV_OK with the answer's payload in
 * *OUT (malloc'd, caller frees; may be NULL when empty), else the failure
 * in *WHY (its message, and whether it was the transport's). */
kv_status kvctl_conn_call(kv_client *c, const char *method, const ProtobufCMessage *in,
                          uint8_t **out, size_t *outlen, kvctl_result *why);

/* As kvctl_conn_call, on a connection of its own opened as CONF says and
 * closed after; a connection that cannot be opened (or authenticated) is
 * the failure in *WHY (transport or auth set, kvctl_conn_open's). */
kv_status kvctl_conn_call_once(const kvctl_conf *conf, const char *method,
                               const ProtobufCMessage *in, uint8_t **out, size_t *outlen,
                               kvctl_result *why);

#endif
