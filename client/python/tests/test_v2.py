"""The v2 data model through the helpers (and a few raw stubs): revisions,
get_entry, cas and conditional clear, range (paged), count, clear_range
and the Txn builder, against one live kvstored shared by this module.
Each test uses keys of its own prefix; the tests run one at a time, so a
test may reason about how the store's revision moves during it."""

import unittest

import kvstore
from kvstore import pb
from kvstore import txn as t
from kvstored import Server

server = None

# Keys in byte order (memcmp, shorter first on a tie) under a prefix.
ORDERED = [b"", b"\x00", b"a", b"a\x00", b"a\x00\x00", b"ab", b"b", b"\x7f", b"\x80", b"\xff",
           b"\xff\x00", b"\xff\xff"]


def setUpModule():
    global server
    server = Server()


def tearDownModule():
    status = server.stop()
    assert status == 0, "kvstored exited with %s after SIGTERM" % status


class V2Test(unittest.TestCase):
    def setUp(self):
        self.c = kvstore.Client(server.endpoint, timeout=10)
        self.addCleanup(self.c.close)

    def revision(self):
        """The store's revision, from Stats."""
        return self.c.Stats().revision

    def range_calls(self):
        """Range calls answered so far, from Stats."""
        for m in self.c.Stats().methods:
            if m.method == "/kvstore.v1.KV/Range":
                return m.calls
        self.fail("Stats has no /kvstore.v1.KV/Range")

    def fill(self, prefix, n, value=b"v"):
        """Sets PREFIX + 000 .. PREFIX + N-1 and returns their keys, in order."""
        keys = [prefix + b"%03d" % i for i in range(n)]
        with self.c.pipeline() as p:
            for k in keys:
                p.set(k, value + k)
        return keys


class TestRevisions(V2Test):
    def test_every_write_moves_the_revision_by_one(self):
        before = self.revision()
        first = self.c.Set(key=b"rev/a", value=b"1").revision
        self.assertEqual(first, before + 1)
        self.assertEqual(self.c.Set(key=b"rev/b", value=b"1").revision, before + 2)
        self.assertEqual(self.c.Clear(key=b"rev/a").revision, before + 3)
        self.assertEqual(self.revision(), before + 3)

    def test_get_entry_carries_the_revisions(self):
        created = self.c.Set(key=b"rev/e", value=b"one").revision
        e = self.c.get_entry(b"rev/e")
        self.assertIsInstance(e, kvstore.Entry)
        self.assertEqual((e.key, e.value), (b"rev/e", b"one"))
        self.assertEqual((e.create_revision, e.mod_revision, e.version), (created, created, 1))
        self.assertGreaterEqual(e.revision, created)
        self.c.set(b"rev/other", b"x")
        changed = self.c.Set(key=b"rev/e", value=b"two").revision
        e = self.c.get_entry("rev/e")
        self.assertEqual((e.value, e.create_revision, e.mod_revision, e.version),
                         (b"two", created, changed, 2))
        self.assertEqual(e.revision, changed)
        self.assertEqual(self.c.get(b"rev/e"), b"two")         # get() is unchanged
        self.c.clear(b"rev/e")
        recreated = self.c.Set(key=b"rev/e", value=b"three").revision
        e = self.c.get_entry(b"rev/e")
        self.assertEqual((e.create_revision, e.mod_revision, e.version),
                         (recreated, recreated, 1))

    def test_get_answer_found_is_true_on_ok(self):
        self.c.set(b"rev/found", b"x")
        answer = self.c.Get(key=b"rev/found")
        self.assertTrue(answer.found)
        self.assertEqual(answer.revision, self.revision())

    def test_get_entry_of_a_missing_key_is_key_not_found(self):
        with self.assertRaises(kvstore.KeyNotFound):
            self.c.get_entry(b"rev/missing")

    def test_what_changes_nothing_keeps_the_revision(self):
        self.c.set(b"rev/keep", b"x")
        before = self.revision()
        self.assertEqual(self.c.Clear(key=b"rev/keep-missing").revision, 0)
        with self.assertRaises(kvstore.FailedPrecondition):
            self.c.cas(b"rev/keep", b"y", 0)
        self.assertEqual(self.c.ClearRange(prefix=b"rev/keep-nothing/"),
                         pb.ClearRangeResponse(deleted=0, revision=0))
        self.c.txn().if_(t.value(b"rev/keep") == b"x").then(t.get(b"rev/keep")).commit()
        self.c.txn().if_(t.value(b"rev/keep") == b"no").then(t.set(b"rev/keep", b"z")).commit()
        self.c.range_page(prefix=b"rev/")
        self.c.get(b"rev/keep")
        self.assertEqual(self.revision(), before)
        self.assertEqual(self.c.get_entry(b"rev/keep").revision, before)


