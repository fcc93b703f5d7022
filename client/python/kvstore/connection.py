"""kvstore.connection - one TCP connection: ids, frames in flight, socket I/O.

Owns the socket and the table of calls in flight. It sends RpcRequest
envelopes and hands back RpcResponse envelopes matched by id; it knows
nothing about methods or messages (kvstore.client does that).

All I/O happens inside exchange(), on the caller's thread: the socket is
non-blocking and one selector loop writes requests while it reads answers,
as docs/PROTOCOL.md asks (the server stops reading from a client that does
not read). Bytes of a request still unsent when a call times out stay queued
and go out first on the next call, so a timeout never tears a frame and the
connection stays usable; a late answer to a call that timed out is dropped.
"""

import collections
import selectors
import socket
import threading
import time

from . import _proto
from .errors import error_for, status_code
from .framing import FrameReader, FramingError, frame

DEFAULT_PORT = 7379
DEFAULT_HOST = "127.0.0.1"
_RECV_BYTES = 1 << 20
_SEND_BYTES = 1 << 20


def parse_endpoint(endpoint):
    """Splits "HOST:PORT", "HOST", "[V6]:PORT" or None into (host, port).
    A port that is not 0 to 65535 in decimal digits is a ValueError."""
    if not endpoint:
        return DEFAULT_HOST, DEFAULT_PORT
    if endpoint.startswith("["):
        host, _, rest = endpoint[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif endpoint.count(":") == 1:
        host, port = endpoint.split(":")
    else:
        host, port = endpoint, ""
    if not port:
        return host or DEFAULT_HOST, DEFAULT_PORT
    # Digits only (int() would take " 80", "+80" and "8_0") and at most
    # 65535, the rule of the C parser (src/endpoint.c).
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError("bad port %r in endpoint %r (want a number from 0 to 65535)"
                         % (port, endpoint))
    return host or DEFAULT_HOST, int(port)


def _unavailable(message, method=None):
    return error_for(status_code("UNAVAILABLE"), message, method)


def _deadline_exceeded(message, method=None):
    return error_for(status_code("DEADLINE_EXCEEDED"), message, method)


def connect(endpoint, timeout, source_address=None):
    """A TCP socket connected to ENDPOINT within TIMEOUT seconds (None: no
    limit), Nagle off, left with that timeout. Raises DeadlineExceeded when
    the time is up, Unavailable when the connect fails."""
    host, port = parse_endpoint(endpoint)
    where = endpoint or "%s:%d" % (host, port)
    try:
        sock = socket.create_connection((host, port), timeout=timeout,
                                        source_address=source_address)
    except socket.timeout:
        raise _deadline_exceeded("could not connect to %s within %gs" % (where, timeout)) from None
    except OSError as exc:
        raise _unavailable("could not connect to %s: %s" % (where, exc.strerror or exc)) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class Connection:
    """A connected socket plus the calls in flight on it. Thread-safe: one
    exchange() runs at a time."""

    def __init__(self, endpoint=None, connect_timeout=5.0):
        self.endpoint = endpoint or "%s:%d" % (DEFAULT_HOST, DEFAULT_PORT)
        sock = connect(endpoint, connect_timeout)
        sock.setblocking(False)
        self._sock = sock
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)
        self._lock = threading.Lock()
        self._next_id = 1
        self._out = bytearray()          # bytes not yet written to the socket
        self._reader = FrameReader()
        # id -> slot index in the running exchange, or None once abandoned.
        # Ordered: an answer with id 0 belongs to the oldest call in flight.
        self._inflight = collections.OrderedDict()
        self._broken = None              # why the connection is gone, once it is
        self._closing = False            # close() was called

    @property
    def closed(self):
        return self._broken is not None

    def close(self):
        """Closes the socket. Calls in flight in another thread and calls
        made afterwards raise Unavailable."""
        self._closing = True
        try:
            # Wakes a thread blocked in exchange() now, not at its deadline.
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        with self._lock:
            self._fail("the client closed the connection")

    def exchange(self, requests, timeout=None):
        """Sends RpcRequest envelopes (their ids are assigned here) and waits
        for every answer. Returns a list in the same order holding, for each
        request, its RpcResponse or the RpcError that ended it (a timeout,
        a lost connection). TIMEOUT in seconds bounds the whole exchange
        (None: wait forever). Never raises for a single call's failure."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            results = [None] * len(requests)
            if self._broken is not None:
                return [_unavailable(self._broken, r.method) for r in requests]
            waiting = {}
            for index, request in enumerate(requests):
                envelope = _proto.RpcRequest()
                envelope.CopyFrom(request)
                envelope.id = self._next_id
                self._next_id += 1
                self._inflight[envelope.id] = index
                waiting[envelope.id] = request.method
                self._out += frame(envelope.SerializeToString())
            try:
                self._pump(results, waiting, deadline, timeout)
            finally:
                # Interrupted (KeyboardInterrupt...): whatever still waits is
                # abandoned, so its late answer cannot land in another call.
                for call_id in waiting:
                    if call_id in self._inflight:
                        self._inflight[call_id] = None
            return results

    def _pump(self, results, waiting, deadline, timeout):
        # Runs the socket until every id in WAITING has a result.
        while waiting:
            if self._broken is not None:
                for call_id, method in waiting.items():
                    results[self._inflight.pop(call_id)] = _unavailable(self._broken, method)
                waiting.clear()
                return
            wait = None
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    self._abandon(results, waiting, timeout)
                    return
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self._out else 0)
            self._selector.modify(self._sock, events)
            for _key, ready in self._selector.select(wait):
                if ready & selectors.EVENT_WRITE:
                    self._write()
                if ready & selectors.EVENT_READ and self._broken is None:
                    self._read(results, waiting)

    def _abandon(self, results, waiting, timeout):
        # The deadline passed: the calls fail, their late answers will be dropped.
        for call_id, method in waiting.items():
            results[self._inflight[call_id]] = _deadline_exceeded(
                "no answer from %s within %gs" % (self.endpoint, timeout), method)
            self._inflight[call_id] = None
        waiting.clear()

    def _write(self):
        try:
            sent = self._sock.send(memoryview(self._out)[:_SEND_BYTES])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail("connection to %s lost while sending: %s"
                       % (self.endpoint, exc.strerror or exc))
            return
        del self._out[:sent]

    def _read(self, results, waiting):
        try:
            data = self._sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail("connection to %s lost: %s" % (self.endpoint, exc.strerror or exc))
            return
        if not data:
            self._fail("the client closed the connection" if self._closing
                       else "connection closed by the server %s" % self.endpoint)
            return
        try:
            bodies = self._reader.feed(data)
        except FramingError as exc:
            self._fail("bad frame from %s: %s" % (self.endpoint, exc))
            return
        for body in bodies:
            response = _proto.RpcResponse()
            try:
                response.ParseFromString(body)
            except Exception as exc:  # DecodeError; the stream is still framed
                self._fail("undecodable answer from %s: %s" % (self.endpoint, exc))
                return
            self._deliver(response, results, waiting)

    def _deliver(self, response, results, waiting):
        call_id = response.id
        if call_id == 0 and response.code != 0 and self._inflight:
            # The server could not read a request: answers come in order, so
            # it is the oldest one in flight.
            call_id = next(iter(self._inflight))
        if call_id not in self._inflight:
            return  # not ours (a stray id): nothing waits for it
        index = self._inflight.pop(call_id)
        waiting.pop(call_id, None)
        if index is not None:
            results[index] = response

    def _fail(self, why):
        # Marks the connection gone and closes the socket; the calls still
        # waiting see self._broken on the next turn of _pump().
        if self._broken is None:
            self._broken = why
            try:
                self._selector.unregister(self._sock)
            except (KeyError, ValueError):
                pass
            self._selector.close()
            self._sock.close()
