"""test_tls_clients - the C client library and kvctl over TLS (issue 17),
against a kvstored started with --tls-cert (and --tls-client-ca):
kvctl with --cacert sets and gets, by IP address and by name; a server the
CA does not sign, a server certificate naming another host and an expired
one are refused, with a one-line reason and exit 3; --insecure-skip-verify
accepts any; --tls alone trusts the system's store (which does not know the
test CA); mutual TLS with --cert and --key, refused without them; the
KVCTL_* variables; a refusal of the client's certificate is not retried;
a usage error for --cert without --key and the other way
round; a watch over TLS receives its events; values of several MB and a
pipelined batch; the interactive shell; a server that closes while
kvctl writes; a connection the server closed at its idle timeout opened
again (writing to the reset socket raises no SIGPIPE); a handshake a silent server never answers ends at
--timeout; the commands with connections of their own (snapshot
save, dump, slowlog, clients) and a plaintext kvctl on the TLS port, which
fails at once. tls_client_check (a small C program) calls
kv_client_connect_opts() with a server name, runs a watch over TLS, and
connects again, over TLS, after the server closed its connection.

The certificates are support/tlscerts.py's (Certs and make_cert), plus a server
certificate for "other.example" only; the shell runs on test_kvctl.py's
Terminal (a pseudo-terminal). $KVCTL, $KVSTORED and
$TLS_CLIENT_CHECK name the binaries (meson test sets them).
"""

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from kvstored import Server
import tlscerts
from test_kvctl import Terminal

KVCTL = os.environ.get("KVCTL", "")
CHECK = os.environ.get("TLS_CLIENT_CHECK", "")
WAIT = 30.0         # seconds any one run, or wait, may take
UNREACHABLE = 3     # kvctl's exit code for a connection that failed
USAGE = 2

CERTS = None


def setUpModule():
    global CERTS
    if not shutil.which("openssl"):
        raise unittest.SkipTest("no openssl command (Debian's openssl package)")
    CERTS = tlscerts.Certs()
    tlscerts.make_cert(CERTS.dir, "elsewhere", "ca",
                       "subjectAltName=DNS:other.example\nextendedKeyUsage=serverAuth")


def tearDownModule():
    if CERTS:
        shutil.rmtree(CERTS.dir, ignore_errors=True)


def clean_env(env=None):
    """The environment for a kvctl run: no KVCTL_* setting but ENV's."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("KVCTL_")}
    full.update(env or {})
    return full


def kvctl(*args, stdin=b"", env=None):
    return subprocess.run([KVCTL, *args], input=stdin, capture_output=True,
                          env=clean_env(env), timeout=WAIT)


def ca(name="ca"):
    return ["--cacert", CERTS.path(name + ".crt")]


def client_cert(name="client"):
    return ["--cert", CERTS.path(name + ".crt"), "--key", CERTS.path(name + ".key")]


class Watcher:
    """kvctl ARGS watch KEY in the background; line() reads its output."""

    def __init__(self, args, key):
        self.proc = subprocess.Popen([KVCTL, *args, "watch", key], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=clean_env())
        self.buf = b""

    def line(self):
        deadline = time.monotonic() + WAIT
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise AssertionError("waited %gs for a line; got %r" % (WAIT, self.buf))
            data = os.read(self.proc.stdout.fileno(), 65536)
            if not data:
                raise AssertionError("kvctl watch ended (%s); stderr %r"
                                     % (self.proc.wait(WAIT), self.proc.stderr.read()))
            self.buf += data
        first, self.buf = self.buf.split(b"\n", 1)
        return first

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=WAIT)
        return self.proc.returncode, err


class TlsClientTest(unittest.TestCase):
    """A TLS kvstored for each test (with CLIENT_CA, client certificates
    required); self.kv() runs kvctl against it by IP address."""
    CLIENT_CA = False
    SERVER_CERT = "server"

    def setUp(self):
        self.server = Server("--tls-cert", CERTS.path(self.SERVER_CERT + ".crt"),
                             "--tls-key", CERTS.path(self.SERVER_CERT + ".key"),
                             *(["--tls-client-ca", CERTS.path("ca.crt")] if self.CLIENT_CA
                               else []), capture_stderr=True)
        self.addCleanup(self.server.stop)
        self.tmp = tempfile.mkdtemp(prefix="kvctl-tls.")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def kv(self, *args, endpoint=None, **kw):
        return kvctl("-e", endpoint or self.server.endpoint, *args, **kw)

    def ok(self, *args, **kw):
        r = self.kv(*args, **kw)
        self.assertEqual((r.returncode, r.stderr), (0, b""), args)
        return r.stdout

    def assertRefused(self, r, reason):
        """R is kvctl's run refused at the handshake, for REASON."""
        self.assertEqual(r.returncode, UNREACHABLE, r.stderr)
        self.assertRegex(r.stderr.decode(), r"^kvctl: .*TLS handshake with %s failed: %s[^\n]*\n$"
                         % (re.escape(self.server.endpoint), reason))

    def check(self, *args, endpoint=None):
        """Runs tls_client_check ENDPOINT ARGS: (exit code, stdout, stderr)."""
        r = subprocess.run([CHECK, endpoint or self.server.endpoint, *args],
                           capture_output=True, timeout=WAIT)
        return r.returncode, r.stdout.decode(), r.stderr.decode()


