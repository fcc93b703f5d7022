"""kvstore.client - Client: a connection you call methods on.

Each call runs at once and returns its answer or raises its RpcError. The
rpc methods come from the service descriptor (see kvstore.stubs); invoke()
and exchange() reach the envelope itself, for methods the descriptor does
not know.
"""

from . import _proto
from .connection import Connection
from .pipeline import Pipeline
from .stubs import DEFAULT, Calls, bind_service, finish
from .values import UINT32_MAX, check_uint, prefix_end, selector
from .errors import error_for


class Client(Calls):
    """A connection to one kvstored.

    ENDPOINT is "HOST:PORT" (default "127.0.0.1:7379"). TIMEOUT (seconds,
    None for none) bounds each call unless the call passes its own;
    CONNECT_TIMEOUT bounds the connect (default: TIMEOUT, or 5 s). TOKEN,
    for a server started with --auth-token-file, is sent with Auth at once.
    Raises Unavailable when the server cannot be reached (an RpcError
    UNAUTHENTICATED for a wrong token). Close it with
    close() or use it in a with block. One call at a time runs on a
    connection; threads calling one Client take turns.
    """

    def __init__(self, endpoint=None, timeout=5.0, connect_timeout=None, token=None):
        if connect_timeout is None:
            connect_timeout = timeout if timeout is not None else 5.0
        self.timeout = timeout
        self._conn = Connection(endpoint, connect_timeout)
        self.endpoint = self._conn.endpoint
        if token is not None:
            try:
                self.auth(token)
            except BaseException:
                self.close()
                raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<kvstore.Client %s%s>" % (self.endpoint, " closed" if self.closed else "")

    @property
    def closed(self):
        """True once close() ran or the connection was lost."""
        return self._conn.closed

    def close(self):
        """Closes the connection; later calls raise Unavailable."""
        self._conn.close()

    def pipeline(self):
        """A Pipeline that queues calls and sends them together on execute()."""
        return Pipeline(self)

    def exchange(self, envelope, timeout=DEFAULT):
        """Sends a hand-built RpcRequest (its id is replaced by the client's
        own) and returns the server's RpcResponse, whatever its code. Raises
        only when no answer came: DeadlineExceeded or Unavailable."""
        outcome = self._conn.exchange([envelope], self._timeout(timeout))[0]
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
              reverse=False, page_size=0, timeout=DEFAULT):
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
        return self._range_pages(fields, limit, keys_only, reverse, page_size, timeout)

    def _range_pages(self, fields, limit, keys_only, reverse, page_size, timeout):
        left = limit
        while left is None or left > 0:
            want = page_size
            if left is not None:
                want = min(page_size or left, left, UINT32_MAX)
            page = self.range_page(limit=want, keys_only=keys_only, reverse=reverse,
                                   timeout=timeout, **fields)
            entries = page.entries if left is None else page.entries[:left]
            yield from entries
            if left is not None:
                left -= len(entries)
            if not page.more:
                return
            if not page.entries:
                raise RuntimeError("Range answered more = true with no keys: cannot page on")
            # The next page: after the last key seen. A prefix becomes the
            # [start, end) it stands for, as a prefix cannot go with either.
            if "prefix" in fields:
                fields = {"start": fields["prefix"], "end": prefix_end(fields["prefix"])}
            last = page.entries[-1].key
            if reverse:
                fields["end"] = last
            else:
                fields["start"] = last + b"\x00"

    def _timeout(self, timeout):
        return self.timeout if timeout is DEFAULT else timeout

    def _call(self, method, request, convert, timeout):
        envelope = _proto.RpcRequest(method=_proto.method_path(method),
                                     payload=request.SerializeToString())
        outcome = self._conn.exchange([envelope], self._timeout(timeout))[0]
        return finish(method, outcome, convert)


bind_service(Client, _proto.service)
