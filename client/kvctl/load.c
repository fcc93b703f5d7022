/* load.c - kvctl load [FILE|-]: a dump (dumpfmt.h) read whole and checked
 * line by line before anything is written, then written back with Set
 * (its TTL with it), pipelined a batch at a time. Owns the input it read
 * and its connection. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup.h"
#include "conn.h"
#include "dumpfmt.h"
#include "exec.h"
#include "lines.h"
#include "mem.h"

/* Sets in flight at once: one pipeline. */
#define BATCH 1000

/* The dump, decoded. */
typedef struct dump {
    kvctl_bytes in;             /* the input */
    uint8_t *bytes;             /* the keys and values decoded, into here */
    kvctl_dump_line *v;
    size_t *line_no;            /* each key's line, for messages */
    size_t n, cap;
} dump;

/* Checks and decodes every line of D. Returns 0, or -1 after one line on
 * stderr naming NAME and the line. */
static int parse(dump *d, const char *name)
{
    const char *p = (const char *)d->in.data, *end = p + d->in.len;
    uint8_t *out;
    char err[300];
    size_t line = 0;

    d->bytes = out = kvctl_mem_alloc(d->in.len + 1);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        kvctl_dump_line l;
        int rc;
        line++;
        if (line == 1) {
            size_t h = strlen(KVCTL_DUMP_HEADER);
            if (n < h || memcmp(p, KVCTL_DUMP_HEADER, h) != 0 || (n > h && p[h] != ' ')) {
                snprintf(err, sizeof err, "not a kvstore dump: the first line is not \""
                         KVCTL_DUMP_HEADER " ...\" (a dump of another version, or no dump)");
                rc = -1;
            } else {
                rc = 0;
            }
        } else {
            rc = kvctl_dump_get(p, n, out, &l, err, sizeof err);
        }
        if (rc < 0) {
            fprintf(stderr, "kvctl: load: %s:%zu: %s; nothing written\n", name, line, err);
            return -1;
        }
        if (rc == 1) {
            if (d->n == d->cap) {
                d->cap = d->cap ? 2 * d->cap : 1024;
                d->v = kvctl_mem_realloc(d->v, d->cap * sizeof *d->v);
                d->line_no = kvctl_mem_realloc(d->line_no, d->cap * sizeof *d->line_no);
            }
            d->line_no[d->n] = line;
            d->v[d->n++] = l;
            out += l.klen + l.vlen;
        }
        p += n + (nl != NULL);
    }
    if (line == 0) {
        fprintf(stderr, "kvctl: load: %s: empty, not a kvstore dump; nothing written\n", name);
        return -1;
    }
    return 0;
}

/* One Set of a batch and its outcome. */
typedef struct set_slot {
    kv_client *c;
    Kvstore__V1__SetRequest req;
    int answered;
    kv_status status;
    char *message;
} set_slot;

static void on_set(const Kvstore__V1__SetResponse *m, void *data)
{
    set_slot *s = data;

    s->answered = 1;
    if (!m) {
        const char *msg = kv_client_last_message(s->c);
        s->status = kv_client_last_status(s->c);
        if (s->status == KV_OK)
            s->status = KV_UNKNOWN;
        s->message = kvctl_mem_strdup(msg && *msg ? msg : "call failed");
    }
}

/* Writes D's keys on C, BATCH at a time. Returns the exit code. */
static int send_all(kv_client *c, const dump *d, const char *name)
{
    ProtobufCService *svc = kv_client_service(c);
    set_slot *slots = kvctl_mem_alloc(BATCH * sizeof *slots);
    int code = KVCTL_EXIT_OK;

    for (size_t at = 0; at < d->n && code == KVCTL_EXIT_OK; at += BATCH) {
        size_t n = d->n - at < BATCH ? d->n - at : BATCH;
        memset(slots, 0, n * sizeof *slots);
        kv_client_pipeline_begin(c);
        for (size_t i = 0; i < n; i++) {
            const kvctl_dump_line *l = &d->v[at + i];
            set_slot *s = &slots[i];
            s->c = c;
            kvstore__v1__set_request__init(&s->req);
            s->req.key = (ProtobufCBinaryData){ l->klen, l->key };
            s->req.value = (ProtobufCBinaryData){ l->vlen, l->value };
            s->req.ttl_ms = l->ttl_ms;
            kvstore__v1__kv__set(svc, &s->req, on_set, s);
        }
        kv_status st = kv_client_pipeline_end(c);
        for (size_t i = 0; i < n && code == KVCTL_EXIT_OK; i++) {
            set_slot *s = &slots[i];
            if (s->answered && s->status == KV_OK)
                continue;
            kv_status why = s->answered ? s->status : st != KV_OK ? st : KV_UNKNOWN;
            fprintf(stderr, "kvctl: load: %s:%zu: %s: %s; the %zu keys before it were "
                    "written\n", name, d->line_no[at + i], kv_status_name(why),
                    s->message ? s->message : "no answer", at + i);
            code = why == KV_UNAVAILABLE || why == KV_DEADLINE_EXCEEDED
                       ? KVCTL_EXIT_UNREACHABLE : KVCTL_EXIT_SERVER;
        }
        for (size_t i = 0; i < n; i++)
            free(slots[i].message);
    }
    free(slots);
    return code;
}

int kvctl_load_run(const kvctl_conf *conf, const kvctl_cmd *cmd, const kvctl_out *o)
{
    const char *path = cmd->path && strcmp(cmd->path, "-") != 0 ? cmd->path : NULL;
    const char *name = path ? path : "standard input";
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
    dump d;
    kvctl_result why;
    int code = KVCTL_EXIT_USAGE;
    kv_client *c = NULL;

    memset(&d, 0, sizeof d);
    if (fd < 0 || kvctl_read_all(fd, &d.in) < 0) {
        fprintf(stderr, "kvctl: load: cannot read %s: %s\n", name, strerror(errno));
        goto done;
    }
    if (parse(&d, name) < 0)
        goto done;
    if (!(c = kvctl_conn_open(conf, &why))) {
        code = kvctl_out_result(o, cmd, &why);
        kvctl_exec_result_clear(&why);
        goto done;
    }
    code = send_all(c, &d, name);
    if (code == KVCTL_EXIT_OK && o->format == KVCTL_FORMAT_JSON)
        fprintf(o->fp, "{\"command\":\"load\",\"code\":\"OK\",\"keys\":%zu}\n", d.n);
    else if (code == KVCTL_EXIT_OK)
        fprintf(o->fp, "loaded %zu keys\n", d.n);
done:
    if (path && fd >= 0)
        close(fd);
    kv_client_free(c);
    free(d.in.data);
    free(d.bytes);
    free(d.v);
    free(d.line_no);
    return code;
}
