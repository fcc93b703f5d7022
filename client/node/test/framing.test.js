// The varint framing alone, without a server: prefix sizes at the 7-bit
// boundaries, frames split across chunks, malformed prefixes.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { frame, FrameReader, FramingError } = require('../lib/framing');

test('prefix lengths at the 7-bit boundaries', () => {
  for (const [n, prefix] of [[0, 1], [127, 1], [128, 2], [16383, 2], [16384, 3], [1 << 21, 4]]) {
    const f = frame(Buffer.alloc(n));
    assert.equal(f.length - n, prefix, `length ${n}`);
  }
  assert.deepEqual([...frame(Buffer.alloc(300)).subarray(0, 2)], [0xac, 0x02]);
});

test('frames split anywhere come out whole', () => {
  const bodies = [Buffer.alloc(0), Buffer.from('a'), Buffer.alloc(200, 7), Buffer.alloc(70000, 9)];
  const stream = Buffer.concat(bodies.map(frame));
  for (const step of [1, 2, 3, 1000, stream.length]) {
    const reader = new FrameReader();
    const out = [];
    for (let i = 0; i < stream.length; i += step) out.push(...reader.push(stream.subarray(i, i + step)));
    assert.deepEqual(out.map((b) => Buffer.from(b)), bodies, `chunks of ${step}`);
    assert.equal(reader.length, 0);
  }
});

test('a prefix longer than 5 bytes is malformed', () => {
  assert.throws(() => new FrameReader().push(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x01])), FramingError);
  assert.throws(() => new FrameReader().push(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x1f])), FramingError);
  assert.equal(new FrameReader().push(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])).length, 0);
});
