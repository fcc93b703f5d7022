"""test_model - a model-based random test of the v2 data model (issue 13).

A seeded random sequence of a few thousand requests - Set, Clear, their
conditional forms (if_mod_revision right, wrong, 0 for create-only), Get,
Range (start/end, prefix, limit, keys_only, count_only, reverse, paging to
the end), ClearRange, and Txn (compares on VALUE, MOD_REVISION,
CREATE_REVISION and VERSION with every op; success and failure branches of
Get, Set, Clear, Range and ClearRange; some invalid ones that must be
refused whole) - runs against a live kvstored and against Model below, a
sorted map with revisions written from the rules of docs/PROTOCOL.md.
Every answer must match: the status code and every field of the response
(and for FAILED_PRECONDITION, the documented text naming the key's current
mod_revision). Every 100 requests the whole store (a Range of everything)
and Stats' revision and key count are compared too; with an engine that
keeps files, the server is stopped half-way and killed (-9) at three
quarters, and must come back each time with the same keys and revisions,
its revision going on.

The keys are short and overlap: shared prefixes, NUL and 0xFF bytes, so
that byte order, prefix ends (a prefix of 0xFF bytes has no upper bound)
and "last key + NUL" paging are all exercised.

Expiry and watch (issue 14, v2.1). Sets give TTLs (ttl_ms), keep them
(keep_ttl) or drop them (neither), Touch sets, changes and removes them,
and Txn Sets give them too; invalid ones (above the maximum, ttl_ms with
keep_ttl) must be refused. These TTLs are long (1 to 10 hours, or the
maximum), so they never expire during a run: the model keeps, for each key,
the TTL given and the time the request was sent, and every ttl_ms the
server reports (Get, Range, Txn results, watch events) must lie in
[TTL - time since then - 60 s, TTL] and above 0; a key without one must say
0. No other timing is asserted. Now and then an expiry step sets a few keys
with TTLs of 1 to 50 ms, waits until they are due (past the time the
answers came back plus the TTL, on both clocks), checks that reads see them
gone at once (Get, Touch, Range, a Txn's compares), writes some of them
again (which removes them first), then waits (bounded, 20 s) until Stats
has counted each removal, and learns from the watcher's events at which
revisions the server removed them: each removal a DELETE with expired =
true, a batch per revision in key order, every key exactly once, after its
Set and before a write of it; the model then replays the step's writes in
revision order and every answer must match.

A watcher on a second connection (tests/support/wire.py: raw frames)
watches every key (key "\x00", end "\x00") with prev_kv from the start;
at every check its stream frames must hold exactly the model's change log
since the last check: the events in revision order, each PUT with its key,
value, revisions, version and TTL, each DELETE with the key, the deletion's
revision and expired, prev_kv the key as the model had it, and the events
of one revision in one frame. Now and then a third connection opens a
watch from a past revision (every key, a prefix, a key or a range; with or
without prev_kv) whose replay must equal the model's log from there, and
ends it with CancelWatch (its canceled frame before the answer); one that
starts before the history kept must be canceled at once as compacted. The
model knows the history: it starts with the first Watch after the server
started and keeps the newest 10000 events (--watch-history's default).
Stats' expired_keys_total, keys_with_ttl, watchers, watch_events_total and
watch_history_oldest are checked at every check too. The times at which
the server removes the short-lived keys decide how many revisions their
removal takes, so a seed repeats its requests exactly only up to the first
expiry step whose removals were batched differently.

Run by meson test once per engine ($KVSTORED_ENGINE, as every Python
suite: tests/support/kvstored.py). The seed comes from $KV_MODEL_SEED, or
the clock, and is always printed; $KV_MODEL_OPS sets the number of
requests (default 3000), --runs N runs N seeds in a row (meson: 3). On
the first mismatch it prints the seed, the request's index, the request,
both answers and the requests before it, and exits 1. By hand:

    KVSTORED=build/src/kvstored PYTHONPATH=tests/support:client/python:build/client/python \\
        KV_MODEL_SEED=42 /usr/bin/python3 tests/test_model.py [--seed N] [--ops N] [--runs N]

Speaks the wire with the Python client's generic stubs (one method per rpc,
taking and returning the generated kv_pb2 messages), and for the watches
with tests/support/wire.py. Debian's /usr/bin/python3 and python3-protobuf.
"""

import argparse
import collections
import os
import random
import shutil
import sys
import tempfile
import time

from google.protobuf import text_format

import kvstore
from kvstore import pb
from kvstored import Server
import wire

# ----------------------------------------------------------------- the rules
# Where the issue leaves a detail open, the model follows docs/PROTOCOL.md
# (v2): these limits, and in Run and check_txn below, the revision a read
# inside a Txn reports (the Txn's own once it has written), a ClearRange or
# Clear that removes nothing answering revision 0 even inside a Txn, an end
# at or before start selecting nothing, count_only answering more = false,
# two ClearRanges of one branch conflicting only when their spans share a
# possible key, and both branches of a Txn checked whichever runs.

# The most compares a Txn may hold, and the most operations in each of its
# branches: one more is INVALID_ARGUMENT (PROTOCOL.md, Txn).
TXN_MAX_COMPARES = 128
TXN_MAX_OPS = 128
# The server's maximum page: a limit of 0, or above it, reads at most this
# many keys (PROTOCOL.md, Range). The model's key space is far smaller.
MAX_PAGE = 10000
# The longest key either engine takes is 65536 bytes (--max-key-bytes).
TOO_LONG_KEY = b"k" * 65537

# The longest TTL a Set or Touch may give (ms); one more is INVALID_ARGUMENT.
TTL_MAX = 10**12
# The TTLs of the random requests: long enough never to expire in a run.
TTL_LONG = (3600 * 1000, 10 * 3600 * 1000)
# The TTLs of an expiry step's keys (ms).
TTL_SHORT = (1, 50)
# A reported ttl_ms may be this much below TTL - (time since the request
# was sent): scheduling, a busy machine, clock steps (lmdb: wall clock).
TTL_SLACK_MS = 60000
# The events a server keeps for watches from the past (--watch-history's
# default); the model knows which ones it still has.
WATCH_HISTORY = 10000
# The longest any wait here may take (an event, an expiry): only a bound.
WAIT = 20.0
# How far past a short key's due time an expiry step reads it as gone.
DUE_MARGIN = 0.1

OK, INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION = 0, 3, 5, 9
CODE_NAMES = {0: "OK", 3: "INVALID_ARGUMENT", 5: "NOT_FOUND", 9: "FAILED_PRECONDITION",
              12: "UNIMPLEMENTED"}

VALUE, MOD_REVISION, CREATE_REVISION, VERSION = 0, 1, 2, 3
PUT, DELETE = 0, 1
EQUAL, NOT_EQUAL, LESS, GREATER = 0, 1, 2, 3

# The key space: short keys sharing prefixes, with 0x00 and 0xFF bytes.
KEYS = [b"a", b"ab", b"abc", b"abd", b"a\x00", b"a\xff", b"b", b"b\x00", b"b\x00\x00",
        b"b\x01", b"b\xff", b"b\xff\xff", b"ba", b"c", b"\x00", b"\x00\x00", b"\x00a",
        b"\xff", b"\xff\x00", b"\xff\xff", b"k/1", b"k/10", b"k/2"]
# Range bounds: the keys, and points between and around them.
BOUNDS = KEYS + [b"a\x00\x00", b"aa", b"abcd", b"b\x00\x01", b"bb", b"\x01", b"\xfe",
                 b"\xff\xff\xff", b"k/", b"k0", b"z"]
PREFIXES = [b"a", b"ab", b"abc", b"abcd", b"a\x00", b"b", b"b\x00", b"b\xff", b"\x00",
            b"\xff", b"\xff\xff", b"k/", b"k/1", b"z"]
VALUES = [b"", b"x", b"y", b"xy", b"yy", b"\x00", b"\xff", b"x\x00", b"0123456789"]


class Refused(Exception):
    """A request the model answers with a code other than OK."""

    def __init__(self, code, message=None):
        super().__init__(code)
        self.code = code
        self.message = message      # how the server's text begins, where documented


def prefix_end(prefix):
    """The first key after every key that begins with PREFIX; b"" (no upper
    bound) when PREFIX is all 0xFF bytes."""
    p = bytearray(prefix)
    while p and p[-1] == 0xFF:
        p.pop()
    if not p:
        return b""
    p[-1] += 1
    return bytes(p)


def check_selector(start, end, prefix, clearing):
    """INVALID_ARGUMENT for prefix with start or end, and (CLEARING) for no
    selector at all."""
    if prefix and (start or end):
        raise Refused(INVALID_ARGUMENT)
    if clearing and not (prefix or start or end):
        raise Refused(INVALID_ARGUMENT)