class TestConditionalWrites(V2Test):
    def test_cas_create_only(self):
        rev = self.c.cas(b"cas/new", b"first", 0)
        self.assertEqual(self.c.get_entry(b"cas/new").mod_revision, rev)
        with self.assertRaises(kvstore.FailedPrecondition) as cm:
            self.c.cas(b"cas/new", b"second", 0)
        e = cm.exception
        self.assertIsInstance(e, kvstore.RpcError)
        self.assertEqual((e.code, e.code_name), (9, "FAILED_PRECONDITION"))
        self.assertEqual(e.method, "/kvstore.v1.KV/Set")
        self.assertRegex(e.message, r"\b%d\b" % rev)   # says the current mod_revision
        self.assertEqual(self.c.get(b"cas/new"), b"first")

    def test_cas_on_the_revision_read(self):
        self.c.set(b"cas/n", b"1")
        seen = self.c.get_entry(b"cas/n")
        rev = self.c.cas(b"cas/n", b"2", seen.mod_revision)
        self.assertGreater(rev, seen.mod_revision)
        after = self.c.get_entry(b"cas/n")
        self.assertEqual((after.value, after.mod_revision, after.version), (b"2", rev, 2))
        with self.assertRaises(kvstore.FailedPrecondition) as cm:
            self.c.cas(b"cas/n", b"3", seen.mod_revision)    # stale
        self.assertRegex(cm.exception.message, r"\b%d\b" % rev)
        self.assertEqual(self.c.get(b"cas/n"), b"2")

    def test_cas_of_a_missing_key_with_a_revision_is_refused(self):
        with self.assertRaises(kvstore.FailedPrecondition):
            self.c.cas(b"cas/absent", b"v", 5)
        with self.assertRaises(kvstore.KeyNotFound):
            self.c.get(b"cas/absent")

    def test_if_mod_revision_zero_differs_from_absent(self):
        # proto3 optional: 0 is sent and means "only if absent".
        self.c.set(b"cas/zero", b"v")
        with self.assertRaises(kvstore.FailedPrecondition):
            self.c.Set(key=b"cas/zero", value=b"w", if_mod_revision=0)
        self.c.Set(key=b"cas/zero", value=b"w")                # no condition
        self.assertEqual(self.c.get(b"cas/zero"), b"w")

    def test_cas_checks_its_arguments(self):
        with self.assertRaises(TypeError):
            self.c.cas(b"cas/x", b"v", None)
        with self.assertRaises(ValueError):
            self.c.cas(b"cas/x", b"v", -1)

    def test_conditional_clear(self):
        rev = self.c.Set(key=b"cas/c", value=b"v").revision
        with self.assertRaises(kvstore.FailedPrecondition) as cm:
            self.c.clear(b"cas/c", if_mod_revision=rev + 100)
        self.assertEqual(cm.exception.code_name, "FAILED_PRECONDITION")
        self.assertEqual(cm.exception.method, "/kvstore.v1.KV/Clear")
        self.assertEqual(self.c.get(b"cas/c"), b"v")
        with self.assertRaises(kvstore.FailedPrecondition):
            self.c.clear(b"cas/c", if_mod_revision=0)          # 0: only if absent
        self.assertEqual(self.c.clear(b"cas/c", if_mod_revision=rev), b"v")
        before = self.revision()
        self.assertIsNone(self.c.clear(b"cas/c", if_mod_revision=0))  # absent: holds, no change
        self.assertEqual(self.revision(), before)

    def test_conditional_writes_in_a_pipeline(self):
        p = self.c.pipeline()
        p.cas(b"cas/p", b"1", 0)
        p.cas(b"cas/p", b"2", 0)
        results = p.execute(raise_on_error=False)
        self.assertIsInstance(results[0], int)
        self.assertIsInstance(results[1], kvstore.FailedPrecondition)


