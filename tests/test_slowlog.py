"""test_slowlog - what an operator reads of a server's latency (issue 16):
the per-method figures of Stats (status codes, Get's hits and misses, the
p50/p99/p999 latency from each method's histogram) and the slow log (the
SlowLog rpc, --slowlog-us and --slowlog-max-len, kvctl slowlog [--reset]),
on a single node and on a one-node cluster, where writes are answered
later, once committed (the slow log then keeps the key from the request it
no longer has).

No test waits for a request to be slow: a threshold of 0 logs every
request, one of an hour logs none, whatever the machine's load. Servers
start through the shared helpers (tests/support/kvstored.py, cluster.py).
Debian's /usr/bin/python3; meson test sets $KVSTORED, $KVCTL, PYTHONPATH.
"""

import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "support"))
from kvstore import pb  # noqa: E402
from cluster import Cluster, call  # noqa: E402
from kvstored import Server  # noqa: E402

KV = "/kvstore.v1.KV/"
HOUR_US = "3600000000"
TIMEOUT = 20.0


def rpc(endpoint, method, request, response_type):
    """One call; the decoded answer, failing the test on a non-OK code."""
    resp, body = call(endpoint, KV + method, request, response_type, timeout=TIMEOUT)
    assert resp.code == pb.OK, (method, resp.code, resp.message)
    return body


def stats(endpoint):
    return rpc(endpoint, "Stats", pb.StatsRequest(), pb.StatsResponse)


def method_stats(st, name):
    return next(m for m in st.methods if m.method == KV + name)


def slowlog(endpoint, limit=0, reset=False):
    return rpc(endpoint, "SlowLog", pb.SlowLogRequest(limit=limit, reset=reset),
               pb.SlowLogResponse)


def kvctl(endpoint, *args):
    return subprocess.run([os.environ["KVCTL"], "-e", endpoint] + list(args),
                          capture_output=True, text=True, timeout=TIMEOUT)


class Figures(unittest.TestCase):
    """Stats per method: codes, hits and misses, latency quantiles."""

    def test_codes_hits_misses_and_quantiles(self):
        with Server("--slowlog-us", HOUR_US) as s:
            for i in range(20):
                rpc(s.endpoint, "Set", pb.SetRequest(key=b"k%d" % i, value=b"v"), pb.SetResponse)
            for i in range(30):     # 20 found, 10 missing
                resp, _ = call(s.endpoint, KV + "Get", pb.GetRequest(key=b"k%d" % i))
                self.assertEqual(resp.code, pb.OK if i < 20 else pb.NOT_FOUND)
            st = stats(s.endpoint)
            get = method_stats(st, "Get")
            self.assertEqual(get.calls, 30)
            self.assertEqual(get.errors, 10)
            self.assertEqual({c.code: c.count for c in get.codes},
                             {pb.OK: 20, pb.NOT_FOUND: 10})
            self.assertEqual((st.get_hits, st.get_misses), (20, 10))
            sets = method_stats(st, "Set")
            self.assertEqual({c.code: c.count for c in sets.codes}, {pb.OK: 20})
            for m in (get, sets):
                self.assertGreater(m.latency_p50_us, 0)
                self.assertLessEqual(m.latency_p50_us, m.latency_p99_us)
                self.assertLessEqual(m.latency_p99_us, m.latency_p999_us)
                self.assertLess(m.latency_p999_us, 10_485_760)   # the last bound
            # A method never called has no figures, and no codes.
            touch = method_stats(st, "Touch")
            self.assertEqual((touch.calls, touch.latency_p50_us, len(touch.codes)), (0, 0, 0))
            # Nothing took an hour.
            log = slowlog(s.endpoint)
            self.assertEqual((len(log.entries), log.total, log.threshold_us), (0, 0, int(HOUR_US)))
            self.assertEqual(st.slowlog_total, 0)


