"""test_tls - kvstored's client listener over TLS (--tls-cert, --tls-key,
--tls-client-ca): calls over TLS, small and large; a client that trusts
another CA refuses the server; with --tls-client-ca a client without a
certificate, or with one from another CA, gets no answer and one with a
good certificate does, and ClientList names no certificate whose key was
not proven (a handshake stalled before CertificateVerify); TLS 1.1 is
refused; a plaintext client, and a client that never finishes its
handshake, are closed within a bounded time (never left hanging), and the log says why at debug; an expired certificate is refused, the client's by the server
and the server's by a client; a client over --max-clients
is closed without a plaintext frame; SIGHUP reloads the certificate and key
for new connections while open ones go on, and keeps the old ones when the
files do not load; a TLS client on a plaintext port fails
at once; bad TLS flags are refused. --plain-listen serves plaintext on
loopback beside the TLS listener (both in Stats, --max-clients counting
both, SIGHUP leaving it plaintext), and is refused off loopback or with
--tls-only; /metrics speaks HTTPS with the same certificate (reloaded on
SIGHUP) unless --metrics-tls=no. Hostile input over TLS (garbage, huge
and truncated frames, a byte a record, half-open handshakes filling
--max-clients, a client that reads nothing of megabytes of answers) harms
no one else, and memory stays bounded.

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
import urllib.error
import urllib.request
import warnings

from kvstore import pb
from kvstored import Server, refused
from tlscerts import Certs
from wire import Connection, WireError, frame

OK = pb.StatusCode.Value("OK")
INVALID_ARGUMENT = pb.StatusCode.Value("INVALID_ARGUMENT")
RESOURCE_EXHAUSTED = pb.StatusCode.Value("RESOURCE_EXHAUSTED")
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


def tls_1_1_context():
    """A client context offering TLS 1.1 only (and trusting the CA)."""
    ctx = CERTS.client_context()
    # Debian's OpenSSL will not even offer 1.1 at its default security
    # level: lower the client's, so that the refusal is the server's.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)     # 1.1 is, indeed
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


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

    def assertRefusedWithoutAFrame(self):
        """A new connection to the TLS listener is closed with nothing
        written (over --max-clients: no plaintext frame, no handshake)."""
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        try:
            sock.settimeout(CLOSE_WITHIN)
            self.assertEqual(sock.recv(65536), b"")
        finally:
            sock.close()

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
        with self.assertRaises(ssl.SSLError) as caught:
            self.connect(tls_1_1_context())
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



class TestHandshakeProgress(TlsTest):
    # Margins of 1.2 s: a handshake under valgrind on a loaded machine took
    # over the 0.4 s that --idle-timeout 1 left.
    ARGS = ("--idle-timeout", "3")

    def test_a_finished_handshake_is_progress(self):
        # One handshake first, so that OpenSSL's first-use set-up (slow
        # under valgrind) is not inside the one timed. Then: connected
        # 1.8 s before the handshake, a request 1.8 s after it: over the
        # timeout since the accept, within it since the handshake.
        call(self.connect(CERTS.client_context()), "Ping", None, pb.PingResponse)
        c = Connection(self.server.endpoint, timeout=10.0)
        self.conns.append(c)
        time.sleep(1.8)
        c.sock = CERTS.client_context().wrap_socket(c.sock, server_hostname="localhost")
        time.sleep(1.8)
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
        self.assertRefusedWithoutAFrame()
        call(first, "Get", pb.GetRequest(key=b"k"), pb.GetResponse)


class TestTlsClientOnAPlaintextPort(unittest.TestCase):
    def test_the_handshake_fails_within_a_bounded_time(self):
        with Server(capture_stderr=True) as server:
            start = time.monotonic()
            with self.assertRaises((ssl.SSLError, ConnectionResetError, OSError)):
                tls_connect(server, CERTS.client_context()).close()
            self.assertLess(time.monotonic() - start, CLOSE_WITHIN)


def tls_records(data):
    """DATA (bytes of TLS records) split into its records."""
    records = []
    while data:
        end = 5 + int.from_bytes(data[3:5], "big")
        records.append(data[:end])
        data = data[end:]
    return records


def stall_before_certificate_verify(server, ctx):
    """A raw socket to SERVER whose client, with CTX's certificate, sent
    its TLS 1.3 Certificate and holds back CertificateVerify and Finished
    (the last two records of its flight): its handshake never ends."""
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    host, _, port = server.endpoint.rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=10.0)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(outgoing.read())
            data = sock.recv(65536)
            if not data:
                raise AssertionError("the server closed during the handshake")
            incoming.write(data)
    sock.sendall(b"".join(tls_records(outgoing.read())[:-2]))
    return sock


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

    def test_client_list_says_tls_and_the_certificate_subject(self):
        c = self.connect(CERTS.client_context(cert="client"))
        me, = [ci for ci in call(c, "ClientList", pb.ClientListRequest(),
                                 pb.ClientListResponse).clients if ci.current]
        self.assertTrue(me.tls)
        self.assertEqual(me.tls_client_subject, "/CN=kvstore test client")

    def test_client_list_shows_no_subject_before_the_key_is_proven(self):
        # Certificates are public: one whose client has not yet proven it
        # holds the key (CertificateVerify held back) names no one.
        stalled = stall_before_certificate_verify(self.server, CERTS.client_context(cert="client"))
        self.addCleanup(stalled.close)
        c = self.connect(CERTS.client_context(cert="client"))
        clients = call(c, "ClientList", pb.ClientListRequest(), pb.ClientListResponse).clients
        other, = [ci for ci in clients if not ci.current]
        self.assertTrue(other.tls)
        self.assertEqual(other.tls_client_subject, "")

    def test_a_missing_client_certificate_is_refused(self):
        self.assertNoAnswer(CERTS.client_context())
        self.server.wait_for_stderr(r"\(protocol\): TLS handshake failed: peer did not return "
                                    r"a certificate")

    def test_a_refused_client_hears_why_not_a_reset(self):
        """TLS 1.3: the client's handshake ends before the server checks
        its certificate, so its first request follows at once. The server
        once closed with that request unread, and the kernel's reset often
        overtook the alert: clients said "connection reset" instead of
        "certificate required". The alert must arrive every time."""
        ctx = CERTS.client_context()
        host, _, port = self.server.endpoint.rpartition(":")
        request = frame(pb.RpcRequest(id=1, method="/kvstore.v1.KV/Ping").SerializeToString())
        for _ in range(40):
            with ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10),
                                 server_hostname="localhost") as s:
                self.assertEqual(s.version(), "TLSv1.3")
                try:
                    s.sendall(request)
                    s.settimeout(CLOSE_WITHIN)
                    got = s.recv(65536)
                except ssl.SSLError as e:
                    self.assertIn("CERTIFICATE_REQUIRED", str(e))
                    continue
                self.fail("no alert: the stream %s" % ("ended" if not got else "answered"))

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



def plain_endpoint(server):
    """The address kvstored printed as "plaintext on HOST:PORT"."""
    m = re.search(r"plaintext on (\S+)\n", server.stdout_text())
    assert m, "no 'plaintext on' line in %r" % server.stdout_text()
    return m.group(1)


def stats_of(c):
    return call(c, "Stats", pb.StatsRequest(), pb.StatsResponse)


class TestPlainListener(TlsTest):
    ARGS = ("--plain-listen", "127.0.0.1:0")

    def plain(self):
        c = Connection(plain_endpoint(self.server), timeout=10.0)
        self.conns.append(c)
        return c

    def test_plaintext_on_loopback_and_tls_at_the_same_time(self):
        tls = self.connect(CERTS.client_context())
        plain = self.plain()
        call(tls, "Set", pb.SetRequest(key=b"k", value=b"from tls"), pb.SetResponse)
        got = call(plain, "Get", pb.GetRequest(key=b"k"), pb.GetResponse)
        self.assertEqual(got.value, b"from tls")
        call(plain, "Set", pb.SetRequest(key=b"k", value=b"from plain"), pb.SetResponse)
        self.assertEqual(call(tls, "Get", pb.GetRequest(key=b"k"), pb.GetResponse).value,
                         b"from plain")
        self.server.wait_for_stderr(r" started: .*listening on %s and in plaintext on %s; .*"
                                    r"; tls on\n" % (re.escape(self.server.endpoint),
                                                     re.escape(plain_endpoint(self.server))))

    def test_each_listener_speaks_only_its_own(self):
        # A TLS client on the plaintext listener fails; a plaintext one on
        # the TLS listener is closed.
        with self.assertRaises((ssl.SSLError, ConnectionResetError, OSError)):
            c = Connection(plain_endpoint(self.server), timeout=CLOSE_WITHIN)
            self.conns.append(c)
            c.sock = CERTS.client_context().wrap_socket(c.sock, server_hostname="localhost")
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        try:
            sock.sendall(frame(pb.RpcRequest(id=1, method="/kvstore.v1.KV/Ping")
                               .SerializeToString()))
            self.assertTrue(closed_within(sock, CLOSE_WITHIN))
        finally:
            sock.close()

    def test_client_list_says_which_connections_speak_tls(self):
        tls = self.connect(CERTS.client_context())
        plain = self.plain()
        call(tls, "Ping", None, pb.PingResponse)
        clients = call(plain, "ClientList", pb.ClientListRequest(),
                       pb.ClientListResponse).clients
        self.assertEqual([(ci.current, ci.tls, ci.tls_client_subject) for ci in clients],
                         [(False, True, ""), (True, False, "")])

    def test_stats_lists_both_addresses(self):
        got = stats_of(self.plain()).listen_addresses
        self.assertEqual(list(got), [self.server.endpoint, plain_endpoint(self.server)])

    def test_sighup_reload_leaves_the_plain_listener_plaintext(self):
        plain = self.plain()
        tls = self.connect(CERTS.client_context())
        self.server.signal(signal.SIGHUP)
        self.server.wait_for_stderr(r"SIGHUP: TLS certificate .* reloaded\n")
        call(plain, "Set", pb.SetRequest(key=b"k", value=b"v"), pb.SetResponse)
        call(tls, "Get", pb.GetRequest(key=b"k"), pb.GetResponse)
        call(self.plain(), "Get", pb.GetRequest(key=b"k"), pb.GetResponse)
        call(self.connect(CERTS.client_context()), "Get", pb.GetRequest(key=b"k"),
             pb.GetResponse)


class TestMaxClientsCountsBothListeners(TlsTest):
    ARGS = ("--plain-listen", "127.0.0.1:0", "--max-clients", "2")

    def test_the_limit_is_for_both_listeners_together(self):
        tls = self.connect(CERTS.client_context())
        plain = Connection(plain_endpoint(self.server), timeout=10.0)
        self.conns.append(plain)
        call(tls, "Set", pb.SetRequest(key=b"k", value=b"v"), pb.SetResponse)
        call(plain, "Get", pb.GetRequest(key=b"k"), pb.GetResponse)
        # One more on the plaintext listener: the plaintext refusal frame.
        third = Connection(plain_endpoint(self.server), timeout=10.0)
        self.conns.append(third)
        r = third.recv(timeout=CLOSE_WITHIN)
        self.assertEqual((r.id, r.code), (0, RESOURCE_EXHAUSTED))
        self.assertIn("too many clients", r.message)
        # One more on the TLS listener: closed without a frame.
        self.assertRefusedWithoutAFrame()
        self.assertEqual(stats_of(plain).connections_rejected, 2)


class TestFlagsOfTwoListeners(unittest.TestCase):
    assertRefused = None    # TestFlags's, below

    def setUp(self):
        self.assertRefused = TestFlags.assertRefused.__get__(self)

    def test_plain_listen_off_loopback_is_refused(self):
        for where in ("0.0.0.0:0", "192.0.2.1:7379", ":0", "[::]:0", "example.com:1"):
            with self.subTest(where=where):
                self.assertRefused(CERTS.server_args() + ["--plain-listen", where], 2,
                                   "--plain-listen: \"%s\" is not a loopback address" % where)

    def test_plain_listen_needs_tls(self):
        self.assertRefused(["--plain-listen", "127.0.0.1:0"], 2,
                           "--plain-listen needs --tls-cert and --tls-key")

    def test_tls_only_refuses_a_plain_listener(self):
        self.assertRefused(CERTS.server_args() + ["--tls-only", "--plain-listen", "127.0.0.1:0"],
                           2, "--plain-listen serves plaintext, --tls-only refuses it")

    def test_tls_only_refuses_plain_metrics(self):
        self.assertRefused(CERTS.server_args() + ["--tls-only", "--metrics-listen", "127.0.0.1:0",
                                                  "--metrics-tls=no"], 2,
                           "--metrics-tls=no serves /metrics in plaintext, --tls-only refuses it")

    def test_tls_only_needs_tls(self):
        self.assertRefused(["--tls-only"], 2, "--tls-only needs --tls-cert and --tls-key")
        self.assertRefused(CERTS.server_args() + ["--tls-only=maybe"], 2,
                           "--tls-only: \"maybe\" is not yes or no")

    def test_tls_only_serves_tls_and_says_so(self):
        with Server(*CERTS.server_args(), "--tls-only", capture_stderr=True) as server:
            c = tls_connect(server, CERTS.client_context())
            call(c, "Set", pb.SetRequest(key=b"k", value=b"v"), pb.SetResponse)
            c.close()
            server.wait_for_stderr(r"; tls on \(--tls-only\)\n")

    def test_print_config_shows_the_settings(self):
        out = subprocess.run([os.environ["KVSTORED"], *CERTS.server_args(), "--plain-listen",
                              "localhost:7380", "--print-config"],
                             capture_output=True, text=True, timeout=10).stdout
        self.assertIn("plain-listen = localhost:7380\n", out)
        self.assertIn("tls-only = no\n", out)
        self.assertIn("metrics-tls = yes\n", out)
        out = subprocess.run([os.environ["KVSTORED"], *CERTS.server_args(), "--tls-only",
                              "--metrics-tls=no", "--print-config"],
                             capture_output=True, text=True, timeout=10).stdout
        self.assertIn("tls-only = yes\n", out)
        self.assertIn("metrics-tls = no\n", out)


def metrics_endpoint(server):
    m = re.search(r"metrics on (\S+)\n", server.stdout_text())
    assert m, server.stdout_text()
    return m.group(1)


def https_get(url, ca="ca", timeout=10):
    ctx = ssl.create_default_context(cafile=CERTS.path(ca + ".crt"))
    with urllib.request.urlopen(url, context=ctx, timeout=timeout) as r:
        return r.status, r.read().decode()


def metrics_certificate_cn(address):
    host, _, port = address.rpartition(":")
    ctx = CERTS.client_context()
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return dict(x[0] for x in s.getpeercert()["subject"])["commonName"]


class TestMetricsOverTls(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kvstored-tls-metrics.")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.cert, self.key = os.path.join(self.tmp, "tls.crt"), os.path.join(self.tmp, "tls.key")
        shutil.copy(CERTS.path("server.crt"), self.cert)
        shutil.copy(CERTS.path("server.key"), self.key)

    def serve(self, *args):
        server = Server("--tls-cert", self.cert, "--tls-key", self.key, "--metrics-listen",
                        "127.0.0.1:0", *args, capture_stderr=True)
        self.addCleanup(lambda: self.assertEqual(server.stop(), 0, server.stderr_text()))
        return server

    def test_metrics_and_health_over_https_with_the_same_certificate(self):
        server = self.serve()
        address = metrics_endpoint(server)
        status, body = https_get("https://%s/metrics" % address)
        self.assertEqual(status, 200)
        self.assertIn("kvstore_listen_info", body)
        self.assertEqual(https_get("https://%s/health" % address)[1], "ok\n")
        self.assertEqual(metrics_certificate_cn(address), "kvstore test server")
        # A scraper that trusts another CA refuses it; plain HTTP gets nothing.
        with self.assertRaises(urllib.error.URLError):
            https_get("https://%s/health" % address, ca="other-ca")
        with self.assertRaises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen("http://%s/health" % address, timeout=10).read()
        server.wait_for_stderr(r"; tls on; metrics on %s \(https\)\n" % re.escape(address))
        if shutil.which("curl"):
            out = subprocess.run(["curl", "-sS", "--cacert", CERTS.path("ca.crt"),
                                  "https://%s/health" % address.replace("127.0.0.1",
                                                                        "localhost")],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.stdout, "ok\n", out.stderr)

    def test_tls_1_1_is_refused_there_too(self):
        # GnuTLS's default priorities still allow 1.0 and 1.1.
        host, _, port = metrics_endpoint(self.serve()).rpartition(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            with self.assertRaises(ssl.SSLError):
                tls_1_1_context().wrap_socket(sock, server_hostname="localhost")

    def test_no_client_certificate_is_asked_for_even_with_a_client_ca(self):
        server = self.serve("--tls-client-ca", CERTS.path("ca.crt"))
        self.assertEqual(https_get("https://%s/health" % metrics_endpoint(server))[0], 200)

    def test_metrics_tls_no_keeps_plain_http(self):
        server = self.serve("--metrics-tls=no")
        url = "http://%s/health" % metrics_endpoint(server)
        with urllib.request.urlopen(url, timeout=10) as r:
            self.assertEqual(r.read(), b"ok\n")

    def test_sighup_reloads_the_metrics_certificate(self):
        server = self.serve()
        address = metrics_endpoint(server)
        shutil.copy(CERTS.path("renewed-server.crt"), self.cert)
        shutil.copy(CERTS.path("renewed-server.key"), self.key)
        server.signal(signal.SIGHUP)
        server.wait_for_stderr(r"SIGHUP: the metrics listener serves the reloaded certificate\n")
        self.assertEqual(metrics_certificate_cn(address), "kvstore test renewed-server")
        self.assertEqual(https_get("https://%s/health" % address)[1], "ok\n")
        # A second reload, and one of broken files: it goes on serving.
        server.signal(signal.SIGHUP)
        server.wait_for_stderr(r"(?s)(SIGHUP: the metrics listener serves the reloaded "
                               r"certificate\n.*){2}")
        with open(self.key, "w") as f:
            f.write("not a key\n")
        server.signal(signal.SIGHUP)
        server.wait_for_stderr(r"error SIGHUP: --tls-key: ")
        self.assertEqual(metrics_certificate_cn(address), "kvstore test renewed-server")
        self.assertEqual(https_get("https://%s/metrics" % address)[0], 200)


def rss_bytes(pid):
    """The resident memory of process PID."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for %d" % pid)


