"""test_clients - the server's own figures in Stats (v3.1: net bytes, ops/s,
closes by reason, settings, listen addresses, engine syncs) and the client
list (ClientList, ClientKill), on the wire against a live kvstored.

Speaks raw frames (tests/support/wire.py), counting the bytes each
connection sends and receives, so that the byte figures are checked
against what really crossed the socket. Waits are for events with generous
deadlines; nothing depends on how fast this machine is.
"""

import os
import shutil
import tempfile
import time
import unittest

import wire
from kvstore import pb
from kvstored import Server, ServerTest

DEADLINE = 30.0         # seconds any single wait may take
OK, INVALID, NOT_FOUND = 0, 3, 5


class Conn(wire.Connection):
    """A connection that counts the frame bytes it sent and received."""

    def __init__(self, endpoint):
        super().__init__(endpoint, timeout=DEADLINE)
        self.sent = self.received = 0

    def send(self, method, request, client_id=b"", seq=0):
        path = method if method.startswith("/") else wire.METHOD_PREFIX + method
        payload = b"" if request is None else request.SerializeToString()
        body = pb.RpcRequest(id=self.next_id, method=path, payload=payload).SerializeToString()
        self.sent += len(wire.frame(body))
        return super().send(method, request, client_id, seq)

    def _frame(self):
        body = super()._frame()
        if body is not None:
            self.received += len(wire.frame(body))
        return body

    def call(self, method, msg, resp_type):
        rid = self.send(method, msg)
        r = self.recv()
        assert r.id == rid and not r.stream, r
        if r.code != OK:
            return r.code, r.message
        out = resp_type()
        out.ParseFromString(r.payload)
        return OK, out

    def ok(self, method, msg, resp_type):
        code, out = self.call(method, msg, resp_type)
        assert code == OK, (method, code, out)
        return out

    def stats(self):
        return self.ok("Stats", pb.StatsRequest(), pb.StatsResponse)

    def clients(self):
        return self.ok("ClientList", pb.ClientListRequest(), pb.ClientListResponse).clients

    def where(self):
        """This end's address as the server names it: HOST:PORT."""
        host, port = self.sock.getsockname()[:2]
        return "%s:%d" % (host, port)

    def sees_eof(self, timeout=DEADLINE):
        """Whether the server closed this connection within TIMEOUT."""
        try:
            self.recv(timeout)
        except wire.WireError as exc:
            return "closed" in str(exc) or "lost" in str(exc)
        return False


def closed(stats):
    return {c.reason: c.count for c in stats.connections_closed}


def wait_until(what, check, timeout=DEADLINE, step=0.05):
    """Calls CHECK until it returns something true; returns it. Fails after
    TIMEOUT seconds."""
    end = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError("not within %gs: %s" % (timeout, what))
        time.sleep(step)


class Base(ServerTest):
    CONN = Conn

    def fresh_stats(self):
        """Stats from a connection of its own, closed at once."""
        c = Conn(self.server.endpoint)
        try:
            return c.stats()
        finally:
            c.close()


