"""faults - the Jepsen-style fault test of a kvstore cluster (issue 15):
client workers, a nemesis, and the checks at the end. tests/test_faults.py
runs it for about a minute; scripts/faults for as long as asked.

It owns the workload and the verdict; it starts nodes through cluster.py,
cuts the network through netfault.py (when given a Partitioner) and judges
the history with linearize.py.

Workers (threads) run random operations on a small key space: Get
(linearizable), Set, a conditional Set (if_mod_revision from a revision
the worker saw, or 0: create-only), a Txn that is a compare-and-set of one
key (compare MOD_REVISION, then Set; else Get), and Clear (plain or
conditional). Each operation is recorded when sent and when answered, and
is ONE attempt with a timeout, its outcome:
  ok / failed_precondition   the answer;
  fail     certainly not applied: the connection was refused before
           anything was sent, or a node said UNAVAILABLE because it is not
           the leader (a node that is not the leader never applies);
  info     may have happened: no answer in time, the connection lost
           after sending, UNAVAILABLE for another reason, any other error.
The next operation goes to the leader the last answer named. Values are
unique per write; writes carry the envelope's client_id and seq. A key
takes at most ops_per_key operations, then its slot moves on to a new key,
so that every key's history stays small enough for the checker.

The nemesis, from random.Random(seed): a quiet spell, then one fault held
for a bounded time, then healed: kill -9 and restart (a random node, the
leader, or every node at once), SIGSTOP/SIGCONT (a random node or the
leader), and with a Partitioner: one node cut off (random or the leader),
the nodes split into a majority and a minority, or a bridge (two halves
that cannot reach each other, one node reaching both).

At the end every fault is healed, the cluster must elect a leader, a
linearizable Get of every key used joins the history, every node must
catch up (the same applied index and revision), and every node's
serializable read of every key must agree (value and mod_revision) with
the others and with the final read. The history must be linearizable per
key (so no acknowledged write lost, no stale read), and no node may have
exited by itself.
"""

import dataclasses
import os
import random
import re
import select
import socket
import sys
import threading
import time
import traceback

from kvstore import pb
from linearize import Recorder, check, dump_history, LINEARIZABLE
from wire import Connection, WireError
from cluster import Cluster, LEADER_TIMEOUT

OP_TIMEOUT = 2.0            # one attempt; longer than an election
CONNECT_TIMEOUT = 1.0
OPS_PER_KEY = 150
MAX_DELAY = 0.02            # a worker waits up to this long between ops
QUIET = (0.5, 2.0)          # seconds between faults
HOLD = (1.0, 4.0)           # how long a fault lasts
# Snapshots every few hundred entries rather than kvstored's 16384, so that
# a minute of faults restarts nodes from snapshots too, not only the log.
SNAPSHOT_THRESHOLD = 200
FINAL_READ_ATTEMPTS = 20
MAX_CRASHES = 3             # a node that exits or fails to start this often stays down
CRASH_LOG_LINES = 12
PROGRESS_EVERY = 10.0

# An UNAVAILABLE that says the node is not (or no longer) the leader before
# anything else: it proposed nothing. Any other UNAVAILABLE (a leader that
# lost its term while the write was in flight: "... may still be applied")
# may still be committed by the next leader: info.
NOT_LEADER = re.compile(r"^this node is (not|no longer) the leader(?!.*may still)")
# FAILED_PRECONDITION's text names the key's mod_revision (PROTOCOL.md).
MOD_REVISION_IS = re.compile(r"mod_revision is (\d+)|does not exist \(mod_revision (\d+)\)")

FAULT_KINDS = ("kill", "kill-leader", "kill-all", "pause", "pause-leader",
               "isolate", "isolate-leader", "split", "bridge")
PARTITION_KINDS = ("isolate", "isolate-leader", "split", "bridge")
WEIGHTS = {"kill": 3, "kill-leader": 3, "kill-all": 1, "pause": 2, "pause-leader": 2,
           "isolate": 2, "isolate-leader": 3, "split": 2, "bridge": 2}