class SlowLog(unittest.TestCase):

    def test_every_request_logged_newest_first_bounded(self):
        with Server("--slowlog-us", "0", "--slowlog-max-len", "4") as s:
            long_key = bytes(range(256)) * 2        # every byte value, 512 bytes
            rpc(s.endpoint, "Set", pb.SetRequest(key=b"a", value=b"1"), pb.SetResponse)
            rpc(s.endpoint, "Set", pb.SetRequest(key=long_key, value=b"2"), pb.SetResponse)
            resp, _ = call(s.endpoint, KV + "Get", pb.GetRequest(key=b"missing"))
            self.assertEqual(resp.code, pb.NOT_FOUND)
            rpc(s.endpoint, "Range", pb.RangeRequest(start=b"a", end=b"b"), pb.RangeResponse)
            rpc(s.endpoint, "Ping", pb.PingRequest(), pb.PingResponse)
            log = slowlog(s.endpoint)
            # Five requests, the last four kept; the SlowLog call itself is
            # logged once answered, after its own answer was built.
            self.assertEqual(log.total, 5)
            self.assertEqual(log.capacity, 4)
            self.assertEqual(log.threshold_us, 0)
            self.assertEqual([e.method for e in log.entries],
                             [KV + "Ping", KV + "Range", KV + "Get", KV + "Set"])
            self.assertEqual([e.id for e in log.entries], [5, 4, 3, 2])
            ping, rng, get, cut = log.entries
            self.assertEqual((ping.key, ping.key_bytes), (b"", 0))
            self.assertEqual((rng.key, rng.key_bytes), (b"a", 1))
            self.assertEqual((get.key, get.code), (b"missing", pb.NOT_FOUND))
            self.assertEqual((cut.key, cut.key_bytes), (long_key[:64], 512))
            for e in log.entries:
                self.assertTrue(e.peer.startswith("127.0.0.1"), e.peer)
                self.assertGreater(e.unix_ms, 1_700_000_000_000)
            self.assertGreaterEqual(log.entries[0].unix_ms, log.entries[-1].unix_ms)
            st = stats(s.endpoint)
            self.assertEqual((st.slowlog_length, st.slowlog_total), (4, 6))

            # --limit, then --reset: the answer still has the entries; the
            # log is emptied, then the reset call itself is logged, once
            # answered, like any other.
            self.assertEqual(len(slowlog(s.endpoint, limit=2).entries), 2)
            before = slowlog(s.endpoint, reset=True)
            self.assertEqual(len(before.entries), 4)
            after = slowlog(s.endpoint)
            self.assertEqual(after.total, 1)
            self.assertEqual([e.method for e in after.entries], [KV + "SlowLog"])

    def test_kvctl_slowlog(self):
        with Server("--slowlog-us", "0", "--slowlog-max-len", "8") as s:
            rpc(s.endpoint, "Set", pb.SetRequest(key=b"kv-key", value=b"v"), pb.SetResponse)
            out = kvctl(s.endpoint, "slowlog")
            self.assertEqual(out.returncode, 0, out.stderr)
            lines = out.stdout.splitlines()
            self.assertTrue(lines[0].startswith("slow log: 1 of 1 logged"), lines[0])
            self.assertEqual(lines[1].split(), ["ID", "TIME", "DURATION", "METHOD", "KEY",
                                                "PEER", "CODE"])
            self.assertIn("kv-key", lines[2])
            self.assertIn("Set", lines[2])
            out = kvctl(s.endpoint, "-w", "json", "slowlog", "--limit", "1")
            self.assertEqual(out.returncode, 0, out.stderr)
            obj = json.loads(out.stdout)
            self.assertEqual(len(obj["entries"]), 1)
            self.assertEqual(obj["entries"][0]["method"], KV + "SlowLog")   # the first call's
            out = kvctl(s.endpoint, "slowlog", "--reset")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("slow log emptied", out.stdout)
            self.assertEqual(slowlog(s.endpoint).total, 1)     # the reset call's entry
            bad = kvctl(s.endpoint, "slowlog", "--limit", "x")
            self.assertNotEqual(bad.returncode, 0)
            self.assertIn("--limit wants a number", bad.stderr)

    def test_kvctl_prints_a_long_slow_log_in_time(self):
        """50,000 entries printed as a table: kvctl grew its table one cell
        at a time, each a realloc that copies under ASan (290 s here)."""
        import wire
        n = 50000
        with Server("--slowlog-us", "0", "--slowlog-max-len", str(n)) as s:
            c = wire.Connection(s.endpoint, timeout=TIMEOUT)
            body = pb.RpcRequest(id=1, method=KV + "Get",
                                 payload=pb.GetRequest(key=b"k" * 64).SerializeToString())
            c.sock.sendall(wire.frame(body.SerializeToString()) * n)
            for _ in range(n):
                c.recv()
            c.close()
            out = subprocess.run([os.environ["KVCTL"], "-e", s.endpoint, "slowlog"],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(len(out.stdout.splitlines()), n + 2)

    def test_flags_refused(self):
        for flag in (["--slowlog-us", "-1"], ["--slowlog-max-len", "lots"]):
            p = subprocess.run([os.environ["KVSTORED"]] + flag, capture_output=True, text=True,
                               timeout=TIMEOUT)
            self.assertEqual(p.returncode, 2, flag)
            self.assertIn(flag[0][2:], p.stderr)

    def test_off_with_no_room(self):
        with Server("--slowlog-us", "0", "--slowlog-max-len", "0") as s:
            rpc(s.endpoint, "Ping", pb.PingRequest(), pb.PingResponse)
            log = slowlog(s.endpoint)
            self.assertEqual((len(log.entries), log.total, log.capacity), (0, 0, 0))


class Cluster1(unittest.TestCase):
    """A one-node cluster answers writes once committed: from a kept call
    whose request is gone. Its figures and slow log entries are the same."""

    def test_writes_answered_later_are_timed_and_logged(self):
        with Cluster(1, args=("--slowlog-us", "0")) as c:
            leader = c.start()
            rpc(leader.endpoint, "Set", pb.SetRequest(key=b"later", value=b"v"), pb.SetResponse)
            log = slowlog(leader.endpoint)
            sets = [e for e in log.entries if e.method == KV + "Set"]
            self.assertEqual(len(sets), 1, log)
            self.assertEqual((sets[0].key, sets[0].key_bytes, sets[0].code), (b"later", 5, pb.OK))
            st = method_stats(stats(leader.endpoint), "Set")
            self.assertEqual(st.calls, 1)
            self.assertGreater(st.latency_p50_us, 0)


if __name__ == "__main__":
    unittest.main()
