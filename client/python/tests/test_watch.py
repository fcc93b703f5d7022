"""Watch through the client, against live kvstored servers
(docs/PROTOCOL.md, Watch): PUT and DELETE events, prev_kv, the selectors,
replay from a past revision, the compacted case (a server with
--watch-history 2), expiry events, a watch interleaved with pipelined calls
on the same connection, a reader thread next to calls, cancel, and the
asyncio form. Events are waited for with generous deadlines, never slept on."""

import asyncio
import threading
import unittest

import kvstore
import kvstore.aio
from kvstore import txn as t
from kvstored import Server, wait_for

WAIT = 30.0             # the longest a test waits for one event
LONG = 600000
SHORT = 200

server = None
small = None            # --watch-history 2: the compacted case


def setUpModule():
    global server, small
    server = Server()
    try:
        small = Server("--watch-history", "2")
    except BaseException:
        server.kill()
        raise


def tearDownModule():
    for s in (server, small):
        status = s.stop()
        assert status == 0, "kvstored exited with %s after SIGTERM" % status


def brief(event):
    """(type, key, value, revision, expired) of an event."""
    return (event.type, event.kv.key, event.kv.value, event.revision, event.expired)


class WatchTest(unittest.TestCase):
    def setUp(self):
        self.c = kvstore.Client(server.endpoint, timeout=10)
        self.addCleanup(self.c.close)

    def watch(self, *args, client=None, **kwargs):
        w = (client or self.c).watch(*args, **kwargs)
        self.addCleanup(w.close)
        return w

    def events(self, w, n):
        """The next N events of W, each waited for up to WAIT seconds."""
        out = []
        for _ in range(n):
            event = w.next_event(timeout=WAIT)
            self.assertIsNotNone(event, "event %d of %d did not come within %gs (got %r)"
                                 % (len(out) + 1, n, WAIT, out))
            out.append(event)
        return out

    def marker(self, w, key):
        """Writes KEY (in W's selection) and reads W up to its PUT: the events
        before it, proof that nothing else came before."""
        revision = self.c.Set(key=key, value=b"marker").revision
        before = []
        while True:
            [event] = self.events(w, 1)
            if event.kv.key == key and event.revision == revision:
                return before
            before.append(event)

    def watchers(self):
        return self.c.Stats().watchers


