"""kvstore.aio - AsyncClient: the client for asyncio.

The same helpers and rpc methods as kvstore.Client, each a coroutine, on a
connection that any number of tasks use at once (their calls are in flight
together, matched by id), plus range() as an async iterator and watch():

    import asyncio
    import kvstore.aio

    async def main():
        async with await kvstore.aio.connect("127.0.0.1:7379") as c:
            await c.set(b"cfg/mode", b"on", ttl_ms=30000)
            print((await c.get_entry(b"cfg/mode")).ttl_ms)
            async with c.watch(prefix=b"cfg/") as w:
                async for event in w:
                    print(event.type, event.kv.key, event.kv.value)

    asyncio.run(main())

A task reads the socket for the connection; stream frames (the events of
a watch) go to their watch by id, whatever calls are in flight. Over TLS
(connect(..., ssl=context)), asyncio's own TLS transport carries the
frames; the handshake is part of the connect.
"""

import asyncio
import collections
import socket
import ssl

from . import _proto
from .connection import _deadline_exceeded, _unavailable, parse_endpoint, read_responses
from .errors import RpcError, error_for
from .framing import FrameReader, frame
from .route import Route
from .stubs import DEFAULT, Calls, _method, auth_envelope, bind_service, finish
from .tls import describe, refused, tls_of
from .values import UINT32_MAX, check_uint, next_page, page_limit, selector, watch_fields
from .watch import _NOT_FOUND, Stream, _StreamView, start

_RECV_BYTES = 1 << 20
# How long closing a TLS connection waits for the server's close_notify
# (asyncio's own default is 30 s).
_TLS_SHUTDOWN_TIMEOUT = 5.0
# How long a failed send waits for the reader to say why the connection
# ended: what ended it is already in the reader (a TLS alert, say).
_READER_ENDS = 1.0

__all__ = ["AsyncClient", "AsyncWatch", "connect"]


