/* backup.c - kvctl snapshot save and kvctl dump: a Snapshot taken on the
 * server and pulled with SnapshotRead, its checksum checked as the bytes
 * come (backup_file.h), then kept as a file (written to FILE.tmp, synced,
 * renamed) or turned into the dump text (dumpfmt.h). Owns its connection
 * and its files; load is load.c's. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup.h"
#include "backup_file.h"
#include "conn.h"
#include "dumpfmt.h"
#include "exec.h"
#include "mem.h"

#define METHOD(m) "/kvstore.v1.KV/" m
/* What each SnapshotRead asks for: within the server's default frame limit
 * (16 MiB), few round trips. */
#define READ_BYTES (4u << 20)
/* The Snapshot call waits for the whole copy: at least this long. */
#define SNAPSHOT_TIMEOUT_MS 600000

/* A command's failure that is not the server's: one line, exit CODE. */
static int fail_local(const char *name, int code, const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "kvctl: %s: ", name);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return code;
}

/* What a fetch got, or why not. */
typedef struct fetched {
    kvctl_result why;       /* the server's or the connection's failure */
    char local[512];        /* else a local one (a write, the checksum) */
    int corrupt;            /* local is about the bytes received */
    kv_bfile_info info;
    uint64_t bytes;
} fetched;

/* Takes a snapshot on C and writes its bytes to FP, checking them as they
 * come. Returns 0 (FP flushed), or -1 with F's why or local set. */
static int fetch(kv_client *c, const kvctl_conf *conf, FILE *fp, fetched *f)
{
    Kvstore__V1__SnapshotRequest req = KVSTORE__V1__SNAPSHOT_REQUEST__INIT;
    Kvstore__V1__SnapshotReadRequest rd = KVSTORE__V1__SNAPSHOT_READ_REQUEST__INIT;
    Kvstore__V1__SnapshotResponse *snap;
    kv_bfile_stream check;
    uint8_t *payload = NULL;
    size_t len = 0;
    int done = 0, rc = -1;

    kv_client_set_timeout(c, conf->timeout_ms && conf->timeout_ms < SNAPSHOT_TIMEOUT_MS
                                 ? SNAPSHOT_TIMEOUT_MS : conf->timeout_ms);
    if (kvctl_conn_call(c, METHOD("Snapshot"), &req.base, &payload, &len, &f->why) != KV_OK)
        return -1;
    kv_client_set_timeout(c, conf->timeout_ms);
    snap = kvstore__v1__snapshot_response__unpack(NULL, len, payload);
    free(payload);
    if (!snap) {
        snprintf(f->local, sizeof f->local, "the Snapshot answer does not decode");
        return -1;
    }
    rd.snapshot_id = snap->snapshot_id;
    rd.max_bytes = READ_BYTES;
    kvstore__v1__snapshot_response__free_unpacked(snap, NULL);
    if (kv_bfile_stream_init(&check) < 0) {
        snprintf(f->local, sizeof f->local, "out of memory");
        return -1;
    }
    while (!done) {
        Kvstore__V1__SnapshotReadResponse *a;
        payload = NULL;
        if (kvctl_conn_call(c, METHOD("SnapshotRead"), &rd.base, &payload, &len, &f->why) != KV_OK)
            goto out;
        a = kvstore__v1__snapshot_read_response__unpack(NULL, len, payload);
        free(payload);
        if (!a) {
            snprintf(f->local, sizeof f->local, "a SnapshotRead answer does not decode");
            goto out;
        }
        kv_bfile_stream_feed(&check, a->data.data, a->data.len);
        int bad = a->data.len && fwrite(a->data.data, 1, a->data.len, fp) != a->data.len;
        rd.offset += a->data.len;
        done = a->done || !a->data.len;
        kvstore__v1__snapshot_read_response__free_unpacked(a, NULL);
        if (bad) {
            snprintf(f->local, sizeof f->local, "writing: %s", strerror(errno));
            goto out;
        }
    }
    f->bytes = rd.offset;
    if (fflush(fp) != 0) {
        snprintf(f->local, sizeof f->local, "writing: %s", strerror(errno));
        goto out;
    }
    if (kv_bfile_stream_end(&check, &f->info, f->local, sizeof f->local) < 0) {
        f->corrupt = 1;
        goto out;
    }
    rc = 0;
out:
    kv_bfile_stream_free(&check);
    return rc;
}

/* Reports F's failure for CMD; returns the exit code. */
static int fetch_failed(const kvctl_out *o, const kvctl_cmd *cmd, fetched *f, const char *name)
{
    int code;

    if (f->why.status != KV_OK) {
        code = kvctl_out_result(o, cmd, &f->why);
    } else {
        fprintf(stderr, "kvctl: %s: %s%s\n", name, f->corrupt ? "the snapshot received is " : "",
                f->local);
        code = f->corrupt ? KVCTL_EXIT_SERVER : KVCTL_EXIT_USAGE;
    }
    kvctl_exec_result_clear(&f->why);
    return code;
}

