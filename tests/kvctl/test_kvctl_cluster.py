"""test_kvctl_cluster - kvctl and the C client library it runs on, given a
list of endpoints: they follow a leader's hint, try the next endpoint, and
send a write again with the same (client_id, seq). The cluster nodes that
are not the leader are fakes (tests/support/fakefollower.py) in front of a
real kvstored; kvctl cluster against a single server. Every wait is
bounded.
"""

import json
import time
import unittest

from fakefollower import ClusterTestCase, hinting
from test_kvctl import dead_endpoint, kvctl

SET = "/kvstore.v1.KV/Set"
GET = "/kvstore.v1.KV/Get"


class ClusterTest(ClusterTestCase):
    def get(self, *endpoints):
        r = kvctl("-e", ",".join(endpoints), "get", "k")
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout


class TestFollowTheLeader(ClusterTest):
    def test_a_follower_alone_sends_to_the_leader(self):
        follower = self.fake(hinting(self.server.endpoint))
        r = kvctl("-e", follower.endpoint, "set", "k", "v")
        self.assertEqual((r.returncode, r.stdout), (0, b"OK\n"), r.stderr)
        self.assertEqual(self.get(self.server.endpoint), b"v")
        self.assertEqual([s.method for s in follower.wait_seen(1)], [SET])

    def test_no_leader_known_tries_the_next_endpoint(self):
        follower = self.fake(lambda seen: ("unavailable",))
        r = kvctl("-e", "%s,%s" % (follower.endpoint, self.server.endpoint), "set", "k", "v")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.get(self.server.endpoint), b"v")

    def test_a_dead_endpoint_is_skipped(self):
        self.assertEqual(kvctl("-e", self.server.endpoint, "set", "k", "v").returncode, 0)
        self.assertEqual(self.get(dead_endpoint(), self.server.endpoint), b"v")

    def test_the_endpoint_variable_takes_a_list(self):
        follower = self.fake(hinting(self.server.endpoint))
        env = {"KVCTL_ENDPOINT": "%s,%s" % (dead_endpoint(), follower.endpoint)}
        self.assertEqual(kvctl("set", "k", "v", env=env).returncode, 0)
        self.assertEqual(self.get(self.server.endpoint), b"v")

    def test_an_empty_item_is_a_usage_error(self):
        r = kvctl("-e", "%s,,%s" % (self.server.endpoint, self.server.endpoint), "ping")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"empty endpoint", r.stderr)

    def test_the_timeout_bounds_the_retries(self):
        follower = self.fake(lambda seen: ("unavailable",))
        start = time.monotonic()
        r = kvctl("--timeout", "0.6", "-e", follower.endpoint, "set", "k", "v")
        took = time.monotonic() - start
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn(b"UNAVAILABLE", r.stderr)
        self.assertLess(took, 3.0)
        # Tried more than once, backing off: not one try, not a busy loop.
        self.assertGreater(len(follower.seen), 1)
        self.assertLess(len(follower.seen), 30)


