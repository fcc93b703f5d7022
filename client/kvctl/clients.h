/* clients.h - kvctl's clients command (clients.c). */
#ifndef KVCTL_CLIENTS_H
#define KVCTL_CLIENTS_H

#include "cmd.h"
#include "kvctl.h"
#include "out.h"

/* Runs the clients command CMD on a connection of its own as CONF says,
 * printing to O: the server's ClientList as a table (JSON with -w json),
 * or with "kill" a ClientKill by peer or id and how many it closed.
 * Returns the exit code: 1 when a kill matched no connection. */
int kvctl_clients_run(const kvctl_conf *conf, const kvctl_cmd *cmd, const kvctl_out *o);

#endif
