/* server.c - starting and stopping kvstored for tests; raw socket helpers.
 * Owns the child process it starts and the temporary --dir it gives it. */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "frame.h"
#include "server.h"
#include "varint.h"

const char *kv_test_engine(void)
{
    const char *engine = getenv("KVSTORED_ENGINE");
    return engine && engine[0] ? engine : "memory";
}

/* Removes S's temporary engine directory and what the engine left in it. */
static void remove_dir(kv_test_server *s)
{
    DIR *d;
    struct dirent *de;
    char path[sizeof s->dir + 256 + 2];

    if (!s->dir[0])
        return;
    if ((d = opendir(s->dir))) {
        while ((de = readdir(d))) {
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                snprintf(path, sizeof path, "%s/%s", s->dir, de->d_name);
                unlink(path);
            }
        }
        closedir(d);
    }
    rmdir(s->dir);
    s->dir[0] = 0;
}

int kv_test_server_start(kv_test_server *s, const char *const *extra)
{
    const char *bin = getenv("KVSTORED");
    const char *engine = kv_test_engine();
    const char *argv[32] = { 0 };
    int pipefd[2], n = 0;

    if (!bin) {
        fprintf(stderr, "KVSTORED is not set\n");
        return -1;
    }
    argv[n++] = bin;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    s->dir[0] = 0;
    if (strcmp(engine, "memory") != 0) {
        snprintf(s->dir, sizeof s->dir, "/tmp/kvstored-test.XXXXXX");
        if (!mkdtemp(s->dir)) {
            perror("mkdtemp");
            return -1;
        }
        argv[n++] = "--engine";
        argv[n++] = engine;
        argv[n++] = "--dir";
        argv[n++] = s->dir;
    }
    for (; extra && *extra && n < 30; extra++)
        argv[n++] = *extra;
    if (pipe(pipefd) < 0)
        return -1;
    s->pid = fork();
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);

    char line[256] = "";
    size_t len = 0;
    struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
    s->port = 0;
    while (len < sizeof line - 1 && !strchr(line, '\n')) {
        line[len] = 0;
        if (poll(&pfd, 1, 10000) <= 0)
            break;
        ssize_t r = read(pipefd[0], line + len, sizeof line - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        line[len] = 0;
    }
    close(pipefd[0]);   /* later output goes nowhere; the server ignores SIGPIPE */
    const char *colon = strrchr(line, ':');
    if (strncmp(line, "listening on ", 13) == 0 && colon)
        s->port = atoi(colon + 1);
    if (s->port <= 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        remove_dir(s);
        return -1;
    }
    snprintf(s->endpoint, sizeof s->endpoint, "127.0.0.1:%d", s->port);
    return 0;
}

int kv_test_server_stop(kv_test_server *s)
{
    int status;

    kill(s->pid, SIGTERM);
    for (int i = 0; i < 1000; i++) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid) {
            remove_dir(s);
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        usleep(10000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    remove_dir(s);
    return -1;
}

int kv_test_connect(int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct timeval tv = { .tv_sec = 5 };
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    if (fd < 0)
        return -1;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int kv_test_send_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int kv_test_send_request(int fd, uint64_t id, const char *method,
                         const void *payload, size_t len)
{
    Kvstore__V1__RpcRequest req = KVSTORE__V1__RPC_REQUEST__INIT;
    req.id = id;
    req.method = (char *)method;
    req.payload.data = (uint8_t *)payload;
    req.payload.len = len;

    size_t n = kvstore__v1__rpc_request__get_packed_size(&req);
    uint8_t *buf = malloc(n + KV_FRAME_PREFIX_MAX);
    if (!buf)
        return -1;
    size_t pre = kv_frame_put_prefix(buf, (uint32_t)n);
    kvstore__v1__rpc_request__pack(&req, buf + pre);
    int rc = kv_test_send_all(fd, buf, pre + n);
    free(buf);
    return rc;
}

/* Reads exactly N bytes. Returns 0, or -1 on EOF/timeout/error. */
static int read_full(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

Kvstore__V1__RpcResponse *kv_test_read_response(int fd)
{
    uint8_t pre[KV_FRAME_PREFIX_MAX];
    size_t got = 0;
    uint32_t len;
    int rc;

    /* A byte at a time, so that nothing past the prefix is read here;
     * get32 stops at KV_FRAME_PREFIX_MAX bytes, so PRE cannot overflow. */
    do {
        if (read_full(fd, pre + got, 1) < 0)
            return NULL;
        const uint8_t *p = pre;
        got++;
        rc = kv_varint_get32(&p, pre + got, &len);
    } while (rc == KV_VARINT_TRUNCATED);
    if (rc < 0)
        return NULL;
    uint8_t *body = malloc(len ? len : 1);
    if (!body || read_full(fd, body, len) < 0) {
        free(body);
        return NULL;
    }
    Kvstore__V1__RpcResponse *resp = kvstore__v1__rpc_response__unpack(NULL, len, body);
    free(body);
    return resp;
}

int kv_test_peer_closed(int fd)
{
    char b[4096];

    for (;;) {
        ssize_t r = recv(fd, b, sizeof b, 0);
        if (r == 0)
            return 1;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == ECONNRESET)
            return 1;
        return 0;
    }
}
