"""test_expiry_watch - the rules of expiry and watch (issue 14, v2.1), on the
wire, against a live kvstored: once per engine ($KVSTORED_ENGINE, as every
Python suite: tests/support/kvstored.py).

Speaks raw frames (tests/support/wire.py: a varint length, then an
RpcRequest or RpcResponse), so that every byte rule of the stream is
checked as a client would see it: which frames carry stream = true, their
ids, what comes before what. Waits
are for events, with generous deadlines; no assertion depends on how fast
this machine is (TTLs are either far longer than the test or short ones
waited for until they are gone).
"""

import os
import time
import unittest

import wire
from kvstore import pb
from kvstored import Server, ServerTest

ENGINE = os.environ.get("KVSTORED_ENGINE", "memory")
DEADLINE = 30.0         # seconds any single wait may take
LONG_TTL = 3600 * 1000  # never expires during a test
OK, INVALID, NOT_FOUND, EXHAUSTED = 0, 3, 5, 8


class Conn(wire.Connection):
    """One connection (tests/support/wire.py) that also keeps the stream
    frames met while waiting for an answer in .streams, by arrival."""

    def __init__(self, endpoint):
        super().__init__(endpoint, timeout=DEADLINE)
        self.streams = []

    def frame(self, timeout=DEADLINE):
        """The next frame (an RpcResponse), answer or stream frame."""
        return self.recv(timeout)

    def answer(self, rid, resp_type):
        """The answer to request RID; stream frames met on the way are kept."""
        while True:
            r = self.frame()
            if r.stream:
                self.streams.append(r)
                continue
            assert r.id == rid, "answer %d came before %d's" % (r.id, rid)
            if r.code != OK:
                return r.code, r.message
            out = resp_type()
            out.ParseFromString(r.payload)
            return OK, out

    def call(self, method, msg, resp_type):
        return self.answer(self.send(method, msg), resp_type)

    def ok(self, method, msg, resp_type):
        code, out = self.call(method, msg, resp_type)
        assert code == OK, (method, code, out)
        return out

    def watch(self, **kw):
        rid = self.send("Watch", pb.WatchRequest(**kw))
        code, out = self.answer(rid, pb.WatchResponse)
        assert code == OK, (code, out)
        assert out.watch_id > 0 and not out.events and not out.canceled
        return rid, out.watch_id

    def stream(self, timeout=DEADLINE):
        """The next stream frame, as (RpcResponse, WatchResponse)."""
        if self.streams:
            r = self.streams.pop(0)
        else:
            r = self.frame(timeout)
            assert r.stream, "an answer (id %d) where a stream frame was due" % r.id
        w = pb.WatchResponse()
        w.ParseFromString(r.payload)
        return r, w

    def events(self, n, timeout=DEADLINE):
        """The next N events of any watch of this connection, with the
        frames they came in."""
        out, frames = [], []
        end = time.monotonic() + timeout
        while len(out) < n:
            r, w = self.stream(max(0.1, end - time.monotonic()))
            frames.append(w)
            out.extend(w.events)
        return out, frames


class Base(ServerTest):
    CONN = Conn

    def set(self, c, key, value, **kw):
        return c.ok("Set", pb.SetRequest(key=key, value=value, **kw), pb.SetResponse)

    def get(self, c, key):
        return c.call("Get", pb.GetRequest(key=key), pb.GetResponse)

    def stats(self, c):
        return c.ok("Stats", pb.StatsRequest(), pb.StatsResponse)

    def wait_gone(self, c, key):
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            if self.get(c, key)[0] == NOT_FOUND:
                return
            time.sleep(0.02)
        self.fail("%r did not expire within %.0f s" % (key, DEADLINE))


