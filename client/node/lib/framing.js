// lib/framing.js - the varint length prefix of every frame
// (docs/PROTOCOL.md), as pure code over bytes: no sockets, no protobuf.
'use strict';

// A uint32 in base-128 takes at most 5 bytes; a longer prefix is malformed.
const PREFIX_MAX = 5;

class FramingError extends Error {}

// Returns BODY (a Uint8Array) preceded by its length as a varint.
function frame(body) {
  let n = body.length;
  if (n > 0xffffffff) throw new RangeError(`frame body of ${n} bytes does not fit a uint32 length`);
  const prefix = [];
  while (n >= 0x80) {
    prefix.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  prefix.push(n);
  const out = Buffer.allocUnsafe(prefix.length + body.length);
  out.set(prefix, 0);
  out.set(body, prefix.length);
  return out;
}

// Accumulates received chunks and hands out whole frame bodies. Chunks are
// joined once per frame, never re-copied on every arrival.
class FrameReader {
  constructor() {
    this.chunks = [];
    this.length = 0;
  }

  // Adds CHUNK; returns the bodies (Buffers) of the frames it completed.
  // Throws FramingError on a malformed prefix: the stream is then lost.
  push(chunk) {
    this.chunks.push(chunk);
    this.length += chunk.length;
    const bodies = [];
    for (;;) {
      const head = this._prefix();
      if (!head) break;
      const [prefixLen, bodyLen] = head;
      if (this.length < prefixLen + bodyLen) break;
      bodies.push(this._take(prefixLen + bodyLen).subarray(prefixLen));
    }
    return bodies;
  }

  // [prefix bytes, body length] of the frame at the front, or null when
  // the prefix is not complete yet.
  _prefix() {
    let n = 0;
    let i = 0;
    for (const chunk of this.chunks) {
      for (let j = 0; j < chunk.length; j++, i++) {
        if (i === PREFIX_MAX) throw new FramingError(`length prefix longer than ${PREFIX_MAX} bytes`);
        const b = chunk[j];
        n += (b & 0x7f) * 2 ** (7 * i);
        if (!(b & 0x80)) {
          if (n > 0xffffffff) throw new FramingError(`length prefix ${n} does not fit in 32 bits`);
          return [i + 1, n];
        }
      }
    }
    return null;
  }

  // Removes and returns the first COUNT bytes (a view, not a copy, when
  // they sit in one chunk).
  _take(count) {
    if (this.chunks[0].length < count) this.chunks = [Buffer.concat(this.chunks, this.length)];
    const first = this.chunks[0];
    const out = first.subarray(0, count);
    if (first.length === count) this.chunks.shift();
    else this.chunks[0] = first.subarray(count);
    this.length -= count;
    return out;
  }
}

module.exports = { frame, FrameReader, FramingError, PREFIX_MAX };
