"""test_flags - kvstored's command line refuses values it would otherwise
misread: a size that does not start with a digit (strtoull skips blanks and
takes '-', so " -1" was 2^64-1, no limit), an --idle-timeout that is not 0
or a finite number of seconds within range (nan and inf meant never, 1e-300
closed every connection at once), an --lmdb-map-size too small for any Set,
and --dir with an engine that keeps no files. Each is one line on stderr and
exit status 2; the values at the edges of each range are accepted.

Debian's /usr/bin/python3; servers start through tests/support/kvstored.py
and are spoken to with the lmdb tests' connection (lmdb/live.py, on the
Python client). $KVSTORED names the binary (meson test sets it).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

from kvstored import refused, server_binary
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lmdb"))
from live import OK, Server  # noqa: E402

# Every flag that takes a size (K, M, G suffixes), with a value it accepts.
SIZE_FLAGS = {
    "--max-frame-bytes": "1024",
    "--max-key-bytes": "100",
    "--max-value-bytes": "0",
    "--max-memory-bytes": "1M",
    "--max-clients": "10",
    "--max-input-bytes": "64K",
    "--lmdb-map-size": "1M",
}
IDLE_RANGE = "between 0.01 and 31536000"


def help_text():
    return subprocess.run([server_binary(), "--help"], capture_output=True, text=True,
                          timeout=10).stdout


class FlagTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kvstored-flags.")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.dir = os.path.join(self.tmp, "db")

    def assertUsageError(self, args, message):
        """kvstored ARGS exits 2 with MESSAGE as its one line on stderr."""
        code, err, _ = refused(*args)
        self.assertEqual(code, 2, "%s: %r" % (args, err))
        self.assertEqual(err.count("\n"), 1, "not one line: %r" % err)
        self.assertTrue(err.startswith("kvstored: "), err)
        self.assertIn(message, err)

    def assertStarts(self, args):
        """kvstored ARGS starts, answers a Ping and stops cleanly."""
        server = Server(*args)
        self.addCleanup(server.kill)
        self.assertEqual(server.connect().call("Ping")[0], OK)
        self.assertEqual(server.stop(), 0, server.stderr_text())

    def engine_args(self, flag):
        return ["--engine", "lmdb", "--dir", self.dir] if flag == "--lmdb-map-size" else []


class TestSizes(FlagTest):
    def flags(self):
        # --max-output-bytes, where this kvstored has it, parses the same way.
        flags = dict(SIZE_FLAGS)
        if "--max-output-bytes" in help_text():
            flags["--max-output-bytes"] = "64K"
        return flags

    def test_a_size_must_start_with_a_digit(self):
        for flag in self.flags():
            for value in (" -1", "\t-1", "-1", " 1", "\t1", "+1", " 1K", "", "K", " "):
                with self.subTest(flag=flag, value=value):
                    self.assertUsageError(self.engine_args(flag) + [flag, value],
                                          "%s: \"%s\" is not a size between" % (flag, value))

    def test_sizes_that_start_with_a_digit_are_taken(self):
        for flag, value in self.flags().items():
            with self.subTest(flag=flag, value=value):
                shutil.rmtree(self.dir, True)
                self.assertStarts(self.engine_args(flag) + [flag, value])

    def test_sync_interval_must_start_with_a_digit(self):
        for value in (" 5", "+5", "-5"):
            with self.subTest(value=value):
                self.assertUsageError(["--sync-interval-ms", value],
                                      "--sync-interval-ms: \"%s\" is not a number" % value)


class TestIdleTimeout(FlagTest):
    def test_not_a_finite_number_in_range_is_refused(self):
        for value in ("nan", "NaN", "inf", "-inf", "infinity", "1e-300", "0.001", "0.0099",
                      "31536000.5", "1e400", "-1", "-0", " 1", "+1", "", "5s", "0x"):
            with self.subTest(value=value):
                self.assertUsageError(["--idle-timeout", value],
                                      "--idle-timeout: \"%s\" is not 0 or a number of seconds %s"
                                      % (value, IDLE_RANGE))

    def test_zero_and_the_edges_of_the_range_are_taken(self):
        for value in ("0", "0.0", "0.01", "2.5", "300", "31536000"):
            with self.subTest(value=value):
                self.assertStarts(["--idle-timeout", value])

    def test_help_gives_the_range(self):
        self.assertIn("0.01 to 31536000", " ".join(help_text().split()))


class TestLmdbMapSize(FlagTest):
    def test_a_map_too_small_for_any_set_is_refused(self):
        for value in ("64K", "512K", "1048575"):
            with self.subTest(value=value):
                self.assertUsageError(["--engine", "lmdb", "--dir", self.dir,
                                       "--lmdb-map-size", value],
                                      "--lmdb-map-size: \"%s\" is not a size between 1048576 and"
                                      % value)
                self.assertFalse(os.path.exists(self.dir))

    def test_sets_work_at_the_smallest_map(self):
        server = Server("--engine", "lmdb", "--dir", self.dir, "--lmdb-map-size", "1M")
        self.addCleanup(server.kill)
        conn = server.connect()
        for i in range(1000):
            self.assertEqual(conn.set(b"key%04d" % i, b"a small value"), (OK, ""))
        self.assertEqual(conn.get(b"key0999"), b"a small value")
        self.assertEqual(server.stop(), 0, server.stderr_text())


class TestDir(FlagTest):
    def test_dir_with_the_memory_engine_is_refused(self):
        for args in (["--dir", self.dir], ["--engine", "memory", "--dir", self.dir],
                     ["--dir", self.dir, "--engine", "memory"]):
            with self.subTest(args=args):
                self.assertUsageError(args, "--dir: engine memory keeps no files")
                self.assertFalse(os.path.exists(self.dir))

    def test_dir_with_lmdb_is_taken(self):
        self.assertStarts(["--engine", "lmdb", "--dir", self.dir])


class TestHelp(unittest.TestCase):
    def test_every_flag_of_the_man_page_is_in_help(self):
        """--help once lacked --max-output-bytes: the man page lists every
        flag, and --help must name each of them too."""
        page = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src",
                            "kvstored.8.scd")
        with open(page) as f:
            flags = set(re.findall(r"\*(--[a-z][a-z0-9-]+)\*", f.read()))
        self.assertIn("--max-output-bytes", flags)
        text = help_text()
        self.assertEqual(sorted(f for f in flags if f not in text), [])


if __name__ == "__main__":
    if not os.access(os.environ.get("KVSTORED", ""), os.X_OK):
        raise SystemExit("set KVSTORED to the kvstored binary (meson test does)")
    unittest.main(verbosity=2)
