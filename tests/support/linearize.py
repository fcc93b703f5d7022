"""linearize - the linearizability checker of kvstore's fault tests (issue 15).

It owns one question: can the operations a test recorded against kvstore,
each with the time it was sent and the time its answer came back (or none:
it timed out), be put in one order that respects real time and kvstore's
data model? Per key, by the search of Wing & Gong with Lowe's improvements.
It talks to no server: tests/test_linearize.py tests it on histories known
to be linearizable and known not to be. Debian's /usr/bin/python3, stdlib
only.

    from linearize import Op, check, Recorder

    rec = Recorder()                        # thread-safe, time.monotonic()
    op = rec.invoke("c1", b"k", "set", value=b"v1")
    ...                                     # send the request
    rec.complete(op, "ok", revision=7)      # or never: it stays "info"
    result = check(rec.history())           # or check([Op(...), ...])
    assert result.ok, result.report()

By hand, on a history saved with dump_history (JSON: an array of objects, or
one object a line, with Op's field names; values are JSON strings):

    /usr/bin/python3 tests/support/linearize.py HISTORY.json [--max-steps N]

prints the report and exits 0 (linearizable), 1 (not) or 2 (unknown).

History
-------
A list of Op (or dicts with the same fields; any order, every key mixed):

    process   who sent it (any value; a client id): used only in reports
    key       the key (any hashable value)
    kind      "get", "set", "cas" (a set with if_mod_revision) or "delete"
              (Clear, with if_mod_revision when expect is given)
    invoke    when the request was sent (a number; one clock for all)
    complete  when the answer came back; None when none did
    status    "ok"                   it took effect (a get: it read)
              "failed_precondition"  a cas/conditional delete that found
                                     mod_revision != expect: nothing changed
              "fail"                 certainly not applied (refused before
                                     it ran, e.g. UNAVAILABLE): ignored
              "info"                 unknown: timed out, the connection lost;
                                     it may take effect once at any time
                                     after invoke, or never (Jepsen's :info,
                                     complete = +infinity). An info get says
                                     nothing and is ignored.
    value     set/cas: the value written (not None)
    expect    cas/delete: if_mod_revision (0: only if absent); cas needs it
    read      get ok: the value read, None for NOT_FOUND (absent);
              delete ok: the old value (ClearResponse.value) when found,
              None when not recorded
    found     delete ok: ClearResponse.found (None: not recorded)
    revision  set/cas/delete ok: the revision the write made (None or 0: not
              recorded / nothing deleted)
    mod_revision  get ok: the key's mod_revision as read (None: not
              recorded); failed_precondition: the key's mod_revision the
              error text named ("... the key's mod_revision is M"; 0 when it
              did not exist), None when not recorded

An info op carries no result (read, found, revision, mod_revision: a
history that gives one is refused with ValueError, as is any malformed op).
Record mod_revision wherever kvstore reports it: the checker then also
catches reads and preconditions that saw the right value at the wrong
revision, and can drop more unknown writes before the search (below).
Values should be unique per write: repeated values are checked right, but
the reports, the dropping and the deadlines below work on unique ones.

Times: an operation ends before another starts only when its complete is
strictly less than the other's invoke; equal times count as overlapping
(the safe side).

The model, per key
------------------
A register holding (value or absent, mod_revision), kvstore's data model
(docs/PROTOCOL.md): a set makes the key present with a new store-wide
revision, a delete of a present key makes it absent (mod_revision 0) with a
new revision, a delete of an absent key changes nothing, a cas/conditional
delete applies only when the key's mod_revision equals expect (absent
counts 0) and otherwise fails changing nothing. Revisions are global, so
per key they only grow: the state also carries a floor, the highest
revision known to have been made on the key, and a write's recorded
revision must exceed it. A read must match the value (and the recorded
mod_revision); a delete its found and old value; a failed precondition
the mod_revision it named.

Unknown revisions. A write that completed gives its revision; an info write
(or an ok one recorded without it) does not. Its state is (value, ?): the
revision is some integer above the floor that is not the revision of any
completed write of the whole history (revisions are unique store-wide; a
Txn's writes share one, but that is the Txn's own) and not one a read saw
carrying a different value. A read reporting mod_revision M, a failed
precondition naming M, or a cas that succeeded expecting E pins the ? to M
or E when those rules allow it (the floor rises to it); a failed cas with
no M recorded is accepted against ? (the revision might have been anything
else). Every choice errs towards "linearizable": the checker never calls a
history non-linearizable that has a linearization in this model; it can
miss an anomaly only through such a ? (and, checking keys apart, cannot see
that two unknown writes on two keys claimed one revision).

Not modelled: expiry (keep TTLs out of checked histories, or record the
removals as info deletes). A Txn is recorded as one op per key it touches,
each with the Txn's times, status and revision (its compares: a get, or a
cas that failed); checking keys apart is sound for it (every key's history
of a linearizable run is linearizable), not complete.

The search
----------
Per key (linearizability is local: Lowe's partitioning), the search of
Wing & Gong: the calls and returns in time order; linearize first an op
whose call precedes every pending return (a minimal op), backtrack when a
return is reached whose op could not be placed; with Lowe's memo of the
configurations seen (ops linearized, model state), never explored twice.
Info ops have no return: each may be linearized any time after its call,
or never; the search succeeds once every completed op is linearized. What
keeps timeouts from doubling the work each, all sound (dropping or merging
only what cannot change the verdict; tests/test_linearize.py checks the
whole against a plain search on small histories):

- Dropped before the search: an info set/cas whose value no op read and
  whose revision nothing could have pinned (among the ops that end after
  it began: no expect, mod_revision or failed precondition naming a
  revision it could have had, above those of the key's writes completed
  before it began; no failed precondition without mod_revision; no ok
  delete that found the key without its old value recorded). It can only
  have been overwritten unseen.
- Deadlines: an info set/cas that is its value's only write, whose value a
  completed op read, took effect before that read ended: it is searched as
  an op that completed then.
- Values no op read are one placeholder value to the search; info ops of
  the same effect (deletes with the same expect; sets, or cas with the same
  expect, of unread values) form a class, of which only the earliest
  invoked one not yet linearized is tried, and a class expecting revision
  E > 0 only while E is above the floor or is the mod_revision (revisions
  only grow).
- Info ops are tried after the completed candidates, and the memo keeps,
  per (completed ops linearized, state), the counts of info ops linearized
  per class: a configuration is skipped when one with no more of any class
  was reached (an info op may also never happen, so it can do no more).

Each key's search is bounded by max_steps (default 5,000,000; a step is one
candidate tried or one backtrack, about 1 to 3 million a second); past it
the key is "unknown", never a guess. Measured on histories of
tests/test_linearize.py's simulated store: 5 clients, 4 keys, 1,200 ops
with 4% timeouts: linearizable in under 10 ms, a stale read found and
explained in about 10 ms. One key of 1,500 ops from 5 clients with 15%
timeouts and half the revisions unrecorded: linearizable in about 25 ms;
a stale read refuted in 0.2 to 2.4 s (the search must rule out every order
up to it), in 7 of 8 seeds within the default max_steps (the eighth needs
about 11 million steps). Keep keys to a few hundred ops each, or raise
max_steps.

The result
----------
check() returns a Result: verdict LINEARIZABLE, NOT_LINEARIZABLE (some key
is not) or UNKNOWN (none is not, some gave up); .ok; .keys: key ->
KeyResult (verdict, steps, the ops searched, how many info writes were
dropped, the linearization found, or the explanation and its core);
.failures() the keys not shown linearizable; .report() the text.

For a key that is not linearizable the explanation is a core: a small
subset of its operations that is itself not linearizable (checked) and in
which every value read still has a write of it. It is found by looking for
a stale read directly (a read, the writes of its value, and a write that
changed the key after them and completed before the read began), else by
cutting the history at the deepest point the search reached, then shrunk
by delta debugging, all within explain_steps. One sentence names the
anomaly when it is a known one: a read of a value never written; a stale
read or lost write ("read of k at [t1, t2] returned v1 (from v1's write at
[..]), but v2 was written at [..], after that, and completed before the
read started"); a read at another revision than its write made; a cas
whose expectation could not hold; two clients seeing two writes in
opposite orders; revisions going backwards. Then the core's operations are
listed, one a line (describe()).
"""

