"""A server started with --auth-token-file: calls before Auth are
UNAUTHENTICATED; the token option of Client authenticates at connect."""

import os
import tempfile
import unittest

import kvstore
from kvstore import pb
from kvstored import Server

TOKEN = "s3cret-token"
server = None


def setUpModule():
    global server, token_dir
    token_dir = tempfile.TemporaryDirectory()
    path = os.path.join(token_dir.name, "token")
    with open(path, "w") as f:
        f.write(TOKEN + "\n")
    server = Server("--auth-token-file", path)


def tearDownModule():
    try:
        assert server.stop() == 0
    finally:
        token_dir.cleanup()


class TestAuth(unittest.TestCase):
    def test_calls_before_auth_are_unauthenticated(self):
        with kvstore.Client(server.endpoint, timeout=10) as c:
            with self.assertRaises(kvstore.Unauthenticated) as cm:
                c.get(b"k")
            self.assertEqual((cm.exception.code, cm.exception.code_name), (16, "UNAUTHENTICATED"))
            c.Auth(pb.AuthRequest(token=TOKEN.encode()))
            c.set(b"k", b"v")
            self.assertEqual(c.get(b"k"), b"v")

    def test_token_option_authenticates(self):
        with kvstore.Client(server.endpoint, timeout=10, token=TOKEN) as c:
            self.assertEqual(c.ping(), "PONG")

    def test_wrong_token_raises_at_connect(self):
        with self.assertRaises(kvstore.Unauthenticated) as cm:
            kvstore.Client(server.endpoint, timeout=10, token="wrong")
        self.assertIn("wrong token", cm.exception.message)


if __name__ == "__main__":
    unittest.main()
