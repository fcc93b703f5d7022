"""netfault - network partitions for the cluster fault tests: a private
network namespace to run in, and nftables rules that cut chosen kvstored
nodes off from each other.

It owns the namespace and the rules; it starts no server (cluster.py does)
and decides no schedule (faults.py does). Root only; stdlib only.

Why the rules match the sending node by group id. Inside the namespace the
nodes listen on distinct loopback addresses, but libraft 0.15 does not bind
its outgoing connections, so every connection between nodes (and every
client's) leaves from 127.0.0.1 whichever process opened it: a source
address says nothing. Each node therefore runs with a group id of its own
(cluster.py), and a rule drops what a node's sockets send to another
node's address: `meta skgid GID_A ip daddr HOST_B drop`, and the mirror
rule. libraft sends each direction's messages on the connection the sender
opened, so the two rules cut both directions. No node may listen on
127.0.0.1 itself (cluster.py uses 127.0.0.11, .12, ...): the answers a node
sends on the connections it accepted go to 127.0.0.1, and must pass, or
cutting node A off would also cut every client and node from B's answers.
The test's clients run as root's group and reach every node, as Jepsen's
clients do.

    from netfault import unavailable, enter_netns, Partitioner
    why = unavailable()                 # None, or why a test must SKIP
    enter_netns()                       # re-runs this program in a new
                                        # namespace, exits with its status
    p = Partitioner({1: (4001, "127.0.0.11"), 2: (4002, "127.0.0.12")})
    p.block([(1, 2)])                   # 1 and 2 cannot reach each other
    p.heal()
"""

import os
import shutil
import subprocess
import sys

# Set in the environment of the program re-run inside the namespace.
NETNS_ENV = "KV_FAULTS_NETNS"
TABLE = "kvstore_faults"
TOOL_TIMEOUT = 10.0


def _run(argv, stdin=None):
    """Runs ARGV (bounded); returns (exit status, stderr text)."""
    try:
        r = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                           timeout=TOOL_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 127, str(e)
    return r.returncode, r.stderr.strip()


def unavailable():
    """None when partitions can be made here, else the reason, a sentence
    for a SKIP: not root, a tool missing (unshare from util-linux, ip from
    iproute2, nft from nftables), or no right to make a namespace."""
    if os.geteuid() != 0:
        return "not root: network namespaces and nftables rules need root"
    for tool, package in (("unshare", "util-linux"), ("ip", "iproute2"), ("nft", "nftables")):
        if not shutil.which(tool):
            return "%s not found (Debian package %s; scripts/install-deps)" % (tool, package)
    if os.environ.get(NETNS_ENV) == "1":
        return None
    status, err = _run(["unshare", "-n", "nft", "list", "ruleset"])
    if status != 0:
        return "cannot make a network namespace with nftables in it (unshare -n: %s)" % err
    return None


def in_netns():
    """True in the program enter_netns() re-ran inside its namespace."""
    return os.environ.get(NETNS_ENV) == "1"


def enter_netns(argv=None):
    """Outside the namespace: runs ARGV (default: this Python program with
    its arguments) again under `unshare -n`, marked by NETNS_ENV, and exits
    with its status; its output is ours. Inside: brings the loopback up and
    returns. Call unavailable() first."""
    if in_netns():
        status, err = _run(["ip", "link", "set", "lo", "up"])
        if status != 0:
            raise RuntimeError("ip link set lo up: %s" % err)
        return
    argv = argv or [sys.executable, *sys.argv]
    env = dict(os.environ, **{NETNS_ENV: "1"})
    sys.stdout.flush()
    sys.stderr.flush()
    # No timeout here: the program run is the test, and bounds itself.
    status = subprocess.run(["unshare", "-n", "--", *argv], env=env).returncode
    sys.exit(status if status >= 0 else 128 - status)


class Partitioner:
    """The nftables table that cuts nodes apart, in this namespace. NODES:
    node id -> (group id its process runs with, its host address). The
    table is replaced whole on every change (one nft transaction), and
    removed by heal() and close()."""

    def __init__(self, nodes):
        if not in_netns():
            raise RuntimeError("partitions are only made inside enter_netns()'s namespace")
        self.nodes = dict(nodes)
        self.blocked = frozenset()      # frozensets {a, b} of node ids cut apart

    def block(self, pairs):
        """Cuts every pair (a, b) of PAIRS apart, both directions, in place
        of what was cut before (an empty PAIRS heals)."""
        blocked = frozenset(frozenset(p) for p in pairs)
        for p in blocked:
            if len(p) != 2 or not p <= self.nodes.keys():
                raise ValueError("not a pair of known nodes: %r" % (sorted(p),))
            if any(self.nodes[i][1] == "127.0.0.1" for i in p):
                raise ValueError("a node on 127.0.0.1 cannot be cut off: every connection "
                                 "comes from there")
        rules = []
        for pair in sorted(blocked, key=sorted):
            a, b = sorted(pair)
            for src, dst in ((a, b), (b, a)):
                rules.append("    meta skgid %d ip daddr %s drop"
                             % (self.nodes[src][0], self.nodes[dst][1]))
        # Declaring the table first makes the delete valid when it is absent.
        script = "table inet %s\ndelete table inet %s\n" % (TABLE, TABLE)
        if rules:
            script += ("table inet %s {\n  chain out {\n"
                       "    type filter hook output priority 0; policy accept;\n%s\n  }\n}\n"
                       % (TABLE, "\n".join(rules)))
        status, err = _run(["nft", "-f", "-"], stdin=script)
        if status != 0:
            raise RuntimeError("nft refused the partition rules: %s\n%s" % (err, script))
        self.blocked = blocked

    def partition(self, *groups):
        """Cuts the nodes of each of GROUPS (lists of ids) off from those of
        the others; nodes in no group keep reaching everyone (a bridge)."""
        pairs = [(a, b) for i, ga in enumerate(groups) for gb in groups[i + 1:]
                 for a in ga for b in gb]
        self.block(pairs)

    def heal(self):
        """Removes every rule: all nodes reach each other again."""
        self.block([])

    close = heal
