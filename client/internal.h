/* internal.h - what client.c shares with simple.c and nothing else (not
 * exported from the shared library). */
#ifndef KV_CLIENT_INTERNAL_H
#define KV_CLIENT_INTERNAL_H

#include <kvstore/client.h>

/* Records ST and a printf-style reason as the last call's outcome. */
void kvc_set_status(kv_client *c, kv_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Calls the KV method named METHOD ("Range") with INPUT and waits for its
 * answer, after every call queued before it. Returns KV_OK with *OUT the
 * decoded answer, which the caller owns and frees with
 * protobuf_c_message_free_unpacked(*OUT, NULL): no copy is made, unlike a
 * stub's closure. Else the failure (kv_client_last_message() says why)
 * and *OUT NULL. KV_INTERNAL when METHOD does not take INPUT's type. */
kv_status kvc_call_owned(kv_client *c, const char *method, const ProtobufCMessage *input,
                         ProtobufCMessage **out);

#endif
