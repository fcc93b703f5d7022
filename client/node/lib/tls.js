// lib/tls.js - a client's TLS: connect()'s `tls` option made into the
// tls.connect options every connection of the client uses (reconnects and
// other nodes of a cluster included), and what a TLS failure says. It
// owns no socket: lib/connection.js connects with these.
'use strict';

const tls = require('node:tls');

// The tls.connect options OPTION asks for, or null for plaintext. OPTION:
// undefined, null or false (plaintext), true (the system's CAs, the
// certificate and host name checked), or tls.ConnectionOptions (ca, cert,
// key, servername, rejectUnauthorized, ...). Throws a TypeError for
// anything else, and for host, port, path or socket, which are the
// endpoint's.
function tlsOptions(option) {
  if (option === undefined || option === null || option === false) return null;
  if (option === true) return {};
  if (typeof option !== 'object' || Array.isArray(option)) {
    throw new TypeError(`the tls option must be true or tls.ConnectionOptions, not ${typeof option}`);
  }
  for (const name of ['host', 'port', 'path', 'socket']) {
    if (option[name] !== undefined) throw new TypeError(`tls.${name}: the endpoint says where to connect`);
  }
  return { ...option };
}

// A TLS socket connecting to HOST:PORT with OPTIONS (from tlsOptions()).
// The certificate must name OPTIONS.servername, else HOST (an IP address
// is checked against the certificate's). Emits 'connect' once TCP is up,
// 'secureConnect' once the handshake is done, 'error' otherwise.
function connectTls(host, port, options) {
  return tls.connect({ ...options, host, port });
}

// What went wrong in ERR, an error of a TLS socket, in a few words:
// OpenSSL's reason ("tlsv13 alert certificate required") rather than its
// whole error string, with Node's code for a certificate refused.
function describe(err) {
  if (err.library && err.reason) return err.reason;
  if (err.code && !err.code.startsWith('E')) return `${err.message} (${err.code})`;
  return err.message;
}

// Whether ERR, an error of a TLS socket, is a fatal alert from the
// server: it refused this client (its certificate, or the lack of one)
// and would refuse a new connection too, so calls are not retried.
function refused(err) {
  return /^ERR_SSL_(SSLV3|TLSV1|TLSV13)_ALERT_/.test(err.code || '');
}

module.exports = { tlsOptions, connectTls, describe, refused };
