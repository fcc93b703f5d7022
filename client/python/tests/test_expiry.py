"""Keys that expire, through the helpers: set with ttl_ms / keep_ttl,
get_entry's ttl_ms, touch, cas and Txn sets with a TTL, and expiry itself,
against one live kvstored shared by this module (docs/PROTOCOL.md, Expiry).
No assertion on timing: a short TTL, then a poll with a generous deadline."""

import asyncio
import unittest

import kvstore
import kvstore.aio
from kvstore import txn as t
from kvstored import Server, wait_for

MAX_TTL_MS = 10 ** 12
LONG = 600000           # ten minutes: never runs out during a test
SHORT = 200             # runs out soon; waited for by polling
DEADLINE = 30.0         # the longest a poll waits for an expiry

server = None


def setUpModule():
    global server
    server = Server()


def tearDownModule():
    status = server.stop()
    assert status == 0, "kvstored exited with %s after SIGTERM" % status


class ExpiryTest(unittest.TestCase):
    def setUp(self):
        self.c = kvstore.Client(server.endpoint, timeout=10)
        self.addCleanup(self.c.close)

    def assert_ttl(self, ttl_ms, most):
        self.assertGreater(ttl_ms, 0)
        self.assertLessEqual(ttl_ms, most)

    def gone(self, key):
        try:
            self.c.get(key)
        except kvstore.KeyNotFound:
            return True
        return False

    def wait_gone(self, key):
        wait_for("%r to expire" % key, lambda: self.gone(key), timeout=DEADLINE)