class KeySpace:
    """SLOTS keys in use at a time; a slot's key is replaced by a new one
    after OPS_PER_KEY operations."""

    def __init__(self, slots, ops_per_key):
        self.ops_per_key = ops_per_key
        self.gen = [0] * slots
        self.count = [0] * slots
        self.used = set()
        self._lock = threading.Lock()

    def pick(self, rng):
        slot = rng.randrange(len(self.gen))
        with self._lock:
            if self.count[slot] >= self.ops_per_key:
                self.gen[slot] += 1
                self.count[slot] = 0
            self.count[slot] += 1
            key = "k%d.%d" % (slot, self.gen[slot])
            self.used.add(key)
            return key

    def keys(self):
        with self._lock:
            return sorted(self.used)


class Link:
    """A worker's connection to one endpoint at a time. call() is one
    attempt; it returns ("answer", RpcResponse), ("not-sent", why) or
    ("unknown", why)."""

    def __init__(self):
        self.conn = None

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def _stale(self):
        # A connection the server closed (a node killed and restarted) is
        # readable with nothing to read: open another before sending.
        try:
            r, _, _ = select.select([self.conn.sock], [], [], 0)
            if not r:
                return False
            return self.conn.sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def call(self, endpoint, method, request, client_id=b"", seq=0, timeout=OP_TIMEOUT):
        if self.conn and (self.conn.endpoint != endpoint or self._stale()):
            self.close()
        if not self.conn:
            try:
                self.conn = Connection(endpoint, timeout=CONNECT_TIMEOUT)
            except OSError as e:
                return "not-sent", "connect: %s" % e
        try:
            rid = self.conn.send(method, request, client_id=client_id, seq=seq)
        except OSError as e:
            self.close()
            return "unknown", "send: %s" % e
        deadline = time.monotonic() + timeout
        try:
            while True:
                resp = self.conn.recv(max(0.0, deadline - time.monotonic()))
                if resp.id == rid and not resp.stream:
                    return "answer", resp
        except WireError as e:
            self.close()
            return "unknown", str(e)


def _named_mod_revision(message):
    m = MOD_REVISION_IS.search(message)
    if not m:
        return None
    return int(m.group(1) or m.group(2))


class Workload:
    """The clients' side of a run: the recorder, the key space, the workers
    and what they saw; no nemesis and no cluster, so that it runs against
    a single kvstored as well. ENDPOINTS: the nodes' client addresses."""

    def __init__(self, endpoints, seed, workers=5, slots=5, ops_per_key=OPS_PER_KEY,
                 on_problem=None):
        rng = random.Random(seed)
        self.endpoints = list(endpoints)
        self.recorder = Recorder()
        self.keys = KeySpace(slots, ops_per_key)
        self.stop = threading.Event()
        self.problems = []
        self.codes = {}
        self.on_problem = on_problem
        self._lock = threading.Lock()
        self.workers = [Worker(self, i + 1, rng.getrandbits(64)) for i in range(workers)]

    def start(self):
        for w in self.workers:
            w.start()

    def finish(self):
        """Stops the workers and waits for them (bounded: one operation);
        False when one did not stop."""
        self.stop.set()
        for w in self.workers:
            w.join(OP_TIMEOUT + CONNECT_TIMEOUT + 5)
        return not any(w.is_alive() for w in self.workers)

    def history(self):
        return self.recorder.history()

    def problem(self, text):
        with self._lock:
            self.problems.append(text)
        if self.on_problem:
            self.on_problem(text)

    def count_code(self, code, message):
        name = pb.StatusCode.Name(code)
        if code == pb.UNAVAILABLE:
            name += " (%s)" % ("not leader" if NOT_LEADER.search(message) else message[:60])
        with self._lock:
            self.codes[name] = self.codes.get(name, 0) + 1


