// lib/connection.js - one TCP connection: ids, the calls in flight, frames.
// Sends RpcRequest envelopes and resolves each with its RpcResponse, matched
// by id; knows nothing of methods or messages (lib/client.js does that).
// Any number of calls may be in flight at once; answers come back in order.
// Stream frames (RpcResponse.stream = true: a Watch's events, sent between
// the answers of other calls) never resolve a call: they go to the stream
// registered for their id (exchange's STREAM), or nowhere. Over TLS
// (lib/tls.js) the socket is a tls.TLSSocket, the handshake part of open();
// the rest is the same.
'use strict';

const net = require('node:net');
const { frame, FrameReader } = require('./framing');
const { makeErrorNamed } = require('./errors');
const { connectTls, describe, refused } = require('./tls');

const CLOSED_BY_CLIENT = 'the client closed the connection';
const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 7379;

// "HOST:PORT", "HOST", "[V6]:PORT" or empty -> { host, port }. A port that
// is not 0 to 65535 in decimal digits (the C parser's rule, src/endpoint.c)
// throws a RangeError; net.connect would only reject it later, less clearly.
function parseEndpoint(endpoint) {
  if (!endpoint) return { host: DEFAULT_HOST, port: DEFAULT_PORT };
  let host = endpoint;
  let port = '';
  const v6 = /^\[([^\]]*)\](?::(.*))?$/.exec(endpoint);
  if (v6) [, host, port = ''] = v6;
  else if (endpoint.split(':').length === 2) [host, port] = endpoint.split(':');
  if (port !== '' && !(/^[0-9]+$/.test(port) && Number(port) <= 65535)) {
    throw new RangeError(`bad port "${port}" in endpoint "${endpoint}" (want a number from 0 to 65535)`);
  }
  return { host: host || DEFAULT_HOST, port: port === '' ? DEFAULT_PORT : Number(port) };
}

class Connection {
  // Use Connection.open(); PROTO is the bundle from lib/proto.js; TLS the
  // tls.connect options it was opened with (null: plaintext).
  constructor(socket, proto, endpoint, tls = null) {
    this.socket = socket;
    this.proto = proto;
    this.endpoint = endpoint;
    this.tls = tls;
    this.answered = false;     // a frame came from the server
    this.nextId = 1;
    // id -> { resolve, timer } or null once the call gave up (timed out).
    // Insertion-ordered: an answer with id 0 belongs to the oldest call.
    this.inflight = new Map();
    // id of a Watch call -> { onFrame(response), onLost(error) }.
    this.streams = new Map();
    this.reader = new FrameReader();
    this.broken = null;       // why the connection is gone, once it is
    this.corked = false;
    this.closedPromise = new Promise((resolve) => socket.once('close', resolve));
    socket.setNoDelay(true);
    socket.unref();            // an idle client never keeps the process alive
    socket.on('data', (chunk) => this._onData(chunk));
    socket.on('error', (err) => this._fail(`connection to ${endpoint} lost: ${describe(err)}`,
      Boolean(err.library), refused(err)));
    socket.on('end', () => this._fail(`connection closed by the server ${endpoint}`));
    socket.on('close', () => this._fail(`connection closed by the server ${endpoint}`));
  }

