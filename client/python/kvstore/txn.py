"""kvstore.txn - building a Txn: compares, operations, the builder.

A Txn evaluates its compares on one state of the store; when all hold it
runs the "then" operations, else the "else" ones, in order, atomically
(docs/PROTOCOL.md, Txn). Compares are written as comparisons of a key's
target with a value:

    from kvstore import txn as t

    t.value(b"k") == b"v"           # VALUE, compared as bytes
    t.mod_revision(b"k") == 42      # MOD_REVISION; == 0: the key is absent
    t.create_revision(b"k") != 7    # CREATE_REVISION
    t.version(b"k") < 5             # VERSION: the key's is less than 5

==, !=, < and > map to EQUAL, NOT_EQUAL, LESS and GREATER (there is no
<= or >=); .equal(x), .not_equal(x), .less(x) and .greater(x) say the same.
A missing key has revisions and version 0, and every VALUE compare on it
is false. Operations:

    t.get(key)                      -> Entry, or None when the key is absent
    t.set(key, value, ttl_ms=..., keep_ttl=...) -> the revision written
    t.clear(key)                    -> the old value, or None when absent
    t.range(start, end, prefix=..., limit=..., keys_only=..., count_only=...,
            reverse=...)            -> Page
    t.clear_range(start, end, prefix=...) -> how many keys were removed

(after each, what TxnResult.results holds for it). Then:

    r = (client.txn()
           .if_(t.mod_revision(b"cfg") == seen, t.value(b"mode") == b"on")
           .then(t.set(b"cfg", b"new"), t.clear(b"cfg.lock"))
           .else_(t.get(b"cfg"))
           .commit())
    if not r.succeeded:
        current = r.results[0]

if_(), then() and else_() may be called more than once (they add) and take
generated pb.Compare and pb.TxnOp messages too. A Txn that writes one key
twice, has too many operations, or a conditional write inside is refused
whole with InvalidArgument, nothing applied.
"""

from . import _proto
from .stubs import DEFAULT, _method
from .values import UINT32_MAX, as_bytes, check_uint, selector, set_fields, txn_result

pb = _proto.kv_pb2
_Target = pb.Compare.Target
_Op = pb.Compare.Op

__all__ = ["Txn", "Compared", "value", "mod_revision", "create_revision", "version",
           "get", "set", "clear", "range", "clear_range"]


class Compared:
    """A key's target (value, a revision or version), waiting for its
    comparison: == != < > (or equal, not_equal, less, greater) give the
    pb.Compare message for if_()."""

    __slots__ = ("key", "target")
    __hash__ = None

    def __init__(self, key, target):
        self.key = as_bytes(key)
        self.target = target

    def __repr__(self):
        return "%s(%r)" % (_Target.Name(self.target).lower(), self.key)

    def _compare(self, op, operand):
        message = pb.Compare(key=self.key, target=self.target, op=op)
        if self.target == _Target.VALUE:
            message.value = as_bytes(operand, "value")
        else:
            message.number = check_uint(operand, _Target.Name(self.target).lower())
        return message

    def equal(self, operand):
        return self._compare(_Op.EQUAL, operand)

    def not_equal(self, operand):
        return self._compare(_Op.NOT_EQUAL, operand)

    def less(self, operand):
        """Holds when the key's target is less than OPERAND."""
        return self._compare(_Op.LESS, operand)

    def greater(self, operand):
        """Holds when the key's target is greater than OPERAND."""
        return self._compare(_Op.GREATER, operand)

    __eq__ = equal
    __ne__ = not_equal
    __lt__ = less
    __gt__ = greater

    def __le__(self, operand):
        raise TypeError("a Txn compare has no <=: use < with the next value")

    def __ge__(self, operand):
        raise TypeError("a Txn compare has no >=: use > with the previous value")

    def __bool__(self):
        raise TypeError("compare a Txn target with ==, !=, < or > before using it")


