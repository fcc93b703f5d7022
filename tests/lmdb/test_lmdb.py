"""test_lmdb - the lmdb engine through a live kvstored: a clean restart keeps
everything in every sync mode; each way of starting it wrongly fails with
one clear line and a non-zero exit; a full map refuses only the writes that
do not fit; Stats shows the engine's figures; --sync batch syncs on its
own within the interval. (kill -9: test_lmdb_crash.py.)
"""

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import kvstored
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from live import (INVALID_ARGUMENT, OK, RESOURCE_EXHAUSTED, Server,  # noqa: E402
                  get_request, set_request, value_of)

PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2
LIBC = ctypes.CDLL(None, use_errno=True)


def holds_dac_override():
    """Whether this process may write where file permissions say it may not
    (root, normally)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_DAC_OVERRIDE & 1)
    return os.geteuid() == 0


def drop_dac_override():
    """A preexec_fn: takes the capabilities that bypass file permissions out
    of the bounding set, so the program exec'd next runs without them, even
    as root (and so still runs a binary that only root may reach)."""
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP, %d)" % cap)


class LmdbTest(unittest.TestCase):
    """Gives each test a fresh directory, self.dir."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kvstored-lmdb.")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.dir = os.path.join(self.tmp, "db")

    def start(self, *args):
        server = Server("--engine", "lmdb", "--dir", self.dir, *args)
        self.addCleanup(server.kill)
        return server

    def store_big_values(self, prefix):
        """Stores PREFIX000 to PREFIX299, 10,000 bytes of x each (3 MB, more
        than a 1M map holds), in self.dir, and stops the server cleanly."""
        server = self.start()
        conn = server.connect()
        for i in range(300):
            self.assertEqual(conn.set(b"%s%03d" % (prefix, i), b"x" * 10000), (OK, ""))
        conn.close()
        self.assertEqual(server.stop(), 0)

    def assertFailsToStart(self, args, message, status=1, preexec_fn=None):
        code, err, _ = kvstored.refused(*args, preexec_fn=preexec_fn)
        self.assertEqual(code, status, err)
        self.assertEqual(err.count("\n"), 1, "not one line: %r" % err)
        self.assertTrue(err.startswith("kvstored: "), err)
        self.assertIn(message, err)
        return err


class TestRestart(LmdbTest):
    def fill(self, conn):
        """Sets, overwrites and clears; returns what must be stored."""
        want = {}
        for i in range(1000):
            k = b"k%04d" % i
            v = bytes([i % 256]) * (i % 300)        # empty values too
            self.assertEqual(conn.set(k, v), (OK, ""))
            want[k] = v
        for i in range(0, 1000, 7):
            k = b"k%04d" % i
            self.assertEqual(conn.set(k, b"again"), (OK, ""))
            want[k] = b"again"
        for i in range(0, 1000, 5):
            k = b"k%04d" % i
            self.assertEqual(conn.clear(k)[0], OK)
            del want[k]
        return want

    def test_clean_stop_keeps_everything_in_every_sync_mode(self):
        for sync in ("always", "batch", "none"):
            with self.subTest(sync=sync):
                shutil.rmtree(self.dir, True)
                server = self.start("--sync", sync)
                conn = server.connect()
                want = self.fill(conn)
                before = conn.stats()
                conn.close()
                self.assertEqual(server.stop(), 0, server.stderr_text())

                server = self.start("--sync", sync)
                conn = server.connect()
                stored = conn.get_many(sorted(b"k%04d" % i for i in range(1000)))
                self.assertEqual({k: v for k, v in stored.items() if v is not None}, want)
                after = conn.stats()
                self.assertEqual(after.keys, len(want))
                self.assertEqual(after.data_bytes, before.data_bytes)
                self.assertEqual(after.data_bytes,
                                 sum(len(k) + len(v) for k, v in want.items()))
                conn.close()
                self.assertEqual(server.stop(), 0, server.stderr_text())

    def test_a_write_is_read_back_in_its_own_loop_turn(self):
        # Set then Get of the same key in one pipeline: the Get runs inside
        # the turn's open write transaction.
        conn = self.start().connect()
        conn.send([set_request(b"k", b"v1"), get_request(b"k"),
                   set_request(b"k", b"v2"), get_request(b"k")])
        answers = [conn.receive() for _ in range(4)]
        self.assertEqual([a.code for a in answers], [OK] * 4)
        self.assertEqual((value_of(b"k", answers[1]), value_of(b"k", answers[3])),
                         (b"v1", b"v2"))


