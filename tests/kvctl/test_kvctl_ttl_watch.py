"""test_kvctl_ttl_watch - kvctl's keys that expire and watches (v2.1),
run as a subprocess against a live kvstored.

The helpers (kvctl(), KvctlTest, Terminal) are test_kvctl.py's. A test
writes only once its watch is open (Stats counts it: wait_watchers), since
a server keeps no history before its first watch, so that --rev cannot
replay what came before. Every wait is for output, an exit or a figure,
with a generous deadline.
"""

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_kvctl import KVCTL, KVSTORED, KvctlTest, Terminal, b64  # noqa: E402
from kvstored import Server  # noqa: E402

WAIT = 20.0                 # seconds any event or exit may take

DUR = re.compile(rb"^(\d+ms|\d+(\.\d{1,3})?s)\n$")


def dur_ms(text):
    """Milliseconds of what kvctl ttl printed ("250ms", "29.5s")."""
    text = text.strip().decode()
    if text.endswith("ms"):
        return int(text[:-2])
    return round(float(text[:-1]) * 1000)


class Watcher:
    """kvctl watch ARGS running in the background; lines() reads its output."""

    def __init__(self, endpoint, *args):
        env = dict(os.environ)
        env.pop("KVCTL_ENDPOINT", None)
        env.pop("KVCTL_TOKEN_FILE", None)
        self.proc = subprocess.Popen([KVCTL, "-e", endpoint, "watch", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.buf = b""

    def lines(self, n):
        """The next N lines of its output, waiting up to WAIT for them."""
        deadline = time.monotonic() + WAIT
        while self.buf.count(b"\n") < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise AssertionError("waited %gs for %d lines; got %r" % (WAIT, n, self.buf))
            data = os.read(self.proc.stdout.fileno(), 65536)
            if not data:
                raise AssertionError("kvctl watch ended (%s) after %r; stderr %r"
                                     % (self.proc.wait(WAIT), self.buf, self.proc.stderr.read()))
            self.buf += data
        out = self.buf.split(b"\n")
        self.buf = b"\n".join(out[n:])
        return out[:n]

    def end(self):
        """Waits for it to exit; (exit status, rest of stdout, stderr)."""
        out, err = self.proc.communicate(timeout=WAIT)
        return self.proc.returncode, self.buf + out, err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=WAIT)


class TtlTest(KvctlTest):
    def json_of(self, *args, code=0):
        r = self.kv("-w", "json", *args)
        self.assertEqual(r.returncode, code, r.stderr)
        return json.loads(r.stdout)

    def ttl_ms(self, key):
        """What kvctl ttl KEY says, in milliseconds (0: none)."""
        out = self.ok("ttl", key)
        if out == b"none\n":
            return 0
        self.assertRegex(out, DUR)
        return dur_ms(out)


class TestTtl(TtlTest):
    def test_set_with_a_ttl(self):
        self.assertEqual(self.ok("set", "k", "v", "--ttl", "30s"), b"OK\n")
        self.assertTrue(0 < self.ttl_ms("k") <= 30000)
        got = self.json_of("get", "k")
        self.assertTrue(0 < got["ttl_ms"] <= 30000, got)
        self.assertEqual(self.ok("get", "k"), b"v")        # the value as ever
        table = self.ok("-w", "table", "get", "k").decode()
        self.assertRegex(table, r"^KEY +VALUE +CREATE +MOD +VERSION +TTL\n"
                                r"k +v +1 +1 +1 +\d+(\.\d+)?s\n")

    def test_without_ttl_none(self):
        self.ok("set", "k", "v")
        self.assertEqual(self.ok("ttl", "k"), b"none\n")
        self.assertEqual(self.json_of("ttl", "k")["ttl_ms"], 0)
        self.assertNotIn(b"TTL", self.ok("-w", "table", "get", "k"))

    def test_keep_ttl_and_a_plain_set_drops_it(self):
        self.ok("set", "k", "v1", "--ttl", "1h")
        self.ok("set", "k", "v2", "--keep-ttl")
        self.assertTrue(3000000 < self.ttl_ms("k") <= 3600000)
        self.assertEqual(self.ok("get", "k"), b"v2")
        self.ok("set", "k", "v3")
        self.assertEqual(self.ttl_ms("k"), 0)
        self.ok("set", "k", "v4", "--ttl", "1h")
        self.ok("set", "k", "v5", "--ttl", "0")
        self.assertEqual(self.ttl_ms("k"), 0)

    def test_durations(self):
        # Long enough that a slow machine never sees one expire; the lower
        # bounds leave it ten seconds.
        for text, low, high in (("95000ms", 85000, 95000), ("1.5m", 80000, 90000),
                                ("2h", 7190000, 7200000), ("100", 90000, 100000),
                                ("80.25s", 70000, 80250)):
            self.ok("set", "k", "v", "--ttl", text)
            self.assertTrue(low < self.ttl_ms("k") <= high, text)
        for bad in ("5x", "-1s", "", "s", "1.s", " 1s", "1e3", "3 s", "99999999999999999999"):
            r = self.kv("set", "k", "v", "--ttl", bad)
            self.assertEqual(r.returncode, 2, bad)
            self.assertIn(b"--ttl wants a duration", r.stderr)
        r = self.kv("set", "k", "v", "--ttl", "1s", "--keep-ttl")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"--ttl and --keep-ttl do not go together", r.stderr)

    def test_beyond_the_maximum(self):
        r = self.kv("set", "k", "v", "--ttl", "1000000000001ms")
        self.assertEqual(r.returncode, 4)
        self.assertIn(b"INVALID_ARGUMENT", r.stderr)
        self.ok("set", "k", "v", "--ttl", "1000000000000ms")

    def test_touch(self):
        r = self.kv("touch", "nope", "10s")
        self.assertEqual((r.returncode, r.stdout), (1, b""))
        self.assertEqual(r.stderr, b'kvctl: touch "nope": NOT_FOUND: key not found\n')
        self.ok("set", "k", "v")
        before = self.json_of("get", "k")
        self.assertEqual(self.ok("touch", "k", "10s"), b"OK\n")
        self.assertTrue(0 < self.ttl_ms("k") <= 10000)
        after = self.json_of("get", "k")
        self.assertEqual((after["mod_revision"], after["version"], after["revision"]),
                         (before["mod_revision"], before["version"], before["revision"]))
        self.assertEqual(self.ok("touch", "k", "0"), b"OK\n")
        self.assertEqual(self.ttl_ms("k"), 0)
        self.assertEqual(self.json_of("touch", "k", "1m")["found"], True)
        r = self.kv("touch", "k", "soon")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"touch: DUR must be a duration", r.stderr)

    def test_ttl_of_a_missing_key(self):
        r = self.kv("ttl", "nope")
        self.assertEqual((r.returncode, r.stdout), (1, b""))
        self.assertEqual(r.stderr, b'kvctl: ttl "nope": NOT_FOUND: key not found\n')

    def test_a_key_expires(self):
        self.ok("set", "k", "v", "--ttl", "100ms")
        deadline = time.monotonic() + WAIT
        while self.kv("get", "k").returncode != 1:
            self.assertLess(time.monotonic(), deadline, "the key never expired")
        self.assertEqual(self.kv("ttl", "k").returncode, 1)
        self.assertEqual(self.kv("touch", "k", "1s").returncode, 1)

    def test_range_shows_ttls(self):
        self.ok("set", "a", "1", "--ttl", "1h")
        self.ok("set", "b", "2")
        kvs = self.json_of("range")["kvs"]
        self.assertTrue(0 < kvs[0]["ttl_ms"] <= 3600000)
        self.assertEqual(kvs[1]["ttl_ms"], 0)
        table = self.ok("-w", "table", "range").decode().splitlines()
        self.assertRegex(table[0], r"^KEY +VALUE +CREATE +MOD +VERSION +TTL$")
        self.assertRegex(table[1], r"^a +1 .* \d+(\.\d+)?s$")
        self.assertRegex(table[2], r"^b +2 .* -$")

    def test_batch_lines(self):
        r = self.kv(stdin=b"set k v --ttl 10s\nttl k\ntouch k 0\nttl k\ntouch nope 1s\nttl nope\n")
        self.assertEqual(r.returncode, 1)
        lines = r.stdout.split(b"\n")
        self.assertEqual(lines[0], b"OK")
        self.assertRegex(lines[1] + b"\n", DUR)
        self.assertEqual(lines[2:], [b"OK", b"none", b"", b"", b""])


