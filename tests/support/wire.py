"""wire - a minimal kvstore connection for tests that read stream frames.

Connection sends RpcRequest envelopes (a base-128 varint length, then the
message: docs/PROTOCOL.md) and hands back every RpcResponse in the order
the server sent it, stream frames (RpcResponse.stream = true, a Watch's
events) and answers alike: the caller tells them apart. It is written from
the protocol, not from the Python client, so that a test reading watches
with it does not lean on the client it may be testing; it takes only the
generated messages (kvstore.pb, kv_pb2 of the build). Every wait is bounded;
stdlib only besides protobuf.

    from wire import Connection
    c = Connection("127.0.0.1:7379")
    rid = c.send("Watch", pb.WatchRequest(prefix=b"cfg/"))
    r = c.recv()            # the Watch's answer, then its stream frames
"""

import socket
import time

from kvstore import pb

METHOD_PREFIX = "/kvstore.v1.KV/"
# A length prefix is a uint32 in base 128: at most 5 bytes.
PREFIX_MAX = 5


class WireError(Exception):
    """The connection was closed, timed out or sent something unreadable."""


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def take_frame(buf):
    """The body of the first whole frame in BUF (a bytearray; taken out of
    it), or None when more bytes are needed. WireError on a bad prefix."""
    n = shift = 0
    for i in range(min(PREFIX_MAX, len(buf))):
        b = buf[i]
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    else:
        if len(buf) >= PREFIX_MAX:
            raise WireError("length prefix longer than %d bytes" % PREFIX_MAX)
        return None
    start = i + 1
    if len(buf) - start < n:
        return None
    body = bytes(buf[start:start + n])
    del buf[:start + n]
    return body


def frame(body):
    """BODY (bytes) with its length prefix."""
    return varint(len(body)) + body


class Connection:
    """One TCP connection to ENDPOINT ("HOST:PORT"). TIMEOUT (seconds) bounds
    the connect and is recv()'s default wait. With SSL_CONTEXT (an
    ssl.SSLContext) the connection speaks TLS, checking the certificate
    against ENDPOINT's host."""

    def __init__(self, endpoint, timeout=20.0, ssl_context=None):
        host, _, port = endpoint.rpartition(":")
        self.endpoint = endpoint
        self.timeout = timeout
        self.sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        if ssl_context is not None:
            self.sock = ssl_context.wrap_socket(self.sock, server_hostname=host.strip("[]"))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.next_id = 1
        self.buf = bytearray()

    def close(self):
        self.sock.close()

    def send(self, method, request, client_id=b"", seq=0):
        """Sends REQUEST (a message, or None: empty) to METHOD ("Get" or a
        full path), with the envelope's CLIENT_ID and SEQ (a cluster's
        at-most-once writes) when given; returns the request's id."""
        rid = self.next_id
        self.next_id += 1
        path = method if method.startswith("/") else METHOD_PREFIX + method
        payload = b"" if request is None else request.SerializeToString()
        body = pb.RpcRequest(id=rid, method=path, payload=payload, client_id=client_id,
                             seq=seq).SerializeToString()
        self.sock.sendall(varint(len(body)) + body)
        return rid

    def _frame(self):
        """The body of the first whole frame in the buffer (taken out), or
        None when more bytes are needed."""
        return take_frame(self.buf)

    def recv(self, timeout=None):
        """The next RpcResponse the server sent, waiting up to TIMEOUT
        seconds (default: the connection's); WireError when none came, or
        the connection ended."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            body = self._frame()
            if body is not None:
                return pb.RpcResponse.FromString(body)
            left = deadline - time.monotonic()
            if left <= 0:
                raise WireError("no frame from %s within %gs" % (self.endpoint, timeout))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError as exc:
                raise WireError("connection to %s lost: %s" % (self.endpoint, exc)) from None
            if not data:
                raise WireError("connection closed by %s" % self.endpoint)
            self.buf += data
