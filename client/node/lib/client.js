// lib/client.js - Client: the calls a user makes, on one Connection.
// Every rpc of the loaded service becomes a method of the same name
// (client.Get({ key })), read from the protobufjs Service, not written out
// here; helpers get/set/clear/ping take and return plain values on top.
'use strict';

const { loadProto } = require('./proto');
const { Connection } = require('./connection');
const { makeError } = require('./errors');

const DEFAULT_TIMEOUT = 5000;

// A key or value: Buffer/Uint8Array as is, a string as UTF-8.
function asBytes(value, what) {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return value;
  throw new TypeError(`${what} must be a Buffer, Uint8Array or string`);
}

// protobufjs reads a string given for a bytes field as base64; a key
// written "k" would silently become empty. Here a string in a bytes field
// of the request means its UTF-8 bytes, as in the helpers.
function utf8BytesFields(type, object) {
  let copy = null;
  for (const field of type.fieldsArray) {
    if (field.type === 'bytes' && typeof object[field.name] === 'string') {
      copy = copy || { ...object };
      copy[field.name] = Buffer.from(object[field.name], 'utf8');
    }
  }
  return copy || object;
}

class Client {
  // Use connect(). CONNECTION: a Connection; TIMEOUT: default ms per call.
  constructor(connection, timeout) {
    this.connection = connection;
    this.proto = connection.proto;
    this.service = this.proto.service;
    this.endpoint = connection.endpoint;
    this.timeout = timeout;
    for (const method of this.proto.methods) {
      if (method.name in this) throw new TypeError(`rpc ${method.name} clashes with a Client member`);
      this[method.name] = (request, options) => this.call(method.name, request, options);
    }
  }

  get closed() {
    return this.connection.closed;
  }

  // Closes the connection; calls in flight and later reject with
  // UNAVAILABLE. Resolves once the socket is closed.
  close() {
    return this.connection.close();
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
  exchange(envelope, options = {}) {
    const timeout = options.timeout === undefined ? this.timeout : options.timeout;
    return this.connection.exchange(envelope, timeout);
  }

  // "PONG", or MESSAGE echoed.
  async ping(message = '', options) {
    return (await this.call('Ping', { message }, options)).message;
  }

  // The value of KEY (a Buffer); rejects with KeyNotFoundError when absent.
  async get(key, options) {
    return Buffer.from((await this.call('Get', { key: asBytes(key, 'key') }, options)).value);
  }

  // Stores VALUE under KEY, overwriting.
  async set(key, value, options) {
    await this.call('Set', { key: asBytes(key, 'key'), value: asBytes(value, 'value') }, options);
  }

  // Presents TOKEN (string or bytes) to a server started with
  // --auth-token-file; rejects with UNAUTHENTICATED when it is wrong.
  async auth(token, options) {
    await this.call('Auth', { token: asBytes(token, 'token') }, options);
  }

  // Removes KEY; resolves with its old value (a Buffer), or null when absent.
  async clear(key, options) {
    const answer = await this.call('Clear', { key: asBytes(key, 'key') }, options);
    return answer.found ? Buffer.from(answer.value) : null;
  }
}

// Connects to ENDPOINT ("HOST:PORT", default "127.0.0.1:7379"). OPTIONS:
// timeout (ms per call, default 5000, 0 for none), connectTimeout (ms,
// default: timeout), protoPath (the kv.proto to load; default
// $KVSTORE_PROTO, else ../../proto/kvstore/v1/kv.proto of this package),
// token (sent with Auth at once, for a server with --auth-token-file).
async function connect(endpoint, options = {}) {
  const proto = loadProto(options.protoPath);
  const timeout = options.timeout === undefined ? DEFAULT_TIMEOUT : options.timeout;
  const connectTimeout = options.connectTimeout === undefined ? (timeout || DEFAULT_TIMEOUT) : options.connectTimeout;
  const client = new Client(await Connection.open(endpoint, proto, connectTimeout), timeout);
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