class Figures(Base):
    ARGS = ("--max-clients", "77", "--slowlog-max-len", "9")

    def test_net_bytes_count_what_crossed_the_socket(self):
        c = self.conn()
        received0 = c.received
        before = c.stats()
        sent1 = c.sent
        c.ok("Set", pb.SetRequest(key=b"k", value=b"v" * 10000), pb.SetResponse)
        received2 = c.received
        after = c.stats()
        # Only this connection talks. Every byte it sent after the first
        # Stats was read before the second was answered; the first Stats'
        # answer and the Set's were written before the second was built.
        self.assertEqual(after.net_input_bytes - before.net_input_bytes, c.sent - sent1)
        self.assertGreater(c.sent - sent1, 10000)
        self.assertEqual(after.net_output_bytes - before.net_output_bytes, received2 - received0)

    def test_ops_per_second_after_a_burst(self):
        c = self.conn()
        for _ in range(500):
            c.send("Ping", pb.PingRequest())
        for _ in range(500):
            self.assertEqual(c.recv().code, OK)
        # The figure is the last whole second's: within a tick or two of the
        # once-a-second timer it shows the burst, or the larger part of it
        # when the burst straddled ticks (100: a burst spread over 5 s).
        wait_until("ops_per_second shows the burst",
                   lambda: c.stats().ops_per_second >= 100, timeout=10.0, step=0.1)

    def test_closed_by_the_client(self):
        before = closed(self.fresh_stats()).get("client", 0)
        c = Conn(self.server.endpoint)
        c.ok("Ping", pb.PingRequest(), pb.PingResponse)
        c.close()
        # fresh_stats' own connections close as "client" too: count ours.
        wait_until("closed{client} grows",
                   lambda: closed(self.fresh_stats()).get("client", 0) >= before + 2)

    def test_settings_and_addresses(self):
        s = self.conn().stats()
        settings = {x.name: x.value for x in s.settings}
        self.assertEqual(settings["max-clients"], "77")
        self.assertEqual(settings["slowlog-max-len"], "9")
        self.assertEqual(settings["listen"], "127.0.0.1:0")     # as given
        self.assertIn("max-frame-bytes", settings)
        self.assertEqual(settings["auth-token-file"], "")       # not set
        self.assertEqual(list(s.listen_addresses), [self.server.endpoint])   # as bound
        self.assertEqual(s.pid, self.server.pid)
        self.assertGreaterEqual(s.cpu_user_seconds + s.cpu_system_seconds, 0.0)
        reasons = closed(s)
        self.assertEqual(set(reasons), {"client", "idle", "output", "protocol", "auth",
                                        "killed", "error", "shutdown"})

    def test_settings_match_print_config(self):
        import subprocess
        from kvstored import server_binary
        out = subprocess.run([server_binary(), "--listen", "127.0.0.1:0", *self.ARGS,
                              "--print-config"], capture_output=True, text=True,
                             timeout=DEADLINE, check=True).stdout
        printed = {}
        for line in out.splitlines():
            if line.startswith("#"):
                continue
            name, _, value = line.partition(" = ")
            printed[name] = value
        stats = {x.name: x.value for x in self.conn().stats().settings if x.value}
        if os.environ.get("KVSTORED_ENGINE", "memory") != "memory":
            for name in ("engine", "dir"):      # the helper's, not ARGS'
                stats.pop(name, None)
                printed.pop(name, None)
        self.assertEqual(stats, printed)


