// test/support.js - starts and stops the kvstored a test file talks to.
// The binary comes from $KVSTORED; it is started on port 0 and prints
// "listening on 127.0.0.1:PORT" once ready. Every wait here is bounded.
// $KVSTORED_ENGINE (unset: memory) picks the engine; any engine but memory
// gets a fresh temporary --dir, removed once the server has exited.
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const START_TIMEOUT = 10000;
const STOP_TIMEOUT = 10000;

class Server {
  constructor(proc, port, exited) {
    this.proc = proc;
    this.port = port;
    this.endpoint = `127.0.0.1:${port}`;
    this.exited = exited;
  }

  signal(sig) {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(sig);
  }

  // SIGTERM, then resolves with the exit status (0 when all went well).
  async stop() {
    this.signal('SIGTERM');
    const status = await withTimeout(this.exited, STOP_TIMEOUT, 'kvstored did not exit after SIGTERM');
    return status;
  }

  // SIGKILL (works on a stopped process too) and waits for the exit.
  async kill() {
    this.signal('SIGKILL');
    return withTimeout(this.exited, STOP_TIMEOUT, 'kvstored did not die of SIGKILL');
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

// The flags of $KVSTORED_ENGINE and the temporary directory they name.
function engineArgs() {
  const engine = process.env.KVSTORED_ENGINE || 'memory';
  if (engine === 'memory') return { args: [], dir: null };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvstored-test.'));
  return { args: ['--engine', engine, '--dir', dir], dir };
}

// Starts kvstored with the engine flags, then ARGS (so a test's own
// --engine or --dir wins).
async function startServer(...args) {
  const bin = process.env.KVSTORED;
  if (!bin || !fs.existsSync(bin)) throw new Error(`set KVSTORED to the kvstored binary (meson test does); got ${bin}`);
  const engine = engineArgs();
  const proc = spawn(bin, ['--listen', '127.0.0.1:0', ...engine.args, ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      if (engine.dir) fs.rmSync(engine.dir, { recursive: true, force: true });
      resolve(code ?? signal);
    });
  });
  const line = new Promise((resolve, reject) => {
    let seen = '';
    proc.stdout.on('data', (chunk) => {
      seen += chunk;
      if (seen.includes('\n')) resolve(seen.split('\n')[0]);
    });
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`kvstored exited (${code}) before listening`)));
  });
  try {
    const first = await withTimeout(line, START_TIMEOUT, "kvstored did not say 'listening on'");
    const match = /listening on (\S+):(\d+)/.exec(first);
    if (!match) throw new Error(`kvstored printed "${first}", not "listening on HOST:PORT"`);
    return new Server(proc, Number(match[2]), exited);
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
}

// Runs a command to completion (bounded: 30 s, or TIMEOUT ms) in CWD
// (default: this process's); returns its stdout as a Buffer, throws with its
// stderr when it fails.
function run(argv, { input, env, cwd, timeout = 30000 } = {}) {
  const done = spawnSync(argv[0], argv.slice(1), { input, env, cwd, timeout });
  if (done.error) throw done.error;
  if (done.status !== 0) {
    throw new Error(`${argv.join(' ')} exited ${done.status ?? done.signal}: ${done.stderr}`);
  }
  return done.stdout;
}

module.exports = { startServer, run };
