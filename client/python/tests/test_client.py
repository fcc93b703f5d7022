"""Round trips of every rpc, binary data, errors and pipelining (Client's
and RawConnection's), against one live kvstored shared by this module."""

import os
import socket
import threading
import unittest

from google.protobuf import descriptor_pb2, descriptor_pool

import kvstore
from kvstore import pb, stubs
from kvstore.framing import frame
from kvstored import Server

server = None


def setUpModule():
    global server
    server = Server()


def tearDownModule():
    status = server.stop()
    assert status == 0, "kvstored exited with %s after SIGTERM" % status


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.c = kvstore.Client(server.endpoint, timeout=10)
        self.addCleanup(self.c.close)


class TestRpcs(ClientTest):
    """Every rpc through the generic stubs, with generated messages."""

    def test_ping(self):
        self.assertEqual(self.c.Ping(pb.PingRequest()).message, "PONG")
        self.assertEqual(self.c.Ping(pb.PingRequest(message="hello")).message, "hello")

    def test_set_get_clear(self):
        answer = self.c.Set(pb.SetRequest(key=b"rpc-k", value=b"v1"))
        self.assertIsInstance(answer, pb.SetResponse)
        self.assertEqual(answer.key, b"rpc-k")
        self.assertEqual(self.c.Get(pb.GetRequest(key=b"rpc-k")).value, b"v1")
        self.c.Set(pb.SetRequest(key=b"rpc-k", value=b"v2"))
        self.assertEqual(self.c.Get(key=b"rpc-k").value, b"v2")
        cleared = self.c.Clear(pb.ClearRequest(key=b"rpc-k"))
        self.assertTrue(cleared.found)
        self.assertEqual(cleared.value, b"v2")
        cleared = self.c.Clear(pb.ClearRequest(key=b"rpc-k"))
        self.assertFalse(cleared.found)
        self.assertEqual(cleared.value, b"")

    def test_stats(self):
        self.c.set(b"stats-k", b"v")
        stats = self.c.Stats(pb.StatsRequest())
        self.assertIsInstance(stats, pb.StatsResponse)
        self.assertGreaterEqual(stats.keys, 1)
        self.assertGreaterEqual(stats.connections_current, 1)
        paths = [m.method for m in stats.methods]
        self.assertIn("/kvstore.v1.KV/Set", paths)

    def test_auth_is_ok_on_a_server_without_a_token(self):
        self.assertIsInstance(self.c.Auth(pb.AuthRequest(token=b"anything")), pb.AuthResponse)
        self.assertIsNone(self.c.auth("anything"))

    def test_every_rpc_of_the_descriptor_is_a_method(self):
        names = [m.name for m in kvstore.service.methods]
        self.assertLessEqual({"Ping", "Get", "Set", "Clear", "Stats", "Auth"}, set(names))
        for method in kvstore.service.methods:
            stub = getattr(self.c, method.name)
            self.assertTrue(callable(stub), method.name)
            self.assertIn("/kvstore.v1.KV/" + method.name, stub.__doc__)

    def test_wrong_request_type_is_refused(self):
        with self.assertRaises(TypeError):
            self.c.Get(pb.SetRequest(key=b"k"))

    def test_rpc_added_to_the_descriptor_needs_no_client_change(self):
        # A copy of kv.proto with one more rpc, in a pool of its own: the
        # class bound to it gets the method, and the call reaches the server.
        proto = descriptor_pb2.FileDescriptorProto()
        pb.DESCRIPTOR.CopyToProto(proto)
        method = proto.service[0].method.add()
        method.name, method.input_type, method.output_type = (
            "Echo", ".kvstore.v1.PingRequest", ".kvstore.v1.PingResponse")
        pool = descriptor_pool.DescriptorPool()
        pool.Add(proto)
        service = pool.FindServiceByName("kvstore.v1.KV")

        class Newer(kvstore.Client):
            pass
        self.assertFalse(hasattr(Newer, "Echo"))
        stubs.bind_service(Newer, service)
        with Newer(server.endpoint, timeout=10) as c:
            with self.assertRaises(kvstore.Unimplemented) as cm:
                c.Echo(pb.PingRequest(message="x"))
            self.assertIn("/kvstore.v1.KV/Echo", str(cm.exception))
            self.assertEqual(c.Ping(pb.PingRequest()).message, "PONG")


