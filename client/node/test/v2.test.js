// The v2 data model through the helpers (and a few raw stubs): revisions,
// getEntry, cas and conditional clear, range (an async iterator that
// pages), count, clearRange and the Txn builder, against one live kvstored
// shared by this file. Tests use keys of their own prefix and run one at a
// time, so a test may reason about how the store's revision moves.
'use strict';

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const kvstore = require('..');
const { compare, op } = kvstore;
const { FrameReader, frame } = require('../lib/framing');
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

const b = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

async function collect(iterable) {
  const out = [];
  for await (const e of iterable) out.push(e);
  return out;
}

const keysOf = (entries) => entries.map((e) => e.key);

async function revision() {
  return Number((await client.Stats({})).revision);
}

async function rangeCalls() {
  const stats = await client.Stats({});
  return Number(stats.methods.find((m) => m.method === '/kvstore.v1.KV/Range').calls);
}

// Sets PREFIX000 .. PREFIX(N-1) and returns their keys, in order.
async function fill(prefix, n) {
  const keys = [...Array(n).keys()].map((i) => b(prefix, String(i).padStart(3, '0')));
  await Promise.all(keys.map((k) => client.set(k, b('v', k))));
  return keys;
}

describe('revisions', () => {
  test('every write moves the revision by one', async () => {
    const start = await revision();
    assert.equal(Number((await client.Set({ key: 'rev/a', value: '1' })).revision), start + 1);
    assert.equal(Number((await client.Set({ key: 'rev/b', value: '1' })).revision), start + 2);
    assert.equal(Number((await client.Clear({ key: 'rev/a' })).revision), start + 3);
    assert.equal(await revision(), start + 3);
  });

  test('getEntry carries the revisions', async () => {
    const created = Number((await client.Set({ key: 'rev/e', value: 'one' })).revision);
    let e = await client.getEntry('rev/e');
    assert.deepEqual(e, {
      key: b('rev/e'), value: b('one'), createRevision: created, modRevision: created, version: 1,
      revision: e.revision, ttlMs: 0,
    });
    assert.ok(e.revision >= created);
    await client.set('rev/other', 'x');
    const changed = Number((await client.Set({ key: 'rev/e', value: 'two' })).revision);
    e = await client.getEntry(b('rev/e'));
    assert.deepEqual([e.value, e.createRevision, e.modRevision, e.version, e.revision],
      [b('two'), created, changed, 2, changed]);
    assert.deepEqual(await client.get('rev/e'), b('two'));   // get() is unchanged
    await assert.rejects(client.getEntry('rev/missing'), kvstore.KeyNotFoundError);
  });

  test('a Get answer says found', async () => {
    await client.set('rev/found', 'x');
    const answer = await client.Get({ key: 'rev/found' });
    assert.equal(answer.found, true);
    assert.equal(Number(answer.revision), await revision());
  });

  test('what changes nothing keeps the revision', async () => {
    await client.set('rev/keep', 'x');
    const start = await revision();
    assert.equal(Number((await client.Clear({ key: 'rev/keep-missing' })).revision), 0);
    await assert.rejects(client.cas('rev/keep', 'y', 0), kvstore.FailedPreconditionError);
    const cleared = await client.ClearRange({ prefix: 'rev/keep-nothing/' });
    assert.deepEqual([Number(cleared.deleted), Number(cleared.revision)], [0, 0]);
    await client.txn().if(compare.value('rev/keep').equal('x')).then(op.get('rev/keep')).commit();
    await client.txn().if(compare.value('rev/keep').equal('no')).then(op.set('rev/keep', 'z')).commit();
    await client.rangePage({ prefix: 'rev/' });
    assert.equal(await revision(), start);
  });
});

