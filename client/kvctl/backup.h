/* backup.h - kvctl's backup commands, each on a connection of its own:
 * "snapshot save FILE" (a consistent copy of the whole store in the backup
 * file format, docs/PROTOCOL.md "Backups"), "dump [FILE|-]" (the same
 * snapshot as text, dumpfmt.h) and "load [FILE|-]" (a dump written back
 * with Set, load.c). Only on the command line. */
#ifndef KVCTL_BACKUP_H
#define KVCTL_BACKUP_H

#include "cmd.h"
#include "kvctl.h"
#include "out.h"

/* Runs CMD (snapshot save or dump) and prints its outcome
 * through O. Returns the exit code. */
int kvctl_backup_run(const kvctl_conf *conf, const kvctl_cmd *cmd, const kvctl_out *o);

/* Runs CMD (load): load.c. Returns the exit code. */
int kvctl_load_run(const kvctl_conf *conf, const kvctl_cmd *cmd, const kvctl_out *o);

#endif