class AsyncConnection:
    """One TCP connection for asyncio: ids, futures of the calls in flight,
    the streams of the watches, and the task that reads. Use open(). TLS:
    the kvstore.tls.Tls it was opened with (None: plaintext)."""

    def __init__(self, reader, writer, endpoint, tls=None):
        self.endpoint = endpoint
        self.tls = tls
        self._reader = reader
        self._writer = writer
        self._frames = FrameReader()
        self._next_id = 1
        # id -> Future, or None once abandoned. Ordered: an answer with id 0
        # belongs to the oldest call in flight.
        self._inflight = collections.OrderedDict()
        self._streams = {}          # id of a Watch call -> its AsyncWatch
        self._broken = None
        self._refused = False       # gone on the server's TLS alert (tls.refused)
        self._closing = False
        self._answered = False      # a frame came from the server
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    @classmethod
    async def open(cls, endpoint, timeout, tls=None):
        """Connects within TIMEOUT seconds (None: no limit), the TLS
        handshake included when TLS (a kvstore.tls.Tls) is given. Raises
        DeadlineExceeded or Unavailable as the blocking client does."""
        host, port = parse_endpoint(endpoint)
        where = endpoint or "%s:%d" % (host, port)
        options = {}
        if tls is not None:
            options = dict(ssl=tls.context, server_hostname=tls.hostname(host),
                           ssl_shutdown_timeout=_TLS_SHUTDOWN_TIMEOUT)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, **options), timeout)
        except asyncio.TimeoutError:
            raise _deadline_exceeded("could not connect to %s within %gs"
                                     % (where, timeout)) from None
        except ssl.SSLError as exc:
            raise tls.failure(exc, where) from exc
        except OSError as exc:
            raise _unavailable("could not connect to %s: %s"
                               % (where, exc.strerror or exc)) from None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer, where, tls)

    @property
    def closed(self):
        return self._broken is not None

    async def close(self):
        """Closes the connection; calls in flight raise Unavailable."""
        self._closing = True
        self._fail("the client closed the connection")
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        try:
            await self._writer.wait_closed()
        except OSError:
            pass

    async def call(self, request, timeout=None, stream=None):
        """Sends REQUEST (an RpcRequest; its id is assigned here) and returns
        its RpcResponse, or the RpcError that ended it (a timeout, a lost
        connection): never raises for the call's failure. STREAM (an
        AsyncWatch) gets the stream frames of the call's id, from the
        moment it is sent until close_stream(CALL_ID), CALL_ID being set as
        its _call_id."""
        if self._broken is not None:
            return self._lost(request.method)
        envelope = _proto.RpcRequest()
        envelope.CopyFrom(request)
        call_id = envelope.id = self._next_id
        self._next_id += 1
        future = asyncio.get_running_loop().create_future()
        self._inflight[call_id] = future
        if stream is not None:
            stream._call_id = call_id
            self._streams[call_id] = stream
        self._writer.write(frame(envelope.SerializeToString()))
        try:
            await self._writer.drain()
            if timeout is None:
                return await future
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            return _deadline_exceeded("no answer from %s within %gs" % (self.endpoint, timeout),
                                      request.method)
        except (ConnectionError, OSError) as exc:   # from drain()
            # The reader learns why ("Connection lost" is all drain says):
            # the server's TLS alert, which says not to retry.
            await asyncio.wait({self._task}, timeout=_READER_ENDS)
            self._fail("connection to %s lost while sending: %s" % (self.endpoint, describe(exc)),
                       isinstance(exc, ssl.SSLError), refused(exc))
            return self._lost(request.method)
        finally:
            if not future.done() or future.cancelled():
                # Timed out or cancelled: its late answer will be dropped,
                # and so will the frames of a Watch that never opened.
                if call_id in self._inflight:
                    self._inflight[call_id] = None
                future.cancel()
                self._streams.pop(call_id, None)

    def close_stream(self, call_id):
        """Stops sending the frames of CALL_ID anywhere; later ones are dropped."""
        self._streams.pop(call_id, None)

    async def _read_loop(self):
        try:
            while True:
                data = await self._reader.read(_RECV_BYTES)
                if not data:
                    self._fail("the client closed the connection" if self._closing
                               else "connection closed by the server %s" % self.endpoint)
                    return
                responses, broken = read_responses(self._frames, data, self.endpoint)
                for response in responses:
                    self._deliver(response)
                if broken:
                    self._fail(broken)
                    return
        except OSError as exc:          # ssl.SSLError too: a TLS alert
            self._fail("connection to %s lost: %s" % (self.endpoint, describe(exc)),
                       isinstance(exc, ssl.SSLError), refused(exc))

    def _deliver(self, response):
        self._answered = True
        if response.stream:
            # A stream frame: never an answer, whatever its id says.
            watch = self._streams.get(response.id)
            if watch is not None:
                watch._feed(response)
            return
        call_id = response.id
        if call_id == 0 and response.code != 0 and self._inflight:
            call_id = next(iter(self._inflight))
        if call_id not in self._inflight:
            return
        future = self._inflight.pop(call_id)
        if future is not None and not future.done():
            future.set_result(response)

    def _lost(self, method=None):
        # The Unavailable of a call of METHOD on this broken connection.
        error = _unavailable(self._broken, method)
        error.refused = self._refused           # route._again reads it
        return error

    def _fail(self, why, by_tls=False, by_alert=False):
        # Marks the connection gone, for WHY; BY_TLS: WHY is what TLS said
        # (an alert from the server, say); BY_ALERT: the server refused this
        # client (tls.refused), so the calls are not retried.
        if self._broken is not None:
            return
        if self.tls is not None and not self._answered and not by_tls and not self._closing:
            # A server that refuses the client's certificate (TLS 1.3: after
            # the client's side of the handshake) sends an alert and closes;
            # a request written meanwhile can make the reset overtake the
            # alert, and then a reset or a close is all the client learns.
            why += " (no answer yet over TLS: was this client's certificate refused?)"
        self._broken = why
        self._refused = by_alert
        for future in self._inflight.values():
            if future is not None and not future.done():
                future.set_result(self._lost())
        self._inflight.clear()
        streams, self._streams = list(self._streams.values()), {}
        for watch in streams:
            watch._lost(_unavailable(why))
        self._writer.close()