describe('conditional writes', () => {
  test('cas create-only', async () => {
    const rev = await client.cas('cas/new', 'first', 0);
    assert.equal(typeof rev, 'number');
    assert.equal((await client.getEntry('cas/new')).modRevision, rev);
    await assert.rejects(client.cas('cas/new', 'second', 0), (err) => {
      assert.ok(err instanceof kvstore.FailedPreconditionError);
      assert.ok(err instanceof kvstore.RpcError);
      assert.equal(err.code, 9);
      assert.equal(err.codeName, 'FAILED_PRECONDITION');
      assert.equal(err.method, '/kvstore.v1.KV/Set');
      assert.match(err.details, new RegExp(`\\b${rev}\\b`));   // the current mod_revision
      return true;
    });
    assert.deepEqual(await client.get('cas/new'), b('first'));
  });

  test('cas on the revision read', async () => {
    await client.set('cas/n', '1');
    const seen = await client.getEntry('cas/n');
    const rev = await client.cas('cas/n', '2', seen.modRevision);
    assert.ok(rev > seen.modRevision);
    const now = await client.getEntry('cas/n');
    assert.deepEqual([now.value, now.modRevision, now.version], [b('2'), rev, 2]);
    await assert.rejects(client.cas('cas/n', '3', seen.modRevision), { codeName: 'FAILED_PRECONDITION' });
    await assert.rejects(client.cas('cas/absent', 'v', 5), kvstore.FailedPreconditionError);
    await assert.rejects(client.get('cas/absent'), kvstore.KeyNotFoundError);
    assert.deepEqual(await client.get('cas/n'), b('2'));
  });

  test('if_mod_revision 0 differs from absent', async () => {
    await client.set('cas/zero', 'v');
    await assert.rejects(client.Set({ key: 'cas/zero', value: 'w', if_mod_revision: 0 }),
      kvstore.FailedPreconditionError);
    await client.Set({ key: 'cas/zero', value: 'w' });
    assert.deepEqual(await client.get('cas/zero'), b('w'));
  });

  test('arguments are checked before sending', async () => {
    await assert.rejects(client.cas('cas/x', 'v'), TypeError);
    await assert.rejects(client.cas('cas/x', 'v', -1), RangeError);
    await assert.rejects(client.clear('cas/x', { ifModRevision: 1.5 }), TypeError);
  });

  test('conditional clear', async () => {
    const rev = Number((await client.Set({ key: 'cas/c', value: 'v' })).revision);
    await assert.rejects(client.clear('cas/c', { ifModRevision: rev + 100 }),
      { codeName: 'FAILED_PRECONDITION', method: '/kvstore.v1.KV/Clear' });
    await assert.rejects(client.clear('cas/c', { ifModRevision: 0 }), kvstore.FailedPreconditionError);
    assert.deepEqual(await client.get('cas/c'), b('v'));
    assert.deepEqual(await client.clear('cas/c', { ifModRevision: rev }), b('v'));
    const start = await revision();
    assert.equal(await client.clear('cas/c', { ifModRevision: 0 }), null);   // absent: holds, no change
    assert.equal(await revision(), start);
  });
});

