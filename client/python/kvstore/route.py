"""kvstore.route - where a client's calls go when the server is a cluster.

Owns a client's endpoints, its client_id and write counter (seq), the
leader a node named, and the retry rules of PROTOCOL.md ("Cluster"): a
call answered UNAVAILABLE goes to the leader the answer names, or to the
next endpoint; a read or a write cut off by a lost connection is sent
again; a write keeps its seq, so a cluster applies it once. It does no
I/O: plan() is a generator the blocking client (kvstore.client) and the
asyncio one (kvstore.aio) drive with their own sockets and sleeps.
"""

import itertools
import os
import random
import threading
import time

from .connection import DEFAULT_HOST, DEFAULT_PORT, parse_endpoint
from .errors import RpcError, status_code

UNAVAILABLE = status_code("UNAVAILABLE")
# How long a call is retried when the client has no timeout.
RETRY_NO_TIMEOUT = 10.0
# Pauses between tries that do not follow a hint: 25 ms doubling to 1 s.
BACKOFF_FIRST = 0.025
BACKOFF_MAX = 1.0

_READS = frozenset(("Get", "Range", "Ping", "Stats", "ClusterStatus"))
_WRITES = frozenset(("Set", "Clear", "ClearRange", "Txn", "Touch"))
_PREFIX = "/kvstore.v1.KV/"


def split_endpoints(endpoints):
    """ENDPOINTS ("a:1,b:2", a list of them, or None: the default) as a
    list of "HOST:PORT" strings, each checked (ValueError for a bad port or
    an empty item of a list)."""
    if endpoints is None or endpoints == "":
        return ["%s:%d" % (DEFAULT_HOST, DEFAULT_PORT)]
    items = endpoints.split(",") if isinstance(endpoints, str) else list(endpoints)
    if not items:
        raise ValueError("no endpoint given")
    for item in items:
        if not item:
            raise ValueError("empty endpoint in %r" % (endpoints,))
        parse_endpoint(item)
    return items


def kind_of(method):
    """"read", "write", "watch" or "other" for the method path METHOD."""
    if not method.startswith(_PREFIX):
        return "other"
    name = method[len(_PREFIX):]
    if name in _READS:
        return "read"
    if name in _WRITES:
        return "write"
    return "watch" if name == "Watch" else "other"


def _again(kind, outcome, sent, cluster=True):
    """Whether a call of KIND whose try ended with OUTCOME (an RpcResponse,
    or the RpcError of the connection; SENT: it went out) is sent again.
    A write that went out and was cut off is sent again only to a CLUSTER,
    which deduplicates it by its seq: a single kvstored does not, and may
    have applied it. A server's TLS alert (the error's refused) would come
    again on a new connection: never sent again."""
    if isinstance(outcome, RpcError):
        if getattr(outcome, "refused", False):
            return False
        if not sent:
            return True
        if kind == "write" and not cluster:
            return False
        return kind in ("read", "write") and outcome.code_name in ("UNAVAILABLE",
                                                                   "DEADLINE_EXCEEDED")
    return outcome.code == UNAVAILABLE and kind != "watch"


class Route:
    """The endpoints of one client and where its next connection goes.
    Thread-safe."""

    def __init__(self, endpoints):
        self.endpoints = split_endpoints(endpoints)
        self.client_id = os.urandom(16)
        self.where = self.endpoints[0]      # connected to, or tried last
        self._cur = 0
        self._hint = None
        # More than one endpoint, or a node named a leader: a cluster.
        self.cluster = len(self.endpoints) > 1
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def stamp(self, envelope):
        """Gives ENVELOPE (an RpcRequest) this client's id and the next seq
        when it is a write that has none."""
        if kind_of(envelope.method) == "write" and not envelope.seq:
            with self._lock:
                envelope.seq = next(self._seq)
            if not envelope.client_id:
                envelope.client_id = self.client_id

    def found(self, index):
        """Records that endpoint INDEX accepted the first connection."""
        self._cur = index
        self.where = self.endpoints[index]

    def hinted(self):
        return self._hint is not None

    def next(self):
        """Moves on: to the leader last named, else to the next endpoint.
        Returns the address."""
        with self._lock:
            if self._hint is not None:
                self.where, self._hint = self._hint, None
            else:
                self._cur = (self._cur + 1) % len(self.endpoints)
                self.where = self.endpoints[self._cur]
            return self.where

    def plan(self, envelopes, timeout, closed=lambda: False):
        """The tries of one call (or one pipeline) of ENVELOPES, stamped
        here, as a generator: it yields ("send", indexes, wait) and is sent
        back (outcomes, sent) for those envelopes (sent False when no
        connection could be made), or yields ("move", pause) after which
        the driver sleeps PAUSE seconds, drops its connection and connects
        to self.where. It returns the outcome of each envelope, in order:
        its last one when the time ran out. TIMEOUT (seconds, None: none)
        bounds the whole, retries included; nothing is retried once
        CLOSED() is true (the client was closed)."""
        for envelope in envelopes:
            self.stamp(envelope)
        kinds = [kind_of(e.method) for e in envelopes]
        deadline = time.monotonic() + (timeout if timeout is not None else RETRY_NO_TIMEOUT)
        outcomes = [None] * len(envelopes)
        todo = list(range(len(envelopes)))
        backoff = last_hinted = 0
        wait = timeout
        while True:
            got, sent = yield ("send", todo, wait)
            retry = []
            for i, outcome in zip(todo, got):
                outcomes[i] = outcome
                if _again(kinds[i], outcome, sent, self.cluster):
                    retry.append(i)
                    if not isinstance(outcome, RpcError) and outcome.leader:
                        self._hint = outcome.leader
                        self.cluster = True
            if not retry or closed():
                return outcomes
            hinted = self.hinted()
            if hinted and not last_hinted:
                pause = 0.0
            else:
                pause = backoff * random.uniform(0.5, 1.0) if backoff else 0.0
                backoff = min(BACKOFF_MAX, backoff * 2) if backoff else BACKOFF_FIRST
            if time.monotonic() + pause >= deadline:
                return outcomes
            last_hinted = hinted
            self.next()
            yield ("move", pause)
            todo = retry
            wait = max(0.001, deadline - time.monotonic())
