/* proto.c - the protocol table's lookup by name, and the echo protocol:
 * kvstore's request frames (same sizes, ids and keys patched the same way),
 * each answered by the same bytes sent back, as a bare echo server (kvecho)
 * does. What kvstored does beyond an echo server is then the gap between
 * their figures. kvstore's entry is in wire.c, RESP's in resp.c, etcd's in etcd.c. */
#include <string.h>
#include "proto.h"

static ptrdiff_t echo_answer(const kb_tmpl *t, const uint8_t *req, const uint8_t *p, size_t n,
                             size_t *need, kb_reply *r)
{
    memset(r, 0, sizeof *r);
    if (n < t->len) {
        *need = t->len;
        return 0;
    }
    if (memcmp(p, req, t->len) != 0) {
        r->verdict = KB_VERDICT_WRONG;
        r->what = "the echo differs from the request";
    }
    return (ptrdiff_t)t->len;
}

const kb_proto kb_proto_echo = {
    .name = "echo",
    .has_stats = 0,
    .needs_keys = 0,
    .tmpl_init = kb_wire_tmpl_init,
    .answer = echo_answer,
};

const kb_proto *kb_proto_find(const char *name)
{
    static const kb_proto *const all[] = { &kb_proto_kvstore, &kb_proto_resp, &kb_proto_echo,
                                              &kb_proto_etcd };

    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(all[i]->name, name))
            return all[i];
    return NULL;
}