  // Connects within TIMEOUT ms (0: no limit), over TLS with TLS (options
  // from lib/tls.js; null: plaintext), the handshake included. Rejects with
  // UNAVAILABLE when refused or when the handshake fails (the message says
  // why: "TLS handshake with HOST:PORT failed: ..."; the TLS error is its
  // cause), DEADLINE_EXCEEDED when too slow.
  static open(endpoint, proto, timeout, tls = null) {
    const { host, port } = parseEndpoint(endpoint);
    const name = endpoint || `${host}:${port}`;
    return new Promise((resolve, reject) => {
      const socket = tls ? connectTls(host, port, tls) : net.connect({ host, port });
      let tcpUp = false;
      const timer = timeout > 0 && setTimeout(() => {
        socket.destroy();
        reject(makeErrorNamed(proto.StatusCode, 'DEADLINE_EXCEEDED',
                              `could not connect to ${name} within ${timeout} ms`));
      }, timeout);
      socket.once('error', (err) => {
        clearTimeout(timer);
        const why = tcpUp ? `TLS handshake with ${name} failed: ${describe(err)}`
          : `could not connect to ${name}: ${err.message}`;
        const error = makeErrorNamed(proto.StatusCode, 'UNAVAILABLE', why);
        error.cause = err;
        reject(error);
      });
      socket.once('connect', () => { tcpUp = true; });
      socket.once(tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new Connection(socket, proto, name, tls));
      });
    });
  }

  get closed() {
    return this.broken !== null;
  }

  // Sends ENVELOPE (a plain object or RpcRequest; its id is replaced) and
  // resolves with the RpcResponse, whatever its code. Rejects only when no
  // answer came: DEADLINE_EXCEEDED after TIMEOUT ms (0: none), or
  // UNAVAILABLE when the connection is or gets closed. STREAM ({ onFrame,
  // onLost, id }) gets the stream frames of the call's id from the moment
  // it is sent (its id is set) until closeStream(id); a call that fails
  // keeps none. The socket keeps the process alive while a stream is open.
  exchange(envelope, timeout, stream = null) {
    const method = envelope.method || '';
    if (this.broken !== null) {
      return Promise.reject(makeErrorNamed(this.proto.StatusCode, 'UNAVAILABLE', this.broken, method));
    }
    const id = this.nextId++;
    const fields = { method, payload: envelope.payload || Buffer.alloc(0), id };
    if (envelope.client_id) fields.client_id = envelope.client_id;
    if (envelope.seq) fields.seq = envelope.seq;
    const request = this.proto.RpcRequest.create(fields);
    const body = this.proto.RpcRequest.encode(request).finish();
    if (stream) {
      stream.id = id;
      this.streams.set(id, stream);
    }
    const answered = new Promise((resolve, reject) => {
      const call = { resolve, reject, method, timer: null };
      if (timeout > 0) {
        call.timer = setTimeout(() => {
          this.inflight.set(id, null);   // a late answer will be dropped
          this.streams.delete(id);
          this._idle();
          reject(makeErrorNamed(this.proto.StatusCode, 'DEADLINE_EXCEEDED',
                                `no answer from ${this.endpoint} within ${timeout} ms`, method));
        }, timeout);
      }
      this.inflight.set(id, call);
      this.socket.ref();
      this._write(frame(body));
    });
    if (!stream) return answered;
    return answered.then((response) => {
      if (response.code !== 0) this.closeStream(id);
      return response;
    });
  }

  // Stops sending the frames of the call ID anywhere; later ones are dropped.
  closeStream(id) {
    if (this.streams.delete(id)) this._idle();
  }

  // Closes the socket; calls in flight reject with UNAVAILABLE. Resolves
  // once the socket is closed.
  close() {
    this._fail(CLOSED_BY_CLIENT);
    return this.closedPromise;
  }

  _write(bytes) {
    // Writes of one tick leave in one system call.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(bytes);
  }

  _onData(chunk) {
    let bodies;
    try {
      bodies = this.reader.push(chunk);
    } catch (err) {
      this._fail(`bad frame from ${this.endpoint}: ${err.message}`);
      return;
    }
    for (const body of bodies) {
      let response;
      try {
        response = this.proto.RpcResponse.decode(body);
      } catch (err) {
        this._fail(`undecodable answer from ${this.endpoint}: ${err.message}`);
        return;
      }
      this._deliver(response);
    }
  }

  _deliver(response) {
    this.answered = true;
    response.id = typeof response.id === 'number' ? response.id : response.id.toNumber();
    if (response.stream) {
      // A stream frame: never an answer, whatever its id says.
      const stream = this.streams.get(response.id);
      if (stream) stream.onFrame(response);
      return;
    }
    let id = response.id;
    if (id === 0 && response.code !== 0 && this.inflight.size) {
      // The server could not read a request: answers come in order, so it
      // is the oldest one in flight.
      id = this.inflight.keys().next().value;
    }
    if (!this.inflight.has(id)) return;  // a stray id: nothing waits for it
    const call = this.inflight.get(id);
    this.inflight.delete(id);
    this._idle();
    if (call) {
      clearTimeout(call.timer);
      call.resolve(response);
    }
  }

  _idle() {
    if (this.broken !== null) return;
    if (this.streams.size) return;
    for (const call of this.inflight.values()) if (call) return;
    this.socket.unref();
  }

  // Marks the connection gone, for WHY; BY_TLS: WHY is what TLS said (an
  // alert from the server, say); BY_ALERT: the server refused this client
  // (tls.refused), so the calls are not retried (route.again).
  _fail(why, byTls = false, byAlert = false) {
    if (this.broken !== null) return;
    if (this.tls && !this.answered && !byTls && why !== CLOSED_BY_CLIENT) {
      // A server that refuses the client's certificate (TLS 1.3: after the
      // client's side of the handshake) sends an alert and closes; a
      // request written meanwhile can make the reset overtake the alert,
      // and then a reset or a close is all the client learns.
      why += ' (no answer yet over TLS: was this client\'s certificate refused?)';
    }
    this.broken = why;
    this.socket.destroy();
    const calls = [...this.inflight.values()];
    this.inflight.clear();
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const call of calls) {
      if (!call) continue;
      clearTimeout(call.timer);
      const error = makeErrorNamed(this.proto.StatusCode, 'UNAVAILABLE', why, call.method);
      error.refused = byAlert;
      call.reject(error);
    }
    for (const stream of streams) stream.onLost(makeErrorNamed(this.proto.StatusCode, 'UNAVAILABLE', why));
  }
}

module.exports = { Connection, parseEndpoint, DEFAULT_HOST, DEFAULT_PORT };
