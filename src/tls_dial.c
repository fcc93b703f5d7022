/* tls_dial.c - the client side of TLS shared by the client library,
 * kvbench and a cluster member's calls (tls_dial.h). OpenSSL from Debian;
 * only the context and the name rules live here. */
#include <arpa/inet.h>
#include <openssl/x509v3.h>
#include "tls_dial.h"

SSL_CTX *kv_tls_dial_ctx(const char *ca_file, const char *cert_file, const char *key_file,
                         int verify, kv_tls_dial_part *failed)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    *failed = KV_TLS_DIAL_OK;
    if (!ctx) {
        *failed = KV_TLS_DIAL_MEMORY;
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (verify && (ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1
                           : SSL_CTX_set_default_verify_paths(ctx) != 1))
        *failed = KV_TLS_DIAL_CA;
    else if (cert_file && SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
        *failed = KV_TLS_DIAL_CERT;
    else if (cert_file && (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1
                           || SSL_CTX_check_private_key(ctx) != 1))
        *failed = KV_TLS_DIAL_KEY;
    if (*failed == KV_TLS_DIAL_OK)
        return ctx;
    SSL_CTX_free(ctx);
    return NULL;
}

/* Whether HOST is an IPv4 or IPv6 address. */
static int is_address(const char *host)
{
    unsigned char addr[16];

    return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

int kv_tls_dial_sni(SSL *ssl, const char *host)
{
    return is_address(host) || SSL_set_tlsext_host_name(ssl, host) == 1 ? 0 : -1;
}

int kv_tls_dial_expect(SSL *ssl, const char *host)
{
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);

    if (is_address(host))
        return X509_VERIFY_PARAM_set1_ip_asc(param, host) == 1 ? 0 : -1;
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return kv_tls_dial_sni(ssl, host) == 0 && X509_VERIFY_PARAM_set1_host(param, host, 0) == 1
           ? 0 : -1;
}