class TestKvctlOverTls(TlsClientTest):
    def test_set_and_get_with_the_ca(self):
        self.assertEqual(self.ok(*ca(), "set", "k", "over tls"), b"OK\n")
        self.assertEqual(self.ok(*ca(), "get", "k"), b"over tls")
        # By name: the certificate's DNS name is checked, not its IP.
        self.assertEqual(self.ok(*ca(), "get", "k",
                                 endpoint="localhost:%d" % self.server.port), b"over tls")

    def test_every_endpoint_of_a_list_speaks_tls(self):
        # The first endpoint is a TLS server whose certificate names
        # another host: refused, kvctl goes on to the next with the same
        # settings.
        with Server("--tls-cert", CERTS.path("elsewhere.crt"),
                    "--tls-key", CERTS.path("elsewhere.key"), capture_stderr=True) as other:
            self.assertEqual(self.ok(*ca(), "ping", endpoint="%s,%s" % (
                other.endpoint, self.server.endpoint)), b"PONG\n")
            r = self.kv(*ca(), "ping", endpoint="%s,%s" % (self.server.endpoint, other.endpoint))
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_a_server_another_ca_signed_is_refused(self):
        self.assertRefused(self.kv(*ca("other-ca"), "get", "k"),
                           "certificate verify failed: unable to get local issuer certificate")

    def test_tls_alone_trusts_the_system_store_which_knows_no_test_ca(self):
        self.assertRefused(self.kv("--tls", "get", "k"), "certificate verify failed: ")

    def test_insecure_skip_verify_accepts_any_certificate(self):
        self.assertEqual(self.ok("--insecure-skip-verify", "set", "k", "v"), b"OK\n")
        self.assertEqual(self.ok(*ca("other-ca"), "--insecure-skip-verify", "get", "k"), b"v")

    def test_the_kvctl_variables(self):
        env = {"KVCTL_ENDPOINT": self.server.endpoint, "KVCTL_CACERT": CERTS.path("ca.crt")}
        r = kvctl("set", "k", "from env", env=env)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"OK\n", b""))
        r = kvctl("get", "k", env={"KVCTL_ENDPOINT": self.server.endpoint,
                                   "KVCTL_INSECURE_SKIP_VERIFY": "true"})
        self.assertEqual((r.returncode, r.stdout), (0, b"from env"), r.stderr)
        # The flag wins over the variable: another CA, refused.
        self.assertRefused(kvctl("--cacert", CERTS.path("other-ca.crt"), "get", "k", env=env),
                           "certificate verify failed")
        r = kvctl("get", "k", env={"KVCTL_ENDPOINT": self.server.endpoint,
                                   "KVCTL_INSECURE_SKIP_VERIFY": "perhaps"})
        self.assertEqual(r.returncode, USAGE)
        self.assertIn(b"KVCTL_INSECURE_SKIP_VERIFY must be", r.stderr)

    def test_a_plaintext_kvctl_on_the_tls_port_fails_at_once(self):
        start = time.monotonic()
        r = self.kv("get", "k")
        self.assertEqual(r.returncode, UNREACHABLE, r.stderr)
        self.assertLess(time.monotonic() - start, 10.0)

    def test_a_watch_receives_its_events(self):
        w = Watcher(["-e", self.server.endpoint, *ca()], "k")
        self.addCleanup(w.stop)
        # The watch is open once the server counts it.
        deadline = time.monotonic() + WAIT
        while b"watchers=1" not in self.kv(*ca(), stdin=b"stats\n").stdout:
            self.assertLess(time.monotonic(), deadline, "the watch never opened")
            time.sleep(0.05)
        self.ok(*ca(), "set", "k", "v1")
        self.ok(*ca(), "set", "k", "v2")
        self.assertRegex(w.line(), rb'^PUT "k" "v1" rev \d+$')
        self.assertRegex(w.line(), rb'^PUT "k" "v2" rev \d+$')
        self.assertEqual(w.stop(), (0, b""))

    def test_the_shell(self):
        env = dict(clean_env(), HOME=self.tmp, TERM="dumb")
        t = Terminal(["-e", self.server.endpoint, *ca()], env)
        self.addCleanup(t.kill)
        prompt = re.escape(self.server.endpoint.encode() + b"> ")
        t.expect(prompt)
        t.send(b"set k 'in the shell'\r")
        self.assertIn(b"OK", t.expect(prompt))
        t.send(b"get k\r")
        self.assertIn(b"in the shell\r\n", t.expect(prompt))
        t.send(b"quit\r")
        self.assertEqual(t.wait(), 0)

    def test_values_of_several_megabytes_and_a_pipelined_batch(self):
        big = os.urandom(6 << 20)
        self.assertEqual(self.ok(*ca(), "set", "big", stdin=big), b"OK\n")
        self.assertEqual(self.ok(*ca(), "get", "big"), big)
        # A batch is pipelined: its 2,000 lines go out before most answers
        # come back, across many TLS records each way.
        lines = b"".join(b"set k%d %s\n" % (i, b"x" * 1000) for i in range(1000))
        lines += b"".join(b"get k%d\n" % i for i in range(1000))
        out = self.ok(*ca(), stdin=lines).split(b"\n")
        self.assertEqual(out[:1000], [b"OK"] * 1000)
        self.assertEqual(out[1000:2000], [b"x" * 1000] * 1000)

    def test_commands_with_their_own_connections(self):
        self.ok(*ca(), "set", "k", "v")
        snap = os.path.join(self.tmp, "snap")
        self.ok(*ca(), "snapshot", "save", snap)
        self.assertGreater(os.path.getsize(snap), 0)
        dump = os.path.join(self.tmp, "dump")
        self.ok(*ca(), "dump", dump)
        self.ok(*ca(), "clear", "k")
        self.ok(*ca(), "load", dump)
        self.assertEqual(self.ok(*ca(), "get", "k"), b"v")
        self.ok(*ca(), "slowlog")
        self.assertIn(b"127.0.0.1:", self.ok(*ca(), "clients"))
        # A single server: cluster status reaches it and says so.
        r = self.kv(*ca(), "cluster", "status")
        self.assertNotIn(b"TLS", r.stderr)
        self.assertNotIn(b"unreachable", r.stdout)

    def test_usage_errors(self):
        for args, why in ((["--cert", CERTS.path("client.crt")], b"--cert needs --key too"),
                          (["--key", CERTS.path("client.key")], b"--key needs --cert too"),
                          (["--cacert", os.path.join(self.tmp, "none")],
                           b"--cacert: cannot open "),
                          (["--cacert", ""], b"--cacert wants a file name")):
            r = self.kv(*args, "get", "k")
            self.assertEqual(r.returncode, USAGE, args)
            self.assertIn(why, r.stderr)
        r = kvctl("get", "k", env={"KVCTL_KEY": CERTS.path("client.key")})
        self.assertEqual(r.returncode, USAGE)
        self.assertIn(b"KVCTL_KEY needs --cert too", r.stderr)
        # A file that opens but is no certificate: the library says which.
        r = self.kv("--cacert", CERTS.path("client.ext"), "get", "k")
        self.assertEqual(r.returncode, UNREACHABLE)
        self.assertIn(b"TLS: cannot load the CA file " + CERTS.path("client.ext").encode(),
                      r.stderr)

    def test_the_library_with_a_ca_and_a_watch(self):
        self.assertEqual(self.check("--ca", CERTS.path("ca.crt")), (0, "ok\n", ""))
        code, _, err = self.check("--ca", CERTS.path("other-ca.crt"))
        self.assertEqual(code, 1)
        self.assertIn("certificate verify failed", err)
        # Without TLS the connect succeeds (TCP) and the first call fails:
        # the TLS port closes the connection.
        code, _, err = self.check("--plaintext")
        self.assertEqual(code, 2)
        self.assertIn("set: UNAVAILABLE: connection closed by the server", err)


