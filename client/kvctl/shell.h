/* shell.h - the interactive shell. */
#ifndef KVCTL_SHELL_H
#define KVCTL_SHELL_H

#include "kvctl.h"

/* Runs the shell on the terminal until quit, exit or Ctrl-D. Failed
 * commands print their error and the shell goes on. Returns 0. */
int kvctl_shell_run(const kvctl_conf *conf);

#endif
