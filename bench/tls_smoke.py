#!/usr/bin/python3
"""kvbench over TLS (--tls, --cacert, --cert, --key, --insecure): short runs
against kvstored --tls-cert/--tls-key whose every request the server's
Stats (read over TLS) must count, with values spread over many records and
with --threads; a client certificate against --tls-client-ca; a server it
does not trust, a certificate naming another host, and a plaintext kvbench
on the TLS port each fail with a reason, never hang; --protocol resp
against redis-server --tls-port when installed (skipped with a message
when not); the flags that go together. Never asserts on speed.

The certificates are made with the `openssl` command by tests/support/tlscerts.py's
helpers. Usage: tls_smoke.py KVSTORED KVBENCH, with tests/, tests/support
and the Python client on PYTHONPATH."""
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from kvstore import pb
from kvstored import Server
from smoke import free_port
from test_tls import call, tls_connect
from tlscerts import make_ca, make_cert

SERVER_EXT = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"


def kvbench(binary, args, status=0, says=None):
    """Runs kvbench with ARGS; exits the test unless it exits STATUS (and
    its stderr contains SAYS). Returns its stdout."""
    cmd = [binary] + args
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    sys.stdout.write("$ %s\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
    if r.returncode != status:
        sys.exit("kvbench exited %d, not %d" % (r.returncode, status))
    if says and says not in r.stderr:
        sys.exit("kvbench did not say %r" % says)
    if "stats check" in r.stderr:
        sys.exit("kvbench checked Stats through a plaintext client on a TLS port")
    return r.stdout


def calls(server, d):
    """The server's answered calls per method, from Stats asked over TLS."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(d, "ca.crt"))
    ctx.load_cert_chain(os.path.join(d, "client.crt"), os.path.join(d, "client.key"))
    c = tls_connect(server, ctx)
    try:
        st = call(c, "Stats", pb.StatsRequest(), pb.StatsResponse)
    finally:
        c.close()
    return {m.method.rsplit("/", 1)[-1]: m.calls for m in st.methods}


def counted(binary, server, d, args, expect):
    """kvbench ARGS against SERVER; the server must count EXPECT more calls
    of each method named (Stats' names), besides the loading Sets."""
    before = calls(server, d)
    kvbench(binary, args)
    after = calls(server, d)
    for method, n in expect.items():
        if after.get(method, 0) - before.get(method, 0) != n:
            sys.exit("the server counted %d %s calls, not %d"
                     % (after.get(method, 0) - before.get(method, 0), method, n))


def kvstored_runs(kvstored, binary, d):
    tls = ["--tls", "--cacert", os.path.join(d, "ca.crt")]
    server = Server("--tls-cert", os.path.join(d, "server.crt"),
                    "--tls-key", os.path.join(d, "server.key"), binary=kvstored,
                    engine_from_env=False)
    try:
        port = ["-p", str(server.port)]
        counted(binary, server, d, port + tls + ["-n", "2000", "-c", "4", "-P", "4",
                                                 "-t", "ping,clear", "-r", "500"],
                {"Ping": 2000, "Clear": 2000})
        # Sets and Gets of 10 KB values, 40 a batch: each batch and its
        # answers cross many TLS records and partial writes. Every Get's
        # value is checked by kvbench; the loading Sets come first.
        counted(binary, server, d, port + tls + ["-n", "400", "-c", "2", "-P", "40",
                                                 "-d", "10000", "-t", "get", "--csv"],
                {"Get": 400, "Set": 1})
        counted(binary, server, d, ["-h", "localhost"] + port + tls
                + ["-n", "1000", "-c", "4", "-P", "8", "--threads", "2", "-t", "set", "-q"],
                {"Set": 1000})
        # With --insecure nothing is verified: no CA needed.
        kvbench(binary, port + ["--tls", "--insecure", "-n", "100", "-c", "1", "-t", "set",
                                "-q"])
        # Refusals: a server signed by a CA kvbench does not trust; a
        # plaintext kvbench on a TLS port.
        kvbench(binary, port + ["--tls", "--cacert", os.path.join(d, "other-ca.crt"), "-n", "1",
                                "-c", "1", "-t", "set", "-q"], 1, "certificate verify failed")
        kvbench(binary, port + ["-n", "1", "-c", "1", "-t", "set", "-q", "--no-stats-check",
                                "--timeout", "5"], 1, "SET: stopped after 0 answers")
    finally:
        status = server.stop()
    if status != 0:
        sys.exit("kvstored exited %d after SIGTERM" % status)

    # A certificate for another host: refused, whether -h names the server
    # by address or by name.
    server = Server("--tls-cert", os.path.join(d, "elsewhere.crt"),
                    "--tls-key", os.path.join(d, "elsewhere.key"), binary=kvstored,
                    engine_from_env=False)
    try:
        for host, why in (("127.0.0.1", "IP address mismatch"), ("localhost", "hostname mismatch")):
            kvbench(binary, ["-h", host, "-p", str(server.port)] + tls
                    + ["-n", "1", "-c", "1", "-t", "set", "-q"], 1, why)
    finally:
        status = server.stop()
    if status != 0:
        sys.exit("kvstored exited %d after SIGTERM" % status)

    # Client certificates required: --cert and --key.
    server = Server("--tls-cert", os.path.join(d, "server.crt"),
                    "--tls-key", os.path.join(d, "server.key"),
                    "--tls-client-ca", os.path.join(d, "ca.crt"), binary=kvstored,
                    engine_from_env=False)
    try:
        counted(binary, server, d, ["-p", str(server.port)] + tls
                + ["--cert", os.path.join(d, "client.crt"), "--key", os.path.join(d, "client.key"),
                   "-n", "500", "-c", "2", "-P", "3", "-t", "set", "-q"], {"Set": 500})
    finally:
        status = server.stop()
    if status != 0:
        sys.exit("kvstored exited %d after SIGTERM" % status)


def resp_runs(binary, d):
    if not shutil.which("redis-server"):
        print("SKIP --protocol resp --tls: no redis-server installed")
        return
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
             "--tls-cert-file", os.path.join(d, "server.crt"),
             "--tls-key-file", os.path.join(d, "server.key"),
             "--tls-ca-cert-file", os.path.join(d, "ca.crt"), "--tls-auth-clients", "no",
             "--save", "", "--appendonly", "no", "--dir", d],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if ready(proc, port, d):
            break
        proc.kill()
        proc.wait()
    else:
        sys.exit("redis-server --tls-port did not start")
    try:
        kvbench(binary, ["-p", str(port), "--protocol", "resp", "--tls", "--cacert",
                         os.path.join(d, "ca.crt"), "-n", "2000", "-c", "4", "-P", "4",
                         "-t", "ping,set,get,clear", "-r", "500", "-q"])
        kvbench(binary, ["-p", str(port), "--protocol", "resp", "--tls", "--cacert",
                         os.path.join(d, "ca.crt"), "-n", "400", "-c", "2", "-P", "40",
                         "-d", "10000", "-t", "set,get", "-q"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def ready(proc, port, d):
    """Whether redis-server PROC answers PING over TLS on PORT within 10 s."""
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=1),
                                 server_hostname="localhost") as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def usage_errors(binary):
    for args in (["--cacert", "ca.crt"], ["--insecure"], ["--tls", "--cert", "c.crt"],
                 ["--tls", "--insecure", "--cacert", "ca.crt"],
                 ["--tls", "-t", "range", "-r", "10"]):
        r = subprocess.run([binary] + args, capture_output=True, text=True, timeout=30)
        sys.stdout.write("$ kvbench %s\n%s" % (" ".join(args), r.stderr))
        if r.returncode != 2:
            sys.exit("kvbench %s exited %d, not 2 (a usage error)"
                     % (" ".join(args), r.returncode))


def main():
    kvstored, binary = sys.argv[1], sys.argv[2]
    if not shutil.which("openssl"):
        print("SKIP: no openssl command (Debian's openssl package)")
        return
    d = tempfile.mkdtemp(prefix="kvbench-tls.")
    try:
        make_ca(d, "ca")
        make_ca(d, "other-ca")
        make_cert(d, "server", "ca", SERVER_EXT)
        make_cert(d, "elsewhere", "ca",
                  "subjectAltName=DNS:elsewhere.example\nextendedKeyUsage=serverAuth")
        make_cert(d, "client", "ca", "extendedKeyUsage=clientAuth")
        usage_errors(binary)
        kvstored_runs(kvstored, binary, d)
        resp_runs(binary, d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
