/* batch.h - batch mode: commands from a stream that is not a terminal. */
#ifndef KVCTL_BATCH_H
#define KVCTL_BATCH_H

#include "kvctl.h"

/* Reads commands from FD, one per line, until its end or a "quit" line;
 * runs them pipelined and prints one result line per command. Blank lines
 * and lines starting with '#' are skipped. Returns the exit code: 3 when
 * the connection failed, 4 (2 for an unusable token file) when
 * authenticating it failed (either way the batch stops there), else that
 * of the first command that failed, else 0. */
int kvctl_batch_run(const kvctl_conf *conf, int fd);

#endif