def compare_holds(op, mine, theirs):
    if op == EQUAL:
        return mine == theirs
    if op == NOT_EQUAL:
        return mine != theirs
    if op == LESS:
        return mine < theirs
    if op == GREATER:
        return mine > theirs
    raise AssertionError("bad compare op %d" % op)


def entry_kv(key, e):
    """KEY's entry E as a KeyValue without its TTL: a watch event's prev_kv."""
    return pb.KeyValue(key=key, value=e[0], create_revision=e[1], mod_revision=e[2],
                       version=e[3])


def put_event(key, e, prev):
    """The PUT event of KEY written to E (PREV: the entry before, or None)."""
    ev = pb.WatchEvent(type=PUT, kv=pb.KeyValue(key=key, value=e[0], create_revision=e[1],
                                                mod_revision=e[2], version=e[3], ttl_ms=e[4]))
    if prev is not None:
        ev.prev_kv.CopyFrom(entry_kv(key, prev))
    return ev


def delete_event(key, rev, prev, expired=False):
    """The DELETE event of KEY at REV; PREV its entry before."""
    return pb.WatchEvent(type=DELETE, kv=pb.KeyValue(key=key, mod_revision=rev),
                         prev_kv=entry_kv(key, prev), expired=expired)


class Run:
    """One request's work on a copy of the model's keys: every write made at
    revision NEW (the same for all the writes of a Txn); committed by the
    caller when nothing was refused. Its events (the model's change log, as
    a watcher sees them) are gathered in EVENTS. A TTL is held in an entry
    as a reference to MODEL's table of TTLs given (0: none), and so is it
    in the answers and events the model makes: Checker.settle_ttls turns
    them into what the server may report."""

    def __init__(self, model, kv, rev, in_txn, t0):
        self.model = model
        self.kv = kv            # key -> (value, create_revision, mod_revision, version, ttl)
        self.base = rev
        self.new = rev + 1
        self.changed = False    # a write: the store's revision moves
        self.touched = False    # a Touch changed a TTL (no revision)
        self.in_txn = in_txn
        self.t0 = t0            # when the request was sent (time.monotonic())
        self.events = []

    def read_revision(self):
        # The store's revision at a read: inside a Txn after one of its
        # writes, the Txn's revision (its writes are seen).
        return self.new if self.changed else self.base

    def get(self, r):
        if bad_key(r.key):
            raise Refused(INVALID_ARGUMENT)
        e = self.kv.get(r.key)
        if e is None:
            if not self.in_txn:
                raise Refused(NOT_FOUND)
            return pb.GetResponse(found=False, revision=self.read_revision())
        return pb.GetResponse(value=e[0], create_revision=e[1], mod_revision=e[2],
                              version=e[3], revision=self.read_revision(), found=True,
                              ttl_ms=e[4])

    def condition(self, r):
        if r.HasField("if_mod_revision"):
            e = self.kv.get(r.key)
            current = e[2] if e else 0
            if current != r.if_mod_revision:
                raise Refused(FAILED_PRECONDITION, "if_mod_revision %d does not hold: %s" % (
                    r.if_mod_revision, "the key's mod_revision is %d" % current if e
                    else "the key does not exist"))

    def set(self, r):
        if bad_key(r.key) or bad_ttl(r):
            raise Refused(INVALID_ARGUMENT)
        self.condition(r)
        e = self.kv.get(r.key)
        if r.ttl_ms:
            ttl = self.model.new_ttl(r.ttl_ms, self.t0)
        else:
            ttl = e[4] if e and r.keep_ttl else 0
        self.kv[r.key] = now = ((r.value, e[1], self.new, e[3] + 1, ttl) if e else
                               (r.value, self.new, self.new, 1, ttl))
        self.events.append(put_event(r.key, now, e))
        self.changed = True
        return pb.SetResponse(key=r.key, revision=self.new)

    def touch(self, r):
        if bad_key(r.key) or r.ttl_ms > TTL_MAX:
            raise Refused(INVALID_ARGUMENT)
        e = self.kv.get(r.key)
        if e is None:
            return pb.TouchResponse(found=False)
        self.kv[r.key] = e[:4] + (self.model.new_ttl(r.ttl_ms, self.t0) if r.ttl_ms else 0,)
        self.touched = True
        return pb.TouchResponse(found=True)

    def clear(self, r):
        if bad_key(r.key):
            raise Refused(INVALID_ARGUMENT)
        self.condition(r)
        e = self.kv.pop(r.key, None)
        if e is None:
            return pb.ClearResponse(found=False)
        self.events.append(delete_event(r.key, self.new, e))
        self.changed = True
        return pb.ClearResponse(found=True, value=e[0], revision=self.new)

    def select(self, start, end, prefix):
        if prefix:
            return sorted(k for k in self.kv if k.startswith(prefix))
        return sorted(k for k in self.kv if k >= start and (not end or k < end))

    def range(self, r):
        check_selector(r.start, r.end, r.prefix, clearing=False)
        keys = self.select(r.start, r.end, r.prefix)
        out = pb.RangeResponse(count=len(keys), revision=self.read_revision())
        if r.count_only:
            return out
        if r.reverse:
            keys.reverse()
        limit = min(r.limit or MAX_PAGE, MAX_PAGE)
        page, out.more = keys[:limit], len(keys) > limit
        for k in page:
            e = self.kv[k]
            out.kvs.add(key=k, value=b"" if r.keys_only else e[0], create_revision=e[1],
                        mod_revision=e[2], version=e[3], ttl_ms=e[4])
        return out

    def clear_range(self, r):
        check_selector(r.start, r.end, r.prefix, clearing=True)
        keys = self.select(r.start, r.end, r.prefix)
        for k in keys:
            self.events.append(delete_event(k, self.new, self.kv.pop(k)))
        if not keys:
            return pb.ClearRangeResponse()
        self.changed = True
        return pb.ClearRangeResponse(deleted=len(keys), revision=self.new)


def op_field(op):
    return op.WhichOneof("op")


def op_writes(op):
    """The key a TxnOp writes (Set, Clear), a (start, end) span for a
    ClearRange, or None for a read."""
    kind = op_field(op)
    if kind in ("set", "clear"):
        return getattr(op, kind).key
    if kind == "clear_range":
        r = op.clear_range
        if r.prefix:
            return (r.prefix, prefix_end(r.prefix))
        return (r.start, r.end)
    return None


def span_has(span, key):
    start, end = span
    return key >= start and (not end or key < end)


def spans_meet(a, b):
    """Whether [a0, a1) and [b0, b1) (an empty end: no bound) have a key in
    common: a span whose end is at or before its start has none."""
    lo = max(a[0], b[0])
    ends = [e for e in (a[1], b[1]) if e]
    return not ends or lo < min(ends)


def branch_writes_twice(ops):
    """Whether a list of TxnOps writes one key twice: two Sets/Clears of a
    key, a Set/Clear of a key inside a ClearRange's span, or two
    ClearRanges whose spans meet."""
    points, spans = set(), []
    for op in ops:
        w = op_writes(op)
        if w is None:
            continue
        if isinstance(w, bytes):
            if w in points or any(span_has(s, w) for s in spans):
                return True
            points.add(w)
        else:
            if any(span_has(w, k) for k in points) or any(spans_meet(w, s) for s in spans):
                return True
            spans.append(w)
    return False


def bad_key(key):
    return not key or len(key) > len(TOO_LONG_KEY) - 1


def bad_ttl(r):
    """Whether SetRequest R asks for a TTL that is refused: above the
    maximum, or ttl_ms together with keep_ttl."""
    return r.ttl_ms > TTL_MAX or (r.ttl_ms and r.keep_ttl)


def check_txn(r):
    """The refusals of a Txn as a whole, before anything runs: INVALID_ARGUMENT
    for too many compares or ops in a branch, an op that is not set or not
    valid (in either list, run or not: a TTL refused included), a
    conditional write, a key written twice in one list, or a compare on an
    empty key or with an unknown target or op."""
    if (len(r.compare) > TXN_MAX_COMPARES or len(r.success) > TXN_MAX_OPS
            or len(r.failure) > TXN_MAX_OPS):
        raise Refused(INVALID_ARGUMENT)
    for c in r.compare:
        if bad_key(c.key) or c.target not in (VALUE, MOD_REVISION, CREATE_REVISION, VERSION) \
                or c.op not in (EQUAL, NOT_EQUAL, LESS, GREATER):
            raise Refused(INVALID_ARGUMENT)
    for ops in (r.success, r.failure):
        for op in ops:
            kind = op_field(op)
            if kind is None:
                raise Refused(INVALID_ARGUMENT)
            req = getattr(op, kind)
            if kind in ("get", "set", "clear") and bad_key(req.key):
                raise Refused(INVALID_ARGUMENT)
            if kind in ("set", "clear") and req.HasField("if_mod_revision"):
                raise Refused(INVALID_ARGUMENT)
            if kind == "set" and bad_ttl(req):
                raise Refused(INVALID_ARGUMENT)
            if kind in ("range", "clear_range"):
                check_selector(req.start, req.end, req.prefix, kind == "clear_range")
        if branch_writes_twice(ops):
            raise Refused(INVALID_ARGUMENT)


