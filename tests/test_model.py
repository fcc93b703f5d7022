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

Run by meson test once per engine ($KVSTORED_ENGINE, as every Python
suite: tests/support/kvstored.py). The seed comes from $KV_MODEL_SEED, or
the clock, and is always printed; $KV_MODEL_OPS sets the number of
requests (default 3000), --runs N runs N seeds in a row (meson: 3). On
the first mismatch it prints the seed, the request's index, the request,
both answers and the requests before it, and exits 1. By hand:

    KVSTORED=build/src/kvstored PYTHONPATH=tests/support:client/python:build/client/python \\
        KV_MODEL_SEED=42 /usr/bin/python3 tests/test_model.py [--seed N] [--ops N] [--runs N]

Speaks the wire with the Python client's generic stubs (one method per rpc,
taking and returning the generated kv_pb2 messages). Debian's
/usr/bin/python3 and python3-protobuf.
"""

import argparse
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

OK, INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION = 0, 3, 5, 9
CODE_NAMES = {0: "OK", 3: "INVALID_ARGUMENT", 5: "NOT_FOUND", 9: "FAILED_PRECONDITION",
              12: "UNIMPLEMENTED"}

VALUE, MOD_REVISION, CREATE_REVISION, VERSION = 0, 1, 2, 3
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


class Run:
    """One request's work on a copy of the model's keys: every write made at
    revision NEW (the same for all the writes of a Txn); committed by the
    caller when nothing was refused."""

    def __init__(self, kv, rev, in_txn):
        self.kv = kv            # key -> (value, create_revision, mod_revision, version)
        self.base = rev
        self.new = rev + 1
        self.changed = False
        self.in_txn = in_txn

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
                              version=e[3], revision=self.read_revision(), found=True)

    def condition(self, r):
        if r.HasField("if_mod_revision"):
            e = self.kv.get(r.key)
            current = e[2] if e else 0
            if current != r.if_mod_revision:
                raise Refused(FAILED_PRECONDITION, "if_mod_revision %d does not hold: %s" % (
                    r.if_mod_revision, "the key's mod_revision is %d" % current if e
                    else "the key does not exist"))

    def set(self, r):
        if bad_key(r.key):
            raise Refused(INVALID_ARGUMENT)
        self.condition(r)
        e = self.kv.get(r.key)
        self.kv[r.key] = ((r.value, e[1], self.new, e[3] + 1) if e else
                          (r.value, self.new, self.new, 1))
        self.changed = True
        return pb.SetResponse(key=r.key, revision=self.new)

    def clear(self, r):
        if bad_key(r.key):
            raise Refused(INVALID_ARGUMENT)
        self.condition(r)
        e = self.kv.pop(r.key, None)
        if e is None:
            return pb.ClearResponse(found=False)
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
                        mod_revision=e[2], version=e[3])
        return out

    def clear_range(self, r):
        check_selector(r.start, r.end, r.prefix, clearing=True)
        keys = self.select(r.start, r.end, r.prefix)
        for k in keys:
            del self.kv[k]
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


def check_txn(r):
    """The refusals of a Txn as a whole, before anything runs: INVALID_ARGUMENT
    for too many compares or ops in a branch, an op that is not set or not
    valid (in either list, run or not), a conditional write, a key written
    twice in one list, or a compare on an empty key or with an unknown
    target or op."""
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
            if kind in ("range", "clear_range"):
                check_selector(req.start, req.end, req.prefix, kind == "clear_range")
        if branch_writes_twice(ops):
            raise Refused(INVALID_ARGUMENT)


class Model:
    """The reference: keys -> (value, create_revision, mod_revision,
    version) and the store's revision."""

    def __init__(self):
        self.kv = {}
        self.rev = 0

    def call(self, method, req):
        """Returns (code, response or None, how the error's text begins, or
        None when any will do)."""
        run = Run(dict(self.kv), self.rev, in_txn=False)
        try:
            if method == "Txn":
                resp = self.txn(run, req)
            else:
                resp = getattr(run, METHOD_RUN[method])(req)
        except Refused as e:
            return e.code, None, e.message
        if run.changed:
            self.kv, self.rev = run.kv, run.new
        if method == "Txn":
            resp.revision = self.rev
        return OK, resp, None

    def holds(self, c):
        e = self.kv.get(c.key)
        if c.target == VALUE:
            return e is not None and compare_holds(c.op, e[0], c.value)
        mine = 0 if e is None else {MOD_REVISION: e[2], CREATE_REVISION: e[1],
                                    VERSION: e[3]}[c.target]
        return compare_holds(c.op, mine, c.number)

    def txn(self, run, r):
        check_txn(r)
        run.in_txn = True
        ok = all(self.holds(c) for c in r.compare)
        out = pb.TxnResponse(succeeded=ok)
        for op in (r.success if ok else r.failure):
            kind = op_field(op)
            result = getattr(run, kind)(getattr(op, kind))
            getattr(out.results.add(), kind).CopyFrom(result)
        return out