class ClientList(Base):
    def test_lists_the_other_connection(self):
        a, b = self.conn(), self.conn()
        for _ in range(3):
            a.ok("Ping", pb.PingRequest(), pb.PingResponse)
        b.ok("Ping", pb.PingRequest(), pb.PingResponse)
        rows = {r.peer: r for r in b.clients()}
        self.assertEqual(set(rows), {a.where(), b.where()})
        ra, rb = rows[a.where()], rows[b.where()]
        self.assertEqual(ra.requests, 3)
        self.assertEqual(rb.requests, 1)        # its ClientList not yet answered
        self.assertFalse(ra.current)
        self.assertTrue(rb.current)
        self.assertLess(ra.id, rb.id)           # ids grow with each connection
        self.assertTrue(ra.authenticated)
        self.assertEqual(ra.watches, 0)
        self.assertEqual(ra.input_buffer_bytes, 0)
        self.assertGreaterEqual(ra.age_ms, ra.idle_ms)

    def test_watches_are_counted(self):
        a, b = self.conn(), self.conn()
        a.ok("Watch", pb.WatchRequest(prefix=b"p/"), pb.WatchResponse)
        row = [r for r in b.clients() if r.peer == a.where()][0]
        self.assertEqual(row.watches, 1)

    def test_kill_by_peer(self):
        a, b = self.conn(), self.conn()
        a.ok("Ping", pb.PingRequest(), pb.PingResponse)
        out = b.ok("ClientKill", pb.ClientKillRequest(peer=a.where()), pb.ClientKillResponse)
        self.assertEqual(out.killed, 1)
        self.assertTrue(a.sees_eof())
        self.assertNotIn(a.where(), [r.peer for r in b.clients()])
        self.assertEqual(closed(b.stats())["killed"], 1)

    def test_kill_by_id(self):
        a, b = self.conn(), self.conn()
        a.ok("Ping", pb.PingRequest(), pb.PingResponse)
        ida = [r.id for r in b.clients() if r.peer == a.where()][0]
        out = b.ok("ClientKill", pb.ClientKillRequest(id=ida), pb.ClientKillResponse)
        self.assertEqual(out.killed, 1)
        self.assertTrue(a.sees_eof())

    def test_kill_self_answers_first(self):
        a = self.conn()
        me = [r.id for r in a.clients() if r.current][0]
        out = a.ok("ClientKill", pb.ClientKillRequest(id=me), pb.ClientKillResponse)
        self.assertEqual(out.killed, 1)
        self.assertTrue(a.sees_eof())
        self.assertEqual(closed(self.fresh_stats())["killed"], 1)

    def test_kill_of_nobody(self):
        b = self.conn()
        code, msg = b.call("ClientKill", pb.ClientKillRequest(peer="127.0.0.1:1"),
                           pb.ClientKillResponse)
        self.assertEqual(code, NOT_FOUND, msg)
        self.assertIn("127.0.0.1:1", msg)
        code, _ = b.call("ClientKill", pb.ClientKillRequest(id=999999), pb.ClientKillResponse)
        self.assertEqual(code, NOT_FOUND)
        code, _ = b.call("ClientKill", pb.ClientKillRequest(), pb.ClientKillResponse)
        self.assertEqual(code, INVALID)
        self.assertEqual(closed(b.stats())["killed"], 0)

    def test_kill_by_a_peer_that_is_not_utf8(self):
        """The peer is a protobuf string echoed in the answer's message: not
        UTF-8, it is refused (not echoed, which would make the answer one a
        strict client cannot decode); a long one is not echoed whole."""
        b = self.conn()
        body = pb.RpcRequest(id=77, method=wire.METHOD_PREFIX + "ClientKill",
                             payload=b"\x0a\x04\xff\xfe:1").SerializeToString()
        b.sock.sendall(wire.frame(body))
        r = b.recv()        # a DecodeError here: the answer was not UTF-8
        self.assertEqual((r.id, r.code), (77, INVALID), r.message)
        code, msg = b.call("ClientKill", pb.ClientKillRequest(peer="x" * 100000),
                           pb.ClientKillResponse)
        self.assertEqual(code, NOT_FOUND, msg)
        self.assertLess(len(msg), 200)
        self.assertEqual(closed(b.stats())["killed"], 0)


class Idle(Base):
    ARGS = ("--idle-timeout", "0.3")

    def test_closed_when_idle(self):
        a = self.conn()
        a.ok("Ping", pb.PingRequest(), pb.PingResponse)
        self.assertTrue(a.sees_eof())
        # Each look is a connection of its own, quicker than the timeout.
        wait_until("closed{idle} counted",
                   lambda: closed(self.fresh_stats()).get("idle", 0) >= 1)


class Syncs(unittest.TestCase):
    """LMDB with --sync always syncs at every flush of a write."""

    def test_syncs_counted(self):
        d = tempfile.mkdtemp(prefix="kvstored-test.")
        server = Server("--engine", "lmdb", "--dir", d, "--sync", "always",
                        engine_from_env=False)
        try:
            c = Conn(server.endpoint)
            before = c.stats()
            for i in range(3):
                c.ok("Set", pb.SetRequest(key=b"k%d" % i, value=b"v"), pb.SetResponse)
            after = c.stats()
            self.assertGreaterEqual(after.engine_syncs_total - before.engine_syncs_total, 3)
            self.assertGreater(after.engine_sync_seconds_total, 0.0)
            c.close()
        finally:
            self.assertEqual(server.stop(), 0)
            shutil.rmtree(d, ignore_errors=True)

    def test_memory_engine_never_syncs(self):
        server = Server("--engine", "memory", engine_from_env=False)
        try:
            c = Conn(server.endpoint)
            c.ok("Set", pb.SetRequest(key=b"k", value=b"v"), pb.SetResponse)
            self.assertEqual(c.stats().engine_syncs_total, 0)
            c.close()
        finally:
            self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