class Model:
    """The reference: keys -> (value, create_revision, mod_revision,
    version, TTL), the store's revision, the change log and what the
    server's watch history holds of it.

    A TTL is a reference (an int > 0; 0: none) into TTLS: ref -> (ttl_ms
    given, time.monotonic() when its request was sent). HIDDEN holds keys
    that have expired but are not yet removed (an expiry step's): every
    read skips them, while they stay in KV until their removal's revision
    (expire())."""

    def __init__(self):
        self.kv = {}
        self.rev = 0
        self.ttls = {}
        self.hidden = set()
        self.log = []                   # (revision, [WatchEvent]) in revision order
        self.expired_total = 0          # keys removed by expiry
        self.history = None             # revisions of the events kept (from the first Watch)
        self.compacted = 0              # the newest revision the history lacks events of

    def new_ttl(self, ttl_ms, t0):
        ref = len(self.ttls) + 1
        self.ttls[ref] = (ttl_ms, t0)
        return ref

    def with_ttl(self):
        return sum(1 for e in self.kv.values() if e[4])

    def start_history(self):
        """The first Watch since the server started: from now on it keeps
        the events of every write (the newest WATCH_HISTORY of them)."""
        self.history = collections.deque()
        self.compacted = self.rev

    def stop_history(self):
        """The server stopped: its history is gone."""
        self.history = None

    def record(self, rev, events):
        self.log.append((rev, events))
        if self.history is None:
            return
        self.history.extend([rev] * len(events))
        while len(self.history) > WATCH_HISTORY:
            self.compacted = max(self.compacted, self.history.popleft())

    def view(self):
        """The keys every read sees: without the HIDDEN ones."""
        if not self.hidden:
            return dict(self.kv)
        return {k: e for k, e in self.kv.items() if k not in self.hidden}

    def call(self, method, req, t0=0.0):
        """Returns (code, response or None, how the error's text begins, or
        None when any will do). T0: when the request is sent."""
        run = Run(self, self.view(), self.rev, False, t0)
        try:
            if method == "Txn":
                resp = self.txn(run, req)
            else:
                resp = getattr(run, METHOD_RUN[method])(req)
        except Refused as e:
            return e.code, None, e.message
        if run.changed or run.touched:
            kv = run.kv
            for k in self.hidden:           # reads did not see them; writes remove them first
                kv.setdefault(k, self.kv[k])
            self.kv = kv
        if run.changed:
            self.rev = run.new
            self.record(run.new, run.events)
        if method == "Txn":
            resp.revision = self.rev
        return OK, resp, None

    def expire(self, rev, keys):
        """The server removed KEYS (in this order) by expiry, at REV."""
        assert rev == self.rev + 1, (rev, self.rev)
        events = [delete_event(k, rev, self.kv.pop(k), expired=True) for k in keys]
        self.hidden.difference_update(keys)
        self.rev = rev
        self.expired_total += len(keys)
        self.record(rev, events)

    @staticmethod
    def holds(kv, c):
        e = kv.get(c.key)
        if c.target == VALUE:
            return e is not None and compare_holds(c.op, e[0], c.value)
        mine = 0 if e is None else {MOD_REVISION: e[2], CREATE_REVISION: e[1],
                                    VERSION: e[3]}[c.target]
        return compare_holds(c.op, mine, c.number)

    def txn(self, run, r):
        check_txn(r)
        run.in_txn = True
        ok = all(self.holds(run.kv, c) for c in r.compare)
        out = pb.TxnResponse(succeeded=ok)
        for op in (r.success if ok else r.failure):
            kind = op_field(op)
            result = getattr(run, kind)(getattr(op, kind))
            getattr(out.results.add(), kind).CopyFrom(result)
        return out


METHOD_RUN = {"Get": "get", "Set": "set", "Clear": "clear", "Range": "range",
              "ClearRange": "clear_range", "Touch": "touch"}


# --------------------------------------------------------------- the server

class Live:
    """A kvstored (engine from $KVSTORED_ENGINE) and one connection to it."""

    def __init__(self):
        self.engine = os.environ.get("KVSTORED_ENGINE") or "memory"
        self.dir = None
        if self.engine != "memory":
            self.dir = tempfile.mkdtemp(prefix="kvstored-model.")
        self.server = self.client = None
        self.start()

    def start(self):
        self.server = Server(dir=self.dir)
        self.client = kvstore.Client(self.server.endpoint, timeout=20)

    def restart(self, kill=False):
        """Stops the server (SIGTERM, or with KILL SIGKILL, as a crash) and
        starts it again on the same data."""
        self.client.close()
        if kill:
            self.server.kill()
        else:
            status = self.server.stop()
            if status != 0:
                raise AssertionError("kvstored exited %s on SIGTERM" % status)
        self.start()

    def close(self):
        if self.client:
            self.client.close()
        if self.server:
            self.server.stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def call(self, method, req):
        """Returns (code, response or None, error message)."""
        try:
            return OK, getattr(self.client, method)(req), ""
        except kvstore.RpcError as e:
            if e.code_name in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
                raise
            return e.code, None, e.message


# --------------------------------------------------------------- generation

