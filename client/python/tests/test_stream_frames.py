"""Stream frames (RpcResponse.stream = true) against a fake server that
places them exactly where a test wants: before the answer of another call,
with the id of a call in flight, with an id nobody watches. The client must
route them to their watch by id and never take one for an answer. The
live behaviour of watches is test_watch.py's; this one fixes the order."""

import asyncio
import threading
import unittest

import kvstore
import kvstore.aio
from kvstore import pb
from kvstore.framing import FrameReader, frame
from threadserver import ThreadServer

PATH = "/kvstore.v1.KV/"


def put(key, value, revision):
    return pb.WatchEvent(type=pb.WatchEvent.PUT, kv=pb.KeyValue(
        key=key, value=value, create_revision=revision, mod_revision=revision, version=1))


class FakeWatchServer(ThreadServer):
    """Watch: answers watch_id 7 (watch_id 8 for a second one...), keeps
    the request's id. Set: first a stream frame of the PUT for the newest
    watch, then one with stream = true but the Set's own id and one for
    id 999 (both to be ignored), then the answer (revision n). Get: the
    value last set. CancelWatch: the canceled frame, then the answer. A Set
    of b"compact" ends the newest watch as compacted (compact_revision 5)."""

    def serve(self, conn):
        reader, watches, store, revision = FrameReader(), [], {}, 0
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                for body in reader.feed(data):
                    request = pb.RpcRequest.FromString(body)
                    out = []
                    method = request.method[len(PATH):]
                    answer = pb.RpcResponse(id=request.id)
                    if method == "Watch":
                        watches.append((request.id, 7 + len(watches)))
                        answer.payload = pb.WatchResponse(watch_id=watches[-1][1]) \
                            .SerializeToString()
                    elif method == "Set":
                        set_req = pb.SetRequest.FromString(request.payload)
                        revision += 1
                        store[set_req.key] = set_req.value
                        if watches:
                            call_id, watch_id = watches[-1]
                            w = pb.WatchResponse(watch_id=watch_id)
                            if set_req.key == b"compact":
                                w.canceled, w.cancel_reason, w.compact_revision = \
                                    True, "compacted", 5
                            else:
                                w.events.append(put(set_req.key, set_req.value, revision))
                            out.append(pb.RpcResponse(id=call_id, stream=True,
                                                      payload=w.SerializeToString()))
                            bogus = pb.WatchResponse(watch_id=watch_id, events=[
                                put(b"bogus", b"x", 999)]).SerializeToString()
                            out.append(pb.RpcResponse(id=request.id, stream=True, payload=bogus))
                            out.append(pb.RpcResponse(id=999, stream=True, payload=bogus))
                        answer.payload = pb.SetResponse(key=set_req.key, revision=revision) \
                            .SerializeToString()
                    elif method == "Get":
                        key = pb.GetRequest.FromString(request.payload).key
                        answer.payload = pb.GetResponse(value=store.get(key, b""), found=True) \
                            .SerializeToString()
                    elif method == "CancelWatch":
                        watch_id = pb.CancelWatchRequest.FromString(request.payload).watch_id
                        for call_id, wid in watches:
                            if wid == watch_id:
                                out.append(pb.RpcResponse(id=call_id, stream=True, payload=(
                                    pb.WatchResponse(watch_id=wid, canceled=True,
                                                     cancel_reason="canceled by CancelWatch")
                                    .SerializeToString())))
                        answer.payload = b""
                    else:
                        answer.code = kvstore.status_code("UNIMPLEMENTED")
                    out.append(answer)
                    conn.sendall(b"".join(frame(r.SerializeToString()) for r in out))


