"""A conditional write against a server before protocol v2: such a server
does not know if_mod_revision, skips it and writes, answering as for a
plain write. cas() and clear(if_mod_revision=...) must not report that as
a success. Tests cannot start an old kvstored, so FakeV1Server plays one:
a socket server in a thread that speaks the varint-framed RpcRequest /
RpcResponse envelope (docs/PROTOCOL.md, "Writing a client")."""

import unittest

import kvstore
from kvstore import pb
from kvstore.framing import FrameReader, frame
from threadserver import ThreadServer

PRE_V2 = ("the server does not support conditional writes (a server before protocol v2): "
          "the write was applied without its check")


class FakeV1Server(ThreadServer):
    """Answers Set with an empty SetResponse and Clear with found = true
    (but for the key b"absent"), the old value b"old" and no revision;
    Ping with PONG; anything else UNIMPLEMENTED. REQUESTS records the
    (method, payload) of every call."""

    def __init__(self):
        self.requests = []
        super().__init__()

    def serve(self, conn):
        reader = FrameReader()
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                for body in reader.feed(data):
                    request = pb.RpcRequest.FromString(body)
                    self.requests.append((request.method, request.payload))
                    conn.sendall(frame(self._answer(request).SerializeToString()))

    @staticmethod
    def _answer(request):
        response = pb.RpcResponse(id=request.id)
        if request.method == "/kvstore.v1.KV/Set":
            response.payload = pb.SetResponse().SerializeToString()
        elif request.method == "/kvstore.v1.KV/Clear":
            found = pb.ClearRequest.FromString(request.payload).key != b"absent"
            response.payload = pb.ClearResponse(found=found, value=b"old" if found else b"")\
                .SerializeToString()
        elif request.method == "/kvstore.v1.KV/Ping":
            response.payload = pb.PingResponse(message="PONG").SerializeToString()
        else:
            response.code = kvstore.status_code("UNIMPLEMENTED")
            response.message = "unknown method"
        return response


class TestServerBeforeV2(unittest.TestCase):
    def setUp(self):
        self.server = FakeV1Server()
        self.addCleanup(self.server.close)
        self.c = kvstore.Client(self.server.endpoint, timeout=10)
        self.addCleanup(self.c.close)

    def assert_pre_v2(self, cm, method):
        e = cm.exception
        self.assertEqual((e.code, e.code_name, e.message, e.method),
                         (12, "UNIMPLEMENTED", PRE_V2, "/kvstore.v1.KV/" + method))

    def test_cas_is_an_error(self):
        for rev in (0, 7):
            with self.subTest(mod_revision=rev), self.assertRaises(kvstore.Unimplemented) as cm:
                self.c.cas(b"k", b"v", rev)
            self.assert_pre_v2(cm, "Set")
            sent = pb.SetRequest.FromString(self.server.requests[-1][1])
            self.assertTrue(sent.HasField("if_mod_revision"))
            self.assertEqual(sent.if_mod_revision, rev)

    def test_conditional_clear_is_an_error(self):
        with self.assertRaises(kvstore.Unimplemented) as cm:
            self.c.clear(b"k", if_mod_revision=3)
        self.assert_pre_v2(cm, "Clear")
        # Nothing found: nothing written, so no revision is right.
        self.assertIsNone(self.c.clear(b"absent", if_mod_revision=0))

    def test_in_a_pipeline(self):
        p = self.c.pipeline()
        cas, clear, plain = p.cas(b"k", b"v", 1), p.clear(b"k", if_mod_revision=1), p.set(b"k", b"v")
        results = p.execute(raise_on_error=False)
        self.assertIsInstance(results[0], kvstore.Unimplemented)
        self.assertIsInstance(results[1], kvstore.Unimplemented)
        self.assertEqual(str(cas.exception()), "/kvstore.v1.KV/Set: UNIMPLEMENTED (12): " + PRE_V2)
        self.assertIsInstance(clear.exception(), kvstore.Unimplemented)
        self.assertIsNone(plain.result())

    def test_plain_writes_are_fine(self):
        # Revision 0 is all such a server can say of a plain write.
        self.assertIsNone(self.c.set(b"k", b"v"))
        self.assertEqual(self.c.clear(b"k"), b"old")
        self.assertEqual(self.c.Set(key=b"k", value=b"v").revision, 0)


if __name__ == "__main__":
    unittest.main()