class TestSafeRetries(ClusterTest):
    """One kvctl run in batch mode is one client: its writes share a
    client_id and count seq up; the fake drops the connection on the first
    request, so the first write is sent twice with the same seq. Given as
    two endpoints (the same fake twice): a client retries a write that was
    cut off only on a cluster, which it knows by more than one endpoint or
    a leader's hint."""

    def test_a_retried_write_keeps_its_seq(self):
        def act(seen):
            return ("close",) if seen.nth == 1 else ("forward",)
        proxy = self.fake(act)
        both = proxy.endpoint + "," + proxy.endpoint
        r = kvctl("-e", both, stdin=b"set a 1\nset b 2\nget a\nclear b\n")
        self.assertEqual((r.returncode, r.stdout), (0, b"OK\nOK\n1\n2\n"), r.stderr)
        seen = proxy.wait_seen(5)
        self.assertEqual([s.method for s in seen], [SET, SET, SET, GET, "/kvstore.v1.KV/Clear"])
        self.assertEqual([s.seq for s in seen], [1, 1, 2, 0, 3])
        ids = {s.client_id for s in seen if s.seq}
        self.assertEqual(len(ids), 1)
        self.assertEqual(len(ids.pop()), 16)
        self.assertEqual(seen[3].client_id, b"")        # a read carries neither
        self.assertEqual((seen[0].conn, seen[1].conn), (1, 2))
        # Applied once: the revision counts two writes and one removal.
        r = kvctl("-e", self.server.endpoint, "-w", "json", "get", "a")
        self.assertEqual(json.loads(r.stdout)["revision"], 3)

    def test_a_write_cut_off_is_not_sent_again_to_a_single_server(self):
        # One endpoint and no leader named: maybe a single kvstored, which
        # does not deduplicate: the write may have been applied, so it
        # fails rather than risk being applied twice. A read is retried.
        def act(seen):
            return ("close",) if seen.nth in (1, 2) else ("forward",)
        proxy = self.fake(act)
        r = kvctl("-e", proxy.endpoint, "set", "a", "1")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual([s.method for s in proxy.wait_seen(1)], [SET])
        r = kvctl("-e", proxy.endpoint, "get", "missing")
        self.assertEqual(r.returncode, 1, r.stderr)     # NOT_FOUND, after a retry
        self.assertEqual([s.method for s in proxy.wait_seen(3)][1:], [GET, GET])

    def test_each_run_is_another_client(self):
        proxy = self.fake(lambda seen: ("forward",))
        for value in ("1", "2"):
            self.assertEqual(kvctl("-e", proxy.endpoint, "set", "k", value).returncode, 0)
        first, second = proxy.wait_seen(2)
        self.assertNotEqual(first.client_id, second.client_id)
        self.assertEqual((first.seq, second.seq), (1, 1))


class TestSerializable(ClusterTest):
    def test_get_and_range_ask_for_it(self):
        self.assertEqual(kvctl("-e", self.server.endpoint, "set", "k", "v").returncode, 0)
        for args in (["get", "--serializable", "k"], ["get", "--consistency=s", "k"],
                     ["range", "--serializable"], ["get", "--consistency=l", "k"]):
            with self.subTest(args=args):
                r = kvctl("-e", self.server.endpoint, *args)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn(b"v", r.stdout)
        r = kvctl("-e", self.server.endpoint, "get", "--consistency=x", "k")
        self.assertEqual(r.returncode, 2)


class TestClusterCommand(ClusterTest):
    def test_status_of_a_single_server(self):
        r = kvctl("-e", self.server.endpoint, "cluster", "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"%s: a single server, not a cluster (revision 0)\n"
                         % self.server.endpoint.encode())
        r = kvctl("-e", self.server.endpoint, "-w", "json", "cluster", "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        (node,) = json.loads(r.stdout)["nodes"]
        self.assertEqual((node["endpoint"], node["id"]), (self.server.endpoint, 0))

    def test_status_names_an_unreachable_endpoint(self):
        dead = dead_endpoint()
        r = kvctl("-e", "%s,%s" % (self.server.endpoint, dead), "cluster", "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"%s: unreachable" % dead.encode(), r.stdout)
        self.assertEqual(kvctl("-e", dead, "cluster", "status").returncode, 3)

    def test_changes_on_a_single_server_fail_with_its_message(self):
        for args in (["add", "2", "127.0.0.1:9"], ["remove", "2"], ["transfer"]):
            with self.subTest(args=args):
                r = kvctl("-e", self.server.endpoint, "cluster", *args)
                self.assertEqual(r.returncode, 4)
                self.assertRegex(r.stderr, rb"^kvctl: cluster: FAILED_PRECONDITION: .+\n$")

    def test_usage(self):
        for args in (["frob"], ["add", "2"], ["remove", "x"], ["remove", "0"],
                     ["status", "extra"]):
            with self.subTest(args=args):
                r = kvctl("-e", self.server.endpoint, "cluster", *args)
                self.assertEqual(r.returncode, 2, r.stderr)
        r = kvctl("-e", self.server.endpoint, stdin=b"cluster status\n")
        self.assertIn(b"not in batch mode", r.stderr)

    def test_help(self):
        r = kvctl("cluster", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"cluster status", r.stdout)


if __name__ == "__main__":
    unittest.main()
