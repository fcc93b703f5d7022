"""test_lmdb_revisions - what only the lmdb engine promises about revisions
(docs/PROTOCOL.md, Data model): every key's create_revision, mod_revision
and version, and the store's revision, are what they were after a clean
restart; writes refused for a full map take no revision, and those around
them keep theirs; a data directory of format 1 (kvstored before revisions)
is migrated when opened, or refused with one clear line and left as it
was; one of format 2 (before deadlines) gains the deadline index and keeps
every record and revision as it was. (After a kill -9:
test_lmdb_crash.py.)
"""

import os
import shutil
import sys
import tempfile
import unittest

import kvstored
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import old_formats  # noqa: E402
from live import OK, RESOURCE_EXHAUSTED, Server, set_request  # noqa: E402
from kvstore import pb  # noqa: E402


def revisions(entry):
    """(value, create_revision, mod_revision, version) of a GetResponse,
    or None for an absent key."""
    if entry is None:
        return None
    return entry.value, entry.create_revision, entry.mod_revision, entry.version


class Model:
    """What the store must hold: {key: (value, create, mod, version)} and
    the store's revision, moved as the data model says."""

    def __init__(self, revision=0, keys=None):
        self.revision = revision
        self.keys = dict(keys or {})

    def write(self, changes):
        """CHANGES: [(key, value or None for a removal)], one request."""
        if not changes:
            return
        self.revision += 1
        for key, value in changes:
            if value is None:
                del self.keys[key]
            elif key in self.keys:
                _, create, _, version = self.keys[key]
                self.keys[key] = (value, create, self.revision, version + 1)
            else:
                self.keys[key] = (value, self.revision, self.revision, 1)