class TestEvents(WatchTest):
    def test_put_and_delete(self):
        w = self.watch(prefix=b"pd/")
        self.assertGreater(w.watch_id, 0)
        r1 = self.c.Set(key=b"pd/a", value=b"1").revision
        r2 = self.c.Set(key=b"pd/a", value=b"2").revision
        r3 = self.c.Clear(key=b"pd/a").revision
        self.c.set(b"other/a", b"not watched")
        put1, put2, delete = self.events(w, 3)
        self.assertEqual(put1.type, kvstore.WatchEvent.PUT)
        self.assertEqual(put1.kv, kvstore.KeyValue(b"pd/a", b"1", r1, r1, 1, 0))
        self.assertEqual(put2.kv, kvstore.KeyValue(b"pd/a", b"2", r1, r2, 2, 0))
        self.assertEqual((delete.type, delete.kv.key, delete.kv.mod_revision, delete.expired),
                         ("DELETE", b"pd/a", r3, False))
        for e in (put1, put2, delete):
            self.assertIsNone(e.prev_kv)
        self.assertEqual(self.marker(w, b"pd/z"), [])
        self.assertEqual(w.last_revision, r3 + 2)       # the marker, after other/a

    def test_prev_kv(self):
        r1 = self.c.Set(key=b"prev/a", value=b"1").revision
        w = self.watch(prefix=b"prev/", prev_kv=True)
        r2 = self.c.Set(key=b"prev/a", value=b"2").revision
        r3 = self.c.Clear(key=b"prev/a").revision
        r4 = self.c.Set(key=b"prev/b", value=b"new").revision
        put, delete, created = self.events(w, 3)
        self.assertEqual(put.kv, kvstore.KeyValue(b"prev/a", b"2", r1, r2, 2, 0))
        self.assertEqual((put.prev_kv.key, put.prev_kv.value, put.prev_kv.create_revision,
                          put.prev_kv.mod_revision, put.prev_kv.version),
                         (b"prev/a", b"1", r1, r1, 1))
        self.assertEqual((delete.kv.mod_revision, delete.prev_kv.value,
                          delete.prev_kv.mod_revision, delete.prev_kv.version), (r3, b"2", r2, 2))
        self.assertEqual(created.revision, r4)
        self.assertIsNone(created.prev_kv)              # nothing before it

    def test_key_range_and_open_range(self):
        one = self.watch(key=b"sel/b")
        some = self.watch(key=b"sel/b", end=b"sel/d")
        rest = self.watch(key=b"sel/c", end=b"\x00")
        for k in (b"sel/a", b"sel/b", b"sel/c", b"sel/d"):
            self.c.set(k, b"v")
        self.c.set(b"sel/b", b"last")
        self.assertEqual([(e.kv.key, e.kv.value) for e in self.events(one, 2)],
                         [(b"sel/b", b"v"), (b"sel/b", b"last")])
        self.assertEqual([e.kv.key for e in self.events(some, 3)],
                         [b"sel/b", b"sel/c", b"sel/b"])
        self.assertEqual([e.kv.key for e in self.events(rest, 2)], [b"sel/c", b"sel/d"])
        self.assertEqual(self.marker(rest, b"sel/z"), [])

    def test_selectors_the_server_refuses(self):
        for kwargs in ({}, {"prefix": b"p", "key": b"k"}, {"prefix": b"p", "end": b"e"},
                       {"end": b"e"}):
            with self.subTest(**kwargs), self.assertRaises(kvstore.InvalidArgument):
                self.c.watch(**kwargs)
        self.assertEqual(self.c.ping(), "PONG")          # the connection goes on

    def test_replay_from_a_past_revision(self):
        r1 = self.c.Set(key=b"replay/a", value=b"1").revision
        r2 = self.c.Set(key=b"replay/b", value=b"2").revision
        r3 = self.c.Clear(key=b"replay/a").revision
        w = self.watch(prefix=b"replay/", start_revision=r2)
        r4 = self.c.Set(key=b"replay/c", value=b"3").revision
        self.assertEqual([brief(e) for e in self.events(w, 3)],
                         [("PUT", b"replay/b", b"2", r2, False),
                          ("DELETE", b"replay/a", b"", r3, False),
                          ("PUT", b"replay/c", b"3", r4, False)])
        w = self.watch(prefix=b"replay/", start_revision=r1, prev_kv=True)
        first = self.events(w, 4)
        self.assertEqual([e.revision for e in first], [r1, r2, r3, r4])
        self.assertEqual(first[2].prev_kv.value, b"1")

    def test_a_txn_is_one_revision(self):
        w = self.watch(prefix=b"txn/")
        r = (self.c.txn().then(t.set(b"txn/a", b"1"), t.set(b"txn/b", b"2"),
                                t.clear(b"txn/none")).commit())
        self.assertEqual([(e.kv.key, e.revision) for e in self.events(w, 2)],
                         [(b"txn/a", r.revision), (b"txn/b", r.revision)])
        n = self.c.clear_range(prefix=b"txn/")
        self.assertEqual(n, 2)
        deletes = self.events(w, 2)
        self.assertEqual({e.type for e in deletes}, {"DELETE"})
        self.assertEqual([e.kv.key for e in deletes], [b"txn/a", b"txn/b"])
        self.assertEqual(deletes[0].revision, deletes[1].revision)

    def test_put_carries_the_ttl_and_expiry_is_a_delete(self):
        w = self.watch(prefix=b"wexp/", prev_kv=True)
        r = self.c.Set(key=b"wexp/a", value=b"v", ttl_ms=LONG).revision
        [put] = self.events(w, 1)
        self.assertEqual((put.revision, put.type), (r, "PUT"))
        self.assertTrue(0 < put.kv.ttl_ms <= LONG, put.kv.ttl_ms)
        self.c.set(b"wexp/b", b"v", ttl_ms=SHORT)
        put, gone = self.events(w, 2)
        self.assertEqual((put.kv.key, gone.type, gone.kv.key, gone.expired),
                         (b"wexp/b", "DELETE", b"wexp/b", True))
        self.assertGreater(gone.revision, put.revision)
        self.assertEqual(gone.prev_kv.value, b"v")
        with self.assertRaises(kvstore.KeyNotFound):
            self.c.get(b"wexp/b")

    def test_touch_makes_no_event(self):
        self.c.set(b"touch/a", b"v")
        w = self.watch(prefix=b"touch/")
        self.assertTrue(self.c.touch(b"touch/a", LONG))
        self.assertEqual(self.marker(w, b"touch/z"), [])


