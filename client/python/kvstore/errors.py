"""kvstore.errors - the exceptions a call raises, one per gRPC status code.

Every non-OK answer becomes an RpcError carrying the code's name, number and
the server's message. The client raises DEADLINE_EXCEEDED for its own
timeouts and UNAVAILABLE for a refused or lost connection, as gRPC does. A
watch that the server ends raises WatchCanceled.
"""

from . import _proto


class RpcError(Exception):
    """A call that did not succeed.

    code       the status number (5)
    code_name  its gRPC name ("NOT_FOUND")
    message    why, in English ("key not found")
    method     the method path of the call, when known
    """

    def __init__(self, code, message="", method=None):
        self.code = int(code)
        self.code_name = status_name(self.code)
        self.message = message
        self.method = method
        super().__init__(str(self))

    def __str__(self):
        where = "%s: " % self.method if self.method else ""
        return "%s%s (%d): %s" % (where, self.code_name, self.code, self.message)

    def __reduce__(self):
        return (type(self), (self.code, self.message, self.method))


class InvalidArgument(RpcError):
    """INVALID_ARGUMENT: an empty key, or a request that does not decode."""


class KeyNotFound(RpcError, KeyError):
    """NOT_FOUND: Get of a key that is not there."""


class ResourceExhausted(RpcError):
    """RESOURCE_EXHAUSTED: a frame over the server's limit, or out of memory."""


class Unimplemented(RpcError):
    """UNIMPLEMENTED: the server has no such method; or, raised by the
    client, a conditional write (cas(), clear() with if_mod_revision) that
    a server before protocol v2 applied without its check."""


class DeadlineExceeded(RpcError, TimeoutError):
    """DEADLINE_EXCEEDED: no answer within the timeout (raised by the client)."""


class Unavailable(RpcError, ConnectionError):
    """UNAVAILABLE: the connection was refused or lost, or the server is stopping."""


class Unauthenticated(RpcError):
    """UNAUTHENTICATED: a call before a successful Auth, or a wrong token."""


class FailedPrecondition(RpcError):
    """FAILED_PRECONDITION: a conditional write (cas(), clear() with
    if_mod_revision, a Set or Clear with if_mod_revision) refused because
    the key's mod_revision was not the one given; nothing changed. The
    message says the key's current mod_revision."""


class WatchCanceled(Exception):
    """The server ended a watch (its stream's last frame said canceled):
    raised by the watch's iteration once the events before it are read.

    watch_id          the watch's id
    cancel_reason     why, in English (the server's words: "compacted",
                      "too slow", ...)
    compact_revision  in the compacted case (start_revision older than the
                      history the server keeps): the oldest revision a
                      watch may start from now; else 0
    compacted         compact_revision > 0

    Not an RpcError: the calls all succeeded; the stream was ended. A
    watch the client canceled itself (cancel(), close()) just stops.
    """

    def __init__(self, watch_id, cancel_reason="", compact_revision=0):
        self.watch_id = int(watch_id)
        self.cancel_reason = cancel_reason
        self.compact_revision = int(compact_revision)
        super().__init__(str(self))

    @property
    def compacted(self):
        return self.compact_revision > 0

    def __str__(self):
        more = (" (compacted: the oldest revision available is %d)" % self.compact_revision
                if self.compact_revision else "")
        return "watch %d canceled by the server: %s%s" % (self.watch_id, self.cancel_reason
                                                           or "no reason given", more)

    def __reduce__(self):
        return (type(self), (self.watch_id, self.cancel_reason, self.compact_revision))


_BY_NAME = {
    "UNAUTHENTICATED": Unauthenticated,
    "FAILED_PRECONDITION": FailedPrecondition,
    "INVALID_ARGUMENT": InvalidArgument,
    "NOT_FOUND": KeyNotFound,
    "RESOURCE_EXHAUSTED": ResourceExhausted,
    "UNIMPLEMENTED": Unimplemented,
    "DEADLINE_EXCEEDED": DeadlineExceeded,
    "UNAVAILABLE": Unavailable,
}


def status_name(code):
    """The gRPC name of status number CODE, from the proto's StatusCode enum."""
    value = _proto.status_enum().values_by_number.get(int(code))
    return value.name if value is not None else "CODE_%d" % int(code)


def status_code(name):
    """The number of the status called NAME ("NOT_FOUND" -> 5)."""
    return _proto.status_enum().values_by_name[name].number


def error_for(code, message="", method=None):
    """Builds the RpcError subclass that matches status CODE."""
    cls = _BY_NAME.get(status_name(code), RpcError)
    return cls(code, message, method)
