#!/usr/bin/env node
// test/interop-cli.js - the Node client as a tiny command for interop tests.
//   interop-cli.js ENDPOINT set KEYHEX VALUEHEX [TTLMS]
//   interop-cli.js ENDPOINT get KEYHEX          prints the value in hex
//   interop-cli.js ENDPOINT ttl KEYHEX          prints the ms it has left (0: none)
// Hex so any byte survives the command line. The Python suite runs this;
// client/python/tests/interop_cli.py is its twin.
'use strict';

const { connect } = require('..');

async function main([endpoint, command, keyHex, valueHex, ttlMs]) {
  const client = await connect(endpoint, { timeout: 10000 });
  try {
    const key = Buffer.from(keyHex, 'hex');
    if (command === 'set') await client.set(key, Buffer.from(valueHex || '', 'hex'), { ttlMs: ttlMs ? Number(ttlMs) : null });
    else if (command === 'get') process.stdout.write((await client.get(key)).toString('hex') + '\n');
    else if (command === 'ttl') process.stdout.write(`${(await client.getEntry(key)).ttlMs}\n`);
    else throw new Error(`unknown command ${command}`);
  } finally {
    await client.close();
  }
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`interop-cli: ${err.message}\n`);
  process.exit(1);
});