class TestRange(V2Test):
    def test_byte_order_shorter_first(self):
        keys = [b"ord/" + k for k in ORDERED]
        with self.c.pipeline() as p:
            for k in reversed(keys):
                p.set(k, b"v:" + k)
        got = list(self.c.range(prefix=b"ord/"))
        self.assertEqual([e.key for e in got], keys)
        self.assertEqual([e.value for e in got], [b"v:" + k for k in keys])
        self.assertEqual([e.key for e in self.c.range(prefix=b"ord/", reverse=True)],
                         keys[::-1])
        self.assertEqual([e.key for e in self.c.range(prefix=b"ord/", page_size=1)], keys)
        self.assertEqual([e.key for e in self.c.range(prefix=b"ord/", page_size=2, reverse=True)],
                         keys[::-1])

    def test_entries_carry_revisions(self):
        rev = self.c.Set(key=b"rent/k", value=b"v").revision
        (e,) = list(self.c.range(prefix=b"rent/"))
        self.assertEqual((e.key, e.value, e.create_revision, e.mod_revision, e.version),
                         (b"rent/k", b"v", rev, rev, 1))
        self.assertEqual(e.revision, self.revision())
        self.assertEqual(e, self.c.get_entry(b"rent/k"))

    def test_start_and_end(self):
        keys = self.fill(b"se/", 10)
        self.assertEqual([e.key for e in self.c.range(b"se/003", b"se/007")], keys[3:7])
        self.assertEqual([e.key for e in self.c.range(b"se/003", b"se/007", reverse=True)],
                         keys[3:7][::-1])
        self.assertEqual([e.key for e in self.c.range(b"se/003", b"se/007", page_size=3)],
                         keys[3:7])
        self.assertEqual([e.key for e in self.c.range(b"se/0035", b"se/0075", page_size=1,
                                                      reverse=True)], keys[4:8][::-1])
        # END None: no upper bound; start is inclusive, end exclusive.
        self.assertEqual([e.key for e in self.c.range(b"se/008", limit=5)][:2], keys[8:10])
        self.assertEqual(list(self.c.range(b"se/005", b"se/005")), [])

    def test_pages_transparently(self):
        keys = self.fill(b"page/", 25)
        before = self.range_calls()
        got = self.c.range(prefix=b"page/", page_size=4)
        self.assertEqual(self.range_calls(), before)             # lazy: nothing sent yet
        self.assertEqual([e.key for e in got], keys)
        self.assertEqual(self.range_calls() - before, 7)         # 4 * 6 + 1
        before = self.range_calls()
        self.assertEqual([e.key for e in self.c.range(prefix=b"page/", page_size=5, reverse=True)],
                         keys[::-1])
        self.assertEqual(self.range_calls() - before, 5)         # no empty page after the last

    def test_limit(self):
        keys = self.fill(b"lim/", 12)
        self.assertEqual([e.key for e in self.c.range(prefix=b"lim/", limit=5)], keys[:5])
        self.assertEqual([e.key for e in self.c.range(prefix=b"lim/", limit=5, page_size=2)],
                         keys[:5])
        self.assertEqual([e.key for e in self.c.range(prefix=b"lim/", limit=3, reverse=True)],
                         keys[::-1][:3])
        self.assertEqual(len(list(self.c.range(prefix=b"lim/", limit=100))), 12)

    def test_limit_0_is_no_limit(self):
        # As the wire's limit 0 and kvctl's --limit 0: every key, on every page.
        keys = self.fill(b"lim0/", 12)
        self.assertEqual([e.key for e in self.c.range(prefix=b"lim0/", limit=0)], keys)
        self.assertEqual([e.key for e in self.c.range(prefix=b"lim0/", limit=0, page_size=5)],
                         keys)
        self.assertEqual([e.key for e in self.c.range(prefix=b"lim0/", limit=0, reverse=True,
                                                      page_size=5)], keys[::-1])
        self.assertEqual(list(self.c.range(prefix=b"lim0/", limit=0)),
                         list(self.c.range(prefix=b"lim0/", limit=None)))

    def test_keys_only(self):
        keys = self.fill(b"ko/", 5)
        got = list(self.c.range(prefix=b"ko/", keys_only=True, page_size=2))
        self.assertEqual([e.key for e in got], keys)
        self.assertEqual({e.value for e in got}, {b""})
        self.assertTrue(all(e.mod_revision > 0 for e in got))

    def test_prefix_of_0xff_bytes_pages_to_the_end(self):
        # The next pages' end is the first key after every key with the
        # prefix, computed from it; an all-\xff prefix has no upper bound.
        keys = [b"\xff\xfe\xff", b"\xff\xfe\xff\x00", b"\xff\xfe\xff\xff", b"\xff\xfe\xff\xff\x01"]
        top = [b"\xff\xff", b"\xff\xff\x00", b"\xff\xff\xff"]
        for k in keys + top + [b"\xff\xfe\xfe"]:
            self.c.set(k, b"v")
        self.addCleanup(self.c.clear_range, prefix=b"\xff")
        self.assertEqual(kvstore.prefix_end(b"\xff\xfe\xff"), b"\xff\xff")
        self.assertEqual(kvstore.prefix_end(b"\xff\xff"), b"")
        self.assertEqual([e.key for e in self.c.range(prefix=b"\xff\xfe\xff", page_size=1)], keys)
        self.assertEqual([e.key for e in self.c.range(prefix=b"\xff\xfe\xff", page_size=1,
                                                      reverse=True)], keys[::-1])
        self.assertEqual([e.key for e in self.c.range(prefix=b"\xff\xff", page_size=1)], top)
        self.assertEqual([e.key for e in self.c.range(prefix=b"\xff\xff", page_size=2,
                                                      reverse=True)], top[::-1])

    def test_range_page(self):
        keys = self.fill(b"rp/", 6)
        page = self.c.range_page(prefix=b"rp/", limit=2)
        self.assertIsInstance(page, kvstore.Page)
        self.assertEqual([e.key for e in page], keys[:2])
        self.assertEqual((len(page), page.more, page.count), (2, True, 6))
        self.assertEqual(page.revision, self.revision())
        last = self.c.range_page(b"rp/004", b"rp/\xff", limit=2)
        self.assertEqual(([e.key for e in last], last.more, last.count), (keys[4:], False, 2))
        whole = self.c.range_page(prefix=b"rp/")
        self.assertEqual((len(whole), whole.more, whole.count), (6, False, 6))

    def test_count(self):
        self.fill(b"cnt/", 7)
        self.assertEqual(self.c.count(prefix=b"cnt/"), 7)
        self.assertEqual(self.c.count(b"cnt/002", b"cnt/005"), 3)
        self.assertEqual(self.c.count(prefix=b"cnt-none/"), 0)
        answer = self.c.Range(prefix=b"cnt/", count_only=True)
        self.assertEqual((len(answer.kvs), answer.count), (0, 7))
        self.assertEqual(self.c.count(), self.c.Stats().keys)       # no selector: every key

    def test_no_selector_reads_everything(self):
        self.c.set(b"all/k", b"v")
        keys = [e.key for e in self.c.range(keys_only=True)]
        self.assertIn(b"all/k", keys)
        self.assertEqual(keys, sorted(keys))
        self.assertEqual(len(keys), self.c.Stats().keys)

    def test_prefix_with_start_or_end_is_invalid_argument(self):
        for kwargs in ({"start": b"a"}, {"end": b"z"}):
            with self.assertRaises(kvstore.InvalidArgument):
                list(self.c.range(prefix=b"p/", **kwargs))
            with self.assertRaises(kvstore.InvalidArgument):
                self.c.count(prefix=b"p/", **kwargs)
            with self.assertRaises(kvstore.InvalidArgument):
                self.c.clear_range(prefix=b"p/", **kwargs)

    def test_arguments_are_checked_before_sending(self):
        with self.assertRaises(TypeError):
            self.c.range(prefix=5)
        with self.assertRaises(ValueError):
            self.c.range(limit=-1)
        with self.assertRaises(ValueError):
            self.c.range(page_size=1 << 32)

    def test_range_page_in_a_pipeline(self):
        self.fill(b"prp/", 3)
        p = self.c.pipeline()
        page = p.range_page(prefix=b"prp/")
        count = p.count(prefix=b"prp/")
        p.execute()
        self.assertEqual((len(page.result()), count.result()), (3, 3))


