"""The client over TLS, against kvstored started with --tls-cert/--tls-key
(and --tls-client-ca): calls, a value of several MB, a watch, the asyncio
client and RawConnection; a server whose CA the client does not trust, or
whose certificate names another host, is refused with an error that says
so; with client certificates required, a client presenting one is served
and one without gets Unavailable saying the server wanted it; reconnects
and endpoint lists keep TLS; bytes decrypted but not yet read (no socket
event announces them) are read. The certificates are made at test time
with the openssl command (tests/support/tlscerts.py)."""

import asyncio
import os
import shutil
import socket
import ssl
import unittest
from unittest import mock

import kvstore
import kvstore.aio
from kvstore import connection, pb
from kvstored import Server
from tlscerts import Certs

WAIT = 30.0             # the longest a test waits for one event
CERTS = None
server = None           # --tls-cert, serving 127.0.0.1 and localhost
mutual = None           # the same, and --tls-client-ca: client certificates required


def setUpModule():
    global CERTS, server, mutual
    if not shutil.which("openssl"):
        raise unittest.SkipTest("no openssl command (Debian's openssl package)")
    CERTS = Certs()
    server = Server(*CERTS.server_args())
    mutual = Server(*CERTS.server_args(client_ca=True))


def tearDownModule():
    try:
        for s in (server, mutual):
            if s is not None:
                assert s.stop() == 0
    finally:
        if CERTS is not None:
            shutil.rmtree(CERTS.dir, ignore_errors=True)


def trusting(ca="ca", cert=None):
    """A context made by kvstore.tls_context: CA trusted, CERT presented."""
    return kvstore.tls_context(cafile=CERTS.path(ca + ".crt"),
                               certfile=cert and CERTS.path(cert + ".crt"),
                               keyfile=cert and CERTS.path(cert + ".key"))


