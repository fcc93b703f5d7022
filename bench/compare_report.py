"""compare_report - what bench/compare-redis prints and writes: the tables,
the targets with their verdicts, the two gnuplot charts and
docs/BENCHMARKS.md. Measures nothing and starts no server: it turns the
medians compare-redis collected into text and SVG.

A row is one workload: {"test", "label", "size", "n", "rounds"} and, per
server kind ("floor" kvecho, "redis", "kvstored", "lmdb", "baseline", all
under kvbench; "redis_rb", Redis under redis-benchmark; with --tls
"redis", "redis_tls", "kvstored", "kvstored_tls"), the medians of its
figures: rps, p50/p99/p999/max (ms), server_cpu_per_m and client_cpu_per_m
(CPU seconds per million requests = microseconds per request),
server_busy and client_busy (CPU seconds per wall second), others_busy and
machine_idle (cores busy with other processes, and idle, during the run),
and hist (a kvbench --hist file of the median-p99 round).

The memory figures (mem) also carry the range row under "range": {"keys",
"value_len", "page", "rounds"} and, for "redis" and "kvstored", the medians
of keys_per_s, pages_per_s, keys and pages per read, seconds, p50/p99/max
(ms per page), server_cpu_per_m and client_cpu_per_m (CPU seconds per
million keys), server_busy and client_busy.
"""
import datetime
import os
import re
import shlex
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTES_MARKER = "<!-- Hand-written notes below this line are kept by bench/compare-redis. -->"
# A process at least this busy (CPU seconds per wall second) is taken to be
# what limits its run.
SATURATED = 0.90
# The workloads of the latency chart, one panel each.
LATENCY_PANELS = [("SET", "-c 50 -P 1", 3), ("GET", "-c 50 -P 1", 3),
                  ("SET", "-c 50 -P 16", 3), ("GET", "-c 50 -P 16", 3)]
COLOURS = {"floor": "#7f8c8d", "redis": "#c0392b", "kvstored": "#2471a3", "lmdb": "#1e8449"}


class ReportError(Exception):
    """A chart could not be drawn."""


def ratio(a, b):
    return a / b if b else float("nan")


def r2(x):
    """A ratio as the tables print it: verdicts are judged on this, so a
    printed 0.75 never reads "not met" because of a third decimal."""
    return round(x, 2)


def workload_name(r):
    return "%s %s -d %d" % (r["test"], r["label"], r["size"])


def spread(values, fmt="%.2f"):
    """"0.81" or "0.81-0.88"."""
    lo, hi = fmt % min(values), fmt % max(values)
    return lo if lo == hi else "%s-%s" % (lo, hi)


def limit(run):
    """Which process limits a run: the one near a full core; or, when
    neither is, the machine when other processes left it no idle core."""
    srv, cli = run["server_busy"] >= SATURATED, run["client_busy"] >= SATURATED
    if srv or cli:
        return "both" if srv and cli else "server" if srv else "client"
    return "machine full" if run["machine_idle"] < 1 - SATURATED else "neither"


# ------------------------------------------------------------------ tables

def headline_table(rows):
    lines = ["| workload | floor rps | Redis rps | kvstored rps | kv/Redis | kv/floor | "
             "Redis CPU µs/req | kvstored CPU µs/req | kv/Redis CPU |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        f, rd, k = r["floor"], r["redis"], r["kvstored"]
        lines.append("| %s | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
            workload_name(r), f["rps"], rd["rps"], k["rps"], ratio(k["rps"], rd["rps"]),
            ratio(k["rps"], f["rps"]), rd["server_cpu_per_m"], k["server_cpu_per_m"],
            ratio(k["server_cpu_per_m"], rd["server_cpu_per_m"])))
    return lines


def latency_table(rows):
    def cell(run):
        return "%.3f / %.3f / %.3f / %.3f" % (run["p50"], run["p99"], run["p999"], run["max"])
    lines = ["| workload | floor p50 / p99 / p99.9 / max | Redis p50 / p99 / p99.9 / max | "
             "kvstored p50 / p99 / p99.9 / max | kv/Redis p99 |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append("| %s | %s | %s | %s | %.2f |" % (
            workload_name(r), cell(r["floor"]), cell(r["redis"]), cell(r["kvstored"]),
            ratio(r["kvstored"]["p99"], r["redis"]["p99"])))
    return lines


