"""test_tls_cluster - a cluster whose members serve TLS on their client
ports (--tls-cert, --tls-key, --tls-client-ca, --tls-peer-ca): the calls a
member makes to another's client port (a new node's --join, a member
telling the leader its client address) speak TLS with the member's own
certificate, checked by the callee like any client's, and the callee's
checked against --tls-peer-ca (else --tls-client-ca). The raft traffic
stays plaintext (libraft's transport has no TLS; README says so).

- three members with mutual TLS elect a leader and replicate a write made
  over TLS; kvctl pointed at a follower follows it to the leader over TLS;
  a fourth joins through a follower over TLS and becomes a voter
  listed at its client address;
- a node whose certificate another CA signed cannot join: the member
  refuses it, and the joiner logs why, never joining;
- without mutual TLS, --tls-peer-ca is what lets a joiner trust the
  members; a joiner trusting another CA logs "certificate verify failed"
  and does not join;
- with --auth-token-file too, the members' calls Auth first with the
  shared token;
- --tls-peer-ca is refused outside a cluster and without --tls-cert.

Certificates are made at test time with the `openssl` command (tlscerts'
helpers). Every wait is bounded.
"""

import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

from kvstore import pb
from kvstored import refused
from cluster import Cluster, call
from tlscerts import make_ca, make_cert

DEADLINE = 60.0
KVCTL = os.environ.get("KVCTL", "")
# A member's certificate: it serves with it and presents it when it calls
# another member, so it is valid for both.
MEMBER_EXT = ("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
              "extendedKeyUsage=serverAuth,clientAuth")

CERTS = None


def setUpModule():
    global CERTS
    if not shutil.which("openssl"):
        raise unittest.SkipTest("no openssl command (Debian's openssl package)")
    CERTS = tempfile.mkdtemp(prefix="kvstored-tls-cluster.")
    make_ca(CERTS, "ca")
    make_ca(CERTS, "other-ca")
    make_cert(CERTS, "member", "ca", MEMBER_EXT)
    make_cert(CERTS, "stranger", "other-ca", MEMBER_EXT)


def tearDownModule():
    if CERTS:
        shutil.rmtree(CERTS, ignore_errors=True)


def path(name):
    return os.path.join(CERTS, name)


def tls_args(cert="member", client_ca=None, peer_ca=None):
    args = ["--tls-cert", path(cert + ".crt"), "--tls-key", path(cert + ".key")]
    if client_ca:
        args += ["--tls-client-ca", path(client_ca + ".crt")]
    if peer_ca:
        args += ["--tls-peer-ca", path(peer_ca + ".crt")]
    return args


