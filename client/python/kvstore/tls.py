"""kvstore.tls - a client's TLS: the ssl.SSLContext its connections use, the
name their server's certificate must show, and the handshake's failures
as RpcErrors.

It owns no socket: kvstore.connection wraps a connected one here (the
blocking clients), kvstore.aio hands the context to asyncio. Every
connection of a client, reconnects and other nodes of a cluster included,
uses the same Tls.
"""

import ssl

from .errors import error_for, status_code


def tls_context(cafile=None, certfile=None, keyfile=None, *, capath=None, cadata=None):
    """An ssl.SSLContext for Client(ssl=...): ssl.create_default_context()
    (certificate and host name checked, TLS 1.2 at least) trusting CAFILE /
    CAPATH / CADATA (none of them: the system's CAs), presenting the client
    certificate CERTFILE with its key KEYFILE (None: the key is in
    CERTFILE) when given, for a server started with --tls-client-ca.
    Raises what the ssl module raises for a file it cannot load
    (FileNotFoundError, ssl.SSLError), ValueError for a KEYFILE without
    CERTFILE."""
    context = ssl.create_default_context(cafile=cafile, capath=capath, cadata=cadata)
    if certfile is not None:
        context.load_cert_chain(certfile, keyfile)
    elif keyfile is not None:
        raise ValueError("keyfile without certfile")
    return context


class Tls:
    """The TLS of a client's connections: CONTEXT (an ssl.SSLContext) and
    SERVER_HOSTNAME, the name the server's certificate must show (None:
    the host of each endpoint connected to, an IP address included)."""

    __slots__ = ("context", "server_hostname")

    def __init__(self, context, server_hostname=None):
        self.context = context
        self.server_hostname = server_hostname

    def hostname(self, host):
        """The name checked against the certificate of HOST's server."""
        return self.server_hostname or host

    def wrap(self, sock, host, where):
        """SOCK (connected to HOST, the endpoint WHERE; blocking, with its
        timeout) after a TLS handshake, as an ssl.SSLSocket. Raises
        failure()'s RpcError when the handshake fails; SOCK is closed then."""
        try:
            return self.context.wrap_socket(sock, server_hostname=self.hostname(host))
        except OSError as exc:          # ssl.SSLError, a timeout, a reset
            sock.close()
            raise self.failure(exc, where) from exc

    def failure(self, exc, where):
        """The RpcError of a handshake with WHERE that ended with EXC:
        DeadlineExceeded when it took too long, else Unavailable saying why
        ("certificate verify failed: Hostname mismatch, ..."). The ssl
        error is its __cause__ when raised with `from`."""
        if isinstance(exc, TimeoutError):
            return error_for(status_code("DEADLINE_EXCEEDED"),
                             "TLS handshake with %s not done in time" % where)
        return error_for(status_code("UNAVAILABLE"),
                         "TLS handshake with %s failed: %s" % (where, describe(exc)))


# OpenSSL's reasons for a fatal alert the peer sent.
_ALERTS = ("SSLV3_ALERT_", "TLSV1_ALERT_", "TLSV13_ALERT_")


def refused(exc):
    """Whether EXC, raised by a TLS connection, is a fatal alert from the
    server: it refused this client (its certificate, or the lack of one)
    and would refuse a new connection too, so calls are not retried."""
    return isinstance(exc, ssl.SSLError) and (exc.reason or "").startswith(_ALERTS)


def describe(exc):
    """What went wrong in EXC, an exception of the ssl module or the socket,
    in a few words: OpenSSL's reason without the file and line of _ssl.c."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "certificate verify failed: %s" % exc.verify_message
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.lower().replace("_", " ")
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def tls_of(context, server_hostname):
    """The Tls a client's ssl= and server_hostname= arguments ask for, or
    None for plaintext. CONTEXT: None or False (plaintext), True (the
    system's CAs: tls_context()) or an ssl.SSLContext. Raises TypeError for
    another CONTEXT, ValueError for a SERVER_HOSTNAME without one."""
    if context is None or context is False:
        if server_hostname is not None:
            raise ValueError("server_hostname is only meaningful with ssl")
        return None
    if context is True:
        context = tls_context()
    if not isinstance(context, ssl.SSLContext):
        raise TypeError("ssl must be an ssl.SSLContext, True or None, not %s"
                        % type(context).__name__)
    return Tls(context, server_hostname)