/* Syncs the directory holding PATH, so that a rename into it lasts. */
static void sync_dir(const char *path)
{
    char *copy = kvctl_mem_strdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

/* snapshot save FILE */
static int save(kv_client *c, const kvctl_conf *conf, const kvctl_cmd *cmd, const kvctl_out *o)
{
    const char *path = cmd->path;
    size_t n = strlen(path) + 5;
    char *tmp = kvctl_mem_alloc(n);
    fetched f;
    FILE *fp;
    int code;

    memset(&f, 0, sizeof f);
    snprintf(tmp, n, "%s.tmp", path);
    /* 0600: a backup holds every key of the store. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!fp) {
        if (fd >= 0)
            close(fd);
        code = fail_local("snapshot save", KVCTL_EXIT_USAGE, "cannot create %s: %s", tmp,
                          strerror(errno));
        free(tmp);
        return code;
    }
    if (fetch(c, conf, fp, &f) < 0) {
        fclose(fp);
        unlink(tmp);
        free(tmp);
        return fetch_failed(o, cmd, &f, "snapshot save");
    }
    int bad = fsync(fileno(fp)) < 0;
    if (fclose(fp) != 0 || bad || rename(tmp, path) < 0) {
        code = fail_local("snapshot save", KVCTL_EXIT_USAGE, "cannot write %s: %s", path,
                          strerror(errno));
        unlink(tmp);
        free(tmp);
        return code;
    }
    sync_dir(path);
    free(tmp);
    if (o->format == KVCTL_FORMAT_JSON)
        fprintf(o->fp, "{\"command\":\"snapshot save\",\"code\":\"OK\",\"revision\":%llu,"
                "\"keys\":%llu,\"bytes\":%llu}\n", (unsigned long long)f.info.revision,
                (unsigned long long)f.info.count, (unsigned long long)f.bytes);
    else
        fprintf(o->fp, "saved %s: revision %llu, %llu keys, %llu bytes\n", path,
                (unsigned long long)f.info.revision, (unsigned long long)f.info.count,
                (unsigned long long)f.bytes);
    return KVCTL_EXIT_OK;
}

/* Writes the dump of the checked backup INFO to FP. */
static void write_dump(FILE *fp, const kv_bfile_info *info)
{
    const uint8_t *p = info->records;

    fprintf(fp, KVCTL_DUMP_HEADER " revision=%llu keys=%llu\n",
            (unsigned long long)info->revision, (unsigned long long)info->count);
    while (p < info->records_end) {
        kv_bfile_record r;
        uint64_t ttl = 0;
        kv_bfile_record_get(&p, info->records_end, &r);
        if (r.deadline_ms)
            ttl = r.deadline_ms > info->created_ms ? r.deadline_ms - info->created_ms : 1;
        kvctl_dump_put(fp, r.key, r.klen, r.value, r.vlen, ttl);
    }
}

/* dump [FILE|-]: the snapshot into an unlinked file first, checked whole,
 * then as text to FILE (through FILE.tmp) or standard output. */
static int dump(kv_client *c, const kvctl_conf *conf, const kvctl_cmd *cmd, const kvctl_out *o)
{
    const char *path = cmd->path && strcmp(cmd->path, "-") != 0 ? cmd->path : NULL;
    FILE *held = tmpfile(), *out = stdout;
    char *tmp = NULL, why[512];
    void *map = MAP_FAILED;
    kv_bfile_info info;
    fetched f;
    int code = KVCTL_EXIT_USAGE;

    memset(&f, 0, sizeof f);
    if (!held)
        return fail_local("dump", KVCTL_EXIT_USAGE, "cannot make a temporary file: %s%s",
                          strerror(errno), "");
    if (fetch(c, conf, held, &f) < 0) {
        fclose(held);
        return fetch_failed(o, cmd, &f, "dump");
    }
    if (f.bytes && (map = mmap(NULL, f.bytes, PROT_READ, MAP_PRIVATE, fileno(held), 0))
                   == MAP_FAILED) {
        code = fail_local("dump", KVCTL_EXIT_USAGE, "cannot map the snapshot: %s%s",
                          strerror(errno), "");
        goto done;
    }
    if (kv_bfile_check(map, f.bytes, &info, why, sizeof why) < 0) {
        code = fail_local("dump", KVCTL_EXIT_SERVER, "the snapshot received is %s%s", why, "");
        goto done;
    }
    if (path) {
        size_t n = strlen(path) + 5;
        tmp = kvctl_mem_alloc(n);
        snprintf(tmp, n, "%s.tmp", path);
        if (!(out = fopen(tmp, "w"))) {
            code = fail_local("dump", KVCTL_EXIT_USAGE, "cannot create %s: %s", tmp,
                              strerror(errno));
            goto done;
        }
    }
    write_dump(out, &info);
    int bad = fflush(out) != 0 || ferror(out) || (path && fsync(fileno(out)) < 0);
    if (path)
        bad |= fclose(out) != 0;
    if (bad || (path && rename(tmp, path) < 0)) {
        code = fail_local("dump", KVCTL_EXIT_USAGE, "cannot write %s: %s",
                          path ? path : "standard output", strerror(errno));
        if (path)
            unlink(tmp);
        goto done;
    }
    if (path) {
        sync_dir(path);
        fprintf(o->fp, "dumped %s: revision %llu, %llu keys\n", path,
                (unsigned long long)info.revision, (unsigned long long)info.count);
    }
    code = KVCTL_EXIT_OK;
done:
    if (map != MAP_FAILED)
        munmap(map, f.bytes);
    fclose(held);
    free(tmp);
    return code;
}

int kvctl_backup_run(const kvctl_conf *conf, const kvctl_cmd *cmd, const kvctl_out *o)
{
    kvctl_result why;
    kv_client *c = kvctl_conn_open(conf, &why);
    int code;

    if (!c) {
        code = kvctl_out_result(o, cmd, &why);
        kvctl_exec_result_clear(&why);
        return code;
    }
    code = strcmp(cmd->name, "snapshot") == 0 ? save(c, conf, cmd, o) : dump(c, conf, cmd, o);
    kv_client_free(c);
    return code;
}
