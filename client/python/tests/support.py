"""support - starts and stops the kvstored that a test module talks to.

The server binary comes from $KVSTORED. It is started on port 0 and prints
"listening on 127.0.0.1:PORT" once ready; every wait here is bounded.
$KVSTORED_ENGINE (unset: memory) picks the engine; any engine but memory
gets a fresh temporary --dir, removed when the server is stopped or killed.
"""

import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def server_binary():
    path = os.environ.get("KVSTORED")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError("set KVSTORED to the kvstored binary (meson test does); got %r" % path)
    return path


def engine_args():
    """The flags of $KVSTORED_ENGINE and the temporary directory they name
    (None for memory)."""
    engine = os.environ.get("KVSTORED_ENGINE") or "memory"
    if engine == "memory":
        return [], None
    tmp = tempfile.mkdtemp(prefix="kvstored-test.")
    return ["--engine", engine, "--dir", tmp], tmp


class Server:
    """A kvstored child process on a free port of 127.0.0.1. ARGS come after
    the engine flags, so a test's own --engine or --dir wins."""

    def __init__(self, *args):
        engine, self.dir = engine_args()
        self.proc = subprocess.Popen([server_binary(), "--listen", "127.0.0.1:0", *engine, *args],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            line = self._read_line(START_TIMEOUT)
            match = re.search(rb"listening on (\S+):(\d+)", line)
            if not match:
                raise RuntimeError("kvstored printed %r, not 'listening on HOST:PORT'" % line)
        except BaseException:
            self.kill()
            raise
        self.port = int(match.group(2))
        self.endpoint = "127.0.0.1:%d" % self.port

    def _read_line(self, timeout):
        deadline = time.monotonic() + timeout
        line = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise RuntimeError("kvstored did not say 'listening on' within %gs" % timeout)
                byte = os.read(self.proc.stdout.fileno(), 1)
                if not byte:
                    raise RuntimeError("kvstored exited (%s) before listening" % self.proc.wait(1))
                line += byte
        return line

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self):
        """SIGTERM, then waits; returns the exit status (0 when all went well)."""
        self.signal(signal.SIGTERM)
        try:
            return self._reap(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError("kvstored did not exit within %gs of SIGTERM" % STOP_TIMEOUT)

    def kill(self):
        """SIGKILL (works on a stopped process too) and reaps it."""
        self.signal(signal.SIGKILL)
        return self._reap(STOP_TIMEOUT)

    def _reap(self, timeout):
        status = self.proc.wait(timeout)
        self.proc.stdout.close()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        return status
