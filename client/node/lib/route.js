// lib/route.js - where a client's calls go when the server is a cluster:
// its endpoints, its clientId and write counter (seq), the leader a node
// named, and the retry rules of PROTOCOL.md ("Cluster"). No I/O: Client
// (lib/client.js) sends and sleeps; this says whether and where to.
'use strict';

const crypto = require('node:crypto');
const { parseEndpoint, DEFAULT_HOST, DEFAULT_PORT } = require('./connection');

const UNAVAILABLE = 14;
// How long a call is retried when the client has no timeout (ms).
const RETRY_NO_TIMEOUT = 10000;
// Pauses between tries that do not follow a hint: 25 ms doubling to 1 s.
const BACKOFF_FIRST = 25;
const BACKOFF_MAX = 1000;

const PREFIX = '/kvstore.v1.KV/';
const READS = new Set(['Get', 'Range', 'Ping', 'Stats', 'ClusterStatus']);
const WRITES = new Set(['Set', 'Clear', 'ClearRange', 'Txn', 'Touch']);

// ENDPOINTS ("a:1,b:2", an array of them, or nothing: the default) as an
// array of "HOST:PORT", each checked (RangeError for a bad port or an
// empty item).
function splitEndpoints(endpoints) {
  if (endpoints === undefined || endpoints === null || endpoints === '') {
    return [`${DEFAULT_HOST}:${DEFAULT_PORT}`];
  }
  const items = Array.isArray(endpoints) ? [...endpoints] : String(endpoints).split(',');
  if (!items.length) throw new RangeError('no endpoint given');
  for (const item of items) {
    if (!item) throw new RangeError(`empty endpoint in "${endpoints}"`);
    parseEndpoint(item);
  }
  return items;
}

// 'read', 'write', 'watch' or 'other' for the method path METHOD.
function kindOf(method) {
  if (!method.startsWith(PREFIX)) return 'other';
  const name = method.slice(PREFIX.length);
  if (READS.has(name)) return 'read';
  if (WRITES.has(name)) return 'write';
  return name === 'Watch' ? 'watch' : 'other';
}

// Whether a call of KIND whose try ended with OUTCOME (an RpcResponse, or
// the RpcError of the connection; SENT: it went out) is sent again. A write
// that went out and was cut off is sent again only to a CLUSTER, which
// deduplicates it by its seq: a single kvstored does not, and may have
// applied it. A server's TLS alert (the error's refused) would come again
// on a new connection: never sent again.
function again(kind, outcome, sent, cluster = true) {
  if (outcome instanceof Error) {
    if (outcome.refused) return false;
    if (!sent) return true;
    if (kind === 'write' && !cluster) return false;
    return (kind === 'read' || kind === 'write')
      && (outcome.codeName === 'UNAVAILABLE' || outcome.codeName === 'DEADLINE_EXCEEDED');
  }
  return outcome.code === UNAVAILABLE && kind !== 'watch';
}

class Route {
  constructor(endpoints) {
    this.endpoints = splitEndpoints(endpoints);
    this.clientId = crypto.randomBytes(16);
    this.where = this.endpoints[0];   // connected to, or tried last
    this.cur = 0;
    this.hint = null;
    this.seq = 0;
    // More than one endpoint, or a node named a leader: a cluster.
    this.cluster = this.endpoints.length > 1;
  }

  // ENVELOPE ({ method, payload, client_id, seq }) with this client's id and
  // the next seq when it is a write that has none.
  stamp(envelope) {
    if (kindOf(envelope.method || '') !== 'write' || envelope.seq) return envelope;
    this.seq += 1;
    return { ...envelope, client_id: envelope.client_id || this.clientId, seq: this.seq };
  }

  found(index) {
    this.cur = index;
    this.where = this.endpoints[index];
  }

  // Moves on: to the leader last named, else the next endpoint.
  next() {
    if (this.hint) {
      this.where = this.hint;
      this.hint = null;
    } else {
      this.cur = (this.cur + 1) % this.endpoints.length;
      this.where = this.endpoints[this.cur];
    }
    return this.where;
  }
}

// The pause before the next try, given the state { backoff, lastHinted }
// it advances, and whether a fresh hint is to be followed.
function pauseBefore(state, hinted) {
  let pause = 0;
  if (!hinted || state.lastHinted) {
    pause = state.backoff ? state.backoff * (0.5 + Math.random() / 2) : 0;
    state.backoff = state.backoff ? Math.min(BACKOFF_MAX, state.backoff * 2) : BACKOFF_FIRST;
  }
  state.lastHinted = hinted;
  return pause;
}

module.exports = { Route, splitEndpoints, kindOf, again, pauseBefore, RETRY_NO_TIMEOUT };