def client_context(cert=None):
    """The test's own context: trusts ca, presents CERT when given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(path("ca.crt"))
    if cert:
        ctx.load_cert_chain(path(cert + ".crt"), path(cert + ".key"))
    return ctx


def wait_for(what, predicate, timeout=DEADLINE):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError("%s: not within %gs" % (what, timeout))
        time.sleep(0.05)


class TlsClusterTest(unittest.TestCase):
    TLS = {}            # every member's TLS flags: tls_args(**TLS)
    CONTEXT_CERT = None
    TOKEN = None        # with one, every member has --auth-token-file

    def setUp(self):
        self.ctx = client_context(self.CONTEXT_CERT)
        args = tls_args(**self.TLS)
        if self.TOKEN:
            token_file = path("token")
            with open(token_file, "wb") as f:
                f.write(self.TOKEN + b"\n")
            os.chmod(token_file, 0o600)
            args += ["--auth-token-file", token_file]
        self.c = Cluster(3, args=args, ssl_context=self.ctx, token=self.TOKEN)
        self.addCleanup(self.close)
        self.leader = self.c.start()

    def close(self):
        failed = any(e for _, e in getattr(self._outcome, "errors", []) if e)
        if failed:
            sys.stderr.write(self.c.logs())
        self.c.close()

    def rpc(self, node, method, request, response_type):
        resp, body = call(node.endpoint, method, request, response_type, timeout=10.0,
                          **self.c.call_opts)
        self.assertEqual(resp.code, pb.OK, resp.message)
        return body

    def members(self, node):
        return {m.id: m for m in self.rpc(node, "ClusterStatus", pb.ClusterStatusRequest(),
                                          pb.ClusterStatusResponse).members}

    def follower(self):
        return next(nd for nd in self.c.running() if nd.id != self.leader.id)

    def wait_voter(self, new):
        def voter():
            m = self.members(self.leader).get(new.id)
            return m is not None and m.role == "voter" and m.client_address == new.endpoint
        wait_for("node %d listed as a voter at %s" % (new.id, new.endpoint), voter)

    def wait_log(self, node, text):
        wait_for("node %d's log to say %r" % (node.id, text), lambda: text in node.log_text())


class TestMutualTls(TlsClusterTest):
    TLS = {"client_ca": "ca"}
    CONTEXT_CERT = "member"

    def test_members_replicate_and_a_node_joins_over_tls(self):
        # Each follower tells the leader its client address (MemberAdd
        # over TLS): the leader lists all three.
        self.wait_client_addresses()
        self.rpc(self.leader, "Set", pb.SetRequest(key=b"tls/k", value=b"v1"), pb.SetResponse)
        f = self.follower()
        wait_for("the write on node %d" % f.id, lambda: self.serializable_get(f) == b"v1")

        new = self.c.add_node(join=f.endpoint)
        new.start()
        self.wait_voter(new)
        # Its MemberAdd's answer may come after the leader lists it.
        self.wait_log(new, "cluster: joined through")
        wait_for("the write on the new node", lambda: self.serializable_get(new) == b"v1")

    def test_kvctl_follows_the_leader_over_tls(self):
        # A follower answers the write with the leader's client address;
        # kvctl (the C library) connects there with the same TLS settings.
        self.wait_client_addresses()
        r = subprocess.run([KVCTL, "-e", self.follower().endpoint, "--cacert", path("ca.crt"),
                            "--cert", path("member.crt"), "--key", path("member.key"),
                            *(["--token-file", path("token")] if self.TOKEN else []),
                            "set", "tls/kvctl", "moved"],
                           capture_output=True, timeout=DEADLINE)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"OK\n", b""))
        got = self.rpc(self.leader, "Get", pb.GetRequest(key=b"tls/kvctl"), pb.GetResponse)
        self.assertEqual(got.value, b"moved")

    def wait_client_addresses(self):
        wait_for("the leader to know every client address",
                 lambda: {m.id: m.client_address for m in self.members(self.leader).values()}
                 == {nd.id: nd.endpoint for nd in self.c.nodes.values()})

    def serializable_get(self, node):
        resp, body = call(node.endpoint, "Get", pb.GetRequest(key=b"tls/k", serializable=True),
                          pb.GetResponse, timeout=10.0, **self.c.call_opts)
        return body.value if resp.code == pb.OK else None

    def test_a_node_with_another_cas_certificate_cannot_join(self):
        new = self.c.add_node(join=self.follower().endpoint)
        new.args = tls_args("stranger", client_ca="other-ca", peer_ca="ca")
        new.start()
        # Its certificate is refused by the member it calls (the member
        # logs the refusal at debug only: the joiner's log says it).
        self.wait_log(new, "cluster: calling %s: TLS" % self.follower().endpoint)
        self.assertNotIn(new.id, self.members(self.leader))
        self.assertNotIn("joined through", new.log_text())


class TestMutualTlsAndToken(TestMutualTls):
    """Certificates and a token: the members' own calls Auth first (they
    never did: with --auth-token-file a follower's MemberAdd was refused
    with UNAUTHENTICATED every 2 s, and no node could --join)."""
    TOKEN = b"the members' shared token"

    test_a_node_with_another_cas_certificate_cannot_join = None

    def test_members_replicate_and_a_node_joins_over_tls(self):
        super().test_members_replicate_and_a_node_joins_over_tls()
        for nd in self.c.nodes.values():
            self.assertNotIn("Auth", nd.log_text())
            self.assertNotIn("refused", nd.log_text())


class TestServerTlsOnly(TlsClusterTest):
    """No client certificates asked for: a joiner trusts the members
    through --tls-peer-ca."""
    TLS = {"peer_ca": "ca"}

    def test_a_node_joins_trusting_the_peer_ca(self):
        new = self.c.add_node(join=self.follower().endpoint)
        new.start()
        self.wait_voter(new)

    def test_a_joiner_trusting_another_ca_refuses_the_member(self):
        f = self.follower()
        new = self.c.add_node(join=f.endpoint)
        new.args = tls_args(peer_ca="other-ca")   # given last, it wins
        new.start()
        self.wait_log(new, "certificate verify failed")
        self.assertNotIn(new.id, self.members(self.leader))


class TestFlags(unittest.TestCase):
    def test_peer_ca_is_for_a_cluster_member_with_a_certificate(self):
        r = refused(*tls_args(peer_ca="ca"))
        self.assertEqual(r.status, 2, r.stderr)
        self.assertIn("--tls-peer-ca is for a cluster member", r.stderr)
        d = tempfile.mkdtemp(prefix="kvstored-tls-cluster.")
        self.addCleanup(shutil.rmtree, d, True)
        r = refused("--tls-peer-ca", path("ca.crt"), "--node-id", "1", "--cluster-dir", d,
                    "--raft-listen", "127.0.0.1:1")
        self.assertEqual(r.status, 2, r.stderr)
        self.assertIn("--tls-peer-ca needs --tls-cert and --tls-key", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
