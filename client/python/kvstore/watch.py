"""kvstore.watch - Watch: the changes to a key, a range or a prefix, as they
happen (docs/PROTOCOL.md, Watch).

Client.watch() makes the Watch call, whose answer carries the watch's id;
from then on the server sends stream frames (RpcResponse.stream = true,
the id of the Watch call) holding the events, between the answers of any
other calls on the connection. The connection keeps those frames for the
watch (kvstore.connection), so other calls go on meanwhile, and the watch
hands the events out, one WatchEvent at a time, when it is iterated:

    with c.watch(prefix=b"cfg/", prev_kv=True) as w:
        c.set(b"cfg/mode", b"on")           # calls go on on the same client
        for event in w:                     # waits for the next event
            print(event.type, event.kv.key, event.kv.value, event.revision)

The asyncio form is kvstore.aio.AsyncClient.watch().
"""

import collections
import time

from . import _proto
from .errors import WatchCanceled, error_for, status_code
from .stubs import DEFAULT, _method, finish
from .values import watch_events

_NOT_FOUND = status_code("NOT_FOUND")


class Stream:
    """What the blocking and the asyncio watch share: the stream frames
    turned into events waiting to be read, and how the watch ended."""

    __slots__ = ("watch_id", "events", "ended", "last_revision")

    def __init__(self):
        self.watch_id = 0
        self.events = collections.deque()   # WatchEvents not read yet
        # None while open; True once the client ended it (its events are
        # dropped); an exception (WatchCanceled, an RpcError) to raise once
        # the events before it are read.
        self.ended = None
        self.last_revision = 0

    def take(self, frame):
        """Takes one stream frame (an RpcResponse). Returns True when it was
        the watch's last (canceled, or an error)."""
        if self.ended is not None:
            return True
        if frame.code != 0:
            self.ended = error_for(frame.code, frame.message, _proto.method_path(_method("Watch")))
            return True
        answer = _proto.message_class(_method("Watch").output_type).FromString(frame.payload)
        return self.take_answer(answer)

    def take_answer(self, answer):
        """Takes the events of a WatchResponse (a frame's, or the Watch
        call's own answer should it carry any); True when it ends the watch."""
        if self.ended is not None:
            return True
        self.events.extend(watch_events(answer))
        if answer.canceled:
            self.ended = WatchCanceled(self.watch_id or answer.watch_id, answer.cancel_reason,
                                       answer.compact_revision)
            return True
        return False

    def next(self):
        """The next event; None when there is none to read now and the watch
        is open; raises how the server ended it; StopIteration once the
        client did."""
        if self.ended is True:
            raise StopIteration
        if self.events:
            event = self.events.popleft()
            self.last_revision = event.revision
            return event
        if self.ended is not None:
            raise self.ended
        return None

    def close(self):
        """The client ends the watch: what was not read is dropped."""
        self.ended = True
        self.events.clear()


def start(calls, fields, timeout, opener):
    """Sends the Watch call of FIELDS with OPENER (the connection's
    open_stream or its asyncio twin) and returns (outcome, call id)."""
    request = _proto.message_class(_method("Watch").input_type)(**fields)
    envelope = _proto.RpcRequest(method=_proto.method_path(_method("Watch")),
                                 payload=request.SerializeToString())
    return opener(envelope, calls._timeout(timeout))


class _StreamView:
    """What kvstore.Watch and kvstore.aio.AsyncWatch tell of their Stream
    (self._stream): its id, the last revision read, whether it ended."""

    _kind = "kvstore.Watch"

    @property
    def watch_id(self):
        return self._stream.watch_id

    @property
    def last_revision(self):
        return self._stream.last_revision

    @property
    def closed(self):
        """True once cancel() or close() ran, or the server's last frame came."""
        return self._stream.ended is not None

    def __repr__(self):
        return "<%s %d%s>" % (self._kind, self.watch_id, " closed" if self.closed else "")


class Watch(_StreamView):
    """A watch of one Client; make it with Client.watch().

    Iterating it yields WatchEvent (type, kv, prev_kv, expired; revision)
    in revision order, waiting as long as it takes for each; the iteration
    stops after cancel() or close(), and raises WatchCanceled when the
    server ends the watch (after the events before that), Unavailable when
    the connection is lost. next_event(timeout) waits at most TIMEOUT
    seconds. Events that arrive while other calls of the client run are
    kept for the watch (in the client's memory: read them). Use it in a
    with block, or call close(), to end the watch on the server too.

    watch_id       the server's id of the watch
    last_revision  the revision of the last event handed out (0: none
                   yet); a new watch from last_revision + 1 resumes it
    """

    def __init__(self, client, fields, timeout=DEFAULT):
        self._client = client
        self._conn = client._live_conn()     # stays on it: a watch never moves
        self._stream = Stream()
        outcome, self._call_id = start(client, fields, timeout, self._conn.open_stream)
        answer = finish(_method("Watch"), outcome)
        self._stream.watch_id = answer.watch_id
        if self._stream.take_answer(answer):
            self._conn.close_stream(self._call_id)


    def __iter__(self):
        return self

    def __next__(self):
        event = self._next(None)
        if event is None:
            raise StopIteration
        return event

    def next_event(self, timeout=None):
        """The next WatchEvent, waiting up to TIMEOUT seconds (None: no
        limit); None when the time is up with no event, or the watch was
        closed by the client (see closed). Raises WatchCanceled or
        Unavailable as the iteration does."""
        return self._next(timeout)

    def _next(self, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                event = self._stream.next()
            except StopIteration:
                return None
            if event is not None:
                return event
            for frame in self._conn.take_stream(self._call_id):
                if self._stream.take(frame):
                    self._conn.close_stream(self._call_id)
            if self._stream.events or self._stream.ended is not None:
                continue
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            self._conn.wait_stream(self._call_id, left)

    def cancel(self, *, timeout=DEFAULT):
        """Ends the watch: sends CancelWatch (unless the watch has ended
        already) and waits for its answer; events not read are dropped and
        the iteration stops. Raises the RpcError of the CancelWatch call
        (Unavailable when the connection is gone); a watch the server has
        ended meanwhile (NOT_FOUND) is no error."""
        if self._stream.ended is not None:
            self._stream.close()
            self._conn.close_stream(self._call_id)
            return
        self._stream.close()
        try:
            self._client.CancelWatch(watch_id=self.watch_id, timeout=timeout)
        except Exception as exc:
            if getattr(exc, "code", None) != _NOT_FOUND:
                raise
        finally:
            self._conn.close_stream(self._call_id)

    def close(self):
        """cancel(), never raising: on a lost connection, or when CancelWatch
        fails, the watch just ends here."""
        try:
            self.cancel()
        except Exception:  # an RpcError: nothing more to do about it here
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # Dropped without close(): stop keeping its frames (no I/O, no lock
        # here; the server's watch ends with the connection).
        conn = getattr(self, "_conn", None)
        if conn is not None and getattr(self, "_call_id", None) is not None:
            conn._streams.pop(self._call_id, None)
