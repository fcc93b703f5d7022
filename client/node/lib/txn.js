// lib/txn.js - building a Txn: compares, operations and the builder.
//
// A Txn evaluates its compares on one state of the store; when all hold it
// runs the "then" operations, else the "else" ones, in order, atomically
// (docs/PROTOCOL.md, Txn).
//
//   const { compare, op } = require('kvstore-client');
//   const r = await client.txn()
//     .if(compare.modRevision('cfg').equal(seen), compare.value('mode').equal('on'))
//     .then(op.set('cfg', 'new'), op.clear('cfg.lock'))
//     .else(op.get('cfg'))
//     .commit();
//   r.succeeded; r.results; r.revision
//
// compare.value/modRevision/createRevision/version(key) name a key's target;
// .equal(x), .notEqual(x), .less(x) and .greater(x) (the key's is less /
// greater than x) make the Compare. A missing key has revisions and version
// 0 and every VALUE compare on it is false. Each op's result is what the
// matching helper returns: get -> entry or null, set -> the revision
// written, clear -> the old value or null, range -> page, clearRange ->
// keys removed.
'use strict';

const { UINT32_MAX, asBytes, checkUint, selector, setFields, txnResult } = require('./values');

// The numbers of Compare.Target and Compare.Op, fixed by kv.proto.
const TARGET = { VALUE: 0, MOD_REVISION: 1, CREATE_REVISION: 2, VERSION: 3 };
const OP = { EQUAL: 0, NOT_EQUAL: 1, LESS: 2, GREATER: 3 };
const TARGET_NAME = ['value', 'modRevision', 'createRevision', 'version'];

// Marks what the builders made, so that if()/then()/else() can tell a
// Compare from a TxnOp (and both from a callback given by mistake).
const KIND = Symbol('kvstore.txn.kind');

function tagged(kind, object) {
  Object.defineProperty(object, KIND, { value: kind });
  return object;
}

// A key's target, waiting for its comparison.
class Compared {
  constructor(key, target) {
    this.key = asBytes(key, 'key');
    this.target = target;
  }

  _compare(op, operand) {
    const message = { key: this.key, target: this.target, op };
    if (this.target === TARGET.VALUE) message.value = asBytes(operand, 'value');
    else message.number = checkUint(operand, TARGET_NAME[this.target]);
    return tagged('compare', message);
  }

  equal(operand) { return this._compare(OP.EQUAL, operand); }
  notEqual(operand) { return this._compare(OP.NOT_EQUAL, operand); }
  // Holds when the key's target is less than OPERAND.
  less(operand) { return this._compare(OP.LESS, operand); }
  // Holds when the key's target is greater than OPERAND.
  greater(operand) { return this._compare(OP.GREATER, operand); }
}

const compare = Object.freeze({
  // KEY's value, compared as bytes (memcmp, shorter first on a tie).
  value: (key) => new Compared(key, TARGET.VALUE),
  // The revision of KEY's last change (0 when absent).
  modRevision: (key) => new Compared(key, TARGET.MOD_REVISION),
  // The revision that created KEY (0 when absent).
  createRevision: (key) => new Compared(key, TARGET.CREATE_REVISION),
  // Writes of KEY since it was created (0 when absent).
  version: (key) => new Compared(key, TARGET.VERSION),
});

function rangeRequest(query = {}) {
  const request = { ...selector(query) };
  if (query.limit !== undefined) request.limit = checkUint(query.limit, 'limit', UINT32_MAX);
  if (query.keysOnly) request.keys_only = true;
  if (query.countOnly) request.count_only = true;
  if (query.reverse) request.reverse = true;
  return request;
}

const op = Object.freeze({
  // Its result: the entry, or null for a missing key.
  get: (key) => tagged('op', { get: { key: asBytes(key, 'key') } }),
  // Unconditional (the compares are the condition); its result: the
  // revision written. OPTIONS: { ttlMs, keepTtl } as for client.set().
  set: (key, value, options) => tagged('op', {
    set: { key: asBytes(key, 'key'), value: asBytes(value, 'value'), ...setFields(options) },
  }),
  // Its result: the old value, or null when absent.
  clear: (key) => tagged('op', { clear: { key: asBytes(key, 'key') } }),
  // QUERY: { start, end, prefix, limit, keysOnly, countOnly, reverse }; one
  // page (see its more); its result: { entries, more, count, revision }.
  range: (query) => tagged('op', { range: rangeRequest(query) }),
  // QUERY: { start, end, prefix }; its result: how many keys were removed.
  clearRange: (query = {}) => tagged('op', { clear_range: selector(query) }),
});

const OP_FIELDS = ['get', 'set', 'clear', 'range', 'clear_range'];

function check(items, kind, where) {
  for (const item of items) {
    if (typeof item === 'function') {
      // What `await builder` or returning it from an async function does.
      throw new TypeError('a Txn builder is not a promise: end it with .commit()');
    }
    const ok = item && typeof item === 'object' &&
      (item[KIND] === kind || (kind === 'op' ? OP_FIELDS.some((f) => item[f]) : 'key' in item && 'op' in item));
    if (!ok) {
      throw new TypeError(`${where} takes ${kind === 'op' ? 'operations (kvstore.op.*)' : 'compares (kvstore.compare.*)'}`);
    }
  }
  return items;
}

// A transaction being built for CLIENT (use client.txn()). compares,
// success and failure are the lists so far; request() the TxnRequest.
class Txn {
  constructor(client) {
    this.client = client;
    this.compares = [];
    this.success = [];
    this.failure = [];
  }

  // Adds COMPARES (all must hold; none at all holds).
  if(...compares) {
    this.compares.push(...check(compares, 'compare', 'if()'));
    return this;
  }

  // Adds OPS to run when every compare holds.
  then(...ops) {
    this.success.push(...check(ops, 'op', 'then()'));
    return this;
  }

  // Adds OPS to run when a compare does not hold.
  else(...ops) {
    this.failure.push(...check(ops, 'op', 'else()'));
    return this;
  }

  request() {
    return { compare: [...this.compares], success: [...this.success], failure: [...this.failure] };
  }

  // Sends the Txn; resolves with { succeeded, results, revision, response }.
  // Rejects with the RpcError of a refused Txn (INVALID_ARGUMENT: nothing
  // was applied).
  async commit(options) {
    const request = this.request();
    const answer = await this.client.call('Txn', request, options);
    return txnResult(answer, answer.succeeded ? request.success : request.failure);
  }
}

module.exports = { Txn, compare, op, TARGET, OP };
