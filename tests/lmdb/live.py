"""live - what the lmdb tests (and test_resilience, test_flags, test_logs)
share on top of tests/support/kvstored.py and the Python client
(client/python): a server started for an exact command line with its stderr
kept, and Conn, a kvstore.RawConnection whose answers are plain tuples and
which makes the few calls these tests need. Nothing here encodes protobuf or
frames by hand.

Needs tests/support, client/python and the build's client/python on
PYTHONPATH (meson test sets it) and $KVSTORED. Every wait is bounded.
"""

import collections

import kvstore
import kvstored
from kvstore import pb
from kvstore.framing import prefix as varint  # noqa: F401 - the length prefix of a frame
from kvstore.stubs import DEFAULT

CALL_TIMEOUT = 10.0

OK, INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, UNAUTHENTICATED = (
    kvstore.status_code(name) for name in
    ("OK", "INVALID_ARGUMENT", "NOT_FOUND", "RESOURCE_EXHAUSTED", "UNAUTHENTICATED"))


# One answer: Answer[0] is its code, Answer[:2] (code, message).
Answer = collections.namedtuple("Answer", "code message payload id")


def set_request(key, value):
    return "Set", pb.SetRequest(key=key, value=value)


def get_request(key):
    return "Get", pb.GetRequest(key=key)


class Server(kvstored.Server):
    """kvstored with exactly ARGS (no engine from the environment) and its
    stderr kept; OPTIONS as kvstored.Server's. connect() gives a Conn that
    is closed when the server is stopped or killed."""

    def __init__(self, *args, **options):
        self.conns = []
        options.setdefault("engine_from_env", False)
        options.setdefault("capture_stderr", True)
        super().__init__(*args, **options)

    def connect(self, **options):
        conn = Conn(self.endpoint, **options)
        self.conns.append(conn)
        return conn

    def stop(self):
        try:
            return super().stop()
        finally:
            self._close_conns()

    def kill(self):
        try:
            return super().kill()
        finally:
            self._close_conns()

    def _close_conns(self):
        for conn in self.conns:
            conn.close()


def value_of(key, answer):
    """The value a Get of KEY was answered with, or None when absent;
    AssertionError for any other answer."""
    if answer.code == NOT_FOUND:
        return None
    if answer.code != OK:
        raise AssertionError("Get %r: code %d %s" % (key, answer.code, answer.message))
    return pb.GetResponse.FromString(answer.payload).value


def entry_of(key, answer):
    """The GetResponse a Get of KEY was answered with (value and
    revisions), or None when absent; AssertionError for any other answer."""
    if answer.code == NOT_FOUND:
        return None
    if answer.code != OK:
        raise AssertionError("Get %r: code %d %s" % (key, answer.code, answer.message))
    return pb.GetResponse.FromString(answer.payload)


class Conn(kvstore.RawConnection):
    """A RawConnection to ENDPOINT (or a port of 127.0.0.1) whose receive()
    and call() give an Answer; plus set and clear answering (code,
    message), get the value or None, get_many, get_entries, and stats the
    StatsResponse."""

    def __init__(self, endpoint, timeout=CALL_TIMEOUT, **options):
        if isinstance(endpoint, int):
            endpoint = "127.0.0.1:%d" % endpoint
        super().__init__(endpoint, timeout, **options)

    def receive(self, timeout=DEFAULT):
        r = super().receive(timeout)
        return Answer(r.code, r.message, r.payload, r.id)

    def set(self, key, value):
        answer = self.call(*set_request(key, value))
        return answer.code, answer.message

    def get(self, key):
        return value_of(key, self.call(*get_request(key)))

    def get_many(self, keys, batch=256):
        """{key: value or None}, pipelined BATCH at a time."""
        return self._get_many(keys, batch, value_of)

    def get_entries(self, keys, batch=256):
        """{key: GetResponse (value, revisions) or None}, pipelined."""
        return self._get_many(keys, batch, entry_of)

    def _get_many(self, keys, batch, convert):
        out = {}
        for i in range(0, len(keys), batch):
            part = keys[i:i + batch]
            self.send([get_request(k) for k in part])
            for k in part:
                out[k] = convert(k, self.receive())
        return out

    def clear(self, key):
        answer = self.call("Clear", pb.ClearRequest(key=key))
        return answer.code, answer.message

    def stats(self):
        answer = self.call("Stats")
        if answer.code != OK:
            raise AssertionError("Stats: code %d %s" % (answer.code, answer.message))
        return pb.StatsResponse.FromString(answer.payload)
