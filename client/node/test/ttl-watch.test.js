// Keys that expire and watches, against live kvstored servers
// (docs/PROTOCOL.md, Expiry and Watch): set with ttlMs / keepTtl, getEntry's
// ttlMs, touch, expiry; PUT and DELETE events, prevKv, the selectors, replay
// from a past revision, the compacted case (a server with --watch-history
// 2), expiry events, a stream interleaved with pipelined calls, cancel. No
// assertion on timing: short TTLs, then polls or waits with generous
// deadlines.
'use strict';

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const kvstore = require('..');
const { compare, op } = kvstore;
const { startServer } = require('./support');

const LONG = 600000;      // never runs out during a test
const SHORT = 200;        // runs out soon; waited for
const WAIT = 30000;       // the longest a test waits for one event or an expiry
const MAX_TTL_MS = 1e12;

let server;
let small;                // --watch-history 2
let client;

before(async () => {
  server = await startServer();
  small = await startServer('--watch-history', '2');
  client = await kvstore.connect(server.endpoint, { timeout: 10000 });
});

after(async () => {
  await client.close();
  assert.equal(await server.stop(), 0);
  assert.equal(await small.stop(), 0);
});

const str = (buf) => Buffer.from(buf).toString('latin1');

function assertTtl(ttlMs, most) {
  assert.ok(ttlMs > 0 && ttlMs <= most, `ttlMs ${ttlMs} not in (0, ${most}]`);
}

async function gone(key) {
  try {
    await client.get(key);
    return false;
  } catch (err) {
    if (err instanceof kvstore.KeyNotFoundError) return true;
    throw err;
  }
}

async function waitFor(what, predicate, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// The next N events of W, each waited for up to WAIT ms.
async function events(w, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const e = await w.nextEvent(WAIT);
    assert.ok(e, `event ${i + 1} of ${n} did not come within ${WAIT} ms (got ${out.length})`);
    out.push(e);
  }
  return out;
}

// Writes KEY (in W's selection) and reads W up to its PUT: the events
// before it, proof that nothing else came first.
async function marker(w, key) {
  const revision = Number((await client.Set({ key, value: 'marker' })).revision);
  const before = [];
  for (;;) {
    const [e] = await events(w, 1);
    if (str(e.kv.key) === key && e.revision === revision) return before;
    before.push(e);
  }
}

async function watchers() {
  return Number((await client.Stats({})).watchers);
}

const rev = async (p) => Number((await p).revision);

