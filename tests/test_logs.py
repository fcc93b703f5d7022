"""test_logs - what kvstored says on stderr: one line per event with an
ISO-8601 UTC timestamp and a level (--log-level filters, --log-format json
gives one JSON object per line); the start with everything in force, the
stop, a warning when it listens beyond loopback without a token, a refused
connection at debug with its peer, and limits hit.

Servers start through the shared helper (tests/support/kvstored.py); the
wire is spoken with tests/lmdb/live.py's Conn (the Python client's raw
connection). A line that must NOT be written is looked for after the
server has stopped, when every line it would write is there. Every wait is
bounded. Debian's /usr/bin/python3; meson test sets $KVSTORED and
PYTHONPATH.
"""

import datetime
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
for d in ("support", "lmdb"):
    if os.path.join(HERE, d) not in sys.path:
        sys.path.insert(0, os.path.join(HERE, d))
from kvstored import Server, refused  # noqa: E402
from live import OK, RESOURCE_EXHAUSTED, Conn, set_request, varint  # noqa: E402

WAIT = 20.0
# A text line: "2026-11-26T00:49:58.123Z info  message"; levels are padded
# to five characters.
TEXT_LINE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (error|warn |info |debug) (.*)")
LEVELS = ("error", "warn", "info", "debug")


def parse_text(stderr):
    """[(timestamp, level, message)] of every line; fails on a line that is
    not one event."""
    events = []
    for line in stderr.splitlines():
        m = TEXT_LINE.fullmatch(line)
        assert m, "not a log line: %r" % line
        events.append((m.group(1), m.group(2).strip(), m.group(3)))
    return events


def parse_json(stderr):
    """[(ts, level, msg)] of every line, each one a JSON object with exactly
    those keys."""
    events = []
    for line in stderr.splitlines():
        obj = json.loads(line)
        assert sorted(obj) == ["level", "msg", "ts"], line
        assert obj["level"] in LEVELS, line
        events.append((obj["ts"], obj["level"], obj["msg"]))
    return events


def assert_recent_utc(ts):
    """TS is ISO-8601 in UTC with milliseconds, and about now."""
    when = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - when).total_seconds()) < 300, "%s is not about now (%s)" % (ts, now)


def line(pattern):
    """PATTERN, where ^ and $ are the ends of one line of the log."""
    return "(?m)" + pattern


def ping(port):
    conn = Conn(port)
    assert conn.call("Ping")[0] == OK
    return conn


def refused_connection(port):
    """Connects and reads the one answer a refused connection gets, then
    the close. Returns the answer's code."""
    conn = Conn(port)
    try:
        code = conn.receive()[0]
        conn.sock.settimeout(WAIT)
        assert conn.sock.recv(1) == b"", "the refused connection stayed open"
        return code
    finally:
        conn.close()


class LogTest(unittest.TestCase):
    def serve(self, *args, **kw):
        """A server whose stderr is kept, killed after the test if still up."""
        server = Server(*args, capture_stderr=True, **kw)
        self.addCleanup(server.kill)
        return server

    def stopped_log(self, server):
        """Stops SERVER (it must exit 0) and returns all it wrote on stderr."""
        status = server.stop()
        text = server.stderr_text()
        self.assertEqual(status, 0, text)
        return text


class TestStartAndStop(LogTest):
    def test_the_start_says_version_engine_address_limits_and_auth(self):
        server = self.serve("--max-clients", "7", "--max-frame-bytes", "64K",
                            "--max-key-bytes", "100", "--max-value-bytes", "1M",
                            "--max-memory-bytes", "32M", "--max-input-bytes", "2M",
                            "--max-output-bytes", "3M", "--idle-timeout", "2.5")
        started = server.wait_for_stderr(line(
            r"^(\S+) info  kvstored \d+\.\d+\.\d+ started: engine (memory|lmdb)\b.*"
            r", listening on 127\.0\.0\.1:%d; limits: (.*)$" % server.port), timeout=WAIT)
        assert_recent_utc(started.group(1))
        self.assertEqual(started.group(3),
                         "--max-clients 7 --max-frame-bytes 64K --max-key-bytes 100 "
                         "--max-value-bytes 1M --max-memory-bytes 32M --max-input-bytes 2M "
                         "--max-output-bytes 3M --idle-timeout 2.5; auth off; tls off")

    def test_an_engine_that_keeps_files_says_where_and_how_it_syncs(self):
        tmp = tempfile.mkdtemp(prefix="kvstored-logs.")
        self.addCleanup(shutil.rmtree, tmp, True)
        server = self.serve("--engine", "lmdb", "--dir", tmp + "/db", "--sync", "batch",
                            "--sync-interval-ms", "250", "--lmdb-map-size", "2M",
                            engine_from_env=False)
        server.wait_for_stderr(line(
            r" info  kvstored \S+ started: engine lmdb in %s/db \(--sync batch "
            r"--sync-interval-ms 250 --lmdb-map-size 2M\), listening on " % re.escape(tmp)),
            timeout=WAIT)

    def test_the_stop_says_why_how_many_were_drained_and_that_it_is_done(self):
        server = self.serve()
        conn = ping(server.port)
        try:
            text = self.stopped_log(server)
        finally:
            conn.close()
        events = parse_text(text)
        self.assertIn(("info", "stopping on SIGTERM: no new connections; draining 1 open "
                       "(up to 5 s)"), [(lv, msg) for _, lv, msg in events])
        self.assertRegex(events[-1][2], r"^stopped: engine \w+ closed$")
        self.assertEqual(events[-1][1], "info")
        for ts, _, _ in events:
            assert_recent_utc(ts)

    def test_sigint_is_named_as_such(self):
        server = self.serve()
        server.signal(signal.SIGINT)
        server.wait_for_stderr(line(r" info  stopping on SIGINT: "), timeout=WAIT)
        self.assertEqual(server.stop(), 0)


