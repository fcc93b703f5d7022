/* slowlog.h - kvctl's slowlog command (slowlog.c). */
#ifndef KVCTL_SLOWLOG_H
#define KVCTL_SLOWLOG_H

#include "cmd.h"
#include "kvctl.h"
#include "out.h"

/* Runs the slowlog command CMD on the server CONF names, printing to O:
 * the entries newest first (at most cmd->limit; 0: all), then, with
 * cmd->reset, empties the server's log. Returns the exit code. */
int kvctl_slowlog_run(const kvctl_conf *conf, const kvctl_cmd *cmd, const kvctl_out *o);

#endif
