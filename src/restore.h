/* restore.h - kvstored --restore FILE: a backup (backup_file.h) loaded
 * into the engine before the server starts, with its keys' revisions and
 * the store's revision as they were. The file is checked whole before
 * anything is loaded; an engine that holds data is refused unless forced. */
#ifndef KV_RESTORE_H
#define KV_RESTORE_H

#include <stddef.h>
#include <stdint.h>
#include "engine.h"

/* What a restore loaded. */
typedef struct kv_restore_info {
    uint64_t revision;      /* the store's, the backup's */
    uint64_t keys;          /* loaded */
    uint64_t expired;       /* in the file, but their deadline has passed: skipped */
} kv_restore_info;

/* Loads the backup at PATH into E. E must be empty (no key, revision 0)
 * unless FORCE: then its data is replaced. Returns 0 with *INFO, or -1
 * with a one-line reason in ERR: nothing changed when the file or the
 * store was refused; when the engine failed while loading (memory, a full
 * LMDB map) the store is left partly loaded, which ERR says. */
int kv_restore_file(kv_engine *e, const char *path, int force, kv_restore_info *info,
                    char *err, size_t errlen);

#endif
