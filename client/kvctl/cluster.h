/* cluster.h - kvctl's cluster command (cluster.c). */
#ifndef KVCTL_CLUSTER_H
#define KVCTL_CLUSTER_H

#include "cmd.h"
#include "kvctl.h"
#include "out.h"

/* Runs the cluster command CMD as CONF says, printing to O: status asks
 * each node it can name on a connection of its own; add, remove and
 * transfer go to the leader on one connection to CONF's endpoints (the
 * client library follows the leader's hint). Returns the exit code. */
int kvctl_cluster_run(const kvctl_conf *conf, const kvctl_cmd *cmd, const kvctl_out *o);

#endif
