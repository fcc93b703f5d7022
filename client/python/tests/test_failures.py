"""A server that dies or stalls in the middle of a call: the client fails
with a clear error within its timeout, never hangs. Each test starts (and
ends) its own kvstored."""

import signal
import threading
import time
import unittest

import kvstore
from kvstored import Server


class TestServerFailures(unittest.TestCase):
    def setUp(self):
        self.server = Server()
        self.addCleanup(self.server.kill)

    def kill_later(self, seconds):
        timer = threading.Timer(seconds, self.server.signal, (signal.SIGKILL,))
        timer.start()
        self.addCleanup(timer.cancel)

    def test_server_killed_mid_call(self):
        # The read is sent again, to the one endpoint, until the timeout.
        c = kvstore.Client(self.server.endpoint, timeout=2)
        self.addCleanup(c.close)
        c.set(b"k", b"v")
        # Stopped, the server cannot answer: the call is surely in flight
        # when SIGKILL lands.
        self.server.signal(signal.SIGSTOP)
        self.kill_later(0.3)
        start = time.monotonic()
        with self.assertRaises(kvstore.Unavailable) as cm:
            c.get(b"k")
        self.assertLess(time.monotonic() - start, 5)
        e = cm.exception
        self.assertEqual((e.code, e.code_name), (14, "UNAVAILABLE"))
        self.assertRegex(e.message, "closed by the server|lost|could not connect")
        self.assertTrue(c.closed)
        with self.assertRaises(kvstore.Unavailable):
            c.ping()

    def test_server_killed_with_a_pipeline_in_flight(self):
        c = kvstore.Client(self.server.endpoint, timeout=2)
        self.addCleanup(c.close)
        self.server.signal(signal.SIGSTOP)
        self.kill_later(0.3)
        p = c.pipeline()
        for i in range(100):
            p.set(b"k%d" % i, b"v" * 1000)
        start = time.monotonic()
        results = p.execute(raise_on_error=False)
        self.assertLess(time.monotonic() - start, 5)
        self.assertEqual(len(results), 100)
        for r in results:
            self.assertIsInstance(r, kvstore.Unavailable)

    def test_stalled_server_times_out_and_the_connection_recovers(self):
        c = kvstore.Client(self.server.endpoint, timeout=10)
        self.addCleanup(c.close)
        c.set(b"k", b"before")
        self.server.signal(signal.SIGSTOP)
        start = time.monotonic()
        with self.assertRaises(kvstore.DeadlineExceeded) as cm:
            c.get(b"k", timeout=0.5)
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.5)
        self.assertLess(elapsed, 3)
        self.assertEqual((cm.exception.code, cm.exception.code_name), (4, "DEADLINE_EXCEEDED"))
        self.assertIsInstance(cm.exception, TimeoutError)
        self.server.signal(signal.SIGCONT)
        # The late answer to the timed-out Get is dropped, not taken for this one.
        self.assertEqual(c.ping("after"), "after")
        self.assertEqual(c.get(b"k"), b"before")

    def test_close_from_another_thread_ends_a_blocked_call(self):
        c = kvstore.Client(self.server.endpoint, timeout=10)
        self.server.signal(signal.SIGSTOP)
        timer = threading.Timer(0.3, c.close)
        timer.start()
        self.addCleanup(timer.cancel)
        start = time.monotonic()
        with self.assertRaises(kvstore.Unavailable) as cm:
            c.get(b"k")
        self.assertLess(time.monotonic() - start, 5)
        self.assertIn("client closed", cm.exception.message)

    def test_sigterm_exits_zero(self):
        with kvstore.Client(self.server.endpoint) as c:
            self.assertEqual(c.ping(), "PONG")
        self.assertEqual(self.server.stop(), 0)


if __name__ == "__main__":
    unittest.main()