import bisect
import dataclasses
import json
import math
import sys
import threading
import time

LINEARIZABLE = "linearizable"
NOT_LINEARIZABLE = "not linearizable"
UNKNOWN = "unknown"

KINDS = ("get", "set", "cas", "delete")
STATUSES = ("ok", "failed_precondition", "fail", "info")

DEFAULT_MAX_STEPS = 5_000_000

INF = math.inf
SYM = -1  # the mod_revision of a write whose revision is unknown ("?")
_UNREAD = object()  # the value of writes no op read, in the search


@dataclasses.dataclass(eq=False)
class Op:
    """One operation of a history; the fields are described in the module's
    docstring. Compared by identity."""
    process: object
    key: object
    kind: str
    invoke: float
    complete: object = None
    status: str = "ok"
    value: object = None
    expect: object = None
    read: object = None
    found: object = None
    revision: object = None
    mod_revision: object = None

    FIELDS = ("process", "key", "kind", "invoke", "complete", "status", "value",
              "expect", "read", "found", "revision", "mod_revision")

    def to_dict(self):
        """The fields that are set (JSON-ready when process, key and values are)."""
        d = {}
        for f in self.FIELDS:
            v = getattr(self, f)
            if v is not None or f in ("process", "key", "kind", "invoke"):
                d[f] = v
        return d

    @classmethod
    def from_dict(cls, d):
        unknown = set(d) - set(cls.FIELDS)
        if unknown:
            raise ValueError("unknown op fields %s in %r" % (sorted(unknown), d))
        return cls(**d)

    @property
    def is_info(self):
        return self.status == "info"

    def __repr__(self):
        return "Op(%s)" % describe(self)


def _t(x):
    if x is None or x == INF:
        return "inf"
    if isinstance(x, int):
        return str(x)
    s = "%.6f" % x
    return s.rstrip("0").rstrip(".") if "." in s else s


def _interval(op):
    if op.is_info:
        return "[%s, inf)" % _t(op.invoke)
    return "[%s, %s]" % (_t(op.invoke), _t(op.complete))