describe('range', () => {
  // In byte order: memcmp, shorter first on a tie.
  const ORDERED = ['', [0], 'a', ['a', [0]], ['a', [0, 0]], 'ab', 'b', [0x7f], [0x80], [0xff],
    [[0xff], [0]], [[0xff, 0xff]]].map((k) => (Array.isArray(k) && typeof k[0] !== 'number' ? b(...k) : b(k)));

  test('byte order, shorter first, forward and reverse, any page size', async () => {
    const keys = ORDERED.map((k) => b('ord/', k));
    for (const k of [...keys].reverse()) await client.set(k, b('v:', k));
    const got = await collect(client.range({ prefix: 'ord/' }));
    assert.deepEqual(keysOf(got), keys);
    assert.deepEqual(got.map((e) => e.value), keys.map((k) => b('v:', k)));
    assert.deepEqual(keysOf(await collect(client.range({ prefix: 'ord/', reverse: true }))), [...keys].reverse());
    assert.deepEqual(keysOf(await collect(client.range({ prefix: 'ord/', pageSize: 1 }))), keys);
    assert.deepEqual(keysOf(await collect(client.range({ prefix: 'ord/', pageSize: 2, reverse: true }))),
      [...keys].reverse());
  });

  test('entries carry revisions', async () => {
    const rev = Number((await client.Set({ key: 'rent/k', value: 'v' })).revision);
    const [e] = await collect(client.range({ prefix: 'rent/' }));
    assert.deepEqual([e.key, e.value, e.createRevision, e.modRevision, e.version], [b('rent/k'), b('v'), rev, rev, 1]);
    assert.equal(e.revision, await revision());
    assert.deepEqual(e, await client.getEntry('rent/k'));
  });

  test('start and end', async () => {
    const keys = await fill('se/', 10);
    assert.deepEqual(keysOf(await collect(client.range({ start: 'se/003', end: 'se/007' }))), keys.slice(3, 7));
    assert.deepEqual(keysOf(await collect(client.range({ start: 'se/003', end: 'se/007', reverse: true }))),
      keys.slice(3, 7).reverse());
    assert.deepEqual(keysOf(await collect(client.range({ start: 'se/003', end: 'se/007', pageSize: 3 }))),
      keys.slice(3, 7));
    assert.deepEqual(keysOf(await collect(client.range({ start: 'se/0035', end: 'se/0075', pageSize: 1, reverse: true }))),
      keys.slice(4, 8).reverse());
    assert.deepEqual(keysOf(await collect(client.range({ start: 'se/008', limit: 5 }))).slice(0, 2), keys.slice(8));
    assert.deepEqual(await collect(client.range({ start: 'se/005', end: 'se/005' })), []);
  });

  test('pages transparently, and lazily', async () => {
    const keys = await fill('page/', 25);
    let calls = await rangeCalls();
    const iterator = client.range({ prefix: 'page/', pageSize: 4 });
    assert.equal(await rangeCalls(), calls);                 // nothing sent before iterating
    assert.deepEqual(keysOf(await collect(iterator)), keys);
    assert.equal(await rangeCalls() - calls, 7);              // 4 * 6 + 1
    calls = await rangeCalls();
    assert.deepEqual(keysOf(await collect(client.range({ prefix: 'page/', pageSize: 5, reverse: true }))),
      [...keys].reverse());
    assert.equal(await rangeCalls() - calls, 5);              // no empty page after the last
    // Breaking out of the loop stops the paging.
    calls = await rangeCalls();
    for await (const e of client.range({ prefix: 'page/', pageSize: 2 })) if (e.key.equals(keys[2])) break;
    assert.equal(await rangeCalls() - calls, 2);
  });

  test('limit', async () => {
    const keys = await fill('lim/', 12);
    assert.deepEqual(keysOf(await collect(client.range({ prefix: 'lim/', limit: 5 }))), keys.slice(0, 5));
    assert.deepEqual(keysOf(await collect(client.range({ prefix: 'lim/', limit: 5, pageSize: 2 }))), keys.slice(0, 5));
    assert.deepEqual(keysOf(await collect(client.range({ prefix: 'lim/', limit: 3, reverse: true }))),
      [...keys].reverse().slice(0, 3));
    assert.equal((await collect(client.range({ prefix: 'lim/', limit: 100 }))).length, 12);
  });

  test('limit 0 is no limit', async () => {
    // As the wire's limit 0 and kvctl's --limit 0: every key, on every page.
    const keys = await fill('lim0/', 12);
    assert.deepEqual(keysOf(await collect(client.range({ prefix: 'lim0/', limit: 0 }))), keys);
    assert.deepEqual(keysOf(await collect(client.range({ prefix: 'lim0/', limit: 0, pageSize: 5 }))), keys);
    assert.deepEqual(keysOf(await collect(client.range({ prefix: 'lim0/', limit: 0, pageSize: 5, reverse: true }))),
      [...keys].reverse());
    assert.deepEqual(keysOf(await collect(client.range({ prefix: 'lim0/', limit: null }))), keys);
  });

  test('keysOnly', async () => {
    const keys = await fill('ko/', 5);
    const got = await collect(client.range({ prefix: 'ko/', keysOnly: true, pageSize: 2 }));
    assert.deepEqual(keysOf(got), keys);
    assert.ok(got.every((e) => e.value.length === 0 && e.modRevision > 0));
  });

  test('a prefix ending in 0xff bytes pages to its end', async () => {
    const keys = [b([0xff, 0xfe, 0xff]), b([0xff, 0xfe, 0xff, 0]), b([0xff, 0xfe, 0xff, 0xff]), b([0xff, 0xfe, 0xff, 0xff, 1])];
    const top = [b([0xff, 0xff]), b([0xff, 0xff, 0]), b([0xff, 0xff, 0xff])];
    for (const k of [...keys, ...top, b([0xff, 0xfe, 0xfe])]) await client.set(k, 'v');
    try {
      assert.deepEqual(kvstore.prefixEnd(b([0xff, 0xfe, 0xff])), b([0xff, 0xff]));
      assert.equal(kvstore.prefixEnd(b([0xff, 0xff])).length, 0);
      assert.deepEqual(keysOf(await collect(client.range({ prefix: b([0xff, 0xfe, 0xff]), pageSize: 1 }))), keys);
      assert.deepEqual(keysOf(await collect(client.range({ prefix: b([0xff, 0xfe, 0xff]), pageSize: 1, reverse: true }))),
        [...keys].reverse());
      assert.deepEqual(keysOf(await collect(client.range({ prefix: b([0xff, 0xff]), pageSize: 1 }))), top);
      assert.deepEqual(keysOf(await collect(client.range({ prefix: b([0xff, 0xff]), pageSize: 2, reverse: true }))),
        [...top].reverse());
    } finally {
      await client.clearRange({ prefix: b([0xff]) });
    }
  });

  test('rangePage', async () => {
    const keys = await fill('rp/', 6);
    const page = await client.rangePage({ prefix: 'rp/', limit: 2 });
    assert.deepEqual(keysOf(page.entries), keys.slice(0, 2));
    assert.deepEqual([page.more, page.count, page.revision], [true, 6, await revision()]);
    const last = await client.rangePage({ start: 'rp/004', end: b('rp/', [0xff]), limit: 2 });
    assert.deepEqual([keysOf(last.entries), last.more, last.count], [keys.slice(4), false, 2]);
    const whole = await client.rangePage({ prefix: 'rp/' });
    assert.deepEqual([whole.entries.length, whole.more, whole.count], [6, false, 6]);
  });

  test('count', async () => {
    await fill('cnt/', 7);
    assert.equal(await client.count({ prefix: 'cnt/' }), 7);
    assert.equal(await client.count({ start: 'cnt/002', end: 'cnt/005' }), 3);
    assert.equal(await client.count({ prefix: 'cnt-none/' }), 0);
    const answer = await client.Range({ prefix: 'cnt/', count_only: true });
    assert.deepEqual([answer.kvs.length, Number(answer.count)], [0, 7]);
    assert.equal(await client.count(), Number((await client.Stats({})).keys));   // no selector: every key
  });

  test('no selector reads everything', async () => {
    await client.set('all/k', 'v');
    const keys = keysOf(await collect(client.range({ keysOnly: true })));
    assert.ok(keys.some((k) => k.equals(b('all/k'))));
    assert.deepEqual(keys, [...keys].sort(Buffer.compare));
    assert.equal(keys.length, Number((await client.Stats({})).keys));
  });

  test('prefix with start or end is INVALID_ARGUMENT', async () => {
    for (const extra of [{ start: 'a' }, { end: 'z' }]) {
      await assert.rejects(collect(client.range({ prefix: 'p/', ...extra })), { codeName: 'INVALID_ARGUMENT' });
      await assert.rejects(client.count({ prefix: 'p/', ...extra }), { codeName: 'INVALID_ARGUMENT' });
      await assert.rejects(client.clearRange({ prefix: 'p/', ...extra }), { codeName: 'INVALID_ARGUMENT' });
    }
  });

  test('arguments are checked before sending', () => {
    assert.throws(() => client.range({ prefix: 5 }), TypeError);
    assert.throws(() => client.range({ limit: -1 }), RangeError);
    assert.throws(() => client.range({ pageSize: 2 ** 32 }), RangeError);
  });

  test('strings in nested bytes fields of a raw request are UTF-8', async () => {
    await client.set('nested/é', 'v');
    const answer = await client.Txn({ success: [{ range: { prefix: 'nested/' } }] });
    assert.deepEqual(Buffer.from(answer.results[0].range.kvs[0].key), Buffer.from('nested/é'));
  });
});

