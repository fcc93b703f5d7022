"""fakefollower - a node of a cluster as a client sees it, played by a
test: a TCP server speaking kvstore's framing (wire.py) that records every
request it gets (method, client_id, seq) and answers as the test says:
UNAVAILABLE naming a leader (a follower), UNAVAILABLE naming none (no
leader known), closing the connection without an answer, or forwarding the
request to a real kvstored and its answer back (a leader; the recording
proxy that lets a test see what a client sent).

    real = Server()                                   # kvstored.py
    fake = FakeNode(lambda seen: ("hint", real.endpoint))
    ... a client given [fake.endpoint] ...
    fake.wait_seen(1)
    fake.close()

ACT(seen) gets the Seen record of the request and returns one of
("hint", "HOST:PORT"), ("unavailable",), ("close",), ("forward",) (to
FORWARD_TO, "HOST:PORT"). Every wait is bounded.
"""

import collections
import threading
import time
import unittest

from kvstore import pb
from kvstored import Server
from threadserver import ThreadServer
from wire import Connection, WireError, frame, take_frame

UNAVAILABLE = 14

# One request the fake got. CONN counts the fake's connections from 1;
# NTH counts all its requests from 1.
Seen = collections.namedtuple("Seen", "method client_id seq conn nth")


def hinting(leader):
    """ACT of a follower that always names LEADER."""
    return lambda seen: ("hint", leader)


class FakeNode(ThreadServer):
    def __init__(self, act, forward_to=None):
        self.act = act
        self.forward_to = forward_to
        self.seen = []
        self.conns = 0
        self._cv = threading.Condition()
        super().__init__()

    def wait_seen(self, n, timeout=20.0):
        """The records once at least N requests came; AssertionError when
        they did not within TIMEOUT seconds."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while len(self.seen) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("fake node saw %d requests, not %d: %r"
                                         % (len(self.seen), n, self.seen))
                self._cv.wait(left)
            return list(self.seen)

    def serve(self, conn):
        with self._cv:
            self.conns += 1
            number = self.conns
        buf = bytearray()
        upstream = None
        conn.settimeout(60)
        try:
            while True:
                body = take_frame(buf)
                if body is None:
                    data = conn.recv(1 << 16)
                    if not data:
                        return
                    buf += data
                    continue
                req = pb.RpcRequest.FromString(body)
                with self._cv:
                    seen = Seen(req.method, bytes(req.client_id), req.seq, number,
                                len(self.seen) + 1)
                    self.seen.append(seen)
                    self._cv.notify_all()
                action = self.act(seen)
                if action[0] == "close":
                    return
                if action[0] == "forward":
                    if upstream is None:
                        upstream = Connection(self.forward_to)
                    upstream.sock.sendall(frame(body))
                    answer = upstream.recv()
                else:
                    leader = action[1] if action[0] == "hint" else ""
                    answer = pb.RpcResponse(id=req.id, code=UNAVAILABLE, leader=leader,
                                            message="not the leader (fake node)")
                conn.sendall(frame(answer.SerializeToString()))
        except (OSError, WireError):
            return
        finally:
            if upstream is not None:
                upstream.close()
            conn.close()


class ClusterTestCase(unittest.TestCase):
    """A real kvstored per test (self.server) and fake nodes in front of it
    (self.fake(act)), all stopped at the end."""

    def setUp(self):
        self.server = Server()
        self.addCleanup(self.server.stop)

    def fake(self, act):
        node = FakeNode(act, forward_to=self.server.endpoint)
        self.addCleanup(node.close)
        return node
