"""test_lmdb_ttl - what only the lmdb engine promises about keys that expire
(docs/PROTOCOL.md, Expiry): deadlines are absolute (the wall clock), so a
key's time to live goes on running across a clean restart and a kill -9,
Touch's deadline too; a key whose deadline passed while the server was down
reads as gone as soon as it is back, and is then removed by expiry; a
format-2 store takes deadlines once migrated. The times are far from the
test's own: deadlines of an hour or more, checked with minutes of margin,
and the one key that must expire while the server is down lives 1 s and is
looked at only after 3 s have passed.
"""

import os
import shutil
import sys
import tempfile
import time
import unittest

import kvstored
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import old_formats  # noqa: E402
from live import NOT_FOUND, OK, Server  # noqa: E402
from kvstore import pb  # noqa: E402

HOUR = 3600 * 1000
MARGIN = 120 * 1000         # what a slow machine may take between two checks


class TtlCase(unittest.TestCase):
    """Gives each test a fresh directory, self.dir, and the calls they share."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kvstored-lmdb.")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.dir = os.path.join(self.tmp, "db")

    def start(self, *args):
        server = Server("--engine", "lmdb", "--dir", self.dir, *args)
        self.addCleanup(server.kill)
        return server

    def call(self, conn, method, request):
        answer = conn.call(method, request)
        self.assertEqual(answer.code, OK, "%s: %s" % (method, answer.message))
        return getattr(pb, method + "Response").FromString(answer.payload)

    def set(self, conn, key, value, ttl_ms=0):
        return self.call(conn, "Set", pb.SetRequest(key=key, value=value, ttl_ms=ttl_ms))

    def ttl_of(self, conn, key):
        """KEY's ms left (0: none), or None when it reads as absent."""
        answer = conn.call("Get", pb.GetRequest(key=key))
        if answer.code == NOT_FOUND:
            return None
        self.assertEqual(answer.code, OK, answer.message)
        return pb.GetResponse.FromString(answer.payload).ttl_ms

    def assertLeft(self, conn, key, at_most):
        """KEY has at most AT_MOST ms left, and not MARGIN less."""
        left = self.ttl_of(conn, key)
        self.assertIsNotNone(left, key)
        self.assertLessEqual(left, at_most, key)
        self.assertGreater(left, at_most - MARGIN, key)

    def fill(self, conn):
        """Keys with and without deadlines; returns the Touch's answer."""
        self.set(conn, b"hour", b"h", HOUR)
        self.set(conn, b"none", b"n")
        self.set(conn, b"touched", b"t", HOUR)
        self.set(conn, b"cleared", b"c", HOUR)
        self.set(conn, b"cleared", b"c2")           # a Set without ttl_ms removes it
        answer = self.call(conn, "Touch", pb.TouchRequest(key=b"touched", ttl_ms=2 * HOUR))
        self.assertTrue(answer.found)
        self.set(conn, b"day", b"d" * 5000, 24 * HOUR)   # on LMDB's overflow pages

    def assertFilled(self, conn):
        self.assertLeft(conn, b"hour", HOUR)
        self.assertLeft(conn, b"touched", 2 * HOUR)
        self.assertLeft(conn, b"day", 24 * HOUR)
        self.assertEqual(self.ttl_of(conn, b"none"), 0)
        self.assertEqual(self.ttl_of(conn, b"cleared"), 0)
        self.assertEqual(conn.stats().keys_with_ttl, 3)


class TestRestart(TtlCase):
    def test_deadlines_hold_across_a_clean_restart_and_a_kill(self):
        server = self.start()
        conn = server.connect()
        self.fill(conn)
        revision = conn.stats().revision
        self.assertFilled(conn)
        self.assertEqual(server.stop(), 0, server.stderr_text())

        server = self.start()
        conn = server.connect()
        self.assertFilled(conn)
        self.assertEqual(conn.stats().revision, revision)
        server.kill()               # kill -9: --sync always made every answer durable

        server = self.start()
        conn = server.connect()
        self.assertFilled(conn)
        # A Touch to 0 removes a deadline, and that is kept too.
        self.assertTrue(self.call(conn, "Touch", pb.TouchRequest(key=b"hour")).found)
        self.assertEqual(server.stop(), 0, server.stderr_text())
        conn = self.start().connect()
        self.assertEqual(self.ttl_of(conn, b"hour"), 0)
        self.assertEqual(conn.stats().keys_with_ttl, 2)

    def test_a_key_due_while_the_server_was_down_is_gone_when_it_is_back(self):
        server = self.start()
        conn = server.connect()
        before = time.monotonic()
        self.set(conn, b"short", b"s", 1000)
        self.set(conn, b"short2", b"s", 1000)
        self.set(conn, b"long", b"l", HOUR)
        self.set(conn, b"plain", b"p")
        revision = conn.stats().revision
        self.assertEqual(server.stop(), 0, server.stderr_text())
        # Down for well past the short keys' second.
        time.sleep(max(0.0, before + 3.0 - time.monotonic()))

        server = self.start()
        conn = server.connect()
        # Gone for every read at once, before they are removed...
        self.assertIsNone(self.ttl_of(conn, b"short"))
        self.assertIsNone(self.ttl_of(conn, b"short2"))
        page = self.call(conn, "Range", pb.RangeRequest())
        self.assertEqual([kv.key for kv in page.kvs], [b"long", b"plain"])
        self.assertEqual(page.count, 2)
        self.assertLeft(conn, b"long", HOUR)
        # ... and removed by expiry soon after, taking a revision.
        stats = kvstored.wait_for("the expired keys to be removed",
                                  lambda: (lambda s: s if s.keys == 2 else None)(conn.stats()))
        self.assertEqual(stats.expired_keys_total, 2)
        self.assertEqual(stats.keys_with_ttl, 1)
        self.assertGreater(stats.revision, revision)
        self.assertEqual(self.ttl_of(conn, b"plain"), 0)
        self.assertEqual(server.stop(), 0, server.stderr_text())

        # Removed for good: a restart does not bring them back.
        conn = self.start().connect()
        self.assertEqual(conn.stats().keys, 2)
        self.assertEqual(conn.stats().revision, stats.revision)


class TestMigration(TtlCase):
    def setUp(self):
        super().setUp()
        if old_formats.library() is None:
            self.skipTest("liblmdb cannot be loaded through ctypes")

    def test_a_migrated_format_2_store_takes_deadlines(self):
        old_formats.write2(self.dir, {b"old": (b"v", 1, 4, 3)}, 4)
        server = self.start()
        conn = server.connect()
        self.assertEqual(self.ttl_of(conn, b"old"), 0)
        self.assertEqual(self.set(conn, b"old", b"v2", HOUR).revision, 5)
        self.assertEqual(server.stop(), 0, server.stderr_text())
        self.assertEqual(old_formats.mark(self.dir), b"kvstored-lmdb 3")

        conn = self.start().connect()
        self.assertLeft(conn, b"old", HOUR)
        entry = pb.GetResponse.FromString(conn.call("Get", pb.GetRequest(key=b"old")).payload)
        self.assertEqual((entry.create_revision, entry.mod_revision, entry.version), (1, 5, 4))


if __name__ == "__main__":
    if not os.access(os.environ.get("KVSTORED", ""), os.X_OK):
        raise SystemExit("set KVSTORED to the kvstored binary (meson test does)")
    unittest.main(verbosity=2)