class TestServerClosesMidWrite(TlsClientTest):
    def setUp(self):
        self.server = Server("--tls-cert", CERTS.path("server.crt"),
                             "--tls-key", CERTS.path("server.key"),
                             "--max-frame-bytes", "64K", capture_stderr=True)
        self.addCleanup(self.server.stop)

    def test_the_failed_write_is_one_line(self):
        # The server refuses the frame at its length and closes while kvctl
        # still writes its 8 MB: the write fails (a reset), and so does the
        # call (exit 3, or 4 when the server's answer was read first).
        for _ in range(3):
            r = self.kv(*ca(), "set", "big", stdin=os.urandom(8 << 20))
            self.assertIn(r.returncode, (UNREACHABLE, 4), r.stderr)
            self.assertEqual(r.stderr.count(b"\n"), 1, r.stderr)


class TestIdleTimeout(TlsClientTest):
    def setUp(self):
        self.server = Server(*CERTS.server_args(), "--idle-timeout", "0.3", capture_stderr=True)
        self.addCleanup(self.server.stop)

    def test_a_connection_the_server_closed_is_opened_again_without_sigpipe(self):
        # The server closed the idle connection (close_notify, FIN); the
        # ping goes out on it, is refused with a reset, and the library
        # closes its side, writing its own close_notify to a reset socket:
        # EPIPE, which must not be SIGPIPE (OpenSSL's own socket writes
        # would raise it). The ping is then sent again on a new connection.
        for _ in range(3):
            self.assertEqual(self.check("--ca", CERTS.path("ca.crt"), "--idle", "800"),
                             (0, "ok\n", ""))


