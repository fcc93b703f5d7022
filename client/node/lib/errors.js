// lib/errors.js - the error a failed call rejects with: the gRPC status
// code's number and name plus the server's message. The client makes
// DEADLINE_EXCEEDED for its own timeouts and UNAVAILABLE for a refused or
// lost connection, as gRPC does.
'use strict';

class RpcError extends Error {
  // CODE: status number; CODE_NAME: its gRPC name; DETAILS: the server's
  // message ("key not found"); METHOD: the call's path, when known.
  constructor(code, codeName, details, method) {
    super(`${method ? method + ': ' : ''}${codeName} (${code}): ${details}`);
    this.name = 'RpcError';
    this.code = code;
    this.codeName = codeName;
    this.details = details;
    this.method = method || null;
  }
}

// NOT_FOUND: Get of a key that is not there.
class KeyNotFoundError extends RpcError {
  constructor(...args) {
    super(...args);
    this.name = 'KeyNotFoundError';
  }
}

// FAILED_PRECONDITION: a conditional write (cas(), clear() with
// ifModRevision, a Set or Clear with if_mod_revision) refused because the
// key's mod_revision was not the one given; nothing changed. The details
// say the key's current mod_revision.
class FailedPreconditionError extends RpcError {
  constructor(...args) {
    super(...args);
    this.name = 'FailedPreconditionError';
  }
}

// The server ended a watch (its stream's last frame said canceled): what
// the watch's iteration throws once the events before it are read, and its
// 'error' event. cancelReason: the server's words; compactRevision: in the
// compacted case (a startRevision older than the history the server keeps)
// the oldest revision a watch may start from now, else 0. Not an RpcError:
// every call succeeded, the stream was ended.
class WatchCanceledError extends Error {
  constructor(watchId, cancelReason, compactRevision) {
    super(`watch ${watchId} canceled by the server: ${cancelReason || 'no reason given'}${
      compactRevision ? ` (compacted: the oldest revision available is ${compactRevision})` : ''}`);
    this.name = 'WatchCanceledError';
    this.watchId = watchId;
    this.cancelReason = cancelReason || '';
    this.compactRevision = compactRevision || 0;
    this.compacted = this.compactRevision > 0;
  }
}

const CLASSES = { NOT_FOUND: KeyNotFoundError, FAILED_PRECONDITION: FailedPreconditionError };

// Builds the error for status CODE, naming it from the proto's StatusCode
// enum (a protobufjs Enum).
function makeError(statusEnum, code, details, method) {
  const codeName = statusEnum.valuesById[code] || `CODE_${code}`;
  const Cls = CLASSES[codeName] || RpcError;
  return new Cls(code, codeName, details || '', method);
}

// Same, from the code's name ("UNAVAILABLE").
function makeErrorNamed(statusEnum, codeName, details, method) {
  return makeError(statusEnum, statusEnum.values[codeName], details, method);
}

module.exports = {
  RpcError, KeyNotFoundError, FailedPreconditionError, WatchCanceledError, makeError, makeErrorNamed,
};
