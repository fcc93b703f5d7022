/* datadir.h - the directory an engine keeps its files in (--dir PATH):
 * created when missing, checked, and locked so that one kvstored at a time
 * uses it. The engine's file formats are not this module's business. */
#ifndef KV_DATADIR_H
#define KV_DATADIR_H

#include <stddef.h>

/* The lock file inside PATH; it holds the pid of the kvstored using PATH. */
#define KV_DATADIR_LOCK_NAME "kvstored.lock"

/* Makes PATH ready for an engine: creates it (one level, mode 0777 less the
 * umask) when missing, checks that it is a directory we can write in, and
 * takes PATH/kvstored.lock with an exclusive flock(2), writing our pid into
 * it. MAIN names the engine's main file: a directory without MAIN that holds
 * anything but the names in OWN (NULL-terminated) is refused, so that a
 * --dir pointed at the wrong place is left alone.
 * Returns the lock file's descriptor (close it to unlock; the kernel also
 * drops the lock when the process dies, even by SIGKILL), or -1 with a
 * one-line reason in ERR. */
int kv_datadir_lock(const char *path, const char *main, const char *const *own,
                    char *err, size_t errlen);

#endif
