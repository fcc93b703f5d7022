"""test_faults - the short run of the Jepsen-style fault test (issue 15):
a 3-node cluster in a network namespace of its own, five clients running
random Get/Set/conditional Set/Txn/Clear for about a minute while a nemesis
kills (-9) and restarts nodes, pauses them and partitions them; then every
fault healed, the history must be linearizable per key (no acknowledged
write lost, no stale read), every node must converge to the same data, and
no node may have exited by itself (tests/support/faults.py says how).

Root only: it re-runs itself under `unshare -n` and cuts the network with
nftables; it SKIPs (77) when it cannot. The seed comes from
$KV_FAULTS_SEED (default: a new one, printed); $KV_FAULTS_SECONDS sets the
time under faults (60). On a failure it prints the seed, the faults, the
checker's explanation, the nodes' logs, and where the history was saved
for `/usr/bin/python3 tests/support/linearize.py HISTORY`. scripts/faults
runs the same test for longer.
"""

import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
import netfault  # noqa: E402
from kvstored import server_binary  # noqa: E402

SKIP = 77


def cluster_unsupported():
    """Why the kvstored under test cannot run a cluster, else None."""
    try:
        r = subprocess.run([server_binary(), "--help"], capture_output=True, text=True,
                           timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "kvstored --help: %s" % e
    if "--cluster-dir" not in r.stdout:
        return "this kvstored has no --cluster-dir (built without cluster support)"
    return None


def main():
    why = netfault.unavailable() or cluster_unsupported()
    if why:
        print("SKIP: the fault test cannot run here: %s" % why)
        return SKIP
    netfault.enter_netns()              # outside: re-runs this, exits with its status
    import faults                       # after the re-run: only the inner run needs it
    seed = int(os.environ.get("KV_FAULTS_SEED") or random.SystemRandom().getrandbits(31))
    seconds = float(os.environ.get("KV_FAULTS_SECONDS") or 60)
    print("test_faults: seed %d (KV_FAULTS_SEED=%d to repeat the schedule)" % (seed, seed),
          flush=True)
    outcome = faults.run(seed, seconds, partitioner_factory=netfault.Partitioner)
    print(outcome.summary())
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