class TestLargePages(unittest.TestCase):
    """A page never exceeds the frame limit: the server cuts it short and
    range() pages on."""

    def test_pages_are_cut_at_the_frame_limit(self):
        own = Server("--max-frame-bytes", "1M")
        self.addCleanup(own.kill)
        with kvstore.Client(own.endpoint, timeout=10) as c:
            values = [bytes([i]) * (300 << 10) for i in range(10)]
            for i, v in enumerate(values):
                c.set(b"big/%d" % i, v)
            page = c.range_page(prefix=b"big/")
            self.assertTrue(page.more)
            self.assertLess(len(page), 10)
            self.assertGreater(len(page), 0)
            self.assertEqual(page.count, 10)
            self.assertEqual([e.value for e in c.range(prefix=b"big/")], values)
            self.assertEqual([e.value for e in c.range(prefix=b"big/", reverse=True)],
                             values[::-1])
        self.assertEqual(own.stop(), 0)


class TestClearRange(V2Test):
    def test_prefix(self):
        self.fill(b"cr/", 9)
        self.c.set(b"cr", b"not under the prefix")
        before = self.revision()
        self.assertEqual(self.c.clear_range(prefix=b"cr/"), 9)
        self.assertEqual(self.revision(), before + 1)         # one write, one revision
        self.assertEqual(self.c.count(prefix=b"cr/"), 0)
        self.assertEqual(self.c.get(b"cr"), b"not under the prefix")

    def test_start_and_end(self):
        keys = self.fill(b"crse/", 6)
        answer = self.c.ClearRange(start=b"crse/001", end=b"crse/004")
        self.assertEqual(answer.deleted, 3)
        self.assertEqual(answer.revision, self.revision())
        self.assertEqual([e.key for e in self.c.range(prefix=b"crse/")],
                         [keys[0]] + keys[4:])
        self.assertEqual(self.c.clear_range(b"crse/", b"crse0"), 3)

    def test_nothing_to_clear_keeps_the_revision(self):
        before = self.revision()
        self.assertEqual(self.c.clear_range(prefix=b"cr-nothing/"), 0)
        self.assertEqual(self.revision(), before)

    def test_no_selector_is_invalid_argument(self):
        self.c.set(b"crsafe/k", b"v")
        with self.assertRaises(kvstore.InvalidArgument):
            self.c.clear_range()
        with self.assertRaises(kvstore.InvalidArgument):
            self.c.clear_range(prefix=b"")          # empty: no selector either
        self.assertEqual(self.c.get(b"crsafe/k"), b"v")


