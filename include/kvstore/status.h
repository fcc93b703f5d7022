/* kvstore/status.h - the one status enum of kvstore.
 *
 * Engine, executor, server and client all return kv_status. Its values are
 * the gRPC status codes that travel on the wire (StatusCode in kv.proto), so
 * mapping to and from the wire is the identity; kv_status_name() gives the
 * gRPC name. */
#ifndef KVSTORE_STATUS_H
#define KVSTORE_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kv_status {
    KV_OK = 0,
    KV_CANCELLED = 1,
    KV_UNKNOWN = 2,
    KV_INVALID_ARGUMENT = 3,
    KV_DEADLINE_EXCEEDED = 4,
    KV_NOT_FOUND = 5,
    KV_ALREADY_EXISTS = 6,
    KV_PERMISSION_DENIED = 7,
    KV_RESOURCE_EXHAUSTED = 8,
    KV_FAILED_PRECONDITION = 9,
    KV_ABORTED = 10,
    KV_OUT_OF_RANGE = 11,
    KV_UNIMPLEMENTED = 12,
    KV_INTERNAL = 13,
    KV_UNAVAILABLE = 14,
    KV_DATA_LOSS = 15,
    KV_UNAUTHENTICATED = 16,
} kv_status;

/* The gRPC name of a status ("NOT_FOUND"); "UNKNOWN" for a value outside
 * the enum. Returns a static string. */
const char *kv_status_name(int status);

#ifdef __cplusplus
}
#endif
#endif