class AsyncClient(Calls):
    """A connection to one kvstored for asyncio; make it with
    `await kvstore.aio.connect(...)`. Every helper of kvstore.Client
    (get, get_entry, set, cas, touch, clear, range_page, count,
    clear_range, txn().commit(), ping, auth) and every rpc method (Get,
    Set, ... Watch) is a coroutine here; range() is an async iterator and
    watch() an AsyncWatch. Any number of tasks may call at once. TIMEOUT:
    seconds per call (None: none)."""

    def __init__(self, connection, timeout=5.0, route=None, connect_timeout=5.0):
        self._conn = connection
        self._route = route or Route(connection.endpoint)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._token = None
        self._closed = False

    @property
    def endpoint(self):
        """The "HOST:PORT" connected to, or tried last."""
        return self._route.where

    @property
    def client_id(self):
        """The 16 bytes every write of this client carries."""
        return self._route.client_id

    async def _live_conn(self):
        """The connection, made again to route.where (and authenticated) if
        it is gone. Raises the RpcError of the connect."""
        if self._conn.closed:
            # Like the one it replaces: the same TLS.
            self._conn = await AsyncConnection.open(self._route.where, self.connect_timeout,
                                                    self._conn.tls)
            if self._token is not None:
                auth = auth_envelope(self._token)
                await self._conn.call(auth, self.connect_timeout)
        return self._conn

    async def _send(self, envelopes, wait):
        try:
            conn = await self._live_conn()
        except RpcError as exc:
            return [exc] * len(envelopes), False
        return list(await asyncio.gather(*(conn.call(e, wait) for e in envelopes))), True

    async def _run(self, envelopes, timeout):
        """kvstore.Client._run for asyncio: the tries kvstore.route plans."""
        if self._closed:
            return [_unavailable("the client was closed", e.method) for e in envelopes]
        plan = self._route.plan(envelopes, timeout, lambda: self._closed)
        reply = None
        while True:
            try:
                step = plan.send(reply)
            except StopIteration as done:
                return done.value
            if step[0] == "send":
                reply = await self._send([envelopes[i] for i in step[1]], step[2])
                continue
            await asyncio.sleep(step[1])
            await self._conn.close()
            reply = None

    async def auth(self, token, *, timeout=DEFAULT):
        """Calls.auth, and keeps TOKEN to present again on each new
        connection."""
        await super().auth(token, timeout=timeout)
        self._token = token

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    def __repr__(self):
        return "<kvstore.aio.AsyncClient %s%s>" % (self.endpoint, " closed" if self.closed else "")

    @property
    def closed(self):
        return self._conn.closed

    async def close(self):
        """Closes the connection; later calls raise Unavailable."""
        self._closed = True
        await self._conn.close()

    def _timeout(self, timeout):
        return self.timeout if timeout is DEFAULT else timeout

    async def _call(self, method, request, convert, timeout):
        envelope = _proto.RpcRequest(method=_proto.method_path(method),
                                     payload=request.SerializeToString())
        outcome = (await self._run([envelope], self._timeout(timeout)))[0]
        return finish(method, outcome, convert)

    async def exchange(self, envelope, timeout=DEFAULT):
        """Sends a hand-built RpcRequest; returns the RpcResponse whatever
        its code (raises only DeadlineExceeded or Unavailable). Retried as
        kvstore.Client.exchange() says."""
        outcome = (await self._run([envelope], self._timeout(timeout)))[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def invoke(self, method, payload=b"", timeout=DEFAULT):
        """Calls the method path METHOD with the serialized PAYLOAD; returns
        the serialized answer, raises the RpcError of a non-OK code."""
        response = await self.exchange(_proto.RpcRequest(method=method, payload=payload), timeout)
        if response.code != 0:
            raise error_for(response.code, response.message, method)
        return response.payload

    def range(self, start=None, end=None, *, prefix=None, limit=None, keys_only=False,
              reverse=False, page_size=0, serializable=False, timeout=DEFAULT):
        """Client.range() as an async iterator of Entry:

            async for e in c.range(prefix=b"user/"):
                print(e.key, e.value)
        """
        fields = selector(start, end, prefix)
        if limit is not None:
            check_uint(limit, "limit")
        check_uint(page_size, "page_size", UINT32_MAX)
        return self._range_pages(fields, limit or None,
                                 dict(keys_only=keys_only, reverse=reverse,
                                      serializable=serializable), page_size, timeout)

    async def _range_pages(self, fields, left, opts, page_size, timeout):
        while left is None or left > 0:
            page = await self.range_page(limit=page_limit(page_size, left), timeout=timeout,
                                         **opts, **fields)
            entries = page.entries if left is None else page.entries[:left]
            for entry in entries:
                yield entry
            if left is not None:
                left -= len(entries)
            fields = next_page(fields, page, opts["reverse"])
            if fields is None:
                return

    def watch(self, key=None, end=None, *, prefix=None, start_revision=0, prev_kv=False,
              timeout=DEFAULT):
        """Client.watch() for asyncio: an AsyncWatch, to await (the Watch
        call is answered: changes after that are seen), to use in an
        `async with` (the same, and cancel() on exit) or to iterate at once
        with `async for` (it starts then).

            async with c.watch(prefix=b"cfg/") as w:
                async for event in w:
                    ...
        """
        return AsyncWatch(self, watch_fields(key, end, prefix, start_revision, prev_kv), timeout)


bind_service(AsyncClient, _proto.service)


class AsyncWatch(_StreamView):
    """A watch of an AsyncClient (AsyncClient.watch()).

    `await w` (or `async with w`, or the first `async for`) makes the
    Watch call, raising its RpcError (InvalidArgument...). Then `async for
    event in w` yields WatchEvent in revision order, as they come; it
    stops after cancel(), raises WatchCanceled when the server ends the
    watch and Unavailable when the connection is lost. next_event(timeout)
    waits at most TIMEOUT seconds (None on none). The events are read from
    the socket as they come and kept until iterated. watch_id and
    last_revision as in kvstore.Watch."""

    def __init__(self, client, fields, timeout):
        self._client = client
        self._fields = fields
        self._timeout = timeout
        self._stream = Stream()
        self._call_id = None
        self._opening = None        # the task of the Watch call, once started
        self._conn = None           # the connection it opened on
        self._waiter = None         # a Future the iteration waits on

    _kind = "kvstore.aio.AsyncWatch"

    def __await__(self):
        return self.start().__await__()

    async def start(self):
        """Makes the Watch call (once; later calls wait for the same);
        returns self."""
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
        await self._opening
        return self

    async def _open(self):
        conn = self._conn = await self._client._live_conn()     # a watch never moves

        async def opener(envelope, timeout):
            outcome = await conn.call(envelope, timeout, stream=self)
            if isinstance(outcome, Exception) or outcome.code != 0:
                conn.close_stream(self._call_id)
            return outcome
        answer = finish(_method("Watch"), await start(self._client, self._fields, self._timeout,
                                                      opener))
        self._stream.watch_id = answer.watch_id
        if self._stream.take_answer(answer):
            conn.close_stream(self._call_id)
        self._wake()

    def _feed(self, frame):
        # A stream frame, from the connection's reading task.
        if self._stream.take(frame):
            self._conn.close_stream(self._call_id)
        self._wake()

    def _lost(self, error):
        if self._stream.ended is None:
            self._stream.ended = error
        self._wake()

    def _wake(self):
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self):
        return self

    async def __anext__(self):
        event = await self._next(None)
        if event is None:
            raise StopAsyncIteration
        return event

    async def next_event(self, timeout=None):
        """The next WatchEvent, waiting up to TIMEOUT seconds (None: no
        limit); None when the time is up, or the watch was closed by the
        client (see closed)."""
        return await self._next(timeout)

    async def _next(self, timeout):
        await self.start()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            try:
                event = self._stream.next()
            except StopIteration:
                return None
            if event is not None:
                return event
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return None
            self._waiter = loop.create_future()
            try:
                await asyncio.wait_for(self._waiter, left)
            except asyncio.TimeoutError:
                return None
            finally:
                self._waiter = None

    async def cancel(self, *, timeout=DEFAULT):
        """Ends the watch (CancelWatch, unless it has ended already); the
        events not read are dropped and the iteration stops. Raises the
        RpcError of the CancelWatch call; NOT_FOUND (the server ended it
        meanwhile) is no error."""
        if self._opening is not None and not self._opening.done():
            await asyncio.wait([self._opening])
        ended = (self._stream.ended is not None or self._opening is None
                 or self._opening.cancelled() or self._opening.exception() is not None)
        self._stream.close()
        self._wake()
        conn = self._conn or self._client._conn
        try:
            if not ended:
                await self._client.CancelWatch(watch_id=self.watch_id, timeout=timeout)
        except Exception as exc:
            if getattr(exc, "code", None) != _NOT_FOUND:
                raise
        finally:
            if self._call_id is not None:
                conn.close_stream(self._call_id)

    async def close(self):
        """cancel(), never raising."""
        try:
            await self.cancel()
        except Exception:  # an RpcError: nothing more to do about it here
            pass

    aclose = close

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.close()


