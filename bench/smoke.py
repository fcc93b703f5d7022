#!/usr/bin/python3
"""kvbench smoke test: start kvstored on a free port, run kvbench briefly on
every test (and with --ttl), and check that it exits 0 and that its Stats
check passed; then --protocol echo against kvecho, and --protocol resp
against a redis-server when one is installed (skipped with a message when
not); then watchbench's three modes, briefly. Never asserts on speed.
Usage: smoke.py KVSTORED KVBENCH KVECHO [WATCHBENCH], with tests/support
(kvstored.py, the servers' start helper) on PYTHONPATH."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from kvstored import Server

CSV_HEADER = ('"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",'
              '"p95_latency_ms","p99_latency_ms","max_latency_ms","p999_latency_ms"')


def kvbench(binary, port, args, stats=True):
    """Runs kvbench against PORT; exits the test unless it succeeds (and,
    with STATS, unless its Stats check passed). Returns its stdout."""
    cmd = [binary, "-p", str(port)] + args
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    sys.stdout.write("$ %s\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
    if r.returncode != 0:
        sys.exit("kvbench exited %d" % r.returncode)
    if stats and "stats check passed" not in r.stderr:
        sys.exit("kvbench did not report a passed stats check")
    if not stats and "stats check" in r.stderr:
        sys.exit("kvbench checked the Stats of a server that has none")
    return r.stdout


def check_csv(out, tests):
    lines = out.splitlines()
    if lines[0] != CSV_HEADER or [l.split(",")[0] for l in lines[1:]] != tests:
        sys.exit("unexpected CSV output")


def check_hist(path, tests):
    """--hist wrote one HdrHistogram-style table per test, each ending at 100%."""
    with open(path) as f:
        blocks = f.read().split("\n\n\n")
    if len(blocks) != len(tests):
        sys.exit("--hist wrote %d tables for %d tests" % (len(blocks), len(tests)))
    for block, test in zip(blocks, tests):
        lines = block.splitlines()
        if not lines[0].startswith("#[Test %s " % test) or "Percentile" not in lines[1]:
            sys.exit("--hist table for %s has no header:\n%s" % (test, block))
        last = [l for l in lines if l and l[0] != "#"][-1].split()
        if len(last) != 3 or float(last[1]) != 1.0:
            sys.exit("--hist table for %s does not end at 100%%:\n%s" % (test, block))


def kvstored_runs(kvstored, binary, workdir):
    server = Server(binary=kvstored, engine_from_env=False)
    try:
        port = server.port
        kvbench(binary, port, ["-n", "2000", "-c", "4", "-P", "4", "-t", "ping,set,get,clear",
                               "-r", "500"])
        hist = os.path.join(workdir, "hist.txt")
        out = kvbench(binary, port, ["-n", "1000", "-c", "3", "-P", "1", "-t", "set,get",
                                     "-d", "1000", "--csv", "--hist", hist])
        check_csv(out, ['"SET"', '"GET"'])
        check_hist(hist, ["SET", "GET"])
        kvbench(binary, port, ["-n", "1000", "-c", "2", "-P", "7", "--threads", "2", "-q"])
        kvbench(binary, port, ["-n", "500", "-c", "2", "-P", "8", "-t", "set", "--sequential",
                               "-r", "500"])
        range_runs(binary, port, [])
        ttl_runs(binary, port, [], "NOT_FOUND")
    finally:
        status = server.stop()
    if status != 0:
        sys.exit("kvstored exited %d after SIGTERM" % status)


def range_runs(binary, port, protocol):
    """-t range: every key seen in order (kvstore) or at least once (SCAN),
    pages of 100 and 1000 keys and several clients; a keyspace larger than
    what was stored is wrong answers, exit status 1."""
    stats = not protocol
    out = kvbench(binary, port, protocol + ["-t", "range", "-r", "3000", "-d", "20", "-c", "2",
                                            "--page", "100", "-q"], stats=stats)
    if "6000 keys, 6000 distinct" not in out:
        sys.exit("-t range did not read every key, once per client")
    kvbench(binary, port, protocol + ["-t", "range", "-r", "3000", "-d", "20", "-c", "1",
                                      "--no-populate", "--csv"], stats=stats)
    r = subprocess.run([binary, "-p", str(port), "-t", "range", "-r", "3001", "-d", "20",
                        "-c", "1", "--no-populate", "-q"] + protocol,
                       capture_output=True, text=True, timeout=30)
    sys.stdout.write(r.stdout + r.stderr)
    if r.returncode != 1 or "1 of the 3001 keys were never seen" not in r.stderr:
        sys.exit("-t range did not count a missing key as a wrong answer")


def ttl_runs(binary, port, protocol, missing):
    """--ttl: Sets with a long TTL are answered like any Set (and their keys
    read back); keys set with a TTL of 1 ms go away: a GET of one becomes an
    error answer (MISSING: NOT_FOUND, or Redis's nil), polled for up to 10 s
    so that no timing is asserted; a TTL above 10^12 ms is a usage error."""
    stats = not protocol
    kvbench(binary, port, protocol + ["-n", "1000", "-c", "2", "-P", "4", "-t", "set,get",
                                      "-r", "100", "--ttl", "600000", "-q"], stats=stats)
    kvbench(binary, port, protocol + ["-n", "100", "-c", "1", "-P", "10", "-t", "set",
                                      "--sequential", "-r", "100", "--ttl", "1", "-q"],
            stats=stats)
    deadline = time.monotonic() + 10
    while True:
        r = subprocess.run([binary, "-p", str(port), "-t", "get", "-n", "1", "-c", "1",
                            "--no-populate", "--no-stats-check", "-q"] + protocol,
                           capture_output=True, text=True, timeout=30)
        if r.returncode == 1 and missing in r.stderr:
            break
        if time.monotonic() > deadline:
            sys.stdout.write(r.stdout + r.stderr)
            sys.exit("a key set with --ttl 1 was still there after 10 s")
        time.sleep(0.05)
    r = subprocess.run([binary, "-p", str(port), "--ttl", "1000000000001"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 2:
        sys.exit("--ttl above 10^12 ms was not a usage error")


def echo_runs(kvecho, binary):
    server = Server(binary=kvecho, engine_from_env=False)
    try:
        kvbench(binary, server.port, ["--protocol", "echo", "-n", "2000", "-c", "4", "-P", "4",
                                      "-t", "ping,set,get,clear", "-r", "500"], stats=False)
        # A batch larger than one read of kvecho's, so answers come in pieces.
        out = kvbench(binary, server.port, ["--protocol", "echo", "-n", "400", "-c", "2",
                                            "-P", "40", "-d", "10000", "-t", "set", "--csv"],
                      stats=False)
        check_csv(out, ['"SET"'])
    finally:
        status = server.stop()
    if status != 0:
        sys.exit("kvecho exited %d after SIGTERM" % status)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(workdir):
    """redis-server without persistence on a free port; (its Popen, port)."""
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--dir", workdir],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return proc, port
            except OSError:
                time.sleep(0.05)
        proc.kill()
        proc.wait()
    sys.exit("redis-server did not start")


def resp_runs(binary, workdir):
    if not shutil.which("redis-server"):
        print("SKIP --protocol resp: no redis-server installed (scripts/install-deps "
              "installs it)")
        return
    proc, port = start_redis(workdir)
    try:
        kvbench(binary, port, ["--protocol", "resp", "-n", "2000", "-c", "4", "-P", "4",
                               "-t", "ping,set,get,clear", "-r", "500"], stats=False)
        out = kvbench(binary, port, ["--protocol", "resp", "-n", "1000", "-c", "3", "-P", "16",
                                     "-t", "set,get", "-d", "1000", "-r", "100", "--csv"],
                      stats=False)
        check_csv(out, ['"SET"', '"GET"'])
        range_runs(binary, port, ["--protocol", "resp"])
        ttl_runs(binary, port, ["--protocol", "resp"], "nil")
        # A GET of keys never stored is nil: error answers, exit status 1.
        r = subprocess.run([binary, "-p", str(port), "--protocol", "resp", "-t", "get",
                            "-n", "10", "-c", "1", "-r", "1000000000", "--no-populate", "-q"],
                           capture_output=True, text=True, timeout=30)
        sys.stdout.write(r.stdout + r.stderr)
        if r.returncode != 1 or "nil: key not found" not in r.stderr:
            sys.exit("a nil GET was not counted as an error answer")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def watchbench_runs(kvstored, kvbench_bin, binary):
    """watchbench: idle watches opened and canceled, and held until SIGTERM
    without an event; a small fan-out whose every event must arrive; a
    probe of a stored key."""
    server = Server(binary=kvstored, engine_from_env=False)
    try:
        port = str(server.port)

        def wb(args):
            r = subprocess.run([binary] + args, capture_output=True, text=True, timeout=60)
            sys.stdout.write("$ watchbench %s\n%s%s" % (" ".join(args), r.stdout, r.stderr))
            if r.returncode != 0:
                sys.exit("watchbench exited %d" % r.returncode)
            return r.stdout
        if "canceled: 5 watches" not in wb(["idle", "-p", port, "-w", "5", "--cancel"]):
            sys.exit("watchbench idle --cancel did not cancel its watches")
        out = wb(["idle", "-p", port, "-w", "4", "-C", "2", "--seconds", "0.3"])
        if "ready: 4 watches on 2 connections" not in out or "0 events received" not in out:
            sys.exit("watchbench idle did not hold its watches quietly")
        out = wb(["fanout", "-p", port, "-w", "20", "-C", "5", "-n", "30", "-P", "4"])
        if "events: 600 of 600 delivered" not in out:
            sys.exit("watchbench fanout did not receive every event")
        kvbench(kvbench_bin, server.port, ["-t", "set", "-n", "1", "-c", "1", "-q"])
        if ", 0 errors;" not in wb(["probe", "-p", port, "--seconds", "0.2"]):
            sys.exit("watchbench probe met errors")
    finally:
        status = server.stop()
    if status != 0:
        sys.exit("kvstored exited %d after SIGTERM" % status)


def main():
    kvstored, binary, kvecho = sys.argv[1], sys.argv[2], sys.argv[3]
    workdir = tempfile.mkdtemp(prefix="kvbench-smoke.")
    try:
        kvstored_runs(kvstored, binary, workdir)
        echo_runs(kvecho, binary)
        resp_runs(binary, workdir)
        if len(sys.argv) > 4:
            watchbench_runs(kvstored, binary, sys.argv[4])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