class TestHelpers(ClientTest):
    def test_plain_values(self):
        self.assertEqual(self.c.ping(), "PONG")
        self.assertEqual(self.c.ping("echo me"), "echo me")
        self.assertIsNone(self.c.set("helper-k", "héllo"))
        self.assertEqual(self.c.get(b"helper-k"), "héllo".encode())
        self.assertEqual(self.c.clear("helper-k"), "héllo".encode())
        self.assertIsNone(self.c.clear("helper-k"))

    def test_empty_value_is_a_value(self):
        self.c.set(b"empty-v", b"")
        self.assertEqual(self.c.get(b"empty-v"), b"")
        self.assertEqual(self.c.clear(b"empty-v"), b"")

    def test_binary_keys_and_values(self):
        key = b"\x00bin\xff\x00"
        value = bytes(range(256)) * 3 + b"\x00\xff"
        self.c.set(key, value)
        self.assertEqual(self.c.get(key), value)
        self.assertEqual(self.c.Get(pb.GetRequest(key=key)).value, value)
        with self.assertRaises(kvstore.KeyNotFound):
            self.c.get(b"\x00bin\xff")  # a prefix is another key
        self.assertEqual(self.c.clear(key), value)

    def test_four_mib_value(self):
        value = os.urandom(4 << 20)
        self.c.set(b"big", value)
        self.assertEqual(self.c.get(b"big"), value)
        self.assertEqual(self.c.clear(b"big"), value)

    def test_values_are_shared_between_clients(self):
        self.c.set(b"shared", b"1")
        with kvstore.connect(server.endpoint) as other:
            self.assertEqual(other.get(b"shared"), b"1")


class TestErrors(ClientTest):
    def test_get_missing_is_key_not_found(self):
        with self.assertRaises(kvstore.KeyNotFound) as cm:
            self.c.get(b"no such key")
        e = cm.exception
        self.assertEqual((e.code, e.code_name), (5, "NOT_FOUND"))
        self.assertEqual(e.message, "key not found")
        self.assertEqual(e.method, "/kvstore.v1.KV/Get")
        self.assertIsInstance(e, KeyError)
        self.assertIn("NOT_FOUND (5): key not found", str(e))

    def test_empty_key_is_invalid_argument(self):
        for call in (lambda: self.c.get(b""), lambda: self.c.set(b"", b"v"),
                     lambda: self.c.clear(b"")):
            with self.assertRaises(kvstore.InvalidArgument) as cm:
                call()
            self.assertEqual((cm.exception.code, cm.exception.code_name), (3, "INVALID_ARGUMENT"))

    def test_unknown_method_is_unimplemented(self):
        envelope = pb.RpcRequest(method="/kvstore.v1.KV/NoSuchMethod", payload=b"\x0a\x01k")
        answer = self.c.exchange(envelope)
        self.assertEqual(answer.code, pb.UNIMPLEMENTED)
        self.assertNotEqual(answer.id, 0)
        self.assertEqual(answer.payload, b"")
        with self.assertRaises(kvstore.Unimplemented) as cm:
            self.c.invoke("/kvstore.v1.KV/NoSuchMethod", b"")
        self.assertEqual((cm.exception.code, cm.exception.code_name), (12, "UNIMPLEMENTED"))
        self.assertEqual(self.c.ping(), "PONG")  # the connection keeps serving

    def test_method_paths_are_case_sensitive(self):
        with self.assertRaises(kvstore.Unimplemented):
            self.c.invoke("/kvstore.v1.KV/get", pb.GetRequest(key=b"k").SerializeToString())

    def test_payload_that_does_not_decode_is_invalid_argument(self):
        with self.assertRaises(kvstore.InvalidArgument):
            self.c.invoke("/kvstore.v1.KV/Get", b"\xff\xff\xff")
        self.assertEqual(self.c.ping(), "PONG")

    def test_invoke_returns_the_serialized_answer(self):
        raw = self.c.invoke("/kvstore.v1.KV/Ping", pb.PingRequest(message="raw").SerializeToString())
        self.assertEqual(pb.PingResponse.FromString(raw).message, "raw")

    def test_closed_client_fails_fast(self):
        self.c.close()
        self.assertTrue(self.c.closed)
        with self.assertRaises(kvstore.Unavailable) as cm:
            self.c.ping()
        self.assertIn("closed", str(cm.exception))

    def test_context_manager_closes(self):
        with kvstore.Client(server.endpoint) as c:
            self.assertEqual(c.ping(), "PONG")
        self.assertTrue(c.closed)

    def test_connection_refused_is_unavailable(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with self.assertRaises(kvstore.Unavailable) as cm:
            kvstore.Client("127.0.0.1:%d" % port, timeout=2)
        self.assertIn("could not connect", str(cm.exception))

    def test_bad_port_is_refused_before_connecting(self):
        # 70000 reached the socket layer as an OverflowError, " 80" and
        # "+80" were taken as 80.
        for endpoint, port in [("127.0.0.1:70000", "70000"), ("127.0.0.1:65536", "65536"),
                               ("[::1]:99999", "99999"), ("127.0.0.1:-1", "-1"),
                               ("127.0.0.1: 80", " 80"), ("127.0.0.1:+80", "+80")]:
            with self.subTest(endpoint=endpoint):
                with self.assertRaises(ValueError) as cm:
                    kvstore.Client(endpoint, timeout=2)
                self.assertEqual(str(cm.exception),
                                 "bad port %r in endpoint %r (want a number from 0 to 65535)"
                                 % (port, endpoint))
        host, port = server.endpoint.rsplit(":", 1)
        with kvstore.Client("%s:%05d" % (host, int(port)), timeout=10) as c:
            self.assertEqual(c.ping(), "PONG")


class TestPipeline(ClientTest):
    def test_thousand_pipelined_requests(self):
        with self.c.pipeline() as p:
            for i in range(1000):
                p.set(b"pipe-%d" % i, b"value-%d" % i)
        self.assertEqual(p.results, [None] * 1000)
        p = self.c.pipeline()
        replies = [p.get(b"pipe-%d" % i) for i in range(1000)]
        values = p.execute()
        self.assertEqual(values, [b"value-%d" % i for i in range(1000)])
        self.assertEqual(replies[999].result(), b"value-999")

    def test_mixed_rpcs_and_errors_in_one_batch(self):
        p = self.c.pipeline()
        p.Set(pb.SetRequest(key=b"mix", value=b"1"))
        missing = p.get(b"mix-missing")
        p.Ping(message="between")
        p.clear(b"mix")
        results = p.execute(raise_on_error=False)
        self.assertEqual(results[0].key, b"mix")
        self.assertIsInstance(results[1], kvstore.KeyNotFound)
        self.assertIsInstance(missing.exception(), kvstore.KeyNotFound)
        self.assertEqual(results[2].message, "between")
        self.assertEqual(results[3], b"1")

    def test_first_error_is_raised_after_all_calls_ran(self):
        p = self.c.pipeline()
        p.get(b"first-error-missing")
        p.set(b"first-error-after", b"ran")
        with self.assertRaises(kvstore.KeyNotFound):
            p.execute()
        self.assertEqual(self.c.get(b"first-error-after"), b"ran")

    def test_threads_share_a_client(self):
        errors = []

        def work(n):
            try:
                for i in range(200):
                    self.c.set(b"t%d-%d" % (n, i), b"%d" % i)
                    assert self.c.get(b"t%d-%d" % (n, i)) == b"%d" % i
            except Exception as exc:  # reported below
                errors.append(exc)
        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])


