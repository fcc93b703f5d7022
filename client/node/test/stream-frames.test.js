// Stream frames (RpcResponse.stream = true) against a fake server that puts
// them exactly where a test wants: before the answer of another call, with
// the id of a call in flight, with an id nobody watches. The client must
// hand them to their watch by id and never resolve another call with one.
// The live behaviour of watches is ttl-watch.test.js's; this fixes the order.
'use strict';

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const kvstore = require('..');
const { FrameReader, frame } = require('../lib/framing');

const proto = kvstore.loadProto();
const type = (name) => proto.root.lookupType(`kvstore.v1.${name}`);
const PATH = '/kvstore.v1.KV/';

function put(key, value, revision) {
  return { type: 0, kv: { key, value, create_revision: revision, mod_revision: revision, version: 1 } };
}

// Watch: answers watch_id 7 (8 for a second one...), keeps the request's id.
// Set: first a stream frame of the PUT for the newest watch, then one with
// stream = true but the Set's own id and one for id 999 (both to be
// ignored), then the answer (revision n). Get: the value last set.
// CancelWatch: the canceled frame, then the answer. A Set of "compact" ends
// the newest watch as compacted (compact_revision 5).
async function startFake() {
  const sockets = new Set();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    const reader = new FrameReader();
    const watches = [];
    const store = new Map();
    let revision = 0;
    sock.on('data', (chunk) => {
      for (const body of reader.push(chunk)) {
        const request = proto.RpcRequest.decode(body);
        const id = Number(request.id);
        const method = request.method.slice(PATH.length);
        const out = [];
        const answer = { id, code: 0 };
        const stream = (callId, message) => out.push({
          id: callId, stream: true, payload: type('WatchResponse').encode(message).finish(),
        });
        if (method === 'Watch') {
          watches.push({ callId: id, watchId: 7 + watches.length });
          answer.payload = type('WatchResponse').encode({ watch_id: watches[watches.length - 1].watchId }).finish();
        } else if (method === 'Set') {
          const set = type('SetRequest').decode(request.payload);
          revision += 1;
          store.set(Buffer.from(set.key).toString('latin1'), Buffer.from(set.value));
          if (watches.length) {
            const { callId, watchId } = watches[watches.length - 1];
            if (Buffer.from(set.key).toString() === 'compact') {
              stream(callId, { watch_id: watchId, canceled: true, cancel_reason: 'compacted', compact_revision: 5 });
            } else {
              stream(callId, { watch_id: watchId, events: [put(set.key, set.value, revision)] });
            }
            const bogus = { watch_id: watchId, events: [put(Buffer.from('bogus'), Buffer.from('x'), 999)] };
            stream(id, bogus);
            stream(999, bogus);
          }
          answer.payload = type('SetResponse').encode({ key: set.key, revision }).finish();
        } else if (method === 'Get') {
          const key = Buffer.from(type('GetRequest').decode(request.payload).key).toString('latin1');
          answer.payload = type('GetResponse').encode({ value: store.get(key) || Buffer.alloc(0), found: true }).finish();
        } else if (method === 'CancelWatch') {
          const watchId = Number(type('CancelWatchRequest').decode(request.payload).watch_id);
          for (const w of watches) {
            if (w.watchId === watchId) {
              stream(w.callId, { watch_id: watchId, canceled: true, cancel_reason: 'canceled by CancelWatch' });
            }
          }
          answer.payload = Buffer.alloc(0);
        } else {
          answer.code = proto.StatusCode.values.UNIMPLEMENTED;
        }
        out.push(answer);
        sock.write(Buffer.concat(out.map((r) => frame(proto.RpcResponse.encode(r).finish()))));
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `127.0.0.1:${server.address().port}`,
    close: () => {
      for (const sock of sockets) sock.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('stream frames from a fake server', () => {
  let fake;
  let client;

  before(async () => {
    fake = await startFake();
    client = await kvstore.connect(fake.endpoint, { timeout: 10000 });
  });

  after(async () => {
    await client.close();
    await fake.close();
  });

  test('frames between answers go to the watch, never to a call', async () => {
    const w = client.watch({ prefix: 'k' });
    assert.equal(await w.ready, 7);
    assert.equal(w.watchId, 7);
    // Pipelined: every Set's answer follows frames, one with the Set's id.
    const keys = [...Array(10).keys()].map((i) => `k${i}`);
    await Promise.all(keys.map((k, i) => client.set(k, `v${i}`)));
    const values = await Promise.all(keys.map((k) => client.get(k)));
    assert.deepEqual(values.map(String), keys.map((_, i) => `v${i}`));
    const got = [];
    for (let i = 0; i < 10; i++) got.push(await w.nextEvent(10000));
    assert.deepEqual(got.map((e) => [e.type, e.kv.key.toString(), e.kv.value.toString(), e.revision]),
      keys.map((k, i) => ['PUT', k, `v${i}`, i + 1]));
    assert.equal(w.lastRevision, 10);
    assert.equal(await w.nextEvent(50), null);     // the bogus frames went nowhere
    await w.cancel();
    assert.equal(w.closed, true);
    const after = [];
    for await (const e of w) after.push(e);
    assert.deepEqual(after, []);
  });

  test('the server ending a watch throws after the events before it', async () => {
    const w = client.watch({ prefix: '' });
    await client.set('a', '1');
    await client.set('compact', 'x');
    const seen = [];
    await assert.rejects(async () => {
      for await (const e of w) seen.push(e.kv.key.toString());
    }, (err) => {
      assert.ok(err instanceof kvstore.WatchCanceledError);
      assert.deepEqual([err.watchId, err.cancelReason, err.compactRevision, err.compacted],
        [w.watchId, 'compacted', 5, true]);
      assert.match(err.message, /compacted/);
      return true;
    });
    assert.deepEqual(seen, ['a']);
    await w.cancel();     // nothing to cancel: no error
  });

  test('as an EventEmitter', async () => {
    const w = client.watch({ prefix: 'e' });
    const seen = [];
    const ended = new Promise((resolve) => w.on('end', resolve));
    const failed = new Promise((resolve) => w.on('error', resolve));
    w.on('event', (e) => seen.push(e.kv.key.toString()));
    await client.set('e1', 'v');
    await client.set('e2', 'v');
    await client.set('compact', 'x');
    const err = await failed;
    await ended;
    assert.ok(err instanceof kvstore.WatchCanceledError);
    assert.deepEqual(seen, ['e1', 'e2']);
  });

  test('break out of for await cancels the watch', async () => {
    const w = client.watch({ prefix: 'b' });
    await client.set('b1', 'v');
    for await (const e of w) {
      assert.equal(e.kv.key.toString(), 'b1');
      break;
    }
    assert.equal(w.closed, true);
    assert.equal(client.connection.streams.size, 0);
  });

  test('a lost connection ends the iteration with UNAVAILABLE', async () => {
    const other = await kvstore.connect(fake.endpoint, { timeout: 10000 });
    const w = other.watch({ prefix: '' });
    await w.ready;
    await other.close();
    await assert.rejects(w.nextEvent(10000), { codeName: 'UNAVAILABLE' });
  });
});