class Worker(threading.Thread):
    """One client: random operations until the workload's stop is set."""

    def __init__(self, load, index, seed):
        super().__init__(name="worker-%d" % index, daemon=True)
        self.load = load
        self.name_ = "c%d" % index
        self.rng = random.Random(seed)
        self.client_id = self.rng.randbytes(16)
        self.seq = 0
        self.writes = 0
        self.known = {}                 # key -> a mod_revision this worker saw
        self.target = self.rng.choice(load.endpoints)
        self.link = Link()

    def run(self):
        try:
            while not self.load.stop.is_set():
                self.one()
                self.load.stop.wait(self.rng.uniform(0, MAX_DELAY))
        except BaseException as e:          # a bug of the test: make it fail loudly
            self.load.problem("worker %s died: %r" % (self.name_, e))
            raise
        finally:
            self.link.close()

    def _value(self):
        self.writes += 1
        return "%s-%d" % (self.name_, self.writes)

    def _expect(self, key):
        # Mostly a revision seen (may be stale by now); sometimes create-only.
        if key in self.known and self.rng.random() < 0.8:
            return self.known[key]
        return 0

    def one(self):
        rng, key = self.rng, self.load.keys.pick(self.rng)
        k = key.encode()
        r = rng.random()
        if r < 0.40:
            kind, method, req, value, expect = "get", "Get", pb.GetRequest(key=k), None, None
        elif r < 0.60:
            value, expect = self._value(), None
            kind, method, req = "set", "Set", pb.SetRequest(key=k, value=value.encode())
        elif r < 0.75:
            value, expect = self._value(), self._expect(key)
            kind, method = "cas", "Set"
            req = pb.SetRequest(key=k, value=value.encode(), if_mod_revision=expect)
        elif r < 0.90:
            value, expect = self._value(), self._expect(key)
            kind, method = "txn", "Txn"
            req = pb.TxnRequest(
                compare=[pb.Compare(key=k, target=pb.Compare.MOD_REVISION,
                                    op=pb.Compare.EQUAL, number=expect)],
                success=[pb.TxnOp(set=pb.SetRequest(key=k, value=value.encode()))],
                failure=[pb.TxnOp(get=pb.GetRequest(key=k))])
        else:
            kind, method, value = "delete", "Clear", None
            expect = self.known.get(key) if rng.random() < 0.4 else None
            if expect:
                req = pb.ClearRequest(key=k, if_mod_revision=expect)
            else:
                expect = None
                req = pb.ClearRequest(key=k)
        client_id, seq = b"", 0
        if kind != "get":
            self.seq += 1
            client_id, seq = self.client_id, self.seq
        rec = self.load.recorder
        op = rec.invoke(self.name_, key, "cas" if kind == "txn" else kind,
                        value=value, expect=expect)
        how, resp = self.link.call(self.target, method, req, client_id, seq)
        if how == "not-sent":
            rec.complete(op, "fail")
            self.target = self.rng.choice(self.load.endpoints)
            return
        if how == "unknown":
            # A paused or cut-off leader: try another node next time.
            rec.complete(op, "info")
            self.target = self.rng.choice(self.load.endpoints)
            return
        self.load.count_code(resp.code, resp.message)
        if resp.code == pb.UNAVAILABLE:
            if NOT_LEADER.search(resp.message):
                rec.complete(op, "fail")
            else:
                rec.complete(op, "info")
            self.target = resp.leader or self.rng.choice(self.load.endpoints)
            return
        self._answered(op, kind, key, expect, resp)

    def _answered(self, op, kind, key, expect, resp):
        rec, code = self.load.recorder, resp.code
        if code == pb.OK and kind == "get":
            g = pb.GetResponse.FromString(resp.payload)
            rec.complete(op, "ok", read=g.value.decode(errors="replace"),
                         mod_revision=g.mod_revision)
            self.known[key] = g.mod_revision
        elif code == pb.NOT_FOUND and kind == "get":
            rec.complete(op, "ok", read=None)
            self.known[key] = 0
        elif code == pb.OK and kind in ("set", "cas"):
            s = pb.SetResponse.FromString(resp.payload)
            rec.complete(op, "ok", revision=s.revision)
            self.known[key] = s.revision
        elif code == pb.OK and kind == "txn":
            t = pb.TxnResponse.FromString(resp.payload)
            if t.succeeded:
                rec.complete(op, "ok", revision=t.revision)
                self.known[key] = t.revision
                return
            got = t.results[0].get if len(t.results) == 1 and \
                t.results[0].WhichOneof("result") == "get" else None
            named = (got.mod_revision if got.found else 0) if got is not None else None
            if named == expect:
                self.load.problem("Txn compare MOD_REVISION == %d failed on %s, yet its Get "
                                  "read mod_revision %d" % (expect, key, named))
                rec.complete(op, "info")
                return
            rec.complete(op, "failed_precondition", mod_revision=named)
            if named is not None:
                self.known[key] = named
        elif code == pb.OK and kind == "delete":
            c = pb.ClearResponse.FromString(resp.payload)
            rec.complete(op, "ok", found=c.found,
                         read=c.value.decode(errors="replace") if c.found else None,
                         revision=c.revision)
            self.known[key] = 0
        elif code == pb.FAILED_PRECONDITION and expect is not None:
            named = _named_mod_revision(resp.message)
            if named == expect:
                named = None                    # unreadable text: do not claim it
            rec.complete(op, "failed_precondition", mod_revision=named)
            if named is not None:
                self.known[key] = named
        else:
            # Any other error: not known whether it was applied.
            rec.complete(op, "info")


