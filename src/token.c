/* token.c - reads a token file (its first line) for the server and the
 * clients. Owns only its stack buffer, wiped before it returns; hashing
 * and comparing tokens is auth.c's job. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include "token.h"

/* What MODE names, for "is not a regular file (...)". */
static const char *kind_of(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode) || S_ISBLK(mode))
        return "a device";
    return "another kind of file";
}

int kv_token_read(const char *path, uint8_t token[KV_TOKEN_MAX], size_t *len,
                  char *err, size_t errlen)
{
    /* The longest line accepted is a full token, '\r', '\n': reading one
     * byte more than that tells a too-long line from one that fits. */
    uint8_t buf[KV_TOKEN_MAX + 3];
    struct stat st;
    size_t n = 0, line;
    uint8_t *nl;
    int fd, rc = -1;

    /* O_NONBLOCK: opening a FIFO with no writer would block startup
     * forever; with it the open returns and fstat refuses the FIFO. */
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open token file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "cannot read token file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "token file %s is not a regular file (%s)", path,
                 kind_of(st.st_mode));
        goto out;
    }
    while (n < sizeof buf) {
        ssize_t got = read(fd, buf + n, sizeof buf - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, errlen, "cannot read token file %s: %s", path, strerror(errno));
            goto out;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    nl = memchr(buf, '\n', n);
    line = nl ? (size_t)(nl - buf) : n;
    if (line > 0 && buf[line - 1] == '\r')
        line--;
    if (line == 0) {
        snprintf(err, errlen, "token file %s holds no token (its first line is empty)", path);
        goto out;
    }
    if (line > KV_TOKEN_MAX) {
        snprintf(err, errlen, "token file %s: the token (its first line) is longer than "
                 "%d bytes", path, KV_TOKEN_MAX);
        goto out;
    }
    memcpy(token, buf, line);
    *len = line;
    rc = 0;
out:
    sodium_memzero(buf, sizeof buf);
    close(fd);
    return rc;
}
