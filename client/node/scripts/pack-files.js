// scripts/pack-files.js - npm's prepack and postpack: puts into this package
// the files it ships from elsewhere in the repository, and takes them out
// again, so that git holds one kv.proto (proto/kvstore/v1, the server's) and
// no copy that could drift from it. `node scripts/pack-files.js` copies,
// `node scripts/pack-files.js --remove` removes.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const pkg = path.resolve(__dirname, '..');
const repo = path.resolve(pkg, '..', '..');

// Repository path -> path in the package (both relative).
const FILES = {
  'proto/kvstore/v1/kv.proto': 'proto/kvstore/v1/kv.proto',
  LICENSE: 'LICENSE',
};

if (process.argv[2] === '--remove') {
  for (const to of Object.values(FILES)) fs.rmSync(path.join(pkg, to), { force: true });
  fs.rmSync(path.join(pkg, 'proto'), { recursive: true, force: true });
} else {
  for (const [from, to] of Object.entries(FILES)) {
    fs.mkdirSync(path.dirname(path.join(pkg, to)), { recursive: true });
    fs.copyFileSync(path.join(repo, from), path.join(pkg, to));
  }
}