class TestSilentServer(unittest.TestCase):
    def test_the_handshake_is_bounded_by_the_timeout(self):
        # A listener that never answers: the TCP connect succeeds (the
        # kernel's backlog) and the ClientHello goes unanswered.
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(4)
            endpoint = "127.0.0.1:%d" % silent.getsockname()[1]
            start = time.monotonic()
            r = kvctl("-e", endpoint, "--timeout", "1", *ca(), "ping")
            self.assertEqual(r.returncode, UNREACHABLE, r.stderr)
            self.assertIn(b"TLS handshake with %s failed: timed out after 1000 ms"
                          % endpoint.encode(), r.stderr)
            self.assertLess(time.monotonic() - start, 10.0)


class TestHostnameMismatch(TlsClientTest):
    SERVER_CERT = "elsewhere"      # for other.example only

    def test_a_certificate_for_another_name_is_refused(self):
        self.assertRefused(self.kv(*ca(), "get", "k"),
                           "certificate verify failed: IP address mismatch")
        r = self.kv(*ca(), "get", "k", endpoint="localhost:%d" % self.server.port)
        self.assertEqual(r.returncode, UNREACHABLE)
        self.assertIn(b"TLS handshake with localhost:%d failed: certificate verify failed: "
                      b"hostname mismatch" % self.server.port, r.stderr)

    def test_the_name_it_carries_is_accepted(self):
        self.assertEqual(self.check("--ca", CERTS.path("ca.crt"),
                                    "--server-name", "other.example"), (0, "ok\n", ""))
        code, _, err = self.check("--ca", CERTS.path("ca.crt"), "--server-name", "other.test")
        self.assertEqual(code, 1)
        self.assertIn("failed: certificate verify failed: hostname mismatch", err)

    def test_insecure_skip_verify_skips_the_name_too(self):
        self.assertEqual(self.ok("--insecure-skip-verify", "ping"), b"PONG\n")


