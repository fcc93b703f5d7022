// The client over TLS, against kvstored started with --tls-cert/--tls-key
// (and --tls-client-ca): calls, a value of several MB, a watch; a server
// whose CA the client does not trust, or whose certificate names another
// host, is refused with an error that says so; with client certificates
// required, one presented is served and none is refused (a read too,
// without retrying: the alert would come again); reconnects and
// endpoint lists keep TLS. The certificates are made at test time with the
// openssl command by tests/support/tlscerts.py (run with Debian's python3).
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const kvstore = require('..');
const { startServer, run } = require('./support');

const PYTHON = process.env.KVSTORE_PYTHON || '/usr/bin/python3';
const TLSCERTS = path.resolve(__dirname, '..', '..', '..', 'tests', 'support', 'tlscerts.py');
const WAIT = 30000;   // the longest a test waits for one event

function skipWhy() {
  if (spawnSync('openssl', ['version']).status !== 0) return 'no openssl command (Debian\'s openssl package)';
  if (spawnSync(PYTHON, ['--version']).status !== 0) return `no ${PYTHON} to run tests/support/tlscerts.py`;
  return false;
}

describe('TLS', { skip: skipWhy() }, () => {
  let dir;
  let server;     // --tls-cert, for 127.0.0.1 and localhost
  let mutual;     // the same, and --tls-client-ca: client certificates required
  const file = (name) => fs.readFileSync(path.join(dir, name));
  const serverArgs = (name) => ['--tls-cert', path.join(dir, `${name}.crt`), '--tls-key', path.join(dir, `${name}.key`)];
  // tls options trusting CA, presenting CERT's certificate when given.
  const trusting = (ca = 'ca', cert = null, extra = {}) => ({
    ca: file(`${ca}.crt`),
    ...(cert ? { cert: file(`${cert}.crt`), key: file(`${cert}.key`) } : {}),
    ...extra,
  });
  const clients = [];
  async function connect(endpoint, tls, options = {}) {
    const client = await kvstore.connect(endpoint, { timeout: 10000, tls, ...options });
    clients.push(client);
    return client;
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvstore-node-tls.'));
    run([PYTHON, TLSCERTS, dir], { timeout: 60000 });
    server = await startServer(...serverArgs('server'));
    mutual = await startServer(...serverArgs('server'), '--tls-client-ca', path.join(dir, 'ca.crt'));
  });

  after(async () => {
    try {
      await Promise.all(clients.map((c) => c.close()));
      for (const s of [server, mutual]) if (s) assert.equal(await s.stop(), 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('calls over TLS', async () => {
    const client = await connect(server.endpoint, trusting());
    assert.equal(await client.ping(), 'PONG');
    await client.set('k', 'over tls');
    assert.deepEqual(await client.get('k'), Buffer.from('over tls'));
    assert.match(client.connection.socket.getProtocol(), /^TLSv1\.[23]$/);
  });

  test('the name checked is the endpoint\'s host, or servername', async () => {
    // 127.0.0.1 (an IP address) and localhost are both in the certificate.
    await (await connect(server.endpoint, trusting())).set('by-ip', '1');
    const byName = await connect(server.endpoint, trusting('ca', null, { servername: 'localhost' }));
    assert.deepEqual(await byName.get('by-ip'), Buffer.from('1'));
  });

  test('a value of several MB each way', async () => {
    const client = await connect(server.endpoint, trusting());
    const big = crypto.randomBytes(5 << 20);
    await client.set('big', big);
    const got = await Promise.all([client.get('big'), client.get('big'), client.get('big')]);
    for (const value of got) assert.ok(value.equals(big));
  });

  test('a watch receives events', async () => {
    const client = await connect(server.endpoint, trusting());
    const w = client.watch({ prefix: 'w/' });
    await w.ready;
    await client.set('w/1', 'a');
    await client.clear('w/1');
    const events = [];
    const timer = setTimeout(() => w.cancel(), WAIT);
    for await (const ev of w) {
      events.push([ev.type, ev.kv.key.toString(), ev.kv.value.toString()]);
      if (events.length === 2) break;
    }
    clearTimeout(timer);
    await w.cancel();
    assert.deepEqual(events, [['PUT', 'w/1', 'a'], ['DELETE', 'w/1', '']]);
  });

  test('a reconnect keeps TLS', async () => {
    const client = await connect(server.endpoint, trusting());
    await client.set('r', 'before');
    const mine = (await client.ClientList({})).clients.find((c) => c.current).id;
    const killer = await connect(server.endpoint, trusting());
    assert.equal(Number((await killer.ClientKill({ id: mine })).killed), 1);
    // The next read finds the connection gone and makes a new one, over
    // TLS again (this server speaks nothing else).
    assert.deepEqual(await client.get('r'), Buffer.from('before'));
    assert.match(client.connection.socket.getProtocol(), /^TLSv1\.[23]$/);
  });

  test('every endpoint of a list gets TLS', async () => {
    // Nothing listens on the first: the second, over TLS, is taken.
    const client = await connect(['127.0.0.1:1', server.endpoint], trusting());
    assert.equal(client.endpoint, server.endpoint);
    assert.equal(await client.ping(), 'PONG');
  });

  test('a server signed by another CA is refused', async () => {
    await assert.rejects(kvstore.connect(server.endpoint, { tls: trusting('other-ca') }), (err) => {
      assert.equal(err.codeName, 'UNAVAILABLE');
      assert.match(err.details, new RegExp(`^TLS handshake with ${server.endpoint} failed: `
        + 'unable to verify the first certificate \\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\\)$'));
      assert.equal(err.cause.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      return true;
    });
  });

  test('tls: true trusts the system\'s CAs, not this test\'s', async () => {
    await assert.rejects(kvstore.connect(server.endpoint, { tls: true }),
      { codeName: 'UNAVAILABLE', details: /^TLS handshake with .* failed: / });
  });

  test('a certificate for another host is refused', async () => {
    const elsewhere = await startServer(...serverArgs('elsewhere-server'));
    try {
      await assert.rejects(kvstore.connect(elsewhere.endpoint, { tls: trusting() }),
        { codeName: 'UNAVAILABLE', details: /TLS handshake with .* failed: .*IP: 127\.0\.0\.1 is not in the cert's list/ });
      await assert.rejects(kvstore.connect(server.endpoint, { tls: trusting('ca', null, { servername: 'db.example' }) }),
        { codeName: 'UNAVAILABLE', details: /TLS handshake with .* failed: Hostname\/IP does not match certificate's altnames: Host: db\.example/ });
      // The name it is for, given as servername, is accepted.
      const client = await connect(elsewhere.endpoint, trusting('ca', null, { servername: 'elsewhere.example' }));
      assert.equal(await client.ping(), 'PONG');
      await client.close();
    } finally {
      assert.equal(await elsewhere.stop(), 0);
    }
  });

  // TLS 1.3: the client's side of the handshake ends before the server has
  // checked the certificate; the server's alert then ends the first call.
  // A write: tried once (a single server may have applied it).
  test('a client certificate is accepted when the server requires one', async () => {
    const client = await connect(mutual.endpoint, trusting('ca', 'client'));
    await client.set('k', 'mutual');
    assert.deepEqual(await client.get('k'), Buffer.from('mutual'));
  });

  test('no client certificate is refused when the server requires one', async () => {
    const client = await connect(mutual.endpoint, trusting());
    // The alert, or (the request is written at once, and the server's reset
    // may overtake its alert) a guess that says so.
    await assert.rejects(client.set('k', 'v'),
      { codeName: 'UNAVAILABLE', details: /tlsv13 alert certificate required|client's certificate refused/ });
  });

  test('a refused read is not retried', async () => {
    // A read is retried on a lost connection, but the server's alert would
    // come again on a new one. The alert may end the connection before the
    // read goes out (the socket reads at once): the read then opens one more.
    const good = await connect(mutual.endpoint, trusting('ca', 'client'));
    const before = Number((await good.Stats({})).connections_total);
    const client = await connect(mutual.endpoint, trusting(), { timeout: 3000 });
    await assert.rejects(client.get('k'),
      { codeName: 'UNAVAILABLE', details: /tlsv13 alert certificate required/ });
    assert.ok(Number((await good.Stats({})).connections_total) <= before + 2);
  });

  test('a client certificate from another CA is refused', async () => {
    const client = await connect(mutual.endpoint, trusting('ca', 'other-client'));
    await assert.rejects(client.set('k', 'v'),
      { codeName: 'UNAVAILABLE', details: /tlsv1 alert unknown ca|client's certificate refused/ });
  });

  test('a handshake that never ends is bounded by connectTimeout', async () => {
    // Accepts the TCP connection, never answers.
    const sockets = [];
    const silent = net.createServer((socket) => sockets.push(socket));
    await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const endpoint = `127.0.0.1:${silent.address().port}`;
    try {
      await assert.rejects(kvstore.connect(endpoint, { tls: trusting(), connectTimeout: 500 }),
        { codeName: 'DEADLINE_EXCEEDED', details: `could not connect to ${endpoint} within 500 ms` });
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test('a plaintext server fails the handshake', async () => {
    const plain = await startServer();
    try {
      await assert.rejects(kvstore.connect(plain.endpoint, { tls: trusting() }),
        { codeName: 'UNAVAILABLE', details: new RegExp(`^TLS handshake with ${plain.endpoint} failed: `) });
    } finally {
      assert.equal(await plain.stop(), 0);
    }
  });

  test('bad tls options are refused', async () => {
    await assert.rejects(kvstore.connect(server.endpoint, { tls: 'yes' }), TypeError);
    await assert.rejects(kvstore.connect(server.endpoint, { tls: { host: 'elsewhere' } }), TypeError);
  });
});