def value(key):
    """KEY's value, compared as bytes (memcmp, shorter first on a tie)."""
    return Compared(key, _Target.VALUE)


def mod_revision(key):
    """The revision of KEY's last change (0 when absent)."""
    return Compared(key, _Target.MOD_REVISION)


def create_revision(key):
    """The revision that created KEY (0 when absent)."""
    return Compared(key, _Target.CREATE_REVISION)


def version(key):
    """How many times KEY was written since it was created (0 when absent)."""
    return Compared(key, _Target.VERSION)


def get(key):
    """A Get in a Txn; its result is an Entry, or None for a missing key."""
    return pb.TxnOp(get=pb.GetRequest(key=as_bytes(key)))


def set(key, value, *, ttl_ms=None, keep_ttl=False):  # noqa: A001 - the operation's name
    """A Set in a Txn (unconditional: the compares are the condition); its
    result is the revision written, the Txn's. TTL_MS and KEEP_TTL as in
    Client.set()."""
    return pb.TxnOp(set=pb.SetRequest(key=as_bytes(key), value=as_bytes(value, "value"),
                                      **set_fields(ttl_ms, keep_ttl)))


def clear(key):
    """A Clear in a Txn; its result is the old value, or None when absent."""
    return pb.TxnOp(clear=pb.ClearRequest(key=as_bytes(key)))


def range(start=None, end=None, *, prefix=None, limit=0, keys_only=False,  # noqa: A001
          count_only=False, reverse=False):
    """A Range in a Txn (one page: see Page.more); its result is a Page."""
    return pb.TxnOp(range=pb.RangeRequest(
        limit=check_uint(limit, "limit", UINT32_MAX), keys_only=keys_only,
        count_only=count_only, reverse=reverse, **selector(start, end, prefix)))


def clear_range(start=None, end=None, *, prefix=None):
    """A ClearRange in a Txn; its result is how many keys were removed."""
    return pb.TxnOp(clear_range=pb.ClearRangeRequest(**selector(start, end, prefix)))


def _checked(items, cls, what):
    for item in items:
        if not isinstance(item, cls):
            raise TypeError("%s takes %s (see kvstore.txn), not %s"
                            % (what, cls.DESCRIPTOR.full_name, type(item).__name__))
    return items


class Txn:
    """A transaction being built for CALLS (a Client or a Pipeline; use
    client.txn()). compares, success and failure are the lists of
    messages so far; request is the TxnRequest they make."""

    def __init__(self, calls):
        self._calls = calls
        self.compares = []
        self.success = []
        self.failure = []

    def __repr__(self):
        return "<kvstore.txn.Txn %d compares, %d then, %d else>" % (
            len(self.compares), len(self.success), len(self.failure))

    def if_(self, *compares):
        """Adds COMPARES (all must hold; none at all holds). Returns self."""
        self.compares.extend(_checked(compares, pb.Compare, "if_()"))
        return self

    def then(self, *ops):
        """Adds OPS to run when every compare holds. Returns self."""
        self.success.extend(_checked(ops, pb.TxnOp, "then()"))
        return self

    def else_(self, *ops):
        """Adds OPS to run when a compare does not hold. Returns self."""
        self.failure.extend(_checked(ops, pb.TxnOp, "else_()"))
        return self

    @property
    def request(self):
        return pb.TxnRequest(compare=self.compares, success=self.success, failure=self.failure)

    def commit(self, *, timeout=DEFAULT):
        """Sends the Txn. Returns a TxnResult (succeeded, results, revision,
        response); on a Pipeline, a Reply of one. Raises the RpcError of a
        refused Txn (InvalidArgument: nothing was applied)."""
        success, failure = list(self.success), list(self.failure)

        def convert(answer):
            return txn_result(answer, success if answer.succeeded else failure)
        return self._calls._call(_method("Txn"), self.request, convert, timeout)
