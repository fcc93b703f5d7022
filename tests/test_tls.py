"""test_tls - kvstored's client listener over TLS (--tls-cert, --tls-key,
--tls-client-ca): calls over TLS, small and large; a client that trusts
another CA refuses the server; with --tls-client-ca a client without a
certificate, or with one from another CA, gets no answer and one with a
good certificate does; TLS 1.1 is refused; a plaintext client, and a client
that never finishes its handshake, are closed within a bounded time (never
left hanging), and the log says why at debug; an expired certificate is refused, the client's by the server
and the server's by a client; a client over --max-clients
is closed without a plaintext frame; SIGHUP reloads the certificate and key
for new connections while open ones go on, and keeps the old ones when the
files do not load; a TLS client on a plaintext port fails
at once; bad TLS flags are refused.

The certificates are made at test time with the `openssl` command in a
temporary directory: a CA, a server certificate for 127.0.0.1 and localhost
(subjectAltName), a client certificate, and a second CA that signed
nothing the server knows. Clients are Python's ssl module around the
tests' own wire connection (support/wire.py). Debian's /usr/bin/python3;
$KVSTORED names the binary (meson test sets it).
"""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import warnings

from kvstore import pb
from kvstored import Server, refused
from tlscerts import Certs
from wire import Connection, WireError, frame

OK = pb.StatusCode.Value("OK")
# How long a closed connection may take to show as closed.
CLOSE_WITHIN = 5.0


CERTS = None


def setUpModule():
    global CERTS
    if not shutil.which("openssl"):
        raise unittest.SkipTest("no openssl command (Debian's openssl package)")
    CERTS = Certs()


def tearDownModule():
    if CERTS:
        shutil.rmtree(CERTS.dir, ignore_errors=True)


def tls_connect(server, ctx, hostname="localhost"):
    """A wire Connection to SERVER whose socket speaks TLS with CTX (the
    handshake done)."""
    c = Connection(server.endpoint, timeout=10.0)
    c.sock = ctx.wrap_socket(c.sock, server_hostname=hostname)
    return c


def call(c, method, request, response_type):
    rid = c.send(method, request)
    r = c.recv()
    assert r.id == rid, (r.id, rid)
    assert r.code == OK, (r.code, r.message)
    return response_type.FromString(r.payload)


