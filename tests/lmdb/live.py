"""live - what the lmdb tests share: a kvstored child process on a free
loopback port, and a connection that speaks the wire protocol
(docs/PROTOCOL.md) with a few lines of hand-written protobuf, so that these
tests need nothing but Debian's /usr/bin/python3.

$KVSTORED names the server binary (meson test sets it). Every wait is
bounded.
"""

import os
import re
import select
import signal
import socket
import subprocess
import time

KVSTORED = os.environ.get("KVSTORED", "")
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
CALL_TIMEOUT = 10.0

OK, NOT_FOUND, RESOURCE_EXHAUSTED = 0, 5, 8


# ------------------------------------------------------------ protobuf bits

def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field_bytes(number, data):
    return varint(number << 3 | 2) + varint(len(data)) + data


def field_int(number, n):
    return varint(number << 3) + varint(n)


def fields(buf):
    """{field number: value} of a message of varints and byte strings (the
    last occurrence wins, as protobuf says)."""
    out, i = {}, 0

    def read_varint():
        nonlocal i
        v = shift = 0
        while True:
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v
    while i < len(buf):
        key = read_varint()
        if key & 7 == 0:
            out[key >> 3] = read_varint()
        elif key & 7 == 2:
            n = read_varint()
            out[key >> 3] = bytes(buf[i:i + n])
            i += n
        else:
            raise ValueError("unexpected wire type %d" % (key & 7))
    return out


def set_request(key, value):
    return "Set", field_bytes(1, key) + field_bytes(2, value)


def get_request(key):
    return "Get", field_bytes(1, key)


def clear_request(key):
    return "Clear", field_bytes(1, key)


# ------------------------------------------------------------ the server

class Server:
    """$KVSTORED --listen 127.0.0.1:0 ARGS, up once it says 'listening on'."""

    def __init__(self, *args):
        self.args = args
        self.proc = subprocess.Popen([KVSTORED, "--listen", "127.0.0.1:0", *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        line = b""
        deadline = time.monotonic() + START_TIMEOUT
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.kill()
                raise RuntimeError("kvstored %s did not say 'listening on'" % (args,))
            byte = os.read(self.proc.stdout.fileno(), 1)
            if not byte:
                status = self.proc.wait(STOP_TIMEOUT)
                raise RuntimeError("kvstored %s exited %s before listening: %s"
                                   % (args, status, self.proc.stderr.read().decode()))
            line += byte
        match = re.search(rb"listening on (\S+):(\d+)", line)
        self.port = int(match.group(2))
        self.pid = self.proc.pid
        self.conns = []
        self.stderr = None

    def connect(self):
        """A new connection, closed when the server is stopped or killed."""
        conn = Conn(self.port)
        self.conns.append(conn)
        return conn

    def stop(self):
        """SIGTERM; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self._reap()

    def kill(self):
        """SIGKILL; returns the (negative) status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        return self._reap()

    def _reap(self):
        try:
            status = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            status = self.proc.wait(STOP_TIMEOUT)
        if self.stderr is None:
            self.stderr = self.proc.stderr.read().decode()
            self.proc.stdout.close()
            self.proc.stderr.close()
            for conn in self.conns:
                conn.close()
        return status


def run_server(*args, preexec_fn=None):
    """Runs kvstored with ARGS expecting it not to start: returns (exit
    status, stderr). A server that does start is stopped and reported."""
    proc = subprocess.Popen([KVSTORED, "--listen", "127.0.0.1:0", *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=preexec_fn)
    try:
        out, err = proc.communicate(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError("kvstored %s started (%r) instead of failing" % (args, out))
    return proc.returncode, err.decode()


# ------------------------------------------------------------ a connection

class Conn:
    """One TCP connection; calls are pipelined and answered in order."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=CALL_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.next_id = 1

    def close(self):
        self.sock.close()

    def send(self, calls):
        """Sends CALLS, a list of (method name, payload), in one write."""
        out = bytearray()
        for method, payload in calls:
            body = (field_int(1, self.next_id) + field_bytes(2, b"/kvstore.v1.KV/" + method.encode())
                    + field_bytes(3, payload))
            out += varint(len(body)) + body
            self.next_id += 1
        self.sock.sendall(out)

    def receive(self):
        """The next answer as (code, message, payload); raises ConnectionError
        when the server is gone."""
        while True:
            n = shift = pos = 0
            while pos < len(self.buf):
                b = self.buf[pos]
                n |= (b & 0x7F) << shift
                shift += 7
                pos += 1
                if not b & 0x80:
                    if len(self.buf) >= pos + n:
                        answer = fields(self.buf[pos:pos + n])
                        del self.buf[:pos + n]
                        return (answer.get(2, OK), answer.get(3, b"").decode(),
                                answer.get(4, b""))
                    break
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk

    def call(self, method, payload=b""):
        self.send([(method, payload)])
        return self.receive()

    def set(self, key, value):
        return self.call(*set_request(key, value))[:2]

    def get(self, key):
        """The value, or None when absent; raises on any other answer."""
        code, message, payload = self.call(*get_request(key))
        if code == NOT_FOUND:
            return None
        if code != OK:
            raise AssertionError("Get %r: code %d %s" % (key, code, message))
        return fields(payload).get(1, b"")

    def get_many(self, keys, batch=256):
        """{key: value or None}, pipelined BATCH at a time."""
        out = {}
        for i in range(0, len(keys), batch):
            part = keys[i:i + batch]
            self.send([get_request(k) for k in part])
            for k in part:
                code, message, payload = self.receive()
                if code not in (OK, NOT_FOUND):
                    raise AssertionError("Get %r: code %d %s" % (k, code, message))
                out[k] = fields(payload).get(1, b"") if code == OK else None
        return out

    def clear(self, key):
        return self.call(*clear_request(key))[:2]

    def stats(self):
        """The StatsResponse as {field number: value}."""
        code, message, payload = self.call("Stats")
        if code != OK:
            raise AssertionError("Stats: code %d %s" % (code, message))
        return fields(payload)


# StatsResponse field numbers (proto/kvstore/v1/kv.proto).
STATS_KEYS, STATS_DATA_BYTES, STATS_ENGINE = 7, 8, 11
STATS_FILE_BYTES, STATS_MAP_BYTES, STATS_LAST_SYNC_MS, STATS_SYNC = 15, 16, 17, 18