class TestBadStart(LmdbTest):
    def test_directory_not_writable(self):
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o555)
        preexec = None
        if holds_dac_override():
            # Root writes anywhere: the server runs as root without the
            # capabilities that let it. (Run as nobody instead, it could not
            # even start from a checkout under a directory only root enters.)
            preexec = drop_dac_override
            try:
                subprocess.run(["true"], preexec_fn=preexec, check=True, timeout=10)
            except (subprocess.SubprocessError, OSError):
                self.skipTest("no directory is unwritable to kvstored here: it would run "
                              "with CAP_DAC_OVERRIDE, and prctl(PR_CAPBSET_DROP) cannot "
                              "take that away (no CAP_SETPCAP)")
        self.assertFailsToStart(["--engine", "lmdb", "--dir", self.dir],
                                "engine lmdb: %s is not writable: Permission denied" % self.dir,
                                preexec_fn=preexec)
        self.assertEqual(os.listdir(self.dir), [])

    def test_directory_held_by_another_kvstored(self):
        first = self.start()
        first.connect().set(b"k", b"v")
        self.assertFailsToStart(["--engine", "lmdb", "--dir", self.dir],
                                "engine lmdb: %s is in use by another kvstored (pid %d)"
                                % (self.dir, first.pid))
        conn = first.connect()
        self.assertEqual(conn.get(b"k"), b"v")      # the first one is unharmed
        conn.close()
        # A lock held by a killed server dies with it.
        self.assertEqual(first.kill(), -signal.SIGKILL)
        second = self.start()
        self.assertEqual(second.connect().get(b"k"), b"v")
        self.assertEqual(second.stop(), 0)

    def test_garbage_data_file(self):
        os.mkdir(self.dir)
        with open(os.path.join(self.dir, "data.mdb"), "wb") as f:
            f.write(b"this is not an LMDB file\n" * 1000)
        self.assertFailsToStart(["--engine", "lmdb", "--dir", self.dir],
                                "%s/data.mdb is not an LMDB environment" % self.dir)

    def test_damaged_meta_pages(self):
        server = self.start()
        server.connect().set(b"k", b"v")
        self.assertEqual(server.stop(), 0)
        with open(os.path.join(self.dir, "data.mdb"), "r+b") as f:
            f.write(b"\xa5" * 8192)                 # both meta pages
        self.assertFailsToStart(["--engine", "lmdb", "--dir", self.dir],
                                "%s/data.mdb is not an LMDB environment" % self.dir)

    def test_truncated_data_file(self):
        # LMDB trusts its meta pages, which sit at the start of the file and
        # survive a truncation: without a check, the first read of a page
        # past the end kills the server with SIGBUS.
        self.store_big_values(b"k")
        path = os.path.join(self.dir, "data.mdb")
        with open(path, "rb") as f:
            whole = f.read()
        args = ["--engine", "lmdb", "--dir", self.dir]
        pattern = (r"engine lmdb: %s is truncated: it holds (\d+) bytes, but its LMDB meta page "
                   r"says its data takes (\d+) \(\d+ pages of \d+ bytes\)$" % re.escape(path))

        os.truncate(path, len(whole) // 2)
        err = self.assertFailsToStart(args, "%s is truncated" % path)
        sizes = re.search(pattern, err.strip())
        self.assertIsNotNone(sizes, err)
        self.assertEqual(int(sizes.group(1)), len(whole) // 2)
        need = int(sizes.group(2))
        self.assertLessEqual(need, len(whole))
        self.assertGreater(need, len(whole) // 2)

        for size in (need - 1, 3 * 4096):           # a byte short; the meta pages and one more
            with self.subTest(size=size):
                with open(path, "wb") as f:
                    f.write(whole[:size])
                err = self.assertFailsToStart(args, "%s is truncated" % path)
                self.assertEqual(re.search(pattern, err.strip()).groups(), (str(size), str(need)))

        with open(path, "wb") as f:                 # exactly what the meta page says: whole
            f.write(whole[:need])
        server = self.start()
        conn = server.connect()
        stored = conn.get_many([b"k%03d" % i for i in range(300)])
        self.assertEqual(stored, {b"k%03d" % i: b"x" * 10000 for i in range(300)})
        conn.close()
        self.assertEqual(server.stop(), 0, server.stderr_text())

    def test_directory_of_something_else(self):
        os.mkdir(self.dir)
        with open(os.path.join(self.dir, "notes.txt"), "w") as f:
            f.write("mine\n")
        self.assertFailsToStart(["--engine", "lmdb", "--dir", self.dir],
                                "%s is not a kvstored data directory: it holds \"notes.txt\" but "
                                "no data.mdb" % self.dir)
        self.assertEqual(os.listdir(self.dir), ["notes.txt"])   # left alone

    def test_dir_is_a_file(self):
        with open(self.dir, "w") as f:
            f.write("x")
        self.assertFailsToStart(["--engine", "lmdb", "--dir", self.dir],
                                "engine lmdb: %s is not a directory" % self.dir)

    def test_no_dir(self):
        self.assertFailsToStart(["--engine", "lmdb"], "engine lmdb: needs --dir PATH")

    def test_map_size_too_small_for_the_data(self):
        self.store_big_values(b"big")
        err = self.assertFailsToStart(["--engine", "lmdb", "--dir", self.dir,
                                       "--lmdb-map-size", "1M"],
                                      "engine lmdb: --lmdb-map-size 1M is too small for the data "
                                      "in %s, which takes " % self.dir)
        advice = re.search(r"give --lmdb-map-size (\d+M) or more$", err.strip())
        self.assertIsNotNone(advice, err)
        server = self.start("--lmdb-map-size", advice.group(1))     # the advice works
        self.assertEqual(server.connect().get(b"big299"), b"x" * 10000)
        self.assertEqual(server.stop(), 0)

    def test_bad_flags_are_usage_errors(self):
        for args, message in [
                (["--sync", "sometimes"], "--sync: \"sometimes\" is not always, batch or none"),
                (["--sync-interval-ms", "0"], "--sync-interval-ms: \"0\" is not a number"),
                (["--lmdb-map-size", "1"], "--lmdb-map-size: \"1\" is not a size between"),
                (["--max-key-bytes", "1K"], "--max-key-bytes: engine lmdb stores keys of at "
                                            "most 511 bytes")]:
            with self.subTest(args=args):
                self.assertFailsToStart(["--engine", "lmdb", "--dir", self.dir] + args,
                                        message, status=2)


class TestLimits(LmdbTest):
    def test_full_map_refuses_writes_that_do_not_fit_and_keeps_serving(self):
        server = self.start("--lmdb-map-size", "1M")
        conn = server.connect()
        stored = []
        for i in range(2000):
            code, message = conn.set(b"k%04d" % i, b"v" * 1000)
            if code != OK:
                break
            stored.append(b"k%04d" % i)
        self.assertEqual(code, RESOURCE_EXHAUSTED)
        self.assertEqual(message, "LMDB map full (--lmdb-map-size 1M); Clear keys or restart "
                                  "with a larger map")
        self.assertGreater(len(stored), 300)
        # Reads, Clears and Stats keep working; Clears make room.
        self.assertEqual(conn.get(stored[-1]), b"v" * 1000)
        for k in stored[:100]:
            self.assertEqual(conn.clear(k)[0], OK)
        # A pipeline that fills the room again arrives in one loop turn, so
        # its writes share one transaction: those before the first refused
        # one must survive the refusals that follow.
        conn.send([set_request(b"p%03d" % i, b"w" * 1000) for i in range(200)])
        answers = [conn.receive() for _ in range(200)]
        accepted = [b"p%03d" % i for i, a in enumerate(answers) if a.code == OK]
        refused = [a for a in answers if a.code != OK]
        self.assertGreater(len(accepted), 5)
        self.assertGreater(len(refused), 20)
        self.assertEqual({a.code for a in refused}, {RESOURCE_EXHAUSTED})
        self.assertGreater(conn.stats().keys, 0)
        self.assertEqual(server.stop(), 0, server.stderr_text())
        self.assertNotRegex(server.stderr_text(), r"(?m)^\S+ error ")   # no failed flush, no closed connection

        server = self.start("--lmdb-map-size", "1M")
        conn = server.connect()
        got = conn.get_many(stored + accepted)
        self.assertEqual([k for k in stored[:100] if got[k] is not None], [])
        self.assertEqual([k for k in stored[100:] if got[k] != b"v" * 1000], [])
        self.assertEqual([k for k in accepted if got[k] != b"w" * 1000], [])
        self.assertEqual(conn.stats().keys, len(stored) - 100 + len(accepted))
        for k in stored[100:200]:
            self.assertEqual(conn.clear(k)[0], OK)
        self.assertEqual(conn.set(b"after", b"room again" * 100), (OK, ""))
        self.assertEqual(server.stop(), 0, server.stderr_text())

    def test_keys_are_limited_to_what_lmdb_stores(self):
        conn = self.start().connect()
        self.assertEqual(conn.set(b"k" * 511, b"v"), (OK, ""))
        self.assertEqual(conn.set(b"k" * 512, b"v"),
                         (INVALID_ARGUMENT, "key of 512 bytes exceeds the limit of 511 bytes"))


class TestStats(LmdbTest):
    def test_engine_figures(self):
        conn = self.start("--lmdb-map-size", "64M").connect()
        before = int(time.time() * 1000)
        conn.set(b"k", b"value")
        s = conn.stats()
        self.assertEqual(s.engine, "lmdb")
        self.assertEqual(s.engine_sync, "always")
        self.assertEqual(s.engine_map_bytes, 64 << 20)
        self.assertEqual(s.engine_file_bytes,
                         os.stat(os.path.join(self.dir, "data.mdb")).st_blocks * 512)
        self.assertGreater(s.engine_file_bytes, 0)
        self.assertGreaterEqual(s.engine_last_sync_unix_ms, before - 1)
        self.assertEqual((s.keys, s.data_bytes), (1, 6))

    def test_sync_none_never_syncs_while_serving(self):
        conn = self.start("--sync", "none").connect()
        conn.set(b"k", b"v")
        s = conn.stats()
        self.assertEqual(s.engine_sync, "none")
        self.assertEqual(s.engine_last_sync_unix_ms, 0)

    def test_sync_batch_syncs_within_the_interval_on_its_own(self):
        conn = self.start("--sync", "batch", "--sync-interval-ms", "200").connect()
        time.sleep(0.25)
        conn.set(b"a", b"1")            # an interval has passed: synced before the answer
        first = conn.stats().engine_last_sync_unix_ms
        self.assertGreater(first, 0)
        before = int(time.time() * 1000)
        conn.set(b"b", b"2")            # within the interval: deferred to the timer
        self.assertEqual(conn.stats().engine_last_sync_unix_ms, first)
        time.sleep(0.5)                 # no request meanwhile: the timer syncs
        self.assertGreaterEqual(conn.stats().engine_last_sync_unix_ms, before - 1)


if __name__ == "__main__":
    if not os.access(os.environ.get("KVSTORED", ""), os.X_OK):
        raise SystemExit("set KVSTORED to the kvstored binary (meson test does)")
    unittest.main(verbosity=2)