class RevisionTest(unittest.TestCase):
    """Gives each test a fresh directory, self.dir."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kvstored-lmdb.")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.dir = os.path.join(self.tmp, "db")

    def start(self, *args):
        server = Server("--engine", "lmdb", "--dir", self.dir, *args)
        self.addCleanup(server.kill)
        return server

    def call(self, conn, method, request):
        answer = conn.call(method, request)
        self.assertEqual(answer.code, OK, "%s: %s" % (method, answer.message))
        return getattr(pb, method + "Response").FromString(answer.payload)

    def assertStoreIs(self, conn, model, keys):
        """Every key of KEYS reads as MODEL says, and so does the store's
        revision (in Stats and in every Get)."""
        got = conn.get_entries(sorted(keys))
        self.assertEqual({k: revisions(e) for k, e in got.items() if e is not None},
                         {k: model.keys[k] for k in keys if k in model.keys})
        self.assertEqual({e.revision for e in got.values() if e is not None} or {model.revision},
                         {model.revision})
        stats = conn.stats()
        self.assertEqual(stats.revision, model.revision)
        self.assertEqual(stats.keys, len(model.keys))
        self.assertEqual(stats.data_bytes, sum(len(k) + len(v[0]) for k, v in model.keys.items()))


class TestRestart(RevisionTest):
    def work(self, conn, model):
        """Sets, overwrites, Clears, a ClearRange and Txns, each checked
        against MODEL as it goes; returns every key touched."""
        keys = set()
        for i in range(300):
            k, v = b"k%02d" % (i % 60), b"v%d" % i
            self.assertEqual(self.call(conn, "Set", pb.SetRequest(key=k, value=v)).revision,
                             model.revision + 1)
            model.write([(k, v)])
            keys.add(k)
        for i in range(0, 60, 7):
            k = b"k%02d" % i
            self.assertEqual(self.call(conn, "Clear", pb.ClearRequest(key=k)).revision,
                             model.revision + 1)
            model.write([(k, None)])
        self.assertEqual(self.call(conn, "Clear", pb.ClearRequest(key=b"k00")).revision, 0)
        # k10..k19 go in one write.
        deleted = self.call(conn, "ClearRange", pb.ClearRangeRequest(prefix=b"k1"))
        gone = [k for k in sorted(model.keys) if k.startswith(b"k1")]
        self.assertEqual((deleted.deleted, deleted.revision), (len(gone), model.revision + 1))
        model.write([(k, None) for k in gone])
        # A Txn: three writes at one revision; one whose branch writes nothing.
        txn = pb.TxnRequest(success=[
            pb.TxnOp(set=pb.SetRequest(key=b"t1", value=b"one")),
            pb.TxnOp(set=pb.SetRequest(key=b"k21", value=b"in a txn")),
            pb.TxnOp(clear=pb.ClearRequest(key=b"k22"))])
        self.assertEqual(self.call(conn, "Txn", txn).revision, model.revision + 1)
        model.write([(b"t1", b"one"), (b"k21", b"in a txn"), (b"k22", None)])
        keys.add(b"t1")
        nothing = pb.TxnRequest(
            compare=[pb.Compare(key=b"t1", target=pb.Compare.VERSION, op=pb.Compare.EQUAL,
                                number=5)],
            success=[pb.TxnOp(set=pb.SetRequest(key=b"t2", value=b"no"))])
        answer = self.call(conn, "Txn", nothing)
        self.assertEqual((answer.succeeded, answer.revision), (False, model.revision))
        keys.add(b"t2")
        return keys

    def test_clean_restart_keeps_every_revision(self):
        for sync in ("always", "none"):
            with self.subTest(sync=sync):
                shutil.rmtree(self.dir, True)
                model = Model()
                server = self.start("--sync", sync)
                conn = server.connect()
                keys = self.work(conn, model)
                self.assertStoreIs(conn, model, keys)
                self.assertEqual(server.stop(), 0, server.stderr_text())

                server = self.start("--sync", sync)
                conn = server.connect()
                self.assertStoreIs(conn, model, keys)
                # It goes on from there, and so does every key.
                keys |= self.work(conn, model)
                self.assertStoreIs(conn, model, keys)
                self.assertEqual(server.stop(), 0, server.stderr_text())

                server = self.start("--sync", sync)
                self.assertStoreIs(server.connect(), model, keys)
                self.assertEqual(server.stop(), 0, server.stderr_text())

    def test_a_write_refused_for_a_full_map_takes_no_revision(self):
        # One pipeline, so loop turns of many writes in one write
        # transaction: the Sets before, between and after the refused ones
        # keep consecutive revisions, and so does a Txn that fits; a Txn
        # that does not fit leaves nothing of itself. (About 550 values of
        # 1000 bytes fit in a 1M map.)
        server = self.start("--lmdb-map-size", "1M")
        conn = server.connect()
        model = Model()
        requests = []
        for i in range(900):
            if i % 50 == 25:
                requests.append(("Txn", pb.TxnRequest(success=[
                    pb.TxnOp(set=pb.SetRequest(key=b"x%03d" % i, value=b"t" * 1000)),
                    pb.TxnOp(set=pb.SetRequest(key=b"y%03d" % i, value=b"t" * 1000))])))
            else:
                requests.append(set_request(b"p%03d" % i, b"w" * 1000))
        conn.send(requests)
        answers = [conn.receive() for _ in requests]
        refused, txns = 0, {OK: 0, RESOURCE_EXHAUSTED: 0}
        for (method, request), answer in zip(requests, answers):
            if method == "Txn":
                txns[answer.code] = txns.get(answer.code, 0) + 1
            if answer.code == RESOURCE_EXHAUSTED:
                refused += 1
                continue
            self.assertEqual(answer.code, OK, answer.message)
            if method == "Set":
                self.assertEqual(pb.SetResponse.FromString(answer.payload).revision,
                                 model.revision + 1)
                model.write([(request.key, request.value)])
            else:
                self.assertEqual(pb.TxnResponse.FromString(answer.payload).revision,
                                 model.revision + 1)
                model.write([(op.set.key, op.set.value) for op in request.success])
        self.assertGreater(refused, 20)
        self.assertGreater(txns[OK], 0)
        self.assertGreater(txns[RESOURCE_EXHAUSTED], 0)
        self.assertGreater(model.revision, 20)
        keys = {r.key for m, r in requests if m == "Set"}
        keys |= {op.set.key for m, r in requests if m == "Txn" for op in r.success}
        self.assertStoreIs(conn, model, keys)
        self.assertEqual(server.stop(), 0, server.stderr_text())

        server = self.start("--lmdb-map-size", "1M")
        self.assertStoreIs(server.connect(), model, keys)
        self.assertEqual(server.stop(), 0, server.stderr_text())


class TestFormat1(RevisionTest):
    def setUp(self):
        super().setUp()
        if old_formats.library() is None:
            self.skipTest("liblmdb cannot be loaded through ctypes")

    def test_a_format_1_store_is_migrated_once(self):
        items = {b"k%04d" % i: bytes([i % 256]) * (i % 50) for i in range(500)}
        items[b"\x00binary\xff"] = b"\xff\x00"
        items[b"big"] = b"B" * 20000                   # on LMDB's overflow pages
        old_formats.write(self.dir, items)
        model = Model(1, {k: (v, 1, 1, 1) for k, v in items.items()})

        server = Server("--engine", "lmdb", "--dir", self.dir, capture_stderr=True)
        self.addCleanup(server.kill)
        server.wait_for_stderr(r"engine lmdb: migrated %s from format 1 to 3: %d keys given "
                               r"revision 1 in [0-9.]+ s" % (self.dir, len(items)))
        conn = server.connect()
        self.assertStoreIs(conn, model, items)
        page = self.call(conn, "Range", pb.RangeRequest(keys_only=True))
        self.assertEqual(page.count, len(items))
        self.assertEqual({(kv.create_revision, kv.mod_revision, kv.version) for kv in page.kvs},
                         {(1, 1, 1)})
        # Writes go on from revision 1.
        answer = self.call(conn, "Set", pb.SetRequest(key=b"k0001", value=b"new"))
        self.assertEqual(answer.revision, 2)
        model.write([(b"k0001", b"new")])
        self.assertEqual(self.call(conn, "Clear", pb.ClearRequest(key=b"big")).revision, 3)
        model.write([(b"big", None)])
        self.assertStoreIs(conn, model, items)
        self.assertEqual(server.stop(), 0, server.stderr_text())

        # Format 3 now: opened as it is, nothing migrated again.
        server = Server("--engine", "lmdb", "--dir", self.dir, capture_stderr=True)
        self.addCleanup(server.kill)
        self.assertStoreIs(server.connect(), model, items)
        self.assertEqual(server.stop(), 0, server.stderr_text())
        self.assertNotIn("migrated", server.stderr_text())

    def test_an_empty_format_1_store_starts_at_revision_0(self):
        old_formats.write(self.dir, {})
        conn = self.start().connect()
        self.assertEqual(conn.stats().revision, 0)
        self.assertEqual(self.call(conn, "Set", pb.SetRequest(key=b"k", value=b"v")).revision, 1)

    def test_a_migration_without_room_leaves_the_store_as_it_was(self):
        # 3 MB of values in a 4 MB map: they fit, but rewriting them all in
        # one transaction takes twice that.
        items = {b"k%03d" % i: b"x" * 10000 for i in range(300)}
        old_formats.write(self.dir, items)
        code, err, _ = kvstored.refused("--engine", "lmdb", "--dir", self.dir,
                                        "--lmdb-map-size", "4M")
        self.assertEqual(code, 1, err)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn("kvstored: engine lmdb: cannot migrate %s from format 1 (no revisions) "
                      "to 3: MDB_MAP_FULL" % self.dir, err)
        self.assertIn("give a larger --lmdb-map-size (the store is left as it was)", err)

        server = self.start("--lmdb-map-size", "64M")
        self.assertStoreIs(server.connect(), Model(1, {k: (v, 1, 1, 1) for k, v in items.items()}),
                           items)
        self.assertEqual(server.stop(), 0, server.stderr_text())

    def test_a_format_2_store_gains_the_deadline_index_and_nothing_else(self):
        # Revisions of every varint width a format-2 kvstored wrote, a
        # binary key, a value on LMDB's overflow pages.
        entries = {b"k%04d" % i: (bytes([i % 256]) * (i % 40), 1 + i, 1 + i * 37, 1 + i % 3)
                   for i in range(400)}
        entries[b"\x00binary\xff"] = (b"\xff\x00", 2, 20000, 9)
        entries[b"big"] = (b"B" * 20000, 7, 3000000, 2)
        entries[b"wide"] = (b"w", 5, 1 << 40, 1 << 21)
        revision = 1 << 40
        old_formats.write2(self.dir, entries, revision)
        model = Model(revision, {k: e for k, e in entries.items()})

        server = Server("--engine", "lmdb", "--dir", self.dir, "--sync", "none",
                        capture_stderr=True)
        self.addCleanup(server.kill)
        server.wait_for_stderr(r"engine lmdb: migrated %s from format 2 to 3: the deadline "
                               r"index added, no record rewritten" % self.dir)
        conn = server.connect()
        self.assertStoreIs(conn, model, entries)
        self.assertEqual(conn.stats().keys_with_ttl, 0)
        page = self.call(conn, "Range", pb.RangeRequest(limit=1000))
        self.assertEqual(page.count, len(entries))
        self.assertEqual({kv.key: (kv.value, kv.create_revision, kv.mod_revision, kv.version)
                          for kv in page.kvs}, entries)
        self.assertEqual({kv.ttl_ms for kv in page.kvs}, {0})
        # Writes go on from the store's revision.
        answer = self.call(conn, "Set", pb.SetRequest(key=b"k0001", value=b"new"))
        self.assertEqual(answer.revision, revision + 1)
        model.write([(b"k0001", b"new")])
        self.assertEqual(self.call(conn, "Clear", pb.ClearRequest(key=b"big")).revision,
                         revision + 2)
        model.write([(b"big", None)])
        self.assertStoreIs(conn, model, entries)
        self.assertEqual(server.stop(), 0, server.stderr_text())
        self.assertEqual(old_formats.mark(self.dir), b"kvstored-lmdb 3")

        # Format 3 now, under --sync none too: opened as it is.
        server = Server("--engine", "lmdb", "--dir", self.dir, capture_stderr=True)
        self.addCleanup(server.kill)
        self.assertStoreIs(server.connect(), model, entries)
        self.assertEqual(server.stop(), 0, server.stderr_text())
        self.assertNotIn("migrated", server.stderr_text())

    def test_an_unknown_format_is_refused(self):
        old_formats.write(self.dir, {b"k": b"v"}, format_mark=b"kvstored-lmdb 9")
        code, err, _ = kvstored.refused("--engine", "lmdb", "--dir", self.dir)
        self.assertEqual(code, 1, err)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn("%s holds data of format \"kvstored-lmdb 9\", which this kvstored cannot "
                      "read" % self.dir, err)
        self.assertIn("(it reads \"kvstored-lmdb 1\", \"kvstored-lmdb 2\" and "
                      "\"kvstored-lmdb 3\")", err)


if __name__ == "__main__":
    if not os.access(os.environ.get("KVSTORED", ""), os.X_OK):
        raise SystemExit("set KVSTORED to the kvstored binary (meson test does)")
    unittest.main(verbosity=2)
