// Round trips of every rpc, binary data, errors and concurrent calls,
// against one live kvstored shared by this file.
'use strict';

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const kvstore = require('..');
const { startServer } = require('./support');

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

describe('every rpc through the generic stubs', () => {
  test('Ping', async () => {
    assert.equal((await client.Ping({})).message, 'PONG');
    assert.equal((await client.Ping({ message: 'hello' })).message, 'hello');
  });

  test('Set, Get, Clear', async () => {
    const set = await client.Set({ key: Buffer.from('rpc-k'), value: Buffer.from('v1') });
    assert.deepEqual(Buffer.from(set.key), Buffer.from('rpc-k'));
    assert.deepEqual(Buffer.from((await client.Get({ key: Buffer.from('rpc-k') })).value), Buffer.from('v1'));
    await client.Set({ key: 'rpc-k', value: 'v2' });   // strings are UTF-8
    const Get = client.service.methods.Get.resolvedRequestType;
    assert.equal((await client.Get(Get.create({ key: Buffer.from('rpc-k') }))).value.toString(), 'v2');
    const cleared = await client.Clear({ key: Buffer.from('rpc-k') });
    assert.equal(cleared.found, true);
    assert.equal(Buffer.from(cleared.value).toString(), 'v2');
    const again = await client.Clear({ key: Buffer.from('rpc-k') });
    assert.equal(again.found, false);
    assert.equal(again.value.length, 0);
  });

  test('an empty bytes field decodes as a Buffer, as index.d.ts says', async () => {
    // proto3 leaves empty bytes off the wire: protobufjs's default is [].
    await client.Set({ key: 'rpc-empty', value: Buffer.alloc(0) });
    const got = await client.Get({ key: 'rpc-empty' });
    assert.ok(Buffer.isBuffer(got.value) && got.value.length === 0);
    const missing = await client.Clear({ key: 'rpc-never-set' });
    assert.ok(Buffer.isBuffer(missing.value) && missing.value.length === 0);
    const page = await client.Range({ prefix: 'rpc-empty', keys_only: true });
    assert.equal(page.kvs.length, 1);
    assert.ok(Buffer.isBuffer(page.kvs[0].value) && page.kvs[0].value.length === 0);
    const request = client.service.methods.Get.resolvedRequestType.create({});
    assert.ok(Buffer.isBuffer(request.key));   // an unset field of a new message too
    await client.Clear({ key: 'rpc-empty' });
  });

  test('Stats', async () => {
    await client.set('stats-k', 'v');
    const stats = await client.Stats({});
    assert.ok(Number(stats.keys) >= 1);
    assert.ok(Number(stats.connections_current) >= 1);
    assert.ok(stats.methods.some((m) => m.method === '/kvstore.v1.KV/Set'));
  });

  test('Auth is OK on a server without a token', async () => {
    const answer = await client.Auth({ token: Buffer.from('anything') });
    assert.equal(answer.constructor.name, 'AuthResponse');
    assert.equal(await client.auth('anything'), undefined);
  });

  test('every rpc of the service is a method', () => {
    const names = client.service.methodsArray.map((m) => m.name);
    for (const name of ['Ping', 'Get', 'Set', 'Clear', 'Stats', 'Auth']) assert.ok(names.includes(name), name);
    for (const name of names) assert.equal(typeof client[name], 'function');
  });

  test('a request with wrong field types is refused before sending', async () => {
    await assert.rejects(client.Get({ key: 42 }), TypeError);
    await assert.rejects(client.call('NoSuchRpc', {}), TypeError);
  });

  test('an rpc added to the proto needs no client change', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvproto-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const text = fs.readFileSync(kvstore.DEFAULT_PROTO_PATH, 'utf8')
      .replace('service KV {', 'service KV {\n  rpc Echo (PingRequest) returns (PingResponse);');
    const file = path.join(dir, 'kv.proto');
    fs.writeFileSync(file, text);
    const newer = await kvstore.connect(server.endpoint, { protoPath: file });
    t.after(() => newer.close());
    assert.equal(typeof newer.Echo, 'function');
    await assert.rejects(newer.Echo({ message: 'x' }), (err) => {
      assert.equal(err.codeName, 'UNIMPLEMENTED');
      assert.match(err.message, /\/kvstore\.v1\.KV\/Echo/);
      return true;
    });
    assert.equal(await newer.ping(), 'PONG');
  });
});

describe('helpers with plain values', () => {
  test('ping, set, get, clear', async () => {
    assert.equal(await client.ping(), 'PONG');
    assert.equal(await client.ping('echo me'), 'echo me');
    assert.equal(await client.set('helper-k', 'héllo'), undefined);
    assert.deepEqual(await client.get('helper-k'), Buffer.from('héllo'));
    assert.deepEqual(await client.clear('helper-k'), Buffer.from('héllo'));
    assert.equal(await client.clear('helper-k'), null);
  });

  test('an empty value is a value', async () => {
    await client.set('empty-v', Buffer.alloc(0));
    assert.equal((await client.get('empty-v')).length, 0);
    assert.deepEqual(await client.clear('empty-v'), Buffer.alloc(0));
  });

  test('binary keys and values', async () => {
    const key = Buffer.from([0, 0x62, 0xff, 0]);
    const value = Buffer.concat([Buffer.from([...Array(256).keys()]), Buffer.from([0, 0xff])]);
    await client.set(key, value);
    assert.deepEqual(await client.get(key), value);
    assert.deepEqual(Buffer.from((await client.Get({ key })).value), value);
    await assert.rejects(client.get(key.subarray(0, 3)), kvstore.KeyNotFoundError);
    assert.deepEqual(await client.clear(key), value);
  });

  test('a 4 MiB value', async () => {
    const value = crypto.randomBytes(4 << 20);
    await client.set('big', value);
    assert.ok(value.equals(await client.get('big')));
    assert.ok(value.equals(await client.clear('big')));
  });
});

