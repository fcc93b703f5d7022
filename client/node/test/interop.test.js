// Interop: a value written by one client is read back by another, byte for
// byte: C (kvctl, from $KVCTL) <-> Node, and Python <-> Node (with a TTL,
// and seen by a watch).
'use strict';

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const kvstore = require('..');
const { startServer, run } = require('./support');

const VALUE = Buffer.concat([Buffer.from('\0interop\xff\0', 'latin1'), Buffer.from([...Array(256).keys()])]);
const PYTHON = process.env.KVSTORE_PYTHON || '/usr/bin/python3';
const PY_CLI = path.resolve(__dirname, '..', '..', 'python', 'tests', 'interop_cli.py');

let server;
let client;

before(async () => {
  server = await startServer();
  client = await kvstore.connect(server.endpoint, { timeout: 10000 });
});

after(async () => {
  await client.close();
  assert.equal(await server.stop(), 0);
});

function kvctlSkip() {
  const kvctl = process.env.KVCTL;
  if (!kvctl || !fs.existsSync(kvctl)) return `no kvctl: set KVCTL to the built client/kvctl binary (got ${kvctl})`;
  return false;
}

function pythonSkip() {
  const probe = spawnSync(PYTHON, ['-c', 'import kvstore'], { timeout: 30000 });
  if (probe.status !== 0) {
    return `the Python client does not import with ${PYTHON} (PYTHONPATH needs client/python and its generated kv_pb2): ${probe.stderr || probe.error}`;
  }
  return false;
}

describe('C (kvctl) and Node', { skip: kvctlSkip() }, () => {
  const kvctl = () => [process.env.KVCTL, '-e', server.endpoint];

  test('C writes, Node reads', async () => {
    run([...kvctl(), 'set', 'from-c-to-node'], { input: VALUE });
    assert.ok(VALUE.equals(await client.get('from-c-to-node')));
  });

  test('Node writes, C reads', async () => {
    await client.set('from-node-to-c', VALUE);
    assert.ok(VALUE.equals(run([...kvctl(), 'get', 'from-node-to-c'])));
  });
});

describe('Python and Node', { skip: pythonSkip() }, () => {
  test('Python writes, Node reads', async () => {
    const key = Buffer.from('\0from-python-to-node\xff', 'latin1');
    run([PYTHON, PY_CLI, server.endpoint, 'set', key.toString('hex'), VALUE.toString('hex')]);
    assert.ok(VALUE.equals(await client.get(key)));
  });

  test('a TTL both ways', async () => {
    const LONG = 600000;
    const cli = (...args) => run([PYTHON, PY_CLI, server.endpoint, ...args]).toString().trim();
    cli('set', Buffer.from('ttl-from-python').toString('hex'), Buffer.from('v').toString('hex'), String(LONG));
    const ttl = (await client.getEntry('ttl-from-python')).ttlMs;
    assert.ok(ttl > 0 && ttl <= LONG, `${ttl}`);
    await client.set('ttl-from-node', 'v', { ttlMs: LONG });
    const seen = Number(cli('ttl', Buffer.from('ttl-from-node').toString('hex')));
    assert.ok(seen > 0 && seen <= LONG, `${seen}`);
  });

  test('Node watches a Python write', async () => {
    const w = client.watch({ prefix: 'watched-from-node/' });
    try {
      await w.ready;
      run([PYTHON, PY_CLI, server.endpoint, 'set', Buffer.from('watched-from-node/k').toString('hex'), VALUE.toString('hex')]);
      const ev = await w.nextEvent(30000);
      assert.ok(ev, 'no event within 30 s');
      assert.deepEqual([ev.type, ev.kv.key.toString(), VALUE.equals(ev.kv.value)], ['PUT', 'watched-from-node/k', true]);
    } finally {
      await w.cancel();
    }
  });

  test('Node writes, Python reads', async () => {
    const key = Buffer.from('\0from-node-to-python\xff', 'latin1');
    await client.set(key, VALUE);
    const hex = run([PYTHON, PY_CLI, server.endpoint, 'get', key.toString('hex')]).toString().trim();
    assert.ok(VALUE.equals(Buffer.from(hex, 'hex')));
  });
});
