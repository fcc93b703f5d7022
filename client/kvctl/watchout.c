/* watchout.c - what kvctl watch prints for each event (watchout.h).
 * Running the watch is watch.c's job; the line that ends it (an error, or
 * the server's cancel) is out.c's. */
#include <inttypes.h>

#include "dur.h"
#include "listing.h"
#include "text.h"
#include "watchout.h"

/* One event as a line of words. Keys and values are always in double
 * quotes with escapes (text.h), so that an event is one line whatever its
 * bytes, and the words read back as batch lines do. */
static void event_words(FILE *fp, const Kvstore__V1__WatchEvent *e)
{
    static const Kvstore__V1__KeyValue none = KVSTORE__V1__KEY_VALUE__INIT;
    const Kvstore__V1__KeyValue *kv = e->kv ? e->kv : &none;
    int put = e->type == KVSTORE__V1__WATCH_EVENT__TYPE__PUT;

    fputs(put ? "PUT " : "DELETE ", fp);
    kvctl_text_put_quoted(fp, kv->key.data, kv->key.len);
    if (put) {
        fputc(' ', fp);
        kvctl_text_put_quoted(fp, kv->value.data, kv->value.len);
    }
    fprintf(fp, " rev %" PRIu64, kv->mod_revision);
    if (put && kv->ttl_ms) {
        char dur[32];
        kvctl_dur_format(kv->ttl_ms, dur, sizeof dur);
        fprintf(fp, " ttl %s", dur);
    }
    if (e->expired)
        fputs(" expired", fp);
    if (e->prev_kv) {
        fputs(" prev ", fp);
        kvctl_text_put_quoted(fp, e->prev_kv->value.data, e->prev_kv->value.len);
    }
    fputc('\n', fp);
}

/* One event as a JSON object on a line. */
static void event_json(FILE *fp, const Kvstore__V1__WatchEvent *e)
{
    static const Kvstore__V1__KeyValue none = KVSTORE__V1__KEY_VALUE__INIT;
    json_object *obj = json_object_new_object();

    json_object_object_add(obj, "type", json_object_new_string(
        e->type == KVSTORE__V1__WATCH_EVENT__TYPE__PUT ? "PUT" : "DELETE"));
    json_object_object_add(obj, "kv", kvctl_listing_json_kv(e->kv ? e->kv : &none, 0));
    json_object_object_add(obj, "expired", json_object_new_boolean(e->expired));
    if (e->prev_kv)
        json_object_object_add(obj, "prev_kv", kvctl_listing_json_kv(e->prev_kv, 0));
    kvctl_out_json_line(fp, obj);
}

int kvctl_watchout_events(const kvctl_out *o, const Kvstore__V1__WatchResponse *resp)
{
    for (size_t i = 0; i < resp->n_events; i++) {
        if (o->format == KVCTL_FORMAT_JSON)
            event_json(o->fp, resp->events[i]);
        else
            event_words(o->fp, resp->events[i]);
    }
    /* Each frame at once: a watcher reads a pipe as the changes happen. */
    return fflush(o->fp) != 0 || ferror(o->fp) ? -1 : 0;
}
