/* restore.c - loading a backup file into an engine at start; see
 * restore.h. The format is backup_file.c's; this file owns the mapping of
 * the file and the engine calls. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "backup_file.h"
#include "restore.h"

/* Loads committed in groups of this many keys: one LMDB write transaction
 * for a million keys could outgrow its dirty page list. */
#define FLUSH_EVERY 65536

static int flush(kv_engine *e)
{
    return e->ops->flush && e->ops->flush(e) != KV_OK ? -1 : 0;
}

/* Checks what engine E can hold of the checked file INFO (key lengths)
 * and whether E is empty. Returns 0, or -1 with ERR. */
static int check_fits(kv_engine *e, const kv_bfile_info *info, int force, char *err, size_t errlen)
{
    kv_engine_stats es;

    kv_engine_stats_get(e, &es);
    if (!force && (es.keys || kv_engine_revision(e))) {
        snprintf(err, errlen, "the store is not empty (%llu keys, revision %llu): restore "
                 "into an empty --dir, or add --force to replace its data",
                 (unsigned long long)es.keys, (unsigned long long)kv_engine_revision(e));
        return -1;
    }
    if (!e->max_key_bytes)
        return 0;
    const uint8_t *p = info->records;
    for (uint64_t n = 1; p < info->records_end; n++) {
        kv_bfile_record r;
        kv_bfile_record_get(&p, info->records_end, &r);
        if (r.klen > e->max_key_bytes) {
            snprintf(err, errlen, "record %llu has a key of %zu bytes; engine %s stores at "
                     "most %zu", (unsigned long long)n, r.klen, e->ops->name, e->max_key_bytes);
            return -1;
        }
    }
    return 0;
}

/* Loads every record of the checked file INFO into E, emptied first. */
static int load_all(kv_engine *e, const kv_bfile_info *info, kv_restore_info *out,
                    char *err, size_t errlen)
{
    struct timespec ts;
    const uint8_t *p = info->records;

    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t unix_now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    uint64_t engine_now = kv_engine_now_ms(e);
    if (kv_engine_reset(e, info->revision) != KV_OK) {
        snprintf(err, errlen, "engine %s cannot empty itself: nothing loaded", e->ops->name);
        return -1;
    }
    while (p < info->records_end) {
        kv_bfile_record r;
        kv_bfile_record_get(&p, info->records_end, &r);
        if (r.deadline_ms && r.deadline_ms <= unix_now) {
            out->expired++;
            continue;
        }
        kv_entry en = { r.key, r.klen, r.value, r.vlen,
                        { r.create_revision, r.mod_revision, r.version, 0 } };
        if (r.deadline_ms)
            en.meta.expires_ms = e->clock == CLOCK_REALTIME ? r.deadline_ms
                                                            : r.deadline_ms - unix_now + engine_now;
        kv_status st = kv_engine_load(e, &en);
        if (st == KV_OK && ++out->keys % FLUSH_EVERY == 0 && flush(e) < 0)
            st = KV_INTERNAL;
        if (st != KV_OK) {
            const char *why = kv_engine_last_error(e);
            snprintf(err, errlen, "engine %s failed at key %llu (%s%s%s): the store is partly "
                     "loaded; fix the cause and restore again with --force", e->ops->name,
                     (unsigned long long)(out->keys + out->expired + 1), kv_status_name(st),
                     why ? ": " : "", why ? why : "");
            return -1;
        }
    }
    if (flush(e) < 0) {
        snprintf(err, errlen, "engine %s failed to commit the loaded keys", e->ops->name);
        return -1;
    }
    return 0;
}

int kv_restore_file(kv_engine *e, const char *path, int force, kv_restore_info *out,
                    char *err, size_t errlen)
{
    char why[400];
    kv_bfile_info info;
    struct stat st;
    void *map = NULL;
    int rc = -1, fd = open(path, O_RDONLY | O_CLOEXEC);

    memset(out, 0, sizeof *out);
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        goto done;
    }
    if (st.st_size > 0 && (map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0))
                          == MAP_FAILED) {
        map = NULL;
        snprintf(err, errlen, "cannot map %s: %s", path, strerror(errno));
        goto done;
    }
    if (kv_bfile_check(map ? map : (const void *)"", (size_t)st.st_size, &info, why, sizeof why) < 0) {
        snprintf(err, errlen, "%s: %s; nothing loaded", path, why);
        goto done;
    }
    if (check_fits(e, &info, force, err, errlen) < 0)
        goto done;
    out->revision = info.revision;
    rc = load_all(e, &info, out, err, errlen);
done:
    if (map)
        munmap(map, (size_t)st.st_size);
    if (fd >= 0)
        close(fd);
    return rc;
}