describe('errors', () => {
  test('get of a missing key is NOT_FOUND', async () => {
    await assert.rejects(client.get('no such key'), (err) => {
      assert.ok(err instanceof kvstore.KeyNotFoundError);
      assert.ok(err instanceof kvstore.RpcError);
      assert.equal(err.code, 5);
      assert.equal(err.codeName, 'NOT_FOUND');
      assert.equal(err.details, 'key not found');
      assert.equal(err.method, '/kvstore.v1.KV/Get');
      assert.match(err.message, /NOT_FOUND \(5\): key not found/);
      return true;
    });
  });

  test('an empty key is INVALID_ARGUMENT', async () => {
    for (const call of [() => client.get(''), () => client.set('', 'v'), () => client.clear('')]) {
      await assert.rejects(call(), { code: 3, codeName: 'INVALID_ARGUMENT' });
    }
  });

  test('an unknown method in a hand-built envelope is UNIMPLEMENTED', async () => {
    const answer = await client.exchange({ method: '/kvstore.v1.KV/NoSuchMethod', payload: Buffer.from([0x0a, 1, 0x6b]) });
    assert.equal(answer.code, 12);
    assert.notEqual(answer.id, 0);
    assert.equal(answer.payload.length, 0);
    await assert.rejects(client.invoke('/kvstore.v1.KV/NoSuchMethod', Buffer.alloc(0)),
      { name: 'RpcError', code: 12, codeName: 'UNIMPLEMENTED' });
    assert.equal(await client.ping(), 'PONG');   // the connection keeps serving
  });

  test('method paths are case-sensitive', async () => {
    await assert.rejects(client.invoke('/kvstore.v1.KV/get', Buffer.from([0x0a, 1, 0x6b])), { codeName: 'UNIMPLEMENTED' });
  });

  test('a payload that does not decode is INVALID_ARGUMENT', async () => {
    await assert.rejects(client.invoke('/kvstore.v1.KV/Get', Buffer.from([0xff, 0xff, 0xff])), { codeName: 'INVALID_ARGUMENT' });
    assert.equal(await client.ping(), 'PONG');
  });

  test('a closed client fails fast', async () => {
    const c = await kvstore.connect(server.endpoint);
    await c.close();
    assert.equal(c.closed, true);
    await assert.rejects(c.ping(), (err) => err.codeName === 'UNAVAILABLE' && /closed/.test(err.message));
  });

  test('a refused connection is UNAVAILABLE', async () => {
    const probe = net.createServer();
    await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address();
    await new Promise((resolve) => probe.close(resolve));
    await assert.rejects(kvstore.connect(`127.0.0.1:${port}`, { timeout: 2000 }),
      (err) => err.codeName === 'UNAVAILABLE' && /could not connect/.test(err.message));
  });

  test('a bad port is refused before connecting', async () => {
    for (const [endpoint, port] of [['127.0.0.1:70000', '70000'], ['127.0.0.1:65536', '65536'],
      ['[::1]:99999', '99999'], ['127.0.0.1:-1', '-1'], ['127.0.0.1:+80', '+80'],
      ['127.0.0.1:1e3', '1e3']]) {
      await assert.rejects(kvstore.connect(endpoint, { timeout: 2000 }), {
        name: 'RangeError',
        message: `bad port "${port}" in endpoint "${endpoint}" (want a number from 0 to 65535)`,
      });
    }
    const [host, port] = server.endpoint.split(':');
    const c = await kvstore.connect(`${host}:${port.padStart(5, '0')}`);
    assert.equal(await c.ping(), 'PONG');
    await c.close();
  });
});

describe('concurrent calls on one socket', () => {
  test('1,000 pipelined requests', async () => {
    const keys = [...Array(1000).keys()].map((i) => `pipe-${i}`);
    await Promise.all(keys.map((k, i) => client.set(k, `value-${i}`)));
    const values = await Promise.all(keys.map((k) => client.get(k)));
    assert.deepEqual(values.map(String), keys.map((_, i) => `value-${i}`));
  });

  test('mixed rpcs and errors in flight together', async () => {
    const results = await Promise.allSettled([
      client.Set({ key: 'mix', value: '1' }),
      client.get('mix-missing'),
      client.Ping({ message: 'between' }),
      client.clear('mix'),
    ]);
    assert.equal(results[0].status, 'fulfilled');
    assert.equal(results[1].reason.codeName, 'NOT_FOUND');
    assert.equal(results[2].value.message, 'between');
    assert.deepEqual(results[3].value, Buffer.from('1'));
  });

  test('large values in flight together', async () => {
    const values = [...Array(8).keys()].map(() => crypto.randomBytes(1 << 20));
    await Promise.all(values.map((v, i) => client.set(`large-${i}`, v)));
    const back = await Promise.all(values.map((_, i) => client.get(`large-${i}`)));
    back.forEach((v, i) => assert.ok(v.equals(values[i])));
  });
});
