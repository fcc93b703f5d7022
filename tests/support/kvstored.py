"""kvstored - the one way Python tests (and bench scripts) start kvstored.

Server() runs the binary ($KVSTORED unless told) with --listen 127.0.0.1:0
and is ready once the server prints "listening on HOST:PORT". With
engine_from_env (the default), $KVSTORED_ENGINE (unset: memory) picks the
engine, and any engine but memory gets a fresh temporary --dir, removed when
the server ends; the suites run once per engine that way. refused() runs a
command line that must not start. The child's output is read by threads, so
its pipes never fill. Every wait here is bounded; stdlib only.

    from kvstored import Server
    s = Server("--max-clients", "10", capture_stderr=True)
    kvstore.Client(s.endpoint) ...
    s.wait_for_stderr(r"closed \\d+ connections")
    assert s.stop() == 0
"""

import collections
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
WAIT_TIMEOUT = 20.0


def server_binary(path=None):
    """PATH, or $KVSTORED; raises unless it is an executable file."""
    path = path or os.environ.get("KVSTORED")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError("set KVSTORED to the kvstored binary (meson test does); got %r" % path)
    return path


def wait_for(what, predicate, timeout=WAIT_TIMEOUT, step=0.02):
    """Calls PREDICATE every STEP seconds until it returns something true,
    and returns that; AssertionError naming WHAT after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %gs waiting for %s" % (timeout, what))
        time.sleep(step)


def _child_env(env):
    # ENV's variables on top of ours; a value of None removes one.
    if env is None:
        return None
    out = dict(os.environ)
    for name, value in env.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


class _Output:
    """Everything one pipe of the child says, read to its end by a daemon
    thread; wait() blocks until the text so far matches a pattern."""

    def __init__(self, pipe):
        self._pipe = pipe
        self._data = bytearray()
        self._ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        try:
            while True:
                chunk = os.read(self._pipe.fileno(), 65536)
                if not chunk:
                    break
                with self._changed:
                    self._data += chunk
                    self._changed.notify_all()
        except (OSError, ValueError):
            pass                                # closed under us by close()
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def text(self):
        with self._changed:
            return self._data.decode(errors="replace")

    def wait(self, pattern, timeout):
        """The first match of PATTERN (a str regex) in the text, waiting up to
        TIMEOUT seconds for it; None when the time is up or the pipe ended
        without one."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                match = re.search(pattern, self._data.decode(errors="replace"))
                left = deadline - time.monotonic()
                if match or self._ended or left <= 0:
                    return match
                self._changed.wait(left)

    def close(self):
        """Waits (bounded) for the end of the pipe, then closes our end."""
        self._thread.join(STOP_TIMEOUT)
        self._pipe.close()