class TestTxn(V2Test):
    def test_then_branch(self):
        rev = self.c.Set(key=b"tx/a", value=b"1").revision
        r = (self.c.txn()
             .if_(t.mod_revision(b"tx/a") == rev, t.value(b"tx/a") == b"1")
             .then(t.set(b"tx/a", b"2"), t.set(b"tx/b", b"new"), t.get(b"tx/a"),
                   t.get(b"tx/missing"))
             .else_(t.get(b"tx/a"))
             .commit())
        self.assertIsInstance(r, kvstore.TxnResult)
        self.assertTrue(r.succeeded)
        self.assertTrue(r)
        self.assertEqual(r.revision, rev + 1)                  # one revision for the Txn
        self.assertEqual(r.results[:2], [rev + 1, rev + 1])
        got = r.results[2]
        self.assertIsInstance(got, kvstore.Entry)
        self.assertEqual((got.key, got.value, got.mod_revision, got.version),
                         (b"tx/a", b"2", rev + 1, 2))           # sees the earlier write
        self.assertIsNone(r.results[3])                        # missing: found = false
        self.assertEqual(self.c.get_entry(b"tx/b").mod_revision,
                         self.c.get_entry(b"tx/a").mod_revision)
        self.assertEqual(self.revision(), rev + 1)

    def test_else_branch(self):
        self.c.set(b"tx/e", b"current")
        before = self.revision()
        r = (self.c.txn()
             .if_(t.value(b"tx/e") == b"expected")
             .then(t.set(b"tx/e", b"changed"))
             .else_(t.get(b"tx/e"), t.range(prefix=b"tx/e"))
             .commit())
        self.assertFalse(r.succeeded)
        self.assertEqual(r.results[0].value, b"current")
        self.assertIsInstance(r.results[1], kvstore.Page)
        self.assertEqual([e.key for e in r.results[1]], [b"tx/e"])
        self.assertEqual(self.c.get(b"tx/e"), b"current")
        self.assertEqual(self.revision(), before)             # read-only: no revision
        self.assertEqual(r.revision, before)

    def test_compare_ops(self):
        self.c.set(b"tx/v", b"m")
        self.c.set(b"tx/v", b"m")                              # version 2
        e = self.c.get_entry(b"tx/v")

        def holds(*compares):
            return self.c.txn().if_(*compares).commit().succeeded
        self.assertTrue(holds(t.version(b"tx/v") == 2))
        self.assertTrue(holds(t.version(b"tx/v") < 3))         # the key's is less
        self.assertFalse(holds(t.version(b"tx/v") < 2))
        self.assertTrue(holds(t.version(b"tx/v") > 1))
        self.assertTrue(holds(1 < t.version(b"tx/v")))         # reflected: GREATER
        self.assertTrue(holds(t.version(b"tx/v") != 1))
        self.assertTrue(holds(t.create_revision(b"tx/v").less(e.mod_revision)))
        self.assertTrue(holds(t.mod_revision(b"tx/v").equal(e.mod_revision)))
        self.assertTrue(holds(t.value(b"tx/v") > b"l", t.value(b"tx/v") < b"mm"))
        self.assertTrue(holds(t.value(b"tx/v") < b"m\x00"))    # shorter first
        self.assertFalse(holds(t.value(b"tx/v") != b"m"))
        self.assertTrue(holds())                               # no compares: holds
        self.assertFalse(holds(t.version(b"tx/v") == 2, t.value(b"tx/v") == b"x"))

    def test_a_missing_key_in_compares(self):
        def holds(*compares):
            return self.c.txn().if_(*compares).commit().succeeded
        self.assertTrue(holds(t.mod_revision(b"tx/none") == 0))
        self.assertTrue(holds(t.version(b"tx/none") == 0))
        self.assertTrue(holds(t.create_revision(b"tx/none") < 1))
        self.assertFalse(holds(t.value(b"tx/none") == b""))   # VALUE is false for it
        self.assertFalse(holds(t.value(b"tx/none") != b"x"))
        self.assertFalse(holds(t.value(b"tx/none") > b""))

    def test_create_if_absent(self):
        def create(key, value):
            return (self.c.txn().if_(t.create_revision(key) == 0)
                    .then(t.set(key, value)).else_(t.get(key)).commit())
        first = create(b"tx/once", b"1")
        self.assertTrue(first.succeeded)
        second = create(b"tx/once", b"2")
        self.assertFalse(second.succeeded)
        self.assertEqual(second.results[0].value, b"1")

    def test_clear_and_ranges_inside(self):
        self.fill(b"txr/", 4)
        self.c.set(b"txc", b"gone")
        r = (self.c.txn()
             .then(t.clear(b"txc"), t.clear(b"txc-missing"), t.clear_range(prefix=b"txr/"),
                   t.range(prefix=b"txr/", count_only=True))
             .commit())
        self.assertEqual(r.results[:3], [b"gone", None, 4])
        self.assertEqual(r.results[3].count, 0)                # sees the ClearRange
        with self.assertRaises(kvstore.KeyNotFound):
            self.c.get(b"txc")

    def test_writing_a_key_twice_is_refused_whole(self):
        self.c.set(b"tx/twice", b"0")
        before = self.revision()
        with self.assertRaises(kvstore.InvalidArgument):
            self.c.txn().then(t.set(b"tx/other", b"1"), t.set(b"tx/twice", b"1"),
                              t.clear(b"tx/twice")).commit()
        self.assertEqual(self.c.get(b"tx/twice"), b"0")
        with self.assertRaises(kvstore.KeyNotFound):
            self.c.get(b"tx/other")
        self.assertEqual(self.revision(), before)

    def test_conditional_write_inside_is_refused(self):
        op = pb.TxnOp(set=pb.SetRequest(key=b"tx/cond", value=b"v", if_mod_revision=0))
        with self.assertRaises(kvstore.InvalidArgument):
            self.c.txn().then(op).commit()
        with self.assertRaises(kvstore.KeyNotFound):
            self.c.get(b"tx/cond")

    def test_too_many_ops_is_refused(self):
        with self.assertRaises(kvstore.InvalidArgument):
            self.c.txn().then(*[t.get(b"tx/many%d" % i) for i in range(1000)]).commit()

    def test_builder(self):
        b = self.c.txn().if_(t.version(b"k") > 0).then(t.get(b"k")).else_(t.set(b"k", b"v"))
        b.if_(t.value(b"j") == "x")
        self.assertEqual(len(b.request.compare), 2)
        self.assertEqual(b.request.success[0].get.key, b"k")
        self.assertEqual(b.request.failure[0].set.value, b"v")
        self.assertEqual(b.request.compare[1].target, pb.Compare.VALUE)
        self.assertEqual(b.request.compare[0].op, pb.Compare.GREATER)
        with self.assertRaises(TypeError):
            b.then(b"not an op")
        with self.assertRaises(TypeError):
            b.if_(t.get(b"k"))
        with self.assertRaises(TypeError):
            t.version(b"k") <= 3
        with self.assertRaises(TypeError):
            bool(t.version(b"k"))
        with self.assertRaises(ValueError):
            t.mod_revision(b"k") == -1
        with self.assertRaises(TypeError):
            t.mod_revision(b"k") == b"1"

    def test_txn_in_a_pipeline(self):
        p = self.c.pipeline()
        p.set(b"txp", b"1")
        reply = p.txn().if_(t.value(b"txp") == b"1").then(t.get(b"txp")).commit()
        p.execute()
        self.assertTrue(reply.result().succeeded)
        self.assertEqual(reply.result().results[0].value, b"1")


if __name__ == "__main__":
    unittest.main()