class TestInterleaving(WatchTest):
    def test_stream_between_pipelined_calls(self):
        w = self.watch(prefix=b"mix/w/")
        p = self.c.pipeline()
        sets, gets = [], []
        for i in range(200):
            sets.append(p.Set(key=b"mix/w/%03d" % i, value=b"v%d" % i))
            p.set(b"mix/other/%03d" % i, b"x")
            gets.append(p.get(b"mix/w/%03d" % i))
        p.execute()
        revisions = [s.result().revision for s in sets]
        self.assertEqual([g.result() for g in gets], [b"v%d" % i for i in range(200)])
        events = self.events(w, 200)
        self.assertEqual([(e.kv.key, e.revision) for e in events],
                         [(b"mix/w/%03d" % i, revisions[i]) for i in range(200)])

    def test_events_wait_while_calls_run(self):
        w = self.watch(prefix=b"calls/")
        for i in range(50):
            self.c.set(b"calls/%02d" % i, b"v")
            self.assertEqual(self.c.get(b"calls/%02d" % i), b"v")
            self.assertEqual(self.c.count(prefix=b"calls/"), i + 1)
        self.assertEqual([e.kv.key for e in self.events(w, 50)],
                         [b"calls/%02d" % i for i in range(50)])

    def test_a_reader_thread_next_to_calls(self):
        w = self.watch(prefix=b"thread/")
        got, failed = [], []

        def read():
            try:
                for event in w:
                    got.append(event.kv.key)
                    if len(got) == 30:
                        return
            except Exception as exc:  # reported below
                failed.append(exc)
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        for i in range(30):
            self.c.set(b"thread/%02d" % i, b"v")
            self.assertEqual(self.c.get(b"thread/%02d" % i), b"v")
        reader.join(WAIT)
        self.assertFalse(reader.is_alive(), "the reader thread did not see 30 events")
        self.assertEqual(failed, [])
        self.assertEqual(got, [b"thread/%02d" % i for i in range(30)])

    def test_watches_on_two_connections(self):
        other = kvstore.Client(server.endpoint, timeout=10)
        self.addCleanup(other.close)
        mine = self.watch(prefix=b"two/")
        theirs = self.watch(prefix=b"two/", client=other)
        self.assertNotEqual(mine.watch_id, theirs.watch_id)
        other.set(b"two/a", b"v")
        self.assertEqual(self.events(mine, 1)[0].kv.key, b"two/a")
        self.assertEqual(self.events(theirs, 1)[0].kv.key, b"two/a")


class TestCancel(WatchTest):
    def test_cancel(self):
        before = self.watchers()
        w = self.c.watch(prefix=b"cancel/")
        self.assertEqual(self.watchers(), before + 1)
        self.c.set(b"cancel/a", b"v")
        self.assertEqual(self.events(w, 1)[0].kv.key, b"cancel/a")
        w.cancel()
        self.assertTrue(w.closed)
        self.assertEqual(self.watchers(), before)
        self.c.set(b"cancel/b", b"v")
        self.assertEqual(list(w), [])
        self.assertIsNone(w.next_event(timeout=0))
        w.cancel()                                        # again: nothing to do
        with self.assertRaises(kvstore.KeyNotFound):      # the server forgot it
            self.c.CancelWatch(watch_id=w.watch_id)

    def test_with_block_cancels(self):
        before = self.watchers()
        with self.c.watch(key=b"cancel/with") as w:
            self.assertEqual(self.watchers(), before + 1)
        self.assertTrue(w.closed)
        self.assertEqual(self.watchers(), before)

    def test_unknown_and_foreign_ids_are_not_found(self):
        other = kvstore.Client(server.endpoint, timeout=10)
        self.addCleanup(other.close)
        w = self.watch(prefix=b"foreign/")
        with self.assertRaises(kvstore.KeyNotFound):
            other.CancelWatch(watch_id=w.watch_id)
        with self.assertRaises(kvstore.KeyNotFound):
            self.c.CancelWatch(watch_id=2 ** 63)
        self.c.set(b"foreign/a", b"v")                    # still watching
        self.assertEqual(self.events(w, 1)[0].kv.key, b"foreign/a")

    def test_closing_the_connection_ends_its_watches(self):
        before = self.watchers()
        other = kvstore.Client(server.endpoint, timeout=10)
        w = other.watch(prefix=b"closed/")
        other.watch(prefix=b"closed/")
        self.assertEqual(self.watchers(), before + 2)
        other.close()
        wait_for("the server to end the closed connection's watches",
                 lambda: self.watchers() == before, timeout=WAIT)
        with self.assertRaises(kvstore.Unavailable):
            next(w)


