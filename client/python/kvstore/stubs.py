"""kvstore.stubs - every rpc of the service as a method, plus plain helpers.

Calls is a mixin shared by Client (runs each call now) and Pipeline (queues
it). The rpc methods are not written here one by one: bind_service() reads
them from the service descriptor that protoc generated, so an rpc added to
kv.proto is callable with no change to this package. Subclasses provide
_call(method, request, convert, timeout).
"""

from . import _proto
from .errors import RpcError, error_for, status_code
from .values import (UINT32_MAX, as_bytes, check_uint, cleared_value, entry_of_get, page_of,
                     selector, set_fields)

# "Use the client's default timeout", as opposed to None (wait forever).
DEFAULT = object()


def finish(method, outcome, convert=None):
    """Turns what the connection returned for one call (an RpcResponse or an
    RpcError) into the decoded answer, or raises the call's RpcError."""
    path = _proto.method_path(method)
    if isinstance(outcome, RpcError):
        raise outcome
    if outcome.code != 0:
        raise error_for(outcome.code, outcome.message, path)
    answer = _proto.message_class(method.output_type).FromString(outcome.payload)
    return convert(answer) if convert else answer


# What a conditional write answered OK with revision 0 means: a server
# before protocol v2 does not know if_mod_revision, skips it and writes,
# answering as for a plain write. A v2 server's Set always makes a revision
# (>= 1), and so does its Clear of a key it found.
PRE_V2_WRITE = ("the server does not support conditional writes (a server before "
                "protocol v2): the write was applied without its check")


def _checked(method, unchecked, convert):
    """CONVERT for the answer of the conditional write METHOD, raising
    Unimplemented (PRE_V2_WRITE) when UNCHECKED(answer) says a server
    before protocol v2 wrote without the check."""
    def check(answer):
        if unchecked(answer):
            raise error_for(status_code("UNIMPLEMENTED"), PRE_V2_WRITE,
                            _proto.method_path(method))
        return convert(answer)
    return check


def _make_stub(method):
    input_class = _proto.message_class(method.input_type)

    def stub(self, request=None, *, timeout=DEFAULT, **fields):
        if request is None:
            request = input_class(**fields)
        elif fields:
            raise TypeError("%s: pass a request message or fields, not both" % method.name)
        elif not isinstance(request, input_class):
            raise TypeError("%s expects %s, not %s" % (
                method.name, method.input_type.full_name, type(request).__name__))
        return self._call(method, request, None, timeout)

    stub.__name__ = method.name
    stub.__qualname__ = method.name
    stub.__doc__ = "rpc %s(%s) returns (%s), sent as %s." % (
        method.name, method.input_type.full_name, method.output_type.full_name,
        _proto.method_path(method))
    return stub


def bind_service(cls, service):
    """Adds one method per rpc of SERVICE (a ServiceDescriptor) to CLS."""
    for method in service.methods:
        if method.name in vars(cls):
            raise TypeError("rpc %s clashes with an attribute of %s" % (method.name, cls.__name__))
        setattr(cls, method.name, _make_stub(method))
    cls.service = service
    return cls


def _method(name):
    return _proto.service.methods_by_name[name]


def auth_envelope(token):
    """The RpcRequest of an Auth call with TOKEN, as a client presents it
    again on a new connection."""
    return _proto.RpcRequest(method=_proto.method_path(_method("Auth")),
                             payload=_request("Auth", token=as_bytes(token, "token"))
                             .SerializeToString())


def _request(name, **fields):
    return _proto.message_class(_method(name).input_type)(**fields)