def cpu_table(rows):
    def cell(run):
        return "%.0f%% / %.0f%% (%s)" % (100 * run["server_busy"], 100 * run["client_busy"],
                                         limit(run))
    lines = ["| workload | kvecho / kvbench | Redis / kvbench | kvstored / kvbench | "
             "kvbench CPU µs/req: floor, Redis, kvstored | other processes, cores |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append("| %s | %s | %s | %s | %.2f, %.2f, %.2f | %.2f |" % (
            workload_name(r), cell(r["floor"]), cell(r["redis"]), cell(r["kvstored"]),
            r["floor"]["client_cpu_per_m"], r["redis"]["client_cpu_per_m"],
            r["kvstored"]["client_cpu_per_m"],
            max(r[k]["others_busy"] for k in ("floor", "redis", "kvstored"))))
    return lines


def second_opinion_table(rows):
    lines = ["| workload | Redis rps (redis-benchmark) | kvstored rps (kvbench) | ratio | "
             "ratio, same client | redis-benchmark busy | Redis busy | "
             "redis-benchmark CPU µs/req | kvbench CPU µs/req, same Redis |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rb, rd, k = r["redis_rb"], r["redis"], r["kvstored"]
        lines.append("| %s | %.0f | %.0f | %.2f | %.2f | %.0f%% | %.0f%% | %.2f | %.2f |" % (
            workload_name(r), rb["rps"], k["rps"], ratio(k["rps"], rb["rps"]),
            ratio(k["rps"], rd["rps"]), 100 * rb["client_busy"], 100 * rb["server_busy"],
            rb["client_cpu_per_m"], rd["client_cpu_per_m"]))
    return lines


def second_opinion_summary(rows):
    """Why redis-benchmark's ratios are larger, in the run's own figures."""
    p1 = [r for r in rows if r["label"] == "-c 50 -P 1"]
    if not p1:
        return []
    return [
        "At `-c 50 -P 1` these ratios are %s where the same client gives %s: "
        "redis-benchmark is %s busy (a whole core is 100%%) and spends %s µs of CPU per request,"
        " while Redis under it is only %s busy. That column measures redis-benchmark, not"
        " Redis. kvbench spends %s µs per request speaking RESP to the same Redis. An earlier"
        " edition of this page led with this comparison (kvstored at 1.6-1.9x Redis at"
        " `-c 50 -P 1`); most of that lead was the client's cost."
        % (spread([ratio(r["kvstored"]["rps"], r["redis_rb"]["rps"]) for r in p1]),
           spread([ratio(r["kvstored"]["rps"], r["redis"]["rps"]) for r in p1]),
           spread([100 * r["redis_rb"]["client_busy"] for r in p1], "%.0f%%"),
           spread([r["redis_rb"]["client_cpu_per_m"] for r in p1]),
           spread([100 * r["redis_rb"]["server_busy"] for r in p1], "%.0f%%"),
           spread([r["redis"]["client_cpu_per_m"] for r in p1]))]


def tls_table(rows):
    """compare-redis --tls: each server over TLS beside its plaintext self
    (rows with "redis", "redis_tls", "kvstored", "kvstored_tls")."""
    lines = ["| workload | Redis rps | Redis TLS rps | Redis TLS/plain | kvstored rps | "
             "kvstored TLS rps | kvstored TLS/plain | kv/Redis plain | kv/Redis TLS |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rd, rt, k, kt = r["redis"], r["redis_tls"], r["kvstored"], r["kvstored_tls"]
        lines.append("| %s | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f | %.2f | %.2f |" % (
            workload_name(r), rd["rps"], rt["rps"], ratio(rt["rps"], rd["rps"]), k["rps"],
            kt["rps"], ratio(kt["rps"], k["rps"]), ratio(k["rps"], rd["rps"]),
            ratio(kt["rps"], rt["rps"])))
    return lines


def tls_cpu_table(rows):
    """compare-redis --tls: what TLS adds to each server's CPU per request,
    the client's, the p99, and the machine's other load."""
    def cpu(plain, tls):
        return "%.2f / %.2f (+%.2f)" % (plain["server_cpu_per_m"], tls["server_cpu_per_m"],
                                        tls["server_cpu_per_m"] - plain["server_cpu_per_m"])
    lines = ["| workload | Redis CPU µs/req plain / TLS | kvstored CPU µs/req plain / TLS | "
             "kvbench CPU µs/req, TLS: Redis, kvstored | p99 ms, TLS: Redis, kvstored | "
             "busy, TLS: Redis / kvstored | other processes, cores |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    kinds = ("redis", "redis_tls", "kvstored", "kvstored_tls")
    for r in rows:
        rd, rt, k, kt = (r[x] for x in kinds)
        lines.append("| %s | %s | %s | %.2f, %.2f | %.3f, %.3f | %.0f%% / %.0f%% | %.2f |" % (
            workload_name(r), cpu(rd, rt), cpu(k, kt), rt["client_cpu_per_m"],
            kt["client_cpu_per_m"], rt["p99"], kt["p99"], 100 * rt["server_busy"],
            100 * kt["server_busy"], max(r[x]["others_busy"] for x in kinds)))
    return lines


def lmdb_table(rows):
    """The lmdb engine at --sync none beside the memory engine (and Redis)."""
    lines = ["| workload | memory rps | lmdb rps | lmdb/memory | lmdb/Redis | memory p99 ms | "
             "lmdb p99 ms | memory CPU µs/req | lmdb CPU µs/req |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        k, lm = r["kvstored"], r["lmdb"]
        lines.append("| %s | %.0f | %.0f | %.2f | %.2f | %.3f | %.3f | %.2f | %.2f |" % (
            workload_name(r), k["rps"], lm["rps"], ratio(lm["rps"], k["rps"]),
            ratio(lm["rps"], r["redis"]["rps"]), k["p99"], lm["p99"], k["server_cpu_per_m"],
            lm["server_cpu_per_m"]))
    return lines


def durable_table(rows):
    lines = ["| workload | Redis AOF rps | kvstored lmdb rps | ratio | Redis AOF p99 ms | "
             "kvstored lmdb p99 ms | Redis AOF CPU µs/req | kvstored lmdb CPU µs/req |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rd, k = r["redis"], r["kvstored"]
        lines.append("| %s | %.0f | %.0f | %.2f | %.3f | %.3f | %.2f | %.2f |" % (
            workload_name(r), rd["rps"], k["rps"], ratio(k["rps"], rd["rps"]), rd["p99"],
            k["p99"], rd["server_cpu_per_m"], k["server_cpu_per_m"]))
    return lines


def memory_table(mem):
    (re0, re1), (ke0, ke1), n = mem["redis"], mem["kvstored"], mem["keys"]
    mib = 1024.0 * 1024.0
    return ["| resident memory (VmRSS) | Redis | kvstored | ratio |",
            "|---|---:|---:|---:|",
            "| empty, just started | %.1f MiB | %.1f MiB | %.2f |" % (re0 / mib, ke0 / mib,
                                                                   ratio(ke0, re0)),
            "| after %d keys (16-byte keys, %d-byte values) | %.1f MiB | %.1f MiB | %.2f |"
            % (n, mem["value_len"], re1 / mib, ke1 / mib, ratio(ke1, re1)),
            "| growth per key | %.0f B | %.0f B | %.2f |"
            % ((re1 - re0) / n, (ke1 - ke0) / n, ratio(ke1 - ke0, re1 - re0))]


def range_table(mem):
    """Reading every key with its value in pages: kvstored's Range against
    Redis's SCAN + MGET, kvbench for both. Empty when not measured."""
    rg = mem.get("range")
    if not rg:
        return []
    rd, k = rg["redis"], rg["kvstored"]

    def row(name, fmt, f, scale=1):
        return "| %s | %s | %s | %.2f |" % (name, fmt % (scale * rd[f]), fmt % (scale * k[f]),
                                            ratio(k[f], rd[f]))
    return ["| all %d keys (%d-byte values) in pages of %d, one client | Redis (SCAN COUNT %d"
            " + MGET) | kvstored (Range) | kv/Redis |" % (rg["keys"], rg["value_len"], rg["page"],
                                                          rg["page"]),
            "|---|---:|---:|---:|",
            row("keys per second", "%.0f", "keys_per_s"),
            row("pages per second", "%.0f", "pages_per_s"),
            row("pages read", "%.0f", "pages"),
            row("seconds for all keys", "%.3f", "seconds"),
            row("ms per page, p50", "%.3f", "p50"),
            row("ms per page, p99", "%.3f", "p99"),
            row("ms per page, max", "%.3f", "max"),
            # CPU seconds per million keys = µs per key.
            row("server CPU, ns per key", "%.0f", "server_cpu_per_m", 1000),
            row("kvbench CPU, ns per key", "%.0f", "client_cpu_per_m", 1000),
            "| server / kvbench busy | %.0f%% / %.0f%% | %.0f%% / %.0f%% | |"
            % (100 * rd["server_busy"], 100 * rd["client_busy"], 100 * k["server_busy"],
               100 * k["client_busy"])]


def baseline_table(rows, baseline):
    """This build's kvstored against --baseline's, same client, same rounds."""
    lines = ["This build against the baseline (%s), memory engine, medians:" % baseline, "",
             "| workload | baseline rps | this build rps | this/baseline | baseline CPU µs/req |"
             " this build CPU µs/req |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        b, k = r["baseline"], r["kvstored"]
        lines.append("| %s | %.0f | %.0f | %.3f | %.2f | %.2f |" % (
            workload_name(r), b["rps"], k["rps"], ratio(k["rps"], b["rps"]),
            b["server_cpu_per_m"], k["server_cpu_per_m"]))
    return lines


# ----------------------------------------------------------------- targets

def _verdict(name, measured, bad):
    """One target's line: met, with what was measured; or not met, with
    each miss."""
    if bad:
        return "- %s: **not met** (%s)" % (name, "; ".join(bad))
    return "- %s: **met** (%s)" % (name, measured)


def _ratio_target(rows, name, label, num, den, want, at_least=True):
    picked = [r for r in rows if r["label"] == label]
    if not picked:
        return "- %s: not measured" % name
    vals = [(r, r2(ratio(num(r), den(r)))) for r in picked]
    bad = ["%s %.2f" % (workload_name(r), v) for r, v in vals
           if (v < want if at_least else v > want)]
    return _verdict(name, spread([v for _, v in vals]), bad)


def targets(rows, mem):
    """The targets this page tracks, each met or with its gap."""
    growth = (mem["kvstored"][1] - mem["kvstored"][0]) / mem["keys"]
    return [
        _ratio_target(rows, "`-c 50 -P 16`: kvstored at least 0.75 of the echo floor's rps",
                      "-c 50 -P 16", lambda r: r["kvstored"]["rps"], lambda r: r["floor"]["rps"],
                      0.75),
        _ratio_target(rows, "`-c 50 -P 16`: kvstored's server CPU per request at most half of"
                      " Redis's", "-c 50 -P 16", lambda r: r["kvstored"]["server_cpu_per_m"],
                      lambda r: r["redis"]["server_cpu_per_m"], 0.5, at_least=False),
        _ratio_target(rows, "`-c 50 -P 1`: kvstored at least 0.95 of the echo floor's rps, SET"
                      " and GET", "-c 50 -P 1", lambda r: r["kvstored"]["rps"],
                      lambda r: r["floor"]["rps"], 0.95),
        # At most 115 B/key with the ordered index and revisions (issue 13;
        # 98 before them).
        _verdict("memory for %d keys at most 115 B/key" % mem["keys"], "%.0f B/key" % growth,
                 ["%.0f B/key, %.0f B over" % (growth, growth - 115)]
                 if round(growth) > 115 else []),
    ]


def redis_targets(rows, mem, durable_rows):
    """Targets against Redis, judged with the same client."""
    def rps(r):
        return r2(ratio(r["kvstored"]["rps"], r["redis"]["rps"]))
    every = rows
    p16 = [r for r in rows if r["label"] == "-c 50 -P 16"]
    k, rd = mem["kvstored"][1], mem["redis"][1]
    return [
        _verdict("rps at least 1.0x Redis in every workload", spread([rps(r) for r in every]),
                 ["%s %.2fx" % (workload_name(r), rps(r)) for r in every if rps(r) < 1.0]),
        _verdict("rps at least 1.3x Redis at `-c 50 -P 16`", spread([rps(r) for r in p16]),
                 ["%s %.2fx" % (workload_name(r), rps(r)) for r in p16 if rps(r) < 1.3]),
        _ratio_target(rows, "p99 latency at most Redis's at `-c 50 -P 1`", "-c 50 -P 1",
                      lambda r: r["kvstored"]["p99"], lambda r: r["redis"]["p99"], 1.0,
                      at_least=False),
        _verdict("server CPU per request at most Redis's",
                 spread([r2(ratio(r["kvstored"]["server_cpu_per_m"],
                                  r["redis"]["server_cpu_per_m"])) for r in every]),
                 ["%s %.2fx" % (workload_name(r), ratio(r["kvstored"]["server_cpu_per_m"],
                                                        r["redis"]["server_cpu_per_m"]))
                  for r in every if r2(ratio(r["kvstored"]["server_cpu_per_m"],
                                             r["redis"]["server_cpu_per_m"])) > 1.0]),
        _verdict("resident memory for %d keys at most Redis's" % mem["keys"],
                 "%.2fx" % ratio(k, rd), ["%.2fx" % ratio(k, rd)] if r2(ratio(k, rd)) > 1.0
                 else []),
        _verdict("durable SET (lmdb --sync always) rps at least 1.0x Redis (appendfsync always)",
                 spread([rps(r) for r in durable_rows]),
                 ["%s %.2fx" % (workload_name(r), rps(r)) for r in durable_rows
                  if rps(r) < 1.0]),
    ] + range_targets(mem)


def range_targets(mem):
    """Reading all keys in pages: at least Redis's keys per second."""
    rg = mem.get("range")
    if not rg:
        return ["- range read of every key in pages: not measured"]
    x = r2(ratio(rg["kvstored"]["keys_per_s"], rg["redis"]["keys_per_s"]))
    return [_verdict("range read of all %d keys in pages of %d at least Redis's keys/s (SCAN"
                     " COUNT %d + MGET)" % (rg["keys"], rg["page"], rg["page"]),
                     "%.2fx" % x, ["%.2fx" % x] if x < 1.0 else [])]


def all_tables(rows, durable_rows, mem):
    """Everything compare-redis prints, as lines."""
    return (["Same client (kvbench) against each server, medians:", ""] + headline_table(rows)
            + ["", "Latency, ms:", ""] + latency_table(rows)
            + ["", "Busy (CPU s per wall s), server / its kvbench client, and what limits the"
               " run:", ""] + cpu_table(rows)
            + [""] + memory_table(mem)
            + (["", "Range: every key with its value, in pages, medians:", ""]
               + range_table(mem) if mem.get("range") else [])
            + ["", "lmdb engine (--sync none):", ""] + lmdb_table(rows)
            + ["", "Durable writes (kvbench for both):", ""] + durable_table(durable_rows)
            + ["", "Second opinion: redis-benchmark against Redis, kvbench against kvstored:",
               ""] + second_opinion_table(rows) + [""] + second_opinion_summary(rows)
            + ["", "Targets:"] + targets(rows, mem)
            + ["", "Against Redis, same client:"] + redis_targets(rows, mem, durable_rows))


# ------------------------------------------------------------------ charts

def gnuplot(script):
    r = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise ReportError("gnuplot exited %d:\n%s" % (r.returncode, r.stderr))


def chart(rows, path, title):
    """Requests/s of the four servers per workload, and kvstored's ratios."""
    data = tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False)
    with data:
        for r in rows:
            k = r["kvstored"]
            data.write('"%s %s -d %d" %f %f %f %f %f %f %f %f\n' % (
                r["test"], r["label"].replace("-c ", "c").replace("-P ", "P"), r["size"],
                r["floor"]["rps"] / 1000, r["redis"]["rps"] / 1000, k["rps"] / 1000,
                r["lmdb"]["rps"] / 1000, ratio(k["rps"], r["redis"]["rps"]),
                ratio(k["rps"], r["floor"]["rps"]), ratio(k["p99"], r["redis"]["p99"]),
                ratio(k["server_cpu_per_m"], r["redis"]["server_cpu_per_m"])))
    script = """
set terminal svg size 1200,900 dynamic enhanced font "sans,12" background rgb "white"
set output "{out}"
set multiplot layout 2,1 title "{title}"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key above
set rmargin 10
set xtics rotate by -30 nomirror
set ylabel "thousand requests/s, log scale (higher is better)"
set logscale y
set yrange [1:*]
plot "{dat}" using 2:xtic(1) title "echo floor (kvecho)" lc rgb "{floor}", \\
     "" using 3 title "Redis" lc rgb "{redis}", \\
     "" using 4 title "kvstored (memory)" lc rgb "{kvstored}", \\
     "" using 5 title "kvstored (lmdb, --sync none)" lc rgb "{lmdb}"
set ylabel "kvstored (memory) / other"
unset logscale y
set yrange [0:*]
set title "ratios: rps (higher is better), p99 and CPU per request (lower is better)"
plot "{dat}" using 6:xtic(1) title "rps / Redis" lc rgb "{redis}", \\
     "" using 7 title "rps / floor" lc rgb "{floor}", \\
     "" using 8 title "p99 / Redis" lc rgb "#d68910", \\
     "" using 9 title "server CPU per request / Redis" lc rgb "#7d3c98", \\
     1 with lines lw 2 lc rgb "black" title "parity"
unset multiplot
""".format(out=path, dat=data.name, title=title, **COLOURS)
    try:
        gnuplot(script)
    finally:
        os.unlink(data.name)


def read_hist(path):
    """(1/(1-percentile), value ms) points of a kvbench --hist table; the
    final 100% line has no finite x and is left out."""
    points = []
    with open(path) as f:
        for line in f:
            cols = line.split()
            if len(cols) == 4 and not line.startswith("#"):
                try:
                    points.append((float(cols[3]), float(cols[0])))
                except ValueError:
                    pass                            # the column titles
    return points


def latency_chart(rows, path, title):
    """HdrHistogram-style percentile curves of the floor, Redis and kvstored,
    all measured by kvbench, one panel per workload of LATENCY_PANELS."""
    by_key = {(r["test"], r["label"], r["size"]): r for r in rows}
    panels = [by_key[k] for k in LATENCY_PANELS if k in by_key]
    if not panels:
        return False
    tmp = tempfile.mkdtemp(prefix="latency-chart.")
    plots = []
    try:
        for r in panels:
            lines = []
            for kind, name in (("floor", "echo floor (kvecho)"), ("redis", "Redis"),
                               ("kvstored", "kvstored")):
                dat = os.path.join(tmp, "%d-%s.dat" % (len(plots), kind))
                with open(dat, "w") as f:
                    f.writelines("%f %f\n" % p for p in read_hist(r[kind]["hist"]))
                lines.append('"%s" using 1:2 with lines lw 2 lc rgb "%s" title "%s"'
                             % (dat, COLOURS[kind], name))
            plots.append('set title "%s"\nplot %s' % (workload_name(r), ", \\\n  ".join(lines)))
        script = """
set terminal svg size 1200,900 dynamic enhanced font "sans,12" background rgb "white"
set output "{out}"
set multiplot layout 2,2 title "{title}"
set logscale x
set logscale y
set grid xtics ytics
set key top left
set xrange [1:*]
set xtics ("0%%" 1, "90%%" 10, "99%%" 100, "99.9%%" 1000, "99.99%%" 10000, "99.999%%" 100000)
set xlabel "percentile"
set ylabel "latency, ms (log scale)"
{plots}
unset multiplot
""".format(out=path, title=title, plots="\n".join(plots))
        gnuplot(script)
    finally:
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)
    return True


# ------------------------------------------------------------------- docs

def command_line(argv):
    """compare-redis's command line as run, with build directories (machine
    paths) replaced by what they stand for."""
    out, skip = [], None
    for a in argv:
        if skip:
            out.append(skip)
            skip = None
        elif a in ("--build", "--baseline"):
            out.append(a)
            skip = "BUILD"
        elif a.startswith(("--build=", "--baseline=")):
            out.append(a.split("=", 1)[0] + "=BUILD")
        else:
            out.append(a)
    return "bench/compare-redis " + " ".join(shlex.quote(a) if a != "BUILD" else a
                                            for a in out)


def range_section(mem):
    """The "Range" subsection of the page: how it is measured, the table."""
    rg = mem.get("range")
    if not rg:
        return []
    return [
        "",
        "### Range",
        "",
        "The two instances of the memory table, each holding the same %d keys with %d-byte"
        " values, read all of them, keys and values, in pages of %d, one page asked once the"
        " one before it is in, by one client, in %d alternating rounds (medians): kvstored"
        " with `Range{start, end, limit = %d}` paged on `start = last key + \"\\0\"` until"
        " `more = false` (in key order), Redis with `SCAN cursor COUNT %d` to the end and an"
        " `MGET` of each page's keys, sent together with the next `SCAN` (in hash order; a"
        " key SCAN returns twice counts once). kvbench checks that every key was seen with"
        " the value stored: `kvbench -t range -r %d -d %d -c 1 --page %d --no-populate"
        " [--protocol resp]`. A page's time runs from the end of the page before it."
        % (rg["keys"], rg["value_len"], rg["page"], rg["rounds"], rg["page"], rg["page"],
           rg["keys"], rg["value_len"], rg["page"]),
        "",
    ] + range_table(mem)


def write_docs(args, argv, setup, rows, durable_rows, mem, machine, seconds):
    """Writes docs/BENCHMARKS.md and its two charts; returns their paths.
    The hand-written notes under NOTES_MARKER of the old page are kept."""
    docs = os.path.join(REPO, "docs")
    md_path = os.path.join(docs, "BENCHMARKS.md")
    svg = os.path.join(docs, "benchmarks.svg")
    lat_svg = os.path.join(docs, "benchmarks-latency.svg")
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    kind = "quick run (--quick: 1/10 of the requests)" if args.quick else "full run"
    commit = next((m.split("commit ", 1)[1] for m in machine if "commit " in m), "?")
    chart(rows, svg, "kvbench against each server, medians of %d rounds, %s" % (args.rounds,
                                                                              when))
    has_lat = latency_chart(rows, lat_svg, "latency by percentile, kvbench against each server"
                            " (the round of median p99), %s" % when)
    notes = []
    if os.path.exists(md_path):
        with open(md_path) as f:
            old = f.read()
        if NOTES_MARKER in old:
            notes = [old.split(NOTES_MARKER, 1)[1].strip("\n")]
    scale = setup["scale"]
    n_list = ", ".join("%s: -n %d" % (label, max(1000, n // scale))
                       for label, _, _, n in setup["configs"])
    text = [
        "# Benchmarks: kvstored against Redis and an echo floor",
        "",
        "Written by `bench/compare-redis` (%s, %d rounds, %s, took %.0f s) at commit %s."
        " Rerun it to refresh this page; everything above the notes marker is regenerated."
        % (kind, args.rounds, when, seconds, commit),
        "",
        "## Machine",
        "",
    ] + machine + [
        "",
        "## Command",
        "",
        "```",
        command_line(argv),
        "```",
        "",
        "One client, `kvbench`, drives every server: the same event loop, the same"
        " connections, the same key sequence and the same pipeline discipline, with only the"
        " encoding differing: kvstore's envelopes for kvstored, RESP for Redis"
        " (`--protocol resp`), and for the floor kvstored's own request bytes, which a bare"
        " echo server sends back unchanged (`--protocol echo` against `kvecho`,"
        " `bench/echo.c`: one thread, epoll, no protocol). No server can answer faster than"
        " the floor, so *kv/floor* says how much of the machine's loopback capacity kvstored"
        " reaches. Each workload runs"
        " `kvbench -c CLIENTS -P PIPELINE -d SIZE -r %d -t set|get -n N` (%s; a run lasts"
        " about 1-3 s) against `kvecho`, `redis-server --save '' --appendonly no`,"
        " `kvstored` (memory engine) and `kvstored --engine lmdb --sync none`, one after the"
        " other, all on 127.0.0.1, then `redis-benchmark` with the same flags against Redis"
        " as a second opinion; the figures are the medians over the rounds. Before each block"
        " of a value size every server is loaded with all %d keys at that size"
        " (`redis-cli --pipe`; `kvbench --sequential -t set`), so every GET finds its key."
        % (setup["keyspace"], n_list, setup["keyspace"]),
        "",
        "## Results, one client for every server",
        "",
        "![requests/s of each server and kvstored's ratios](benchmarks.svg)",
        "",
    ] + headline_table(rows) + [
        "",
        "### Latency",
        "",
    ] + (["![latency by percentile](benchmarks-latency.svg)", ""] if has_lat else []) + [
        "Milliseconds from a batch's send to the read that brought each answer, as kvbench"
        " measures them for every server alike. The chart shows the whole distribution of the"
        " round whose p99 is the median (HdrHistogram's percentile axis: each step right is"
        " ten times rarer).",
        "",
    ] + latency_table(rows) + [
        "",
        "### CPU: which process is the limit",
        "",
        "Each cell is the server's busy fraction / its kvbench client's (CPU seconds per wall"
        " second; 100%% = one of the machine's cores), and which of the two was at or above"
        " %.0f%%, so limited the run: *server* means the figures are the server's; *client*"
        " means they are kvbench's; *machine full* means neither was, but other processes"
        " left no idle core, so the figures measure the machine's noise too; *neither*, at"
        " `-c 1`, means every request waits for the round trip. Then kvbench's own CPU per"
        " request for each protocol, and the most cores other processes kept busy during"
        " the three runs (/proc/stat)." % (100 * SATURATED),
        "",
    ] + cpu_table(rows) + [
        "",
        "### Memory",
        "",
    ] + memory_table(mem) + range_section(mem) + [
        "",
        "### The lmdb engine beside the memory engine",
        "",
        "The same workloads against `kvstored --engine lmdb --sync none` (a fresh directory,"
        " loaded like the others), in the same rounds: every write is committed to LMDB before"
        " its answer, and never synced to disk by kvstored.",
        "",
    ] + lmdb_table(rows) + [
        "",
        "### Durable writes",
        "",
        "SET with every answer after a disk sync: `redis-server --appendonly yes --appendfsync"
        " always` (its append-only file, synced before the answers of each event-loop turn)"
        " against `kvstored --engine lmdb --sync always` (the writes of each loop turn share"
        " one LMDB commit, synced before their answers: group commit); kvbench for both, %s;"
        " the directories are on the same file system." % ", ".join(
            "%s: -n %d" % (label, max(1000, n // scale))
            for label, _, _, n in setup["durable_configs"]),
        "",
    ] + durable_table(durable_rows) + [
        "",
        "## Targets",
        "",
    ] + targets(rows, mem) + [
        "",
        "Against Redis, with the same client:",
        "",
    ] + redis_targets(rows, mem, durable_rows) + [
        "",
        "## Second opinion: redis-benchmark",
        "",
        "Redis's own client against Redis, beside kvbench against kvstored, in the same"
        " rounds. Two different clients: the ratio mixes the servers' costs with the"
        " clients'.",
        "",
    ] + second_opinion_table(rows) + [
        "",
    ] + second_opinion_summary(rows) + [
        "",
        "## How to read it",
        "",
        "- *rps*: OK answers per second (kvbench counts an error or a wrong answer as neither;"
        " a run with any fails). Ratio > 1: kvstored serves more.",
        "- *kv/floor*: kvstored's rps over the echo floor's. The echo answer is the request"
        " itself, so for GET the floor moves only the request's bytes back while kvstored's"
        " answer also carries the value: at `-d 1024` GET kv/floor includes that extra 1 KiB"
        " per answer.",
        "- *p50 / p99 / p99.9 / max*: latency percentiles in ms, as kvbench measures them for"
        " every server (redis-benchmark's timing differs, see its table).",
        "- *CPU µs/req*: user + system CPU of the server process (all its threads, from"
        " /proc/PID/stat before and after each run) per request; no client can inflate it."
        " Ratio < 1: kvstored does the same work with less CPU. The clock tick is 10 ms, so"
        " short --quick runs are coarse.",
        "- *resident memory*: VmRSS of a freshly started instance of each, then after"
        " storing the same %d keys (`key:` + 12 digits = 16 bytes, %d-byte values):"
        " Redis through `redis-cli --pipe`, kvstored through"
        " `kvbench --sequential -n %d -r %d -d %d -t set`." % (mem["keys"], mem["value_len"],
                                                           mem["keys"], mem["keys"],
                                                           mem["value_len"]),
        "- The machine's cores are shared by the server and the client: a run where kvbench is"
        " near 100% measures the client as much as the server (see the CPU table).",
        "- Other processes on the machine add noise; the alternation and medians damp it,"
        " they do not remove it. Compare ratios from one run rather than numbers across runs.",
        "",
        NOTES_MARKER,
    ] + notes
    page = "\n".join(text).rstrip("\n") + "\n"
    # The page is published: no paths of the machine that wrote it.
    for m in re.finditer(r"(?<![\w.])/(tmp|work|home|root|var)/\S*", page):
        print("compare-redis: warning: BENCHMARKS.md names a machine path: %s" % m.group(0),
              file=sys.stderr)
    with open(md_path, "w") as f:
        f.write(page)
    return [md_path, svg] + ([lat_svg] if has_lat else [])