class TestTTL(Base):
    def test_set_with_ttl_reads_back_its_time_left(self):
        c = self.conn()
        self.set(c, b"a", b"1", ttl_ms=LONG_TTL)
        code, g = self.get(c, b"a")
        self.assertEqual(code, OK)
        self.assertTrue(0 < g.ttl_ms <= LONG_TTL, g.ttl_ms)
        self.assertGreater(g.ttl_ms, LONG_TTL - DEADLINE * 1000)
        r = c.ok("Range", pb.RangeRequest(prefix=b"a"), pb.RangeResponse)
        self.assertTrue(0 < r.kvs[0].ttl_ms <= LONG_TTL)
        self.assertEqual(self.stats(c).keys_with_ttl, 1)

    def test_set_without_ttl_removes_it_unless_keep_ttl(self):
        c = self.conn()
        self.set(c, b"k", b"1", ttl_ms=LONG_TTL)
        self.set(c, b"k", b"2", keep_ttl=True)
        code, g = self.get(c, b"k")
        self.assertEqual((g.value, g.version), (b"2", 2))
        self.assertTrue(0 < g.ttl_ms <= LONG_TTL)
        self.set(c, b"k", b"3")
        self.assertEqual(self.get(c, b"k")[1].ttl_ms, 0)
        self.set(c, b"new", b"x", keep_ttl=True)        # nothing to keep
        self.assertEqual(self.get(c, b"new")[1].ttl_ms, 0)
        self.assertEqual(self.stats(c).keys_with_ttl, 0)

    def test_bad_ttls_are_refused(self):
        c = self.conn()
        code, msg = c.call("Set", pb.SetRequest(key=b"k", value=b"v", ttl_ms=10**12 + 1),
                           pb.SetResponse)
        self.assertEqual(code, INVALID, msg)
        self.assertIn("ttl_ms", msg)
        code, msg = c.call("Set", pb.SetRequest(key=b"k", value=b"v", ttl_ms=5, keep_ttl=True),
                           pb.SetResponse)
        self.assertEqual(code, INVALID, msg)
        code, msg = c.call("Touch", pb.TouchRequest(key=b"k", ttl_ms=10**12 + 1),
                           pb.TouchResponse)
        self.assertEqual(code, INVALID, msg)
        self.set(c, b"k", b"v", ttl_ms=10**12)          # the maximum itself is fine
        self.assertEqual(self.get(c, b"k")[0], OK)

    def test_touch_changes_the_ttl_and_nothing_else(self):
        c = self.conn()
        rev = self.set(c, b"t", b"v").revision
        t = c.ok("Touch", pb.TouchRequest(key=b"t", ttl_ms=LONG_TTL), pb.TouchResponse)
        self.assertTrue(t.found)
        code, g = self.get(c, b"t")
        self.assertEqual((g.value, g.mod_revision, g.version, g.revision), (b"v", rev, 1, rev))
        self.assertTrue(0 < g.ttl_ms <= LONG_TTL)
        c.ok("Touch", pb.TouchRequest(key=b"t", ttl_ms=0), pb.TouchResponse)
        self.assertEqual(self.get(c, b"t")[1].ttl_ms, 0)
        self.assertEqual(self.stats(c).revision, rev)
        t = c.ok("Touch", pb.TouchRequest(key=b"missing", ttl_ms=5), pb.TouchResponse)
        self.assertFalse(t.found)

    def test_an_expired_key_is_gone_for_every_read(self):
        c = self.conn()
        self.set(c, b"p/keep", b"k")
        rev = self.set(c, b"p/gone", b"g", ttl_ms=100).revision
        self.wait_gone(c, b"p/gone")
        r = c.ok("Range", pb.RangeRequest(prefix=b"p/"), pb.RangeResponse)
        self.assertEqual([kv.key for kv in r.kvs], [b"p/keep"])
        self.assertEqual(r.count, 1)
        txn = pb.TxnRequest(compare=[pb.Compare(key=b"p/gone", target=pb.Compare.VERSION,
                                                op=pb.Compare.EQUAL, number=0)])
        self.assertTrue(c.ok("Txn", txn, pb.TxnResponse).succeeded)
        self.assertFalse(c.ok("Touch", pb.TouchRequest(key=b"p/gone", ttl_ms=1),
                              pb.TouchResponse).found)
        # its removal is a write of its own, counted
        end = time.monotonic() + DEADLINE
        while self.stats(c).expired_keys_total < 1 and time.monotonic() < end:
            time.sleep(0.02)
        st = self.stats(c)
        self.assertEqual(st.expired_keys_total, 1)
        self.assertEqual(st.keys, 1)
        self.assertEqual(st.revision, rev + 1)

    def test_a_write_to_an_expired_key_makes_a_new_key(self):
        c = self.conn()
        self.set(c, b"w", b"old", ttl_ms=50)
        self.wait_gone(c, b"w")
        rev = self.set(c, b"w", b"new").revision
        g = self.get(c, b"w")[1]
        self.assertEqual((g.value, g.create_revision, g.version, g.ttl_ms), (b"new", rev, 1, 0))

    def test_a_small_range_counts_right_among_many_expired_keys(self):
        # More keys expire than the range holds: its count walks the range
        # (expire.c), while the cycles may still be removing them.
        c = self.conn()
        for i in range(0, 3000, 500):
            for j in range(i, i + 500):
                c.send("Set", pb.SetRequest(key=b"x/%05d" % j, value=b"x", ttl_ms=200))
            for _ in range(500):
                self.assertEqual(c.frame().code, OK)
        self.set(c, b"y/a", b"1")
        self.set(c, b"y/b", b"2", ttl_ms=200)
        self.set(c, b"y/c", b"3")
        self.wait_gone(c, b"y/b")
        for _ in range(20):
            r = c.ok("Range", pb.RangeRequest(prefix=b"y/"), pb.RangeResponse)
            self.assertEqual(([kv.key for kv in r.kvs], r.count), ([b"y/a", b"y/c"], 2))
            cr = c.ok("Txn", pb.TxnRequest(success=[pb.TxnOp(range=pb.RangeRequest(
                prefix=b"y/", count_only=True))]), pb.TxnResponse)
            self.assertEqual(cr.results[0].range.count, 2)

    def test_many_keys_expire_in_bounded_batches_and_reads_stay_consistent(self):
        c = self.conn()
        n = 5000
        for i in range(0, n, 500):
            for j in range(i, i + 500):
                c.send("Set", pb.SetRequest(key=b"m/%05d" % j, value=b"x", ttl_ms=300))
            for _ in range(500):
                self.assertEqual(c.frame().code, OK)
        self.set(c, b"m/zz-stays", b"y")
        end = time.monotonic() + DEADLINE
        while True:
            r = c.ok("Range", pb.RangeRequest(prefix=b"m/", keys_only=True, limit=10000),
                     pb.RangeResponse)
            # the count and the page agree whatever expired in between
            self.assertEqual(r.count, len(r.kvs))
            if r.count == 1:
                break
            self.assertLess(time.monotonic(), end, "keys did not expire")
            time.sleep(0.05)
        self.assertEqual(r.kvs[0].key, b"m/zz-stays")
        end = time.monotonic() + DEADLINE
        while self.stats(c).expired_keys_total < n and time.monotonic() < end:
            time.sleep(0.05)
        st = self.stats(c)
        self.assertEqual((st.expired_keys_total, st.keys, st.keys_with_ttl), (n, 1, 0))


