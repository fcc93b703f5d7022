"""test_lmdb_ack - no answer leaves kvstored before the commit of its write.

The answers of a loop turn's writes may be sent only once the engine has
committed that turn (and synced it, for --sync always). A connection whose
socket was full is the dangerous case: its write callback can run in the
same loop turn as its read callback, after the Sets were read and before
the commit. Both tests build exactly that turn, deterministically:

1. a reader whose socket is full (it pipelined Gets of a large value and
   did not read) is frozen; it then empties its socket, so that the server's
   leftover answers fit, and sends Sets; the server resumes and sees both
   "readable" and "writable" in one turn;
2. at that turn's commit the server is stopped by gdb (a breakpoint on
   mdb_txn_commit): no Set answer may have reached the client by then. The
   server is then killed (-9) there and restarted: every Set the client saw
   acknowledged must be in the store;
3. the same turn on a full disk (a small tmpfs mounted in a private mount
   namespace): the commit fails with ENOSPC, and the client must not have
   been told OK for any of those Sets.

Every wait is bounded; the processes started here are killed by pid.
"""

import errno
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import kvstore
import kvstored
from kvstored import wait_for
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from live import OK, Server, get_request, set_request  # noqa: E402

VALUE = 64 * 1024           # the value the reader's Gets fetch
STEP = 1 << 20             # answers asked for at a time while backing up
MAX_STEPS = 64
SETS = 16
WAIT = 30.0                 # generous bound for every wait (gdb attaches slowly)
QUIET = 0.3                 # a drain ends after this long without an answer


def fill_disk(path):
    """Fills the file system of PATH with one file until it is full."""
    with open(path, "wb", buffering=0) as f:
        block = bytes(4096)
        try:
            while True:
                f.write(block)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise


class SlowReader:
    """One connection that pipelines Gets of the large value, reads none,
    and so leaves the server with answers it cannot send."""

    def __init__(self, server):
        self.server = server
        self.witness = server.connect()
        self.conn = server.connect()
        self.witness.set(b"big", b"v" * VALUE)
        self.gets = 0           # Gets sent so far
        self.received = []      # the answers read on self.conn, in order

    def ask(self, nbytes):
        n = math.ceil(nbytes / VALUE)
        self.conn.send([get_request(b"big")] * n)
        self.gets += n

    def output_pending(self):
        return self.witness.stats().output_buffer_bytes

    def drain(self):
        """Reads the answers that arrive until QUIET seconds pass without
        one, or the server closes the connection; keeps them in
        self.received."""
        while True:
            try:
                self.received.append(self.conn.receive(timeout=QUIET))
            except (kvstore.DeadlineExceeded, kvstore.Unavailable):
                return

    def settled_output(self):
        """The server's unsent output once it stops changing."""
        last = [None, 0]

        def steady():
            now = self.output_pending()
            last[1] = last[1] + 1 if now == last[0] else 0
            last[0] = now
            if last[1] < 3:
                time.sleep(0.05)
                return None
            return (now,)
        return wait_for("the server's output to settle", steady, WAIT)[0]

    def back_up(self):
        """Asks for answers a step at a time until the kernel's buffers are
        full and the server holds some unsent: then at most about one step
        is left in the server, which fits in the kernel's buffers (several
        MiB on loopback) once the reader has emptied its socket, with room
        for the Set answers behind it."""
        baseline = self.settled_output()
        for _ in range(MAX_STEPS):
            self.ask(STEP)
            if self.settled_output() > baseline:
                return
        raise AssertionError("%d MiB of unread answers and the server holds none"
                             % (MAX_STEPS * STEP >> 20))

    def send_sets(self, prefix, value):
        keys = [b"%s-%d" % (prefix, i) for i in range(SETS)]
        ids = self.conn.send([set_request(k, value) for k in keys])
        return dict(zip(ids, keys))

    def outcome(self, set_ids):
        """(all Get answers arrived, keys whose Set was answered OK)."""
        gets = sum(1 for a in self.received if a.id not in set_ids)
        acked = [set_ids[a.id] for a in self.received if a.id in set_ids and a.code == OK]
        return gets == self.gets, acked


class AckTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kvstore-ack-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.procs = []
        self.addCleanup(self.kill_all)

    def kill_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(WAIT)

    def flag(self, name):
        return os.path.join(self.tmp, name)

    def attach_gdb(self, pid):
        """gdb stops PID, breaks on mdb_txn_commit; files in self.tmp tell
        the steps: 'armed' (stopped), then after 'go' it runs until the
        commit, 'hit' (stopped at the commit)."""
        script = [
            "set pagination off", "set confirm off",
            "break mdb_txn_commit",
            "shell touch %s" % self.flag("armed"),
            "shell while [ ! -e %s ]; do sleep 0.01; done" % self.flag("go"),
            "continue",
            "shell touch %s" % self.flag("hit"),
            "shell while [ ! -e %s ]; do sleep 0.05; done" % self.flag("done"),
        ]
        args = ["gdb", "-q", "-nx", "-batch", "-p", str(pid)]
        for line in script:
            args += ["-ex", line]
        gdb = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        self.procs.append(gdb)
        wait_for("gdb to attach", lambda: os.path.exists(self.flag("armed")), WAIT)
        return gdb

    def kill_at_commit_round(self, sync):
        """One try; returns whether it was conclusive (the reader's socket
        was open for the Set answers when the commit came)."""
        for name in ("armed", "go", "hit", "done"):
            if os.path.exists(self.flag(name)):
                os.unlink(self.flag(name))
        data = os.path.join(self.tmp, "data-" + sync)
        shutil.rmtree(data, True)
        srv = Server("--engine", "lmdb", "--dir", data, "--sync", sync)
        gdb = None
        try:
            reader = SlowReader(srv)
            reader.back_up()
            gdb = self.attach_gdb(srv.pid)
            # The server is stopped: empty the socket, then send the Sets.
            reader.drain()
            set_ids = reader.send_sets(b"ack", b"w" * 100)
            open(self.flag("go"), "w").close()
            wait_for("the server to reach its commit",
                     lambda: os.path.exists(self.flag("hit")) or gdb.poll() is not None, WAIT)
            self.assertTrue(os.path.exists(self.flag("hit")), "gdb ended before the commit")
            reader.drain()
            conclusive, acked = reader.outcome(set_ids)
        finally:
            # SIGKILL at the breakpoint: the commit never happens. The
            # tracer must let go before the server can be reaped.
            os.kill(srv.pid, signal.SIGKILL)
            open(self.flag("done"), "w").close()
            if gdb is not None:
                gdb.wait(WAIT)
            srv.kill()
        self.assertEqual(acked, [], "%s: %d Set answers left kvstored before their commit"
                         % (sync, len(acked)))
        again = Server("--engine", "lmdb", "--dir", data)
        try:
            missing = [k for k in acked if again.connect().get(k) is None]
            self.assertEqual(missing, [], "acknowledged writes lost after kill -9")
        finally:
            again.stop()
        return conclusive

    def test_no_set_answer_before_its_commit_and_none_lost_to_kill_9(self):
        if not shutil.which("gdb"):
            self.fail("gdb is needed (scripts/install-deps installs it)")
        for sync in ("always", "none"):
            with self.subTest(sync=sync):
                for _ in range(3):
                    if self.kill_at_commit_round(sync):
                        break
                else:
                    self.fail("the reader's socket never had room at the commit")

    def test_full_disk_never_answers_ok_for_a_failed_commit(self):
        mnt = os.path.join(self.tmp, "small-disk")
        os.mkdir(mnt)
        wrapper = os.path.join(self.tmp, "kvstored-on-tmpfs")
        with open(wrapper, "w") as f:
            # A small tmpfs in a mount namespace of the server's own: it
            # disappears with the server and touches no other mount.
            f.write('#!/bin/sh\nexec unshare -m sh -c \'mount -t tmpfs -o size=4m kvtest "%s" '
                    '&& exec "%s" "$@"\' kvstored "$@"\n' % (mnt, kvstored.server_binary()))
        os.chmod(wrapper, 0o755)
        srv = Server("--engine", "lmdb", "--dir", os.path.join(mnt, "data"), binary=wrapper)
        try:
            reader = SlowReader(srv)
            reader.back_up()
            os.kill(srv.pid, signal.SIGSTOP)
            try:
                reader.drain()
                fill_disk(os.path.join("/proc/%d/root" % srv.pid, mnt.lstrip("/"), "filler"))
                # 16 x 4 KiB: small enough to be read in one turn, and more
                # than the free pages LMDB's file has, so the commit must
                # grow the file, which the full disk refuses.
                set_ids = reader.send_sets(b"full", b"f" * 4096)
            finally:
                os.kill(srv.pid, signal.SIGCONT)
            reader.drain()
            _, acked = reader.outcome(set_ids)
            # Some Sets may have come in an earlier turn that still fit;
            # each one answered OK must be there, and the rest failed.
            witness = srv.connect()
            lost = [k for k in acked if witness.get(k) is None]
            self.assertEqual(lost, [], "%d Sets answered OK though their commit failed"
                             % len(lost))
            self.assertLess(len(acked), SETS, "the disk never filled")
            # The server keeps serving what it had.
            self.assertEqual(witness.get(b"big"), b"v" * VALUE)
        finally:
            status = srv.stop()
        self.assertEqual(status, 0)
        self.assertIn("engine flush failed", srv.stderr_text())


if __name__ == "__main__":
    unittest.main(verbosity=2)
