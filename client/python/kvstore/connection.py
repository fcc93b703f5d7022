"""kvstore.connection - one TCP connection: ids, frames in flight, socket I/O.

Owns the socket and the table of calls in flight. It sends RpcRequest
envelopes and hands back RpcResponse envelopes matched by id; it knows
nothing about methods or messages (kvstore.client does that).

All I/O happens on the callers' threads, inside exchange() and
wait_stream(): the socket is non-blocking and one selector loop writes
requests while it reads answers, as docs/PROTOCOL.md asks (the server stops
reading from a client that does not read). One thread at a time runs that
loop (the reader); the others wait for it to hand them their answers, and
take the role over when it leaves. Bytes of a request still unsent when a
call times out stay queued and go out first on the next call, so a timeout
never tears a frame and the connection stays usable; a late answer to a
call that timed out is dropped.

Stream frames (RpcResponse.stream = true: the events of a Watch, sent
between the answers of other calls) are never taken for answers: they are
kept, by the id of the Watch call, until the watch reads them
(open_stream, take_stream, wait_stream, close_stream).

Over TLS (a kvstore.tls.Tls) the socket is an ssl.SSLSocket, its handshake
done while still blocking in connect(). The loop is the same, with three
differences: a read or a write may need the socket the other way first
(SSLWantWriteError, SSLWantReadError), so the loop waits for that; a recv
gives one TLS record at most, so a turn reads records until the socket has
no more; and bytes already decrypted inside the SSL object (pending())
make no socket readable, so a turn with some does not wait in select().
"""

import collections
import selectors
import socket
import ssl
import threading
import time

from . import _proto
from .errors import error_for, status_code
from .framing import FrameReader, FramingError, frame
from .tls import describe, refused

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


def read_responses(frames, data, endpoint):
    """The RpcResponses of the frames DATA completes in FRAMES (a
    FrameReader), and the reason the connection cannot go on (None when it
    can): a bad frame, or one that is not an RpcResponse (the responses
    before it are still returned, to be delivered first)."""
    try:
        bodies = frames.feed(data)
    except FramingError as exc:
        return [], "bad frame from %s: %s" % (endpoint, exc)
    responses = []
    for body in bodies:
        response = _proto.RpcResponse()
        try:
            response.ParseFromString(body)
        except Exception as exc:  # DecodeError; the stream is still framed
            return responses, "undecodable answer from %s: %s" % (endpoint, exc)
        responses.append(response)
    return responses, None


def _unavailable(message, method=None):
    return error_for(status_code("UNAVAILABLE"), message, method)


def _deadline_exceeded(message, method=None):
    return error_for(status_code("DEADLINE_EXCEEDED"), message, method)


def connect(endpoint, timeout, source_address=None, tls=None):
    """A TCP socket connected to ENDPOINT within TIMEOUT seconds (None: no
    limit), Nagle off, left with that timeout; with TLS (a kvstore.tls.Tls),
    an ssl.SSLSocket whose handshake is done, within TIMEOUT too. Raises
    DeadlineExceeded when the time is up, Unavailable when the connect or
    the handshake fails (a certificate refused, say: the message says
    why)."""
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
    if tls is not None:
        return tls.wrap(sock, host, where)
    return sock


class _Call:
    """One request waiting for its answer: OUTCOME is None until the
    RpcResponse (or the RpcError that ended the call) is there."""

    __slots__ = ("method", "outcome")

    def __init__(self, method):
        self.method = method
        self.outcome = None


