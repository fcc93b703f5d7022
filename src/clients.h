/* clients.h - the server's side of ClientList and ClientKill: what the
 * service's kv_service_clients hook sees of a server's connections. */
#ifndef KV_CLIENTS_H
#define KV_CLIENTS_H

#include "server.h"

/* The hook through which S's services list and kill S's connections; S
 * must outlive every service that uses it. */
kv_service_clients kv_clients_hook(kv_server *s);

#endif