class TestLevels(LogTest):
    def talk(self, server):
        """An ordinary client's visit, then a SIGHUP, logged at info."""
        ping(server.port).close()
        server.signal(signal.SIGHUP)
        server.wait_for_stderr(line(r" info  SIGHUP ignored: nothing to reload$"), timeout=WAIT)

    def test_info_is_the_default_and_shows_no_debug_lines(self):
        server = self.serve()
        self.talk(server)
        events = parse_text(self.stopped_log(server))
        self.assertEqual([e for e in events if e[1] == "debug"], [])
        self.assertIn("info", {e[1] for e in events})

    def test_debug_shows_a_connection_closing_with_its_peer_and_why(self):
        # Waits on conn.c's debug lines.
        server = self.serve("--log-level", "debug")
        self.talk(server)
        events = parse_text(self.stopped_log(server))
        closes = [msg for _, lv, msg in events
                  if lv == "debug" and "127.0.0.1" in msg and "clos" in msg]
        self.assertTrue(closes, "no debug line on the closed connection: %r" % events)
        self.assertTrue(all(":" in msg for msg in closes), closes)     # "...: the reason"

    def test_warn_hides_info_and_error_hides_warnings(self):
        server = self.serve("--log-level", "warn")
        ping(server.port).close()
        server.signal(signal.SIGHUP)
        self.assertEqual(parse_text(self.stopped_log(server)), [])
        # Listening beyond loopback without a token is a warning: error hides it.
        server = self.serve("--listen", "0.0.0.0:0", "--log-level", "error")
        ping(server.port).close()
        self.assertEqual(self.stopped_log(server), "")

    def test_a_bad_level_or_format_is_a_usage_error(self):
        # Before the server runs, kvstored answers whoever started it with
        # one plain line, not a log line.
        for flag, value, why in (("--log-level", "verbose", "is not error, warn, info or debug"),
                                 ("--log-level", "INFO", "is not error, warn, info or debug"),
                                 ("--log-format", "yaml", "is not text or json")):
            with self.subTest(flag=flag, value=value):
                r = refused(flag, value)
                self.assertEqual((r.status, r.stderr),
                                 (2, 'kvstored: %s: "%s" %s\n' % (flag, value, why)))


class TestJson(LogTest):
    def test_every_line_is_a_json_object_with_ts_level_and_msg(self):
        server = self.serve("--log-format", "json", "--log-level", "debug", "--max-clients", "1")
        first = ping(server.port)
        self.assertEqual(refused_connection(server.port), RESOURCE_EXHAUSTED)
        server.signal(signal.SIGHUP)
        server.wait_for_stderr(line(r'"msg":"SIGHUP ignored'), timeout=WAIT)
        first.close()
        events = parse_json(self.stopped_log(server))
        for ts, _, _ in events:
            assert_recent_utc(ts)
        got = {(lv, msg.split(":")[0]) for _, lv, msg in events}
        self.assertIn(("debug", "refused a connection from 127.0.0.1"), got)
        self.assertIn(("info", "SIGHUP ignored"), got)
        self.assertIn(("info", "stopped"), got)
        self.assertTrue(any(lv == "info" and msg.startswith("kvstored ") and " started: " in msg
                            for _, lv, msg in events), events)


