/* listing.h - printing the keys a range read (range, get --prefix, and a
 * range inside a txn) in each of kvctl's formats. */
#ifndef KVCTL_LISTING_H
#define KVCTL_LISTING_H

#include <stdio.h>
#include <json.h>
#include "out.h"

/* The simple format of R, the result of the range CMD: each key, then its
 * value, a line each (kvctl_out_value: raw, quoted on a terminal); only
 * the keys with --keys-only; only the count with --count. In lines mode
 * (o->lines) one line instead: the keys and values as double-quoted
 * strings, space-separated. Prints the pages R kept, after the R->shown
 * keys kvctl_listing_simple_page() printed, then ends the listing. */
void kvctl_listing_simple(const kvctl_out *o, const kvctl_cmd *cmd, const kvctl_result *r);

/* Prints the keys of PAGE as kvctl_listing_simple() does, *SHOWN keys of
 * the same listing having gone before (in lines mode a blank separates
 * them), and adds PAGE's to *SHOWN. */
void kvctl_listing_simple_page(const kvctl_out *o, const kvctl_cmd *cmd,
                               const Kvstore__V1__RangeResponse *page, uint64_t *shown);

/* The JSON object of KV: {"key", "value" (not with KEYS_ONLY),
 * "create_revision", "mod_revision", "version", "ttl_ms"}, bytes in
 * base64; the caller owns it. */
json_object *kvctl_listing_json_kv(const Kvstore__V1__KeyValue *kv, int keys_only);

/* Adds R to the JSON object OBJ: "kvs": [{"key", "value", "create_revision",
 * "mod_revision", "version", "ttl_ms"}, ...] (no "value" with --keys-only, no "kvs"
 * with --count), then "count", "more" and "revision". */
void kvctl_listing_json(json_object *obj, const kvctl_cmd *cmd, const kvctl_result *r);

/* Prints the elements of "kvs" for PAGE, as kvctl_listing_json() makes
 * them, to FP: each after a comma but the first of the listing, *SHOWN
 * elements having gone before; adds PAGE's to *SHOWN. */
void kvctl_listing_json_page(FILE *fp, const kvctl_cmd *cmd,
                             const Kvstore__V1__RangeResponse *page, uint64_t *shown);

/* Prints R as a table, a row per key of the pages it kept (all of them: a
 * column is as wide as its widest cell) with its revisions (and a TTL
 * column, "-" for a key that does not expire, when one does), and a last
 * line "N keys, revision R" ("N of COUNT keys" when --limit stopped it). */
void kvctl_listing_table(FILE *fp, const kvctl_cmd *cmd, const kvctl_result *r);

/* Writes the keys and values of PAGE to FP as double-quoted strings, each
 * after a space: the words form that batch mode and txn use. */
void kvctl_listing_words(FILE *fp, const Kvstore__V1__RangeResponse *page);

/* A JSON array of the keys and values of PAGE, as in kvctl_listing_json;
 * the caller owns it. */
json_object *kvctl_listing_json_kvs(const Kvstore__V1__RangeResponse *page, int keys_only);

/* Adds the rows of PAGE to a table whose columns are OP KEY VALUE CREATE
 * MOD VERSION REVISION (txnout.c's), OP being OPNAME. */
struct kvctl_table;
void kvctl_listing_txn_rows(struct kvctl_table *t, const char *opname,
                            const Kvstore__V1__RangeResponse *page);

#endif
