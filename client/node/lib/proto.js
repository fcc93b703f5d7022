// lib/proto.js - loads kv.proto at run time with protobufjs and answers
// descriptor questions: the service, its methods, the envelopes, the status
// names. Holds no message definitions of its own: everything comes from the
// .proto file, so an rpc added there is callable with no change here.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const protobuf = require('protobufjs');

// The proto this module ships with, found from its own file, never from the
// cwd: a packed package carries a copy at proto/kvstore/v1/kv.proto (npm's
// prepack writes it from the repository's proto, postpack removes it); a
// source tree has only the original, client/node/lib -> proto/kvstore/v1.
const PACKED_PROTO_PATH = path.resolve(__dirname, '..', 'proto', 'kvstore', 'v1', 'kv.proto');
const SOURCE_PROTO_PATH = path.resolve(__dirname, '..', '..', '..', 'proto', 'kvstore', 'v1', 'kv.proto');
const DEFAULT_PROTO_PATH = fs.existsSync(PACKED_PROTO_PATH) ? PACKED_PROTO_PATH : SOURCE_PROTO_PATH;
const SERVICE = 'kvstore.v1.KV';

const cache = new Map();

// The .proto to load: the caller's choice, else $KVSTORE_PROTO, else the
// one this module ships with (DEFAULT_PROTO_PATH).
function protoPath(explicit) {
  return path.resolve(explicit || process.env.KVSTORE_PROTO || DEFAULT_PROTO_PATH);
}

// proto3 puts no empty bytes field on the wire, and protobufjs gives an
// absent one its shared default, an empty Array, where index.d.ts promises a
// Buffer. So every singular bytes field of ROOT's messages defaults to one
// empty Buffer, frozen as its prototype is shared. Fields with presence
// (proto3 `optional`, default null) keep their null.
const EMPTY_BYTES = Object.freeze(Buffer.alloc(0));

function emptyBytesAsBuffer(namespace) {
  for (const nested of namespace.nestedArray) {
    if (nested instanceof protobuf.Type) {
      for (const field of nested.fieldsArray) {
        if (field.bytes && !field.repeated && !field.map && Array.isArray(field.defaultValue)) {
          field.defaultValue = EMPTY_BYTES;
          nested.ctor.prototype[field.name] = EMPTY_BYTES;
        }
      }
    }
    if (nested.nestedArray) emptyBytesAsBuffer(nested);
  }
}

// Loads (once per file) and returns { path, root, service, methods,
// RpcRequest, RpcResponse, StatusCode, methodPath(m) }. Throws when the file
// is missing or does not define the kvstore.v1.KV service.
function loadProto(file) {
  const resolved = protoPath(file);
  let proto = cache.get(resolved);
  if (proto) return proto;
  const root = new protobuf.Root();
  try {
    root.loadSync(resolved, { keepCase: true });
  } catch (err) {
    throw new Error(`kvstore: cannot load ${resolved}: ${err.message} ` +
                    '(pass protoPath or set KVSTORE_PROTO to proto/kvstore/v1/kv.proto)');
  }
  root.resolveAll();
  emptyBytesAsBuffer(root);
  const service = root.lookupService(SERVICE);
  proto = {
    path: resolved,
    root,
    service,
    methods: service.methodsArray,
    RpcRequest: root.lookupType('kvstore.v1.RpcRequest'),
    RpcResponse: root.lookupType('kvstore.v1.RpcResponse'),
    StatusCode: root.lookupEnum('kvstore.v1.StatusCode'),
    methodPath: (method) => `/${service.fullName.replace(/^\./, '')}/${method.name}`,
  };
  cache.set(resolved, proto);
  return proto;
}

module.exports = { loadProto, protoPath, DEFAULT_PROTO_PATH, PACKED_PROTO_PATH, SOURCE_PROTO_PATH, SERVICE };
