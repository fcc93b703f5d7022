/* conn.c - how kvctl opens its one connection: the endpoint, timeout and
 * TLS settings of the run's kvctl_conf handed to kv_client_connect_opts()
 * (every command, the shell and watch connect here), then the token file
 * handed to kv_client_auth_file(), and the wording of a failure. Choosing
 * the endpoint and the token file (options, environment) is main.c's job.
 * Also one raw call by method path, for the commands the library has no
 * function for (cluster.c, backup.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "mem.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const char *kvctl_conn_name(const kvctl_conf *conf)
{
    return conf->endpoint ? conf->endpoint
                          : KV_DEFAULT_HOST ":" STR(KV_DEFAULT_PORT);
}

/* Authenticates C with CONF's token file. Returns 0, or -1 with WHY filled. */
static int conn_auth(kv_client *c, const kvctl_conf *conf, kvctl_result *why)
{
    kv_status st = kv_client_auth_file(c, conf->token_file);
    const char *msg;

    if (st == KV_OK)
        return 0;
    msg = kv_client_last_message(c);
    why->status = st;
    why->auth = 1;
    why->transport = st == KV_UNAVAILABLE || st == KV_DEADLINE_EXCEEDED;
    why->message = kvctl_mem_strdup(msg && *msg ? msg : "authentication failed");
    return -1;
}

kv_client *kvctl_conn_open(const kvctl_conf *conf, kvctl_result *why)
{
    char err[512] = "";
    kv_client_options o = KV_CLIENT_OPTIONS_INIT;
    kv_client *c;

    o.timeout_ms = conf->timeout_ms;
    o.tls = conf->tls;
    o.ca_file = conf->cacert;
    o.cert_file = conf->cert;
    o.key_file = conf->key;
    o.insecure_skip_verify = conf->insecure_skip_verify;
    c = kv_client_connect_opts(conf->endpoint, &o, err, sizeof err);

    memset(why, 0, sizeof *why);
    if (!c) {
        char msg[600];
        /* The library's reason already names the endpoint. */
        if (*err)
            snprintf(msg, sizeof msg, "%s", err);
        else
            snprintf(msg, sizeof msg, "cannot connect to %s", kvctl_conn_name(conf));
        why->status = KV_UNAVAILABLE;
        why->transport = 1;
        why->message = kvctl_mem_strdup(msg);
        return NULL;
    }
    if (conf->token_file && conn_auth(c, conf, why) < 0) {
        kv_client_free(c);
        return NULL;
    }
    return c;
}

kv_status kvctl_conn_call(kv_client *c, const char *method, const ProtobufCMessage *in,
                          uint8_t **out, size_t *outlen, kvctl_result *why)
{
    size_t n = protobuf_c_message_get_packed_size(in);
    uint8_t *buf = kvctl_mem_alloc(n ? n : 1);
    kv_status st;

    protobuf_c_message_pack(in, buf);
    st = kv_client_call_raw(c, method, buf, n, out, outlen);
    free(buf);
    if (st != KV_OK) {
        const char *msg = kv_client_last_message(c);
        why->status = st;
        why->transport = st == KV_UNAVAILABLE || st == KV_DEADLINE_EXCEEDED;
        why->message = kvctl_mem_strdup(msg && *msg ? msg : "call failed");
    }
    return st;
}

kv_status kvctl_conn_call_once(const kvctl_conf *conf, const char *method,
                               const ProtobufCMessage *in, uint8_t **out, size_t *outlen,
                               kvctl_result *why)
{
    kv_client *c = kvctl_conn_open(conf, why);
    kv_status st;

    *out = NULL;
    *outlen = 0;
    if (!c)
        return why->status != KV_OK ? why->status : KV_UNAVAILABLE;
    memset(why, 0, sizeof *why);
    st = kvctl_conn_call(c, method, in, out, outlen, why);
    kv_client_free(c);
    return st;
}