describe('large pages', () => {
  test('a page is cut at the frame limit and range() pages on', async (t) => {
    const own = await startServer('--max-frame-bytes', '1M');
    t.after(() => own.kill());
    const c = await kvstore.connect(own.endpoint, { timeout: 10000 });
    t.after(() => c.close());
    const values = [...Array(10).keys()].map((i) => Buffer.alloc(300 << 10, i));
    for (const [i, v] of values.entries()) await c.set(`big/${i}`, v);
    const page = await c.rangePage({ prefix: 'big/' });
    assert.equal(page.more, true);
    assert.ok(page.entries.length > 0 && page.entries.length < 10, `${page.entries.length} keys`);
    assert.equal(page.count, 10);
    assert.deepEqual((await collect(c.range({ prefix: 'big/' }))).map((e) => e.value), values);
    assert.deepEqual((await collect(c.range({ prefix: 'big/', reverse: true }))).map((e) => e.value),
      [...values].reverse());
  });
});

describe('clearRange', () => {
  test('prefix: one write, one revision', async () => {
    await fill('cr/', 9);
    await client.set('cr', 'not under the prefix');
    const start = await revision();
    assert.equal(await client.clearRange({ prefix: 'cr/' }), 9);
    assert.equal(await revision(), start + 1);
    assert.equal(await client.count({ prefix: 'cr/' }), 0);
    assert.deepEqual(await client.get('cr'), b('not under the prefix'));
  });

  test('start and end', async () => {
    const keys = await fill('crse/', 6);
    const answer = await client.ClearRange({ start: 'crse/001', end: 'crse/004' });
    assert.equal(Number(answer.deleted), 3);
    assert.equal(Number(answer.revision), await revision());
    assert.deepEqual(keysOf(await collect(client.range({ prefix: 'crse/' }))), [keys[0], ...keys.slice(4)]);
    assert.equal(await client.clearRange({ start: 'crse/', end: 'crse0' }), 3);
  });

  test('nothing to clear keeps the revision', async () => {
    const start = await revision();
    assert.equal(await client.clearRange({ prefix: 'cr-nothing/' }), 0);
    assert.equal(await revision(), start);
  });

  test('no selector is INVALID_ARGUMENT', async () => {
    await client.set('crsafe/k', 'v');
    await assert.rejects(client.clearRange(), { codeName: 'INVALID_ARGUMENT' });
    await assert.rejects(client.clearRange({ prefix: '' }), { codeName: 'INVALID_ARGUMENT' });
    assert.deepEqual(await client.get('crsafe/k'), b('v'));
  });
});