def describe(op):
    """One line for an op: "c1 set k = 'v' -> ok, revision 5 at [1, 2]"."""
    k, st = op.kind, op.status
    head = "%s %s %r" % (op.process, k, op.key)
    if k in ("set", "cas"):
        head += " = %r" % (op.value,)
    if op.expect is not None:
        head += " if mod_revision %s" % op.expect
    if st == "info":
        out = "unknown (info)"
    elif st == "fail":
        out = "fail (not applied)"
    elif st == "failed_precondition":
        out = "failed precondition"
        if op.mod_revision is not None:
            out += " (mod_revision %s)" % op.mod_revision
    elif k == "get":
        out = "absent" if op.read is None else repr(op.read)
        if op.mod_revision is not None and op.read is not None:
            out += " (mod_revision %s)" % op.mod_revision
    elif k == "delete":
        if op.found is False or op.revision == 0:
            out = "ok, not found"
        else:
            out = "ok"
            if op.read is not None:
                out += ", found %r" % (op.read,)
            elif op.found:
                out += ", found"
            if op.revision:
                out += ", revision %s" % op.revision
    else:
        out = "ok" + (", revision %s" % op.revision if op.revision is not None else "")
    return "%s -> %s at %s" % (head, out, _interval(op))


def _validate(op):
    def bad(why):
        raise ValueError("bad op (%s): %r" % (why, op.__dict__))
    if op.kind not in KINDS:
        bad("kind must be one of %s" % (KINDS,))
    if op.status not in STATUSES:
        bad("status must be one of %s" % (STATUSES,))
    if op.invoke is None:
        bad("no invoke time")
    if op.status == "info":
        if any(getattr(op, f) is not None for f in ("read", "found", "revision",
                                                     "mod_revision")):
            bad("an info op has no result (read, found, revision, mod_revision)")
    else:
        if op.complete is None:
            bad("a completed op needs complete (no answer: status 'info')")
        if op.complete < op.invoke:
            bad("complete before invoke")
    if op.kind == "cas" and op.expect is None:
        bad("a cas needs expect")
    if op.kind in ("get", "set") and op.expect is not None:
        bad("expect on a %s (a conditional set is a cas)" % op.kind)
    if op.kind in ("set", "cas") and op.value is None:
        bad("a write needs a value")
    if op.status == "failed_precondition" and op.expect is None:
        bad("failed_precondition without expect")
    if op.expect is not None and (not isinstance(op.expect, int) or op.expect < 0):
        bad("expect must be an integer >= 0")
    for f in ("revision", "mod_revision"):
        v = getattr(op, f)
        if v is not None and (not isinstance(v, int) or v < 0):
            bad("%s must be an integer >= 0" % f)
    if op.status == "failed_precondition" and op.mod_revision == op.expect:
        bad("a precondition that failed naming the revision it expected")


class _Model:
    """The per-key register with revisions. A state is (value or None,
    mod_revision or SYM, floor); step() gives the state after an op, or
    None when the op cannot take effect (with its recorded result) in that
    state."""

    def __init__(self, known, seen):
        self.known = known  # revisions of completed writes, every key
        self.seen = seen    # revision -> values reads saw with it

    def can_bind(self, value, x, floor):
        if x <= floor or x in self.known:
            return False
        vs = self.seen.get(x)
        return vs is None or value in vs

    def holds(self, state, expect):
        value, modrev, floor = state
        if modrev == SYM:
            if self.can_bind(value, expect, floor):
                return (value, expect, expect)
            return None
        return state if modrev == expect else None

    def failed(self, state, op):
        value, modrev, floor = state
        m = op.mod_revision
        if modrev == SYM:
            if m is None:
                return state
            if self.can_bind(value, m, floor):
                return (value, m, m)
            return None
        if modrev == op.expect or (m is not None and m != modrev):
            return None
        return state

    def step(self, state, op):
        kind = op.kind
        if kind == "get":
            value, modrev, floor = state
            if op.read != value:
                return None
            m = op.mod_revision
            if m is None:
                return state
            if value is None:
                return state if m == 0 else None
            if modrev == SYM:
                return (value, m, m) if self.can_bind(value, m, floor) else None
            return state if m == modrev else None
        if op.status == "failed_precondition":
            return self.failed(state, op)
        if op.expect is not None:
            state = self.holds(state, op.expect)
            if state is None:
                return None
        value, modrev, floor = state
        r = op.revision or None
        if kind == "delete":
            if value is None:
                if op.found or r:
                    return None
                return state
            if op.found is False:
                return None
            if op.read is not None and op.read != value:
                return None
            if r is None:
                return (None, 0, floor)
            return (None, 0, r) if r > floor else None
        if r is None:
            return (op.value, SYM, floor)
        return (op.value, r, r) if r > floor else None


def _deadlines(ops, init):
    """When each op must have taken effect: its complete; for an info op,
    infinity, except an info set/cas that is the only writer of its value
    (not the initial one) and whose value a completed op read: it took
    effect before the first such read ended."""
    deadline = [INF if op.is_info else op.complete for op in ops]
    writers = {}
    for op in ops:
        if op.kind in ("set", "cas"):
            writers[op.value] = writers.get(op.value, 0) + 1
    ends = {}
    for op in ops:
        if op.status == "ok" and op.kind in ("get", "delete") and op.read is not None:
            ends[op.read] = min(ends.get(op.read, INF), op.complete)
    for i, op in enumerate(ops):
        if op.is_info and op.kind in ("set", "cas") and writers[op.value] == 1 \
                and op.value != init[0] and op.value in ends:
            deadline[i] = max(ends[op.value], op.invoke)
    return deadline