class TestRawConnection(unittest.TestCase):
    """RawConnection: requests pipelined without reading, answers read later
    and in order, bytes of one's own on the socket, a lost connection."""

    def setUp(self):
        self.conn = kvstore.RawConnection(server.endpoint, timeout=10)
        self.addCleanup(self.conn.close)

    def test_pipelined_calls_are_answered_in_order(self):
        ids = self.conn.send([("Set", pb.SetRequest(key=b"raw-k", value=b"v")),
                              ("Get", pb.GetRequest(key=b"raw-k")),
                              ("/kvstore.v1.KV/Get", pb.GetRequest(key=b"raw-absent")),
                              ("Ping", None)])
        self.assertEqual(ids, [1, 2, 3, 4])
        self.assertEqual(self.conn.next_id, 5)
        answers = [self.conn.receive() for _ in ids]
        self.assertEqual([a.id for a in answers], ids)
        self.assertEqual([a.code for a in answers], [0, 0, 5, 0])
        self.assertEqual(pb.GetResponse.FromString(answers[1].payload).value, b"v")
        self.assertEqual(answers[2].message, "key not found")
        self.assertEqual(pb.PingResponse.FromString(answers[3].payload).message, "PONG")

    def test_call_takes_a_serialized_request(self):
        answer = self.conn.call("Ping", pb.PingRequest(message="hi").SerializeToString())
        self.assertEqual(pb.PingResponse.FromString(answer.payload).message, "hi")

    def test_an_unknown_path_is_sent_as_is(self):
        self.assertEqual(self.conn.call("/kvstore.v1.KV/Nope").code, 12)   # UNIMPLEMENTED

    def test_a_frame_written_in_two_pieces_is_one_call(self):
        body = pb.RpcRequest(id=7, method="/kvstore.v1.KV/Ping").SerializeToString()
        whole = frame(body)
        self.conn.sock.sendall(whole[:5])
        with self.assertRaises(kvstore.DeadlineExceeded):
            self.conn.receive(timeout=0.2)      # half a request: no answer yet
        self.conn.sock.sendall(whole[5:])
        self.assertEqual((self.conn.receive().id, self.conn.call("Ping").code), (7, 0))

    def test_a_lost_server_is_unavailable(self):
        own = Server()
        self.addCleanup(own.kill)
        conn = kvstore.RawConnection(own.endpoint, timeout=10)
        self.addCleanup(conn.close)
        self.assertEqual(conn.call("Ping").code, 0)
        own.kill()
        with self.assertRaises(kvstore.Unavailable) as cm:
            conn.receive()
        self.assertIsInstance(cm.exception, ConnectionError)
        with self.assertRaises(kvstore.Unavailable):
            kvstore.RawConnection(own.endpoint, timeout=10)


if __name__ == "__main__":
    unittest.main()
