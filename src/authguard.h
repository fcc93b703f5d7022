/* authguard.h - the server-wide brake on token guessing: failed Auth calls
 * are counted per peer address, and an address that fails too often is
 * refused for a back-off that doubles with each offence. Reconnecting does
 * not reset it (the per-connection limit in service.c does not cover that). */
#ifndef KV_AUTHGUARD_H
#define KV_AUTHGUARD_H

#include <stddef.h>
#include <stdint.h>

/* The KV_AUTH_GUARD_FAILURES-th failed Auth call from an address within
 * KV_AUTH_GUARD_WINDOW seconds blocks it: an honest client with a wrong
 * token fails a few times, a guesser thousands. */
#define KV_AUTH_GUARD_FAILURES 10
#define KV_AUTH_GUARD_WINDOW 10.0
/* The first block lasts this long; each further one doubles, up to
 * KV_AUTH_GUARD_MAX_BLOCK. An address quiet for that long starts over. */
#define KV_AUTH_GUARD_FIRST_BLOCK 1.0
#define KV_AUTH_GUARD_MAX_BLOCK 60.0
/* Addresses remembered at once; past it the least recently seen of a
 * bucket is forgotten, so memory stays fixed whatever the attacker does. */
#define KV_AUTH_GUARD_SLOTS 1024

/* A peer's address as the guard keys it: the raw IPv4 or IPv6 bytes (an
 * IPv4-mapped IPv6 address counts as its IPv4 address), and its text. */
typedef struct kv_peer {
    uint8_t addr[16];
    uint8_t len;            /* 4, 16, or 0 when unknown (not guarded) */
    char text[48];          /* "127.0.0.1", "::1" or "?" for messages and logs */
    char where[56];         /* with the port: "127.0.0.1:5000", "[::1]:5000",
                               or "?": which connection, for ClientList,
                               ClientKill and the slow log */
} kv_peer;

typedef struct kv_auth_guard_slot {
    kv_peer key;
    double window_start;    /* when the current counting window began */
    double blocked_until;   /* 0 when not blocked */
    double last_seen;
    unsigned failures;      /* in the current window */
    unsigned strikes;       /* blocks so far: the next lasts FIRST << strikes */
} kv_auth_guard_slot;

typedef struct kv_auth_guard {
    kv_auth_guard_slot slots[KV_AUTH_GUARD_SLOTS];
    uint64_t refused;       /* Auth calls refused unchecked; for Stats */
} kv_auth_guard;

/* Fills P from a socket address SA of SALEN bytes (AF_INET or AF_INET6);
 * anything else gives len 0 and "?" for both texts. */
void kv_peer_from_sockaddr(kv_peer *p, const void *sa, size_t salen);

/* Empties G. Allocates nothing. */
void kv_auth_guard_init(kv_auth_guard *g);

/* Whether PEER may try a token at time NOW (seconds). Returns 0 when it may;
 * otherwise the seconds left of its block (> 0). */
double kv_auth_guard_blocked(kv_auth_guard *g, const kv_peer *peer, double now);

/* Records a wrong token from PEER at NOW. Returns the seconds of the block
 * this failure started, or 0 when it started none. */
double kv_auth_guard_failed(kv_auth_guard *g, const kv_peer *peer, double now);

/* Records a right token from PEER: its record is forgotten. */
void kv_auth_guard_succeeded(kv_auth_guard *g, const kv_peer *peer);

#endif
