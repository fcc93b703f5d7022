// index.js - the public surface of the kvstore Node.js client; the code
// lives in lib/ (client, txn, watch, values, connection, framing, proto, errors).
'use strict';

const { Client, connect, DEFAULT_TIMEOUT } = require('./lib/client');
const { RpcError, KeyNotFoundError, FailedPreconditionError, WatchCanceledError } = require('./lib/errors');
const { Watch } = require('./lib/watch');
const { Txn, compare, op } = require('./lib/txn');
const { prefixEnd } = require('./lib/values');
const { loadProto, DEFAULT_PROTO_PATH } = require('./lib/proto');
const { parseEndpoint } = require('./lib/connection');

module.exports = {
  connect, Client, RpcError, KeyNotFoundError, FailedPreconditionError, WatchCanceledError, Watch,
  loadProto, parseEndpoint,
  Txn, compare, op, prefixEnd, DEFAULT_PROTO_PATH, DEFAULT_TIMEOUT,
};
