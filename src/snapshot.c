/* snapshot.c - a cluster node's snapshots taken off the loop (freeze.h
 * freezes and walks the store); see snapshot.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "freeze.h"
#include "snapshot.h"

/* The keys end with this, so that the reader knows they are whole
 * without the child's exit status (libev's default loop reaps every child
 * on SIGCHLD, ours too). */
static const uint8_t TRAILER[8] = { 'K', 'V', 'S', 'N', 'A', 'P', 'O', 'K' };
#define CHILD_CHUNK ((size_t)1 << 20)

struct kv_snap {
    kv_buf head;                /* clock, members, outcomes: on the loop */
    kv_buf keys;                /* the keys: off the loop */
    size_t keys_size;           /* what they should take, about */
    kv_freeze frozen;           /* the view, or the child and its pipe */
    struct raft_buffer bufs[2];
};

static int encode_key(void *arg, kv_buf *b, const kv_entry *e)
{
    (void)arg;
    return kv_fsm_encode_key(b, e);
}

static int encode_end(void *arg, kv_buf *b)
{
    (void)arg;
    return kv_buf_append(b, TRAILER, sizeof TRAILER);
}

static const kv_freeze_out KEYS_OUT = { encode_key, encode_end, NULL, -1, 0 };

kv_snap *kv_snap_begin(kv_fsm *f)
{
    kv_snap *s = calloc(1, sizeof *s);

    if (!s)
        return NULL;
    s->frozen = (kv_freeze){ NULL, 0, -1 };
    s->keys_size = kv_fsm_keys_size(f);
    if (kv_fsm_encode_head(f, &s->head) < 0
        || kv_freeze_begin(&s->frozen, f->env->engine, &KEYS_OUT, "cluster: snapshot") < 0)
        goto failed;
    return s;
failed:
    kv_snap_end(s);
    return NULL;
}

/* Reads the child's bytes to the end. */
static int read_child(kv_snap *s)
{
    for (;;) {
        if (kv_buf_reserve(&s->keys, CHILD_CHUNK) < 0)
            return -1;
        ssize_t k = read(s->frozen.fd, kv_buf_tail(&s->keys), kv_buf_room(&s->keys));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0)
            return 0;
        kv_buf_commit(&s->keys, (size_t)k);
    }
}

int kv_snap_finish(kv_snap *s, struct raft_buffer **bufs, unsigned *n)
{
    if (kv_buf_reserve(&s->keys, s->keys_size) < 0)
        return -1;
    if ((s->frozen.view ? kv_freeze_walk(&s->frozen, &KEYS_OUT, &s->keys) : read_child(s)) < 0)
        return -1;
    size_t len = kv_buf_len(&s->keys);
    if (len < sizeof TRAILER || memcmp(kv_buf_head(&s->keys) + len - sizeof TRAILER, TRAILER,
                                       sizeof TRAILER) != 0)
        return -1;
    s->keys.end -= sizeof TRAILER;
    s->bufs[0] = (struct raft_buffer){ kv_buf_head(&s->head), kv_buf_len(&s->head) };
    s->bufs[1] = (struct raft_buffer){ kv_buf_head(&s->keys), kv_buf_len(&s->keys) };
    *bufs = s->bufs;
    *n = 2;
    return 0;
}

void kv_snap_end(kv_snap *s)
{
    if (!s)
        return;
    kv_freeze_end(&s->frozen, 0);
    kv_buf_free(&s->head);
    kv_buf_free(&s->keys);
    free(s);
}
