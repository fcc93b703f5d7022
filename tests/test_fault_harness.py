"""test_fault_harness - the tests of the fault test's own parts (issue 15),
without a cluster: netfault's partitions cut plain TCP connections between
processes standing for nodes on 127.0.0.x addresses, both ways, leaving
the others and the clients alone, and healing restores them (root: it re-runs
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

BLOCKED_WAIT = 0.5      # a round trip that has not come back in this long is cut
# A node: an echo server on HOST (argv[1]); prints its port.
ECHO = """
import socket, sys, threading
s = socket.socket()
s.bind((sys.argv[1], 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
def serve(c):
    with c:
        while True:
            data = c.recv(4096)
            if not data:
                return
            c.sendall(data)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""
# A node's outgoing connection to HOST PORT (argv[1:3]): for each line of
# stdin, sends it and prints "echo LINE" or "timeout" after WAIT (argv[3]);
# the line "wait" waits 10 s more for an echo without sending.
CLIENT = """
import socket, sys
wait = float(sys.argv[3])
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=wait)
except OSError as e:
    print("refused", flush=True)
    sys.exit()
print("up", flush=True)
for line in sys.stdin:
    line = line.strip()
    if line != "wait":
        c.sendall(line.encode())
    c.settimeout(10 if line == "wait" else wait)
    try:
        print("echo " + c.recv(100).decode(), flush=True)
    except OSError:
        print("timeout", flush=True)
"""

WHY_NO_NETNS = netfault.unavailable()


def as_group(gid):
    """A preexec_fn: the child runs with group GID alone."""
    def switch():
        os.setgroups([])
        os.setgid(gid)
    return switch


@unittest.skipIf(WHY_NO_NETNS, "partitions: %s" % WHY_NO_NETNS)
class PartitionTest(unittest.TestCase):
    """Three 'nodes' as cluster.py places them: echo servers on 127.0.0.11
    to .13 running with groups 4101 to 4103. A round trip from a process
    of node A's group to node B's server stands for A's raft traffic to B
    and B's answers on it; the test process (root's group) is a client."""

    NODES = {1: (4101, "127.0.0.11"), 2: (4102, "127.0.0.12"), 3: (4103, "127.0.0.13")}

    def setUp(self):
        self.servers, self.ports = {}, {}
        for i, (gid, host) in self.NODES.items():
            child = subprocess.Popen([sys.executable, "-c", ECHO, host], stdout=subprocess.PIPE,
                                     text=True, preexec_fn=as_group(gid))
            self.servers[i] = child
            self.ports[i] = int(child.stdout.readline())
        self.p = netfault.Partitioner(self.NODES)

    def tearDown(self):
        self.p.close()
        for child in self.servers.values():
            child.kill()
            child.wait(10)
            child.stdout.close()

    def round_trip(self, a, b):
        """Whether a process of node A's group gets an echo from node B."""
        r = subprocess.run([sys.executable, "-c", CLIENT, self.NODES[b][1], str(self.ports[b]),
                            str(BLOCKED_WAIT)], input="ping\n", capture_output=True, text=True,
                           preexec_fn=as_group(self.NODES[a][0]), timeout=20)
        return r.stdout.split() == ["up", "echo", "ping"]

    def reach(self):
        """The set of (a, b) with a round trip from node a to node b."""
        return {(a, b) for a in self.NODES for b in self.NODES
                if a != b and self.round_trip(a, b)}

    def clients_reach_every_node(self):
        for i, (_, host) in self.NODES.items():
            with socket.create_connection((host, self.ports[i]), timeout=BLOCKED_WAIT) as c:
                c.settimeout(BLOCKED_WAIT)
                c.sendall(b"hello")
                self.assertEqual(c.recv(100), b"hello")

    def test_isolate_cuts_both_ways_and_heal_restores(self):
        everyone = {(a, b) for a in self.NODES for b in self.NODES if a != b}
        self.assertEqual(self.reach(), everyone)
        self.p.partition([1], [2, 3])
        self.assertEqual(self.reach(), {(2, 3), (3, 2)})
        self.clients_reach_every_node()
        self.p.heal()
        self.assertEqual(self.reach(), everyone)

    def test_bridge_and_replacing_a_partition(self):
        self.p.partition([1], [2])                  # 3 reaches both
        self.assertEqual(self.reach(), {(1, 3), (3, 1), (2, 3), (3, 2)})
        self.clients_reach_every_node()
        self.p.block([(2, 3)])                      # replaces the bridge
        self.assertEqual(self.reach(), {(1, 2), (2, 1), (1, 3), (3, 1)})
        self.p.heal()
        self.assertEqual(self.p.blocked, frozenset())

    def test_established_connection_stops_carrying_data(self):
        host, port = self.NODES[2][1], self.ports[2]
        child = subprocess.Popen([sys.executable, "-c", CLIENT, host, str(port),
                                  str(BLOCKED_WAIT)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True,
                                 preexec_fn=as_group(self.NODES[1][0]))

        def say(line):
            child.stdin.write(line + "\n")
            child.stdin.flush()
            return child.stdout.readline().strip()
        try:
            self.assertEqual(child.stdout.readline().strip(), "up")
            self.assertEqual(say("before"), "echo before")
            self.p.partition([1], [2])
            self.assertEqual(say("during"), "timeout")
            self.p.heal()                           # TCP sends it again
            self.assertEqual(say("wait"), "echo during")
        finally:
            child.stdin.close()
            child.wait(10)
            child.stdout.close()

    def test_a_node_on_127_0_0_1_is_refused(self):
        p = netfault.Partitioner({1: (4101, "127.0.0.1"), 2: (4102, "127.0.0.12")})
        with self.assertRaises(ValueError):
            p.block([(1, 2)])


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