class TestCompacted(unittest.TestCase):
    def test_a_start_older_than_the_history(self):
        c = kvstore.Client(small.endpoint, timeout=10)
        self.addCleanup(c.close)
        # An open watch, so the server keeps a history (it may keep none
        # while nobody watches: a start then is compacted too).
        keeper = c.watch(prefix=b"cmp-keeper/")
        self.addCleanup(keeper.close)
        revisions = [c.Set(key=b"cmp/%d" % i, value=b"v").revision for i in range(6)]
        w = c.watch(prefix=b"cmp/", start_revision=revisions[0])
        with self.assertRaises(kvstore.WatchCanceled) as cm:
            w.next_event(timeout=WAIT)
        e = cm.exception
        self.assertTrue(e.compacted)
        self.assertEqual(e.watch_id, w.watch_id)
        self.assertGreater(e.compact_revision, revisions[0])
        self.assertLessEqual(e.compact_revision, revisions[-1])    # two events are kept
        self.assertTrue(e.cancel_reason)
        self.assertTrue(w.closed)
        self.assertEqual(c.Stats().watch_history_oldest, e.compact_revision)
        # From the revision it names, the history replays.
        want = [r for r in revisions if r >= e.compact_revision]
        with c.watch(prefix=b"cmp/", start_revision=e.compact_revision) as again:
            replayed = [again.next_event(timeout=WAIT) for _ in want]
            self.assertEqual([ev.revision for ev in replayed], want)


class TestAsync(unittest.TestCase):
    def test_watch_with_asyncio(self):
        async def main():
            async with await kvstore.aio.connect(server.endpoint, timeout=10) as c:
                async with c.watch(prefix=b"aio/w/", prev_kv=True) as w:
                    self.assertGreater(w.watch_id, 0)
                    # Calls in flight together, the events coming between them.
                    revisions = await asyncio.gather(
                        *(c.Set(key=b"aio/w/%d" % i, value=b"v") for i in range(20)))
                    values = await asyncio.gather(*(c.get(b"aio/w/%d" % i) for i in range(20)))
                    self.assertEqual(values, [b"v"] * 20)
                    got = []
                    for _ in range(20):
                        event = await w.next_event(timeout=WAIT)
                        self.assertIsNotNone(event)
                        got.append(event.revision)
                    self.assertEqual(sorted(got), sorted(r.revision for r in revisions))
                    self.assertEqual(got, sorted(got))
                    await c.set(b"aio/w/exp", b"v", ttl_ms=SHORT)

                    async def until_delete():
                        seen = []
                        async for event in w:
                            seen.append((event.type, event.kv.key, event.expired))
                            if event.type == "DELETE":
                                return seen
                    seen = await asyncio.wait_for(until_delete(), WAIT)
                    self.assertEqual(seen, [("PUT", b"aio/w/exp", False),
                                            ("DELETE", b"aio/w/exp", True)])
                self.assertTrue(w.closed)
                with self.assertRaises(kvstore.KeyNotFound):
                    await c.CancelWatch(watch_id=w.watch_id)
                with self.assertRaises(kvstore.InvalidArgument):
                    await c.watch()
                async with await kvstore.aio.connect(small.endpoint, timeout=10) as s:
                    for i in range(5):
                        await s.set(b"aio/cmp", b"%d" % i)
                    async def drain():
                        async for _event in s.watch(prefix=b"aio/", start_revision=1):
                            pass
                    with self.assertRaises(kvstore.WatchCanceled) as cm:
                        await asyncio.wait_for(drain(), WAIT)
                    self.assertTrue(cm.exception.compacted)
        asyncio.run(main())


if __name__ == "__main__":
    unittest.main()