def _search(ops, init, model, max_steps):
    """Wing & Gong with Lowe's memo over ops (one key). Returns (verdict,
    steps, the indices of the ops linearized in order or None, the index of
    the op whose return stopped the deepest attempt or None).

    The calls and returns of completed ops are a doubly linked list in time
    order; the candidates are the calls before the first return (an info
    write that a completed op read counts as completed: _deadlines). The
    other info ops are candidates once invoked by that return's time, tried
    after the completed ones, by class: the ops of a class have the same
    effect (deletes with the same expect; sets, or cas with the same expect,
    of values no op read, which the model sees as one placeholder value),
    so only the earliest invoked one not yet linearized is tried, and a
    class expecting a revision E > 0 only while E is above the key's floor
    or is its mod_revision (revisions only grow). The memo maps (completed
    ops linearized, state) to the counts of info ops linearized per class;
    a configuration is skipped when one with the same completed ops and
    state and no more of any class was reached before, since an info op may
    also never take effect (and trying info ops last reaches those with
    fewer first)."""
    deadline = _deadlines(ops, init)
    # Values no op read are all alike to the model: one placeholder.
    reads = {op.read for op in ops if op.status == "ok" and op.read is not None}
    ops = [dataclasses.replace(op, value=_UNREAD)
           if op.kind in ("set", "cas") and op.value not in reads else op for op in ops]
    events = []
    classes = {}
    for i, op in enumerate(ops):
        if deadline[i] == INF:
            c = (op.kind, op.value, op.expect) if op.kind == "delete" or \
                op.value is _UNREAD else ("op", i)
            classes.setdefault(c, []).append(i)
        else:
            events.append((op.invoke, 0, i))
            events.append((deadline[i], 1, i))
    events.sort(key=lambda e: (e[0], e[1]))  # calls before returns at a tie
    m = len(events)
    tail = m + 1
    ent_op = [-1] * (m + 2)
    ent_call = [False] * (m + 2)
    ent_time = [INF] * (m + 2)
    call_of = [0] * len(ops)
    ret_of = [-1] * len(ops)
    for j, (t, is_ret, i) in enumerate(events, 1):
        ent_op[j], ent_time[j] = i, t
        if is_ret:
            ret_of[i] = j
        else:
            ent_call[j] = True
            call_of[i] = j
    nxt = list(range(1, m + 2)) + [tail]
    prv = [0] + list(range(0, m + 1))
    total = remaining = m // 2
    if remaining == 0:
        return LINEARIZABLE, 0, [], None

    # The info classes 1..nc, members by invoke time; taken[c] of them are
    # linearized (always the first ones); first[c]: when the next one was
    # invoked (INF: none left). Their counts live in fields of one int
    # (ilin), each with a guard bit on top: y <= x in every field iff
    # ((x | guard) - y) & guard == guard.
    members = [[]] + [sorted(v, key=lambda i: ops[i].invoke)
                      for v in sorted(classes.values(), key=lambda v: min(
                          ops[i].invoke for i in v))]
    nc = len(members) - 1
    first = [INF] + [ops[mc[0]].invoke for mc in members[1:]]
    taken = [0] * (nc + 1)
    unit = [0] * (nc + 1)
    guard = shift = 0
    for c in range(1, nc + 1):
        width = len(members[c]).bit_length() + 1
        unit[c] = 1 << shift
        guard |= 1 << (shift + width - 1)
        shift += width
    # Classes without an expected revision > 0: a linked list (head 0,
    # tail nc + 1) by first invoke; a class leaves it when none is left.
    expect = [None] + [ops[mc[0]].expect for mc in members[1:]]
    la = [c for c in range(1, nc + 1) if not expect[c]]
    cnxt = [nc + 1] * (nc + 2)
    cprv = [0] * (nc + 2)
    for a, b in zip([0] + la, la + [nc + 1]):
        cnxt[a], cprv[b] = b, a
    # The others by expected revision, with the earliest first invoke from
    # each position on, and by revision for the one matching mod_revision.
    lb = sorted((c for c in range(1, nc + 1) if expect[c]), key=lambda c: expect[c])
    nb = len(lb)
    lb_expect = [expect[c] for c in lb]
    lb_min = [INF] * (nb + 1)
    for p in range(nb - 1, -1, -1):
        lb_min[p] = min(lb_min[p + 1], first[lb[p]])
    by_expect = {}
    for c in lb:
        by_expect.setdefault(expect[c], []).append(c)
    # The info phase's position (cls): 1..nc + 1 in the list; then
    # B + p for lb[p]; then B + nb + q for the q-th class expecting the
    # key's mod_revision when that is at or below the floor.
    B = nc + 2

    bits = [1 << i for i in range(len(ops))]
    step = model.step
    memo = {}
    stack = []  # (op, state before, its info class or 0, position after it)
    state = init
    clin = ilin = 0
    entry = nxt[0]
    cls = 0           # > 0: in the info phase, the position to try next
    steps = 0
    best_depth, best_op = -1, None
    while True:
        steps += 1
        if steps > max_steps:
            return UNKNOWN, steps - 1, None, best_op
        if cls:
            # The info phase: one candidate per class, invoked by the time
            # of the first return (entry).
            t = ent_time[entry]
            c = 0
            if cls < B:
                if cls <= nc and first[cls] <= t:
                    c = cls
                    cls = cnxt[c]
                elif cls <= nc and ops[members[cls][0]].invoke <= t:
                    cls = cnxt[cls]   # its next member comes later
                else:
                    cls = B + bisect.bisect_right(lb_expect, state[2])
                continue_phase = True
            else:
                p = cls - B
                if p < nb:
                    if lb_min[p] > t:
                        cls = B + nb
                        continue
                    c = lb[p]
                    cls += 1
                    continue_phase = True
                else:
                    modrev = state[1]
                    same = by_expect.get(modrev, ()) if 0 < modrev <= state[2] else ()
                    q = p - nb
                    if q < len(same):
                        c = same[q]
                        cls += 1
                        continue_phase = True
                    else:
                        continue_phase = False
            if c and first[c] <= t:
                i = members[c][taken[c]]
                new = step(state, ops[i])
                if new is not None:
                    nil = ilin + unit[c]
                    seen = memo.setdefault((clin, new), [])
                    x = nil | guard
                    if not any((x - a) & guard == guard for a in seen):
                        seen.append(nil)
                        stack.append((i, state, c, cls))
                        state, ilin = new, nil
                        taken[c] += 1
                        mc = members[c]
                        if taken[c] < len(mc):
                            first[c] = ops[mc[taken[c]]].invoke
                        else:
                            first[c] = INF
                            if not expect[c]:
                                cnxt[cprv[c]] = cnxt[c]
                                cprv[cnxt[c]] = cprv[c]
                        cls = 0
                        entry = nxt[0]
                        continue
            if continue_phase:
                continue
            # No candidate left: backtrack, below.
        elif ent_call[entry]:
            i = ent_op[entry]
            new = step(state, ops[i])
            if new is not None:
                ncl = clin | bits[i]
                seen = memo.setdefault((ncl, new), [])
                x = ilin | guard
                if not any((x - a) & guard == guard for a in seen):
                    seen.append(ilin)
                    stack.append((i, state, 0, 0))
                    state, clin = new, ncl
                    nxt[prv[entry]] = nxt[entry]
                    prv[nxt[entry]] = prv[entry]
                    r = ret_of[i]
                    nxt[prv[r]] = nxt[r]
                    prv[nxt[r]] = prv[r]
                    remaining -= 1
                    if remaining == 0:
                        return LINEARIZABLE, steps, [j for j, _, _, _ in stack], None
                    entry = nxt[0]
                    continue
            entry = nxt[entry]
            continue
        else:
            # A return (never the tail while completed ops are pending): no
            # completed candidate could go before it; now the info ones.
            depth = total - remaining
            if depth > best_depth:
                best_depth, best_op = depth, ent_op[entry]
            cls = cnxt[0]
            continue
        # Backtrack: undo the last op linearized, go on after it.
        if not stack:
            return NOT_LINEARIZABLE, steps, None, best_op
        i, state, c, resume = stack.pop()
        if c:
            ilin -= unit[c]
            if taken[c] == len(members[c]) and not expect[c]:
                cprv[cnxt[c]] = c
                cnxt[cprv[c]] = c
            taken[c] -= 1
            first[c] = ops[i].invoke
            cls = resume
            entry = nxt[0]
            while ent_call[entry]:   # the first return, as when c was tried
                entry = nxt[entry]
        else:
            clin ^= bits[i]
            r = ret_of[i]
            prv[nxt[r]] = r
            nxt[prv[r]] = r
            remaining += 1
            c = call_of[i]
            prv[nxt[c]] = c
            nxt[prv[c]] = c
            cls = 0
            entry = nxt[c]


