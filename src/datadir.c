/* datadir.c - creating, checking and locking an engine's --dir; see
 * datadir.h. Why a lock of our own: LMDB lets several processes share an
 * environment, but two kvstored on one directory would each hold a write
 * transaction open across a loop turn and serve stale reads, so a second
 * one is refused at start. flock(2) rather than a pid file alone: the
 * kernel releases it when the holder dies, so a kill -9 leaves no stale
 * lock behind. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "datadir.h"

/* Whether NAME is ".", "..", the lock or one of OWN. */
static int is_ours(const char *name, const char *const *own)
{
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
        strcmp(name, KV_DATADIR_LOCK_NAME) == 0)
        return 1;
    for (; own && *own; own++)
        if (strcmp(name, *own) == 0)
            return 1;
    return 0;
}

/* Refuses a directory that holds neither MAIN nor only our files. Returns 0
 * or -1 with ERR. */
static int check_contents(const char *path, const char *main, const char *const *own,
                          char *err, size_t errlen)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int has_main = 0;
    char stranger[256] = "";

    if (!d) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, main) == 0)
            has_main = 1;
        else if (!stranger[0] && !is_ours(de->d_name, own))
            snprintf(stranger, sizeof stranger, "%s", de->d_name);
    }
    closedir(d);
    if (!has_main && stranger[0]) {
        snprintf(err, errlen, "%s is not a kvstored data directory: it holds \"%s\" but no %s; "
                 "give an empty directory or one kvstored made", path, stranger, main);
        return -1;
    }
    return 0;
}

/* Takes the lock on FD, or says who holds it. Returns 0 or -1 with ERR. */
static int take_lock(int fd, const char *path, char *err, size_t errlen)
{
    char pid[32];

    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK) {
            snprintf(err, errlen, "cannot lock %s/%s: %s", path, KV_DATADIR_LOCK_NAME,
                     strerror(errno));
            return -1;
        }
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        snprintf(err, errlen, "%s is in use by another kvstored%s%s%s", path,
                 pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
        return -1;
    }
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        snprintf(err, errlen, "cannot write %s/%s: %s", path, KV_DATADIR_LOCK_NAME,
                 strerror(errno));
        return -1;
    }
    return 0;
}

int kv_datadir_lock(const char *path, const char *main, const char *const *own,
                    char *err, size_t errlen)
{
    struct stat st;
    char lock[4096];
    int fd;

    if (mkdir(path, 0777) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    if (stat(path, &st) < 0) {
        snprintf(err, errlen, "cannot use %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a directory", path);
        return -1;
    }
    if ((size_t)snprintf(lock, sizeof lock, "%s/%s", path, KV_DATADIR_LOCK_NAME) >= sizeof lock) {
        snprintf(err, errlen, "path too long: %s", path);
        return -1;
    }
    /* Before the lock file exists: a refused directory is left untouched. */
    if (check_contents(path, main, own, err, errlen) < 0)
        return -1;
    fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == EACCES || errno == EPERM || errno == EROFS)
            snprintf(err, errlen, "%s is not writable: %s", path, strerror(errno));
        else
            snprintf(err, errlen, "cannot open %s: %s", lock, strerror(errno));
        return -1;
    }
    if (take_lock(fd, path, err, errlen) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}
