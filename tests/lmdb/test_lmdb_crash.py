"""test_lmdb_crash - kill -9 loses no acknowledged write, and no revision.

Four connections write 10,000 keys, 32 pipelined Sets at a time, then
overwrite them, recording every answer: the last acknowledged value of
each key and the last value sent for it. At a random moment the server gets
SIGKILL. Restarted on the same directory it must hold, for every
acknowledged key, its last acknowledged value or a later one that was sent;
keys never acknowledged are absent or hold a value that was sent. Every
value encodes its key and sequence number, so a corrupt one cannot pass.
Revisions too: a key holding its last acknowledged value has the
mod_revision that Set was answered with (and the create_revision of its
first Set), its version is its sequence number, no two keys share a
mod_revision, and the store's revision is at least every one acknowledged
and goes on from there.

--sync always checks durability (an answer follows the sync); --sync none
checks the process-crash promise (every committed transaction survives,
since the commit reached the OS before the answer). Power loss is not
simulated here.
"""

import os
import random
import shutil
import sys
import tempfile
import threading
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from live import OK, Server, set_request  # noqa: E402
from kvstore import pb  # noqa: E402

WRITERS = 4
KEYS = 10000
PIPELINE = 32
PASSES = 3          # each key written up to 3 times: seq 1, 2, 3
RUN_TIMEOUT = 60.0  # the writers give up after this long


def value_of(key, seq):
    """The value written to KEY at sequence SEQ: self-describing, of a
    length that varies from 10 to ~600 bytes, with a checksum."""
    body = b"%s:%d:" % (key, seq)
    filler = bytes((zlib.crc32(body) + i) & 0xFF for i in range(zlib.crc32(body) % 600))
    return body + filler + b":%08x" % zlib.crc32(body + filler)


def seq_of(key, value):
    """The sequence number VALUE was written with, or None if VALUE is not
    exactly what value_of() makes for KEY."""
    try:
        seq = int(value.split(b":")[1])
    except (IndexError, ValueError):
        return None
    return seq if value.startswith(key + b":") and value == value_of(key, seq) else None


class Writer(threading.Thread):
    """Writes its share of the keys over one connection until the server
    dies, recording acknowledged and sent sequence numbers."""

    def __init__(self, server, keys):
        super().__init__(daemon=True)
        self.conn = server.connect()
        self.keys = keys
        self.acked = {}     # key -> last acknowledged seq
        self.revisions = {}  # (key, seq) -> the revision its Set was answered with
        self.sent = {}      # key -> last seq sent
        self.count = 0      # acknowledged writes
        self.error = None

    def run(self):
        deadline = time.monotonic() + RUN_TIMEOUT
        try:
            for seq in range(1, PASSES + 1):
                for i in range(0, len(self.keys), PIPELINE):
                    batch = self.keys[i:i + PIPELINE]
                    for k in batch:
                        self.sent[k] = seq
                    self.conn.send([set_request(k, value_of(k, seq)) for k in batch])
                    for k in batch:
                        answer = self.conn.receive()
                        if answer.code != OK:
                            self.error = "Set %r: code %d %s" % (k, answer.code, answer.message)
                            return
                        self.acked[k] = seq
                        self.revisions[k, seq] = pb.SetResponse.FromString(answer.payload).revision
                        self.count += 1
                    if time.monotonic() > deadline:
                        self.error = "not killed within %g s" % RUN_TIMEOUT
                        return
        except OSError:
            pass            # the server died: expected
        finally:
            self.conn.close()