class TestWatch(Base):
    def test_answer_then_stream_frames_with_the_watch_id(self):
        w, c = self.conn(), self.conn()
        rid, wid = w.watch(key=b"k", prev_kv=True)
        r1 = self.set(c, b"k", b"v1").revision
        r2 = self.set(c, b"other", b"x").revision
        r3 = self.set(c, b"k", b"v2").revision
        r4 = c.ok("Clear", pb.ClearRequest(key=b"k"), pb.ClearResponse).revision
        evs, frames = w.events(3)
        for f in frames:
            self.assertEqual(f.watch_id, wid)
        self.assertEqual(len(frames), 3)
        put1, put2, dele = evs
        self.assertEqual((put1.type, put1.kv.key, put1.kv.value, put1.kv.create_revision,
                          put1.kv.mod_revision, put1.kv.version), (0, b"k", b"v1", r1, r1, 1))
        self.assertFalse(put1.HasField("prev_kv"))
        self.assertEqual((put2.kv.mod_revision, put2.kv.version, put2.prev_kv.value,
                          put2.prev_kv.mod_revision), (r3, 2, b"v1", r1))
        self.assertEqual((dele.type, dele.kv.key, dele.kv.mod_revision, dele.expired,
                          dele.prev_kv.value), (1, b"k", r4, False, b"v2"))
        self.assertLess(r2, r3)

    def test_stream_frames_interleave_with_pipelined_answers(self):
        c = self.conn()
        rid, wid = c.watch(prefix=b"p/")
        ids = [c.send("Set", pb.SetRequest(key=b"p/%d" % i, value=b"v%d" % i))
               for i in range(50)]
        answered, events = [], []
        while len(answered) < 50 or len(events) < 50:
            r = c.frame()
            if r.stream:
                self.assertEqual((r.id, r.code), (rid, OK))
                w = pb.WatchResponse()
                w.ParseFromString(r.payload)
                events.extend(w.events)
            else:
                answered.append(r.id)
        self.assertEqual(answered, ids)         # answers in request order
        revs = [e.kv.mod_revision for e in events]
        self.assertEqual(revs, sorted(revs))
        self.assertEqual([e.kv.key for e in events], [b"p/%d" % i for i in range(50)])

    def test_replay_from_a_past_revision_then_live(self):
        c, w = self.conn(), self.conn()
        w.watch(key=b"unrelated")               # the history starts here
        revs = [self.set(c, b"r/%d" % i, b"%d" % i).revision for i in range(5)]
        w2 = self.conn()
        w2.watch(prefix=b"r/", start_revision=revs[2])
        evs, _ = w2.events(3)
        self.assertEqual([e.kv.mod_revision for e in evs], revs[2:])
        live = self.set(c, b"r/live", b"l").revision
        evs, _ = w2.events(1)
        self.assertEqual(evs[0].kv.mod_revision, live)

    def test_a_start_older_than_the_history_is_canceled_as_compacted(self):
        self.server.stop()
        self.server = Server("--watch-history", "2")
        c, w = self.conn(), self.conn()
        w.watch(key=b"x")                       # the history starts here
        revs = [self.set(c, b"h/%d" % i, b"v").revision for i in range(10)]
        w2 = self.conn()
        rid, wid = w2.watch(prefix=b"h/", start_revision=revs[0])
        r, last = w2.stream()
        self.assertEqual((r.id, r.stream), (rid, True))
        self.assertTrue(last.canceled)
        self.assertEqual(last.watch_id, wid)
        self.assertIn("history", last.cancel_reason)
        self.assertEqual(last.compact_revision, revs[-2])   # the oldest kept
        # from the oldest kept, it works
        w3 = self.conn()
        w3.watch(prefix=b"h/", start_revision=last.compact_revision)
        evs, _ = w3.events(2)
        self.assertEqual([e.kv.mod_revision for e in evs], revs[-2:])
        st = self.stats(c)
        self.assertEqual(st.watch_history_oldest, revs[-2])

    def test_expiry_is_a_delete_event_marked_expired(self):
        w, c = self.conn(), self.conn()
        w.watch(prefix=b"e/", prev_kv=True)
        put = self.set(c, b"e/1", b"soon", ttl_ms=100).revision
        evs, _ = w.events(2)
        self.assertEqual((evs[0].type, evs[0].kv.ttl_ms), (0, 100))
        self.assertEqual((evs[1].type, evs[1].expired, evs[1].prev_kv.value), (1, True, b"soon"))
        self.assertGreater(evs[1].kv.mod_revision, put)

    def test_a_txn_and_a_clear_range_arrive_in_one_frame_each(self):
        w, c = self.conn(), self.conn()
        w.watch(prefix=b"t/")
        ops = [pb.TxnOp(set=pb.SetRequest(key=b"t/%d" % i, value=b"v")) for i in range(3)]
        rev = c.ok("Txn", pb.TxnRequest(success=ops), pb.TxnResponse).revision
        evs, frames = w.events(3)
        self.assertEqual(len(frames), 1)
        self.assertEqual({e.kv.mod_revision for e in evs}, {rev})
        cr = c.ok("ClearRange", pb.ClearRangeRequest(prefix=b"t/"), pb.ClearRangeResponse)
        evs, frames = w.events(3)
        self.assertEqual(len(frames), 1)
        self.assertEqual([(e.type, e.kv.key, e.kv.mod_revision) for e in evs],
                         [(1, b"t/%d" % i, cr.revision) for i in range(3)])

    def test_cancel_sends_the_last_frame_before_its_answer(self):
        c = self.conn()
        rid, wid = c.watch(key=b"k")
        cid = c.send("CancelWatch", pb.CancelWatchRequest(watch_id=wid))
        r = c.frame()
        self.assertTrue(r.stream)
        w = pb.WatchResponse()
        w.ParseFromString(r.payload)
        self.assertTrue(w.canceled)
        self.assertEqual(c.answer(cid, pb.CancelWatchResponse)[0], OK)
        self.set(c, b"k", b"after")             # no frame for it
        code, msg = c.call("CancelWatch", pb.CancelWatchRequest(watch_id=wid),
                           pb.CancelWatchResponse)
        self.assertEqual(code, NOT_FOUND, msg)
        other = self.conn()
        rid2, wid2 = other.watch(key=b"k")
        self.assertEqual(c.call("CancelWatch", pb.CancelWatchRequest(watch_id=wid2),
                                pb.CancelWatchResponse)[0], NOT_FOUND)
        self.assertEqual(c.streams, [])

    def test_selections(self):
        c, w = self.conn(), self.conn()
        for bad in (dict(), dict(end=b"z"), dict(prefix=b"a", key=b"a"),
                    dict(prefix=b"a", end=b"b")):
            code, msg = w.call("Watch", pb.WatchRequest(**bad), pb.WatchResponse)
            self.assertEqual(code, INVALID, (bad, msg))
        w.watch(key=b"b", end=b"d")
        w.watch(key=b"c", end=b"\x00")          # no upper bound
        for k in (b"a", b"b", b"c", b"d", b"zz"):
            self.set(c, k, b"v")
        # [b, d) sees b and c; [c, no end) sees c, d and zz
        evs, _ = w.events(5)
        self.assertEqual(sorted(e.kv.key for e in evs), [b"b", b"c", b"c", b"d", b"zz"])

    def test_watches_per_connection_are_limited(self):
        w = self.conn()
        for i in range(1024):
            w.send("Watch", pb.WatchRequest(key=b"k%d" % i))
        for i in range(1024):
            self.assertEqual(w.frame().code, OK)
        code, msg = w.call("Watch", pb.WatchRequest(key=b"one-more"), pb.WatchResponse)
        self.assertEqual(code, EXHAUSTED, msg)
        self.assertEqual(self.stats(w).watchers, 1024)
        w.close()
        self.conns.remove(w)
        c = self.conn()
        end = time.monotonic() + DEADLINE
        while self.stats(c).watchers and time.monotonic() < end:
            time.sleep(0.02)
        self.assertEqual(self.stats(c).watchers, 0)

    def test_a_slow_watcher_is_canceled_and_the_server_serves_on(self):
        w, c = self.conn(), self.conn()
        rid, wid = w.watch(prefix=b"big/")
        value = b"x" * (1 << 20)
        for i in range(40):                     # 40 MiB of events, never read
            self.set(c, b"big/%d" % i, value)
        self.assertEqual(self.get(c, b"big/0")[0], OK)
        self.assertEqual(self.stats(c).watchers, 0)
        # reading now: events, then the last frame saying why
        while True:
            r, f = w.stream()
            if f.canceled:
                break
        self.assertIn("too slow", f.cancel_reason)
        self.assertEqual(f.watch_id, wid)
        # the connection still answers calls
        self.assertEqual(w.call("Ping", pb.PingRequest(), pb.PingResponse)[0], OK)


if __name__ == "__main__":
    unittest.main(verbosity=2)
