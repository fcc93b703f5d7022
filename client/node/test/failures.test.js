// A server that dies or stalls in the middle of a call: the client fails
// with a clear error within its timeout, never hangs. Each test starts
// (and ends) its own kvstored.
'use strict';

const { test, beforeEach, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const kvstore = require('..');
const { startServer } = require('./support');

let server;

beforeEach(async () => {
  server = await startServer();
});

afterEach(async () => {
  await server.kill();
});

test('server killed mid-call', { timeout: 30000 }, async () => {
  // The read is sent again, to the one endpoint, until the timeout.
  const client = await kvstore.connect(server.endpoint, { timeout: 2000 });
  await client.set('k', 'v');
  // Stopped, the server cannot answer: the call is surely in flight when
  // SIGKILL lands.
  server.signal('SIGSTOP');
  setTimeout(() => server.signal('SIGKILL'), 300);
  const start = Date.now();
  await assert.rejects(client.get('k'), (err) => {
    assert.equal(err.code, 14);
    assert.equal(err.codeName, 'UNAVAILABLE');
    assert.match(err.details, /closed by the server|lost|could not connect/);
    return true;
  });
  assert.ok(Date.now() - start < 5000, `took ${Date.now() - start} ms`);
  assert.equal(client.closed, true);
  await assert.rejects(client.ping(), { codeName: 'UNAVAILABLE' });
});

test('server killed with many calls in flight', { timeout: 30000 }, async () => {
  const client = await kvstore.connect(server.endpoint, { timeout: 2000 });
  server.signal('SIGSTOP');
  setTimeout(() => server.signal('SIGKILL'), 300);
  const start = Date.now();
  const results = await Promise.allSettled([...Array(100).keys()].map((i) => client.set(`k${i}`, 'v'.repeat(1000))));
  assert.ok(Date.now() - start < 5000);
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.equal(r.reason.codeName, 'UNAVAILABLE');
  }
});

test('a stalled server times out and the connection recovers', { timeout: 30000 }, async () => {
  const client = await kvstore.connect(server.endpoint, { timeout: 10000 });
  await client.set('k', 'before');
  server.signal('SIGSTOP');
  const start = Date.now();
  await assert.rejects(client.get('k', { timeout: 500 }), { code: 4, codeName: 'DEADLINE_EXCEEDED' });
  const elapsed = Date.now() - start;
  assert.ok(elapsed >= 490 && elapsed < 3000, `took ${elapsed} ms`);
  server.signal('SIGCONT');
  // The late answer to the timed-out Get is dropped, not taken for this one.
  assert.equal(await client.ping('after'), 'after');
  assert.deepEqual(await client.get('k'), Buffer.from('before'));
  await client.close();
});

test('close() ends the calls in flight', { timeout: 30000 }, async () => {
  const client = await kvstore.connect(server.endpoint, { timeout: 10000 });
  server.signal('SIGSTOP');
  const pending = client.get('k');
  setTimeout(() => client.close(), 300);
  const start = Date.now();
  await assert.rejects(pending, (err) => err.codeName === 'UNAVAILABLE' && /client closed/.test(err.details));
  assert.ok(Date.now() - start < 5000);
});

test('SIGTERM makes the server exit 0', async () => {
  const client = await kvstore.connect(server.endpoint);
  assert.equal(await client.ping(), 'PONG');
  await client.close();
  assert.equal(await server.stop(), 0);
});
