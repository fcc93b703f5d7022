/* listing.c - prints the keys and values of range pages: as lines, as one
 * line of quoted words, as JSON (each a page at a time, as the pages come),
 * as a table (all pages at once). Reading the pages is exec.c's job; the
 * object around the JSON and the errors are out.c's. */
#include <inttypes.h>

#include "dur.h"
#include "listing.h"
#include "table.h"
#include "text.h"

/* Runs the statement that follows once for each KeyValue KV of R's pages,
 * in order (no break or continue in it: the loop is three deep). */
#define FOR_EACH_KV(r, kv)                                                   \
    for (size_t p_ = 0; p_ < (r)->npages; p_++)                              \
        for (size_t k_ = 0; k_ < (r)->pages[p_]->n_kvs; k_++)                \
            for (const Kvstore__V1__KeyValue *kv = (r)->pages[p_]->kvs[k_]; kv; kv = NULL)

/* The keys R holds, over all its pages. */
static uint64_t shown(const kvctl_result *r)
{
    uint64_t n = 0;

    for (size_t p = 0; p < r->npages; p++)
        n += r->pages[p]->n_kvs;
    return n;
}

void kvctl_listing_words(FILE *fp, const Kvstore__V1__RangeResponse *page)
{
    for (size_t k = 0; k < page->n_kvs; k++) {
        const Kvstore__V1__KeyValue *kv = page->kvs[k];
        fputc(' ', fp);
        kvctl_text_put_quoted(fp, kv->key.data, kv->key.len);
        fputc(' ', fp);
        kvctl_text_put_quoted(fp, kv->value.data, kv->value.len);
    }
}

void kvctl_listing_simple_page(const kvctl_out *o, const kvctl_cmd *cmd,
                               const Kvstore__V1__RangeResponse *page, uint64_t *shown)
{
    for (size_t k = 0; k < page->n_kvs; k++, (*shown)++) {
        const Kvstore__V1__KeyValue *kv = page->kvs[k];
        if (o->lines) {
            /* One line of words: the shell's quoting reads them back. */
            if (*shown)
                fputc(' ', o->fp);
            kvctl_text_put_quoted(o->fp, kv->key.data, kv->key.len);
            if (!cmd->keys_only) {
                fputc(' ', o->fp);
                kvctl_text_put_quoted(o->fp, kv->value.data, kv->value.len);
            }
        } else {
            kvctl_out_value(o, kv->key.data, kv->key.len);
            fputc('\n', o->fp);
            if (!cmd->keys_only) {
                kvctl_out_value(o, kv->value.data, kv->value.len);
                fputc('\n', o->fp);
            }
        }
    }
}

void kvctl_listing_simple(const kvctl_out *o, const kvctl_cmd *cmd, const kvctl_result *r)
{
    uint64_t shown = r->shown;

    if (cmd->count_only) {
        fprintf(o->fp, "%" PRIu64 "\n", r->count);
        return;
    }
    for (size_t p = 0; p < r->npages; p++)
        kvctl_listing_simple_page(o, cmd, r->pages[p], &shown);
    if (o->lines)
        fputc('\n', o->fp);
}

json_object *kvctl_listing_json_kv(const Kvstore__V1__KeyValue *kv, int keys_only)
{
    json_object *o = json_object_new_object();

    kvctl_out_json_bytes(o, "key", kv->key.data, kv->key.len);
    if (!keys_only)
        kvctl_out_json_bytes(o, "value", kv->value.data, kv->value.len);
    json_object_object_add(o, "create_revision", json_object_new_uint64(kv->create_revision));
    json_object_object_add(o, "mod_revision", json_object_new_uint64(kv->mod_revision));
    json_object_object_add(o, "version", json_object_new_uint64(kv->version));
    json_object_object_add(o, "ttl_ms", json_object_new_uint64(kv->ttl_ms));
    return o;
}

