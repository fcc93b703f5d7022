/* authguard.c - per-address counting of failed Auth calls; see authguard.h.
 * A fixed table, hashed by address with a short probe: no allocation, and
 * a flood of addresses only pushes out the least recently seen. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include "authguard.h"

/* Slots looked at for one address; the least recently seen of them is
 * reused when none matches. */
#define PROBE 8

void kv_peer_from_sockaddr(kv_peer *p, const void *sa, size_t salen)
{
    static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    const struct sockaddr *s = sa;
    unsigned port = 0;

    memset(p, 0, sizeof *p);
    strcpy(p->text, "?");
    strcpy(p->where, "?");
    if (s && s->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
        memcpy(p->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        p->len = 4;
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    } else if (s && s->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(a, v4mapped, sizeof v4mapped) == 0) {
            memcpy(p->addr, a + 12, 4);
            p->len = 4;
        } else {
            memcpy(p->addr, a, 16);
            p->len = 16;
        }
    }
    if (p->len) {
        inet_ntop(p->len == 4 ? AF_INET : AF_INET6, p->addr, p->text, sizeof p->text);
        snprintf(p->where, sizeof p->where, p->len == 4 ? "%s:%u" : "[%s]:%u", p->text, port);
    }
}

void kv_auth_guard_init(kv_auth_guard *g)
{
    memset(g, 0, sizeof *g);
}

/* FNV-1a over the address bytes: the table needs spread, not secrecy (an
 * attacker who aims at one bucket only evicts their own addresses' records
 * faster, which the doubling block does not depend on). */
static size_t bucket_of(const kv_peer *p)
{
    uint32_t h = 2166136261u;

    for (unsigned i = 0; i < p->len; i++)
        h = (h ^ p->addr[i]) * 16777619u;
    return h % KV_AUTH_GUARD_SLOTS;
}

static int same_peer(const kv_peer *a, const kv_peer *b)
{
    return a->len == b->len && memcmp(a->addr, b->addr, a->len) == 0;
}

/* The slot of PEER, or NULL. With CREATE, a fresh one (evicting the least
 * recently seen of the probe) when there is none. */
static kv_auth_guard_slot *find(kv_auth_guard *g, const kv_peer *peer, int create)
{
    size_t b = bucket_of(peer);
    kv_auth_guard_slot *oldest = NULL;

    for (size_t i = 0; i < PROBE; i++) {
        kv_auth_guard_slot *s = &g->slots[(b + i) % KV_AUTH_GUARD_SLOTS];
        if (s->key.len && same_peer(&s->key, peer))
            return s;
        if (!oldest || s->last_seen < oldest->last_seen)
            oldest = s;
    }
    if (!create)
        return NULL;
    memset(oldest, 0, sizeof *oldest);
    oldest->key = *peer;
    return oldest;
}

double kv_auth_guard_blocked(kv_auth_guard *g, const kv_peer *peer, double now)
{
    kv_auth_guard_slot *s = peer->len ? find(g, peer, 0) : NULL;

    return s && s->blocked_until > now ? s->blocked_until - now : 0;
}

double kv_auth_guard_failed(kv_auth_guard *g, const kv_peer *peer, double now)
{
    if (!peer->len)
        return 0;
    kv_auth_guard_slot *s = find(g, peer, 1);
    /* Quiet for the longest block: the address starts over. */
    if (s->last_seen && now - s->last_seen > KV_AUTH_GUARD_MAX_BLOCK)
        s->strikes = 0;
    s->last_seen = now;
    if (now - s->window_start >= KV_AUTH_GUARD_WINDOW) {
        s->window_start = now;
        s->failures = 0;
    }
    if (++s->failures < KV_AUTH_GUARD_FAILURES)
        return 0;
    double block = KV_AUTH_GUARD_FIRST_BLOCK;
    for (unsigned i = 0; i < s->strikes && block < KV_AUTH_GUARD_MAX_BLOCK; i++)
        block *= 2;
    if (block > KV_AUTH_GUARD_MAX_BLOCK)
        block = KV_AUTH_GUARD_MAX_BLOCK;
    s->strikes++;
    s->blocked_until = now + block;
    /* The block ends with a fresh window: FAILURES more tries, then a
     * longer block. */
    s->window_start = s->blocked_until;
    s->failures = 0;
    return block;
}

void kv_auth_guard_succeeded(kv_auth_guard *g, const kv_peer *peer)
{
    kv_auth_guard_slot *s = peer->len ? find(g, peer, 0) : NULL;

    if (s)
        memset(s, 0, sizeof *s);
}