class Connection:
    """A connected socket plus the calls in flight on it. Thread-safe:
    threads may call exchange() at the same time (their requests share the
    socket), and a thread waiting for stream frames lets them. TLS: a
    kvstore.tls.Tls, or None for plaintext."""

    def __init__(self, endpoint=None, connect_timeout=5.0, tls=None):
        self.endpoint = endpoint or "%s:%d" % (DEFAULT_HOST, DEFAULT_PORT)
        self.tls = tls
        sock = connect(endpoint, connect_timeout, tls=tls)
        sock.setblocking(False)
        self._sock = sock
        # TLS only: the last read stopped until the socket takes a write,
        # the last write until it has bytes to read.
        self._read_wants_write = False
        self._write_wants_read = False
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ, "sock")
        # A socket pair written to wake the reader out of select() when
        # another thread has queued bytes to send; made the first time that
        # happens (a single-threaded client never needs it).
        self._wake_r = self._wake_w = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)   # after each turn of the reader
        self._reading = False            # a thread runs the selector loop
        self._followers = 0              # threads in _changed.wait()
        self._next_id = 1
        self._out = bytearray()          # bytes not yet written to the socket
        self._reader = FrameReader()
        # id -> _Call, or None once abandoned (timed out, interrupted).
        # Ordered: an answer with id 0 belongs to the oldest call in flight.
        self._inflight = collections.OrderedDict()
        # id of a Watch call -> deque of its stream frames not yet taken.
        self._streams = {}
        self._broken = None              # why the connection is gone, once it is
        self._refused = False            # gone on the server's TLS alert (tls.refused)
        self._closing = False            # close() was called
        self._released = False           # socket and selector closed

    @property
    def closed(self):
        return self._broken is not None

    def close(self):
        """Closes the socket. Calls in flight in another thread and calls
        made afterwards raise Unavailable."""
        self._closing = True
        self._shutdown()    # wakes a thread blocked in select() now, not at its deadline
        with self._lock:
            self._fail("the client closed the connection")

    def exchange(self, requests, timeout=None):
        """Sends RpcRequest envelopes (their ids are assigned here) and waits
        for every answer. Returns a list in the same order holding, for each
        request, its RpcResponse or the RpcError that ended it (a timeout,
        a lost connection). TIMEOUT in seconds bounds the whole exchange
        (None: wait forever). Never raises for a single call's failure."""
        return self._exchange(requests, timeout, False)[0]

    def open_stream(self, request, timeout=None):
        """exchange() of one request that opens a stream (Watch): its stream
        frames are kept from the moment it is sent. Returns (outcome, id):
        while the outcome is an OK answer, take_stream(id) and
        wait_stream(id) give the frames; close_stream(id) ends that. A
        failed call keeps nothing."""
        outcomes, ids = self._exchange([request], timeout, True)
        outcome = outcomes[0]
        if isinstance(outcome, Exception) or outcome.code != 0:
            self.close_stream(ids[0])
        return outcome, ids[0]

    def take_stream(self, call_id):
        """The stream frames of CALL_ID received so far (RpcResponse, in the
        order they came), removed from the connection's keeping."""
        with self._lock:
            sink = self._streams.get(call_id)
            if not sink:
                return []
            frames = list(sink)
            sink.clear()
            return frames

    def wait_stream(self, call_id, timeout=None):
        """Reads until a stream frame of CALL_ID is kept, TIMEOUT seconds
        (None: no limit) pass, or the stream was closed. Returns whether a
        frame is there. Raises Unavailable when the connection is gone and
        no frame is left."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            def ready():
                return bool(self._streams.get(call_id)) or call_id not in self._streams
            self._run(ready, deadline)
            if self._streams.get(call_id):
                return True
            if self._broken is not None and call_id in self._streams:
                raise _unavailable(self._broken)
            return False

    def close_stream(self, call_id):
        """Stops keeping the frames of CALL_ID; later ones are dropped."""
        with self._lock:
            self._streams.pop(call_id, None)
            if self._followers:
                self._changed.notify_all()

    def _exchange(self, requests, timeout, stream):
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if self._broken is not None:
                return [self._lost(r.method) for r in requests], []
            calls, ids = [], []
            for request in requests:
                envelope = _proto.RpcRequest()
                envelope.CopyFrom(request)
                envelope.id = self._next_id
                self._next_id += 1
                call = _Call(request.method)
                self._inflight[envelope.id] = call
                if stream:
                    self._streams[envelope.id] = collections.deque()
                calls.append(call)
                ids.append(envelope.id)
                self._out += frame(envelope.SerializeToString())
            if self._reading:
                self._wake()    # the reader in select() must now wait to write too
            else:
                self._write()   # at once: most requests leave without a select()
            if len(calls) == 1:
                def done(call=calls[0]):
                    return call.outcome is not None
            else:
                def done():
                    return all(c.outcome is not None for c in calls)
            try:
                self._run(done, deadline)
            finally:
                # Timed out or interrupted (KeyboardInterrupt...): what still
                # waits is abandoned, so its late answer cannot land in
                # another call.
                for call_id, call in zip(ids, calls):
                    if call.outcome is None:
                        late = ("no answer from %s within %gs" % (self.endpoint, timeout)
                                if timeout is not None else "abandoned")
                        call.outcome = _deadline_exceeded(late, call.method)
                        if call_id in self._inflight:
                            self._inflight[call_id] = None
                        self._streams.pop(call_id, None)
            return [c.outcome for c in calls], ids

    def _run(self, done, deadline):
        # With the lock held: until DONE() is true, the connection is gone or
        # DEADLINE (monotonic; None: none) passes, either runs the selector
        # loop (when no other thread does) or waits for the thread that
        # does to report a turn.
        while not done() and self._broken is None:
            wait = None
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    return
            if self._reading:
                self._followers += 1
                try:
                    self._changed.wait(wait)
                finally:
                    self._followers -= 1
                continue
            self._reading = True
            try:
                self._turn(wait)
            finally:
                self._reading = False
                if self._broken is not None:
                    self._release()
                if self._followers:
                    self._changed.notify_all()

    def _turn(self, wait):
        # One select() (without the lock, so other threads may queue
        # requests meanwhile: they wake us), then the writes and reads it
        # allows (with the lock).
        writing = (self._out and not self._write_wants_read) or self._read_wants_write
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if writing else 0)
        self._selector.modify(self._sock, events, "sock")
        decrypted = self.tls is not None and self._sock.pending() > 0
        self._lock.release()
        try:
            ready = self._selector.select(0 if decrypted else wait)
        finally:
            self._lock.acquire()
        for key, mask in ready:
            if self._broken is not None:
                return
            if key.data == "wake":
                self._drain_wake()
                continue
            if mask & selectors.EVENT_WRITE:
                if self._read_wants_write:
                    self._read_wants_write = False
                    self._read()
                if self._out and self._broken is None:
                    self._write()
            if mask & selectors.EVENT_READ and self._broken is None:
                if self._write_wants_read:
                    self._write_wants_read = False
                    self._write()
                if self._broken is None:
                    self._read()
                    decrypted = False
        if decrypted and self._broken is None:
            self._read()

    def _wake(self):
        # Makes the thread in select() come back and look at _out.
        if self._wake_w is None:
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            self._wake_w.send(b"w")
        except (BlockingIOError, InterruptedError):
            pass                        # already full of wake-ups

    def _drain_wake(self):
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _write(self):
        # A TLS write that could not finish is retried with the same bytes
        # first, as OpenSSL asks: _out only grows at its end meanwhile.
        try:
            sent = self._sock.send(memoryview(self._out)[:_SEND_BYTES])
        except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
            return
        except ssl.SSLWantReadError:
            self._write_wants_read = True
            return
        except OSError as exc:
            if self.tls is not None:
                # The server's TLS alert, when it sent one before closing,
                # says more ("tlsv13 alert certificate required"): read it
                # first, its failure then wins.
                self._read()
            self._fail("connection to %s lost while sending: %s" % (self.endpoint, describe(exc)))
            return
        del self._out[:sent]

    def _read(self):
        data, ended = self._receive()
        if data:
            responses, broken = read_responses(self._reader, data, self.endpoint)
            for response in responses:
                self._deliver(response)
            if broken:
                self._fail(broken)
                return
        if ended:
            self._fail("the client closed the connection" if self._closing else ended)

    def _receive(self):
        # The bytes the socket has now (at most _RECV_BYTES), and why the
        # connection ended after them (None while it goes on). Plaintext:
        # one recv. TLS: a record per recv, so recv until there is none.
        chunks, size, ended = [], 0, None
        while size < _RECV_BYTES:
            try:
                data = self._sock.recv(_RECV_BYTES - size)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                break
            except ssl.SSLWantWriteError:
                self._read_wants_write = True
                break
            except OSError as exc:          # ssl.SSLError too: a TLS alert
                ended = "connection to %s lost: %s" % (self.endpoint, describe(exc))
                self._refused = refused(exc)
                break
            if not data:
                ended = "connection closed by the server %s" % self.endpoint
                break
            chunks.append(data)
            size += len(data)
            if self.tls is None:
                break
        return b"".join(chunks), ended

    def _deliver(self, response):
        if response.stream:
            # A stream frame: never an answer, whatever its id says.
            sink = self._streams.get(response.id)
            if sink is not None:
                sink.append(response)
            return      # a stream nobody keeps (closed, or a raw Watch): dropped
        call_id = response.id
        if call_id == 0 and response.code != 0 and self._inflight:
            # The server could not read a request: answers come in order, so
            # it is the oldest one in flight.
            call_id = next(iter(self._inflight))
        if call_id not in self._inflight:
            return  # not ours (a stray id): nothing waits for it
        call = self._inflight.pop(call_id)
        if call is not None:
            call.outcome = response

    def _lost(self, method):
        # The Unavailable of a call of METHOD on this broken connection.
        error = _unavailable(self._broken, method)
        error.refused = self._refused           # route._again reads it
        return error

    def _fail(self, why):
        # Marks the connection gone: every call still waiting gets
        # Unavailable, stream waiters see _broken. The socket and selector
        # are closed now, or by the reader when it leaves select().
        if self._broken is not None:
            return
        self._broken = why
        for call in self._inflight.values():
            if call is not None:
                call.outcome = self._lost(call.method)
        self._inflight.clear()
        if self._reading:
            self._shutdown()
        else:
            self._release()
        if self._followers:
            self._changed.notify_all()

    def _shutdown(self):
        # Ends the socket's traffic both ways, so a select() on it returns.
        # The plain socket's shutdown even for an ssl.SSLSocket: its own
        # drops the SSL object, which the reader may be using (close()
        # calls this without the lock).
        try:
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def _release(self):
        if self._released:
            return
        self._released = True
        self._selector.close()
        self._sock.close()
        if self._wake_r is not None:
            self._wake_r.close()
            self._wake_w.close()