describe('expiry', () => {
  test('set with ttlMs, then getEntry and range show it', async () => {
    await client.set('ttl/a', 'v', { ttlMs: LONG });
    const e = await client.getEntry('ttl/a');
    assert.equal(str(e.value), 'v');
    assertTtl(e.ttlMs, LONG);
    const page = await client.rangePage({ prefix: 'ttl/a' });
    assertTtl(page.entries[0].ttlMs, LONG);
    await client.set('ttl/a', 'w');                    // no ttlMs: no TTL any more
    assert.equal((await client.getEntry('ttl/a')).ttlMs, 0);
  });

  test('keepTtl', async () => {
    await client.set('ttl/k', 'one', { ttlMs: LONG });
    await client.set('ttl/k', 'two', { keepTtl: true });
    const e = await client.getEntry('ttl/k');
    assert.equal(str(e.value), 'two');
    assertTtl(e.ttlMs, LONG);
    await client.set('ttl/new', 'v', { keepTtl: true });
    assert.equal((await client.getEntry('ttl/new')).ttlMs, 0);
  });

  test('ttlMs with keepTtl, or over the maximum, is refused', async () => {
    await assert.rejects(client.set('ttl/bad', 'v', { ttlMs: 1000, keepTtl: true }), { codeName: 'INVALID_ARGUMENT' });
    await assert.rejects(client.set('ttl/bad', 'v', { ttlMs: MAX_TTL_MS + 1 }), { codeName: 'INVALID_ARGUMENT' });
    await assert.rejects(client.get('ttl/bad'), kvstore.KeyNotFoundError);
    await client.set('ttl/max', 'v', { ttlMs: MAX_TTL_MS });
    assertTtl((await client.getEntry('ttl/max')).ttlMs, MAX_TTL_MS);
    await assert.rejects(client.touch('ttl/max', MAX_TTL_MS + 1), { codeName: 'INVALID_ARGUMENT' });
    assert.throws(() => op.set('k', 'v', { ttlMs: -1 }), RangeError);
  });

  test('touch', async () => {
    assert.equal(await client.touch('ttl/t-missing', LONG), false);
    const written = await rev(client.Set({ key: 'ttl/t', value: 'v' }));
    const before = await rev(client.Stats({}));
    assert.equal(await client.touch('ttl/t', LONG), true);
    const e = await client.getEntry('ttl/t');
    assertTtl(e.ttlMs, LONG);
    assert.deepEqual([str(e.value), e.modRevision, e.version], ['v', written, 1]);
    assert.equal(await rev(client.Stats({})), before);   // no revision
    assert.equal(await client.touch('ttl/t', 0), true);
    assert.equal((await client.getEntry('ttl/t')).ttlMs, 0);
  });

  test('a key expires', async () => {
    await client.set('exp/a', 'v', { ttlMs: SHORT });
    await client.set('exp/b', 'stays');
    await waitFor('exp/a to expire', () => gone('exp/a'));
    assert.equal(await client.count({ prefix: 'exp/' }), 1);
    assert.equal(await client.touch('exp/a', LONG), false);
    const revision = await rev(client.Set({ key: 'exp/a', value: 'new' }));
    const e = await client.getEntry('exp/a');
    assert.deepEqual([e.createRevision, e.modRevision, e.version, e.ttlMs], [revision, revision, 1, 0]);
  });

  test('a lock: cas with a TTL, kept by touch', async () => {
    assert.ok(await client.cas('lock/a', 'me', 0, { ttlMs: LONG }) > 0);
    assertTtl((await client.getEntry('lock/a')).ttlMs, LONG);
    await assert.rejects(client.cas('lock/a', 'other', 0, { ttlMs: LONG }), kvstore.FailedPreconditionError);
    assert.equal(await client.touch('lock/a', LONG), true);
  });

  test('a Txn set with a TTL', async () => {
    const r = await client.txn().then(op.set('txn/ttl', 'v', { ttlMs: LONG }), op.get('txn/ttl')).commit();
    assert.equal(r.succeeded, true);
    assertTtl(r.results[1].ttlMs, LONG);
    const kept = await client.txn().if(compare.version('txn/ttl').equal(1))
      .then(op.set('txn/ttl', 'w', { keepTtl: true })).commit();
    assert.equal(kept.succeeded, true);
    assertTtl((await client.getEntry('txn/ttl')).ttlMs, LONG);
  });
});