class TestCalls(unittest.TestCase):
    def client(self, **kwargs):
        c = kvstore.Client(server.endpoint, timeout=10, ssl=trusting(), **kwargs)
        self.addCleanup(c.close)
        return c

    def test_calls_over_tls(self):
        c = self.client()
        self.assertEqual(c.ping(), "PONG")
        c.set(b"k", b"over tls")
        self.assertEqual(c.get(b"k"), b"over tls")
        self.assertIn(c._conn._sock.version(), ("TLSv1.2", "TLSv1.3"))

    def test_the_name_checked_is_the_endpoints_host_or_server_hostname(self):
        # 127.0.0.1 (the endpoint's host, an IP address) and localhost are
        # both in the server's certificate.
        self.client().set(b"by-ip", b"1")
        self.assertEqual(self.client(server_hostname="localhost").get(b"by-ip"), b"1")

    def test_a_plain_ssl_context_is_taken(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(CERTS.path("ca.crt"))
        with kvstore.connect(server.endpoint, ssl=ctx) as c:
            self.assertEqual(c.ping(), "PONG")

    def test_a_value_of_several_mb_each_way(self):
        c = self.client()
        big = os.urandom(5 << 20)
        c.set(b"big", big)
        self.assertEqual(c.get(b"big"), big)
        with c.pipeline() as p:
            for _ in range(3):
                p.get(b"big")
        self.assertEqual(p.results, [big] * 3)

    def test_bytes_decrypted_but_not_read_are_read(self):
        # A turn that reads at most 1000 bytes leaves the rest of each 16 KiB
        # record inside the SSL object, where no socket event announces it:
        # the last record's tail would wait there until the timeout.
        c = self.client()
        value = os.urandom(100_000)
        c.set(b"v", value)
        with mock.patch.object(connection, "_RECV_BYTES", 1000):
            self.assertEqual(c.get(b"v", timeout=WAIT), value)

    def test_a_watch_receives_events(self):
        c = self.client()
        with c.watch(prefix=b"w/") as w:
            c.set(b"w/1", b"a")
            c.clear(b"w/1")
            first, second = w.next_event(timeout=WAIT), w.next_event(timeout=WAIT)
        self.assertEqual((first.type, first.kv.key, first.kv.value), ("PUT", b"w/1", b"a"))
        self.assertEqual((second.type, second.kv.key), ("DELETE", b"w/1"))

    def test_a_reconnect_keeps_tls(self):
        c = self.client()
        c.set(b"r", b"before")
        mine = next(i.id for i in c.ClientList().clients if i.current)
        self.assertEqual(self.client().ClientKill(id=mine).killed, 1)
        # The next read finds the connection gone and makes a new one, over
        # TLS again (this server speaks nothing else).
        self.assertEqual(c.get(b"r"), b"before")
        self.assertIn(c._conn._sock.version(), ("TLSv1.2", "TLSv1.3"))

    def test_every_endpoint_of_a_list_gets_tls(self):
        # The first endpoint refuses (nothing listens there): the second,
        # over TLS, is taken.
        dead = "127.0.0.1:1"
        with kvstore.Client([dead, server.endpoint], timeout=10, ssl=trusting()) as c:
            self.assertEqual(c.endpoint, server.endpoint)
            self.assertEqual(c.ping(), "PONG")

    def test_raw_connection_over_tls(self):
        with kvstore.RawConnection(server.endpoint, timeout=10, ssl=trusting()) as raw:
            answer = raw.call("Ping", pb.PingRequest(message="raw"))
        self.assertEqual(pb.PingResponse.FromString(answer.payload).message, "raw")

    def test_bad_arguments(self):
        with self.assertRaises(TypeError):
            kvstore.Client(server.endpoint, ssl="ca.crt")
        with self.assertRaises(ValueError):
            kvstore.Client(server.endpoint, server_hostname="localhost")


class TestRefusals(unittest.TestCase):
    def assertRefused(self, endpoint, ctx, why, **kwargs):
        with self.assertRaises(kvstore.Unavailable) as caught:
            kvstore.Client(endpoint, timeout=10, ssl=ctx, **kwargs)
        self.assertIn("TLS handshake with %s failed: " % endpoint, caught.exception.message)
        self.assertIn(why, caught.exception.message)
        self.assertIsInstance(caught.exception.__cause__, ssl.SSLError)
        return caught.exception

    def test_a_server_signed_by_another_ca(self):
        refusal = self.assertRefused(server.endpoint, trusting("other-ca"), "certificate verify "
                                     "failed: unable to get local issuer certificate")
        self.assertIsInstance(refusal.__cause__, ssl.SSLCertVerificationError)

    def test_a_certificate_for_another_host(self):
        with Server("--tls-cert", CERTS.path("elsewhere-server.crt"),
                    "--tls-key", CERTS.path("elsewhere-server.key")) as elsewhere:
            self.assertRefused(elsewhere.endpoint, trusting(),
                               "IP address mismatch, certificate is not valid for '127.0.0.1'")
            # The name it is for, given as server_hostname, is accepted.
            with kvstore.Client(elsewhere.endpoint, timeout=10, ssl=trusting(),
                                server_hostname="elsewhere.example") as c:
                self.assertEqual(c.ping(), "PONG")

    def test_server_hostname_is_checked(self):
        self.assertRefused(server.endpoint, trusting(),
                           "Hostname mismatch, certificate is not valid for 'db.example'",
                           server_hostname="db.example")

    def test_a_handshake_that_never_ends_is_bounded_by_connect_timeout(self):
        # The kernel accepts the TCP connection; nobody ever answers.
        with socket.create_server(("127.0.0.1", 0)) as silent:
            endpoint = "127.0.0.1:%d" % silent.getsockname()[1]
            with self.assertRaises(kvstore.DeadlineExceeded) as caught:
                kvstore.Client(endpoint, connect_timeout=0.5, ssl=trusting())
            self.assertIn("TLS handshake with %s not done in time" % endpoint,
                          caught.exception.message)

            async def main():
                with self.assertRaises(kvstore.DeadlineExceeded):
                    await kvstore.aio.connect(endpoint, connect_timeout=0.5, ssl=trusting())
            asyncio.run(main())

    def test_a_plaintext_server(self):
        with Server() as plain:
            with self.assertRaises(kvstore.Unavailable) as caught:
                kvstore.Client(plain.endpoint, timeout=10, ssl=trusting())
            self.assertIn("TLS handshake with %s failed: " % plain.endpoint,
                          caught.exception.message)


class TestClientCertificates(unittest.TestCase):
    def test_a_client_certificate_is_accepted(self):
        with kvstore.Client(mutual.endpoint, timeout=10, ssl=trusting(cert="client")) as c:
            c.set(b"k", b"mutual")
            self.assertEqual(c.get(b"k"), b"mutual")

    # TLS 1.3: the client's side of the handshake ends before the server
    # has checked the certificate; the server's alert then ends the first
    # call. A write: tried once (a single server may have applied it), so
    # the answer is that try's.

    def test_no_client_certificate_is_refused(self):
        with kvstore.Client(mutual.endpoint, timeout=10, ssl=trusting()) as c:
            with self.assertRaises(kvstore.Unavailable) as caught:
                c.set(b"k", b"v")
        self.assertIn("lost: tlsv13 alert certificate required", caught.exception.message)

    def test_a_refused_read_is_not_retried(self):
        # A read is retried on a lost connection, but the server's alert
        # would come again on a new one: one connection, one failure.
        with kvstore.Client(mutual.endpoint, timeout=10, ssl=trusting(cert="client")) as good:
            before = good.Stats().connections_total
            with kvstore.Client(mutual.endpoint, timeout=3, ssl=trusting()) as c:
                with self.assertRaises(kvstore.Unavailable) as caught:
                    c.get(b"k")
            self.assertIn("tlsv13 alert certificate required", caught.exception.message)
            self.assertEqual(good.Stats().connections_total, before + 1)

    def test_a_client_certificate_from_another_ca_is_refused(self):
        with kvstore.Client(mutual.endpoint, timeout=10, ssl=trusting(cert="other-client")) as c:
            with self.assertRaises(kvstore.Unavailable) as caught:
                c.set(b"k", b"v")
        self.assertIn("lost: tlsv1 alert unknown ca", caught.exception.message)


class TestAsyncio(unittest.TestCase):
    def run_async(self, coroutine):
        return asyncio.run(asyncio.wait_for(coroutine, WAIT))

    def test_calls_a_large_value_and_a_watch(self):
        big = os.urandom(5 << 20)

        async def main():
            async with await kvstore.aio.connect(server.endpoint, timeout=10,
                                                 ssl=trusting()) as c:
                await c.set(b"a", b"b")
                self.assertEqual(await c.get(b"a"), b"b")
                await c.set(b"big", big)
                self.assertEqual(await c.get(b"big"), big)
                async with c.watch(prefix=b"aw/") as w:
                    await c.set(b"aw/1", b"x")
                    event = await w.next_event(timeout=WAIT)
                self.assertEqual((event.type, event.kv.key, event.kv.value),
                                 ("PUT", b"aw/1", b"x"))
        self.run_async(main())

    def test_a_reconnect_keeps_tls(self):
        async def main():
            async with await kvstore.aio.connect(server.endpoint, timeout=10,
                                                 ssl=trusting()) as c, \
                    await kvstore.aio.connect(server.endpoint, timeout=10,
                                              ssl=trusting()) as killer:
                await c.set(b"ar", b"before")
                mine = next(i.id for i in (await c.ClientList()).clients if i.current)
                self.assertEqual((await killer.ClientKill(id=mine)).killed, 1)
                self.assertEqual(await c.get(b"ar"), b"before")
        self.run_async(main())

    def test_refusals(self):
        async def refused(endpoint, ctx, **kwargs):
            with self.assertRaises(kvstore.Unavailable) as caught:
                c = await kvstore.aio.connect(endpoint, timeout=10, ssl=ctx, **kwargs)
                try:
                    await c.set(b"k", b"v")      # tried once: see TestClientCertificates
                finally:
                    await c.close()
            return caught.exception.message

        async def main():
            why = await refused(server.endpoint, trusting("other-ca"))
            self.assertIn("TLS handshake with %s failed: certificate verify failed: unable to "
                          "get local issuer certificate" % server.endpoint, why)
            why = await refused(server.endpoint, trusting(), server_hostname="db.example")
            self.assertIn("Hostname mismatch, certificate is not valid for 'db.example'", why)
            # The alert, or (asyncio writes the request at once, and the
            # server's reset may overtake its alert) a guess that says so.
            self.assertRegex(await refused(mutual.endpoint, trusting()),
                             "certificate required|client's certificate refused")
            # A read is not retried after the alert either (TestClientCertificates);
            # but the alert may end the connection before the read is sent
            # (the reader runs at once), and then the read opens one more.
            async with await kvstore.aio.connect(mutual.endpoint, timeout=10,
                                                 ssl=trusting(cert="client")) as good:
                before = (await good.Stats()).connections_total
                c = await kvstore.aio.connect(mutual.endpoint, timeout=3, ssl=trusting())
                try:
                    with self.assertRaisesRegex(kvstore.Unavailable, "certificate required"):
                        await c.get(b"k")
                finally:
                    await c.close()
                self.assertLessEqual((await good.Stats()).connections_total, before + 2)
            async with await kvstore.aio.connect(mutual.endpoint, timeout=10,
                                                 ssl=trusting(cert="client")) as c:
                self.assertEqual(await c.ping(), "PONG")
        self.run_async(main())


if __name__ == "__main__":
    unittest.main()
