// lib/client.js - Client: the calls a user makes, on one Connection.
// Every rpc of the loaded service becomes a method of the same name
// (client.Get({ key })), read from the protobufjs Service, not written out
// here; helpers get/set/clear/ping take and return plain values on top.
'use strict';

const { loadProto } = require('./proto');
const { Connection } = require('./connection');
const { tlsOptions } = require('./tls');
const { Route, kindOf, again, pauseBefore, RETRY_NO_TIMEOUT } = require('./route');
const { makeError, makeErrorNamed } = require('./errors');
const { Txn } = require('./txn');
const { Watch } = require('./watch');
const {
  UINT32_MAX, asBytes, num, checkUint, selector, prefixEnd, entryOfGet, pageOf, clearedValue,
  setFields, watchFields,
} = require('./values');

const DEFAULT_TIMEOUT = 5000;

// What a conditional write answered OK with revision 0 means: a server
// before protocol v2 does not know if_mod_revision, skips it and writes,
// answering as for a plain write. A v2 server's Set always makes a revision
// (>= 1), and so does its Clear of a key it found.
const PRE_V2_WRITE = 'the server does not support conditional writes (a server before '
  + 'protocol v2): the write was applied without its check';

// protobufjs reads a string given for a bytes field as base64; a key
// written "k" would silently become empty. Here a string in a bytes field
// of the request means its UTF-8 bytes, as in the helpers, at any depth
// of a plain object (a TxnRequest's compares and operations too).
function utf8BytesFields(type, object) {
  if (object === null || typeof object !== 'object' || object instanceof type.ctor) return object;
  let copy = null;
  for (const field of type.fieldsArray) {
    const value = object[field.name];
    if (value === undefined || value === null) continue;
    let converted = value;
    const one = field.type === 'bytes'
      ? (v) => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v)
      : field.resolvedType && field.resolvedType.fieldsArray && !field.map
        ? (v) => utf8BytesFields(field.resolvedType, v)
        : null;
    if (!one) continue;
    if (field.repeated && Array.isArray(value)) {
      const mapped = value.map(one);
      if (mapped.some((v, i) => v !== value[i])) converted = mapped;
    } else {
      converted = one(value);
    }
    if (converted !== value) {
      copy = copy || { ...object };
      copy[field.name] = converted;
    }
  }
  return copy || object;
}

// Whether OPTIONS asks for a serializable read.
function serializable(options) {
  return Boolean(options && options.serializable);
}

class Client {
  // Use connect(). CONNECTION: a Connection; TIMEOUT: default ms per call;
  // ROUTE: the endpoints (lib/route.js), CONNECT_TIMEOUT for new ones.
  constructor(connection, timeout, route = new Route(connection.endpoint), connectTimeout = DEFAULT_TIMEOUT) {
    this.connection = connection;
    this.proto = connection.proto;
    this.service = this.proto.service;
    this.route = route;
    this.clientId = route.clientId;
    this.timeout = timeout;
    this.connectTimeout = connectTimeout;
    this.token = null;       // presented again on each new connection
    this._connecting = null; // the new connection being made, if any
    this.userClosed = false;
    for (const method of this.proto.methods) {
      if (method.name in this) throw new TypeError(`rpc ${method.name} clashes with a Client member`);
      this[method.name] = (request, options) => this.call(method.name, request, options);
    }
  }

  // The "HOST:PORT" connected to, or tried last.
  get endpoint() {
    return this.route.where;
  }

  get closed() {
    return this.userClosed || this.connection.closed;
  }

  // Closes the connection; calls in flight and later reject with
  // UNAVAILABLE. Resolves once the socket is closed.
  close() {
    this.userClosed = true;
    return this.connection.close();
  }

