"""test_edges_live - kvstored refusing to start on a bad --listen port or a
token file that is not one: one line on stderr, the documented exit status,
and promptly (a FIFO as the token file used to block startup forever).

$KVSTORED names the server binary (meson test sets it); Debian's
/usr/bin/python3, stdlib only, with tests/support/kvstored.py (on
PYTHONPATH), whose refused() bounds every run.
"""

import os
import tempfile
import unittest

from kvstored import refused


class TestListenPort(unittest.TestCase):
    def test_ports_past_65535_are_usage_errors(self):
        # 70000 listened on 4464 and 99999 on 34463.
        for endpoint in ["127.0.0.1:70000", "127.0.0.1:65536", "127.0.0.1:99999",
                         ":4294967296", "127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.1:",
                         "127.0.0.1", "[::1]"]:
            with self.subTest(endpoint=endpoint):
                status, err, _ = refused(listen=endpoint)
                self.assertEqual(status, 2, err)
                self.assertEqual(err.count("\n"), 1, err)
                self.assertTrue(err.startswith("kvstored: --listen: "), err)
                self.assertIn(endpoint, err)
        status, err, _ = refused(listen="127.0.0.1:70000")
        self.assertEqual(err, 'kvstored: --listen: bad port "70000" in "127.0.0.1:70000" '
                              '(want a number from 0 to 65535)\n')


class TestTokenFile(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def assertRefused(self, token_file, why):
        status, err, took = refused("--auth-token-file", token_file)
        self.assertEqual(status, 1, err)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertTrue(err.startswith("kvstored: "), err)
        self.assertIn(why, err)
        self.assertLess(took, 5.0)

    def test_a_fifo_is_refused_at_once(self):
        fifo = self.path("fifo")
        os.mkfifo(fifo)
        self.assertRefused(fifo, "is not a regular file (a FIFO)")

    def test_a_directory_is_refused(self):
        self.assertRefused(self.tmp.name, "is not a regular file (a directory)")

    def test_a_first_line_longer_than_4095_bytes_is_refused(self):
        with open(self.path("long"), "wb") as f:
            f.write(b"t" * 4096 + b"\n")
        self.assertRefused(self.path("long"), "longer than 4095 bytes")
        with open(self.path("empty"), "wb") as f:
            f.write(b"\nsecond line\n")
        self.assertRefused(self.path("empty"), "holds no token")


if __name__ == "__main__":
    if not os.access(os.environ.get("KVSTORED", ""), os.X_OK):
        raise SystemExit("set KVSTORED to the built kvstored (meson test does)")
    unittest.main(verbosity=2)
