/* metrics_text.h - the server's figures in Prometheus's text exposition
 * format 0.0.4: what GET /metrics answers. No socket and no clock here: it
 * renders a StatsResponse that kv_stats_report() filled (so /metrics and
 * the Stats rpc never disagree) and the latency histograms behind Stats'
 * quantiles. The HTTP side is metrics_http.c. */
#ifndef KV_METRICS_TEXT_H
#define KV_METRICS_TEXT_H

#include <stddef.h>
#include "buf.h"
#include "latency.h"
#include "kvstore/v1/kv.pb-c.h"

/* The Content-Type of what kv_metrics_render writes. */
#define KV_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Appends to OUT every field of R as metric families (HELP, TYPE, samples;
 * a field this file does not name yet is rendered from its name), and a
 * histogram kvstore_request_duration_seconds per method from LAT[i], the
 * latency of R->methods[i] (methods from N_LAT on get none). Returns 0, or
 * -1 when memory is out (OUT then holds part of it; the caller still owns
 * and frees OUT). */
int kv_metrics_render(const Kvstore__V1__StatsResponse *r, const kv_latency *lat,
                      size_t n_lat, kv_buf *out);

/* The family that StatsResponse's field FIELD is rendered in, without its
 * "kvstore_" ("keys", "build_info"); NULL when FIELD has no entry of its own and is rendered from
 * its name alone (the tests keep every field of the proto named). Static. */
const char *kv_metrics_family_of(const char *field);

#endif