  // The connection, made again to route.where (and authenticated) if it
  // is gone. Rejects with the connect's RpcError.
  async _liveConnection() {
    if (!this.connection.closed) return this.connection;
    // Calls that find it gone together share one new connection.
    if (!this._connecting) {
      this._connecting = this._reconnect().finally(() => { this._connecting = null; });
    }
    return this._connecting;
  }

  async _reconnect() {
    // Like the one it replaces: the same TLS options.
    const conn = await Connection.open(this.route.where, this.proto, this.connectTimeout, this.connection.tls);
    if (this.token !== null) {
      const Auth = this.service.methods.Auth;
      const payload = Auth.resolvedRequestType.encode({ token: this.token }).finish();
      await conn.exchange({ method: this.proto.methodPath(Auth), payload }, this.connectTimeout)
        .catch(() => {});
    }
    this.connection = conn;
    return conn;
  }

  // One try of ENVELOPE: [outcome, sent, connection], the outcome an
  // RpcResponse or the RpcError of the connection.
  async _try(envelope, wait) {
    let conn;
    try {
      conn = await this._liveConnection();
    } catch (err) {
      return [err, false, this.connection];
    }
    try {
      return [await conn.exchange(envelope, wait), true, conn];
    } catch (err) {
      return [err, true, conn];
    }
  }

  // Calls the rpc NAME of the service with REQUEST (a message of its input
  // type or a plain object of its fields). Resolves with the decoded answer
  // message; rejects with an RpcError. OPTIONS: { timeout } in ms.
  async call(name, request = {}, options = {}) {
    const method = this.service.methods[name];
    if (!method) throw new TypeError(`the service ${this.service.fullName} has no rpc ${name}`);
    const Input = method.resolvedRequestType;
    if (!(request instanceof Input.ctor)) {
      request = utf8BytesFields(Input, request);
      const problem = Input.verify(request);
      if (problem) throw new TypeError(`${name}: ${problem}`);
      request = Input.create(request);
    }
    const payload = await this.invoke(this.proto.methodPath(method), Input.encode(request).finish(), options);
    return method.resolvedResponseType.decode(payload);
  }

  // Calls METHOD (a path such as "/kvstore.v1.KV/Get") with PAYLOAD, the
  // serialized request. Resolves with the serialized answer (a Buffer);
  // rejects with the RpcError of a non-OK code.
  async invoke(method, payload, options = {}) {
    const response = await this.exchange({ method, payload }, options);
    if (response.code !== 0) throw makeError(this.proto.StatusCode, response.code, response.message, method);
    return response.payload;
  }