class Calls:
    """The rpc methods (Ping, Get, Set, Clear, Stats, Auth, Range, ... from
    the descriptor) and the helpers that take and return plain values:
    ping, get, get_entry, set, cas, touch, clear, auth, range_page, count,
    clear_range and txn (Client adds range, which pages, and watch)."""

    def _call(self, method, request, convert, timeout):
        raise NotImplementedError

    def ping(self, message="", *, timeout=DEFAULT):
        """Returns "PONG", or MESSAGE echoed."""
        return self._call(_method("Ping"), _request("Ping", message=message),
                          lambda r: r.message, timeout)

    def get(self, key, *, serializable=False, timeout=DEFAULT):
        """Returns the value of KEY as bytes; raises KeyNotFound when absent.
        SERIALIZABLE: read from the node connected to, from what it has
        applied (maybe stale, never torn; any node of a cluster answers);
        by default a linearizable read, which a cluster's leader answers."""
        return self._call(_method("Get"), _request("Get", key=as_bytes(key),
                                                   serializable=serializable),
                          lambda r: r.value, timeout)

    def set(self, key, value, *, ttl_ms=None, keep_ttl=False, timeout=DEFAULT):
        """Stores VALUE under KEY (overwriting). Returns None.

        TTL_MS > 0: the key expires that many milliseconds after the write
        (at most 10**12). Without it the key does not expire, losing any
        time to live it had, unless KEEP_TTL: then it keeps what was left
        of it (none for a new key). TTL_MS with KEEP_TTL, or above the
        maximum, raises InvalidArgument."""
        request = _request("Set", key=as_bytes(key), value=as_bytes(value, "value"),
                           **set_fields(ttl_ms, keep_ttl))
        return self._call(_method("Set"), request, lambda r: None, timeout)

    def touch(self, key, ttl_ms, *, timeout=DEFAULT):
        """Sets the time to live of KEY to TTL_MS milliseconds from now (0:
        it no longer expires), leaving its value and revisions as they are
        (no revision, no watch event). Returns True, or False when KEY is
        missing or expired."""
        request = _request("Touch", key=as_bytes(key), ttl_ms=check_uint(ttl_ms, "ttl_ms"))
        return self._call(_method("Touch"), request, lambda r: r.found, timeout)

    def auth(self, token, *, timeout=DEFAULT):
        """Presents TOKEN (bytes or str) to a server started with
        --auth-token-file; raises RpcError UNAUTHENTICATED when wrong."""
        return self._call(_method("Auth"), _request("Auth", token=as_bytes(token, "token")),
                          lambda r: None, timeout)

    def clear(self, key, *, if_mod_revision=None, timeout=DEFAULT):
        """Removes KEY. Returns its old value, or None when it was absent.
        With IF_MOD_REVISION, only when the key's mod_revision is that
        (0: only when absent, which then changes nothing); else raises
        FailedPrecondition and the key stays. A server before protocol v2
        ignores IF_MOD_REVISION and removes the key anyway: that answer
        (found, but no revision) raises Unimplemented, saying so."""
        request = _request("Clear", key=as_bytes(key))
        convert = cleared_value
        if if_mod_revision is not None:
            request.if_mod_revision = check_uint(if_mod_revision, "if_mod_revision")
            convert = _checked(_method("Clear"), lambda r: r.found and r.revision == 0,
                               cleared_value)
        return self._call(_method("Clear"), request, convert, timeout)

    def get_entry(self, key, *, serializable=False, timeout=DEFAULT):
        """Returns KEY as an Entry: its value with its create_revision,
        mod_revision and version, the store's revision at the read, and
        ttl_ms, the milliseconds it has left (0: it does not expire).
        Raises KeyNotFound when absent (get() is the same, value only;
        SERIALIZABLE as there)."""
        key = as_bytes(key)
        return self._call(_method("Get"), _request("Get", key=key, serializable=serializable),
                          lambda r: entry_of_get(key, r), timeout)

    def cas(self, key, value, mod_revision, *, ttl_ms=None, keep_ttl=False, timeout=DEFAULT):
        """Compare-and-set: stores VALUE under KEY only if the key's
        mod_revision is MOD_REVISION, where 0 means "only if KEY is absent"
        (create-only). Returns the revision the write made. Otherwise
        raises FailedPrecondition (code 9, FAILED_PRECONDITION; its message
        says the current mod_revision) and nothing changes.

            e = c.get_entry(b"counter")
            c.cas(b"counter", b"%d" % (int(e.value) + 1), e.mod_revision)

        A server before protocol v2 ignores the condition and stores VALUE
        anyway: that answer (OK, but revision 0) raises Unimplemented
        (code 12), its message saying that the write was applied without
        its check. TTL_MS and KEEP_TTL are set()'s: a lock that frees
        itself is cas(b"lock", b"me", 0, ttl_ms=10000), kept by touch().
        """
        request = _request("Set", key=as_bytes(key), value=as_bytes(value, "value"),
                           if_mod_revision=check_uint(mod_revision, "mod_revision"),
                           **set_fields(ttl_ms, keep_ttl))
        return self._call(_method("Set"), request,
                          _checked(_method("Set"), lambda r: r.revision == 0,
                                   lambda r: r.revision), timeout)

    def range_page(self, start=None, end=None, *, prefix=None, limit=0, keys_only=False,
                   reverse=False, serializable=False, timeout=DEFAULT):
        """One Range call: the keys of [START, END) (END None: no upper
        bound) or those beginning with PREFIX (not both), at most LIMIT of
        them (0: the server's maximum page). Returns a Page: entries (a list
        of Entry), more, count (keys in the whole range) and revision.
        Client.range() pages through a whole range for you. SERIALIZABLE
        as for get()."""
        request = _request("Range", limit=check_uint(limit, "limit", UINT32_MAX),
                           keys_only=keys_only, reverse=reverse, serializable=serializable,
                           **selector(start, end, prefix))
        return self._call(_method("Range"), request, page_of, timeout)

    def count(self, start=None, end=None, *, prefix=None, serializable=False, timeout=DEFAULT):
        """How many keys [START, END), or PREFIX, holds (a Range with
        count_only: no keys are sent). With no arguments: every key.
        SERIALIZABLE as for get()."""
        request = _request("Range", count_only=True, serializable=serializable,
                           **selector(start, end, prefix))
        return self._call(_method("Range"), request, lambda r: r.count, timeout)

    def clear_range(self, start=None, end=None, *, prefix=None, timeout=DEFAULT):
        """Removes every key of [START, END) or beginning with PREFIX, as one
        write (one revision). Returns how many were removed. With no
        selector at all the server refuses (InvalidArgument), so a missing
        argument never wipes the store: to remove every key, pass
        start=b"\\x00" (keys are never empty, so that is the first one)."""
        request = _request("ClearRange", **selector(start, end, prefix))
        return self._call(_method("ClearRange"), request, lambda r: r.deleted, timeout)

    def txn(self):
        """A Txn builder for this client (or pipeline): compares with
        if_(), operations with then() and else_(), sent by commit().

            from kvstore import txn as t
            r = (c.txn()
                  .if_(t.mod_revision(b"cfg") == e.mod_revision)
                  .then(t.set(b"cfg", b"new"), t.get(b"cfg"))
                  .else_(t.get(b"cfg"))
                  .commit())
            r.succeeded, r.results, r.revision

        See kvstore.txn."""
        from .txn import Txn
        return Txn(self)
