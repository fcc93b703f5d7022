"""tlscerts - the throwaway certificates of the TLS tests, made with the
`openssl` command at test time (Debian's openssl package): Certs() makes a
CA, server and client certificates signed by it, expired ones, and a second
CA with a client of its own, in a directory; NAME.crt and NAME.key there.

Python suites: `from tlscerts import Certs` (tests/support is on their
path). Others (the Node client's tests): `python3 tlscerts.py DIR` makes
the same files in DIR.
"""

import os
import ssl
import subprocess
import sys
import tempfile


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", name + ".key", "-out", name + ".crt", "-days", "2",
            "-subj", "/CN=kvstore test " + name, cwd=d)


def make_cert(d, name, ca, extensions):
    """NAME.key and NAME.crt signed by CA, with EXTENSIONS (x509v3 lines)."""
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(extensions + "\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=kvstore test " + name,
            cwd=d)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext",
            cwd=d)


# `openssl x509 -req` cannot date a certificate in the past; `openssl ca`
# can, with a database of its own.
CA_CONFIG = """[ca]
default_ca = test_ca
[test_ca]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = copy
[any]
commonName = supplied
"""


def make_expired_cert(d, name, ca, extensions):
    """NAME.key and NAME.crt signed by CA, valid only on 1 January 2020."""
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write(CA_CONFIG)
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("1000\n")
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(extensions + "\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=kvstore test " + name,
            cwd=d)
    openssl("ca", "-batch", "-config", "ca.cnf", "-cert", ca + ".crt", "-keyfile", ca + ".key",
            "-in", name + ".csr", "-out", name + ".crt", "-notext", "-extfile", name + ".ext",
            "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", cwd=d)


class Certs:
    """The throwaway PKI of this run, in DIR (DIRECTORY, or a new temporary
    one; the caller removes it): ca, server and renewed-server (for
    127.0.0.1 and localhost), elsewhere-server (for elsewhere.example
    only), client, and expired-client and expired-server (valid in 2020
    only), signed by ca; other-ca, and other-client signed by it."""

    def __init__(self, directory=None):
        self.dir = directory or tempfile.mkdtemp(prefix="kvstored-tls.")
        make_ca(self.dir, "ca")
        make_ca(self.dir, "other-ca")
        for name in ("server", "renewed-server"):
            make_cert(self.dir, name, "ca",
                      "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")
        make_cert(self.dir, "elsewhere-server", "ca",
                  "subjectAltName=DNS:elsewhere.example\nextendedKeyUsage=serverAuth")
        make_cert(self.dir, "client", "ca", "extendedKeyUsage=clientAuth")
        make_cert(self.dir, "other-client", "other-ca", "extendedKeyUsage=clientAuth")
        make_expired_cert(self.dir, "expired-client", "ca", "extendedKeyUsage=clientAuth")
        make_expired_cert(self.dir, "expired-server", "ca",
                          "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")

    def path(self, name):
        return os.path.join(self.dir, name)

    def server_args(self, client_ca=False):
        args = ["--tls-cert", self.path("server.crt"), "--tls-key", self.path("server.key")]
        if client_ca:
            args += ["--tls-client-ca", self.path("ca.crt")]
        return args

    def client_context(self, ca="ca", cert=None):
        """A client context trusting CA's certificate, presenting CERT's."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.path(ca + ".crt"))
        if cert:
            ctx.load_cert_chain(self.path(cert + ".crt"), self.path(cert + ".key"))
        return ctx


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tlscerts.py DIR (an existing directory to fill)")
    Certs(sys.argv[1])