METHOD_RUN = {"Get": "get", "Set": "set", "Clear": "clear", "Range": "range",
              "ClearRange": "clear_range"}


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
            op = pb.TxnOp(set=pb.SetRequest(key=self.key(), value=self.value()))
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
        how = self.r.randrange(12)
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
            return "Set", pb.SetRequest(key=key, value=self.value())
        if x < 0.33:
            return "Set", pb.SetRequest(key=key, value=self.value(),
                                        if_mod_revision=self.mod_condition(key))
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
        if x < 0.95:
            return "Txn", self.txn()
        if x < 0.955:
            return "Txn", self.big_txn()
        # Oddities: an empty key or one over the limit, a key never set.
        y = self.r.randrange(5)
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
        self.counts = {}

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

    def one(self, method, req):
        """Sends REQ to both and compares the answers; returns the answer."""
        self.history.append((self.index, method, req))
        del self.history[:-10]
        key = method
        if method == "Txn":
            key = "Txn(invalid)" if self._invalid_txn(req) else "Txn"
        self.counts[key] = self.counts.get(key, 0) + 1
        want_code, want, want_message = self.model.call(method, req)
        got_code, got, message = self.live.call(method, req)
        if (want_code, want) != (got_code, got):
            self.fail("answers differ", method, req,
                      "%s %s" % (CODE_NAMES.get(want_code, want_code), show(want)),
                      "%s %s%s" % (CODE_NAMES.get(got_code, got_code), show(got),
                                   ' "%s"' % message if message else ""))
        if want_message is not None and not message.startswith(want_message):
            self.fail("the error's text differs", method, req, repr(want_message),
                      repr(message))
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

    def check_all(self, why):
        """The whole store and Stats against the model."""
        self.one("Range", pb.RangeRequest())
        self.one("Range", pb.RangeRequest(reverse=True, keys_only=True))
        stats = self.live.client.Stats()
        if (stats.revision, stats.keys) != (self.model.rev, len(self.model.kv)):
            self.fail("Stats differ (%s)" % why, "Stats", pb.StatsRequest(),
                      "revision %d keys %d" % (self.model.rev, len(self.model.kv)),
                      "revision %d keys %d" % (stats.revision, stats.keys))

    def run(self, check_every=100):
        # An engine that keeps files restarts on them half-way, and is
        # killed (-9) at three quarters: every answered write must be kept
        # (--sync always, lmdb's default), the revision going on from there.
        restarts = {self.nops // 2: False, self.nops * 3 // 4: True} if self.live.dir else {}
        self.check_all("at the start")
        for self.index in range(self.nops):
            method, req = self.gen.request()
            if method == "scan":
                self.scan(req)
            else:
                self.one(method, req)
            if self.index % check_every == check_every - 1:
                self.check_all("every %d requests" % check_every)
            if self.index in restarts:
                kill = restarts[self.index]
                self.check_all("before the restart")
                self.live.restart(kill)
                print("test_model: %s kvstored and restarted it on its data after request #%d"
                      % ("killed (-9)" if kill else "stopped", self.index), flush=True)
                self.check_all("after a restart on the same data")
        self.check_all("at the end")


def run_one(seed, nops):
    print("test_model: seed %d, %d requests, engine %s (KV_MODEL_SEED=%d to repeat)"
          % (seed, nops, os.environ.get("KVSTORED_ENGINE") or "memory", seed), flush=True)
    live = Live()
    t0 = time.monotonic()
    try:
        checker = Checker(seed, nops, live)
        try:
            checker.run()
        except Mismatch as e:
            print(e, flush=True)
            return False
    finally:
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