@dataclasses.dataclass
class KeyResult:
    """The verdict on one key. ops: the ops searched (after dropping fail
    ops, info gets and prunable info writes); linearization: the order found
    (ops that took effect, info ones included) when linearizable; core: the
    ops of the explanation when not."""
    key: object
    verdict: str
    steps: int = 0
    ops: list = dataclasses.field(default_factory=list)
    pruned: int = 0
    linearization: object = None
    core: object = None
    explanation: str = ""


@dataclasses.dataclass
class Result:
    """The verdict on a history: see the module's docstring."""
    verdict: str
    keys: dict
    steps: int
    elapsed: float

    @property
    def ok(self):
        return self.verdict == LINEARIZABLE

    def failures(self):
        return [kr for kr in self.keys.values() if kr.verdict != LINEARIZABLE]

    def report(self):
        n = sum(len(kr.ops) for kr in self.keys.values())
        lines = ["%s: %d keys, %d ops checked, %d steps, %.3f s" % (
            self.verdict, len(self.keys), n, self.steps, self.elapsed)]
        for kr in self.failures():
            lines.append("key %r: %s" % (kr.key, kr.verdict))
            lines.extend("  " + ln for ln in kr.explanation.splitlines())
        return "\n".join(lines)

    __str__ = report


def _facts(history):
    known, seen = set(), {}
    for op in history:
        if op.status == "ok" and op.kind != "get" and op.revision:
            known.add(op.revision)
        if op.status == "ok" and op.kind == "get" and op.read is not None \
                and op.mod_revision is not None:
            seen.setdefault(op.mod_revision, set()).add(op.read)
    return frozenset(known), seen


def _prunable(w, ops, model):
    """An info set/cas that nothing could have observed (module docstring).
    Only ops that end after w began can observe it, and its revision is
    above that of every write of the key that completed before it began."""
    lo = max([o.revision for o in ops if o.status == "ok" and o.kind != "get"
              and o.revision and o.complete < w.invoke], default=0)

    def could_be(x):
        return x is not None and x > lo and x not in model.known and \
            (x not in model.seen or w.value in model.seen[x])
    for op in ops:
        if op is w or (not op.is_info and op.complete < w.invoke):
            continue
        if op.kind in ("get", "delete") and op.status == "ok" and \
                op.read is not None and op.read == w.value:
            return False
        if op.status == "failed_precondition":
            if op.mod_revision is None or could_be(op.mod_revision):
                return False
        elif op.expect is not None and could_be(op.expect):
            return False
        if op.kind == "delete" and op.status == "ok" and op.found is not False \
                and not (op.revision == 0) and op.read is None:
            return False
    return True