describe('txn', () => {
  const holds = async (...compares) => (await client.txn().if(...compares).commit()).succeeded;

  test('then branch: one revision, later ops see earlier writes', async () => {
    const rev = Number((await client.Set({ key: 'tx/a', value: '1' })).revision);
    const r = await client.txn()
      .if(compare.modRevision('tx/a').equal(rev), compare.value('tx/a').equal('1'))
      .then(op.set('tx/a', '2'), op.set('tx/b', 'new'), op.get('tx/a'), op.get('tx/missing'))
      .else(op.get('tx/a'))
      .commit();
    assert.equal(r.succeeded, true);
    assert.equal(r.revision, rev + 1);
    assert.deepEqual(r.results.slice(0, 2), [rev + 1, rev + 1]);
    const got = r.results[2];
    assert.deepEqual([got.key, got.value, got.modRevision, got.version], [b('tx/a'), b('2'), rev + 1, 2]);
    assert.equal(r.results[3], null);                         // missing: found = false
    assert.equal((await client.getEntry('tx/b')).modRevision, (await client.getEntry('tx/a')).modRevision);
    assert.equal(await revision(), rev + 1);
  });

  test('else branch: read-only, no revision', async () => {
    await client.set('tx/e', 'current');
    const start = await revision();
    const r = await client.txn()
      .if(compare.value('tx/e').equal('expected'))
      .then(op.set('tx/e', 'changed'))
      .else(op.get('tx/e'), op.range({ prefix: 'tx/e' }))
      .commit();
    assert.equal(r.succeeded, false);
    assert.deepEqual(r.results[0].value, b('current'));
    assert.deepEqual(keysOf(r.results[1].entries), [b('tx/e')]);
    assert.deepEqual(await client.get('tx/e'), b('current'));
    assert.equal(await revision(), start);
    assert.equal(r.revision, start);
  });

  test('compare ops', async () => {
    await client.set('tx/v', 'm');
    await client.set('tx/v', 'm');                            // version 2
    const e = await client.getEntry('tx/v');
    assert.equal(await holds(compare.version('tx/v').equal(2)), true);
    assert.equal(await holds(compare.version('tx/v').less(3)), true);    // the key's is less
    assert.equal(await holds(compare.version('tx/v').less(2)), false);
    assert.equal(await holds(compare.version('tx/v').greater(1)), true);
    assert.equal(await holds(compare.version('tx/v').notEqual(1)), true);
    assert.equal(await holds(compare.createRevision('tx/v').less(e.modRevision)), true);
    assert.equal(await holds(compare.modRevision('tx/v').equal(e.modRevision)), true);
    assert.equal(await holds(compare.value('tx/v').greater('l'), compare.value('tx/v').less('mm')), true);
    assert.equal(await holds(compare.value('tx/v').less(b('m', [0]))), true);   // shorter first
    assert.equal(await holds(compare.value('tx/v').notEqual('m')), false);
    assert.equal(await holds(), true);                        // no compares: holds
    assert.equal(await holds(compare.version('tx/v').equal(2), compare.value('tx/v').equal('x')), false);
  });

  test('a missing key in compares', async () => {
    assert.equal(await holds(compare.modRevision('tx/none').equal(0)), true);
    assert.equal(await holds(compare.version('tx/none').equal(0)), true);
    assert.equal(await holds(compare.createRevision('tx/none').less(1)), true);
    assert.equal(await holds(compare.value('tx/none').equal('')), false);     // VALUE is false for it
    assert.equal(await holds(compare.value('tx/none').notEqual('x')), false);
    assert.equal(await holds(compare.value('tx/none').greater('')), false);
  });

  test('create if absent', async () => {
    const create = (key, value) => client.txn().if(compare.createRevision(key).equal(0))
      .then(op.set(key, value)).else(op.get(key)).commit();
    assert.equal((await create('tx/once', '1')).succeeded, true);
    const second = await create('tx/once', '2');
    assert.equal(second.succeeded, false);
    assert.deepEqual(second.results[0].value, b('1'));
  });

  test('clear and ranges inside', async () => {
    await fill('txr/', 4);
    await client.set('txc', 'gone');
    const r = await client.txn()
      .then(op.clear('txc'), op.clear('txc-missing'), op.clearRange({ prefix: 'txr/' }),
        op.range({ prefix: 'txr/', countOnly: true }))
      .commit();
    assert.deepEqual(r.results.slice(0, 3), [b('gone'), null, 4]);
    assert.equal(r.results[3].count, 0);                      // sees the ClearRange
    await assert.rejects(client.get('txc'), kvstore.KeyNotFoundError);
  });

  test('writing a key twice is refused whole', async () => {
    await client.set('tx/twice', '0');
    const start = await revision();
    await assert.rejects(client.txn().then(op.set('tx/other', '1'), op.set('tx/twice', '1'), op.clear('tx/twice')).commit(),
      { codeName: 'INVALID_ARGUMENT' });
    assert.deepEqual(await client.get('tx/twice'), b('0'));
    await assert.rejects(client.get('tx/other'), kvstore.KeyNotFoundError);
    assert.equal(await revision(), start);
  });

  test('a conditional write inside is refused', async () => {
    await assert.rejects(client.txn().then({ set: { key: 'tx/cond', value: 'v', if_mod_revision: 0 } }).commit(),
      { codeName: 'INVALID_ARGUMENT' });
    await assert.rejects(client.get('tx/cond'), kvstore.KeyNotFoundError);
  });

  test('too many ops is refused', async () => {
    const ops = [...Array(1000).keys()].map((i) => op.get(`tx/many${i}`));
    await assert.rejects(client.txn().then(...ops).commit(), { codeName: 'INVALID_ARGUMENT' });
  });

  test('the builder', async () => {
    const t = client.txn().if(compare.version('k').greater(0)).then(op.get('k')).else(op.set('k', 'v'));
    t.if(compare.value('j').equal('x'));
    const request = t.request();
    assert.equal(request.compare.length, 2);
    assert.deepEqual(request.success[0].get.key, b('k'));
    assert.deepEqual(request.failure[0].set.value, b('v'));
    assert.deepEqual([request.compare[0].target, request.compare[0].op], [3, 3]);   // VERSION, GREATER
    assert.throws(() => t.then('not an op'), TypeError);
    assert.throws(() => t.if(op.get('k')), TypeError);
    assert.throws(() => compare.modRevision('k').equal(-1), RangeError);
    assert.throws(() => compare.modRevision('k').equal('1'), TypeError);
    // Awaiting the builder itself (a forgotten commit) fails clearly.
    await assert.rejects(async () => await client.txn().then(op.get('k')), /commit\(\)/);
  });

  test('concurrent transactions on one socket', async () => {
    const results = await Promise.all([...Array(20).keys()].map((i) => client.txn()
      .if(compare.createRevision(`txcc/${i}`).equal(0)).then(op.set(`txcc/${i}`, 'v')).commit()));
    assert.ok(results.every((r) => r.succeeded));
    assert.equal(new Set(results.map((r) => r.revision)).size, 20);
  });
});