json_object *kvctl_listing_json_kvs(const Kvstore__V1__RangeResponse *page, int keys_only)
{
    json_object *kvs = json_object_new_array();

    for (size_t k = 0; k < page->n_kvs; k++)
        json_object_array_add(kvs, kvctl_listing_json_kv(page->kvs[k], keys_only));
    return kvs;
}

void kvctl_listing_json(json_object *obj, const kvctl_cmd *cmd, const kvctl_result *r)
{
    if (!cmd->count_only) {
        json_object *kvs = json_object_new_array();
        FOR_EACH_KV(r, kv)
            json_object_array_add(kvs, kvctl_listing_json_kv(kv, cmd->keys_only));
        json_object_object_add(obj, "kvs", kvs);
    }
    json_object_object_add(obj, "count", json_object_new_uint64(r->count));
    json_object_object_add(obj, "more", json_object_new_boolean(r->more));
    json_object_object_add(obj, "revision", json_object_new_uint64(r->revision));
}

void kvctl_listing_json_page(FILE *fp, const kvctl_cmd *cmd,
                             const Kvstore__V1__RangeResponse *page, uint64_t *shown)
{
    for (size_t k = 0; k < page->n_kvs; k++, (*shown)++) {
        json_object *o = kvctl_listing_json_kv(page->kvs[k], cmd->keys_only);
        if (*shown)
            fputc(',', fp);
        fputs(json_object_to_json_string_ext(o, KVCTL_JSON_FLAGS), fp);
        json_object_put(o);
    }
}

/* Whether a key of R expires: then the table has a TTL column. */
static int any_ttl(const kvctl_result *r)
{
    int any = 0;

    FOR_EACH_KV(r, kv)
        any |= kv->ttl_ms != 0;
    return any;
}

void kvctl_listing_table(FILE *fp, const kvctl_cmd *cmd, const kvctl_result *r)
{
    static const char *const cols[] = { "KEY", "VALUE", "CREATE", "MOD", "VERSION", "TTL" };
    static const char *const key_cols[] = { "KEY", "CREATE", "MOD", "VERSION", "TTL" };
    uint64_t n = shown(r);
    kvctl_table t;

    if (!cmd->count_only) {
        int ttl = any_ttl(r);
        kvctl_table_init(&t, (cmd->keys_only ? 4 : 5) + (size_t)ttl,
                         cmd->keys_only ? key_cols : cols);
        FOR_EACH_KV(r, kv) {
            kvctl_table_bytes(&t, kv->key.data, kv->key.len);
            if (!cmd->keys_only)
                kvctl_table_bytes(&t, kv->value.data, kv->value.len);
            kvctl_table_number(&t, kv->create_revision);
            kvctl_table_number(&t, kv->mod_revision);
            kvctl_table_number(&t, kv->version);
            if (ttl) {
                char dur[32];
                kvctl_dur_format(kv->ttl_ms, dur, sizeof dur);
                kvctl_table_text(&t, kv->ttl_ms ? dur : "-");
            }
        }
        kvctl_table_print(&t, fp);
    }
    if (cmd->count_only || n == r->count)
        fprintf(fp, "%" PRIu64 " key%s, revision %" PRIu64 "\n", r->count,
                r->count == 1 ? "" : "s", r->revision);
    else
        fprintf(fp, "%" PRIu64 " of %" PRIu64 " keys, revision %" PRIu64 "\n", n, r->count,
                r->revision);
}

void kvctl_listing_txn_rows(kvctl_table *t, const char *opname,
                            const Kvstore__V1__RangeResponse *page)
{
    for (size_t k = 0; k < page->n_kvs; k++) {
        const Kvstore__V1__KeyValue *kv = page->kvs[k];
        kvctl_table_text(t, opname);
        kvctl_table_bytes(t, kv->key.data, kv->key.len);
        kvctl_table_bytes(t, kv->value.data, kv->value.len);
        kvctl_table_number(t, kv->create_revision);
        kvctl_table_number(t, kv->mod_revision);
        kvctl_table_number(t, kv->version);
        kvctl_table_text(t, "");
    }
}