def _init_state(initial):
    if initial is None:
        return (None, 0, 0)
    value, modrev = initial
    return (value, modrev, modrev)


def check(history, max_steps=DEFAULT_MAX_STEPS, initial=None, explain=True,
          explain_steps=None):
    """Check a history (a list of Op or of dicts). max_steps bounds each
    key's search; initial: key -> (value, mod_revision) for keys present
    before the history (default: every key absent); explain: find a core
    for each key that is not linearizable, within explain_steps (default
    max_steps) search steps. Returns a Result."""
    t0 = time.monotonic()
    history = [op if isinstance(op, Op) else Op.from_dict(op) for op in history]
    for op in history:
        _validate(op)
    known, seen = _facts(history)
    model = _Model(known, seen)
    by_key = {}
    for op in history:
        by_key.setdefault(op.key, []).append(op)
    results, total_steps = {}, 0
    for key, kops in by_key.items():
        kr = _check_key(key, kops, model, _init_state((initial or {}).get(key)),
                        max_steps, explain,
                        max_steps if explain_steps is None else explain_steps)
        results[key] = kr
        total_steps += kr.steps
    verdicts = {kr.verdict for kr in results.values()}
    verdict = NOT_LINEARIZABLE if NOT_LINEARIZABLE in verdicts else \
        UNKNOWN if UNKNOWN in verdicts else LINEARIZABLE
    return Result(verdict, results, total_steps, time.monotonic() - t0)


def _check_key(key, kops, model, init, max_steps, explain, explain_steps):
    ops = [op for op in kops if op.status != "fail"
           and not (op.kind == "get" and op.is_info)]
    n0 = len(ops)
    ops = [op for op in ops if not (op.is_info and op.kind in ("set", "cas")
                                    and _prunable(op, ops, model))]
    kr = KeyResult(key, UNKNOWN, ops=ops, pruned=n0 - len(ops))
    verdict, steps, order, stop = _search(ops, init, model, max_steps)
    kr.verdict, kr.steps = verdict, steps
    if verdict == LINEARIZABLE:
        kr.linearization = [ops[i] for i in order]
        return kr
    if verdict == UNKNOWN:
        kr.explanation = ("gave up after %d steps (max_steps) on %d operations of key %r; "
                          "the search is exponential in the worst case: a shorter history, "
                          "fewer unknown (info) writes, or a larger max_steps"
                          % (steps, len(ops), key))
        return kr
    core = None
    if explain:
        core = _core(ops, init, model, stop, explain_steps)
    kr.core = core
    kr.explanation = _explain(key, ops, core, init, stop)
    return kr


# -- explanations ------------------------------------------------------------

def _writes_of(value, ops):
    if value is None:
        return [o for o in ops if o.kind == "delete" and o.status in ("ok", "info")
                and o.found is not False and o.revision != 0]
    return [o for o in ops if o.kind in ("set", "cas") and o.status in ("ok", "info")
            and o.value == value]


def _needs(op, ops, init):
    """What op needs kept beside it in a core, whatever else is: a list of
    alternatives (lists of ops, one op of each to be kept)."""
    needs = []
    if op.status == "ok" and op.kind in ("get", "delete"):
        v = op.read
        if v is not None and v != init[0]:
            src = [o for o in _writes_of(v, ops) if o.invoke <= (op.complete or INF)]
            if src:
                needs.append(src)
    # A revision it names: the write that made it, or else an info write
    # that could have (of the value read, for a get).
    revs = []
    if op.expect:
        revs.append((op.expect, None))
    if op.mod_revision:
        revs.append((op.mod_revision, op.read if op.kind == "get" else None))
    t = INF if op.is_info else op.complete
    for x, v in revs:
        src = [o for o in ops if o is not op and o.status == "ok" and o.kind != "get"
               and o.revision == x]
        if not src:
            src = [o for o in ops if o is not op and o.is_info and o.kind in ("set", "cas")
                   and o.invoke <= t and (v is None or o.value == v)]
        if src:
            needs.append(src)
    return needs


def _cond_needs(op, kept, ops, init):
    """Needs that depend on what else is kept: a read of absent after a
    write completed needs a delete; a precondition that failed needs a
    write that made it fail; a delete that found the key needs a write."""
    needs = []
    t = op.complete if not op.is_info else INF
    absent = (op.kind == "get" and op.status == "ok" and op.read is None) or \
        (op.status == "failed_precondition" and op.mod_revision == 0)
    if absent and any(o.kind in ("set", "cas") and _before(o, op) for o in kept):
        needs.append([o for o in _writes_of(None, ops) if o.invoke <= t])
    sets = [o for o in ops if o.kind in ("set", "cas") and o.status in ("ok", "info")
            and o.invoke <= t]
    if op.status == "failed_precondition" and op.mod_revision is None:
        if op.expect == 0 and init[0] is None:
            needs.append(sets)
        elif op.expect:
            for w in kept:
                if w is not op and w.kind != "get" and w.status == "ok" \
                        and w.revision == op.expect:
                    needs.append([o for o in ops if o is not w and o.kind != "get"
                                  and o.status in ("ok", "info") and not _before(o, w)
                                  and o.invoke <= t])
    if op.kind == "delete" and op.status == "ok" and op.read is None and \
            (op.found or op.revision) and init[0] is None:
        needs.append(sets)
    # Completed writes first: _close keeps the first one it can.
    return [sorted(n, key=lambda o: o.is_info) for n in needs if n]


