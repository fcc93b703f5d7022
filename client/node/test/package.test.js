// The package as a user gets it: `npm pack` into a temporary directory, the
// tarball installed with `npm install --offline` into a scratch project, and
// a call from that project to a live kvstored. The installed copy must find
// its kv.proto beside its own files, not in the project's directory nor
// through $KVSTORE_PROTO.
//
// Offline: this directory's `npm ci` (scripts/install-deps) put the pinned
// tarballs of protobufjs and its dependencies in npm's cache, but not the
// registry's metadata that resolving "protobufjs": "7.6.6" afresh would
// fetch. So the scratch project starts with a package-lock.json holding
// those same pinned entries (from this directory's lock), as an application
// with its own lock would; npm then resolves nothing over the network.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startServer, run } = require('./support');

const PKG = path.resolve(__dirname, '..');
const SOURCE_PROTO = path.resolve(PKG, '..', '..', 'proto', 'kvstore', 'v1', 'kv.proto');
const NPM_TIMEOUT = 120000;

let tmp;
let server;

// The environment of the scratch project's processes: no $KVSTORE_PROTO
// (meson's test environment sets it), no $NODE_PATH.
function scratchEnv() {
  const env = { ...process.env };
  delete env.KVSTORE_PROTO;
  delete env.NODE_PATH;
  return env;
}

// A package-lock.json for the application APP ({ name, version }) with no
// dependencies of its own yet, holding the entries of this directory's lock
// (protobufjs and what it needs, with their resolved URLs and integrity).
function pinnedLock(app) {
  const ours = JSON.parse(fs.readFileSync(path.join(PKG, 'package-lock.json'), 'utf8'));
  const packages = { '': app };
  for (const [where, entry] of Object.entries(ours.packages)) {
    if (where.startsWith('node_modules/')) packages[where] = entry;
  }
  return { ...app, lockfileVersion: 3, requires: true, packages };
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kvstore-node-pack.'));
  server = await startServer();
});

after(async () => {
  if (server) assert.equal(await server.stop(), 0);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('npm pack, install the tarball elsewhere offline, call a live kvstored', async () => {
  const out = path.join(tmp, 'pack');
  fs.mkdirSync(out);
  run(['npm', 'pack', '--pack-destination', out], { cwd: PKG, timeout: NPM_TIMEOUT });
  const tarballs = fs.readdirSync(out).filter((f) => f.endsWith('.tgz'));
  assert.deepEqual(tarballs, ['kvstore-client-0.1.0.tgz']);
  // postpack took the copied files out of the source tree again.
  assert.equal(fs.existsSync(path.join(PKG, 'proto')), false, 'client/node/proto left behind by npm pack');
  assert.equal(fs.existsSync(path.join(PKG, 'LICENSE')), false, 'client/node/LICENSE left behind by npm pack');

  const project = path.join(tmp, 'app');
  fs.mkdirSync(project);
  const app = { name: 'scratch-app', version: '1.0.0' };
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ ...app, private: true }));
  fs.writeFileSync(path.join(project, 'package-lock.json'), JSON.stringify(pinnedLock(app)));
  run(['npm', 'install', '--offline', '--no-audit', '--no-fund', path.join(out, tarballs[0])],
    { cwd: project, env: scratchEnv(), timeout: NPM_TIMEOUT });

  const installed = path.join(project, 'node_modules', 'kvstore-client');
  assert.deepEqual(fs.readFileSync(path.join(installed, 'proto', 'kvstore', 'v1', 'kv.proto')),
    fs.readFileSync(SOURCE_PROTO), 'the packed kv.proto differs from proto/kvstore/v1/kv.proto');
  assert.ok(fs.existsSync(path.join(installed, 'LICENSE')));

  // Run from the project's directory, as its code would be.
  const script = `
    const kvstore = require('kvstore-client');
    (async () => {
      const c = await kvstore.connect(process.argv[1], { timeout: 10000 });
      await c.set('pack-k', 'from an installed tarball');
      await c.set('pack-empty', Buffer.alloc(0));
      const empty = (await c.Get({ key: 'pack-empty' })).value;
      console.log(JSON.stringify({
        proto: kvstore.DEFAULT_PROTO_PATH,
        value: (await c.get('pack-k')).toString(),
        emptyIsBuffer: Buffer.isBuffer(empty) && empty.length === 0,
      }));
      await c.close();
    })().catch((err) => { console.error(err); process.exit(1); });`;
  const answer = JSON.parse(run(['node', '-e', script, server.endpoint],
    { cwd: project, env: scratchEnv() }).toString());
  assert.deepEqual(answer, {
    proto: path.join(fs.realpathSync(installed), 'proto', 'kvstore', 'v1', 'kv.proto'),
    value: 'from an installed tarball',
    emptyIsBuffer: true,
  });
});
