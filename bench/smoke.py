#!/usr/bin/python3
"""kvbench smoke test: start kvstored on a free port, run kvbench briefly on
every test, and check that it exits 0 and that its Stats check passed.
Never asserts on speed. Usage: smoke.py KVSTORED KVBENCH, with
tests/support (kvstored.py, the servers' start helper) on PYTHONPATH."""
import subprocess
import sys

from kvstored import Server


def main():
    kvstored, kvbench = sys.argv[1], sys.argv[2]
    server = Server(binary=kvstored, engine_from_env=False)
    try:
        port = str(server.port)
        runs = [
            ["-n", "2000", "-c", "4", "-P", "4", "-t", "ping,set,get,clear", "-r", "500"],
            ["-n", "1000", "-c", "3", "-P", "1", "-t", "set,get", "-d", "1000", "--csv"],
            ["-n", "1000", "-c", "2", "-P", "7", "--threads", "2", "-q"],
            ["-n", "500", "-c", "2", "-P", "8", "-t", "set", "--sequential", "-r", "500"],
        ]
        for args in runs:
            cmd = [kvbench, "-p", port] + args
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            sys.stdout.write("$ %s\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
            if r.returncode != 0:
                sys.exit("kvbench exited %d" % r.returncode)
            if "stats check passed" not in r.stderr:
                sys.exit("kvbench did not report a passed stats check")
            if "--csv" in args:
                lines = r.stdout.splitlines()
                want = ('"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",'
                        '"p95_latency_ms","p99_latency_ms","max_latency_ms"')
                if lines[0] != want or [l.split(",")[0] for l in lines[1:]] != ['"SET"', '"GET"']:
                    sys.exit("unexpected CSV output")
    finally:
        status = server.stop()
    if status != 0:
        sys.exit("kvstored exited %d after SIGTERM" % status)


if __name__ == "__main__":
    main()
