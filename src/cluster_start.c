/* cluster_start.c - starting a cluster node: the --initial-cluster list,
 * the directory's identity, libraft's I/O on the embedded libuv loop
 * (with the async work raft_uv 0.15 lacks), bootstrap or join, and
 * raft_start. See cluster.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cluster.h"
#include "cluster_internal.h"
#include "cluster_join.h"
#include "log.h"


/* raft_uv (0.15) is a version 1 raft_io, without the async_work that
 * libraft's asynchronous snapshots run on: it is given one here, libuv's
 * thread pool on the same embedded loop (uv_queue_work). */
typedef struct async_work {
    uv_work_t w;                /* first */
    struct raft_io_async_work *req;
    raft_io_async_work_cb cb;
    int status;
    kv_cluster *c;
} async_work;

static void async_run(uv_work_t *w)
{
    async_work *a = (async_work *)(void *)w;

    a->status = a->req->work(a->req);
}

static void async_done(uv_work_t *w, int status)
{
    async_work *a = (async_work *)(void *)w;
    struct raft_io_async_work *req = a->req;
    raft_io_async_work_cb cb = a->cb;
    kv_cluster *c = a->c;
    int rv = status == UV_ECANCELED ? RAFT_CANCELED : a->status;

    free(a);
    c->async_running--;
    cb(req, rv);
}

static int io_async_work(struct raft_io *io, struct raft_io_async_work *req,
                         raft_io_async_work_cb cb)
{
    kv_cluster *c = CONTAINER(io, kv_cluster, io);   /* io->data is libraft's */
    async_work *a = calloc(1, sizeof *a);

    if (!a)
        return RAFT_NOMEM;
    a->req = req;
    a->cb = cb;
    a->c = c;
    if (uv_queue_work(&c->embed.uv, &a->w, async_run, async_done) != 0) {
        free(a);
        return RAFT_IOERR;
    }
    c->async_running++;     /* kv_cluster_close waits for it */
    return 0;
}

int kv_cluster_parse_initial(const char *text, struct raft_configuration *conf, char *err,
                             size_t errlen)
{
    const char *p = text;

    while (*p) {
        char *end;
        errno = 0;
        unsigned long long id = strtoull(p, &end, 10);
        if (errno || end == p || *end != '=' || id == 0) {
            snprintf(err, errlen, "--initial-cluster: expected ID=HOST:PORT at \"%s\"", p);
            return -1;
        }
        const char *addr = end + 1, *comma = strchr(addr, ',');
        size_t len = comma ? (size_t)(comma - addr) : strlen(addr);
        char buf[KV_FSM_ADDR_MAX];
        if (!len || len >= sizeof buf) {
            snprintf(err, errlen, "--initial-cluster: bad address for node %llu", id);
            return -1;
        }
        memcpy(buf, addr, len);
        buf[len] = 0;
        int rv = raft_configuration_add(conf, id, buf, RAFT_VOTER);
        if (rv) {
            snprintf(err, errlen, "--initial-cluster: node %llu at %s: %s", id, buf,
                     rv == RAFT_DUPLICATEID ? "the id is given twice"
                     : rv == RAFT_DUPLICATEADDRESS ? "the address is given twice"
                                                   : raft_strerror(rv));
            return -1;
        }
        p = comma ? comma + 1 : addr + len;
    }
    if (!conf->n) {
        snprintf(err, errlen, "--initial-cluster: no members");
        return -1;
    }
    return 0;
}

/* Whether DIR holds a raft log (libraft's metadata files). */
static int has_log(const char *dir)
{
    char path[4096];
    struct stat st;

    for (int i = 1; i <= 2; i++) {
        snprintf(path, sizeof path, "%s/metadata%d", dir, i);
        if (stat(path, &st) == 0)
            return 1;
    }
    return 0;
}

/* DIR/node-id holds the id the directory belongs to: a directory started
 * with another --node-id is refused rather than joined under a false id. */