// A server before protocol v2, as far as conditional writes go: it does not
// know if_mod_revision, skips it and writes, answering as for a plain
// write: Set with an empty SetResponse, Clear with found = true (but for the
// key "absent"), the old value "old" and no revision. Tests cannot start an
// old kvstored, so this one speaks the varint-framed envelope by hand
// (docs/PROTOCOL.md, "Writing a client"). Resolves with { endpoint,
// requests (each { method, payload }), close() }.
async function startFakeV1() {
  const proto = kvstore.loadProto();
  const type = (name) => proto.root.lookupType(`kvstore.v1.${name}`);
  const requests = [];
  const sockets = new Set();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    const reader = new FrameReader();
    sock.on('data', (chunk) => {
      for (const body of reader.push(chunk)) {
        const request = proto.RpcRequest.decode(body);
        requests.push({ method: request.method, payload: Buffer.from(request.payload) });
        const answer = { id: request.id, code: 0 };
        if (request.method === '/kvstore.v1.KV/Set') {
          answer.payload = Buffer.alloc(0);
        } else if (request.method === '/kvstore.v1.KV/Clear') {
          const found = Buffer.from(type('ClearRequest').decode(request.payload).key).toString() !== 'absent';
          answer.payload = type('ClearResponse').encode({ found, value: found ? Buffer.from('old') : undefined }).finish();
        } else {
          answer.code = proto.StatusCode.values.UNIMPLEMENTED;
          answer.message = 'unknown method';
        }
        sock.write(frame(proto.RpcResponse.encode(answer).finish()));
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `127.0.0.1:${server.address().port}`,
    requests,
    close: () => {
      for (const sock of sockets) sock.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('a server before protocol v2', () => {
  const PRE_V2 = 'the server does not support conditional writes (a server before protocol v2): '
    + 'the write was applied without its check';
  let fake;
  let old;

  before(async () => {
    fake = await startFakeV1();
    old = await kvstore.connect(fake.endpoint, { timeout: 10000 });
  });

  after(async () => {
    await old.close();
    await fake.close();
  });

  test('cas is an error, not a success', async () => {
    for (const rev of [0, 7]) {
      await assert.rejects(old.cas('k', 'v', rev), (err) => {
        assert.ok(err instanceof kvstore.RpcError);
        assert.deepEqual([err.code, err.codeName, err.details, err.method],
          [12, 'UNIMPLEMENTED', PRE_V2, '/kvstore.v1.KV/Set']);
        return true;
      });
      const sent = fake.requests[fake.requests.length - 1];
      const request = kvstore.loadProto().root.lookupType('kvstore.v1.SetRequest').decode(sent.payload);
      assert.equal(Number(request.if_mod_revision), rev);
    }
  });

  test('a conditional clear is an error', async () => {
    await assert.rejects(old.clear('k', { ifModRevision: 3 }),
      { codeName: 'UNIMPLEMENTED', details: PRE_V2, method: '/kvstore.v1.KV/Clear' });
    // Nothing found: nothing written, so no revision is right.
    assert.equal(await old.clear('absent', { ifModRevision: 0 }), null);
  });

  test('plain writes are fine', async () => {
    // Revision 0 is all such a server can say of a plain write.
    await old.set('k', 'v');
    assert.deepEqual(await old.clear('k'), b('old'));
  });
});