describe('watch', () => {
  test('PUT and DELETE events', async () => {
    const w = client.watch({ prefix: 'pd/' });
    assert.ok(await w.ready > 0);
    const r1 = await rev(client.Set({ key: 'pd/a', value: '1' }));
    const r2 = await rev(client.Set({ key: 'pd/a', value: '2' }));
    const r3 = await rev(client.Clear({ key: 'pd/a' }));
    await client.set('other/a', 'not watched');
    const [put1, put2, del] = await events(w, 3);
    assert.deepEqual(put1, {
      type: 'PUT',
      kv: { key: Buffer.from('pd/a'), value: Buffer.from('1'), createRevision: r1, modRevision: r1, version: 1, ttlMs: 0 },
      prevKv: null,
      expired: false,
      revision: r1,
    });
    assert.deepEqual([put2.kv.createRevision, put2.kv.modRevision, put2.kv.version], [r1, r2, 2]);
    assert.deepEqual([del.type, str(del.kv.key), del.kv.modRevision, del.expired, del.prevKv], ['DELETE', 'pd/a', r3, false, null]);
    assert.deepEqual(await marker(w, 'pd/z'), []);
    await w.cancel();
  });

  test('prevKv', async () => {
    const r1 = await rev(client.Set({ key: 'prev/a', value: '1' }));
    const w = client.watch({ prefix: 'prev/', prevKv: true });
    const r2 = await rev(client.Set({ key: 'prev/a', value: '2' }));
    const r3 = await rev(client.Clear({ key: 'prev/a' }));
    await client.set('prev/b', 'new');
    const [put, del, created] = await events(w, 3);
    assert.deepEqual([str(put.prevKv.value), put.prevKv.createRevision, put.prevKv.modRevision, put.prevKv.version],
      ['1', r1, r1, 1]);
    assert.deepEqual([del.revision, str(del.prevKv.value), del.prevKv.modRevision], [r3, '2', r2]);
    assert.equal(created.prevKv, null);
    await w.cancel();
  });

  test('one key, a range, an open range', async () => {
    const one = client.watch({ key: 'sel/b' });
    const some = client.watch({ key: 'sel/b', end: 'sel/d' });
    const rest = client.watch({ key: 'sel/c', end: '\0' });
    for (const k of ['sel/a', 'sel/b', 'sel/c', 'sel/d']) await client.set(k, 'v');
    await client.set('sel/b', 'last');
    assert.deepEqual((await events(one, 2)).map((e) => [str(e.kv.key), str(e.kv.value)]),
      [['sel/b', 'v'], ['sel/b', 'last']]);
    assert.deepEqual((await events(some, 3)).map((e) => str(e.kv.key)), ['sel/b', 'sel/c', 'sel/b']);
    assert.deepEqual((await events(rest, 2)).map((e) => str(e.kv.key)), ['sel/c', 'sel/d']);
    assert.deepEqual(await marker(rest, 'sel/z'), []);
    await Promise.all([one.cancel(), some.cancel(), rest.cancel()]);
  });

  test('selectors the server refuses', async () => {
    for (const query of [{}, { prefix: 'p', key: 'k' }, { prefix: 'p', end: 'e' }, { end: 'e' }]) {
      const w = client.watch(query);
      await assert.rejects(w.ready, { codeName: 'INVALID_ARGUMENT' });
      await assert.rejects(w.nextEvent(WAIT), { codeName: 'INVALID_ARGUMENT' });
    }
    assert.equal(await client.ping(), 'PONG');
  });

  test('replay from a past revision', async () => {
    await client.set('replay/a', '1');
    const r2 = await rev(client.Set({ key: 'replay/b', value: '2' }));
    const r3 = await rev(client.Clear({ key: 'replay/a' }));
    const w = client.watch({ prefix: 'replay/', startRevision: r2 });
    const r4 = await rev(client.Set({ key: 'replay/c', value: '3' }));
    assert.deepEqual((await events(w, 3)).map((e) => [e.type, str(e.kv.key), e.revision]),
      [['PUT', 'replay/b', r2], ['DELETE', 'replay/a', r3], ['PUT', 'replay/c', r4]]);
    await w.cancel();
  });

  test('the compacted case', async () => {
    const c = await kvstore.connect(small.endpoint, { timeout: 10000 });
    // An open watch, so the server keeps a history (it may keep none while
    // nobody watches: a start then is compacted too).
    const keeper = c.watch({ prefix: 'cmp-keeper/' });
    try {
      await keeper.ready;
      const revisions = [];
      for (let i = 0; i < 6; i++) revisions.push(await rev(c.Set({ key: `cmp/${i}`, value: 'v' })));
      const w = c.watch({ prefix: 'cmp/', startRevision: revisions[0] });
      let compactRevision = 0;
      await assert.rejects(w.nextEvent(WAIT), (err) => {
        assert.ok(err instanceof kvstore.WatchCanceledError, err.stack);
        assert.equal(err.compacted, true);
        assert.equal(err.watchId, w.watchId);
        // Two events are kept: the oldest is after the first, not after the last.
        assert.ok(err.compactRevision > revisions[0] && err.compactRevision <= revisions[5], `${err.compactRevision}`);
        assert.ok(err.cancelReason);
        compactRevision = err.compactRevision;
        return true;
      });
      assert.equal(w.closed, true);
      assert.equal(Number((await c.Stats({})).watch_history_oldest), compactRevision);
      const again = c.watch({ prefix: 'cmp/', startRevision: compactRevision });
      const want = revisions.filter((r) => r >= compactRevision);
      assert.deepEqual((await events(again, want.length)).map((e) => e.revision), want);
      await again.cancel();
    } finally {
      await keeper.cancel();
      await c.close();
    }
  });

  test('a PUT carries its TTL; expiry is a DELETE with expired', async () => {
    const w = client.watch({ prefix: 'wexp/', prevKv: true });
    await client.set('wexp/a', 'v', { ttlMs: LONG });
    assertTtl((await events(w, 1))[0].kv.ttlMs, LONG);
    await client.set('wexp/b', 'v', { ttlMs: SHORT });
    const [put, del] = await events(w, 2);
    assert.deepEqual([str(put.kv.key), del.type, str(del.kv.key), del.expired, str(del.prevKv.value)],
      ['wexp/b', 'DELETE', 'wexp/b', true, 'v']);
    assert.ok(del.revision > put.revision);
    await w.cancel();
  });

  test('touch makes no event', async () => {
    await client.set('touch/a', 'v');
    const w = client.watch({ prefix: 'touch/' });
    assert.equal(await client.touch('touch/a', LONG), true);
    assert.deepEqual(await marker(w, 'touch/z'), []);
    await w.cancel();
  });

  test('a stream interleaved with pipelined calls', async () => {
    const w = client.watch({ prefix: 'mix/w/' });
    const n = 300;
    const sets = [];
    const gets = [];
    const others = [];
    for (let i = 0; i < n; i++) {
      const k = `mix/w/${String(i).padStart(3, '0')}`;
      sets.push(client.Set({ key: k, value: `v${i}` }));
      others.push(client.set(`mix/other/${i}`, 'x'));
      gets.push(client.get(k));
    }
    const revisions = (await Promise.all(sets)).map((r) => Number(r.revision));
    assert.deepEqual((await Promise.all(gets)).map(String), [...Array(n).keys()].map((i) => `v${i}`));
    await Promise.all(others);
    const got = await events(w, n);
    assert.deepEqual(got.map((e) => [str(e.kv.key), e.revision]),
      revisions.map((r, i) => [`mix/w/${String(i).padStart(3, '0')}`, r]));
    await w.cancel();
  });

  test('cancel', async () => {
    const start = await watchers();
    const w = client.watch({ prefix: 'cancel/' });
    await w.ready;
    assert.equal(await watchers(), start + 1);
    await client.set('cancel/a', 'v');
    assert.equal(str((await events(w, 1))[0].kv.key), 'cancel/a');
    await w.cancel();
    assert.equal(w.closed, true);
    assert.equal(await watchers(), start);
    await client.set('cancel/b', 'v');
    assert.equal(await w.nextEvent(0), null);
    await assert.rejects(client.CancelWatch({ watch_id: w.watchId }), kvstore.KeyNotFoundError);
  });

  test('unknown and foreign ids are NOT_FOUND', async () => {
    const other = await kvstore.connect(server.endpoint, { timeout: 10000 });
    const w = client.watch({ prefix: 'foreign/' });
    await w.ready;
    await assert.rejects(other.CancelWatch({ watch_id: w.watchId }), kvstore.KeyNotFoundError);
    await assert.rejects(client.CancelWatch({ watch_id: 2 ** 40 }), kvstore.KeyNotFoundError);
    await client.set('foreign/a', 'v');
    assert.equal(str((await events(w, 1))[0].kv.key), 'foreign/a');
    await w.cancel();
    await other.close();
  });

  test('closing the connection ends its watches', async () => {
    const start = await watchers();
    const other = await kvstore.connect(server.endpoint, { timeout: 10000 });
    const w = other.watch({ prefix: 'closed/' });
    await w.ready;
    await other.watch({ prefix: 'closed/' }).ready;
    assert.equal(await watchers(), start + 2);
    await other.close();
    await waitFor('the server to end the closed connection\'s watches', async () => (await watchers()) === start);
    await assert.rejects(w.nextEvent(WAIT), { codeName: 'UNAVAILABLE' });
  });
});
