"""Interop: a value written by one client is read back by another, byte for
byte: C (kvctl, from $KVCTL) <-> Python, and Node <-> Python (with a TTL,
and seen by a watch)."""

import os
import shutil
import subprocess
import unittest

import kvstore
from kvstored import Server

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "node"))
NODE_CLI = os.path.join(NODE_DIR, "test", "interop-cli.js")
VALUE = b"\x00interop\xff\x00" + bytes(range(256))
TIMEOUT = 30
LONG = 600000       # a TTL (ms) that never runs out during a test

server = None


def setUpModule():
    global server
    server = Server()


def tearDownModule():
    assert server.stop() == 0


def run(argv, stdin=b""):
    done = subprocess.run(argv, input=stdin, capture_output=True, timeout=TIMEOUT)
    if done.returncode != 0:
        raise AssertionError("%s exited %d: %s" % (argv, done.returncode,
                                                   done.stderr.decode(errors="replace")))
    return done.stdout


class TestWithC(unittest.TestCase):
    def setUp(self):
        kvctl = os.environ.get("KVCTL")
        if not kvctl or not os.access(kvctl, os.X_OK):
            self.skipTest("no kvctl: set KVCTL to the built client/kvctl binary (got %r)" % kvctl)
        self.kvctl = [kvctl, "-e", server.endpoint]
        self.c = kvstore.Client(server.endpoint, timeout=10)
        self.addCleanup(self.c.close)

    def test_c_writes_python_reads(self):
        run(self.kvctl + ["set", "from-c"], stdin=VALUE)
        self.assertEqual(self.c.get(b"from-c"), VALUE)

    def test_python_writes_c_reads(self):
        self.c.set(b"from-python-to-c", VALUE)
        self.assertEqual(run(self.kvctl + ["get", "from-python-to-c"]), VALUE)


class TestWithNode(unittest.TestCase):
    def setUp(self):
        node = shutil.which("node")
        if node is None:
            self.skipTest("node is not installed")
        if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "protobufjs")):
            self.skipTest("protobufjs is not installed: run npm ci in %s" % NODE_DIR)
        self.node = [node, NODE_CLI, server.endpoint]
        self.c = kvstore.Client(server.endpoint, timeout=10)
        self.addCleanup(self.c.close)

    def test_node_writes_python_reads(self):
        key = b"\x00from-node\xff"
        run(self.node + ["set", key.hex(), VALUE.hex()])
        self.assertEqual(self.c.get(key), VALUE)

    def test_python_writes_node_reads(self):
        key = b"\x00from-python\xff"
        self.c.set(key, VALUE)
        self.assertEqual(bytes.fromhex(run(self.node + ["get", key.hex()]).decode().strip()), VALUE)

    def test_ttl_both_ways(self):
        run(self.node + ["set", b"ttl-from-node".hex(), b"v".hex(), str(LONG)])
        self.assertTrue(0 < self.c.get_entry(b"ttl-from-node").ttl_ms <= LONG)
        self.c.set(b"ttl-from-python", b"v", ttl_ms=LONG)
        ttl = int(run(self.node + ["ttl", b"ttl-from-python".hex()]).decode())
        self.assertTrue(0 < ttl <= LONG, ttl)

    def test_python_watches_a_node_write(self):
        with self.c.watch(prefix=b"watched-from-python/") as w:
            run(self.node + ["set", b"watched-from-python/k".hex(), VALUE.hex(), str(LONG)])
            event = w.next_event(timeout=TIMEOUT)
            self.assertIsNotNone(event, "no event within %ds" % TIMEOUT)
            self.assertEqual((event.type, event.kv.key, event.kv.value),
                             ("PUT", b"watched-from-python/k", VALUE))
            self.assertTrue(0 < event.kv.ttl_ms <= LONG)


if __name__ == "__main__":
    unittest.main()
