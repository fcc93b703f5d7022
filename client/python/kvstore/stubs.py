"""kvstore.stubs - every rpc of the service as a method, plus plain helpers.

Calls is a mixin shared by Client (runs each call now) and Pipeline (queues
it). The rpc methods are not written here one by one: bind_service() reads
them from the service descriptor that protoc generated, so an rpc added to
kv.proto is callable with no change to this package. Subclasses provide
_call(method, request, convert, timeout).
"""

from . import _proto
from .errors import RpcError, error_for

# "Use the client's default timeout", as opposed to None (wait forever).
DEFAULT = object()


def as_bytes(value, what="key"):
    """bytes, bytearray, memoryview or str (UTF-8) -> bytes."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError("%s must be bytes or str, not %s" % (what, type(value).__name__))


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


def _request(name, **fields):
    return _proto.message_class(_method(name).input_type)(**fields)


class Calls:
    """The rpc methods (Ping, Get, Set, Clear, Stats, Auth, ... from the
    descriptor) and the helpers ping/get/set/clear/auth that take and
    return plain values."""

    def _call(self, method, request, convert, timeout):
        raise NotImplementedError

    def ping(self, message="", *, timeout=DEFAULT):
        """Returns "PONG", or MESSAGE echoed."""
        return self._call(_method("Ping"), _request("Ping", message=message),
                          lambda r: r.message, timeout)

    def get(self, key, *, timeout=DEFAULT):
        """Returns the value of KEY as bytes; raises KeyNotFound when absent."""
        return self._call(_method("Get"), _request("Get", key=as_bytes(key)),
                          lambda r: r.value, timeout)

    def set(self, key, value, *, timeout=DEFAULT):
        """Stores VALUE under KEY (overwriting). Returns None."""
        request = _request("Set", key=as_bytes(key), value=as_bytes(value, "value"))
        return self._call(_method("Set"), request, lambda r: None, timeout)

    def auth(self, token, *, timeout=DEFAULT):
        """Presents TOKEN (bytes or str) to a server started with
        --auth-token-file; raises RpcError UNAUTHENTICATED when wrong."""
        return self._call(_method("Auth"), _request("Auth", token=as_bytes(token, "token")),
                          lambda r: None, timeout)

    def clear(self, key, *, timeout=DEFAULT):
        """Removes KEY. Returns its old value, or None when it was absent."""
        return self._call(_method("Clear"), _request("Clear", key=as_bytes(key)),
                          lambda r: r.value if r.found else None, timeout)