static int check_identity(const kv_cluster_config *cfg, char *err, size_t errlen)
{
    char path[4096];
    unsigned long long id = 0;

    snprintf(path, sizeof path, "%s/node-id", cfg->dir);
    FILE *f = fopen(path, "r");
    if (f) {
        int ok = fscanf(f, "%llu", &id) == 1;
        fclose(f);
        if (!ok || id != cfg->node_id) {
            snprintf(err, errlen, "--cluster-dir %s belongs to node %llu, not %" PRIu64,
                     cfg->dir, id, cfg->node_id);
            return -1;
        }
        return 0;
    }
    if (!(f = fopen(path, "w")) || fprintf(f, "%" PRIu64 "\n", cfg->node_id) < 0 || fflush(f)
        || fsync(fileno(f)) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

int kv_cluster_start(kv_cluster *c, const kv_cluster_config *cfg, struct ev_loop *loop,
                     const kv_service_env *env, const char *client_address, char *err,
                     size_t errlen)
{
    int rv;

    memset(c, 0, sizeof *c);
    c->cfg = *cfg;
    c->loop = loop;
    c->env = env;
    snprintf(c->client_address, sizeof c->client_address, "%s", client_address);
    snprintf(c->raft_address, sizeof c->raft_address, "%s", cfg->raft_listen);
    if (getrandom(&c->incarnation, sizeof c->incarnation, 0) != sizeof c->incarnation)
        c->incarnation = (uint64_t)wall_ms() ^ ((uint64_t)getpid() << 32);
    if (mkdir(cfg->dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "--cluster-dir %s: %s", cfg->dir, strerror(errno));
        return -1;
    }
    if (check_identity(cfg, err, errlen) < 0)
        return -1;
    int fresh = !has_log(cfg->dir);
    if (fresh && !cfg->initial && !cfg->join) {
        snprintf(err, errlen, "--cluster-dir %s is empty: give --initial-cluster to start a new "
                 "cluster, or --join to join a running one", cfg->dir);
        return -1;
    }
    if (kv_fsm_init(&c->fsm, env, cfg->dedup_window) < 0) {
        snprintf(err, errlen, "out of memory for the retry table");
        return -1;
    }
    if ((rv = kv_uvembed_init(&c->embed, loop)) < 0) {
        snprintf(err, errlen, "libuv: %s", uv_strerror(rv));
        return -1;
    }
    kv_cluster_hooks_init(c);
    if ((rv = raft_uv_tcp_init(&c->transport, &c->embed.uv)) != 0
        || (rv = raft_uv_init(&c->io, &c->embed.uv, cfg->dir, &c->transport)) != 0) {
        snprintf(err, errlen, "raft I/O in %s: %s", cfg->dir,
                 c->io.errmsg[0] ? c->io.errmsg : raft_strerror(rv));
        return -1;
    }
    c->io.version = 2;
    c->io.async_work = io_async_work;
    if ((rv = raft_init(&c->raft, &c->io, &c->hooks, cfg->node_id, cfg->raft_listen)) != 0) {
        snprintf(err, errlen, "raft: %s", raft_errmsg(&c->raft));
        return -1;
    }
    if (fresh && cfg->initial) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        if (kv_cluster_parse_initial(cfg->initial, &conf, err, errlen) < 0) {
            raft_configuration_close(&conf);
            return -1;
        }
        int me = 0;
        for (unsigned i = 0; i < conf.n; i++)
            me |= conf.servers[i].id == cfg->node_id
                  && strcmp(conf.servers[i].address, cfg->raft_listen) == 0;
        if (!me) {
            raft_configuration_close(&conf);
            snprintf(err, errlen, "--initial-cluster does not list this node as %" PRIu64 "=%s "
                     "(--node-id and --raft-listen)", cfg->node_id, cfg->raft_listen);
            return -1;
        }
        rv = raft_bootstrap(&c->raft, &conf);
        raft_configuration_close(&conf);
        if (rv && rv != RAFT_CANTBOOTSTRAP) {
            snprintf(err, errlen, "raft bootstrap: %s", raft_errmsg(&c->raft));
            return -1;
        }
    }
    raft_set_pre_vote(&c->raft, true);
    raft_set_election_timeout(&c->raft, cfg->election_ms);
    raft_set_heartbeat_timeout(&c->raft, cfg->heartbeat_ms);
    raft_set_snapshot_threshold(&c->raft, cfg->snapshot_threshold);
    raft_set_snapshot_trailing(&c->raft, cfg->snapshot_trailing);
    if ((rv = raft_start(&c->raft)) != 0) {
        snprintf(err, errlen, "raft start: %s", raft_errmsg(&c->raft));
        return -1;
    }
    kv_log(KV_LOG_INFO, "cluster: node %" PRIu64 " started, raft on %s, log in %s%s",
           cfg->node_id, cfg->raft_listen, cfg->dir,
           fresh ? (cfg->initial ? " (bootstrapped from --initial-cluster)" : " (joining)") : "");
    if (fresh && cfg->join)
        kv_cluster_join_start(c, cfg->join);
    kv_uvembed_run(&c->embed);
    return 0;
}
