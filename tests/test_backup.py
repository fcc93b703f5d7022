"""test_backup - backups end to end, on the engine $KVSTORED_ENGINE names
(memory when unset), against real servers: kvctl snapshot save of
$KV_BACKUP_KEYS keys (1,000,000 in the plain build, fewer under ASan; every
byte value in keys and values, a TTL on every tenth key) while a writer
runs, the file holding exactly the state at its revision (writes at or
before it present, those after absent); kvstored --restore of it into a
new server, compared key by key (value, revisions, deadline within a
tolerance) through a snapshot of the restored server and Gets; a flipped
byte and a cut file refused with a clear message and nothing loaded; a
non-empty store refused without --force; kvctl dump / load between the
memory and lmdb engines; a malformed dump refused with its line number
before anything is written; two snapshots open at once, a third refused,
and a snapshot freed when its connection closes mid-read or when it is
read to its end.

The backup file is read here by this file's own parser (PROTOCOL.md,
"Backups"), not the server's. Debian's /usr/bin/python3; servers start
through tests/support/kvstored.py; $KVSTORED and $KVCTL name the binaries
(meson test sets them). Every wait is bounded.
"""

import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import kvstore
from kvstore import pb
from kvstored import Server, refused

KVCTL = os.environ.get("KVCTL")
ENGINE = os.environ.get("KVSTORED_ENGINE") or "memory"
KEYS = int(os.environ.get("KV_BACKUP_KEYS") or 1000000)
TTL_MS = 3600 * 1000
# A deadline read back after a restore: the memory engine keeps deadlines on
# the monotonic clock, so each conversion to and from unix ms may move it by
# the clocks' reading jitter; generous so a loaded machine does not fail.
DEADLINE_SLACK_MS = 2000
RUN_TIMEOUT = 600


def key_of(i):
    """Key I: every byte value appears in the keys (the last byte)."""
    return b"k" + i.to_bytes(4, "big") + bytes([i % 256])


def value_of(i):
    """Value I: 0 to 40 bytes, every byte value among them."""
    return bytes((i * 7 + j) % 256 for j in range(i % 41))


def escape(b):
    """A field of the dump format, written independently of kvctl's."""
    if not b:
        return b'""'
    out = bytearray()
    for c in b:
        if 0x21 <= c <= 0x7e and c not in b'\\"#':
            out.append(c)
        else:
            out += b"\\x%02x" % c
    return bytes(out)


def write_dump(path, n):
    """The dump of keys 0..N-1, a TTL on every tenth."""
    with open(path, "wb") as f:
        f.write(b"# kvstore dump 1\n")
        lines = []
        for i in range(n):
            line = escape(key_of(i)) + b" " + escape(value_of(i))
            if i % 10 == 0:
                line += b" %d" % TTL_MS
            lines.append(line)
            if len(lines) == 10000:
                f.write(b"\n".join(lines) + b"\n")
                lines = []
        if lines:
            f.write(b"\n".join(lines) + b"\n")


def varint(data, at):
    shift = value = 0
    while True:
        b = data[at]
        at += 1
        value |= (b & 0x7f) << shift
        if b < 0x80:
            return value, at
        shift += 7


def read_backup(path):
    """(revision, {key: (value, create, mod, version, deadline_ms)}) of the
    backup at PATH, checked as PROTOCOL.md says (not by the server's code)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"KVBACKUP", data[:8]
    version, flags, revision, _created = struct.unpack_from("<IIQQ", data, 8)
    assert (version, flags) == (1, 0)
    assert data[-24:-16] == b"KVBKEND1"
    count, = struct.unpack_from("<Q", data, len(data) - 16)
    records, at, end = {}, 32, len(data) - 24
    last = None
    while at < end:
        klen, at = varint(data, at)
        key = data[at:at + klen]
        at += klen
        vlen, at = varint(data, at)
        value = data[at:at + vlen]
        at += vlen
        create, at = varint(data, at)
        mod, at = varint(data, at)
        ver, at = varint(data, at)
        deadline, at = varint(data, at)
        assert last is None or key > last, "keys out of order"
        last = key
        records[key] = (value, create, mod, ver, deadline)
    assert at == end and len(records) == count, (at, end, len(records), count)
    return revision, records


def kvctl(endpoint, *args, stdin=None):
    """kvctl -e ENDPOINT ARGS run to its end: (exit status, stdout, stderr)."""
    p = subprocess.run([KVCTL, "-e", endpoint, "--timeout", "60", *args], input=stdin,
                       capture_output=True, timeout=RUN_TIMEOUT)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def unix_ms():
    return int(time.time() * 1000)


class Writer(threading.Thread):
    """Writes new keys and overwrites loaded ones, one pipelined batch at a
    time, recording each write's key, value and revision, until stopped."""

    def __init__(self, endpoint, n):
        super().__init__(daemon=True)
        self.endpoint, self.n = endpoint, n
        self.writes = []        # (key, value, revision)
        self.stopping = threading.Event()
        self.error = None

    def run(self):
        try:
            with kvstore.Client(self.endpoint, timeout=30) as c:
                round_ = 0
                while not self.stopping.is_set():
                    batch = []
                    for j in range(50):
                        if j % 2:
                            key = b"w/%d/%d" % (round_, j)
                        else:
                            key = key_of((round_ * 50 + j) * 7919 % self.n)
                        batch.append((key, b"written %d %d \x00\xff" % (round_, j)))
                    with c.pipeline() as p:
                        replies = [p.Set(pb.SetRequest(key=k, value=v)) for k, v in batch]
                    for (k, v), r in zip(batch, replies):
                        self.writes.append((k, v, r.result().revision))
                    round_ += 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def stop(self):
        self.stopping.set()
        self.join(RUN_TIMEOUT)
        if self.error:
            raise self.error


class BackupTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kvstored-backup.")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def serve(self, *args, engine=ENGINE, dir=None):
        """A server on ENGINE (a fresh --dir for lmdb, or DIR)."""
        flags = ["--engine", engine]
        if engine != "memory":
            if dir is None:
                dir = tempfile.mkdtemp(dir=self.tmp)
            flags += ["--dir", dir]
        s = Server(*flags, *args, engine_from_env=False, capture_stderr=True)
        self.addCleanup(s.kill)
        s.data_dir = dir
        return s

    def load(self, server, n):
        path = self.path("keys-%d.txt" % n)
        if not os.path.exists(path):
            write_dump(path, n)
        code, out, err = kvctl(server.endpoint, "load", path)
        self.assertEqual(code, 0, err)
        self.assertEqual(out, "loaded %d keys\n" % n)

    def save(self, server, name):
        path = self.path(name)
        code, out, err = kvctl(server.endpoint, "snapshot", "save", path)
        self.assertEqual(code, 0, err)
        self.assertFalse(os.path.exists(path + ".tmp"))
        return path, out

    def assertSameKeys(self, a, b):
        """Records A and B alike: values and revisions exact, deadlines
        within DEADLINE_SLACK_MS."""
        self.assertEqual(len(a), len(b))
        for key, (value, create, mod, ver, deadline) in a.items():
            other = b.get(key)
            self.assertIsNotNone(other, key)
            self.assertEqual((value, create, mod, ver), other[:4], key)
            if deadline:
                self.assertLessEqual(abs(deadline - other[4]), DEADLINE_SLACK_MS, key)
            else:
                self.assertEqual(other[4], 0, key)

    def test_round_trip_with_writes_during_the_save(self):
        a = self.serve()
        self.load(a, KEYS)
        loaded_at = unix_ms()
        writer = Writer(a.endpoint, KEYS)
        writer.start()
        try:
            kvstored_wait = time.monotonic() + 30
            while len(writer.writes) < 500 and time.monotonic() < kvstored_wait:
                time.sleep(0.01)
            path, out = self.save(a, "a.bak")
            seen = len(writer.writes)
            while len(writer.writes) < seen + 500 and time.monotonic() < kvstored_wait:
                time.sleep(0.01)
        finally:
            writer.stop()
        revision, records = read_backup(path)
        self.assertIn("revision %d, %d keys" % (revision, len(records)), out)

        # The state at REVISION: the loaded keys (key i written at revision
        # i + 1 by the one pipelined connection of kvctl load), then the
        # writer's writes up to REVISION and none after.
        before = [w for w in writer.writes if w[2] <= revision]
        after = [w for w in writer.writes if w[2] > revision]
        self.assertTrue(before and after, "the save did not overlap the writes")
        expect = {}
        for i in range(KEYS):
            expect[key_of(i)] = (value_of(i), i + 1, i + 1, 1)
        for key, value, rev in sorted(before, key=lambda w: w[2]):
            old = expect.get(key)
            expect[key] = (value, old[1] if old else rev, rev, old[3] + 1 if old else 1)
        self.assertEqual(set(records), set(expect))
        for key, want in expect.items():
            self.assertEqual(records[key][:4], want, key)
        for i in range(0, KEYS, 10):
            deadline = records[key_of(i)][4]
            overwritten = records[key_of(i)][2] != i + 1
            if overwritten:
                self.assertEqual(deadline, 0)       # a Set without TTL drops it
            else:
                self.assertLessEqual(deadline, loaded_at + TTL_MS + DEADLINE_SLACK_MS)
                self.assertGreater(deadline, loaded_at + TTL_MS - 120000)
        bytes_seen = set()
        for key, rec in records.items():
            bytes_seen.update(key)
            bytes_seen.update(rec[0])
        self.assertEqual(len(bytes_seen), 256)

        # Restored into a new server: the same keys, read back by its own
        # snapshot and by Gets.
        b = self.serve("--restore", path)
        b.wait_for_stderr(r"restored .*: revision %d, %d keys" % (revision, len(records)))
        path_b, _ = self.save(b, "b.bak")
        revision_b, records_b = read_backup(path_b)
        self.assertEqual(revision_b, revision)
        self.assertSameKeys(records, records_b)
        with kvstore.Client(b.endpoint) as c:
            for key in random.Random(16).sample(sorted(records), 2000):
                value, create, mod, ver, deadline = records[key]
                got = c.Get(pb.GetRequest(key=key))
                self.assertEqual((got.value, got.create_revision, got.mod_revision, got.version),
                                 (value, create, mod, ver))
                if deadline:
                    self.assertLessEqual(abs(unix_ms() + got.ttl_ms - deadline),
                                         DEADLINE_SLACK_MS + 1000)
                else:
                    self.assertEqual(got.ttl_ms, 0)
            self.assertEqual(c.Stats(pb.StatsRequest()).revision, revision)

    def test_damaged_files_are_refused_with_nothing_loaded(self):
        a = self.serve()
        self.load(a, 1000)
        path, _ = self.save(a, "good.bak")
        with open(path, "rb") as f:
            good = f.read()
        flipped = bytearray(good)
        flipped[len(good) // 2] ^= 0x10
        cases = {"flipped.bak": (bytes(flipped), "corrupt: the checksum"),
                 "cut.bak": (good[:len(good) * 2 // 3], "truncated"),
                 "empty.bak": (b"", "truncated"),
                 "other.bak": (b"x" * 100, "not a kvstore backup")}
        for name, (data, message) in cases.items():
            with self.subTest(name):
                with open(self.path(name), "wb") as f:
                    f.write(data)
                d = tempfile.mkdtemp(dir=self.tmp)
                flags = ["--engine", ENGINE] + (["--dir", d] if ENGINE != "memory" else [])
                r = refused(*flags, "--restore", self.path(name))
                self.assertEqual(r.status, 1, r.stderr)
                self.assertIn(message, r.stderr)
                self.assertIn("nothing loaded", r.stderr)
                if ENGINE != "memory":
                    s = self.serve(dir=d)
                    with kvstore.Client(s.endpoint) as c:
                        st = c.Stats(pb.StatsRequest())
                        self.assertEqual((st.keys, st.revision), (0, 0))
                    s.stop()
        if ENGINE != "memory":
            # Into a store that has data: refused, then replaced with --force.
            s = self.serve()
            with kvstore.Client(s.endpoint) as c:
                c.set(b"mine", b"1")
            s.stop()
            r = refused("--engine", ENGINE, "--dir", s.data_dir, "--restore", path)
            self.assertEqual(r.status, 1, r.stderr)
            self.assertIn("not empty", r.stderr)
            s = self.serve("--restore", path, "--force", dir=s.data_dir)
            with kvstore.Client(s.endpoint) as c:
                self.assertEqual(c.Stats(pb.StatsRequest()).keys, 1000)

    def test_dump_and_load_between_engines(self):
        n = min(KEYS, 100000)
        a = self.serve()
        self.load(a, n)
        code, text_a, err = kvctl(a.endpoint, "dump")
        self.assertEqual(code, 0, err)
        other = "lmdb" if ENGINE == "memory" else "memory"
        b = self.serve(engine=other)
        code, out, err = kvctl(b.endpoint, "load", "-", stdin=text_a.encode())
        self.assertEqual(code, 0, err)
        dump_b = self.path("b.txt")
        code, _, err = kvctl(b.endpoint, "dump", dump_b)
        self.assertEqual(code, 0, err)
        with open(dump_b) as f:
            text_b = f.read()
        lines_a, lines_b = text_a.splitlines(), text_b.splitlines()
        self.assertEqual(lines_a[0], "# kvstore dump 1 revision=%d keys=%d" % (n, n))
        self.assertEqual(lines_b[0], lines_a[0])
        self.assertEqual(len(lines_a), len(lines_b))
        for la, lb in zip(lines_a[1:], lines_b[1:]):
            fa, fb = la.split(" "), lb.split(" ")
            self.assertEqual(fa[:2], fb[:2])
            self.assertEqual(len(fa), len(fb))
            if len(fa) == 3:
                self.assertLessEqual(abs(int(fa[2]) - int(fb[2])), 60000)
        # Every byte went through the text and came back.
        with open(self.path("keys-%d.txt" % n), "rb") as f:
            ours = f.read().splitlines()
        self.assertEqual([l.split(b" ")[:2] for l in ours[1:]],
                         [l.encode().split(b" ")[:2] for l in lines_a[1:]])

    def test_a_malformed_dump_is_refused_before_any_write(self):
        s = self.serve()
        bad = [(b"# kvstore dump 1\nk1 v1\nk2 v\\x4\nk3 v3\n", ":3: VALUE"),
               (b"# kvstore dump 1\nk1 v1\nk2 v2 -5\n", ":3: TTL_MS"),
               (b"# kvstore dump 1\nk1  v1\n", ":2: "),
               (b"# kvstore dump 1\nk1\n", ":2: no VALUE"),
               (b"# kvstore dump 2\nk1 v1\n", ":1: not a kvstore dump"),
               (b"k1 v1\n", ":1: not a kvstore dump"),
               (b"# kvstore dump 1\nk\x01 v\n", ":2: KEY: byte 0x01")]
        for data, message in bad:
            with self.subTest(data=data):
                code, out, err = kvctl(s.endpoint, "load", stdin=data)
                self.assertEqual(code, 2, err)
                self.assertIn("standard input" + message, err)
                self.assertIn("nothing written", err)
        with kvstore.Client(s.endpoint) as c:
            st = c.Stats(pb.StatsRequest())
            self.assertEqual((st.keys, st.revision), (0, 0))

    def snapshot_once_freed(self, client, deadline):
        """A Snapshot on CLIENT, once the server has freed the copies of
        connections that closed (it learns of a close on its own time);
        fails at DEADLINE."""
        while True:
            try:
                return client.Snapshot(pb.SnapshotRequest())
            except kvstore.ResourceExhausted:
                self.assertLess(time.monotonic(), deadline, "a closed connection's copy stayed")
                time.sleep(0.02)

    def test_two_snapshots_at_once_a_third_refused_freed_on_close(self):
        s = self.serve()
        self.load(s, 1000)
        c1, c2, c3 = (kvstore.Client(s.endpoint) for _ in range(3))
        self.addCleanup(c3.close)
        self.addCleanup(c2.close)
        a1 = c1.Snapshot(pb.SnapshotRequest())
        a2 = c2.Snapshot(pb.SnapshotRequest())
        self.assertEqual((a1.revision, a1.keys), (1000, 1000))
        self.assertNotEqual(a1.snapshot_id, a2.snapshot_id)
        with self.assertRaises(kvstore.ResourceExhausted) as e:
            c3.Snapshot(pb.SnapshotRequest())
        self.assertIn("2 snapshots are open", str(e.exception))
        # A snapshot is its connection's: another cannot read it.
        with self.assertRaises(kvstore.KeyNotFound):
            c3.SnapshotRead(pb.SnapshotReadRequest(snapshot_id=a1.snapshot_id))
        # The first connection closes mid-read: its copy is freed.
        part = c1.SnapshotRead(pb.SnapshotReadRequest(snapshot_id=a1.snapshot_id, max_bytes=100))
        self.assertEqual((len(part.data), part.done), (100, False))
        c1.close()
        a3 = self.snapshot_once_freed(c3, time.monotonic() + 10)
        # Read to its end, a copy is freed too.
        offset, data = 0, b""
        while True:
            r = c2.SnapshotRead(pb.SnapshotReadRequest(snapshot_id=a2.snapshot_id, offset=offset))
            data += r.data
            offset += len(r.data)
            if r.done:
                break
        self.assertEqual(data[:8], b"KVBACKUP")
        with self.assertRaises(kvstore.KeyNotFound):
            c2.SnapshotRead(pb.SnapshotReadRequest(snapshot_id=a2.snapshot_id))
        c2.Snapshot(pb.SnapshotRequest())
        self.assertTrue(a3.snapshot_id)

    def test_a_connection_closed_while_its_copy_is_taken(self):
        s = self.serve()
        self.load(s, min(KEYS, 100000))
        # Each asks and hangs up at once: the copy in progress is stopped
        # (the child killed, the thread stopped and joined) and freed.
        for _ in range(6):
            raw = kvstore.RawConnection(s.endpoint)
            raw.send([("Snapshot", pb.SnapshotRequest())])
            raw.close()
        deadline = time.monotonic() + 10
        for _ in range(2):
            c = kvstore.Client(s.endpoint)
            self.addCleanup(c.close)
            self.assertEqual(self.snapshot_once_freed(c, deadline).keys, min(KEYS, 100000))
        self.assertEqual(s.stop(), 0)

    def test_a_read_fits_a_small_max_frame(self):
        """SnapshotRead's answer stays within --max-frame-bytes; below 64
        its bound wrapped and the whole copy came in one answer. (Raw
        frames: the client's own are too long for 48 bytes.)"""
        import wire
        for max_frame, most in ((48, 64), (100, 64), (200, 136)):
            s = self.serve("--max-frame-bytes", str(max_frame))
            c = wire.Connection(s.endpoint, timeout=10)
            self.addCleanup(c.close)
            for i in range(100):
                c.send("Set", pb.SetRequest(key=b"%d" % i, value=b"v"))
                self.assertEqual(c.recv().code, 0)
            c.send("Snapshot", pb.SnapshotRequest())
            a = pb.SnapshotResponse.FromString(c.recv().payload)
            c.send("SnapshotRead", pb.SnapshotReadRequest(snapshot_id=a.snapshot_id))
            answer = c.recv()
            self.assertEqual(answer.code, 0, answer.message)
            r = pb.SnapshotReadResponse.FromString(answer.payload)
            self.assertEqual((len(r.data), r.done), (most, False), max_frame)

    @staticmethod
    def fds_mid_walk(child):
        """The descriptors of CHILD (stopped), once it has written its
        first chunk of keys past the header to the copy (it runs a little
        at a time until then), the child left stopped; None if it ends
        first."""
        import signal
        for _ in range(20000):
            try:
                fds = {fd: os.readlink("/proc/%d/fd/%s" % (child, fd))
                       for fd in os.listdir("/proc/%d/fd" % child)}
                copy = [fd for fd, what in fds.items() if "kvstore-snapshot" in what]
                if any(os.stat("/proc/%d/fd/%s" % (child, fd)).st_size > 32 for fd in copy):
                    return list(fds.values())
                os.kill(child, signal.SIGCONT)
                time.sleep(0.0002)
                os.kill(child, signal.SIGSTOP)
                time.sleep(0.0002)
            except (FileNotFoundError, ProcessLookupError):
                return None
        return None

    def test_a_copy_taken_by_a_child_holds_no_sockets(self):
        """The memory engine's copy is walked by a forked child: it must
        not keep the server's sockets, or a connection the server closes
        meanwhile (ClientKill here) would reach its client only when the
        walk ends. The child is caught and stopped (SIGSTOP) mid-walk, so
        the check does not depend on how long the walk takes."""
        if ENGINE != "memory":
            self.skipTest("only the memory engine forks a child for a copy")
        import signal
        import wire
        s = self.serve()
        self.load(s, min(KEYS, 100000))
        victim = wire.Connection(s.endpoint, timeout=10)
        self.addCleanup(victim.close)
        victim.send("Ping", pb.PingRequest())
        victim.recv()
        killer = kvstore.Client(s.endpoint)
        self.addCleanup(killer.close)
        victim_id = [c.id for c in killer.ClientList(pb.ClientListRequest()).clients
                     if not c.current][0]
        children = "/proc/%d/task/%d/children" % (s.pid, s.pid)
        for _ in range(50):
            time.sleep(0.1)     # the last try's copy freed: its connection closed
            taker = wire.Connection(s.endpoint, timeout=30)
            self.addCleanup(taker.close)
            taker.send("Snapshot", pb.SnapshotRequest())
            child, deadline = None, time.monotonic() + 2
            while not child and time.monotonic() < deadline:
                with open(children) as f:
                    pids = f.read().split()
                if pids:
                    child = int(pids[0])
                    try:
                        os.kill(child, signal.SIGSTOP)
                    except ProcessLookupError:
                        child = None
                        break
            fds = self.fds_mid_walk(child) if child else None
            if fds is None:         # it ended before it was caught mid-walk: again
                taker.close()
                continue
            try:
                self.assertEqual([fd for fd in fds if fd.startswith("socket:")], [], fds)
                out = killer.ClientKill(pb.ClientKillRequest(id=victim_id))
                self.assertEqual(out.killed, 1)
                with self.assertRaises(wire.WireError):
                    victim.recv(5)      # EOF while the child is still stopped
            finally:
                try:
                    os.kill(child, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            self.assertEqual(taker.recv().code, 0)
            return
        self.skipTest("no copy's child was caught mid-walk in 50 tries")


if __name__ == "__main__":
    if not KVCTL:
        sys.exit("set KVCTL to the kvctl binary (meson test does)")
    unittest.main(verbosity=2)
