"""kvstore.framing - the varint length prefix of every frame (docs/PROTOCOL.md).

Pure functions over bytes: no sockets, no protobuf. The connection feeds
received bytes into a FrameReader and wraps outgoing messages with frame().
"""

# A uint32 in base-128 takes at most 5 bytes; a longer prefix is malformed.
PREFIX_MAX = 5


class FramingError(Exception):
    """The peer sent a length prefix that cannot be parsed; the stream is lost."""


def prefix(n):
    """Returns the length prefix of a body of N bytes: N as a varint."""
    if not 0 <= n <= 0xFFFFFFFF:
        raise ValueError("frame body of %d bytes does not fit a uint32 length" % n)
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def frame(body):
    """Returns BODY (bytes) preceded by its length as a varint."""
    return prefix(len(body)) + bytes(body)


class FrameReader:
    """Accumulates a byte stream and hands out whole frame bodies."""

    def __init__(self):
        self._buf = bytearray()

    def feed(self, data):
        """Appends DATA and returns the list of bodies of the frames it completed."""
        self._buf += data
        bodies = []
        pos = 0
        while True:
            found = self._parse(pos)
            if found is None:
                break
            start, end = found
            bodies.append(bytes(self._buf[start:end]))
            pos = end
        if pos:
            del self._buf[:pos]
        return bodies

    def pending(self):
        """How many received bytes belong to a frame not yet complete."""
        return len(self._buf)

    def _parse(self, pos):
        # Returns (body_start, body_end) of the frame at POS, or None when
        # more bytes are needed.
        buf = self._buf
        n = 0
        for i in range(PREFIX_MAX):
            if pos + i >= len(buf):
                return None
            b = buf[pos + i]
            n |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                break
        else:
            raise FramingError("length prefix longer than %d bytes" % PREFIX_MAX)
        if n > 0xFFFFFFFF:
            raise FramingError("length prefix %d does not fit in 32 bits" % n)
        start = pos + i + 1
        if len(buf) - start < n:
            return None
        return start, start + n
