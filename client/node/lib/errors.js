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

module.exports = { RpcError, KeyNotFoundError, FailedPreconditionError, makeError, makeErrorNamed };
