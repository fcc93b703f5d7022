"""kvstore.client - Client: a connection you call methods on.

Each call runs at once and returns its answer or raises its RpcError. The
rpc methods come from the service descriptor (see kvstore.stubs); invoke()
and exchange() reach the envelope itself, for methods the descriptor does
not know. With a cluster, each call goes where kvstore.route says.
"""

import threading
import time

from . import _proto
from .connection import Connection, _unavailable
from .pipeline import Pipeline
from .route import Route
from .stubs import DEFAULT, Calls, auth_envelope, bind_service, finish
from .tls import tls_of
from .values import UINT32_MAX, check_uint, next_page, page_limit, selector, watch_fields
from .errors import error_for


class Client(Calls):
    """A connection to one kvstored, or to a node of a cluster.

    ENDPOINT is "HOST:PORT" (default "127.0.0.1:7379"), or several for a
    cluster: "a:7379,b:7379" or a list of them; the client connects to the
    first that accepts. TIMEOUT (seconds, None for none) bounds each call,
    its retries included, unless the call passes its own; CONNECT_TIMEOUT
    bounds each connect (default: TIMEOUT, or 5 s). TOKEN, for a server
    started with --auth-token-file, is sent with Auth at once and again on
    every new connection. Raises Unavailable when no endpoint can be
    reached (an RpcError UNAUTHENTICATED for a wrong token). Close it with
    close() or use it in a with block. Threads may share a Client: their
    calls share the connection, in flight together.

    SSL, for a server started with --tls-cert: an ssl.SSLContext
    (kvstore.tls_context(cafile, certfile, keyfile) makes one, a client
    certificate included), or True for the system's CAs; None (the
    default): plaintext. SERVER_HOSTNAME is the name the server's
    certificate must show (default: the host of the endpoint connected
    to, an IP address included). Every connection of the client uses them:
    reconnects, the other endpoints, the leader a node names. A handshake
    that fails raises Unavailable saying why ("TLS handshake with
    127.0.0.1:7379 failed: certificate verify failed: ..."); a server that
    refuses the client's certificate (TLS 1.3: after the handshake) ends
    the connection at the first call, which raises Unavailable ("...
    tlsv13 alert certificate required") at once: a new connection would be
    refused too, so it is not retried.

    With a cluster (README, "Clusters"): a call answered UNAVAILABLE by a
    node that is not the leader is sent again to the leader it names; on
    UNAVAILABLE without one, a lost connection or a timeout, to the next
    endpoint, pausing 25 ms doubling to 1 s; all within TIMEOUT (10 s when
    it is None). Every write carries client_id (16 random bytes, one per
    Client) and seq, kept on its retries, so it is applied once. Moving to
    another node closes the connection, ending its watches.
    """

    def __init__(self, endpoint=None, timeout=5.0, connect_timeout=None, token=None, *,
                 ssl=None, server_hostname=None):
        if connect_timeout is None:
            connect_timeout = timeout if timeout is not None else 5.0
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._tls = tls_of(ssl, server_hostname)
        self._route = Route(endpoint)
        self._token = None
        self._closed = False                # close() ran
        self._lock = threading.Lock()       # guards _conn
        self._used = threading.local()      # .conn: the one this thread tried last
        self._conn = self._connect_first()
        if token is not None:
            try:
                self.auth(token)
            except BaseException:
                self.close()
                raise

    @property
    def endpoint(self):
        """The "HOST:PORT" connected to, or tried last."""
        return self._route.where

    @property
    def client_id(self):
        """The 16 bytes every write of this client carries."""
        return self._route.client_id

    def _connect_first(self):
        error = None
        for i, endpoint in enumerate(self._route.endpoints):
            try:
                conn = Connection(endpoint, self.connect_timeout, self._tls)
            except Exception as exc:  # Unavailable, DeadlineExceeded
                error = exc
                continue
            self._route.found(i)
            return conn
        raise error

    def _live_conn(self):
        """The connection, made again to route.where (and authenticated)
        if it is gone. Raises the RpcError of the connect."""
        with self._lock:
            conn = self._conn
            if conn.closed:
                conn = Connection(self._route.where, self.connect_timeout, self._tls)
                self._conn = conn
                if self._token is not None:
                    auth = auth_envelope(self._token)
                    conn.exchange([auth], self.connect_timeout)
            return conn

    def _send(self, envelopes, wait):
        try:
            conn = self._live_conn()
        except Exception as exc:  # the connect's RpcError
            return [exc] * len(envelopes), False
        self._used.conn = conn
        return conn.exchange(envelopes, wait), True

    def _run(self, envelopes, timeout):
        """Sends ENVELOPES (in order, together) as kvstore.route plans,
        moving between nodes as it says. Returns an outcome per envelope:
        its RpcResponse, or the RpcError of the connection."""
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
                reply = self._send([envelopes[i] for i in step[1]], step[2])
                continue
            time.sleep(step[1])
            with self._lock:
                # Unless another thread moved already: then go where it went.
                if self._conn is getattr(self._used, "conn", None):
                    self._conn.close()
            reply = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<kvstore.Client %s%s>" % (self.endpoint, " closed" if self.closed else "")

    @property
    def closed(self):
        """True once close() ran or the connection was lost (a later call
        connects again, but after close())."""
        return self._closed or self._conn.closed

    def close(self):
        """Closes the connection; later calls raise Unavailable."""
        self._closed = True
        self._conn.close()

    def auth(self, token, *, timeout=DEFAULT):
        """Calls.auth, and keeps TOKEN to present again on each new
        connection."""
        super().auth(token, timeout=timeout)
        self._token = token

    def pipeline(self):
        """A Pipeline that queues calls and sends them together on execute()."""
        return Pipeline(self)

    def exchange(self, envelope, timeout=DEFAULT):
        """Sends a hand-built RpcRequest (its id is replaced by the client's
        own) and returns the server's RpcResponse, whatever its code. Raises
        only when no answer came: DeadlineExceeded or Unavailable. Retried
        by its method path like any call: a write without a seq gets the
        client's id and the next seq; one with a seq keeps it."""
        outcome = self._run([envelope], self._timeout(timeout))[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def invoke(self, method, payload=b"", timeout=DEFAULT):
        """Calls METHOD (a path such as "/kvstore.v1.KV/Get") with PAYLOAD,
        the serialized request. Returns the serialized answer; raises the
        RpcError of a non-OK code."""
        response = self.exchange(_proto.RpcRequest(method=method, payload=payload), timeout)
        if response.code != 0:
            raise error_for(response.code, response.message, method)
        return response.payload

    def range(self, start=None, end=None, *, prefix=None, limit=None, keys_only=False,
              reverse=False, page_size=0, serializable=False, timeout=DEFAULT):
        """An iterator over the keys of [START, END) (END None: no upper
        bound) or those beginning with PREFIX (not both; none of them: every
        key), in byte order (memcmp, shorter first on a tie), or descending
        with REVERSE. Yields Entry (key, value, create_revision,
        mod_revision, version, revision); values are b"" with KEYS_ONLY.

        It pages transparently: each page is one Range call of PAGE_SIZE
        keys (0: the server's maximum page; the server may send fewer, to
        keep a frame within its limit), the next starting after the last
        key seen. Pages are fetched as the iteration reaches them, so each
        is a read of its own moment (see its revision), not a snapshot of
        the whole range. LIMIT stops after that many keys (None or 0: no
        limit, as the wire's limit 0 and kvctl's --limit 0 mean). TIMEOUT
        bounds each page's call.

            for e in c.range(prefix=b"user/"):
                print(e.key, e.value)
        """
        fields = selector(start, end, prefix)
        if limit is not None:
            check_uint(limit, "limit")
        if limit == 0:
            limit = None
        check_uint(page_size, "page_size", UINT32_MAX)
        return self._range_pages(fields, limit, dict(keys_only=keys_only, reverse=reverse,
                                                       serializable=serializable),
                                 page_size, timeout)

    def _range_pages(self, fields, limit, opts, page_size, timeout):
        left = limit
        while left is None or left > 0:
            page = self.range_page(limit=page_limit(page_size, left), timeout=timeout,
                                   **opts, **fields)
            entries = page.entries if left is None else page.entries[:left]
            yield from entries
            if left is not None:
                left -= len(entries)
            fields = next_page(fields, page, opts["reverse"])
            if fields is None:
                return

    def watch(self, key=None, end=None, *, prefix=None, start_revision=0, prev_kv=False,
              timeout=DEFAULT):
        """Watches one KEY, the range [KEY, END) (END b"\\x00": no upper
        bound, so key=b"\\x00", end=b"\\x00" is every key) or the keys
        beginning with PREFIX. Returns a Watch (kvstore.watch) once the
        server has answered: iterate it for WatchEvent (type "PUT" or
        "DELETE", kv, prev_kv, expired; revision), in revision order.

        START_REVISION 0: the changes after now; N > 0: every change of
        revision >= N, replayed from the server's history, then live (older
        than that history: the iteration raises WatchCanceled with
        compact_revision). PREV_KV: events carry the key as it was before
        (prev_kv). Raises InvalidArgument for a selector the server refuses
        (PREFIX with KEY or END, END without KEY, none), ResourceExhausted
        past the server's watches per connection. TIMEOUT bounds the Watch
        call, not the wait for events.

        Other calls of this client go on while the watch is open (from any
        thread): events that come meanwhile are kept for it.

            with c.watch(prefix=b"cfg/") as w:
                for event in w:
                    print(event.type, event.kv.key, event.kv.value)
        """
        from .watch import Watch
        return Watch(self, watch_fields(key, end, prefix, start_revision, prev_kv), timeout)

    def _timeout(self, timeout):
        return self.timeout if timeout is DEFAULT else timeout

    def _call(self, method, request, convert, timeout):
        envelope = _proto.RpcRequest(method=_proto.method_path(method),
                                     payload=request.SerializeToString())
        outcome = self._run([envelope], self._timeout(timeout))[0]
        return finish(method, outcome, convert)


bind_service(Client, _proto.service)