class TestKill9(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kvstored-crash.")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def crash_and_check(self, sync):
        keys = [b"key-%05d" % i for i in range(KEYS)]
        server = Server("--engine", "lmdb", "--dir", self.dir, "--sync", sync)
        writers = [Writer(server, keys[w::WRITERS]) for w in range(WRITERS)]
        # Somewhere in the first pass (some keys never acknowledged) or in a
        # later one (overwrites in flight).
        target = random.randrange(KEYS // 5, KEYS * PASSES - KEYS // 5)
        for w in writers:
            w.start()
        deadline = time.monotonic() + RUN_TIMEOUT
        while sum(w.count for w in writers) < target and time.monotonic() < deadline \
                and any(w.is_alive() for w in writers):
            time.sleep(0.0005)
        status = server.kill()
        for w in writers:
            w.join(RUN_TIMEOUT)
            self.assertFalse(w.is_alive())
            self.assertIsNone(w.error)
        self.assertEqual(status, -9, "the server had exited before the kill: %r"
                         % server.stderr_text())
        acked, sent, acked_revisions = {}, {}, {}
        for w in writers:
            acked.update(w.acked)
            sent.update(w.sent)
            acked_revisions.update(w.revisions)
        self.assertGreater(len(acked), 0)
        in_flight = [k for k in sent if acked.get(k) != sent[k]]
        self.assertGreater(len(in_flight), 0, "killed between writes, not mid-stream")

        server = Server("--engine", "lmdb", "--dir", self.dir, "--sync", sync)
        conn = server.connect()
        entries = conn.get_entries(keys)
        stored = {k: e.value if e is not None else None for k, e in entries.items()}
        stats = conn.stats()
        self.assertEqual(stats.keys, sum(v is not None for v in stored.values()))
        next_set = conn.call(*set_request(b"after", b"restart"))
        self.assertEqual(next_set.code, OK, next_set.message)
        self.assertEqual(pb.SetResponse.FromString(next_set.payload).revision, stats.revision + 1)
        conn.close()
        self.assertEqual(server.stop(), 0, server.stderr_text())

        lost, bad = [], []
        for k in keys:
            v = stored[k]
            if v is None:
                if k in acked:
                    lost.append(k)
                continue
            seq = seq_of(k, v)
            if seq is None or seq > sent.get(k, 0):
                bad.append((k, v[:40]))
            elif seq < acked.get(k, 0):
                lost.append(k)
        self.assertEqual(bad, [], "corrupt or never-sent values")
        self.assertEqual(lost, [], "acknowledged writes lost or rolled back (%d of %d acked keys)"
                         % (len(lost), len(acked)))
        self.check_revisions(entries, acked, acked_revisions, stats.revision)
        print("--sync %s: killed after %d acknowledged writes (%d keys), %d in flight; "
              "all kept, %d keys stored" % (sync, sum(w.count for w in writers), len(acked),
                                            len(in_flight), sum(v is not None for v in stored.values())),
              file=sys.stderr)

    def check_revisions(self, entries, acked, acked_revisions, revision):
        """ENTRIES ({key: GetResponse or None}) after the restart against
        the revisions the acknowledged Sets were answered with."""
        self.assertGreaterEqual(revision, max(acked_revisions.values()),
                                "the store's revision went back")
        wrong, mods = [], set()
        for k, e in entries.items():
            if e is None:
                continue
            seq = seq_of(k, e.value)
            want = {"version": seq}
            if acked.get(k) == seq:
                want["mod_revision"] = acked_revisions[k, seq]
            if (k, 1) in acked_revisions:
                want["create_revision"] = acked_revisions[k, 1]
            got = {name: getattr(e, name) for name in want}
            if got != want or not e.create_revision <= e.mod_revision <= revision \
                    or e.revision != revision:
                wrong.append((k, got, want, e.create_revision, e.mod_revision, e.revision))
            mods.add(e.mod_revision)
        self.assertEqual(wrong[:5], [], "%d keys with wrong revisions (key, got, want, create, "
                         "mod, revision)" % len(wrong))
        self.assertEqual(len(mods), sum(e is not None for e in entries.values()),
                         "two keys with one mod_revision")

    def test_sync_always_keeps_every_acknowledged_write(self):
        self.crash_and_check("always")

    def test_sync_none_survives_a_process_crash(self):
        self.crash_and_check("none")


if __name__ == "__main__":
    if not os.access(os.environ.get("KVSTORED", ""), os.X_OK):
        raise SystemExit("set KVSTORED to the kvstored binary (meson test does)")
    unittest.main(verbosity=2)