class TestBeyondLoopback(LogTest):
    WARNING = r" warn  listening on 0\.0\.0\.0:%d, beyond loopback, without --auth-token-file or --tls-client-ca: "

    def test_all_interfaces_without_a_token_is_a_warning(self):
        server = self.serve("--listen", "0.0.0.0:0")
        server.wait_for_stderr(line(self.WARNING % server.port), timeout=WAIT)

    def test_with_a_token_there_is_no_warning(self):
        tmp = tempfile.mkdtemp(prefix="kvstored-logs.")
        self.addCleanup(shutil.rmtree, tmp, True)
        token = os.path.join(tmp, "token")
        with open(token, "w") as f:
            f.write("secret\n")
        server = self.serve("--listen", "0.0.0.0:0", "--auth-token-file", token)
        server.wait_for_stderr(line(r" info  kvstored \S+ started: .*; auth on "), timeout=WAIT)
        self.assertNotIn("beyond loopback", self.stopped_log(server))

    def test_loopback_addresses_are_not_warned_about(self):
        for listen in ("127.0.0.1:0", "127.0.0.2:0", "localhost:0"):
            with self.subTest(listen=listen):
                server = self.serve("--listen", listen)
                self.assertNotIn("beyond loopback", self.stopped_log(server))


class TestRefusedAndLimits(LogTest):
    def test_a_connection_over_max_clients_is_logged_at_debug_with_its_peer(self):
        server = self.serve("--max-clients", "1", "--log-level", "debug")
        first = ping(server.port)
        self.assertEqual(refused_connection(server.port), RESOURCE_EXHAUSTED)
        server.wait_for_stderr(line(
            r"^\S+ debug refused a connection from 127\.0\.0\.1: --max-clients 1 reached$"),
            timeout=WAIT)
        first.close()

    def test_at_info_a_refused_connection_is_not_logged(self):
        server = self.serve("--max-clients", "1")
        first = ping(server.port)
        self.assertEqual(refused_connection(server.port), RESOURCE_EXHAUSTED)
        first.close()
        self.assertNotIn("refused a connection", self.stopped_log(server))

    def test_a_frame_over_max_frame_bytes_is_logged(self):
        # Waits on conn.c's line for the limit.
        server = self.serve("--max-frame-bytes", "1K")
        conn = Conn(server.port)
        try:
            conn.sock.sendall(varint(4096) + b"x" * 16)
            self.assertEqual(conn.receive()[0], RESOURCE_EXHAUSTED)
        finally:
            conn.close()
        events = parse_text(self.stopped_log(server))
        hits = [msg for _, lv, msg in events if lv in ("warn", "info")
                and "--max-frame-bytes" in msg and " started: " not in msg]
        self.assertTrue(hits, "the frame over --max-frame-bytes was not logged: %r" % events)

    def test_a_full_lmdb_map_is_a_warning_at_most_once_a_minute(self):
        tmp = tempfile.mkdtemp(prefix="kvstored-logs.")
        self.addCleanup(shutil.rmtree, tmp, True)
        server = self.serve("--engine", "lmdb", "--dir", tmp + "/db", "--lmdb-map-size", "1M",
                            engine_from_env=False)
        conn = Conn(server.port)
        self.addCleanup(conn.close)
        stored, refusals = [], 0
        for batch in range(40):
            keys = [b"k%02d-%03d" % (batch, i) for i in range(100)]
            conn.send([set_request(k, b"v" * 1000) for k in keys])
            for k in keys:
                code = conn.receive()[0]
                if code == OK:
                    stored.append(k)
                else:
                    self.assertEqual(code, RESOURCE_EXHAUSTED)
                    refusals += 1
            if refusals > 50:
                break
        self.assertGreater(refusals, 50, "the map never filled")
        server.wait_for_stderr(line(r" warn  engine lmdb: Set refused: LMDB map full "
                                    r"\(--lmdb-map-size 1M\)"), timeout=WAIT)
        # Room again, then full again: a map near full flaps, the log does not.
        for k in stored[:100]:
            self.assertEqual(conn.clear(k)[0], OK)
        self.assertEqual(conn.set(b"fits", b"again")[0], OK)
        conn.send([set_request(b"more-%03d" % i, b"v" * 1000) for i in range(200)])
        codes = [conn.receive()[0] for _ in range(200)]
        self.assertIn(RESOURCE_EXHAUSTED, codes)
        text = self.stopped_log(server)
        self.assertEqual(text.count("LMDB map full"), 1, text)     # not once per refusal
        self.assertNotIn(" error ", text)


if __name__ == "__main__":
    if not os.access(os.environ.get("KVSTORED", ""), os.X_OK):
        raise SystemExit("set KVSTORED to the built kvstored (meson test does)")
    unittest.main(verbosity=2)
