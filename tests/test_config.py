"""test_config - operating kvstored: the --config file (its settings take
effect, flags win over it in any order, comments, blank lines and the
[kvstored] section, an unknown name, a bad value, a repeated name, a line
too long and a missing file refused with FILE:LINE and exit 2),
--print-config (every setting; fed back with --config it prints the same),
docs/kvstored.conf (every setting, accepted), --log-file and SIGHUP
reopening it (logrotate), and sd_notify: READY=1 once serving, STOPPING=1
on SIGTERM, to the socket in NOTIFY_SOCKET.

Debian's /usr/bin/python3; servers start through tests/support/kvstored.py
and are spoken to with the lmdb tests' connection (lmdb/live.py).
$KVSTORED names the binary (meson test sets it).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

from kvstored import refused, server_binary, wait_for
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lmdb"))
from live import INVALID_ARGUMENT, OK, Server  # noqa: E402

DOCS_CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs",
                         "kvstored.conf")


def kvstored(*args):
    """kvstored ARGS run to its end: (exit status, stdout, stderr)."""
    p = subprocess.run([server_binary(), *args], capture_output=True, text=True, timeout=10)
    return p.returncode, p.stdout, p.stderr


def print_config(*args):
    code, out, err = kvstored(*args, "--print-config")
    if code != 0:
        raise AssertionError("--print-config %s: exit %d: %s" % (args, code, err))
    return out


def settings_of(text):
    """{name: value} of the "name = value" lines of TEXT; a "# name ="
    line (a setting not given) is name: None."""
    out = {}
    for line in text.splitlines():
        m = re.fullmatch(r"(#\s*)?([a-z][a-z0-9-]*) =\s*(.*)", line)
        if m:
            out[m.group(2)] = None if m.group(1) else m.group(3)
    return out


class ConfigTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kvstored-config.")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, text, name="kvstored.conf"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def serve(self, *args, **options):
        server = Server(*args, listen=None, **options)
        self.addCleanup(server.kill)
        return server

    def assertRefused(self, args, message):
        """kvstored ARGS exits 2 with MESSAGE in its one line on stderr."""
        code, err, _ = refused(*args, listen=None)
        self.assertEqual(code, 2, "%s: %r" % (args, err))
        self.assertEqual(err.count("\n"), 1, "not one line: %r" % err)
        self.assertTrue(err.startswith("kvstored: "), err)
        self.assertIn(message, err)


class TestFile(ConfigTest):
    def test_the_file_s_settings_take_effect(self):
        # The address is the file's (127.0.0.2, not the helper's 127.0.0.1),
        # and so is the key limit: 10 bytes pass, 11 are refused.
        path = self.write("listen = 127.0.0.2:0\nmax-key-bytes = 10\n")
        server = self.serve("--config", path)
        self.assertTrue(server.endpoint.startswith("127.0.0.2:"), server.endpoint)
        conn = server.connect()
        self.assertEqual(conn.set(b"k" * 10, b"v")[0], OK)
        self.assertEqual(conn.set(b"k" * 11, b"v")[0], INVALID_ARGUMENT)
        self.assertEqual(server.stop(), 0, server.stderr_text())

    def test_flags_win_over_the_file_before_or_after_it(self):
        path = self.write("listen = 127.0.0.2:0\nmax-key-bytes = 10\nlog-level = warn\n")
        for args in (["--max-key-bytes", "20", "--config", path],
                     ["--config", path, "--max-key-bytes", "20"]):
            with self.subTest(args=args):
                said = settings_of(print_config(*args))
                self.assertEqual(said["max-key-bytes"], "20")
                self.assertEqual(said["log-level"], "warn")
        server = self.serve("--listen", "127.0.0.1:0", "--config", path,
                            "--max-key-bytes", "20")
        self.assertTrue(server.endpoint.startswith("127.0.0.1:"), server.endpoint)
        self.assertEqual(server.connect().set(b"k" * 20, b"v")[0], OK)
        self.assertEqual(server.stop(), 0, server.stderr_text())

    def test_comments_blank_lines_and_the_section(self):
        path = self.write("# a comment\n\n; another\n   \n[kvstored]\n"
                          "max-clients = 7   ; the rest of the line is a comment\n"
                          "  # an indented comment\nidle-timeout=2.5\n")
        said = settings_of(print_config("--config", path))
        self.assertEqual(said["max-clients"], "7")
        self.assertEqual(said["idle-timeout"], "2.5")

    def test_an_unknown_name_is_refused_with_its_line(self):
        path = self.write("# first\nmax-clients = 7\n\nmax-cleints = 8\n")
        self.assertRefused(["--config", path], '%s:4: unknown setting "max-cleints"' % path)

    def test_a_bad_value_is_refused_as_the_flag_is(self):
        # The same check as the flag, with the file's name and line first.
        cases = [("max-clients", "0", 'max-clients: "0" is not a size between 1 and 1000000'),
                 ("idle-timeout", "nan", 'idle-timeout: "nan" is not 0 or a number'),
                 ("listen", "127.0.0.1:99999", "listen: "),
                 ("engine", "disk", 'engine: "disk" is not an engine'),
                 ("log-level", "loud", 'log-level: "loud" is not error, warn, info or debug'),
                 ("node-id", "0", 'node-id: "0" is not a size between 1'),
                 ("initial-cluster", "nonsense", "initial-cluster: expected ID=HOST:PORT"),
                 ("dir", "", "dir: needs a path")]
        for name, value, message in cases:
            with self.subTest(name=name):
                path = self.write("# bad\n%s = %s\n" % (name, value))
                self.assertRefused(["--config", path], "%s:2: %s" % (path, message))
                flag = refused("--%s" % name, value, listen=None)
                self.assertEqual(flag.status, 2, flag.stderr)
                self.assertIn("kvstored: --%s" % message, flag.stderr)

    def test_other_lines_are_refused(self):
        cases = [("max-clients 7\n", "1: not a \"name = value\" line"),
                 ("max-clients = 7\nmax-clients = 8\n", "2: max-clients: set again (first on line 1)"),
                 ("[server]\nmax-clients = 7\n", "2: unknown section [server]"),
                 ("join = " + "h" * 300 + ":1\n", "1: longer than")]
        for text, message in cases:
            with self.subTest(text=text[:20]):
                path = self.write(text)
                self.assertRefused(["--config", path], "%s:%s" % (path, message))

    def test_a_missing_file_is_a_clear_error(self):
        path = os.path.join(self.tmp, "nowhere.conf")
        self.assertRefused(["--config", path],
                           "--config: cannot read %s: No such file or directory" % path)

    def test_settings_are_checked_together_after_the_file(self):
        path = self.write("dir = %s\n" % self.tmp)
        self.assertRefused(["--config", path], "--dir: engine memory keeps no files")
        # ... and the flag makes it right.
        self.assertEqual(settings_of(print_config("--config", path, "--engine", "lmdb"))["dir"],
                         self.tmp)


class TestPrintConfig(ConfigTest):
    def test_every_setting_with_its_default(self):
        said = settings_of(print_config())
        for name, value in (("listen", "127.0.0.1:7379"), ("engine", "memory"),
                            ("max-frame-bytes", "16M"), ("sync", "always"),
                            ("log-level", "info"), ("election-timeout-ms", "800")):
            self.assertEqual(said[name], value)
        for name in ("dir", "auth-token-file", "log-file", "node-id", "join"):
            self.assertIsNone(said[name])
        # Every long option that takes a value in --help is a setting, but
        # those that say what to do at this start (--restore: a file would
        # restore at every start).
        help_text = kvstored("--help")[1]
        flags = set(re.findall(r"--([a-z][a-z0-9-]*)[ =][A-Z]", help_text)) - {"config",
                                                                               "restore"}
        flags |= {"sync", "log-level", "log-format", "tls-only", "metrics-tls"}
        self.assertEqual(flags, set(said))

    def test_fed_back_it_prints_the_same(self):
        path = self.write("engine = lmdb\ndir = %s\nsync = batch\nmax-memory-bytes = 3M\n"
                          "idle-timeout = 0.25\nlog-format = json\nnode-id = 3\n"
                          "cluster-dir = %s/raft\nraft-listen = 127.0.0.1:7400\n"
                          "initial-cluster = 3=127.0.0.1:7400\n" % (self.tmp, self.tmp))
        first = print_config("--config", path, "--max-clients", "12")
        again = self.write(first, "again.conf")
        self.assertEqual(print_config("--config", again), first)
        self.assertEqual(settings_of(first)["max-clients"], "12")
        self.assertEqual(settings_of(first)["idle-timeout"], "0.25")

    def test_the_example_file_lists_every_setting_and_is_accepted(self):
        with open(DOCS_CONF) as f:
            example = settings_of(f.read())
        self.assertEqual(set(example), set(settings_of(print_config())))
        defaults = settings_of(print_config())
        for name, value in example.items():
            if value is not None and name not in ("engine", "dir"):
                with self.subTest(name=name):
                    self.assertEqual(value, defaults[name], "a commented default that is not")
        self.assertEqual(settings_of(print_config("--config", DOCS_CONF))["engine"], "lmdb")


class TestLogFile(ConfigTest):
    def read(self, path):
        with open(path) as f:
            return f.read()

    def test_sighup_reopens_the_log_file(self):
        log = os.path.join(self.tmp, "kvstored.log")
        server = self.serve("--listen", "127.0.0.1:0", "--log-file", log)
        wait_for("the start in the log file", lambda: "started" in self.read(log))
        self.assertEqual(server.stderr_text(), "")      # nothing on stderr
        os.rename(log, log + ".1")                      # as logrotate does
        server.signal(signal.SIGHUP)
        wait_for("a new log file", lambda: os.path.exists(log) and "reopened" in self.read(log))
        self.assertEqual(server.stop(), 0)
        new, old = self.read(log), self.read(log + ".1")
        self.assertIn("stopped", new)
        self.assertIn("started", old)
        self.assertNotIn("stopped", old)
        self.assertNotIn("reopened", old)

    def test_from_the_file_too(self):
        log = os.path.join(self.tmp, "kvstored.log")
        server = self.serve("--listen", "127.0.0.1:0",
                            "--config", self.write("log-file = %s\n" % log))
        self.assertEqual(server.stop(), 0)
        self.assertIn("stopped", self.read(log))

    def test_a_log_file_that_cannot_be_opened(self):
        log = os.path.join(self.tmp, "no", "such", "dir", "kvstored.log")
        code, err, _ = refused("--log-file", log)
        self.assertEqual(code, 1, err)
        self.assertIn("kvstored: --log-file: cannot open log file %s" % log, err)


class TestNotify(ConfigTest):
    def test_ready_then_stopping(self):
        path = os.path.join(self.tmp, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(path)
        sock.settimeout(10)
        server = self.serve("--listen", "127.0.0.1:0", env={"NOTIFY_SOCKET": path})
        self.assertIn("READY=1", sock.recv(4096).decode().split("\n"))
        # It serves once ready.
        self.assertEqual(server.connect().call("Ping")[0], OK)
        server.signal(signal.SIGTERM)
        self.assertIn("STOPPING=1", sock.recv(4096).decode().split("\n"))
        self.assertEqual(server.stop(), 0)

    def test_nothing_without_notify_socket(self):
        server = self.serve("--listen", "127.0.0.1:0", env={"NOTIFY_SOCKET": None})
        self.assertEqual(server.stop(), 0, server.stderr_text())


if __name__ == "__main__":
    unittest.main(verbosity=2)
