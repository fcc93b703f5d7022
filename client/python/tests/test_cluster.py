"""test_cluster - the Python client given a list of endpoints: it follows
a leader's hint, tries the next endpoint, sends a write again with the
same (client_id, seq), and reads with serializable. Nodes that are not the
leader are fakes (tests/support/fakefollower.py) in front of a real
kvstored; every wait is bounded."""

import asyncio
import time
import unittest

import kvstore
import kvstore.aio
from fakefollower import ClusterTestCase, hinting

SET = "/kvstore.v1.KV/Set"
GET = "/kvstore.v1.KV/Get"


def drop_first(seen):
    """A proxy that closes the connection on its first request."""
    return ("close",) if seen.nth == 1 else ("forward",)


class ClusterTest(ClusterTestCase):
    def client(self, endpoints, **kw):
        c = kvstore.Client(endpoints, **kw)
        self.addCleanup(c.close)
        return c


class TestEndpoints(ClusterTest):
    def test_a_follower_alone_hints_to_the_leader(self):
        follower = self.fake(hinting(self.server.endpoint))
        c = self.client(follower.endpoint)
        c.set(b"k", b"v")
        self.assertEqual(c.get(b"k"), b"v")
        self.assertEqual(c.endpoint, self.server.endpoint)
        self.assertEqual([s.method for s in follower.seen], [SET])

    def test_a_list_skips_a_node_without_a_leader(self):
        follower = self.fake(lambda seen: ("unavailable",))
        c = self.client([follower.endpoint, self.server.endpoint])
        c.set(b"k", b"v")
        self.assertEqual(c.get(b"k"), b"v")

    def test_a_comma_separated_string(self):
        follower = self.fake(hinting(self.server.endpoint))
        c = self.client("%s,%s" % (follower.endpoint, self.server.endpoint))
        c.set(b"k", b"v")
        self.assertEqual(c.get(b"k"), b"v")

    def test_bad_lists_are_refused(self):
        for bad in ("a:1,,b:2", [], "a:99999"):
            with self.subTest(bad=bad):
                with self.assertRaises(ValueError):
                    kvstore.Client(bad)

    def test_the_timeout_bounds_the_retries(self):
        follower = self.fake(lambda seen: ("unavailable",))
        c = self.client(follower.endpoint, timeout=0.6)
        start = time.monotonic()
        with self.assertRaises(kvstore.Unavailable) as cm:
            c.set(b"k", b"v")
        self.assertLess(time.monotonic() - start, 3.0)
        self.assertIn("fake node", cm.exception.message)
        self.assertGreater(len(follower.seen), 1)
        self.assertLess(len(follower.seen), 30)


def twice(endpoint):
    """ENDPOINT given twice: more than one endpoint, so the client treats
    it as a cluster, which alone gets a cut-off write again."""
    return [endpoint, endpoint]


class TestSafeRetries(ClusterTest):
    def test_client_id_and_seq(self):
        proxy = self.fake(drop_first)
        c = self.client(twice(proxy.endpoint))
        c.set(b"a", b"1")               # dropped once, then sent again
        c.set(b"b", b"2")
        self.assertEqual(c.get(b"a"), b"1")
        self.assertEqual(c.clear(b"b"), b"2")
        seen = proxy.wait_seen(5)
        self.assertEqual([s.seq for s in seen], [1, 1, 2, 0, 3])
        self.assertEqual({s.client_id for s in seen if s.seq}, {c.client_id})
        self.assertEqual(len(c.client_id), 16)
        self.assertEqual(seen[3].client_id, b"")
        self.assertEqual((seen[0].conn, seen[1].conn), (1, 2))
        with kvstore.Client(self.server.endpoint) as direct:
            self.assertEqual(direct.get_entry(b"a").revision, 3)   # applied once each

    def test_two_clients_two_ids(self):
        proxy = self.fake(lambda seen: ("forward",))
        for value in (b"1", b"2"):
            self.client(proxy.endpoint).set(b"k", value)
        first, second = proxy.wait_seen(2)
        self.assertNotEqual(first.client_id, second.client_id)

    def test_a_pipeline_keeps_its_seqs(self):
        proxy = self.fake(drop_first)
        c = self.client(twice(proxy.endpoint))
        with c.pipeline() as p:
            p.set(b"a", b"1")
            p.set(b"b", b"2")
            p.get(b"a")
        self.assertEqual(p.results, [None, None, b"1"])
        seqs = [s.seq for s in proxy.wait_seen(4)]
        self.assertEqual(seqs[0], 1)
        self.assertEqual(sorted(set(seqs) - {0}), [1, 2])
        self.assertEqual(seqs.count(0), 1)

    def test_serializable_reads(self):
        proxy = self.fake(lambda seen: ("forward",))
        c = self.client(proxy.endpoint)
        c.set(b"k", b"v")
        self.assertEqual(c.get(b"k", serializable=True), b"v")
        self.assertEqual(c.get_entry(b"k", serializable=True).value, b"v")
        self.assertEqual([e.key for e in c.range(serializable=True)], [b"k"])
        self.assertEqual(c.count(serializable=True), 1)


class TestAsync(ClusterTest):
    def test_hint_and_seq(self):
        follower = self.fake(hinting(self.server.endpoint))
        proxy = self.fake(drop_first)

        async def run():
            c = await kvstore.aio.connect([follower.endpoint])
            await c.set(b"k", b"v")
            self.assertEqual(await c.get(b"k"), b"v")
            await c.close()
            d = await kvstore.aio.connect(twice(proxy.endpoint))
            await d.set(b"a", b"1")
            self.assertEqual(await d.get(b"a", serializable=True), b"1")
            await d.close()
            return d.client_id
        client_id = asyncio.run(asyncio.wait_for(run(), 30))
        seen = proxy.wait_seen(3)
        self.assertEqual([s.seq for s in seen], [1, 1, 0])
        self.assertEqual(seen[0].client_id, client_id)


if __name__ == "__main__":
    unittest.main()
