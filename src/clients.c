/* clients.c - ClientList and ClientKill on the server's side: walks the
 * server's connections to describe them or to close some. Owns nothing;
 * the connections are the server's, the answers the service's. */
#include <string.h>
#include "clients.h"
#include "tls.h"

#define ALLOC(alloc, n) ((alloc)->alloc((alloc)->allocator_data, (n)))

/* Milliseconds from FROM to NOW, 0 when the clock went back. */
static uint64_t ms_since(ev_tstamp from, ev_tstamp now)
{
    return now > from ? (uint64_t)((now - from) * 1000.0) : 0;
}

static int clients_list(void *arg, const kv_service *self, ProtobufCAllocator *alloc,
                        Kvstore__V1__ClientListResponse *out)
{
    kv_server *s = arg;
    ev_tstamp now = ev_now(s->loop);
    size_t n = 0;

    for (kv_conn *c = s->conns; c; c = c->next)
        n++;
    if (!n)
        return 0;
    Kvstore__V1__ClientInfo *ci = ALLOC(alloc, n * sizeof *ci);
    Kvstore__V1__ClientInfo **cip = ALLOC(alloc, n * sizeof *cip);
    if (!ci || !cip)
        return -1;
    /* The list is newest first; ClientList answers oldest first. */
    size_t i = n;
    for (kv_conn *c = s->conns; c; c = c->next) {
        const kv_session *ss = &c->session;
        Kvstore__V1__ClientInfo *o = &ci[--i];
        kvstore__v1__client_info__init(o);
        o->id = c->id;
        o->peer = (char *)ss->service.peer.where;
        o->age_ms = ms_since(c->created, now);
        o->idle_ms = ms_since(c->last_request, now);
        o->requests = ss->answered;
        o->input_buffer_bytes = kv_session_input_buffered(ss);
        o->output_buffer_bytes = kv_session_unsent(ss);
        o->watches = ss->service.watches.n;
        o->authenticated = !s->env.auth || ss->service.authenticated;
        o->current = &ss->service == self;
        o->tls = c->tls != NULL;
        char subject[256];
        if (c->tls && kv_tls_conn_subject(c->tls, subject, sizeof subject)) {
            if (!(o->tls_client_subject = ALLOC(alloc, strlen(subject) + 1)))
                return -1;
            strcpy(o->tls_client_subject, subject);
        }
        cip[i] = o;
    }
    out->n_clients = n;
    out->clients = cip;
    return 0;
}

static uint64_t clients_kill(void *arg, const kv_service *self, const char *peer, uint64_t id,
                             int *self_hit)
{
    kv_server *s = arg;
    uint64_t killed = 0;

    for (kv_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        const kv_service *x = &c->session.service;
        if (peer ? strcmp(x->peer.where, peer) != 0 : c->id != id)
            continue;
        killed++;
        if (x == self)
            *self_hit = 1;      /* it answers first, then hangs up */
        else
            kv_conn_close(c, KV_CLOSE_KILLED, "killed by ClientKill");
    }
    return killed;
}

kv_service_clients kv_clients_hook(kv_server *s)
{
    return (kv_service_clients){ clients_list, clients_kill, s };
}