async def connect(endpoint=None, timeout=5.0, connect_timeout=None, token=None, *, ssl=None,
                  server_hostname=None):
    """An AsyncClient connected to ENDPOINT ("HOST:PORT", default
    127.0.0.1:7379), or to the first of several ("a:1,b:2" or a list) that
    accepts, following a cluster as kvstore.Client does. TIMEOUT bounds
    each call, retries included (seconds; None: none), CONNECT_TIMEOUT
    each connect (default: TIMEOUT, or 5 s); TOKEN is sent with Auth at
    once, and again on every new connection. SSL (an ssl.SSLContext, or
    True) and SERVER_HOSTNAME: TLS on every connection, as
    kvstore.Client takes them."""
    if connect_timeout is None:
        connect_timeout = timeout if timeout is not None else 5.0
    tls = tls_of(ssl, server_hostname)
    route = Route(endpoint)
    for i, one in enumerate(route.endpoints):
        try:
            conn = await AsyncConnection.open(one, connect_timeout, tls)
        except RpcError:
            if i == len(route.endpoints) - 1:
                raise
            continue
        route.found(i)
        break
    client = AsyncClient(conn, timeout, route, connect_timeout)
    if token is not None:
        try:
            await client.auth(token)
        except BaseException:
            await client.close()
            raise
    return client