class TestStreamFrames(unittest.TestCase):
    def setUp(self):
        self.server = FakeWatchServer()
        self.addCleanup(self.server.close)
        self.c = kvstore.Client(self.server.endpoint, timeout=10)
        self.addCleanup(self.c.close)

    def test_frames_between_answers_go_to_the_watch(self):
        w = self.c.watch(prefix=b"k")
        self.assertEqual(w.watch_id, 7)
        for i in range(5):
            self.assertIsNone(self.c.set(b"k%d" % i, b"v%d" % i))
            self.assertEqual(self.c.get(b"k%d" % i), b"v%d" % i)
        with self.c.pipeline() as p:
            for i in range(5, 10):
                p.set(b"k%d" % i, b"v%d" % i)
        self.assertEqual(p.results, [None] * 5)
        events = [w.next_event(timeout=10) for _ in range(10)]
        self.assertEqual([(e.type, e.kv.key, e.kv.value, e.revision) for e in events],
                         [("PUT", b"k%d" % i, b"v%d" % i, i + 1) for i in range(10)])
        self.assertEqual(w.last_revision, 10)
        self.assertIsNone(w.next_event(timeout=0.05))   # the bogus frames went nowhere
        w.cancel()
        self.assertTrue(w.closed)
        self.assertEqual(list(w), [])

    def test_events_of_a_watch_dropped_without_close_are_not_kept(self):
        w = self.c.watch(prefix=b"k")
        call_id = w._call_id
        del w
        self.c.set(b"k", b"v")
        self.assertNotIn(call_id, self.c._conn._streams)

    def test_server_cancel_raises_after_the_events_before_it(self):
        w = self.c.watch(prefix=b"")
        self.c.set(b"a", b"1")
        self.c.set(b"compact", b"x")
        self.assertEqual(next(w).kv.key, b"a")
        with self.assertRaises(kvstore.WatchCanceled) as cm:
            next(w)
        e = cm.exception
        self.assertEqual((e.watch_id, e.cancel_reason, e.compact_revision, e.compacted),
                         (7, "compacted", 5, True))
        self.assertIn("compacted", str(e))
        with self.assertRaises(kvstore.WatchCanceled):
            next(w)
        w.close()            # nothing to cancel: no error
        self.assertEqual(list(w), [])

    def test_a_thread_waiting_for_events_lets_other_calls_go(self):
        w = self.c.watch(prefix=b"")
        got, failed = [], []

        def reader():
            try:
                for event in w:
                    got.append(event.kv.key)
                    if len(got) == 20:
                        return
            except Exception as exc:  # reported below
                failed.append(exc)
        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        for i in range(20):
            self.c.set(b"t%02d" % i, b"v")
            self.assertEqual(self.c.get(b"t%02d" % i), b"v")
        thread.join(20)
        self.assertFalse(thread.is_alive())
        self.assertEqual(failed, [])
        self.assertEqual(got, [b"t%02d" % i for i in range(20)])

    def test_two_watches_read_from_two_threads(self):
        first = self.c.watch(prefix=b"")
        second = self.c.watch(prefix=b"")      # the fake sends to the newest
        out = {}

        def wait(name, watch, timeout):
            out[name] = watch.next_event(timeout=timeout)
        t1 = threading.Thread(target=wait, args=("first", first, 1.0), daemon=True)
        t2 = threading.Thread(target=wait, args=("second", second, 20), daemon=True)
        t1.start()
        t2.start()
        self.c.set(b"x", b"1")
        t1.join(20)
        t2.join(20)
        self.assertIsNone(out["first"])
        self.assertEqual(out["second"].kv.key, b"x")

    def test_client_close_ends_the_iteration_with_unavailable(self):
        w = self.c.watch(prefix=b"")
        self.c.close()
        with self.assertRaises(kvstore.Unavailable):
            next(w)


class TestStreamFramesAsync(unittest.TestCase):
    def setUp(self):
        self.server = FakeWatchServer()
        self.addCleanup(self.server.close)

    def test_frames_between_answers_go_to_the_watch(self):
        async def main():
            async with await kvstore.aio.connect(self.server.endpoint, timeout=10) as c:
                w = await c.watch(prefix=b"k")
                self.assertEqual(w.watch_id, 7)
                await asyncio.gather(*(c.set(b"k%d" % i, b"v%d" % i) for i in range(10)))
                self.assertEqual(await c.get(b"k3"), b"v3")
                seen = []
                async for event in w:
                    seen.append(event.kv.key)
                    if len(seen) == 10:
                        break
                self.assertEqual(sorted(seen), sorted(b"k%d" % i for i in range(10)))
                self.assertIsNone(await w.next_event(timeout=0.05))
                await w.cancel()
                self.assertEqual([e async for e in w], [])
                async with c.watch(prefix=b"") as w2:
                    await c.set(b"compact", b"x")
                    with self.assertRaises(kvstore.WatchCanceled) as cm:
                        await w2.next_event(timeout=10)
                    self.assertEqual(cm.exception.compact_revision, 5)
        asyncio.run(main())


if __name__ == "__main__":
    unittest.main()