def closed_within(sock, seconds):
    """Reads SOCK until the peer closes it; True when that happens within
    SECONDS (whatever came before, a TLS alert say), False otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, ssl.SSLError):
            return True


class TlsTest(unittest.TestCase):
    CLIENT_CA = False
    ARGS = ()

    def setUp(self):
        self.server = Server(*CERTS.server_args(self.CLIENT_CA), "--log-level", "debug",
                             *self.ARGS, capture_stderr=True)
        self.conns = []

    def tearDown(self):
        for c in self.conns:
            c.close()
        self.assertEqual(self.server.stop(), 0, self.server.stderr_text())

    def connect(self, ctx, hostname="localhost"):
        c = tls_connect(self.server, ctx, hostname)
        self.conns.append(c)
        return c


class TestServerTls(TlsTest):
    def test_set_and_get_over_tls(self):
        c = self.connect(CERTS.client_context())
        self.assertEqual(c.sock.version() in ("TLSv1.2", "TLSv1.3"), True, c.sock.version())
        call(c, "Set", pb.SetRequest(key=b"k", value=b"over tls"), pb.SetResponse)
        got = call(c, "Get", pb.GetRequest(key=b"k"), pb.GetResponse)
        self.assertEqual(got.value, b"over tls")
        self.server.wait_for_stderr(r"TLS handshake done \(TLSv1\.[23] ")
        self.server.wait_for_stderr(r" started: .*; auth off; tls on\n")

    def test_the_ip_address_is_in_the_certificate(self):
        c = self.connect(CERTS.client_context(), hostname="127.0.0.1")
        call(c, "Set", pb.SetRequest(key=b"ip", value=b"1"), pb.SetResponse)

    def test_large_values_and_pipelined_calls_cross_many_records(self):
        # 3 MB each way is some 200 TLS records: reads of a record at a
        # time, writes the socket takes in parts.
        c = self.connect(CERTS.client_context())
        big = os.urandom(3 << 20)
        call(c, "Set", pb.SetRequest(key=b"big", value=big), pb.SetResponse)
        rids = [c.send("Get", pb.GetRequest(key=b"big")) for _ in range(4)]
        for rid in rids:
            r = c.recv()
            self.assertEqual((r.id, r.code), (rid, OK))
            self.assertEqual(pb.GetResponse.FromString(r.payload).value, big)

    def test_a_client_trusting_another_ca_refuses_the_server(self):
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.connect(CERTS.client_context(ca="other-ca"))
        # The server closes its side and goes on serving others.
        self.server.wait_for_stderr(r"closed connection \d+ .*\(\w+\): TLS handshake failed")
        c = self.connect(CERTS.client_context())
        call(c, "Set", pb.SetRequest(key=b"k", value=b"v"), pb.SetResponse)

    def test_tls_1_1_is_refused(self):
        ctx = CERTS.client_context()
        # Debian's OpenSSL will not even offer 1.1 at its default security
        # level: lower the client's, so that the refusal is the server's.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)     # 1.1 is, indeed
            ctx.minimum_version = ssl.TLSVersion.TLSv1_1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        with self.assertRaises(ssl.SSLError) as caught:
            self.connect(ctx)
        self.assertIn("PROTOCOL_VERSION", str(caught.exception).upper().replace(" ", "_"))
        self.server.wait_for_stderr(r"\(protocol\): TLS handshake failed: unsupported protocol")

    def test_a_plaintext_client_is_closed_not_left_hanging(self):
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        try:
            body = pb.RpcRequest(id=1, method="/kvstore.v1.KV/Ping").SerializeToString()
            sock.sendall(frame(body))
            self.assertTrue(closed_within(sock, CLOSE_WITHIN),
                            "a plaintext client was not closed within %gs" % CLOSE_WITHIN)
        finally:
            sock.close()
        self.server.wait_for_stderr(r"closed connection \d+ from 127\.0\.0\.1:\d+ \(protocol\): "
                                    r"TLS handshake failed: ")

    def test_a_client_that_hangs_up_mid_handshake_is_a_client_close(self):
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        sock.sendall(b"\x16\x03\x01")      # the start of a TLS record, no more
        sock.close()
        self.server.wait_for_stderr(r"\(client\): TLS handshake failed: the peer closed")


class TestHandshakeIdle(TlsTest):
    ARGS = ("--idle-timeout", "1")

    def test_a_silent_client_is_closed_at_the_idle_timeout(self):
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        try:
            start = time.monotonic()
            self.assertTrue(closed_within(sock, CLOSE_WITHIN))
            self.assertGreater(time.monotonic() - start, 0.9)
        finally:
            sock.close()
        self.server.wait_for_stderr(r"\(idle\): idle timeout")

    def test_a_finished_handshake_is_progress(self):
        # Connected 0.6 s before the handshake, a request 0.6 s after it:
        # over the timeout since the accept, within it since the handshake.
        c = Connection(self.server.endpoint, timeout=10.0)
        self.conns.append(c)
        time.sleep(0.6)
        c.sock = CERTS.client_context().wrap_socket(c.sock, server_hostname="localhost")
        time.sleep(0.6)
        call(c, "Set", pb.SetRequest(key=b"k", value=b"v"), pb.SetResponse)


class TestExpiredServerCertificate(unittest.TestCase):
    def test_a_client_refuses_it(self):
        with Server("--tls-cert", CERTS.path("expired-server.crt"),
                    "--tls-key", CERTS.path("expired-server.key"), capture_stderr=True) as server:
            with self.assertRaises(ssl.SSLCertVerificationError) as caught:
                tls_connect(server, CERTS.client_context()).close()
            self.assertIn("expired", str(caught.exception))


class TestMaxClients(TlsTest):
    ARGS = ("--max-clients", "1")

    def test_a_client_over_the_limit_is_closed_without_a_plaintext_frame(self):
        first = self.connect(CERTS.client_context())
        call(first, "Set", pb.SetRequest(key=b"k", value=b"v"), pb.SetResponse)
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        try:
            sock.settimeout(CLOSE_WITHIN)
            self.assertEqual(sock.recv(65536), b"")
        finally:
            sock.close()
        call(first, "Get", pb.GetRequest(key=b"k"), pb.GetResponse)


class TestTlsClientOnAPlaintextPort(unittest.TestCase):
    def test_the_handshake_fails_within_a_bounded_time(self):
        with Server(capture_stderr=True) as server:
            start = time.monotonic()
            with self.assertRaises((ssl.SSLError, ConnectionResetError, OSError)):
                tls_connect(server, CERTS.client_context()).close()
            self.assertLess(time.monotonic() - start, CLOSE_WITHIN)


class TestClientCertificates(TlsTest):
    CLIENT_CA = True

    def assertNoAnswer(self, ctx):
        """A client with CTX gets no answer: the handshake fails, or (TLS
        1.3, where the client finishes first) the first read does."""
        try:
            c = self.connect(ctx)
            c.send("Ping", None)
            c.recv(timeout=CLOSE_WITHIN)
        except (ssl.SSLError, WireError, ConnectionResetError):
            return
        self.fail("a client without a good certificate was answered")

    def test_a_good_client_certificate_is_accepted(self):
        c = self.connect(CERTS.client_context(cert="client"))
        call(c, "Set", pb.SetRequest(key=b"k", value=b"mutual"), pb.SetResponse)
        self.assertEqual(call(c, "Get", pb.GetRequest(key=b"k"), pb.GetResponse).value, b"mutual")
        self.server.wait_for_stderr(r"TLS handshake done \(.*client certificate .*CN ?= ?kvstore "
                                    r"test client")
        self.server.wait_for_stderr(r" started: .*; auth off; tls on, client certificates "
                                    r"required\n")

    def test_a_missing_client_certificate_is_refused(self):
        self.assertNoAnswer(CERTS.client_context())
        self.server.wait_for_stderr(r"\(protocol\): TLS handshake failed: peer did not return "
                                    r"a certificate")

    def test_an_expired_client_certificate_is_refused(self):
        self.assertNoAnswer(CERTS.client_context(cert="expired-client"))
        self.server.wait_for_stderr(r"\(protocol\): TLS handshake failed: certificate verify "
                                    r"failed \(certificate has expired\)")

    def test_a_client_certificate_from_another_ca_is_refused(self):
        self.assertNoAnswer(CERTS.client_context(cert="other-client"))
        self.server.wait_for_stderr(r"\(protocol\): TLS handshake failed: certificate verify "
                                    r"failed \(unable to get local issuer certificate\)")


def common_name(c):
    """The CN of the certificate the server of wire Connection C showed."""
    return dict(x[0] for x in c.sock.getpeercert()["subject"])["commonName"]


class TestReload(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kvstored-tls-reload.")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.cert, self.key = os.path.join(self.tmp, "tls.crt"), os.path.join(self.tmp, "tls.key")
        self.install("server")

    def install(self, name):
        shutil.copy(CERTS.path(name + ".crt"), self.cert)
        shutil.copy(CERTS.path(name + ".key"), self.key)

    def test_sighup_reloads_the_certificate_and_keeps_connections(self):
        with Server("--tls-cert", self.cert, "--tls-key", self.key,
                    capture_stderr=True) as server:
            old = tls_connect(server, CERTS.client_context())
            self.addCleanup(old.close)
            self.assertEqual(common_name(old), "kvstore test server")
            self.install("renewed-server")
            server.signal(signal.SIGHUP)
            server.wait_for_stderr(r"info  SIGHUP: TLS certificate %s and key %s reloaded\n"
                                   % (re.escape(self.cert), re.escape(self.key)))
            new = tls_connect(server, CERTS.client_context())
            self.addCleanup(new.close)
            self.assertEqual(common_name(new), "kvstore test renewed-server")
            call(old, "Set", pb.SetRequest(key=b"k", value=b"old"), pb.SetResponse)
            self.assertEqual(call(new, "Get", pb.GetRequest(key=b"k"), pb.GetResponse).value,
                             b"old")

            # Files that do not load: the renewed certificate stays in force.
            with open(self.cert, "w") as f:
                f.write("not a certificate\n")
            server.signal(signal.SIGHUP)
            server.wait_for_stderr(r"error SIGHUP: --tls-cert: cannot load %s: .*; still "
                                   r"serving the certificate loaded before" % re.escape(self.cert))
            again = tls_connect(server, CERTS.client_context())
            self.addCleanup(again.close)
            self.assertEqual(common_name(again), "kvstore test renewed-server")
            call(old, "Get", pb.GetRequest(key=b"k"), pb.GetResponse)


class TestFlags(unittest.TestCase):
    def assertRefused(self, args, status, message):
        r = refused(*args)
        self.assertEqual(r.status, status, r.stderr)
        self.assertTrue(r.stderr.startswith("kvstored: "), r.stderr)
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        self.assertIn(message, r.stderr)

    def test_cert_and_key_go_together(self):
        self.assertRefused(["--tls-cert", CERTS.path("server.crt")], 2,
                           "--tls-cert and --tls-key go together")
        self.assertRefused(["--tls-key", CERTS.path("server.key")], 2,
                           "--tls-cert and --tls-key go together")

    def test_a_client_ca_needs_a_certificate(self):
        self.assertRefused(["--tls-client-ca", CERTS.path("ca.crt")], 2,
                           "--tls-client-ca needs --tls-cert and --tls-key")

    def test_files_that_do_not_load_stop_the_start(self):
        missing = CERTS.path("missing.crt")
        self.assertRefused(["--tls-cert", missing, "--tls-key", CERTS.path("server.key")], 1,
                           "--tls-cert: cannot load " + missing)
        self.assertRefused(CERTS.server_args()[:2] + ["--tls-key", CERTS.path("client.key")], 1,
                           "is not the key of the certificate")
        self.assertRefused(CERTS.server_args() + ["--tls-client-ca", CERTS.path("server.key")],
                           1, "--tls-client-ca: cannot load")

    def test_print_config_shows_the_files(self):
        out = subprocess.run([os.environ["KVSTORED"], *CERTS.server_args(True), "--print-config"],
                             capture_output=True, text=True, timeout=10).stdout
        self.assertIn("tls-cert = " + CERTS.path("server.crt"), out)
        self.assertIn("tls-client-ca = " + CERTS.path("ca.crt"), out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