class Gen:
    """Random requests over the key space, biased towards the model's state
    so that conditions and compares hold about as often as not."""

    def __init__(self, rnd, model):
        self.r = rnd
        self.m = model

    def key(self):
        return self.r.choice(KEYS)

    def ttl(self):
        """A TTL that does not expire during a run: 1 to 10 hours, or now and
        then the maximum."""
        return self.r.randint(*TTL_LONG) if self.r.random() < 0.95 else TTL_MAX

    def ttl_fields(self):
        """A SetRequest's TTL fields: none (the key loses its TTL), ttl_ms,
        or keep_ttl."""
        x = self.r.random()
        if x < 0.45:
            return {}
        if x < 0.85:
            return {"ttl_ms": self.ttl()}
        return {"keep_ttl": True}

    def bad_ttl_fields(self):
        """TTL fields a Set must be refused for."""
        x = self.r.randrange(3)
        if x == 0:
            return {"ttl_ms": self.r.choice([TTL_MAX + 1, 2**63, 2**64 - 1])}
        return {"ttl_ms": self.ttl(), "keep_ttl": True}

    def value(self):
        return self.r.choice(VALUES)

    def mod_condition(self, key):
        """An if_mod_revision for KEY: right, wrong, or 0 (create-only)."""
        e = self.m.kv.get(key)
        current = e[2] if e else 0
        x = self.r.random()
        if x < 0.45:
            return current
        if x < 0.7:
            return 0
        wrong = [n for n in (current + 1, current - 1, self.m.rev + 1, 1, self.m.rev)
                 if n >= 0 and n != current]
        return self.r.choice(wrong) if wrong else current + 1

    def selector(self, clearing=False, valid=True):
        """(start, end, prefix) of a Range or ClearRange."""
        x = self.r.random()
        if not valid:
            if clearing and x < 0.4:
                return b"", b"", b""
            p = self.r.choice(PREFIXES)
            return ((self.r.choice(BOUNDS[:-1]) or b"a", b"", p) if x < 0.7
                    else (b"", self.r.choice(BOUNDS) or b"z", p))
        if x < 0.4:
            return b"", b"", self.r.choice(PREFIXES)
        if x < 0.55:
            return self.r.choice(BOUNDS), b"", b""
        if x < 0.85:
            a, b = self.r.choice(BOUNDS), self.r.choice(BOUNDS)
            if self.r.random() < 0.85 and a > b:
                a, b = b, a             # mostly a proper range, sometimes inverted
            if not a and not b:
                b = b"b"
            return a, b, b""
        if x < 0.95 or clearing:
            return b"", self.r.choice(BOUNDS[1:]) or b"b", b""
        return b"", b"", b""            # Range: everything

    def range_request(self, valid=True):
        start, end, prefix = self.selector(valid=valid)
        return pb.RangeRequest(start=start, end=end, prefix=prefix,
                               limit=self.r.choice([0, 0, 0, 1, 2, 3, 5, 8, MAX_PAGE,
                                                    MAX_PAGE + 1, 2**32 - 1]),
                               keys_only=self.r.random() < 0.2,
                               count_only=self.r.random() < 0.1,
                               reverse=self.r.random() < 0.3)

    def clear_range_request(self, valid=True):
        # Mostly narrow: a prefix or a short span, so the store stays full.
        if valid and self.r.random() < 0.05:
            return pb.ClearRangeRequest(start=b"\x00")       # everything
        start, end, prefix = self.selector(clearing=True, valid=valid)
        if valid and start and not end and self.r.random() < 0.7:
            start, prefix = b"", start[:2]
        return pb.ClearRangeRequest(start=start, end=end, prefix=prefix)

    def compare(self):
        key = self.key()
        e = self.m.kv.get(key)
        target = self.r.choice([VALUE, MOD_REVISION, CREATE_REVISION, VERSION])
        c = pb.Compare(key=key, target=target, op=self.r.choice([EQUAL, NOT_EQUAL, LESS, GREATER]))
        if target == VALUE:
            c.value = e[0] if e and self.r.random() < 0.6 else self.value()
        else:
            actual = 0 if e is None else {MOD_REVISION: e[2], CREATE_REVISION: e[1],
                                          VERSION: e[3]}[target]
            c.number = self.r.choice([actual, actual, actual + 1, max(actual - 1, 0), 0,
                                      self.m.rev])
        return c

    def txn_op(self, written):
        """A valid TxnOp that writes no key already in WRITTEN (a list of
        TxnOps), or None when the draw would."""
        x = self.r.random()
        if x < 0.25:
            op = pb.TxnOp(get=pb.GetRequest(key=self.key()))
        elif x < 0.55:
            op = pb.TxnOp(set=pb.SetRequest(key=self.key(), value=self.value(),
                                            **self.ttl_fields()))
        elif x < 0.7:
            op = pb.TxnOp(clear=pb.ClearRequest(key=self.key()))
        elif x < 0.9:
            op = pb.TxnOp(range=self.range_request())
        else:
            op = pb.TxnOp(clear_range=self.clear_range_request())
        return None if branch_writes_twice(written + [op]) else op

    def branch(self, n):
        ops = []
        for _ in range(n * 3):
            if len(ops) == n:
                break
            op = self.txn_op(ops)
            if op is not None:
                ops.append(op)
        return ops

    def txn(self):
        r = pb.TxnRequest()
        for _ in range(self.r.choice([0, 1, 1, 1, 2, 2, 3])):
            r.compare.append(self.compare())
        r.success.extend(self.branch(self.r.choice([0, 1, 2, 2, 3, 4, 5])))
        r.failure.extend(self.branch(self.r.choice([0, 1, 1, 2, 3])))
        if self.r.random() < 0.12:
            self.edge(r)
        return r

    def edge(self, r):
        """Adds an edge of the Txn rules: mostly what makes it invalid, so it
        must be refused whole; sometimes a near miss that is valid."""
        branch = self.r.choice([r.success, r.failure])
        how = self.r.randrange(13)
        if how == 0:      # a key written twice
            writes = [op_writes(op) for op in branch if isinstance(op_writes(op), bytes)]
            key = self.r.choice(writes) if writes else self.key()
            if not writes:
                branch.append(pb.TxnOp(set=pb.SetRequest(key=key, value=b"1")))
            if self.r.random() < 0.5:
                branch.append(pb.TxnOp(set=pb.SetRequest(key=key, value=b"2")))
            else:
                branch.append(pb.TxnOp(clear=pb.ClearRequest(key=key)))
        elif how == 1:    # a key written and inside a ClearRange of the same list
            key = self.key()
            branch.append(pb.TxnOp(set=pb.SetRequest(key=key, value=b"3")))
            branch.append(pb.TxnOp(clear_range=pb.ClearRangeRequest(prefix=key[:1])))
        elif how == 2:    # a conditional write
            key = self.key()
            if self.r.random() < 0.5:
                branch.append(pb.TxnOp(set=pb.SetRequest(key=key, value=b"c",
                                                         if_mod_revision=self.mod_condition(key))))
            else:
                branch.append(pb.TxnOp(clear=pb.ClearRequest(
                    key=key, if_mod_revision=self.mod_condition(key))))
        elif how == 3:    # a Range with prefix and start or end
            branch.append(pb.TxnOp(range=self.range_request(valid=False)))
        elif how == 4:    # a ClearRange with no selector, or prefix and start/end
            branch.append(pb.TxnOp(clear_range=self.clear_range_request(valid=False)))
        elif how == 5:    # an empty key
            kind = self.r.choice(["get", "set", "clear"])
            req = {"get": pb.GetRequest, "set": pb.SetRequest, "clear": pb.ClearRequest}[kind]()
            branch.append(pb.TxnOp(**{kind: req}))
        elif how == 6:    # an op with nothing in it
            branch.append(pb.TxnOp())
        elif how == 7:    # a compare on an empty key
            r.compare.append(pb.Compare(target=VERSION, op=GREATER))
        elif how == 8:    # two ClearRanges whose spans meet
            p = self.r.choice(PREFIXES)
            branch.append(pb.TxnOp(clear_range=pb.ClearRangeRequest(prefix=p)))
            branch.append(pb.TxnOp(clear_range=pb.ClearRangeRequest(start=p)))
        elif how == 9:    # an unknown compare target or op
            c = self.compare()
            if self.r.random() < 0.5:
                c.target = self.r.choice([4, 5, 100])
            else:
                c.op = self.r.choice([4, 9])
            r.compare.append(c)
        elif how == 10:   # a key over the limit
            kind = self.r.choice(["get", "set", "clear", "compare"])
            if kind == "compare":
                r.compare.append(pb.Compare(key=TOO_LONG_KEY, target=VERSION))
            else:
                req = {"get": pb.GetRequest, "set": pb.SetRequest,
                       "clear": pb.ClearRequest}[kind](key=TOO_LONG_KEY)
                branch.append(pb.TxnOp(**{kind: req}))
        elif how == 11:   # a TTL refused: above the maximum, or with keep_ttl
            branch.append(pb.TxnOp(set=pb.SetRequest(key=self.key(), value=b"t",
                                                     **self.bad_ttl_fields())))
        else:             # near misses, valid: spans that end where a key or span begins
            key = self.key()
            lo = self.r.choice([b for b in BOUNDS if b < key] or [b"\x00"])
            branch.append(pb.TxnOp(set=pb.SetRequest(key=key, value=b"n")))
            branch.append(pb.TxnOp(clear_range=pb.ClearRangeRequest(start=lo, end=key)))
            if self.r.random() < 0.5:
                hi = self.r.choice([b for b in BOUNDS if b > key + b"\x00"] or [b""])
                branch.append(pb.TxnOp(clear_range=pb.ClearRangeRequest(start=key + b"\x00",
                                                                        end=hi)))
        ops = list(branch)
        self.r.shuffle(ops)
        del branch[:]
        branch.extend(ops)

    def big_ops(self, n):
        """N ops, mostly reads, and at most one write per key."""
        keys = KEYS[:]
        self.r.shuffle(keys)
        ops = []
        for i in range(n):
            if keys and self.r.random() < 0.3:
                ops.append(pb.TxnOp(set=pb.SetRequest(key=keys.pop(), value=b"big")))
            elif i % 2:
                ops.append(pb.TxnOp(get=pb.GetRequest(key=self.key())))
            else:
                ops.append(pb.TxnOp(range=pb.RangeRequest(prefix=self.r.choice(PREFIXES),
                                                          count_only=True)))
        return ops

    def big_txn(self):
        """A Txn at a limit (128 compares, 128 ops in a branch) or one over."""
        n = self.r.choice([TXN_MAX_OPS, TXN_MAX_OPS + 1])
        r = pb.TxnRequest()
        which = self.r.randrange(3)
        if which == 0:
            for _ in range(n - TXN_MAX_OPS + TXN_MAX_COMPARES):
                r.compare.append(self.compare())
        else:
            r.compare.append(self.compare())
        r.success.extend(self.big_ops(n if which == 1 else self.r.randrange(4)))
        r.failure.extend(self.big_ops(n if which == 2 else self.r.randrange(4)))
        return r

    def request(self):
        """One (method, request), or ("scan", RangeRequest) for a paged read
        to the end of a range."""
        x = self.r.random()
        key = self.key()
        if x < 0.24:
            return "Set", pb.SetRequest(key=key, value=self.value(), **self.ttl_fields())
        if x < 0.33:
            return "Set", pb.SetRequest(key=key, value=self.value(),
                                        if_mod_revision=self.mod_condition(key),
                                        **self.ttl_fields())
        if x < 0.37:
            return "Clear", pb.ClearRequest(key=key)
        if x < 0.41:
            return "Clear", pb.ClearRequest(key=key, if_mod_revision=self.mod_condition(key))
        if x < 0.47:
            return "Get", pb.GetRequest(key=key)
        if x < 0.58:
            return "Range", self.range_request(valid=self.r.random() < 0.95)
        if x < 0.63:
            req = self.range_request()
            req.limit = self.r.choice([1, 1, 2, 3, 4])
            req.count_only = False
            return "scan", req
        if x < 0.67:
            return "ClearRange", self.clear_range_request(valid=self.r.random() < 0.9)
        if x < 0.91:
            return "Txn", self.txn()
        if x < 0.915:
            return "Txn", self.big_txn()
        if x < 0.95:
            # Touch: mostly a key the model holds; a new TTL, or none.
            if self.m.kv and self.r.random() < 0.8:
                key = self.r.choice(sorted(self.m.kv))
            return "Touch", pb.TouchRequest(key=key, ttl_ms=self.ttl()
                                            if self.r.random() < 0.7 else 0)
        # Oddities: an empty key or one over the limit, a key never set, a
        # TTL refused.
        y = self.r.randrange(9)
        if y >= 5:
            if y == 5:
                return "Set", pb.SetRequest(key=key, value=b"v", **self.bad_ttl_fields())
            if y == 6:
                return "Touch", pb.TouchRequest(key=key, ttl_ms=self.r.choice(
                    [TTL_MAX + 1, 2**64 - 1]))
            if y == 7:
                return "Touch", pb.TouchRequest(key=self.r.choice([b"", TOO_LONG_KEY]),
                                                ttl_ms=self.ttl())
            return "Touch", pb.TouchRequest(key=b"never-set", ttl_ms=self.ttl())
        bad = self.r.choice([b"", b"", TOO_LONG_KEY])
        if y == 0:
            return "Set", pb.SetRequest(key=bad, value=b"v")
        if y == 1:
            return "Clear", pb.ClearRequest(key=bad)
        if y == 2:
            return "Get", pb.GetRequest(key=bad)
        if y == 3:
            return "Set", pb.SetRequest(key=bad, value=b"v", if_mod_revision=0)
        return "Get", pb.GetRequest(key=b"never-set")


