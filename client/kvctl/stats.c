/* stats.c - the stats command's output: the server's StatsResponse as
 * "name: value" lines, as one batch line, or as JSON fields, all from one
 * table so the three list the same figures in the same order. Running the
 * call is exec.c's job; the surrounding object and errors are out.c's. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "out.h"
#include "stats.h"

/* The numeric figures, in the order they are printed (the proto's field
 * numbers follow the order they were added in, not a reading order). */
static const struct stats_field {
    const char *name;
    size_t offset;      /* of a uint64_t in Kvstore__V1__StatsResponse */
} fields[] = {
#define FIELD(f) { #f, offsetof(Kvstore__V1__StatsResponse, f) }
    FIELD(uptime_seconds),
    FIELD(connections_current),
    FIELD(connections_total),
    FIELD(connections_rejected),
    FIELD(connections_closed_output),
    FIELD(requests_total),
    FIELD(errors_total),
    FIELD(keys),
    FIELD(data_bytes),
    FIELD(revision),
    FIELD(engine_memory_bytes),
    FIELD(resident_memory_bytes),
    FIELD(max_memory_bytes),
    FIELD(engine_file_bytes),
    FIELD(engine_map_bytes),
    FIELD(engine_last_sync_unix_ms),
    FIELD(input_buffer_bytes),
    FIELD(output_buffer_bytes),
    FIELD(auth_refused),
    FIELD(keys_with_ttl),
    FIELD(expired_keys_total),
    FIELD(watchers),
    FIELD(watch_events_total),
    FIELD(watch_history_oldest),
    FIELD(pid),
    FIELD(ops_per_second),
    FIELD(get_hits),
    FIELD(get_misses),
    FIELD(net_input_bytes),
    FIELD(net_output_bytes),
    FIELD(slowlog_length),
    FIELD(slowlog_total),
    FIELD(engine_syncs_total),
#undef FIELD
};

/* The figures in seconds (doubles), printed after the numbers. */
static const struct stats_field seconds_fields[] = {
#define FIELD(f) { #f, offsetof(Kvstore__V1__StatsResponse, f) }
    FIELD(cpu_user_seconds),
    FIELD(cpu_system_seconds),
    FIELD(engine_sync_seconds_total),
#undef FIELD
};

/* The cluster's figures, shown only by a node of a cluster (node id not
 * 0), after the others; the role is text and goes second. */
static const struct stats_field cluster_fields[] = {
#define FIELD(f) { #f, offsetof(Kvstore__V1__StatsResponse, f) }
    FIELD(cluster_node_id),
    FIELD(cluster_leader_id),
    FIELD(cluster_term),
    FIELD(cluster_commit_index),
    FIELD(cluster_applied_index),
    FIELD(cluster_members),
    FIELD(cluster_dedup_entries),
    FIELD(cluster_elections_won),
#undef FIELD
};

static uint64_t field_value(const Kvstore__V1__StatsResponse *s,
                            const struct stats_field *f)
{
    return *(const uint64_t *)(const void *)((const char *)s + f->offset);
}

static double seconds_value(const Kvstore__V1__StatsResponse *s, const struct stats_field *f)
{
    return *(const double *)(const void *)((const char *)s + f->offset);
}

/* Writes a latency of US microseconds for people: "850us", "12.5ms",
 * "1.25s". */
static void put_latency(FILE *fp, uint64_t us)
{
    if (us < 1000)
        fprintf(fp, "%lluus", (unsigned long long)us);
    else if (us < 1000000)
        fprintf(fp, "%.3gms", (double)us / 1e3);
    else
        fprintf(fp, "%.3gs", (double)us / 1e6);
}

/* Writes TEXT (may be NULL) as is when it is one plain word, else quoted. */
static void put_text(FILE *fp, const char *text)
{
    static const char plain[] = "abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+:/~-";
    size_t len = text ? strlen(text) : 0;
    char quoted[512];

    if (len && strspn(text, plain) == len) {
        fputs(text, fp);
        return;
    }
    kvctl_out_quote((const uint8_t *)(text ? text : ""), len, quoted, sizeof quoted);
    fputs(quoted, fp);
}

