// lib/watch.js - Watch: the changes to a key, a range or a prefix, as they
// happen (docs/PROTOCOL.md, Watch). client.watch() sends the Watch call at
// once; its answer carries the watch's id, and from then on the server sends
// stream frames (RpcResponse.stream = true, the Watch call's id) holding the
// events, between the answers of any other calls. The connection hands those
// frames to the watch by id (lib/connection.js), never to another call.
//
//   const w = client.watch({ prefix: 'cfg/', prevKv: true });
//   for await (const ev of w) console.log(ev.type, ev.kv.key, ev.revision);
//   // or: w.on('event', (ev) => ...); w.on('error', ...); w.on('end', ...)
//   await w.cancel();
'use strict';

const { EventEmitter } = require('node:events');
const { makeError, WatchCanceledError, KeyNotFoundError } = require('./errors');
const { num, watchEvents } = require('./values');

class Watch extends EventEmitter {
  // Use client.watch(). FIELDS: the WatchRequest's fields; OPTIONS: { timeout }.
  constructor(client, fields, options = {}) {
    super();
    const method = client.service.methods.Watch;
    if (!method || !client.service.methods.CancelWatch) {
      throw new TypeError(`the service ${client.service.fullName} has no rpc Watch (a kv.proto before v2.1?)`);
    }
    this.client = client;
    this.watchId = 0;
    this.lastRevision = 0;
    this._Response = method.resolvedResponseType;
    this._queue = [];       // events not yet taken by the iteration
    // null while open; true once the client ended it (what was not read is
    // dropped); an Error to throw once the events before it are read.
    this._end = null;
    this._ended = false;    // 'end' emitted
    this._waiters = [];     // resolve functions of iterations waiting for a change
    this._iterating = false;
    this._stream = {
      id: 0,
      onFrame: (response) => this._onFrame(response),
      onLost: (err) => this._finish(err),
    };
    const Input = method.resolvedRequestType;
    const payload = Input.encode(Input.create(fields)).finish();
    const timeout = options.timeout === undefined ? client.timeout : options.timeout;
    const path = client.proto.methodPath(method);
    // Sent now, before any call made after watch() returns: the server
    // registers the watch before it runs those.
    this.ready = client.connection.exchange({ method: path, payload }, timeout, this._stream)
      .then((response) => {
        if (response.code !== 0) throw makeError(client.proto.StatusCode, response.code, response.message, path);
        const answer = this._Response.decode(response.payload);
        this.watchId = num(answer.watch_id);
        this._take(answer);
        return this.watchId;
      });
    this.ready.catch((err) => this._finish(err));   // handled: the iteration or 'error' reports it
  }

  // True once cancel() ran, or the server ended the watch, or its
  // connection was lost.
  get closed() {
    return this._end !== null;
  }

  _onFrame(response) {
    if (response.code !== 0) {
      this._finish(makeError(this.client.proto.StatusCode, response.code, response.message));
      return;
    }
    let answer;
    try {
      answer = this._Response.decode(response.payload);
    } catch (err) {
      this._finish(new Error(`undecodable watch frame: ${err.message}`));
      return;
    }
    this._take(answer);
  }

  _take(answer) {
    if (this._end !== null) return;
    const listened = this.listenerCount('event') > 0;
    for (const event of watchEvents(answer)) {
      if (this._iterating || !listened) this._queue.push(event);
      if (listened) this.emit('event', event);
    }
    if (answer.canceled) {
      this._finish(new WatchCanceledError(this.watchId || num(answer.watch_id), answer.cancel_reason,
        num(answer.compact_revision)));
    }
    this._wake();
  }

  // The watch ends: END is true (the client's doing) or the Error why.
  _finish(end) {
    if (this._stream.id) this.client.connection.closeStream(this._stream.id);
    if (this._end === null) {
      this._end = end;
      if (end === true) this._queue = [];
      else if (this.listenerCount('error') > 0) this.emit('error', end);
    }
    if (!this._ended) {
      this._ended = true;
      this.emit('end');
    }
    this._wake();
  }

  _wake() {
    const waiters = this._waiters;
    this._waiters = [];
    for (const resolve of waiters) resolve();
  }

  // The next event, waiting up to TIMEOUT ms (undefined or null: no limit);
  // null when the time is up with none, or the watch was ended by the client
  // (see closed). Rejects with WatchCanceledError when the server ended the
  // watch (after the events before that), with the Watch call's RpcError,
  // or UNAVAILABLE when the connection is lost.
  async nextEvent(timeout) {
    this._iterating = true;
    const deadline = timeout === undefined || timeout === null ? null : Date.now() + timeout;
    for (;;) {
      if (this._queue.length) {
        const event = this._queue.shift();
        this.lastRevision = event.revision;
        return event;
      }
      if (this._end === true) return null;
      if (this._end !== null) throw this._end;
      const left = deadline === null ? null : deadline - Date.now();
      if (left !== null && left <= 0) return null;
      let timer = null;
      await new Promise((resolve) => {
        this._waiters.push(resolve);
        if (left !== null) timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  // for await (const ev of watch): the events in revision order; the loop
  // ends after cancel() and throws as nextEvent() does. Leaving the loop
  // early (break, return, throw) cancels the watch.
  [Symbol.asyncIterator]() {
    this._iterating = true;
    return {
      next: async () => {
        const event = await this.nextEvent();
        return event === null ? { done: true, value: undefined } : { done: false, value: event };
      },
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() { return this; },
    };
  }

  // Ends the watch: CancelWatch (unless it has ended already), resolving
  // once answered; what was not read is dropped, the iteration ends and
  // 'end' is emitted. Rejects with the CancelWatch call's RpcError; a watch
  // the server ended meanwhile (NOT_FOUND) is no error. OPTIONS: { timeout }.
  async cancel(options) {
    const open = this._end === null;
    this._finish(true);
    let watchId;
    try {
      watchId = await this.ready;
    } catch (err) {
      return;                    // never opened: nothing to cancel
    }
    if (!open || this.client.connection.closed) return;
    try {
      await this.client.call('CancelWatch', { watch_id: watchId }, options);
    } catch (err) {
      if (!(err instanceof KeyNotFoundError)) throw err;
    }
  }

  // cancel(), never rejecting (a lost connection, a failed CancelWatch:
  // the watch just ends here).
  async close(options) {
    try {
      await this.cancel(options);
    } catch (err) {
      // nothing more to do about it
    }
  }
}

module.exports = { Watch };
