"""test_fault_harness - the tests of the fault test's own parts (issue 15),
without a cluster: netfault's partitions cut plain TCP connections between
127.0.0.x addresses and healing restores them (root: the program re-runs
itself in a network namespace of its own; skipped otherwise), and the
fault test's workers, on a single plain kvstored with no faults, record a
history the checker finds linearizable, with every kind of operation
answered.

    KVSTORED=build/src/kvstored PYTHONPATH=tests/support:client/python:build/client/python \\
        /usr/bin/python3 tests/test_fault_harness.py -v
"""

import os
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
import netfault  # noqa: E402
from faults import Workload  # noqa: E402
from kvstored import Server  # noqa: E402
from linearize import check  # noqa: E402

BLOCKED_WAIT = 0.5      # a connect that gets no SYN-ACK in this long is cut
CONNECT = ("import socket, sys\n"
           "try:\n"
           "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=%g).close()\n"
           "    print('connected')\n"
           "except OSError as e:\n"
           "    print('failed: %%s' %% e)\n" % BLOCKED_WAIT)

WHY_NO_NETNS = netfault.unavailable()


def connects(gid, host, port):
    """Whether a process running with group GID connects to HOST:PORT."""
    def as_gid():
        os.setgroups([])
        os.setgid(gid)
    r = subprocess.run([sys.executable, "-c", CONNECT, host, str(port)], preexec_fn=as_gid,
                       capture_output=True, text=True, timeout=20)
    return r.stdout.strip() == "connected"


@unittest.skipIf(WHY_NO_NETNS, "partitions: %s" % WHY_NO_NETNS)
class PartitionTest(unittest.TestCase):
    """Three 'nodes' (groups 4101-4103, 127.0.0.1-3), each a listening
    socket; a connection from node A's group to node B's address stands
    for A's raft traffic to B."""

    NODES = {1: (4101, "127.0.0.1"), 2: (4102, "127.0.0.2"), 3: (4103, "127.0.0.3")}

    def setUp(self):
        self.listeners = {}
        for i, (_, host) in self.NODES.items():
            s = socket.socket()
            s.bind((host, 0))
            s.listen(64)
            self.listeners[i] = s
        self.p = netfault.Partitioner(self.NODES)

    def tearDown(self):
        self.p.close()
        for s in self.listeners.values():
            s.close()

    def reach(self):
        """The set of (a, b): node a's group connects to node b's address."""
        out = set()
        for a, (gid, _) in self.NODES.items():
            for b, s in self.listeners.items():
                if a != b and connects(gid, *s.getsockname()):
                    out.add((a, b))
        return out

    def test_isolate_cuts_both_ways_and_heal_restores(self):
        everyone = {(a, b) for a in self.NODES for b in self.NODES if a != b}
        self.assertEqual(self.reach(), everyone)
        self.p.partition([1], [2, 3])
        self.assertEqual(self.reach(), {(2, 3), (3, 2)})
        # The test's own clients (root's group) still reach every node.
        for s in self.listeners.values():
            socket.create_connection(s.getsockname(), timeout=BLOCKED_WAIT).close()
        self.p.heal()
        self.assertEqual(self.reach(), everyone)

    def test_bridge_and_replacing_a_partition(self):
        self.p.partition([1], [2])                  # 3 reaches both
        self.assertEqual(self.reach(), {(1, 3), (3, 1), (2, 3), (3, 2)})
        self.p.block([(2, 3)])                      # replaces the bridge
        self.assertEqual(self.reach(), {(1, 2), (2, 1), (1, 3), (3, 1)})
        self.p.heal()
        self.assertEqual(self.p.blocked, frozenset())

    def test_established_connection_stops_carrying_data(self):
        a_gid, _ = self.NODES[1]
        host, port = self.listeners[2].getsockname()
        # The child connects as node 1, then sends once a line says so.
        code = ("import socket, sys\n"
                "c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)\n"
                "print('up', flush=True)\n"
                "for line in sys.stdin:\n"
                "    c.sendall(line.encode())\n")

        def as_node1():
            os.setgroups([])
            os.setgid(a_gid)
        child = subprocess.Popen([sys.executable, "-c", code, host, str(port)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 preexec_fn=as_node1)
        try:
            self.assertEqual(child.stdout.readline().strip(), "up")
            conn, _ = self.listeners[2].accept()
            conn.settimeout(5)
            child.stdin.write("before\n")
            child.stdin.flush()
            self.assertEqual(conn.recv(100), b"before\n")
            self.p.partition([1], [2])
            child.stdin.write("during\n")
            child.stdin.flush()
            conn.settimeout(BLOCKED_WAIT)
            with self.assertRaises(socket.timeout):
                conn.recv(100)
            self.p.heal()                           # TCP retransmits it
            conn.settimeout(10)
            self.assertEqual(conn.recv(100), b"during\n")
            conn.close()
        finally:
            child.stdin.close()
            child.wait(10)
            child.stdout.close()


class WorkloadTest(unittest.TestCase):
    """The workers against one plain kvstored, no faults."""

    def run_until(self, load, ops):
        """Runs LOAD's workers until they recorded OPS operations (30 s at
        most), then stops them."""
        load.start()
        deadline = time.monotonic() + 30
        while len(load.history()) < ops and time.monotonic() < deadline:
            load.stop.wait(0.1)
        self.assertTrue(load.finish(), "the workers did not stop")

    def test_single_node_history_is_linearizable(self):
        server = Server(capture_stderr=True)
        try:
            load = Workload([server.endpoint], seed=7, workers=5, slots=3, ops_per_key=120)
            self.run_until(load, 1500)
        finally:
            self.assertEqual(server.stop(), 0)
        h = load.history()
        self.assertEqual(load.problems, [])
        statuses = {}
        for o in h:
            statuses.setdefault((o.kind, o.status), 0)
            statuses[(o.kind, o.status)] += 1
        # Every kind answered, and the conditional ones both ways.
        for want in [("get", "ok"), ("set", "ok"), ("cas", "ok"), ("cas", "failed_precondition"),
                     ("delete", "ok")]:
            self.assertIn(want, statuses, statuses)
        self.assertFalse([o for o in h if o.status in ("info", "fail")], statuses)
        self.assertGreater(len({o.key for o in h}), 3, "keys did not rotate")
        result = check(h)
        self.assertTrue(result.ok, result.report())

    def test_two_unreplicated_servers_are_caught(self):
        # Two plain servers that know nothing of each other, as a "cluster"
        # that lost every write to the other node: the workers spread over
        # both, and the checker must refuse their history.
        a, b = Server(capture_stderr=True), Server(capture_stderr=True)
        try:
            load = Workload([a.endpoint, b.endpoint], seed=11, workers=4, slots=2,
                            ops_per_key=100)
            targets = [a.endpoint, b.endpoint, a.endpoint, b.endpoint]
            for w, t in zip(load.workers, targets):
                w.target = t
            self.run_until(load, 400)
        finally:
            a.stop()
            b.stop()
        result = check(load.history())
        self.assertEqual(result.verdict, "not linearizable", result.report())

    def test_refused_connection_is_a_definite_failure(self):
        with socket.socket() as s:          # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        load = Workload(["127.0.0.1:%d" % port], seed=1, workers=1)
        load.workers[0].one()
        (op,) = load.history()
        self.assertEqual(op.status, "fail")


if __name__ == "__main__":
    if os.geteuid() == 0 and not WHY_NO_NETNS:
        netfault.enter_netns()
    unittest.main()
