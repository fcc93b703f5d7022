// lib/proto.js - loads kv.proto at run time with protobufjs and answers
// descriptor questions: the service, its methods, the envelopes, the status
// names. Holds no message definitions of its own: everything comes from the
// .proto file, so an rpc added there is callable with no change here.
'use strict';

const path = require('node:path');
const protobuf = require('protobufjs');

// The proto of this source tree: client/node/lib -> proto/kvstore/v1/kv.proto.
const DEFAULT_PROTO_PATH = path.resolve(__dirname, '..', '..', '..', 'proto', 'kvstore', 'v1', 'kv.proto');
const SERVICE = 'kvstore.v1.KV';

const cache = new Map();

// The .proto to load: the caller's choice, else $KVSTORE_PROTO, else the
// one in this source tree.
function protoPath(explicit) {
  return path.resolve(explicit || process.env.KVSTORE_PROTO || DEFAULT_PROTO_PATH);
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

module.exports = { loadProto, protoPath, DEFAULT_PROTO_PATH, SERVICE };