class Nemesis(threading.Thread):
    """Faults from random.Random(seed) until STOP is set; heal() undoes
    whatever is in force."""

    def __init__(self, test, seed, partitioner=None):
        super().__init__(name="nemesis", daemon=True)
        self.test = test
        self.cluster = test.cluster
        self.rng = random.Random(seed)
        self.partitioner = partitioner
        kinds = [k for k in FAULT_KINDS if partitioner or k not in PARTITION_KINDS]
        self.kinds = kinds
        self.weights = [WEIGHTS[k] for k in kinds]
        self.counts = {}
        self.killed, self.paused = set(), set()
        self.crashes, self.given_up = {}, set()
        self.events = []                # (time, what), for the report

    def log(self, what):
        self.events.append((time.monotonic() - self.test.t0, what))
        self.test.say("nemesis: %s" % what, verbose=True)

    def run(self):
        try:
            while not self.test.stop.wait(self.rng.uniform(*QUIET)):
                self.check_crashes()
                kind = self.rng.choices(self.kinds, self.weights)[0]
                self.begin(kind)
                self.test.stop.wait(self.rng.uniform(*HOLD))
                self.heal()
        except BaseException as e:
            self.test.problem("nemesis died: %r" % (e,))
            raise

    def _pick(self, leader):
        ids = sorted(self.cluster.nodes)
        if leader:
            nd = self.cluster.leader()
            if nd is not None:
                return nd.id
        return self.rng.choice(ids)

    def begin(self, kind):
        c, ids = self.cluster, sorted(self.cluster.nodes)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if kind in ("kill", "kill-leader"):
            i = self._pick(kind == "kill-leader")
            c.kill(i)
            self.killed.add(i)
            self.log("%s: node %d" % (kind, i))
        elif kind == "kill-all":
            for i in ids:
                c.kill(i)
                self.killed.add(i)
            self.log("kill-all")
        elif kind in ("pause", "pause-leader"):
            i = self._pick(kind == "pause-leader")
            c.pause(i)
            self.paused.add(i)
            self.log("%s: node %d" % (kind, i))
        elif kind in ("isolate", "isolate-leader"):
            i = self._pick(kind == "isolate-leader")
            self.partitioner.partition([i], [j for j in ids if j != i])
            self.log("%s: node %d cut off" % (kind, i))
        elif kind == "split":
            shuffled = self.rng.sample(ids, len(ids))
            minority = shuffled[:(len(ids) - 1) // 2]
            self.partitioner.partition(minority, shuffled[len(minority):])
            self.log("split: %s | %s" % (sorted(minority), sorted(shuffled[len(minority):])))
        elif kind == "bridge":
            shuffled = self.rng.sample(ids, len(ids))
            half = (len(ids) - 1) // 2
            a, b, hub = shuffled[:half], shuffled[half:-1], shuffled[-1]
            self.partitioner.partition(a, b)
            self.log("bridge: %s | %s, node %d reaches both" % (sorted(a), sorted(b), hub))

    def heal(self):
        """Undoes every fault in force: resumes, heals the network, restarts
        the killed nodes (a node that fails to start is a problem)."""
        for i in sorted(self.paused):
            self.cluster.resume(i)
        self.paused.clear()
        if self.partitioner and self.partitioner.blocked:
            self.partitioner.heal()
        for i in sorted(self.killed - self.given_up):
            try:
                self.cluster.restart(i)
            except Exception as e:
                self._crashed(i, "did not restart: %s" % e)
                continue
            self.killed.discard(i)
        self.log("healed")

    def check_crashes(self):
        """A node that exited without being told to is a problem; it is
        restarted so the run goes on."""
        for nd in self.cluster.nodes.values():
            status = nd.exited()
            if status is None:
                continue
            nd.kill()                       # reaps, keeps its log
            self._crashed(nd.id, "exited by itself (status %s); its log ends:\n%s"
                          % (status, nd.log_tail(CRASH_LOG_LINES)))
            if nd.id in self.given_up:
                continue
            try:
                nd.start()
            except Exception as e:
                self._crashed(nd.id, "did not restart: %s" % e)
                self.killed.add(nd.id)      # heal() tries again

    def _crashed(self, node_id, what):
        """A problem: node NODE_ID WHAT; after MAX_CRASHES of them it is
        left down (the checks at the end then fail too)."""
        self.test.problem("node %d %s" % (node_id, what))
        self.crashes[node_id] = self.crashes.get(node_id, 0) + 1
        if self.crashes[node_id] >= MAX_CRASHES and node_id not in self.given_up:
            self.given_up.add(node_id)
            self.log("node %d left down after %d failures" % (node_id, MAX_CRASHES))


@dataclasses.dataclass
class Outcome:
    """What a run found. ok: no problem and a linearizable history."""
    seed: int
    seconds: float
    ops: int = 0
    statuses: dict = dataclasses.field(default_factory=dict)
    kinds: dict = dataclasses.field(default_factory=dict)
    faults: dict = dataclasses.field(default_factory=dict)
    codes: dict = dataclasses.field(default_factory=dict)
    keys: int = 0
    verdict: str = ""
    report: str = ""
    problems: list = dataclasses.field(default_factory=list)
    history_path: str = None
    workdir: str = None
    logs: str = ""
    events: list = dataclasses.field(default_factory=list)

    @property
    def ok(self):
        return self.verdict == LINEARIZABLE and not self.problems

    def summary(self):
        lines = [
            "seed %d: %d operations checked on %d keys in %.0f s (%s)" % (
                self.seed, self.ops, self.keys, self.seconds,
                ", ".join("%s %d" % kv for kv in sorted(self.statuses.items()))),
            "  by kind: %s" % ", ".join("%s %d" % kv for kv in sorted(self.kinds.items())),
            "  faults injected: %d (%s)" % (sum(self.faults.values()), ", ".join(
                "%s %d" % kv for kv in sorted(self.faults.items())) or "none"),
            "  answers: %s" % ", ".join("%s %d" % kv for kv in sorted(self.codes.items())),
            "  verdict: %s%s" % (self.verdict, "" if not self.problems
                                 else "; %d problem(s)" % len(self.problems)),
        ]
        if not self.ok:
            lines.append(self.report)
            lines.extend("  problem: " + p for p in self.problems)
            if self.history_path:
                lines.append("  history: %s (replay: /usr/bin/python3 tests/support/linearize.py "
                             "%s)" % (self.history_path, self.history_path))
            if self.workdir:
                lines.append("  node logs and directories: %s" % self.workdir)
            lines.append("  the nemesis:")
            lines.extend("    %7.1f s  %s" % e for e in self.events)
            lines.append(self.logs)
        return "\n".join(lines)


class FaultTest:
    """One run: a cluster, workers, a nemesis, the final checks."""

    def __init__(self, seed, seconds, nodes=3, workers=5, slots=5, ops_per_key=OPS_PER_KEY,
                 partitioner_factory=None, out=None, verbose=False, history_dir=None,
                 cluster_args=("--snapshot-threshold", str(SNAPSHOT_THRESHOLD))):
        self.seed, self.seconds = seed, seconds
        self.rng = random.Random(seed)
        self.out = out or (lambda s: print(s, flush=True))
        self.verbose = verbose
        self.history_dir = history_dir
        self.cluster = Cluster(nodes, distinct_hosts=partitioner_factory is not None,
                               args=cluster_args)
        self.endpoints = [nd.endpoint for nd in self.cluster.nodes.values()]
        self.partitioner = partitioner_factory(
            {nd.id: (nd.gid, nd.host) for nd in self.cluster.nodes.values()}) \
            if partitioner_factory else None
        self.problems = []
        self._lock = threading.Lock()
        self.load = Workload(self.endpoints, self.rng.getrandbits(64), workers, slots,
                             ops_per_key, on_problem=self.problem)
        self.recorder, self.keys = self.load.recorder, self.load.keys
        self.stop = threading.Event()
        self.nemesis = Nemesis(self, self.rng.getrandbits(64), self.partitioner)
        self.t0 = time.monotonic()

    def say(self, text, verbose=False):
        if self.verbose or not verbose:
            self.out("[%6.1f s] %s" % (time.monotonic() - self.t0, text))

    def problem(self, text):
        with self._lock:
            self.problems.append(text)
        self.say("PROBLEM: " + text)

    def run(self):
        """Runs the test; returns an Outcome. The cluster is closed (its
        work directory kept when the outcome is not ok)."""
        out = Outcome(self.seed, self.seconds)
        try:
            self._run(out)
        except Exception:
            # The run could not go on (a cluster that never elected, ...):
            # an outcome that says so, with the logs, rather than a bare trace.
            self.stop.set()
            self.load.finish()
            self.problem("the run stopped:\n" + traceback.format_exc())
            out.problems = list(self.problems)
        finally:
            out.faults, out.events = dict(self.nemesis.counts), list(self.nemesis.events)
            if not out.ok:
                self.cluster.keep = True
                out.workdir = self.cluster.workdir
            if self.partitioner:
                self.partitioner.close()
            self.cluster.close()
            if not out.ok:
                out.logs = self.cluster.logs()
        return out

    def _run(self, out):
        c = self.cluster
        self.say("seed %d: %d nodes (%s), %d workers, %g s of faults"
                 % (self.seed, len(c.nodes), ", ".join(self.endpoints), len(self.load.workers),
                    self.seconds))
        c.start()
        self.t0 = time.monotonic()
        self.load.start()
        self.nemesis.start()
        end = self.t0 + self.seconds
        while not self.stop.wait(min(PROGRESS_EVERY, max(0.0, end - time.monotonic()))):
            if time.monotonic() >= end:
                break
            h = self.recorder.history()
            self.say("%d ops (%d ok), %d faults" % (
                len(h), sum(1 for o in h if o.status == "ok"), sum(self.nemesis.counts.values())))
        self.stop.set()
        stopped = self.load.finish()
        self.nemesis.join(max(HOLD) + LEADER_TIMEOUT)
        if self.nemesis.is_alive() or not stopped:
            self.problem("a worker or the nemesis did not stop in time")
        self.nemesis.check_crashes()
        self.nemesis.heal()
        self.say("faults healed; waiting for a leader")
        try:
            leader = c.wait_for_leader(LEADER_TIMEOUT * 2)
        except AssertionError as e:
            self.problem("after healing: %s" % e)
            leader = None
        finals = self._final_reads(leader)
        self._converged(finals)
        self._judge(out)

    def _final_reads(self, leader):
        """A linearizable Get of every key, recorded; returns key -> the Op."""
        finals, link, rec = {}, Link(), self.recorder
        target = leader.endpoint if leader else self.endpoints[0]
        try:
            for key in self.keys.keys():
                for _ in range(FINAL_READ_ATTEMPTS):
                    op = rec.invoke("final", key, "get")
                    how, resp = link.call(target, "Get", pb.GetRequest(key=key.encode()))
                    if how == "answer" and resp.code in (pb.OK, pb.NOT_FOUND):
                        if resp.code == pb.OK:
                            g = pb.GetResponse.FromString(resp.payload)
                            rec.complete(op, "ok", read=g.value.decode(errors="replace"),
                                         mod_revision=g.mod_revision)
                        else:
                            rec.complete(op, "ok", read=None)
                        finals[key] = op
                        break
                    rec.complete(op, "fail" if how == "not-sent" or (
                        how == "answer" and resp.code == pb.UNAVAILABLE
                        and NOT_LEADER.search(resp.message)) else "info")
                    if how == "answer" and resp.leader:
                        target = resp.leader
                    else:
                        nd = self.cluster.wait_for_leader(LEADER_TIMEOUT)
                        target = nd.endpoint
                else:
                    self.problem("no final read of %s in %d attempts" % (key, FINAL_READ_ATTEMPTS))
        except AssertionError as e:
            self.problem("final reads: %s" % e)
        finally:
            link.close()
        return finals

    def _converged(self, finals):
        """Every node caught up, and every node's serializable read of every
        key is the same as the final linearizable one."""
        try:
            self.cluster.wait_converged()
        except AssertionError as e:
            self.problem(str(e))
            return
        link, bad = Link(), []
        try:
            for nd in self.cluster.nodes.values():
                for key, op in sorted(finals.items()):
                    how, resp = link.call(nd.endpoint, "Get",
                                          pb.GetRequest(key=key.encode(), serializable=True))
                    if how != "answer" or resp.code not in (pb.OK, pb.NOT_FOUND):
                        bad.append("node %d: serializable Get %s: %s" % (
                            nd.id, key, resp if how != "answer" else
                            "%s %s" % (pb.StatusCode.Name(resp.code), resp.message)))
                        continue
                    got = (None, None)
                    if resp.code == pb.OK:
                        g = pb.GetResponse.FromString(resp.payload)
                        got = (g.value.decode(errors="replace"), g.mod_revision)
                    want = (op.read, op.mod_revision)
                    if got != want:
                        bad.append("node %d has %s = %r at mod_revision %s; the final "
                                   "linearizable read gave %r at %s"
                                   % (nd.id, key, got[0], got[1], want[0], want[1]))
        finally:
            link.close()
        for b in bad[:20]:
            self.problem("divergence: " + b)

    def _judge(self, out):
        h = self.recorder.history()
        out.ops = len(h)
        for o in h:
            out.statuses[o.status] = out.statuses.get(o.status, 0) + 1
            out.kinds[o.kind] = out.kinds.get(o.kind, 0) + 1
        out.codes = dict(self.load.codes)
        out.keys = len(self.keys.keys())
        self.say("checking %d operations on %d keys" % (out.ops, out.keys))
        result = check(h)
        out.verdict, out.report = result.verdict, result.report()
        if out.statuses.get("ok", 0) < 50:
            self.problems.append("only %d operations succeeded: the run checked almost "
                                 "nothing" % out.statuses.get("ok", 0))
        out.problems = list(self.problems)
        if not out.ok:
            d = self.history_dir or self.cluster.workdir
            os.makedirs(d, exist_ok=True)
            out.history_path = os.path.join(d, "history-seed%d.jsonl" % self.seed)
            dump_history(h, out.history_path)


def run(seed, seconds, **kw):
    """Runs one FaultTest; returns its Outcome."""
    return FaultTest(seed, seconds, **kw).run()


if __name__ == "__main__":
    sys.exit("run tests/test_faults.py or scripts/faults")