def _close(cand, pool, ops, init, needs):
    """cand plus what its ops need, taken from pool (a superset of cand)."""
    kept = set(cand)
    changed = True
    while changed:
        changed = False
        for op in list(kept):
            alts = needs[op] + _cond_needs(op, kept, ops, init)
            for src in alts:
                if any(o in kept for o in src):
                    continue
                for o in src:
                    if o in pool:
                        kept.add(o)
                        changed = True
                        break
    return [o for o in pool if o in kept]


def _core(ops, init, model, stop, budget):
    """A small subset of ops, itself not linearizable (None past budget)."""
    spent = [0]

    def fails(sub):
        left = budget - spent[0]
        if left <= 0:
            raise _OutOfBudget()
        verdict, steps, _, _ = _search(sub, init, model, left)
        spent[0] += steps
        if verdict == UNKNOWN:
            raise _OutOfBudget()
        return verdict == NOT_LINEARIZABLE

    needs = {op: _needs(op, ops, init) for op in ops}
    core = list(ops)
    try:
        # A read of a value nobody wrote is a core by itself.
        for op in ops:
            if op.status == "ok" and op.kind == "get" and op.read is not None \
                    and op.read != init[0] and not _writes_of(op.read, ops):
                return [op]
        quick = _stale_core(ops, init)
        if quick and fails(quick):
            core = quick
        # Cut at the deepest point the search reached: ops begun by then.
        elif stop is not None and not ops[stop].is_info:
            t = ops[stop].complete
            cut = _close([o for o in ops if o.invoke <= t], ops, ops, init, needs)
            if len(cut) < len(core) and fails(cut):
                core = cut
        # Delta debugging: drop chunks while what is left still fails.
        n = 2
        while len(core) >= 2:
            size = -(-len(core) // n)
            for s in range(0, len(core), size):
                cand = _close(core[:s] + core[s + size:], core, ops, init, needs)
                if len(cand) < len(core) and fails(cand):
                    core = cand
                    n = max(n - 1, 2)
                    break
            else:
                if size == 1:
                    break
                n = min(len(core), 2 * n)
    except _OutOfBudget:
        return None if len(core) == len(ops) else core
    return core


class _OutOfBudget(Exception):
    pass


def _stale_core(ops, init):
    """A read, every write of the value it read, and a write that changed
    the key after all of them and completed before the read began: the
    core of a stale read, if there is one (None)."""
    writers = {}
    for o in ops:
        if o.kind in ("set", "cas") and o.status in ("ok", "info"):
            writers.setdefault(o.value, []).append(o)
    changes = sorted((o for o in ops if _changes_to(o)[0]), key=lambda o: o.complete)
    ends = [o.complete for o in changes]
    latest, best = [], None    # latest[k]: the latest begun of changes[:k + 1]
    for o in changes:
        if best is None or o.invoke > best.invoke:
            best = o
        latest.append(best)
    for r in ops:
        if r.kind != "get" or r.status != "ok" or r.read is None or r.read == init[0]:
            continue
        srcs = writers.get(r.read)
        if not srcs or any(o.is_info for o in srcs):
            continue
        after = max(o.complete for o in srcs)
        k = bisect.bisect_left(ends, r.invoke)
        if k == 0 or latest[k - 1].invoke <= after:
            continue
        w = latest[k - 1]
        if _changes_to(w)[1] == r.read:   # a write of the same value: look further
            w = next((o for o in changes[:k] if o.invoke > after
                      and _changes_to(o)[1] != r.read), None)
        if w is not None:
            return sorted(srcs + [w, r], key=lambda o: o.invoke)
    return None


def _before(a, b):
    """a completed before b was invoked."""
    return not a.is_info and a.complete < b.invoke


def _changes_to(op):
    """The value a write leaves (None: absent), for completed changing writes."""
    if op.status != "ok":
        return False, None
    if op.kind in ("set", "cas"):
        return True, op.value
    if op.kind == "delete" and (op.found or op.revision):
        return True, None
    return False, None


def _pattern(key, core, init, ops):
    def show(v):
        return "absent" if v is None else repr(v)
    reads = [o for o in core if o.kind == "get" and o.status == "ok"]
    writes = [o for o in core if _changes_to(o)[0]]
    # A read of a value never written.
    if len(core) == 1 and reads and not _writes_of(core[0].read, ops) \
            and core[0].read is not None and core[0].read != init[0]:
        r = core[0]
        return ("read of %r at %s returned %s, which no write of %r wrote"
                % (key, _interval(r), show(r.read), key))
    # A read of a value at another revision than its write made.
    for r in reads:
        srcs = _writes_of(r.read, core) if r.read is not None else []
        if r.mod_revision is not None and len(srcs) == 1 and srcs[0].status == "ok" and \
                srcs[0].revision and srcs[0].revision != r.mod_revision:
            return ("read of %r at %s returned %s with mod_revision %d, but its write (at %s) "
                    "made revision %d" % (key, _interval(r), show(r.read), r.mod_revision,
                                          _interval(srcs[0]), srcs[0].revision))
    # Two clients saw two writes in opposite orders.
    for a1 in reads:
        for a2 in reads:
            if a1.process != a2.process or not _before(a1, a2) or a1.read == a2.read:
                continue
            for b1 in reads:
                for b2 in reads:
                    if b1.process != b2.process or b1.process == a1.process or \
                            not _before(b1, b2):
                        continue
                    if b1.read == a2.read and b2.read == a1.read:
                        return ("%s saw %s then %s (reads at %s, %s), %s saw %s then %s "
                                "(reads at %s, %s): the writes in opposite orders"
                                % (a1.process, show(a1.read), show(a2.read), _interval(a1),
                                   _interval(a2), b1.process, show(b1.read), show(b2.read),
                                   _interval(b1), _interval(b2)))
    # A stale read, or a lost write.
    for r in reads:
        srcs = _writes_of(r.read, core)  # info ones too: they never come _before
        from_init = r.read == init[0]
        for w2 in writes:
            v2 = _changes_to(w2)[1]
            if v2 == r.read or not _before(w2, r):
                continue
            if from_init and init[0] is not None:
                continue
            if all(_before(w1, w2) for w1 in srcs) and (srcs or from_init):
                if srcs:
                    w1 = max(srcs, key=lambda o: o.complete)
                    older = "%s's write at %s" % (show(r.read), _interval(w1))
                else:
                    older = "the initial state"
                what = "written" if v2 is not None else "deleted (%s)" % w2.kind
                if v2 is None:
                    return ("read of %r at %s returned %s (from %s), but the key was deleted "
                            "at %s, after that, and the delete completed before the read "
                            "started: a stale read, or a lost write"
                            % (key, _interval(r), show(r.read), older, _interval(w2)))
                return ("read of %r at %s returned %s (from %s), but %s was %s at %s, after "
                        "that, and completed before the read started: a stale read, or a "
                        "lost write" % (key, _interval(r), show(r.read), older, show(v2),
                                        what, _interval(w2)))
    # A conditional write whose expectation could not hold.
    for c in core:
        if c.expect is None or c.status != "ok":
            continue
        e = c.expect
        if e == 0:
            for w in writes:
                if _changes_to(w)[1] is not None and _before(w, c) and not any(
                        not _before(d, w) for d in _writes_of(None, core)):
                    return ("%s of %r at %s expecting the key absent (mod_revision 0) "
                            "succeeded, but it was written at %s, completed before, and "
                            "nothing deleted it" % (c.kind, key, _interval(c), _interval(w)))
            continue
        src = [w for w in core if w.status == "ok" and w.kind != "get" and w.revision == e]
        for w1 in src:
            for w2 in writes:
                if w2 is not w1 and _before(w1, w2) and _before(w2, c):
                    return ("%s of %r at %s expecting mod_revision %d succeeded, but the "
                            "write of revision %d (at %s) had been followed by another at %s "
                            "that completed before it started"
                            % (c.kind, key, _interval(c), e, e, _interval(w1), _interval(w2)))
    # Revisions going backwards.
    for w1 in writes:
        for w2 in writes:
            if w1.revision and w2.revision and _before(w1, w2) and w2.revision <= w1.revision:
                return ("the write at %s made revision %d, after the one at %s had made "
                        "revision %d: revisions went backwards"
                        % (_interval(w2), w2.revision, _interval(w1), w1.revision))
    return None


def _explain(key, ops, core, init, stop):
    lines = []
    if core is None:
        lines.append("no linearization of the %d operations of key %r (no smaller core "
                     "found within explain_steps)" % (len(ops), key))
        if stop is not None:
            lines.append("the search went deepest up to: " + describe(ops[stop]))
        return "\n".join(lines)
    sentence = _pattern(key, core, init, ops)
    if sentence:
        lines.append(sentence)
    lines.append("these %d operations of key %r alone admit no order consistent with real "
                 "time and the register (value, mod_revision):" % (len(core), key))
    lines.extend("  " + describe(o) for o in sorted(core, key=lambda o: o.invoke))
    return "\n".join(lines)


# -- recording and files -----------------------------------------------------

class Recorder:
    """Records a history from several threads: invoke() before sending a
    request, complete() when its answer came (not at all when none did: the
    op stays "info")."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._ops = []
        self._lock = threading.Lock()

    def invoke(self, process, key, kind, value=None, expect=None):
        op = Op(process, key, kind, self.clock(), None, "info", value=value, expect=expect)
        with self._lock:
            self._ops.append(op)
        return op

    def complete(self, op, status="ok", **result):
        """status "ok", "failed_precondition", "fail" or "info"; result:
        read, found, revision, mod_revision."""
        now = self.clock()
        for f, v in result.items():
            if f not in ("read", "found", "revision", "mod_revision"):
                raise ValueError("not a result field: %s" % f)
            setattr(op, f, v)
        op.status = status
        if status != "info":
            op.complete = now
        return op

    def history(self):
        with self._lock:
            return list(self._ops)


def dump_history(history, path):
    """One JSON object a line (process, key and values must be JSON values)."""
    with open(path, "w") as f:
        for op in history:
            f.write(json.dumps(op.to_dict()) + "\n")


def load_history(path):
    """A JSON array of op objects, or one object a line."""
    with open(path) as f:
        text = f.read()
    if text.lstrip().startswith("["):
        return [Op.from_dict(d) for d in json.loads(text)]
    return [Op.from_dict(json.loads(ln)) for ln in text.splitlines() if ln.strip()]


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(description="Check a recorded kvstore history for "
                                "linearizability (per key).")
    p.add_argument("history", help="JSON: an array of ops, or one op a line")
    p.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS)
    a = p.parse_args(argv)
    result = check(load_history(a.history), max_steps=a.max_steps)
    print(result.report())
    return {LINEARIZABLE: 0, NOT_LINEARIZABLE: 1}.get(result.verdict, 2)


if __name__ == "__main__":
    sys.exit(main())