class TestExpiredServerCertificate(TlsClientTest):
    SERVER_CERT = "expired-server"

    def test_it_is_refused(self):
        self.assertRefused(self.kv(*ca(), "ping"),
                           "certificate verify failed: certificate has expired")


class TestClientCertificates(TlsClientTest):
    CLIENT_CA = True

    def test_accepted_with_cert_and_key(self):
        self.assertEqual(self.ok(*ca(), *client_cert(), "set", "k", "mutual"), b"OK\n")
        env = {"KVCTL_CERT": CERTS.path("client.crt"), "KVCTL_KEY": CERTS.path("client.key"),
               "KVCTL_CACERT": CERTS.path("ca.crt")}
        r = kvctl("-e", self.server.endpoint, "get", "k", env=env)
        self.assertEqual((r.returncode, r.stdout), (0, b"mutual"), r.stderr)
        self.assertEqual(self.check("--ca", CERTS.path("ca.crt"), "--cert",
                                    CERTS.path("client.crt"), "--key", CERTS.path("client.key")),
                         (0, "ok\n", ""))

    def test_a_key_that_is_not_the_certificate_s(self):
        r = self.kv(*ca(), "--cert", CERTS.path("client.crt"),
                    "--key", CERTS.path("other-client.key"), "ping")
        self.assertEqual(r.returncode, UNREACHABLE)
        self.assertIn(b"TLS: cannot load the client key " + CERTS.path("other-client.key").encode()
                      + b": key values mismatch", r.stderr)

    def test_refused_without_them_or_with_another_ca_s(self):
        # TLS 1.3: the server refuses the certificate after the client's
        # handshake is done, so the failure shows on the first call: the
        # server's alert ("certificate required"), or a reset when the
        # server closed with the request unread, which loses the alert.
        for args in ([], client_cert("other-client"), client_cert("expired-client")):
            r = self.kv(*ca(), *args, "get", "k")
            self.assertEqual(r.returncode, UNREACHABLE, (args, r.stderr))
            self.assertRegex(r.stderr.decode(), r'^kvctl: get "k": UNAVAILABLE: connection '
                             r'(closed by the server|to the server lost): ', args)

    def test_a_refusal_is_not_tried_again(self):
        # The server's alert says it will refuse this client on any new
        # connection too: the call fails at once, over its one connection,
        # rather than reconnecting until --timeout is up.
        r = self.kv(*ca(), "--timeout", "20", "get", "k")
        self.assertEqual(r.returncode, UNREACHABLE, r.stderr)
        self.assertIn(b"alert certificate required", r.stderr)
        stats = self.ok(*ca(), *client_cert(), "stats").decode()
        self.assertIn("connections_total: 2\n", stats)


if __name__ == "__main__":
    unittest.main()
