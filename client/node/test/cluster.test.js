// The client given a list of endpoints: it follows a leader's hint, tries
// the next endpoint, sends a write again with the same clientId and seq,
// and reads with serializable. The nodes that are not the leader are
// fakes (fakeNode below, the twin of tests/support/fakefollower.py) in
// front of a real kvstored.
'use strict';

const net = require('node:net');
const { test, beforeEach, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const kvstore = require('..');
const { loadProto } = require('../lib/proto');
const { frame, FrameReader } = require('../lib/framing');
const { startServer } = require('./support');

const proto = loadProto();
let server;
const fakes = [];

beforeEach(async () => {
  server = await startServer();
});

afterEach(async () => {
  for (const f of fakes.splice(0)) f.close();
  await server.kill();
});

// A node that records every request ({ method, clientId, seq, conn, nth })
// and answers as ACT(seen) says: ['hint', addr], ['unavailable'],
// ['close'], or ['forward'] to the real server.
async function fakeNode(act) {
  const seen = [];
  let conns = 0;
  const sockets = new Set();
  const srv = net.createServer((sock) => {
    const conn = ++conns;
    const reader = new FrameReader();
    let upstream = null;
    sockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => { sockets.delete(sock); if (upstream) upstream.destroy(); });
    sock.on('data', (chunk) => {
      for (const body of reader.push(chunk)) {
        const req = proto.RpcRequest.decode(body);
        const s = { method: req.method, clientId: Buffer.from(req.client_id), seq: Number(req.seq),
          conn, nth: seen.length + 1 };
        seen.push(s);
        const [what, arg] = act(s);
        if (what === 'close') {
          sock.destroy();
          return;
        }
        if (what === 'forward') {
          if (!upstream) {
            upstream = net.connect(server.port, '127.0.0.1');
            const up = new FrameReader();
            upstream.on('data', (c) => { for (const b of up.push(c)) sock.write(frame(b)); });
            upstream.on('error', () => sock.destroy());
          }
          upstream.write(frame(body));
          continue;
        }
        const answer = proto.RpcResponse.create({ id: req.id, code: 14, message: 'not the leader (fake node)',
          leader: what === 'hint' ? arg : '' });
        sock.write(frame(proto.RpcResponse.encode(answer).finish()));
      }
    });
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const node = {
    endpoint: `127.0.0.1:${srv.address().port}`,
    seen,
    close() {
      srv.close();
      for (const s of sockets) s.destroy();
    },
  };
  fakes.push(node);
  return node;
}

test('a follower alone hints to the leader', async () => {
  const follower = await fakeNode(() => ['hint', server.endpoint]);
  const client = await kvstore.connect(follower.endpoint);
  try {
    await client.set('k', 'v');
    assert.equal((await client.get('k')).toString(), 'v');
    assert.equal(client.endpoint, server.endpoint);
  } finally {
    await client.close();
  }
  assert.deepEqual(follower.seen.map((s) => s.method), ['/kvstore.v1.KV/Set']);
});

test('a node without a leader: the next endpoint of an array', async () => {
  const follower = await fakeNode(() => ['unavailable']);
  const client = await kvstore.connect([follower.endpoint, server.endpoint]);
  try {
    await client.set('k', 'v');
    assert.equal((await client.get('k', { serializable: true })).toString(), 'v');
  } finally {
    await client.close();
  }
});

test('the timeout bounds the retries', async () => {
  const follower = await fakeNode(() => ['unavailable']);
  const client = await kvstore.connect(follower.endpoint, { timeout: 600 });
  const start = Date.now();
  try {
    await assert.rejects(client.set('k', 'v'), (err) => err.code === 14 && /fake node/.test(err.details));
  } finally {
    await client.close();
  }
  assert.ok(Date.now() - start < 3000);
  assert.ok(follower.seen.length > 1 && follower.seen.length < 30, `${follower.seen.length} tries`);
});

test('client_id and seq: kept on a retry, none on reads', async () => {
  const proxy = await fakeNode((s) => (s.nth === 1 ? ['close'] : ['forward']));
  const client = await kvstore.connect([proxy.endpoint, proxy.endpoint]) // twice: a cluster, which alone gets a cut-off write again;
  try {
    await client.set('a', '1');
    await client.set('b', '2');
    assert.equal((await client.get('a')).toString(), '1');
    const seqs = proxy.seen.map((s) => s.seq);
    assert.deepEqual(seqs, [1, 1, 2, 0]);
    assert.equal(client.clientId.length, 16);
    for (const s of proxy.seen.slice(0, 3)) assert.ok(s.clientId.equals(client.clientId));
    assert.equal(proxy.seen[3].clientId.length, 0);
    assert.deepEqual([proxy.seen[0].conn, proxy.seen[1].conn], [1, 2]);
    assert.equal((await client.getEntry('a', { serializable: true })).revision, 2);
  } finally {
    await client.close();
  }
});

test('a bad list is refused', async () => {
  await assert.rejects(kvstore.connect('127.0.0.1:1,,127.0.0.1:2'), RangeError);
});