class TestTtl(ExpiryTest):
    def test_set_with_ttl_then_get_shows_it(self):
        self.c.set(b"ttl/a", b"v", ttl_ms=LONG)
        e = self.c.get_entry(b"ttl/a")
        self.assertEqual(e.value, b"v")
        self.assert_ttl(e.ttl_ms, LONG)
        self.assert_ttl(self.c.Get(key=b"ttl/a").ttl_ms, LONG)
        [ranged] = list(self.c.range(prefix=b"ttl/a"))
        self.assert_ttl(ranged.ttl_ms, LONG)

    def test_set_without_ttl_removes_it(self):
        self.c.set(b"ttl/b", b"v", ttl_ms=LONG)
        self.c.set(b"ttl/b", b"w")
        e = self.c.get_entry(b"ttl/b")
        self.assertEqual((e.value, e.ttl_ms), (b"w", 0))
        self.c.set(b"ttl/b", b"x", ttl_ms=0)                 # 0: no TTL either
        self.assertEqual(self.c.get_entry(b"ttl/b").ttl_ms, 0)

    def test_keep_ttl(self):
        self.c.set(b"ttl/k", b"one", ttl_ms=LONG)
        self.c.set(b"ttl/k", b"two", keep_ttl=True)
        e = self.c.get_entry(b"ttl/k")
        self.assertEqual(e.value, b"two")
        self.assert_ttl(e.ttl_ms, LONG)
        self.c.set(b"ttl/new", b"v", keep_ttl=True)         # a new key: nothing to keep
        self.assertEqual(self.c.get_entry(b"ttl/new").ttl_ms, 0)

    def test_ttl_with_keep_ttl_or_too_long_is_refused(self):
        with self.assertRaises(kvstore.InvalidArgument):
            self.c.set(b"ttl/bad", b"v", ttl_ms=1000, keep_ttl=True)
        with self.assertRaises(kvstore.InvalidArgument):
            self.c.set(b"ttl/bad", b"v", ttl_ms=MAX_TTL_MS + 1)
        with self.assertRaises(kvstore.KeyNotFound):
            self.c.get(b"ttl/bad")                           # nothing written
        self.c.set(b"ttl/max", b"v", ttl_ms=MAX_TTL_MS)
        self.assert_ttl(self.c.get_entry(b"ttl/max").ttl_ms, MAX_TTL_MS)
        with self.assertRaises(kvstore.InvalidArgument):
            self.c.touch(b"ttl/max", MAX_TTL_MS + 1)
        with self.assertRaises(ValueError):                  # the client's own check
            self.c.set(b"ttl/bad", b"v", ttl_ms=-1)

    def test_touch(self):
        self.assertFalse(self.c.touch(b"ttl/t-missing", LONG))
        written = self.c.Set(key=b"ttl/t", value=b"v").revision
        before = self.c.Stats().revision
        self.assertTrue(self.c.touch(b"ttl/t", LONG))
        e = self.c.get_entry(b"ttl/t")
        self.assert_ttl(e.ttl_ms, LONG)
        self.assertEqual((e.value, e.mod_revision, e.version), (b"v", written, 1))
        self.assertEqual(self.c.Stats().revision, before)    # no revision
        self.assertTrue(self.c.touch("ttl/t", 0))            # 0 removes it
        self.assertEqual(self.c.get_entry(b"ttl/t").ttl_ms, 0)
        self.assertIs(self.c.Touch(key=b"ttl/t", ttl_ms=LONG).found, True)

    def test_key_expires(self):
        before = self.c.Stats().expired_keys_total
        self.c.set(b"exp/a", b"v", ttl_ms=SHORT)
        self.c.set(b"exp/b", b"stays")
        self.wait_gone(b"exp/a")
        self.assertEqual([e.key for e in self.c.range(prefix=b"exp/")], [b"exp/b"])
        self.assertEqual(self.c.count(prefix=b"exp/"), 1)
        self.assertFalse(self.c.touch(b"exp/a", LONG))
        wait_for("expired_keys_total to count it",
                 lambda: self.c.Stats().expired_keys_total > before, timeout=DEADLINE)

    def test_a_write_after_expiry_makes_a_new_key(self):
        self.c.set(b"again/re", b"old", ttl_ms=SHORT)
        self.wait_gone(b"again/re")
        revision = self.c.Set(key=b"again/re", value=b"new").revision
        e = self.c.get_entry(b"again/re")
        self.assertEqual((e.value, e.create_revision, e.mod_revision, e.version, e.ttl_ms),
                         (b"new", revision, revision, 1, 0))

    def test_lock_with_cas_and_touch(self):
        # Take a lock that frees itself, keep it alive, see another fail.
        revision = self.c.cas(b"lock/a", b"me", 0, ttl_ms=LONG)
        self.assertGreater(revision, 0)
        self.assert_ttl(self.c.get_entry(b"lock/a").ttl_ms, LONG)
        with self.assertRaises(kvstore.FailedPrecondition):
            self.c.cas(b"lock/a", b"other", 0, ttl_ms=LONG)
        self.assertTrue(self.c.touch(b"lock/a", LONG))
        self.c.cas(b"lock/b", b"me", 0, ttl_ms=SHORT)
        self.wait_gone(b"lock/b")
        self.assertGreater(self.c.cas(b"lock/b", b"next", 0), 0)   # free again

    def test_txn_set_with_ttl(self):
        r = (self.c.txn()
             .then(t.set(b"txn/ttl", b"v", ttl_ms=LONG), t.get(b"txn/ttl"),
                   t.range(prefix=b"txn/ttl"))
             .commit())
        self.assertTrue(r.succeeded)
        self.assert_ttl(r.results[1].ttl_ms, LONG)
        self.assert_ttl(r.results[2].entries[0].ttl_ms, LONG)
        self.assert_ttl(self.c.get_entry(b"txn/ttl").ttl_ms, LONG)

    def test_in_a_pipeline(self):
        with self.c.pipeline() as p:
            p.set(b"pipe/ttl", b"v", ttl_ms=LONG)
            touched = p.touch(b"pipe/ttl", LONG)
            missing = p.touch(b"pipe/none", LONG)
            entry = p.get_entry(b"pipe/ttl")
        self.assertEqual((touched.result(), missing.result()), (True, False))
        self.assert_ttl(entry.result().ttl_ms, LONG)

    def test_stats(self):
        self.c.set(b"stats/ttl", b"v", ttl_ms=LONG)
        self.assertGreaterEqual(self.c.Stats().keys_with_ttl, 1)


class TestAsync(unittest.TestCase):
    def test_set_get_touch_and_expiry(self):
        async def main():
            async with await kvstore.aio.connect(server.endpoint, timeout=10) as c:
                await c.set(b"aio/ttl", b"v", ttl_ms=LONG)
                e = await c.get_entry(b"aio/ttl")
                self.assertTrue(0 < e.ttl_ms <= LONG)
                await c.set(b"aio/ttl", b"w", keep_ttl=True)
                self.assertTrue(0 < (await c.get_entry(b"aio/ttl")).ttl_ms <= LONG)
                self.assertTrue(await c.touch(b"aio/ttl", 0))
                self.assertFalse(await c.touch(b"aio/none", LONG))
                self.assertEqual((await c.get_entry(b"aio/ttl")).ttl_ms, 0)
                await c.set(b"aio/short", b"v", ttl_ms=SHORT)
                loop = asyncio.get_running_loop()
                deadline = loop.time() + DEADLINE
                while True:
                    try:
                        await c.get(b"aio/short")
                    except kvstore.KeyNotFound:
                        break
                    self.assertLess(loop.time(), deadline, "aio/short did not expire")
                    await asyncio.sleep(0.02)
        asyncio.run(main())


if __name__ == "__main__":
    unittest.main()