class WatchTest(TtlTest):
    def wait_watchers(self, n):
        """Waits until the server has N watches open."""
        deadline = time.monotonic() + WAIT
        while self.json_of("stats")["watchers"] != n:
            self.assertLess(time.monotonic(), deadline, "never %d watches open" % n)

    def watch(self, *args):
        """kvctl watch ARGS in the background, once its watch is open."""
        before = self.json_of("stats")["watchers"]
        w = Watcher(self.server.endpoint, *args)
        self.addCleanup(w.kill)
        self.wait_watchers(before + 1)
        return w


class TestWatch(WatchTest):
    def test_events_until_sigint(self):
        w = self.watch("k")
        self.ok("set", "other", "x")                    # not watched
        rev = self.json_of("set", "k", "v1")["revision"]
        self.ok("clear", "k")
        self.assertEqual(w.lines(2), [b'PUT "k" "v1" rev %d' % rev,
                                      b'DELETE "k" rev %d' % (rev + 1)])
        w.proc.send_signal(signal.SIGINT)
        self.assertEqual(w.end(), (0, b"", b""))

    def test_prefix_range_all_prev_ttl(self):
        prefix = self.watch("--prefix", "p/", "--prev")
        rng = self.watch("--range", "b", "d")
        every = self.watch("--all")
        self.ok("set", "p/1", "a\nb")                   # quoted: one line whatever the bytes
        self.ok("set", "p/1", "2", "--ttl", "1h")
        self.ok("set", "c", "3")
        self.ok("set", "d", "4")
        lines = prefix.lines(2)
        self.assertRegex(lines[0], rb'^PUT "p/1" "a\\nb" rev \d+$')
        self.assertRegex(lines[1], rb'^PUT "p/1" "2" rev \d+ ttl \d+(\.\d+)?s prev "a\\nb"$')
        self.assertEqual([l.split(b" rev")[0] for l in rng.lines(1)], [b'PUT "c" "3"'])
        self.assertEqual(len(every.lines(4)), 4)
        for w in (prefix, rng, every):
            w.proc.send_signal(signal.SIGINT)
            self.assertEqual(w.end()[0], 0)
        self.assertEqual(rng.end()[1], b"")             # nothing of "d": END is excluded

    def test_json(self):
        w = self.watch("-w", "json", "--prev", "k")
        self.ok("set", "k", "v1")
        self.ok("set", "k", "v2")
        self.ok("clear", "k")
        events = [json.loads(line) for line in w.lines(3)]
        self.assertEqual([e["type"] for e in events], ["PUT", "PUT", "DELETE"])
        self.assertEqual(events[0]["kv"]["value"], b64("v1"))
        self.assertEqual(events[0]["kv"]["version"], 1)
        self.assertNotIn("prev_kv", events[0])
        self.assertEqual(events[1]["prev_kv"]["value"], b64("v1"))
        self.assertEqual(events[2]["kv"]["key"], b64("k"))
        self.assertEqual(events[2]["prev_kv"]["value"], b64("v2"))
        self.assertFalse(events[2]["expired"])
        w.proc.send_signal(signal.SIGINT)
        self.assertEqual(w.end(), (0, b"", b""))

    def test_expiry_is_a_delete(self):
        w = self.watch("k")
        self.ok("set", "k", "v", "--ttl", "100ms")
        put, delete = w.lines(2)
        self.assertRegex(put, rb'^PUT "k" "v" rev \d+ ttl \d+ms$')
        self.assertRegex(delete, rb'^DELETE "k" rev \d+ expired$')

    def test_a_txn_comes_in_revision_order(self):
        w = self.watch("--prefix", "t/")
        self.ok("txn", "then", "set", "t/b", "2", "set", "t/a", "1")
        lines = w.lines(2)
        self.assertEqual([l.split(b" rev")[0] for l in lines], [b'PUT "t/b" "2"', b'PUT "t/a" "1"'])
        self.assertEqual(len({l.split(b" rev ")[1] for l in lines}), 1)     # one revision

    def test_usage(self):
        for args, why in ((["watch"], b"watch: missing KEY"),
                          (["watch", "--prefix", "a", "--all"], b"go alone"),
                          (["watch", "k", "--rev", "x"], b"--rev wants a number"),
                          (["watch", "k", "--ttl", "1s"], b"--ttl is not an option of watch")):
            r = self.kv(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(why, r.stderr)
        r = self.kv(stdin=b"watch k\nping\n")
        self.assertEqual((r.returncode, r.stdout), (2, b"\nPONG\n"))
        self.assertIn(b"watch: not in batch mode", r.stderr)
        r = self.kv("watch", "--prefix", "")            # nothing selected: the server says
        self.assertEqual(r.returncode, 4)
        self.assertIn(b"INVALID_ARGUMENT", r.stderr)

    def test_connection_lost(self):
        w = self.watch("k")
        self.ok("set", "k", "v")
        w.lines(1)
        self.server.stop()
        code, _, err = w.end()
        self.assertEqual(code, 3, err)
        self.assertRegex(err, rb'^kvctl: watch "k": UNAVAILABLE: ')


class TestWatchCanceledByTheServer(WatchTest):
    """The server keeps 2 events of history, from the first watch on: a
    watch from revision 1 after 10 writes is canceled at once (compacted)."""

    def setUp(self):
        self.server = Server("--watch-history", "2")
        self.addCleanup(self.server.stop)
        self.watch("--all")
        for i in range(10):
            self.ok("set", "k%d" % i, "v")

    def test_exit_6_and_the_reason(self):
        r = self.kv("watch", "--prefix", "k", "--rev", "1")
        self.assertEqual((r.returncode, r.stdout), (6, b""))
        m = re.match(rb'^kvctl: watch --prefix "k": CANCELLED: .+ \(compact_revision (\d+)\)\n$',
                     r.stderr)
        self.assertTrue(m, r.stderr)
        self.assertEqual(int(m.group(1)), 9)          # 9 and 10 are kept

    def test_json(self):
        r = self.kv("-w", "json", "watch", "--prefix", "k", "--rev", "1")
        self.assertEqual(r.returncode, 6)
        last = json.loads(r.stdout.splitlines()[-1])
        self.assertEqual((last["command"], last["prefix"], last["code"]),
                         ("watch", b64("k"), "CANCELLED"))
        self.assertEqual(last["compact_revision"], 9)

    def test_a_recent_revision_still_works(self):
        rev = self.json_of("stats")["revision"]
        w = Watcher(self.server.endpoint, "k9", "--rev", str(rev))
        self.addCleanup(w.kill)
        self.assertEqual(w.lines(1), [b'PUT "k9" "v" rev %d' % rev])


class TestWatchInTheShell(WatchTest):
    def test_ctrl_c_ends_the_watch_and_the_shell_goes_on(self):
        env = dict(os.environ, HOME=self.tmp.name, TERM="dumb")
        env.pop("KVCTL_ENDPOINT", None)
        t = Terminal(["-e", self.server.endpoint], env)
        self.addCleanup(t.kill)
        prompt = re.escape(self.server.endpoint.encode() + b"> ")
        t.expect(prompt)
        t.send(b"watch k\r")
        self.wait_watchers(1)
        self.ok("set", "k", "v")
        t.expect(rb'PUT "k" "v" rev \d+\r\n')
        t.proc.send_signal(signal.SIGINT)              # what Ctrl-C sends
        t.expect(prompt)
        self.assertEqual(self.json_of("stats")["watchers"], 0)   # canceled, not left open
        t.send(b"get k\r")
        self.assertIn(b"v\r\n", t.expect(prompt))
        t.send(b"quit\r")
        self.assertEqual(t.wait(), 0)


if __name__ == "__main__":
    if not (os.access(KVCTL, os.X_OK) and os.access(KVSTORED, os.X_OK)):
        raise SystemExit("set KVCTL and KVSTORED to the built binaries (meson test does)")
    unittest.main(verbosity=2)