  // Sends a hand-built envelope { method, payload } (an id is assigned)
  // and resolves with the RpcResponse whatever its code; rejects only with
  // DEADLINE_EXCEEDED or UNAVAILABLE.
  // With a cluster, tries again as lib/route.js says (README, "Clusters"):
  // the leader a node names, else the next endpoint with backoff, all
  // within TIMEOUT; a write gets clientId and the next seq (one that has
  // a seq keeps it), the same on every try.
  async exchange(envelope, options = {}) {
    const timeout = options.timeout === undefined ? this.timeout : options.timeout;
    if (this.userClosed) {
      throw makeErrorNamed(this.proto.StatusCode, 'UNAVAILABLE', 'the client was closed', envelope.method);
    }
    const stamped = this.route.stamp(envelope);
    const kind = kindOf(stamped.method || '');
    const deadline = Date.now() + (timeout > 0 ? timeout : RETRY_NO_TIMEOUT);
    const state = { backoff: 0, lastHinted: false };
    let wait = timeout;
    for (;;) {
      const [outcome, sent, used] = await this._try(stamped, wait);
      if (!again(kind, outcome, sent, this.route.cluster) || this.userClosed) {
        if (outcome instanceof Error) throw outcome;
        return outcome;
      }
      if (!(outcome instanceof Error) && outcome.leader) {
        this.route.hint = outcome.leader;
        this.route.cluster = true;
      }
      const pause = pauseBefore(state, Boolean(this.route.hint));
      if (Date.now() + pause >= deadline) {
        if (outcome instanceof Error) throw outcome;
        return outcome;
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
      // Unless another call moved already: then it goes where that one went.
      if (this.connection === used) {
        this.route.next();
        this.connection.close();
      }
      wait = Math.max(1, deadline - Date.now());
    }
  }

  // "PONG", or MESSAGE echoed.
  async ping(message = '', options) {
    return (await this.call('Ping', { message }, options)).message;
  }

  // The value of KEY (a Buffer); rejects with KeyNotFoundError when absent.
  // OPTIONS.serializable: read from the node connected to, from what it
  // has applied (maybe stale, never torn; any node of a cluster answers);
  // by default a linearizable read, which a cluster's leader answers.
  async get(key, options) {
    const request = { key: asBytes(key, 'key'), serializable: serializable(options) };
    return Buffer.from((await this.call('Get', request, options)).value);
  }

  // Stores VALUE under KEY, overwriting. OPTIONS.ttlMs > 0: the key expires
  // that many ms after the write (at most 10^12). Without it the key does not
  // expire, losing any time to live it had, unless OPTIONS.keepTtl: then it
  // keeps what was left (none for a new key). Both, or a ttlMs above the
  // maximum: INVALID_ARGUMENT.
  async set(key, value, options = {}) {
    const request = { key: asBytes(key, 'key'), value: asBytes(value, 'value'), ...setFields(options) };
    await this.call('Set', request, options);
  }

  // Sets KEY's time to live to TTL_MS ms from now (0: it no longer expires),
  // leaving its value and revisions alone (no revision, no watch event).
  // Resolves with true, or false when KEY is missing or expired.
  async touch(key, ttlMs, options) {
    const request = { key: asBytes(key, 'key'), ttl_ms: checkUint(ttlMs, 'ttlMs') };
    return Boolean((await this.call('Touch', request, options)).found);
  }

  // Presents TOKEN (string or bytes) to a server started with
  // --auth-token-file; rejects with UNAUTHENTICATED when it is wrong.
  // Once accepted, TOKEN is presented again on each new connection.
  async auth(token, options) {
    await this.call('Auth', { token: asBytes(token, 'token') }, options);
    this.token = asBytes(token, 'token');
  }

  // Removes KEY; resolves with its old value (a Buffer), or null when absent.
  // OPTIONS.ifModRevision: only when the key's mod_revision is that (0: only
  // when absent, which then changes nothing); else rejects with
  // FailedPreconditionError and the key stays. A server before protocol v2
  // ignores ifModRevision and removes the key anyway: that answer (found,
  // but no revision) rejects with an RpcError UNIMPLEMENTED saying so.
  async clear(key, options = {}) {
    const request = { key: asBytes(key, 'key') };
    const conditional = options.ifModRevision !== undefined && options.ifModRevision !== null;
    if (conditional) request.if_mod_revision = checkUint(options.ifModRevision, 'ifModRevision');
    const answer = await this.call('Clear', request, options);
    if (conditional && answer.found && num(answer.revision) === 0) throw this._preV2Write('Clear');
    return clearedValue(answer);
  }

  // The error of a conditional write of the rpc NAME that a server before
  // protocol v2 applied without its check.
  _preV2Write(name) {
    return makeErrorNamed(this.proto.StatusCode, 'UNIMPLEMENTED', PRE_V2_WRITE,
      this.proto.methodPath(this.service.methods[name]));
  }

  // KEY with its revisions: { key, value, createRevision, modRevision,
  // version, revision, ttlMs } (revision: the store's at the read; ttlMs:
  // the ms it has left, 0 when it does not expire). Rejects with
  // KeyNotFoundError when absent; get() is the same, value only.
  async getEntry(key, options) {
    const bytes = asBytes(key, 'key');
    return entryOfGet(bytes, await this.call('Get', { key: bytes, serializable: serializable(options) },
      options));
  }

  // Compare-and-set: stores VALUE under KEY only if the key's mod_revision is
  // MOD_REVISION, where 0 means "only if absent" (create-only). Resolves with
  // the revision the write made; otherwise rejects with
  // FailedPreconditionError (FAILED_PRECONDITION, 9; its details say the
  // current mod_revision) and nothing changes. A server before protocol v2
  // ignores the condition and stores VALUE anyway: that answer (OK, but
  // revision 0) rejects with an RpcError UNIMPLEMENTED (12) whose details
  // say the write was applied without its check. OPTIONS: { ttlMs, keepTtl }
  // as for set(): a lock that frees itself is cas('lock', 'me', 0,
  // { ttlMs: 10000 }), kept alive with touch().
  async cas(key, value, modRevision, options = {}) {
    const request = {
      key: asBytes(key, 'key'),
      value: asBytes(value, 'value'),
      if_mod_revision: checkUint(modRevision, 'modRevision'),
      ...setFields(options),
    };
    const revision = num((await this.call('Set', request, options)).revision);
    if (revision === 0) throw this._preV2Write('Set');
    return revision;
  }

  // One Range call. QUERY: { start, end, prefix, limit, keysOnly, reverse }:
  // the keys of [start, end) (no end: no upper bound) or those beginning
  // with prefix (not both), at most limit of them (0 or none: the server's
  // maximum page). Resolves with { entries, more, count, revision }: count
  // is the keys of the whole range. range() pages for you.
  async rangePage(query = {}, options) {
    const request = { ...selector(query) };
    if (query.limit !== undefined) request.limit = checkUint(query.limit, 'limit', UINT32_MAX);
    if (query.keysOnly) request.keys_only = true;
    if (query.reverse) request.reverse = true;
    if (query.serializable || serializable(options)) request.serializable = true;
    return pageOf(await this.call('Range', request, options));
  }

  // The keys of [start, end) or of prefix, in byte order (memcmp, shorter
  // first on a tie) or descending with reverse, as an async iterator of
  // entries that pages transparently:
  //   for await (const e of client.range({ prefix: 'user/' })) ...
  // QUERY: { start, end, prefix, limit (most keys in all; default, null or
  // 0: all, as the wire's limit 0 and kvctl's --limit 0 mean),
  // pageSize (keys per call; default 0, the server's maximum page),
  // keysOnly, reverse }. Each page is fetched when the iteration reaches it,
  // a read of its own moment (see each entry's revision), not a snapshot.
  // OPTIONS.timeout bounds each page's call.
  range(query = {}, options = {}) {
    const fields = selector(query);
    const limit = query.limit === undefined || query.limit === null
      ? null : checkUint(query.limit, 'limit') || null;
    const pageSize = checkUint(query.pageSize === undefined ? 0 : query.pageSize, 'pageSize', UINT32_MAX);
    return this._rangePages(fields, limit, pageSize, Boolean(query.keysOnly), Boolean(query.reverse),
      query.serializable ? { ...options, serializable: true } : options);
  }

  async * _rangePages(fields, limit, pageSize, keysOnly, reverse, options) {
    let left = limit;
    while (left === null || left > 0) {
      let want = pageSize;
      if (left !== null) want = Math.min(pageSize || left, left, UINT32_MAX);
      const page = await this.rangePage({ ...fields, limit: want, keysOnly, reverse,
        serializable: serializable(options) }, options);
      const entries = left === null ? page.entries : page.entries.slice(0, left);
      for (const e of entries) yield e;
      if (left !== null) left -= entries.length;
      if (!page.more) return;
      if (!page.entries.length) throw new Error('Range answered more = true with no keys: cannot page on');
      // The next page: after the last key seen. A prefix becomes the
      // [start, end) it stands for, as a prefix cannot go with either.
      if (fields.prefix) fields = { start: fields.prefix, end: prefixEnd(fields.prefix) };
      const last = page.entries[page.entries.length - 1].key;
      if (reverse) fields = { ...fields, end: last };
      else fields = { ...fields, start: Buffer.concat([last, Buffer.from([0])]) };
    }
  }

  // How many keys QUERY ({ start, end, prefix }; empty: every key) selects:
  // a Range with count_only, no keys sent.
  async count(query = {}, options) {
    const request = { ...selector(query), count_only: true };
    if (query.serializable || serializable(options)) request.serializable = true;
    return num((await this.call('Range', request, options)).count);
  }

  // Removes every key of QUERY ({ start, end, prefix }) as one write (one
  // revision); resolves with how many were removed. With no selector the
  // server refuses (INVALID_ARGUMENT), so a missing field never wipes the
  // store: to remove every key pass { start: Buffer.from([0]) }.
  async clearRange(query = {}, options) {
    return num((await this.call('ClearRange', selector(query), options)).deleted);
  }

  // A Txn builder: client.txn().if(...compares).then(...ops).else(...ops)
  // .commit() (see lib/txn.js).
  txn() {
    return new Txn(this);
  }

  // Watches QUERY: { key } one key, { key, end } the range [key, end) (end
  // "\0": no upper bound), or { prefix }; startRevision (0 or none: the
  // changes after now; N: every change of revision >= N, replayed from the
  // server's history, then live), prevKv (events carry the key as it was).
  // Returns a Watch (lib/watch.js) at once, its Watch call already sent, so
  // the calls made after it are seen: an async iterator of events
  //   for await (const ev of client.watch({ prefix: 'cfg/' })) ...
  // ({ type: 'PUT' | 'DELETE', kv, prevKv, expired, revision }) and an
  // EventEmitter ('event', 'error', 'end'). watch.ready resolves with the
  // watch's id, or rejects with the Watch call's RpcError (INVALID_ARGUMENT
  // for a selector the server refuses). Other calls go on meanwhile.
  // OPTIONS.timeout bounds the Watch call, not the wait for events.
  watch(query = {}, options = {}) {
    return new Watch(this, watchFields(query), options);
  }
}

// Connects to ENDPOINT ("HOST:PORT", default "127.0.0.1:7379"), or to the
// first that accepts of several ("a:1,b:2" or an array), following a
// cluster (README, "Clusters"). OPTIONS: timeout (ms per call, retries
// included, default 5000, 0 for none: then 10 s of retries), connectTimeout (ms,
// default: timeout), protoPath (the kv.proto to load; default
// $KVSTORE_PROTO, else the one this module ships with, lib/proto.js),
// token (sent with Auth at once, for a server with --auth-token-file),
// tls (for a server with --tls-cert: true for the system's CAs, or
// tls.ConnectionOptions such as { ca, cert, key, servername,
// rejectUnauthorized }; every connection of the client uses it, the
// certificate must name servername, else the endpoint's host).
async function connect(endpoint, options = {}) {
  const tls = tlsOptions(options.tls);
  const proto = loadProto(options.protoPath);
  const timeout = options.timeout === undefined ? DEFAULT_TIMEOUT : options.timeout;
  const connectTimeout = options.connectTimeout === undefined ? (timeout || DEFAULT_TIMEOUT) : options.connectTimeout;
  const route = new Route(endpoint);
  let conn = null;
  for (let i = 0; conn === null; i++) {
    try {
      conn = await Connection.open(route.endpoints[i], proto, connectTimeout, tls);
      route.found(i);
    } catch (err) {
      if (i === route.endpoints.length - 1) throw err;
    }
  }
  const client = new Client(conn, timeout, route, connectTimeout);
  if (options.token !== undefined && options.token !== null) {
    try {
      await client.auth(options.token);
    } catch (err) {
      await client.close();
      throw err;
    }
  }
  return client;
}

module.exports = { Client, connect, DEFAULT_TIMEOUT };
