"""The varint framing alone, without a server: prefix sizes at the 7-bit
boundaries, frames split across reads, malformed prefixes."""

import unittest

from kvstore.framing import FrameReader, FramingError, frame, prefix


class TestFraming(unittest.TestCase):
    def test_prefix_lengths_at_the_7_bit_boundaries(self):
        for n, width in [(0, 1), (127, 1), (128, 2), (16383, 2), (16384, 3), (1 << 21, 4)]:
            self.assertEqual(len(frame(bytes(n))) - n, width, n)
        self.assertEqual(frame(bytes(300))[:2], b"\xac\x02")
        self.assertEqual(prefix(300), b"\xac\x02")
        self.assertEqual(prefix(0xFFFFFFFF), b"\xff\xff\xff\xff\x0f")
        for n in (-1, 1 << 32):
            with self.assertRaises(ValueError):
                prefix(n)

    def test_the_documented_ping_frame(self):
        # docs/PROTOCOL.md, "Example bytes": Ping with id 1 is 25 bytes.
        from kvstore import pb
        body = pb.RpcRequest(id=1, method="/kvstore.v1.KV/Ping").SerializeToString()
        self.assertEqual(frame(body), bytes.fromhex("1708011213") + b"/kvstore.v1.KV/Ping")

    def test_frames_split_anywhere_come_out_whole(self):
        bodies = [b"", b"a", bytes([7]) * 200, bytes([9]) * 70000]
        stream = b"".join(frame(b) for b in bodies)
        for step in (1, 2, 3, 1000, len(stream)):
            reader = FrameReader()
            out = []
            for i in range(0, len(stream), step):
                out += reader.feed(stream[i:i + step])
            self.assertEqual(out, bodies, step)
            self.assertEqual(reader.pending(), 0)

    def test_malformed_prefixes(self):
        with self.assertRaises(FramingError):
            FrameReader().feed(b"\x80\x80\x80\x80\x80\x01")
        with self.assertRaises(FramingError):
            FrameReader().feed(b"\xff\xff\xff\xff\x1f")
        self.assertEqual(FrameReader().feed(b"\xff\xff\xff\xff\x0f"), [])


if __name__ == "__main__":
    unittest.main()