void kvctl_stats_print(FILE *fp, const Kvstore__V1__StatsResponse *s,
                       int one_line)
{
    const char *eq = one_line ? "=" : ": ", *sep = one_line ? " " : "\n";

    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        fprintf(fp, "%s%s%llu%s", fields[i].name, eq,
                (unsigned long long)field_value(s, &fields[i]), sep);
    for (size_t i = 0; i < sizeof seconds_fields / sizeof *seconds_fields; i++)
        fprintf(fp, "%s%s%.6f%s", seconds_fields[i].name, eq,
                seconds_value(s, &seconds_fields[i]), sep);
    for (size_t i = 0; i < s->n_connections_closed; i++) {
        fputs("closed_", fp);
        put_text(fp, s->connections_closed[i]->reason);
        fprintf(fp, "%s%llu%s", eq, (unsigned long long)s->connections_closed[i]->count, sep);
    }
    for (size_t i = 0; s->cluster_node_id && i < sizeof cluster_fields / sizeof *cluster_fields;
         i++) {
        fprintf(fp, "%s%s%llu%s", cluster_fields[i].name, eq,
                (unsigned long long)field_value(s, &cluster_fields[i]), sep);
        if (i == 0) {
            fprintf(fp, "cluster_role%s", eq);
            put_text(fp, s->cluster_role);
            fputs(sep, fp);
        }
    }
    fprintf(fp, "engine%s", eq);
    put_text(fp, s->engine);
    fprintf(fp, "%sengine_sync%s", sep, eq);
    put_text(fp, s->engine_sync);
    fprintf(fp, "%sversion%s", sep, eq);
    put_text(fp, s->version);
    for (size_t i = 0; i < s->n_listen_addresses; i++) {
        fprintf(fp, "%slisten_address%s", sep, eq);
        put_text(fp, s->listen_addresses[i]);
    }
    for (size_t i = 0; i < s->n_methods; i++) {
        const Kvstore__V1__MethodStats *m = s->methods[i];
        fputs(one_line ? " " : "\ncalls ", fp);
        put_text(fp, m->method);
        if (one_line) {
            fprintf(fp, "=%llu/%llu/%llu/%llu/%llu", (unsigned long long)m->calls,
                    (unsigned long long)m->errors, (unsigned long long)m->latency_p50_us,
                    (unsigned long long)m->latency_p99_us,
                    (unsigned long long)m->latency_p999_us);
            continue;
        }
        fprintf(fp, ": %llu (errors %llu)", (unsigned long long)m->calls,
                (unsigned long long)m->errors);
        if (!m->calls)
            continue;
        fputs(" p50 ", fp);
        put_latency(fp, m->latency_p50_us);
        fputs(" p99 ", fp);
        put_latency(fp, m->latency_p99_us);
        fputs(" p999 ", fp);
        put_latency(fp, m->latency_p999_us);
    }
    fputc('\n', fp);
}

void kvctl_stats_json(json_object *obj, const Kvstore__V1__StatsResponse *s)
{
    json_object *methods = json_object_new_array(), *closed = json_object_new_object();
    json_object *listen = json_object_new_array();

    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        json_object_object_add(obj, fields[i].name,
                               json_object_new_uint64(field_value(s, &fields[i])));
    for (size_t i = 0; i < sizeof seconds_fields / sizeof *seconds_fields; i++) {
        /* As the simple format writes them, not as the nearest double's
         * 17 digits. */
        double v = seconds_value(s, &seconds_fields[i]);
        char text[32];
        snprintf(text, sizeof text, "%.6f", v);
        json_object_object_add(obj, seconds_fields[i].name, json_object_new_double_s(v, text));
    }
    for (size_t i = 0; i < s->n_connections_closed; i++)
        json_object_object_add(closed, s->connections_closed[i]->reason,
                               json_object_new_uint64(s->connections_closed[i]->count));
    json_object_object_add(obj, "connections_closed", closed);
    for (size_t i = 0; s->cluster_node_id && i < sizeof cluster_fields / sizeof *cluster_fields;
         i++) {
        json_object_object_add(obj, cluster_fields[i].name,
                               json_object_new_uint64(field_value(s, &cluster_fields[i])));
        if (i == 0)
            json_object_object_add(obj, "cluster_role",
                                   json_object_new_string(s->cluster_role ? s->cluster_role : ""));
    }
    json_object_object_add(obj, "engine", json_object_new_string(s->engine ? s->engine : ""));
    json_object_object_add(obj, "engine_sync",
                           json_object_new_string(s->engine_sync ? s->engine_sync : ""));
    json_object_object_add(obj, "version", json_object_new_string(s->version ? s->version : ""));
    for (size_t i = 0; i < s->n_listen_addresses; i++)
        json_object_array_add(listen, json_object_new_string(s->listen_addresses[i]));
    json_object_object_add(obj, "listen_addresses", listen);
    for (size_t i = 0; i < s->n_methods; i++) {
        const Kvstore__V1__MethodStats *m = s->methods[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "method", json_object_new_string(m->method ? m->method : ""));
        json_object_object_add(o, "calls", json_object_new_uint64(m->calls));
        json_object_object_add(o, "errors", json_object_new_uint64(m->errors));
        json_object_object_add(o, "latency_p50_us", json_object_new_uint64(m->latency_p50_us));
        json_object_object_add(o, "latency_p99_us", json_object_new_uint64(m->latency_p99_us));
        json_object_object_add(o, "latency_p999_us", json_object_new_uint64(m->latency_p999_us));
        json_object_array_add(methods, o);
    }
    json_object_object_add(obj, "methods", methods);
}
