/* kvctl.h - what every part of kvctl shares: byte strings, the run
 * configuration, output formats and exit codes. Nothing here does I/O. */
#ifndef KVCTL_H
#define KVCTL_H

#include <stddef.h>
#include <stdint.h>

/* The build defines KV_VERSION (the project's version). */
#ifndef KV_VERSION
#define KV_VERSION "unknown"
#endif

/* Exit codes; --help (usage.c) and kvctl.1.scd document them. */
enum {
    KVCTL_EXIT_OK = 0,          /* success */
    KVCTL_EXIT_NOT_FOUND = 1,   /* get/clear/touch/ttl of an absent key */
    KVCTL_EXIT_USAGE = 2,       /* bad command line, or local I/O failed */
    KVCTL_EXIT_UNREACHABLE = 3, /* could not connect, connection lost, timeout */
    KVCTL_EXIT_SERVER = 4,      /* the server answered another error */
    KVCTL_EXIT_CONFLICT = 5,    /* a conditional write was refused
                                 * (--if-revision: FAILED_PRECONDITION) */
    KVCTL_EXIT_CANCELED = 6,    /* the server ended a watch (its history was
                                 * compacted, the reader was too slow...) */
};

typedef enum kvctl_format {
    KVCTL_FORMAT_SIMPLE, /* raw values, "OK", "PONG" */
    KVCTL_FORMAT_JSON,   /* one JSON object per command, bytes in base64 */
    KVCTL_FORMAT_TABLE,  /* aligned columns with the revisions, for people */
} kvctl_format;

/* A byte string that may hold NULs. Where kvctl allocates one, data is
 * never NULL and data[len] is a NUL, so text can be used as a C string. */
typedef struct kvctl_bytes {
    uint8_t *data;
    size_t len;
} kvctl_bytes;

/* How this run talks to the server; filled once by main.c. */
typedef struct kvctl_conf {
    const char *endpoint;   /* "HOST:PORT" as given; NULL means the default */
    int timeout_ms;         /* bounds the connect and each call; 0 = none */
    kvctl_format format;
    const char *token_file; /* authenticate each connection with the token
                             * in this file (--token-file, KVCTL_TOKEN_FILE);
                             * NULL: do not authenticate */
    int tls;                /* speak TLS (--tls; implied by --cacert, --cert
                             * and --insecure-skip-verify) */
    const char *cacert;     /* trust the CAs in this PEM file (--cacert,
                             * KVCTL_CACERT); NULL: the system's store */
    const char *cert;       /* present this client certificate (--cert,
                             * KVCTL_CERT), with KEY (--key, KVCTL_KEY) */
    const char *key;
    int insecure_skip_verify; /* accept any server certificate
                               * (--insecure-skip-verify,
                               * KVCTL_INSECURE_SKIP_VERIFY) */
} kvctl_conf;

#endif