# ----------------------------------------------------------------- running

def show(msg):
    if msg is None:
        return "-"
    return "%s { %s }" % (type(msg).__name__, text_format.MessageToString(msg, as_one_line=True))


class Mismatch(Exception):
    pass


class WatchProblem(Exception):
    """A watch's frames break the protocol (Checker.fail reports it)."""


def ttl_holders(msg):
    """The messages of an answer or a watch event that carry a ttl_ms, in
    order, each with its key (None for a GetResponse)."""
    if isinstance(msg, pb.GetResponse):
        return [(None, msg)]
    if isinstance(msg, pb.RangeResponse):
        return [(kv.key, kv) for kv in msg.kvs]
    if isinstance(msg, pb.TxnResponse):
        out = []
        for res in msg.results:
            kind = res.WhichOneof("result")
            if kind:
                out += ttl_holders(getattr(res, kind))
        return out
    if isinstance(msg, pb.WatchEvent):
        return [(msg.kv.key, msg.kv)]
    return []


def revision_holders(msg):
    """An answer and, for a Txn, its results: what has a revision field."""
    out = [msg]
    if isinstance(msg, pb.TxnResponse):
        out += [getattr(res, res.WhichOneof("result")) for res in msg.results
                if res.WhichOneof("result")]
    return [m for m in out if "revision" in m.DESCRIPTOR.fields_by_name]


def event_revision(ev):
    """The revision of a watch event: the PUT's mod_revision, the DELETE's."""
    return ev.kv.mod_revision


def selects(req, key):
    """Whether WatchRequest REQ watches KEY: its prefix, its key alone, or
    [key, end) (an end of one zero byte: no upper bound)."""
    if req.prefix:
        return key.startswith(req.prefix)
    if req.end:
        return key >= req.key and (req.end == b"\x00" or key < req.end)
    return key == req.key


def write_revision(method, resp):
    """The revision a write's answer RESP says it made; 0 when it changed
    nothing."""
    if method == "Txn":
        wrote = False
        for res in resp.results:
            kind = res.WhichOneof("result")
            sub = getattr(res, kind) if kind else None
            wrote |= (kind == "set" or (kind == "clear" and sub.found)
                      or (kind == "clear_range" and sub.deleted > 0))
        return resp.revision if wrote else 0
    return resp.revision


def writes_key(method, req, key):
    """Whether the write METHOD REQ (of an expiry step) writes KEY."""
    if method in ("Set", "Clear"):
        return req.key == key
    if method == "ClearRange":
        return selects(pb.WatchRequest(prefix=req.prefix), key)
    if method == "Txn":
        for op in list(req.success):
            w = op_writes(op)
            if w == key or (isinstance(w, tuple) and span_has(w, key)):
                return True
    return False


class Watch:
    """A Watch on a connection of its own (wire.Connection): its answer is
    checked at once, then its stream frames are read when asked and kept
    (FRAMES, WatchResponse messages) until a check takes them. Raises
    WatchProblem on a frame that breaks the protocol."""

    def __init__(self, endpoint, req):
        self.req = req
        self.conn = wire.Connection(endpoint, timeout=WAIT)
        self.frames = []
        self.max_rev = 0            # the newest revision of an event read
        self.ended = None           # the canceled frame, once it came
        self.checked = 0            # the live watcher: checked up to this revision
        self.rid = self.conn.send("Watch", req)
        r = self.recv()
        if r.stream or r.id != self.rid:
            raise WatchProblem("the first frame after a Watch is not its answer: %s" % show(r))
        if r.code != OK:
            raise WatchProblem("Watch refused: %s %r" % (CODE_NAMES.get(r.code, r.code),
                                                         r.message))
        answer = pb.WatchResponse.FromString(r.payload)
        if answer.watch_id == 0 or answer.events or answer.canceled:
            raise WatchProblem("the Watch's answer is not a watch_id alone: %s" % show(answer))
        self.id = answer.watch_id

    def close(self):
        self.conn.close()

    def recv(self, timeout=None):
        try:
            return self.conn.recv(timeout)
        except wire.WireError as e:
            raise WatchProblem(str(e)) from None

    def read(self, timeout=None):
        """Reads one frame: a stream frame is checked and kept (returns None),
        an answer is returned."""
        r = self.recv(timeout)
        if not r.stream:
            return r
        if r.id != self.rid or r.code != OK or r.message:
            raise WatchProblem("a stream frame with id %d (the Watch's is %d), code %s, "
                               "message %r" % (r.id, self.rid, r.code, r.message))
        f = pb.WatchResponse.FromString(r.payload)
        if f.watch_id != self.id:
            raise WatchProblem("a stream frame of watch_id %d on the stream of watch %d"
                               % (f.watch_id, self.id))
        if self.ended is not None:
            raise WatchProblem("a stream frame after the watch's canceled frame: %s" % show(f))
        if f.canceled:
            self.ended = f
        for ev in f.events:
            self.max_rev = max(self.max_rev, event_revision(ev))
        self.frames.append(f)
        return None

    def wait_for(self, rev):
        """Reads until an event of revision REV or later came (bounded)."""
        deadline = time.monotonic() + WAIT
        while self.max_rev < rev:
            if self.ended is not None:
                raise WatchProblem("the watch was canceled (%r) before the events up to "
                                   "revision %d came; the last came: %d"
                                   % (self.ended.cancel_reason, rev, self.max_rev))
            left = deadline - time.monotonic()
            if left <= 0:
                raise WatchProblem("no event of revision %d within %gs; the last came: %d"
                                   % (rev, WAIT, self.max_rev))
            r = self.read(left)
            if r is not None:
                raise WatchProblem("an answer nobody asked for: %s" % show(r))

    def call(self, method, req):
        """A call on the watch's connection: returns its answer, keeping the
        stream frames that come before it."""
        cid = self.conn.send(method, req)
        while True:
            r = self.read()
            if r is not None:
                if r.id != cid:
                    raise WatchProblem("an answer with id %d, the call's is %d" % (r.id, cid))
                return r

    def sync(self):
        """A Ping on the watch's connection: the frames the server sent
        before its answer are then all read."""
        r = self.call("Ping", pb.PingRequest())
        if r.code != OK:
            raise WatchProblem("Ping on the watcher's connection: code %d %r"
                               % (r.code, r.message))

    def cancel(self):
        """CancelWatch: OK, and the stream's last frame, canceled, before it."""
        r = self.call("CancelWatch", pb.CancelWatchRequest(watch_id=self.id))
        if r.code != OK:
            raise WatchProblem("CancelWatch of watch %d: code %s %r"
                               % (self.id, CODE_NAMES.get(r.code, r.code), r.message))
        if self.ended is None:
            raise WatchProblem("CancelWatch answered before the watch's canceled frame")
        if self.ended.events or self.ended.cancel_reason != "canceled by CancelWatch" \
                or self.ended.compact_revision:
            raise WatchProblem("the canceled frame after CancelWatch: %s" % show(self.ended))
        self.frames.pop()

    def take(self):
        frames, self.frames = self.frames, []
        return frames


