/* usage.h - the help texts of kvctl. */
#ifndef KVCTL_USAGE_H
#define KVCTL_USAGE_H

#include <stdio.h>

/* "kvctl --help": commands, options, modes, exit codes, examples. */
void kvctl_usage_print(FILE *fp);

/* "help" inside the shell. */
void kvctl_usage_shell(FILE *fp);

/* "kvctl --version". */
void kvctl_usage_version(FILE *fp);

#endif
