"""kvstore.raw - RawConnection: requests sent and answers read when the caller says.

For tests and tools that need to control the conversation rather than have
it managed: pipelining requests without reading the answers, reading them
later, one at a time, in the order the server sent them, or writing bytes of
their own to the socket. It matches nothing by id and never reads unless
asked. Applications want kvstore.Client, which does all of that for them.
"""

import collections
import socket
import time

from . import _proto
from .connection import DEFAULT_HOST, DEFAULT_PORT, _deadline_exceeded, _unavailable, connect
from .framing import FrameReader, FramingError, frame
from .stubs import DEFAULT
from .tls import tls_of

_RECV_BYTES = 1 << 20


def method_path(method):
    """The path of METHOD, an rpc name ("Get") or already a path."""
    if method.startswith("/"):
        return method
    return _proto.method_path(_proto.service.methods_by_name[method])


class RawConnection:
    """One blocking TCP connection to ENDPOINT ("HOST:PORT").

    TIMEOUT (seconds; None: none) bounds the connect and, unless it passes
    its own, each receive(). SOURCE_ADDRESS is create_connection's (the
    local (host, port) to connect from). sock is the socket itself, for
    bytes of your own (a partial frame, say) or options; next_id is the id
    the next request gets. Not thread-safe. Raises Unavailable when the
    server cannot be reached, DeadlineExceeded when the connect times out.
    SSL and SERVER_HOSTNAME: TLS, as kvstore.Client takes them (sock is
    then an ssl.SSLSocket).
    """

    def __init__(self, endpoint=None, timeout=5.0, source_address=None, *, ssl=None,
                 server_hostname=None):
        self.endpoint = endpoint or "%s:%d" % (DEFAULT_HOST, DEFAULT_PORT)
        self.timeout = timeout
        self.sock = connect(endpoint, timeout, source_address, tls_of(ssl, server_hostname))
        self.next_id = 1
        self._reader = FrameReader()
        self._answers = collections.deque()     # received, not yet handed out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, calls):
        """Writes CALLS, a list of (method, request), in one go and reads
        nothing; returns their ids. METHOD is an rpc name ("Get") or a path;
        REQUEST its request message, the message already serialized, or
        None (empty). Raises Unavailable when the connection is lost."""
        out, ids = bytearray(), []
        for method, request in calls:
            if request is None:
                payload = b""
            elif isinstance(request, (bytes, bytearray)):
                payload = bytes(request)
            else:
                payload = request.SerializeToString()
            envelope = _proto.RpcRequest(id=self.next_id, method=method_path(method),
                                         payload=payload)
            out += frame(envelope.SerializeToString())
            ids.append(self.next_id)
            self.next_id += 1
        try:
            self.sock.sendall(out)
        except OSError as exc:
            raise _unavailable("connection to %s lost while sending: %s"
                               % (self.endpoint, exc.strerror or exc)) from None
        return ids

    def receive(self, timeout=DEFAULT):
        """The next answer, an RpcResponse (whatever its code), in the order
        the server sent them; a Watch's stream frames (stream = true) come
        out here too, between the answers they arrived between. Raises DeadlineExceeded when none is complete
        within TIMEOUT (default: the connection's; bytes of a partial answer
        are kept for the next call), Unavailable when the connection is
        closed or lost."""
        timeout = self.timeout if timeout is DEFAULT else timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        late = "no answer from %s within %ss" % (self.endpoint, timeout)
        while not self._answers:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise _deadline_exceeded(late)
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(_RECV_BYTES)
            except socket.timeout:
                raise _deadline_exceeded(late) from None
            except OSError as exc:
                raise _unavailable("connection to %s lost: %s"
                                   % (self.endpoint, exc.strerror or exc)) from None
            finally:
                self.sock.settimeout(self.timeout)
            if not data:
                raise _unavailable("connection closed by the server %s" % self.endpoint)
            try:
                bodies = self._reader.feed(data)
            except FramingError as exc:
                raise _unavailable("bad frame from %s: %s" % (self.endpoint, exc)) from None
            self._answers.extend(_proto.RpcResponse.FromString(body) for body in bodies)
        return self._answers.popleft()

    def call(self, method, request=None, timeout=DEFAULT):
        """send() of one call, then receive(): its RpcResponse, assuming
        every earlier answer has been received."""
        self.send([(method, request)])
        return self.receive(timeout)