class Server:
    """A kvstored child process on a free port of 127.0.0.1 (or LISTEN).

    ARGS come after the engine flags, so a test's own --engine or --dir
    wins. capture_stderr keeps the server's stderr for stderr_text() and
    wait_for_stderr() (otherwise it goes to the test's own stderr).
    engine_from_env=False runs exactly ARGS (no $KVSTORED_ENGINE). DIR is
    the --dir of the engine from the environment (kept, so a later Server
    given the same DIR restarts on the same data; default a fresh temporary
    one, removed when the server ends). PREEXEC_FN runs in the
    child before the exec; ENV holds variables to set (None: unset) on top
    of this process's environment; BINARY replaces $KVSTORED; LISTEN
    replaces 127.0.0.1:0 (a cluster node on an address of its own; None:
    no --listen, for a --config file that says where).

    Read-only: proc (the Popen), pid, port, endpoint ("127.0.0.1:PORT"),
    dir (the engine's --dir, None for memory), status (the exit status
    once stop() or kill() has reaped it, else None).
    """

    def __init__(self, *args, capture_stderr=False, engine_from_env=True, preexec_fn=None,
                 env=None, binary=None, dir=None, listen="127.0.0.1:0"):
        self.args = args
        self.dir, self._own_dir, engine = None, False, []
        name = (os.environ.get("KVSTORED_ENGINE") if engine_from_env else None) or "memory"
        if name != "memory":
            self.dir, self._own_dir = dir, dir is None
            if self._own_dir:
                self.dir = tempfile.mkdtemp(prefix="kvstored-test.")
            engine = ["--engine", name, "--dir", self.dir]
        self.status = None
        self._stderr = None
        where = ["--listen", listen] if listen is not None else []
        self.proc = subprocess.Popen(
            [server_binary(binary), *where, *engine, *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if capture_stderr else None,
            preexec_fn=preexec_fn, env=_child_env(env))
        self.pid = self.proc.pid
        self._stdout = _Output(self.proc.stdout)
        if capture_stderr:
            self._stderr = _Output(self.proc.stderr)
        try:
            match = self._stdout.wait(r"listening on (\S+):(\d+)\n", START_TIMEOUT)
        except BaseException:
            self.kill()
            raise
        if not match:
            exited = self.proc.poll() is not None
            self.kill()                 # and reads its output to the end
            raise RuntimeError(self._why_not_started(exited))
        self.port = int(match.group(2))
        self.endpoint = "%s:%d" % (match.group(1), self.port)

    def _why_not_started(self, exited):
        said = "; stderr: %r" % self.stderr_text() if self._stderr else ""
        if exited:
            return "kvstored %s exited (%s) before listening%s" % (self.args, self.proc.returncode,
                                                                   said)
        return ("kvstored %s did not say 'listening on HOST:PORT' within %gs (stdout %r)%s"
                % (self.args, START_TIMEOUT, self._stdout.text(), said))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        """Stops the server; when the block ended well, it must have exited
        0 (a crash or a leak report at exit fails the test)."""
        status = self.stop()
        if exc_type is None and status != 0:
            raise AssertionError("kvstored exited %s" % status)

    def signal(self, sig):
        """Sends SIG, unless the server has already ended."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self):
        """SIGTERM, then waits; returns the exit status (0 when all went
        well). Raises if it has not exited within STOP_TIMEOUT (it is then
        killed)."""
        self.signal(signal.SIGTERM)
        try:
            return self._reap(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError("kvstored did not exit within %gs of SIGTERM" % STOP_TIMEOUT)

    def kill(self):
        """SIGKILL (works on a stopped process too) and reaps it; returns the
        exit status (-9, or how it ended before)."""
        self.signal(signal.SIGKILL)
        return self._reap(STOP_TIMEOUT)

    def _reap(self, timeout):
        self.status = self.proc.wait(timeout)
        self._stdout.close()
        if self._stderr:
            self._stderr.close()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self._own_dir = False
        return self.status

    def stdout_text(self):
        """All the server has written to stdout so far ("metrics on
        HOST:PORT" comes before "listening on", so it is there once the
        Server has started)."""
        return self._stdout.text()

    def stderr_text(self):
        """All the server has written to stderr so far (capture_stderr);
        all of it once the server has been stopped or killed."""
        if not self._stderr:
            raise RuntimeError("start the Server with capture_stderr=True to read its stderr")
        return self._stderr.text()

    def wait_for_stderr(self, pattern, timeout=10.0):
        """The re.Match of PATTERN (a str regex) in the server's stderr,
        waiting up to TIMEOUT seconds for it (capture_stderr). Raises
        AssertionError with the stderr so far when it does not come."""
        if not self._stderr:
            raise RuntimeError("start the Server with capture_stderr=True to read its stderr")
        match = self._stderr.wait(pattern, timeout)
        if not match:
            raise AssertionError("kvstored's stderr %s no match for %r; it says:\n%s"
                                 % ("ended with" if self.proc.poll() is not None
                                    else "held after %gs" % timeout,
                                    pattern, self.stderr_text()))
        return match


class ServerTest(unittest.TestCase):
    """A test case with a server of its own per test, started with ARGS,
    and connections made by conn() (CONN(endpoint), a class with close()),
    closed before the server stops; the server must then exit 0."""

    ARGS = ()
    CONN = None

    def setUp(self):
        self.server = Server(*self.ARGS)
        self.conns = []

    def tearDown(self):
        for c in self.conns:
            c.close()
        self.assertEqual(self.server.stop(), 0)

    def conn(self):
        c = self.CONN(self.server.endpoint)
        self.conns.append(c)
        return c


Refusal = collections.namedtuple("Refusal", "status stderr seconds")


def refused(*args, listen="127.0.0.1:0", preexec_fn=None, env=None, binary=None,
            timeout=START_TIMEOUT):
    """Runs kvstored --listen LISTEN ARGS (LISTEN None: ARGS alone), which
    must exit by itself within TIMEOUT; returns Refusal(status, stderr,
    seconds taken). A server that starts instead fails the calling test."""
    where = ["--listen", listen] if listen is not None else []
    argv = [server_binary(binary), *where, *args]
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=preexec_fn, env=_child_env(env))
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError("kvstored %s did not exit within %gs (stdout %r)"
                             % (args, timeout, out)) from None
    return Refusal(proc.returncode, err.decode(errors="replace"), time.monotonic() - start)