class Sent:
    """A request of an expiry step, sent and answered; checked later."""

    def __init__(self, method, req, code, resp, message, t0, t1, w1, sets):
        self.method, self.req = method, req
        self.code, self.resp, self.message = code, resp, message
        self.t0, self.t1, self.w1 = t0, t1, w1      # sent (monotonic), answered (monotonic, wall)
        self.sets = sets                            # the keys it gave a short TTL
        self.rev = write_revision(method, resp) if code == OK else 0
        # Where it comes among the removals by expiry: before the revision
        # it made, or, for a Txn that changed nothing, after the one it saw
        # (a Clear or ClearRange that changed nothing tells none: where it
        # was sent).
        self.after = self.rev - 1 if self.rev else (
            resp.revision if code == OK and method == "Txn" else 0)


class Checker:
    def __init__(self, seed, nops, live, out=sys.stdout):
        self.seed = seed
        self.nops = nops
        self.live = live
        self.model = Model()
        self.gen = Gen(random.Random(seed), self.model)
        self.index = 0
        self.history = []
        self.out = out
        self.counts = collections.Counter()
        self.watcher = None             # the watch of every key, from the start
        self.events_received = 0        # by our watches from this server
        self.expired_base = 0           # model.expired_total when this server started

    def fail(self, what, method, req, want, got):
        lines = ["MISMATCH (seed %d, request #%d of %d, engine %s): %s"
                 % (self.seed, self.index, self.nops, self.live.engine, what),
                 "  request:  %s %s" % (method, show(req)),
                 "  model:    %s" % want,
                 "  server:   %s" % got,
                 "  the requests before it, oldest first:"]
        lines += ["    #%d %s %s" % (i, m, show(r)) for i, m, r in self.history[-8:-1]]
        lines.append("  reproduce: KV_MODEL_SEED=%d KV_MODEL_OPS=%d KVSTORED_ENGINE=%s"
                     % (self.seed, self.nops, self.live.engine))
        raise Mismatch("\n".join(lines))

    def note(self, method, req):
        self.history.append((self.index, method, req))
        del self.history[:-10]

    def settle_ttls(self, want, got):
        """Checks each ttl_ms of GOT against the TTL that the model's WANT
        refers to at the same place (Run): above 0, at most the TTL given,
        at least that TTL less the time since its request was sent and
        TTL_SLACK_MS. Where it holds, WANT takes GOT's value; elsewhere the
        TTL given, and the problem is returned (a list of texts)."""
        problems = []
        if want is None:
            return problems
        now = time.monotonic()
        got_holders = ttl_holders(got) if got is not None else []
        for i, (key, w) in enumerate(ttl_holders(want)):
            if not w.ttl_ms:
                continue
            ttl, t0 = self.model.ttls[w.ttl_ms]
            g = None
            if i < len(got_holders):
                gkey, g = got_holders[i]
                if type(g) is not type(w) or gkey != key:
                    g = None
            lo = max(1, ttl - int((now - t0) * 1000) - TTL_SLACK_MS)
            if g is not None and lo <= g.ttl_ms <= ttl:
                w.ttl_ms = g.ttl_ms
                continue
            w.ttl_ms = ttl
            if g is not None:
                problems.append("ttl_ms of %r is %d, not in [%d, %d] (a TTL of %d ms given "
                                "%.1f s ago)" % (key, g.ttl_ms, lo, ttl, ttl, now - t0))
        return problems

    def compare(self, method, req, want_code, want, want_message, got_code, got, message,
                what="answers differ"):
        problems = self.settle_ttls(want, got) if got is not None else []
        if (want_code, want) != (got_code, got):
            self.fail("; ".join([what] + problems), method, req,
                      "%s %s" % (CODE_NAMES.get(want_code, want_code), show(want)),
                      "%s %s%s" % (CODE_NAMES.get(got_code, got_code), show(got),
                                   ' "%s"' % message if message else ""))
        if want_message is not None and not message.startswith(want_message):
            self.fail("the error's text differs", method, req, repr(want_message),
                      repr(message))

    def count(self, method, req):
        key = method
        if method == "Txn":
            key = "Txn(invalid)" if self._invalid_txn(req) else "Txn"
        elif method == "Set" and (req.ttl_ms or req.keep_ttl):
            key = "Set(invalid TTL)" if bad_ttl(req) else \
                "Set(ttl)" if req.ttl_ms else "Set(keep_ttl)"
        elif method == "Touch":
            key = "Touch(ttl)" if req.ttl_ms else "Touch(0)"
        self.counts[key] += 1

    def one(self, method, req):
        """Sends REQ to both and compares the answers; returns the answer."""
        self.note(method, req)
        self.count(method, req)
        t0 = time.monotonic()
        want_code, want, want_message = self.model.call(method, req, t0)
        got_code, got, message = self.live.call(method, req)
        self.compare(method, req, want_code, want, want_message, got_code, got, message)
        return got

    @staticmethod
    def _invalid_txn(req):
        try:
            check_txn(req)
        except Refused:
            return True
        return False

    def scan(self, req):
        """Pages through REQ's range to its end, as a client does: start =
        last key + NUL (reversed: end = last key), a prefix turned into
        its span after the first page."""
        seen = []
        for _ in range(len(KEYS) + 3):
            resp = self.one("Range", req)
            if resp is None:
                return
            seen += [kv.key for kv in resp.kvs]
            if not resp.more:
                break
            last = resp.kvs[-1].key
            nxt = pb.RangeRequest()
            nxt.CopyFrom(req)
            if req.prefix:
                nxt.prefix = b""
                nxt.start, nxt.end = req.prefix, prefix_end(req.prefix)
            if req.reverse:
                nxt.end = last
            else:
                nxt.start = last + b"\x00"
            req = nxt
        else:
            self.fail("paging did not end", "Range", req, "more = false", "more = true")
        if len(set(seen)) != len(seen):
            self.fail("paging saw a key twice", "Range", req, "distinct keys", repr(seen))

    # ------------------------------------------------------------ watches

    def open_watcher(self):
        """The watch of every key with prev_kv, on a connection of its own;
        the first Watch of this server, so its history starts now."""
        req = pb.WatchRequest(key=b"\x00", end=b"\x00", prev_kv=True)
        try:
            self.watcher = Watch(self.live.server.endpoint, req)
        except WatchProblem as e:
            self.fail(str(e), "Watch", req, "-", "-")
        self.watcher.checked = self.watcher.max_rev = self.model.rev
        self.model.start_history()

    def close_watcher(self):
        if self.watcher:
            self.watcher.close()
            self.watcher = None

    def stream_problem(self, frames, entries, prev_kv):
        """None when the events of FRAMES (WatchResponse, in the order they
        came) are exactly those of the log ENTRIES ((revision, events)), the
        events of one revision in one frame; else (what, want, got)."""
        got, frame_of = [], {}
        for i, f in enumerate(frames):
            if f.canceled:
                return ("a canceled frame (%r) in the stream" % f.cancel_reason,
                        "no cancel", show(f))
            for ev in f.events:
                rev = event_revision(ev)
                if got and rev < event_revision(got[-1]):
                    return ("events out of revision order: %d after %d"
                            % (rev, event_revision(got[-1])), "revision order", show(f))
                if frame_of.setdefault(rev, i) != i:
                    return ("the events of revision %d came in two frames (#%d, #%d): one "
                            "write's events come in one frame" % (rev, frame_of[rev], i),
                            "one frame", show(f))
                got.append(ev)
        want = []
        for rev, events in entries:
            for ev in events:
                w = pb.WatchEvent()
                w.CopyFrom(ev)
                if not prev_kv:
                    w.ClearField("prev_kv")
                want.append(w)
        for i in range(max(len(want), len(got))):
            if i >= len(got):
                return ("the stream lacks events: %d came, the model's log has %d; the first "
                        "missing one is of revision %d" % (len(got), len(want),
                                                            event_revision(want[i])),
                        show(want[i]), "-")
            if i >= len(want):
                return ("the stream has events the model's log lacks: %d came, %d in the log"
                        % (len(got), len(want)), "-", show(got[i]))
            problems = self.settle_ttls(want[i], got[i])
            if want[i] != got[i]:
                return ("; ".join(["event #%d of %d differs (revision %d)"
                                   % (i, len(want), event_revision(want[i]))] + problems),
                        show(want[i]), show(got[i]))
        return None

    def log_since(self, rev, req=None):
        """The model's log from revision REV on, only the events REQ (a
        WatchRequest) watches; revisions without any are left out."""
        out = []
        for r, events in reversed(self.model.log):
            if r < rev:
                break
            if req is not None:
                events = [ev for ev in events if selects(req, ev.kv.key)]
            if events:
                out.append((r, events))
        out.reverse()
        return out

    def check_watcher(self, why):
        """The live watcher's frames since the last check against the log."""
        w, target = self.watcher, self.model.rev
        try:
            w.wait_for(target)
            w.sync()
        except WatchProblem as e:
            self.fail("the watcher (%s): %s" % (why, e), "Watch", w.req, "-", "-")
        frames = w.take()
        self.events_received += sum(len(f.events) for f in frames)
        problem = self.stream_problem(frames, self.log_since(w.checked + 1), True)
        if problem:
            self.fail("the watcher's events (%s), revisions %d to %d: %s"
                      % (why, w.checked + 1, target, problem[0]), "Watch", w.req, *problem[1:])
        w.checked = target

    def replay(self):
        """A watch from a past revision on a connection of its own: its
        replay must be the model's log from there (or, from before the
        history kept, a compacted cancel); ended by CancelWatch."""
        m, r = self.model, self.gen.r
        oldest = m.compacted + 1
        compacted = m.compacted >= 1 and r.random() < 0.25
        # From a random revision, or one at the edge: the newest one dropped,
        # the oldest one kept.
        if compacted:
            start = m.compacted if r.random() < 0.3 else r.randint(1, m.compacted)
        else:
            start = oldest if r.random() < 0.3 else r.randint(oldest, m.rev + 1)
        y = r.random()
        if y < 0.4:
            req = pb.WatchRequest(key=b"\x00", end=b"\x00")
        elif y < 0.65:
            req = pb.WatchRequest(prefix=r.choice(PREFIXES))
        elif y < 0.85:
            req = pb.WatchRequest(key=self.gen.key())
        else:
            a, b = sorted(r.sample(BOUNDS, 2))
            req = pb.WatchRequest(key=a, end=b)
        req.start_revision = start
        req.prev_kv = r.random() < 0.5
        self.note("Watch", req)
        self.counts["Watch(compacted)" if compacted else "Watch(replay)"] += 1
        w = None
        try:
            w = Watch(self.live.server.endpoint, req)
            if compacted:
                while w.ended is None:
                    if w.read() is not None:
                        raise WatchProblem("an answer nobody asked for")
                f = w.ended
                if len(w.frames) != 1 or f.events or f.compact_revision != oldest \
                        or not f.cancel_reason.startswith("start_revision is older"):
                    self.fail("a watch from before the history kept (the oldest revision "
                              "available is %d) must be canceled at once as compacted"
                              % oldest, "Watch", req,
                              "WatchResponse { watch_id: %d canceled: true cancel_reason: "
                              "\"start_revision is older...\" compact_revision: %d }"
                              % (w.id, oldest), " ".join(show(x) for x in w.frames))
                w.sync()        # and nothing after it
                return
            entries = self.log_since(start, req)
            if entries:
                w.wait_for(entries[-1][0])
            w.cancel()
        except WatchProblem as e:
            self.fail("a watch from revision %d: %s" % (start, e), "Watch", req, "-", "-")
        finally:
            if w:
                w.close()
        frames = w.take()
        self.events_received += sum(len(f.events) for f in frames)
        problem = self.stream_problem(frames, entries, req.prev_kv)
        if problem:
            self.fail("a watch from revision %d (the store at %d): %s"
                      % (start, m.rev, problem[0]), "Watch", req, *problem[1:])

    # ------------------------------------------------------------- expiry

    def send(self, method, req, sets=()):
        """REQ sent to the server alone, its answer kept for a later check."""
        self.note(method, req)
        self.count(method, req)
        t0 = time.monotonic()
        code, resp, message = self.live.call(method, req)
        return Sent(method, req, code, resp, message, t0, time.monotonic(), time.time(),
                    list(sets))

    def expiry_step(self):
        """A few keys with TTLs of milliseconds, reads and writes of them once
        due, their removal awaited; then the step's writes are replayed on
        the model in the revision order the server's events tell."""
        m, gen, r = self.model, self.gen, self.gen.r
        self.counts["expiry step"] += 1
        base = m.rev
        keys = sorted(r.sample(KEYS, r.randint(1, 4)))
        # Often one TTL for all: due at once, they are removed together.
        same = r.randint(*TTL_SHORT) if r.random() < 0.4 else None
        ttls = {k: same or r.randint(*TTL_SHORT) for k in keys}
        if len(keys) > 1 and r.random() < 0.3:
            writes = [self.send("Txn", pb.TxnRequest(success=[
                pb.TxnOp(set=pb.SetRequest(key=k, value=gen.value(), ttl_ms=ttls[k]))
                for k in keys]), keys)]
        else:
            writes = [self.send("Set", pb.SetRequest(key=k, value=gen.value(), ttl_ms=ttls[k]),
                                [k]) for k in keys]
        for w in writes:
            if w.code != OK or not w.rev:
                self.fail("expiry step: a write of keys with a short TTL failed", w.method,
                          w.req, "OK, a revision", "%s %s %r" % (
                              CODE_NAMES.get(w.code, w.code), show(w.resp), w.message))
        last = max(w.rev for w in writes)

        # Due on both clocks (memory: monotonic; lmdb: wall), with a margin.
        due = max(w.t1 + max(ttls[k] for k in w.sets) / 1000 for w in writes) + DUE_MARGIN
        due_wall = max(w.w1 + max(ttls[k] for k in w.sets) / 1000 for w in writes) + DUE_MARGIN
        while True:
            left = max(due - time.monotonic(), due_wall - time.time())
            if left <= 0:
                break
            time.sleep(left)

        # Gone for every read at once, removed or not (the revision a read
        # reports may count removals: between the Sets' and one per key).
        k = r.choice(keys)
        p = k[:1]
        reads = [("Get", pb.GetRequest(key=k)),
                 ("Touch", pb.TouchRequest(key=r.choice(keys), ttl_ms=gen.ttl())),
                 ("Range", pb.RangeRequest(count_only=True)),
                 ("Range", pb.RangeRequest(prefix=p, keys_only=r.random() < 0.5)),
                 ("Txn", pb.TxnRequest(
                     compare=[pb.Compare(key=k, target=VERSION, op=EQUAL, number=0)],
                     success=[pb.TxnOp(get=pb.GetRequest(key=k)),
                              pb.TxnOp(range=pb.RangeRequest(prefix=p))],
                     failure=[pb.TxnOp(get=pb.GetRequest(key=k))]))]
        m.hidden = set(keys)
        for method, req in reads:
            self.note(method, req)
            self.count(method, req)
            t0 = time.monotonic()
            want_code, want, want_message = m.call(method, req, t0)
            got_code, got, message = self.live.call(method, req)
            problems = []
            if want is not None and got is not None:
                for a, b in zip(revision_holders(want), revision_holders(got)):
                    if last <= b.revision <= last + len(keys):
                        a.revision = b.revision
                    else:
                        problems.append("revision %d, not in [%d, %d]"
                                        % (b.revision, last, last + len(keys)))
            self.compare(method, req, want_code, want, want_message, got_code, got, message,
                         "; ".join(["expiry step: a read of keys past their TTL %s"
                                    % [(k, ttls[k]) for k in keys]] + problems))
        m.hidden = set()

        # Writes of some of them, which remove them first.
        for k in r.sample(keys, r.randint(0, min(2, len(keys)))):
            x = r.randrange(6)
            if x == 0:
                req = "Set", pb.SetRequest(key=k, value=gen.value(), **gen.ttl_fields())
            elif x == 1:
                req = "Set", pb.SetRequest(key=k, value=gen.value(), if_mod_revision=0)
            elif x == 2:
                req = "Clear", pb.ClearRequest(key=k)
            elif x == 3:
                req = "ClearRange", pb.ClearRangeRequest(prefix=k[:1])
            elif x == 4:
                req = "Txn", pb.TxnRequest(
                    compare=[pb.Compare(key=k, target=VERSION, op=EQUAL, number=0)],
                    success=[pb.TxnOp(set=pb.SetRequest(key=k, value=gen.value(),
                                                        **gen.ttl_fields()))],
                    failure=[pb.TxnOp(get=pb.GetRequest(key=k))])
            else:
                req = "Txn", pb.TxnRequest(success=[
                    pb.TxnOp(clear_range=pb.ClearRangeRequest(start=k, end=k + b"\x00\x00")),
                    pb.TxnOp(range=pb.RangeRequest(prefix=k[:1], count_only=True))])
            writes.append(self.send(*req))

        # Every one removed (bounded wait), counted once.
        want_total = m.expired_total + len(keys) - self.expired_base
        deadline = time.monotonic() + WAIT
        while True:
            stats = self.live.client.Stats()
            if stats.expired_keys_total >= want_total:
                break
            if time.monotonic() > deadline:
                self.fail("expiry step: keys with TTLs of %s ms not all removed within %gs"
                          % (sorted(ttls.values()), WAIT), "Stats", pb.StatsRequest(),
                          "expired_keys_total %d" % want_total,
                          "expired_keys_total %d" % stats.expired_keys_total)
            time.sleep(0.005)
        final = stats.revision
        if stats.expired_keys_total != want_total:
            self.fail("expiry step: expired_keys_total grew by more than the %d keys that "
                      "expired" % len(keys), "Stats", pb.StatsRequest(),
                      "expired_keys_total %d" % want_total,
                      "expired_keys_total %d" % stats.expired_keys_total)

        # The step's revisions, from the watcher's events.
        try:
            self.watcher.wait_for(final)
            self.watcher.sync()
        except WatchProblem as e:
            self.fail("expiry step: the watcher: %s" % e, "Watch", self.watcher.req, "-", "-")
        by_rev = collections.OrderedDict()
        for f in self.watcher.frames:
            for ev in f.events:
                if event_revision(ev) > base:
                    by_rev.setdefault(event_revision(ev), []).append(ev)
        steps = "; the step's writes: %s" % ", ".join(
            "%s -> %s" % (w.method, w.rev) for w in writes)
        if list(by_rev) != list(range(base + 1, final + 1)):
            self.fail("expiry step: the watcher's revisions are not those from the store's "
                      "%d to Stats.revision %d%s" % (base, final, steps), "Watch",
                      self.watcher.req, list(range(base + 1, final + 1)), list(by_rev))
        write_revs = [w.rev for w in writes if w.rev]
        if write_revs != sorted(set(write_revs)) or (write_revs and write_revs[-1] > final):
            self.fail("expiry step: the writes' revisions are not increasing, up to %d%s"
                      % (final, steps), "-", None, "increasing", write_revs)
        removed_at = {}
        expiries = [rv for rv in by_rev if rv not in write_revs]
        for rv in expiries:
            events = by_rev[rv]
            ks = [ev.kv.key for ev in events]
            if not all(ev.type == DELETE and ev.expired for ev in events) \
                    or any(key not in ttls or key in removed_at for key in ks):
                self.fail("expiry step: revision %d, which none of the step's writes made, "
                          "holds events other than removals by expiry of the keys %s, each "
                          "once%s" % (rv, keys, steps), "Watch", self.watcher.req,
                          "DELETE expired events", " ".join(show(ev) for ev in events))
            if ks != sorted(ks):
                self.fail("expiry step: the keys an expiry removes at one revision (%d) come "
                          "in key order" % rv, "Watch", self.watcher.req, sorted(ks), ks)
            for key in ks:
                removed_at[key] = rv
            self.counts["expiry revision of %s" % ("1 key" if len(ks) == 1 else "2+ keys")] += 1
        if sorted(removed_at) != keys:
            self.fail("expiry step: not every key with a short TTL was removed by expiry, "
                      "once%s" % steps, "Watch", self.watcher.req, keys, sorted(removed_at))
        for w in writes:
            # Removed after the write that gave the TTL, before one that writes the key.
            for key in w.sets:
                if removed_at[key] < w.rev:
                    self.fail("expiry step: %r removed (revision %d) before its Set (%d)"
                              % (key, removed_at[key], w.rev), w.method, w.req, "-", "-")
            if w.after and not w.sets:
                for key in keys:
                    if writes_key(w.method, w.req, key) and removed_at[key] > w.after:
                        self.fail("expiry step: %r, expired, was written (the store at "
                                  "revision %d) before its removal (%d): a write removes an "
                                  "expired key first" % (key, w.after, removed_at[key]),
                                  w.method, w.req, "-", "-")

        # The model replays the step's writes and removals in revision order.
        pending = collections.deque(expiries)
        for w in writes:
            while w.after and pending and pending[0] <= w.after:
                self.expire(pending.popleft(), by_rev, steps)
            want_code, want, want_message = m.call(w.method, w.req, w.t0)
            self.compare(w.method, w.req, want_code, want, want_message, w.code, w.resp,
                         w.message, "expiry step: answers differ (the step's writes replayed "
                         "in revision order%s)" % steps)
            m.hidden.update(w.sets)
        while pending:
            self.expire(pending.popleft(), by_rev, steps)
        if m.rev != final or m.hidden:
            self.fail("expiry step: after the replay the model is at revision %d with %s "
                      "expired, not removed%s" % (m.rev, sorted(m.hidden), steps), "Stats",
                      pb.StatsRequest(), m.rev, final)

    def expire(self, rev, by_rev, steps):
        if rev != self.model.rev + 1:
            self.fail("expiry step: a removal by expiry at revision %d where the model is at "
                      "%d%s" % (rev, self.model.rev, steps), "Watch", self.watcher.req,
                      self.model.rev + 1, rev)
        self.model.expire(rev, [ev.kv.key for ev in by_rev[rev]])

    # -------------------------------------------------------------- checks

    def check_all(self, why):
        """The whole store, Stats and the watcher against the model."""
        m = self.model
        self.one("Range", pb.RangeRequest())
        self.one("Range", pb.RangeRequest(reverse=True, keys_only=True))
        self.check_watcher(why)
        stats = self.live.client.Stats()
        want = (m.rev, len(m.kv), m.with_ttl(), m.expired_total - self.expired_base, 1,
                self.events_received, m.compacted + 1)
        got = (stats.revision, stats.keys, stats.keys_with_ttl, stats.expired_keys_total,
               stats.watchers, stats.watch_events_total, stats.watch_history_oldest)
        if want != got:
            names = ("revision", "keys", "keys_with_ttl", "expired_keys_total", "watchers",
                     "watch_events_total", "watch_history_oldest")
            self.fail("Stats differ (%s)" % why, "Stats", pb.StatsRequest(),
                      " ".join("%s %d" % x for x in zip(names, want)),
                      " ".join("%s %d" % x for x in zip(names, got)))

    def restart(self, kill):
        self.check_all("before the restart")
        self.close_watcher()
        self.model.stop_history()
        self.live.restart(kill)
        self.events_received = 0
        self.expired_base = self.model.expired_total
        print("test_model: %s kvstored and restarted it on its data after request #%d"
              % ("killed (-9)" if kill else "stopped", self.index), flush=True)
        self.open_watcher()
        self.check_all("after a restart on the same data")
        self.replay()

    def run(self, check_every=100, expiry_every=150):
        # An engine that keeps files restarts on them half-way, and is
        # killed (-9) at three quarters: every answered write must be kept
        # (--sync always, lmdb's default), the revision going on from there;
        # the watch history starts again with the first Watch after.
        restarts = {self.nops // 2: False, self.nops * 3 // 4: True} if self.live.dir else {}
        self.open_watcher()
        self.check_all("at the start")
        for self.index in range(self.nops):
            if self.gen.r.random() < 1 / expiry_every:
                self.expiry_step()
                self.check_all("after an expiry step")
            method, req = self.gen.request()
            if method == "scan":
                self.scan(req)
            else:
                self.one(method, req)
            if self.index % check_every == check_every - 1:
                self.check_all("every %d requests" % check_every)
                if self.gen.r.random() < 0.4:
                    self.replay()
            if self.index in restarts:
                self.restart(restarts[self.index])
        self.check_all("at the end")
        self.replay()
        self.check_all("at the end, after a replay")

    def close(self):
        self.close_watcher()


def run_one(seed, nops):
    print("test_model: seed %d, %d requests, engine %s (KV_MODEL_SEED=%d to repeat)"
          % (seed, nops, os.environ.get("KVSTORED_ENGINE") or "memory", seed), flush=True)
    live = Live()
    t0 = time.monotonic()
    checker = Checker(seed, nops, live)
    try:
        try:
            checker.run()
        except Mismatch as e:
            print(e, flush=True)
            return False
    finally:
        checker.close()
        live.close()
    print("test_model: seed %d passed: %d requests in %.1f s, store revision %d, %d keys; %s"
          % (seed, nops, time.monotonic() - t0, checker.model.rev, len(checker.model.kv),
             ", ".join("%s %d" % kv for kv in sorted(checker.counts.items()))), flush=True)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int,
                    default=int(os.environ.get("KV_MODEL_SEED") or time.time_ns() % 2**32))
    ap.add_argument("--ops", type=int, default=int(os.environ.get("KV_MODEL_OPS") or 3000))
    ap.add_argument("--runs", type=int, default=1,
                    help="run this many seeds: SEED, SEED + 1, ...")
    args = ap.parse_args()
    for i in range(args.runs):
        if not run_one(args.seed + i, args.ops):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
