// index.js - the public surface of the kvstore Node.js client; the code
// lives in lib/ (client, connection, framing, proto, errors).
'use strict';

const { Client, connect, DEFAULT_TIMEOUT } = require('./lib/client');
const { RpcError, KeyNotFoundError } = require('./lib/errors');
const { loadProto, DEFAULT_PROTO_PATH } = require('./lib/proto');
const { parseEndpoint } = require('./lib/connection');

module.exports = {
  connect, Client, RpcError, KeyNotFoundError, loadProto, parseEndpoint,
  DEFAULT_PROTO_PATH, DEFAULT_TIMEOUT,
};