def client_hello():
    """The bytes of a real TLS ClientHello for localhost."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = CERTS.client_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with unittest.TestCase().assertRaises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


class HostileTlsTest(TlsTest):
    """test_hostile.c's essential inputs, inside TLS: each checks the answer
    (or the close) and that a second client, the witness, is served
    throughout."""

    def setUp(self):
        super().setUp()
        self.witness = self.connect(CERTS.client_context())
        self.assertOthersServed()

    def assertOthersServed(self):
        call(self.witness, "Set", pb.SetRequest(key=b"witness", value=b"here"), pb.SetResponse)
        got = call(self.witness, "Get", pb.GetRequest(key=b"witness"), pb.GetResponse)
        self.assertEqual(got.value, b"here")

    def assertClosedServingOthers(self, sock, seconds):
        """SOCK is closed by the server within SECONDS, while the witness
        is served (and so kept from its own idle timeout)."""
        deadline = time.monotonic() + seconds
        while not closed_within(sock, 0.25):
            self.assertLess(time.monotonic(), deadline, "not closed within %gs" % seconds)
            self.assertOthersServed()



class TestAClientThatStopsReadingOverTls(HostileTlsTest):
    # The default --idle-timeout: a client that reads nothing makes no
    # progress, so a short timeout would close it while the test samples
    # (2 s is reached under valgrind).

    def test_a_client_that_stops_reading_holds_bounded_memory(self):
        big = os.urandom(1 << 20)
        call(self.witness, "Set", pb.SetRequest(key=b"big", value=big), pb.SetResponse)
        before = rss_bytes(self.server.pid)
        reader = self.connect(CERTS.client_context())
        n = 64          # 64 MB of answers, eight times a session's high water
        rids = [reader.send("Get", pb.GetRequest(key=b"big")) for _ in range(n)]
        # While it reads nothing, others are served and what the server
        # holds for it stays bounded.
        for _ in range(10):
            self.assertOthersServed()
            held = stats_of(self.witness).output_buffer_bytes
            self.assertLess(held, 24 << 20)     # its 8 MB high water, as a buffer's
                                                # doubled capacity
            self.assertLess(rss_bytes(self.server.pid) - before, 48 << 20)
        # Reading again, it gets every answer, whole.
        for rid in rids:
            r = reader.recv()
            self.assertEqual((r.id, r.code), (rid, OK))
            self.assertEqual(len(pb.GetResponse.FromString(r.payload).value), len(big))


class TestHostileOverTls(HostileTlsTest):
    ARGS = ("--idle-timeout", "2", "--max-clients", "16")

    def test_huge_length_prefixes_are_refused_then_closed(self):
        for prefix in (b"\x80\x80\x80\x80\x08", b"\xff\xff\xff\xff\x0f"):
            c = self.connect(CERTS.client_context())
            c.sock.sendall(prefix)
            r = c.recv(timeout=CLOSE_WITHIN)
            self.assertEqual((r.id, r.code), (0, RESOURCE_EXHAUSTED))
            self.assertTrue(closed_within(c.sock, CLOSE_WITHIN))
            self.assertOthersServed()

    def test_garbage_frames_get_errors_and_the_connection_lives_on(self):
        c = self.connect(CERTS.client_context())
        for body in (b"\x08\x01\x17", b"\x08\x01\x12\x13/k", b"\x1a\xff\xff\xff\x0f\x00",
                     b"\x0a\x01\x01"):
            c.sock.sendall(frame(body))
            r = c.recv(timeout=CLOSE_WITHIN)
            self.assertEqual((r.id, r.code), (0, INVALID_ARGUMENT), body)
        call(c, "Ping", None, pb.PingResponse)
        self.assertOthersServed()

    def test_a_truncated_frame_then_a_hang_up_harms_no_one(self):
        c = self.connect(CERTS.client_context())
        body = pb.RpcRequest(id=1, method="/kvstore.v1.KV/Ping").SerializeToString()
        c.sock.sendall(frame(body)[:-3])
        c.close()
        self.server.wait_for_stderr(r"closed connection \d+ .*\(client\)")
        self.assertOthersServed()

    def test_a_truncated_frame_then_silence_is_closed_at_the_idle_timeout(self):
        c = self.connect(CERTS.client_context())
        c.sock.sendall(frame(b"\x08\x01" + b"x" * 100)[:10])
        self.assertClosedServingOthers(c.sock, 2 + CLOSE_WITHIN)

    def test_a_request_written_a_byte_a_record(self):
        c = self.connect(CERTS.client_context())
        body = pb.RpcRequest(id=7, method="/kvstore.v1.KV/Set", payload=pb.SetRequest(
            key=b"slow", value=b"one byte at a time").SerializeToString()).SerializeToString()
        for i, byte in enumerate(frame(body)):
            c.sock.sendall(bytes([byte]))       # each its own TLS record
            if i % 16 == 0:
                self.assertOthersServed()
        r = c.recv()
        self.assertEqual((r.id, r.code), (7, OK))
        self.assertEqual(call(self.witness, "Get", pb.GetRequest(key=b"slow"),
                              pb.GetResponse).value, b"one byte at a time")

    def test_half_open_handshakes_fill_max_clients_then_time_out(self):
        before = rss_bytes(self.server.pid)
        # The witness holds one of the 16 places; 15 handshakes that never
        # finish take the rest.
        hello = client_hello()
        half = []
        try:
            for _ in range(15):
                sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
                half.append(sock)
                sock.sendall(hello[:len(hello) // 2])
            wait = time.monotonic() + CLOSE_WITHIN
            while stats_of(self.witness).connections_current < 16:
                self.assertLess(time.monotonic(), wait, "the half-open ones were not accepted")
            # The 17th is closed without a frame; the witness is served.
            self.assertRefusedWithoutAFrame()
            self.assertOthersServed()
            # --idle-timeout 2 closes every one of them.
            for sock in half:
                self.assertClosedServingOthers(sock, 2 + CLOSE_WITHIN)
        finally:
            for sock in half:
                sock.close()
        c = self.connect(CERTS.client_context())
        call(c, "Ping", None, pb.PingResponse)
        self.assertLess(rss_bytes(self.server.pid) - before, 32 << 20)

    def test_a_slow_handshake_under_max_clients_pressure(self):
        # The witness and 14 more hold 15 of the 16 places and stay busy
        # (a Ping each in turn); the 16th is taken by a client dribbling its
        # ClientHello a byte at a time: that is no progress, so it is closed
        # at the idle timeout however steadily it dribbles, and its place is
        # free again.
        busy = [self.witness] + [self.connect(CERTS.client_context()) for _ in range(14)]
        hello = client_hello()
        slow = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        try:
            start = time.monotonic()
            closed = False
            for i in range(len(hello) - 1):
                try:
                    slow.sendall(hello[i:i + 1])
                    if i == 0:
                        self.assertRefusedWithoutAFrame()       # all 16 places taken
                    call(busy[i % len(busy)], "Ping", None, pb.PingResponse)
                    closed = closed_within(slow, 0.02)
                except OSError:
                    closed = True
                if closed:
                    break
                self.assertLess(time.monotonic() - start, 2 + CLOSE_WITHIN)
            self.assertTrue(closed or closed_within(slow, 2 + CLOSE_WITHIN))
        finally:
            slow.close()
        self.server.wait_for_stderr(r"\(idle\): idle timeout")
        late = self.connect(CERTS.client_context())
        call(late, "Ping", None, pb.PingResponse)
        self.assertEqual(stats_of(late).connections_current, 16)
        self.assertRefusedWithoutAFrame()


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
