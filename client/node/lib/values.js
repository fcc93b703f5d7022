// lib/values.js - the plain values the v2 helpers return (entries, pages,
// Txn results, watch events), built from decoded response messages, and the
// request pieces they share (bytes, selectors, expiry, numbers). No I/O here.
'use strict';

const UINT32_MAX = 0xffffffff;

// A key or value: Buffer/Uint8Array as is, a string as UTF-8.
function asBytes(value, what) {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return value;
  throw new TypeError(`${what} must be a Buffer, Uint8Array or string`);
}

// A decoded bytes field as a Buffer of its own (not a view of the frame).
function buffer(bytes) {
  return Buffer.from(bytes || []);
}

// A decoded uint64 (a Long with long.js, else a number) as a number.
// Revisions and counts stay far below 2^53.
function num(value) {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'number') return value;
  if (typeof value.toNumber === 'function') return value.toNumber();
  return Number(value);
}

// VALUE when it is a safe integer from 0 to MAX, else a TypeError/RangeError.
function checkUint(value, what, max = Number.MAX_SAFE_INTEGER) {
  if (typeof value === 'bigint') value = Number(value);
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${what} must be an integer, not ${value === null ? 'null' : typeof value}`);
  }
  if (value < 0 || value > max) throw new RangeError(`${what} must be from 0 to ${max}, not ${value}`);
  return value;
}

// The start/end/prefix fields of a Range or ClearRange request from QUERY
// ({ start, end, prefix }: Buffer, Uint8Array or string), leaving out
// those not given. Prefix together with start or end is the server's to
// refuse (INVALID_ARGUMENT).
function selector(query) {
  const fields = {};
  for (const name of ['start', 'end', 'prefix']) {
    if (query[name] !== undefined && query[name] !== null) fields[name] = asBytes(query[name], name);
  }
  return fields;
}

// The first key after every key that begins with PREFIX: PREFIX with its
// trailing 0xff bytes dropped and its last byte then incremented; an empty
// Buffer (no upper bound) when PREFIX is empty or all 0xff.
function prefixEnd(prefix) {
  const bytes = asBytes(prefix, 'prefix');
  let n = bytes.length;
  while (n > 0 && bytes[n - 1] === 0xff) n--;
  if (n === 0) return Buffer.alloc(0);
  const end = Buffer.from(bytes.subarray(0, n));
  end[n - 1] += 1;
  return end;
}

// One key with its revisions: { key, value, createRevision, modRevision,
// version, revision, ttlMs } (revision: the store's at the read; ttlMs: the
// milliseconds it has left, rounded up, 0 when it does not expire).
function entry(key, kv, revision) {
  return {
    key: buffer(key),
    value: buffer(kv.value),
    createRevision: num(kv.create_revision),
    modRevision: num(kv.mod_revision),
    version: num(kv.version),
    revision: num(revision),
    ttlMs: num(kv.ttl_ms),
  };
}

// A KeyValue message of a watch event as { key, value, createRevision,
// modRevision, version, ttlMs }.
function keyValue(kv) {
  return {
    key: buffer(kv.key),
    value: buffer(kv.value),
    createRevision: num(kv.create_revision),
    modRevision: num(kv.mod_revision),
    version: num(kv.version),
    ttlMs: num(kv.ttl_ms),
  };
}

const EVENT_TYPES = ['PUT', 'DELETE'];

// The events of a decoded WatchResponse as { type: 'PUT' | 'DELETE', kv,
// prevKv (null unless asked for and the key existed), expired, revision }.
function watchEvents(answer) {
  return (answer.events || []).map((e) => {
    const kv = keyValue(e.kv || {});
    return {
      type: EVENT_TYPES[e.type || 0] || e.type,
      kv,
      prevKv: e.prev_kv ? keyValue(e.prev_kv) : null,
      expired: Boolean(e.expired),
      revision: kv.modRevision,
    };
  });
}

// The expiry fields of a SetRequest from OPTIONS { ttlMs, keepTtl }: ttlMs
// absent, null or 0: the key does not expire. Both together are the
// server's to refuse (INVALID_ARGUMENT).
function setFields(options = {}) {
  const fields = {};
  if (options.ttlMs !== undefined && options.ttlMs !== null) fields.ttl_ms = checkUint(options.ttlMs, 'ttlMs');
  if (options.keepTtl) fields.keep_ttl = true;
  return fields;
}

// The fields of a WatchRequest from QUERY { key, end, prefix, startRevision,
// prevKv }: one key, [key, end) (end "\0": no upper bound) or a prefix;
// the server refuses other combinations (INVALID_ARGUMENT).
function watchFields(query = {}) {
  const fields = {};
  for (const name of ['key', 'end', 'prefix']) {
    if (query[name] !== undefined && query[name] !== null) fields[name] = asBytes(query[name], name);
  }
  if (query.startRevision !== undefined && query.startRevision !== null) {
    fields.start_revision = checkUint(query.startRevision, 'startRevision');
  }
  if (query.prevKv) fields.prev_kv = true;
  return fields;
}

// The entry of a GetResponse for KEY; inside a Txn, null for a missing key
// (found = false). Outside one a missing key is NOT_FOUND.
function entryOfGet(key, answer, inTxn = false) {
  if (inTxn && !answer.found) return null;
  return entry(key, answer, answer.revision);
}

// A RangeResponse as { entries, more, count, revision }.
function pageOf(answer) {
  return {
    entries: (answer.kvs || []).map((kv) => entry(kv.key, kv, answer.revision)),
    more: Boolean(answer.more),
    count: num(answer.count),
    revision: num(answer.revision),
  };
}

// The old value of a ClearResponse, null when the key was absent.
function clearedValue(answer) {
  return answer.found ? buffer(answer.value) : null;
}

// A TxnResponse as { succeeded, results, revision, response }; OPS are the
// TxnOps of the branch that ran (a Get's key is in its request).
function txnResult(answer, ops) {
  const results = (answer.results || []).map((result, i) => {
    if (result.get) return entryOfGet(ops[i] && ops[i].get ? ops[i].get.key : Buffer.alloc(0), result.get, true);
    if (result.set) return num(result.set.revision);
    if (result.clear) return clearedValue(result.clear);
    if (result.range) return pageOf(result.range);
    if (result.clear_range) return num(result.clear_range.deleted);
    return null;
  });
  return { succeeded: Boolean(answer.succeeded), results, revision: num(answer.revision), response: answer };
}

module.exports = {
  UINT32_MAX, asBytes, buffer, num, checkUint, selector, prefixEnd,
  entry, entryOfGet, pageOf, clearedValue, txnResult, keyValue, watchEvents, setFields, watchFields,
};
