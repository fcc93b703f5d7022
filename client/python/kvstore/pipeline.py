"""kvstore.pipeline - Pipeline: many calls in flight on one connection.

Calls made on a Pipeline (the same rpc methods and helpers as a Client) are
only queued and return a Reply; execute() sends them all at once, reading
answers while it writes, and matches the answers to the calls by id.
"""

from . import _proto
from .stubs import DEFAULT, Calls, bind_service, finish

_UNSET = object()


class Reply:
    """The future answer of one queued call; result() after execute()."""

    __slots__ = ("_value", "_error")

    def __init__(self):
        self._value = _UNSET
        self._error = None

    def done(self):
        return self._value is not _UNSET or self._error is not None

    def result(self):
        """The call's answer, or raises its RpcError."""
        if self._error is not None:
            raise self._error
        if self._value is _UNSET:
            raise RuntimeError("the pipeline has not been executed yet")
        return self._value

    def exception(self):
        """The call's RpcError, or None when it succeeded."""
        return self._error


class Pipeline(Calls):
    """Queues calls for one Client; use execute() or a with block.

        with client.pipeline() as p:
            for i in range(1000):
                p.set(b"k%d" % i, b"v")
        p.results   # one answer per call, in order
    """

    def __init__(self, client):
        self._client = client
        self._queue = []       # (method, request, convert, reply)
        self.results = None

    def __len__(self):
        return len(self._queue)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None and self._queue:
            self.execute()

    def _call(self, method, request, convert, timeout):
        if timeout is not DEFAULT:
            raise TypeError("a pipelined call has no timeout of its own: pass it to execute()")
        reply = Reply()
        self._queue.append((method, request, convert, reply))
        return reply

    def execute(self, timeout=DEFAULT, raise_on_error=True):
        """Sends every queued call and waits for all answers. TIMEOUT bounds
        the whole batch (default: the client's timeout). Returns the list of
        answers in call order; when a call failed, raises the first error
        (after every call has finished), or with raise_on_error=False puts
        the RpcError in its place in the list. Empties the queue."""
        queue, self._queue = self._queue, []
        envelopes = [_proto.RpcRequest(method=_proto.method_path(method),
                                       payload=request.SerializeToString())
                     for method, request, _, _ in queue]
        outcomes = self._client._run(envelopes, self._client._timeout(timeout))
        results, first_error = [], None
        for (method, _, convert, reply), outcome in zip(queue, outcomes):
            try:
                reply._value = finish(method, outcome, convert)
                results.append(reply._value)
            except Exception as exc:  # an RpcError, or a payload that does not decode
                reply._error = exc
                results.append(exc)
                first_error = first_error or exc
        self.results = results
        if first_error is not None and raise_on_error:
            raise first_error
        return results


bind_service(Pipeline, _proto.service)
