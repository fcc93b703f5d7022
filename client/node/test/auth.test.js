// A server started with --auth-token-file: calls before Auth are
// UNAUTHENTICATED; the token option of connect() authenticates at once.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const kvstore = require('..');
const { startServer } = require('./support');

const TOKEN = 's3cret-token';
let server;
let dir;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvauth-'));
  fs.writeFileSync(path.join(dir, 'token'), `${TOKEN}\n`);
  server = await startServer('--auth-token-file', path.join(dir, 'token'));
});

after(async () => {
  try {
    assert.equal(await server.stop(), 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('calls before Auth are UNAUTHENTICATED', async () => {
  const client = await kvstore.connect(server.endpoint);
  try {
    await assert.rejects(client.get('k'), { code: 16, codeName: 'UNAUTHENTICATED' });
    await client.Auth({ token: Buffer.from(TOKEN) });
    await client.set('k', 'v');
    assert.deepEqual(await client.get('k'), Buffer.from('v'));
  } finally {
    await client.close();
  }
});

test('the token option authenticates', async () => {
  const client = await kvstore.connect(server.endpoint, { token: TOKEN });
  assert.equal(await client.ping(), 'PONG');
  await client.close();
});

test('a wrong token rejects connect()', async () => {
  await assert.rejects(kvstore.connect(server.endpoint, { token: 'wrong' }),
    (err) => err.codeName === 'UNAUTHENTICATED' && /wrong token/.test(err.details));
});
