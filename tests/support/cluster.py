"""cluster - the one way Python tests start an N-node kvstored cluster
(issue 15): start, stop, kill -9, restart, pause, resume its nodes, and
wait until they agree on a leader that serves.

Each node is a kvstored.Server (so $KVSTORED and $KVSTORED_ENGINE apply)
with --node-id, --cluster-dir, --raft-listen and the same --initial-cluster
on every node; its ports are picked free once and kept across restarts, so
a node comes back at the addresses the others know. With distinct_hosts
node N listens on 127.0.0.(10 + N) (inside netfault's namespace, where
partitions can tell the nodes apart; never 127.0.0.1, where every
connection comes from: netfault.py says why), else every node is on
127.0.0.1. As root, node N runs with group id BASE_GID + N, which
netfault's rules match on.

Every incarnation's stderr goes to WORKDIR/nodeN.log; logs() gathers their
tails for a failure report. close() kills only the processes this cluster
started, and removes WORKDIR unless told to keep it (after a failure).
Every wait is bounded; stdlib and the generated messages only.

    from cluster import Cluster
    with Cluster(3) as c:
        leader = c.wait_for_leader()        # a Node; every running node agrees
        c.kill(leader.id); c.restart(leader.id)
        c.pause(2); c.resume(2)
"""

import os
import shutil
import signal
import socket
import tempfile
import time

from kvstore import pb
from kvstored import Server
from wire import Connection, WireError

BASE_GID = 4000
DISTINCT_HOST = "127.0.0.%d"   # node N's, with distinct_hosts: 10 + N
LEADER_TIMEOUT = 30.0       # generous: elections after faults, slow machines
CONVERGE_TIMEOUT = 60.0
STATUS_TIMEOUT = 1.0        # one ClusterStatus; a paused node never answers
POLL_STEP = 0.05
LOG_TAIL_LINES = 40
# A key no test writes: the linearizable Get that tells a leader serves.
PROBE_KEY = b"\x00cluster-probe"


def free_port(host):
    """A TCP port of HOST that nothing listens on now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def call(endpoint, method, request, response_type=None, timeout=STATUS_TIMEOUT,
         client_id=b"", seq=0, ssl_context=None, token=None):
    """One call on a fresh connection to ENDPOINT (over TLS with
    SSL_CONTEXT; after an Auth with TOKEN when given), with the envelope's
    CLIENT_ID and SEQ when given; returns (RpcResponse, the decoded payload
    when OK and RESPONSE_TYPE is given, else None). Raises OSError or
    WireError when no answer came within TIMEOUT."""
    conn = Connection(endpoint, timeout=timeout, ssl_context=ssl_context)
    try:
        if token is not None:
            conn.send("Auth", pb.AuthRequest(token=token))
        rid = conn.send(method, request, client_id=client_id, seq=seq)
        deadline = time.monotonic() + timeout
        while True:
            resp = conn.recv(max(0.0, deadline - time.monotonic()))
            if resp.id == rid and not resp.stream:
                break
    finally:
        conn.close()
    body = None
    if resp.code == pb.OK and response_type is not None:
        body = response_type.FromString(resp.payload)
    return resp, body


class Node:
    """One member. Read-only: id, host, port, raft_port, endpoint (client
    HOST:PORT), raft_address, gid, dir (--cluster-dir), log_path, server
    (the running kvstored.Server, None when down), paused, starts (how
    many times it was started)."""

    def __init__(self, cluster, node_id, host, port, raft_port):
        self.cluster = cluster
        self.id = node_id
        self.host, self.port, self.raft_port = host, port, raft_port
        self.endpoint = "%s:%d" % (host, port)
        self.raft_address = "%s:%d" % (host, raft_port)
        self.gid = cluster.base_gid + node_id
        self.dir = os.path.join(cluster.workdir, "node%d" % node_id)
        self.engine_dir = os.path.join(cluster.workdir, "node%d-engine" % node_id)
        self.log_path = os.path.join(cluster.workdir, "node%d.log" % node_id)
        self.server = None
        self.paused = False
        self.starts = 0
        self.join = None
        self.args = ()      # more flags for this node only

    @property
    def running(self):
        """Started and not killed or stopped (a paused node is running)."""
        return self.server is not None

    @property
    def pid(self):
        return self.server.pid if self.server else None

    def _preexec(self):
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(self.gid)

    def start(self):
        """Starts kvstored on the node's directory; returns once its client
        port is bound (kvstored says "listening on")."""
        if self.server:
            raise RuntimeError("node %d is already running" % self.id)
        os.makedirs(self.dir, exist_ok=True)
        os.makedirs(self.engine_dir, exist_ok=True)
        args = ["--node-id", str(self.id), "--cluster-dir", self.dir,
                "--raft-listen", self.raft_address]
        # --initial-cluster is read only while the directory is empty, so
        # it is harmless on a restart; --join is for the first start only.
        if self.join and self.starts == 0:
            args += ["--join", self.join]
        elif not self.join:
            args += ["--initial-cluster", self.cluster.initial_cluster]
        args += list(self.cluster.args) + list(self.args)
        self.starts += 1
        with open(self.log_path, "a") as f:
            f.write("==== start %d of node %d: %s\n" % (self.starts, self.id, " ".join(args)))
        try:
            self.server = Server(*args, listen=self.endpoint, capture_stderr=True,
                                 preexec_fn=self._preexec, dir=self.engine_dir,
                                 env=self.cluster.env)
        except RuntimeError as e:               # it said why on stderr: keep that
            with open(self.log_path, "a") as f:
                f.write("==== node %d did not start: %s\n" % (self.id, e))
            raise
        self.paused = False

    def _ended(self, how, status):
        with open(self.log_path, "a") as f:
            f.write(self.server.stderr_text())
            f.write("==== node %d %s: exit status %s\n" % (self.id, how, status))
        self.server = None
        self.paused = False

    def kill(self):
        """kill -9 (a paused node too); returns the exit status."""
        if not self.server:
            return None
        how = "killed (-9)" if self.server.proc.poll() is None else "had exited by itself"
        status = self.server.kill()
        self._ended(how, status)
        return status

    def stop(self):
        """SIGTERM (a paused node is continued first), waits; returns the
        exit status."""
        if not self.server:
            return None
        if self.paused:
            self.server.signal(signal.SIGCONT)
        try:
            status = self.server.stop()
        finally:
            if self.server and self.server.status is not None:
                self._ended("stopped (SIGTERM)", self.server.status)
        return status

    def pause(self):
        """SIGSTOP: the process stays, answers nothing until resume()."""
        if self.server and not self.paused:
            self.server.signal(signal.SIGSTOP)
            self.paused = True

    def resume(self):
        if self.server and self.paused:
            self.server.signal(signal.SIGCONT)
            self.paused = False

    def exited(self):
        """The exit status when the node's process ended by itself (a crash,
        an assertion), else None."""
        return self.server.proc.poll() if self.server else None

    def status(self, timeout=STATUS_TIMEOUT):
        """Its ClusterStatusResponse, or None when it did not answer."""
        if not self.server or self.paused:
            return None
        try:
            resp, body = call(self.endpoint, "ClusterStatus", pb.ClusterStatusRequest(),
                              pb.ClusterStatusResponse, timeout, **self.cluster.call_opts)
        except (OSError, WireError):
            return None
        return body

    def log_tail(self, lines=LOG_TAIL_LINES):
        """The last LINES lines of log_text()."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_text(self):
        """Every incarnation's stderr so far, the running one's included."""
        try:
            with open(self.log_path) as f:
                text = f.read()
        except OSError:
            text = ""
        if self.server:
            text += self.server.stderr_text()
        return text


class Cluster:
    """N nodes (ids 1..N). ARGS: more kvstored flags for every node. ENV:
    variables for the nodes (kvstored.Server's env). WORKDIR: where the
    nodes' directories and logs go (default a new temporary directory);
    removed by close() unless keep is set or it was given. SSL_CONTEXT and
    TOKEN: the cluster's own calls speak TLS with that context (nodes given
    --tls-cert) and Auth with that token (--auth-token-file); call_opts
    holds both, as call() takes them."""

    def __init__(self, n=3, distinct_hosts=False, args=(), workdir=None, env=None,
                 base_gid=BASE_GID, ssl_context=None, token=None):
        if not 1 <= n <= 9:
            raise ValueError("a test cluster has 1 to 9 nodes")
        self.args = tuple(args)
        self.env = env
        self.call_opts = {"ssl_context": ssl_context, "token": token}
        self.base_gid = base_gid
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="kvstore-cluster.")
        self.keep = False
        self.distinct_hosts = distinct_hosts
        self._ports = set()     # given out: the kernel may offer a port again
        self.nodes = {i: self._new_node(i) for i in range(1, n + 1)}
        self.initial_cluster = ",".join("%d=%s" % (i, nd.raft_address)
                                        for i, nd in self.nodes.items())

    def _port(self, host):
        """A free port of HOST that this cluster has not given out yet: the
        kernel may offer the same free port twice in a row (a cluster whose
        --initial-cluster named one address twice was caught so)."""
        for _ in range(100):
            port = free_port(host)
            if (host, port) not in self._ports:
                self._ports.add((host, port))
                return port
        raise RuntimeError("no free port on %s not given out already" % host)

    def _new_node(self, node_id):
        host = DISTINCT_HOST % (10 + node_id) if self.distinct_hosts else "127.0.0.1"
        return Node(self, node_id, host, self._port(host), self._port(host))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.keep = True
        self.close()

    def node(self, node_id):
        return self.nodes[node_id]

    def add_node(self, join):
        """A new node (the next id, not started) that joins through the
        client address JOIN on its first start instead of being one of the
        initial members."""
        node_id = max(self.nodes) + 1
        nd = self._new_node(node_id)
        nd.join = join
        self.nodes[node_id] = nd
        return nd

    def start(self, wait=True):
        """Starts every node; with WAIT, returns the leader they agree on."""
        for nd in self.nodes.values():
            nd.start()
        return self.wait_for_leader() if wait else None

    def running(self):
        """The nodes running and not paused."""
        return [nd for nd in self.nodes.values() if nd.running and not nd.paused]

    def kill(self, node_id):
        return self.nodes[node_id].kill()

    def stop(self, node_id):
        return self.nodes[node_id].stop()

    def restart(self, node_id):
        """Starts a node that was killed or stopped, on the same directory."""
        self.nodes[node_id].start()

    def pause(self, node_id):
        self.nodes[node_id].pause()

    def resume(self, node_id):
        self.nodes[node_id].resume()

    def check_alive(self):
        """AssertionError when a node that was not killed or stopped has
        exited (a crash, an assertion, a node that stopped itself), with
        the end of its log."""
        for nd in self.nodes.values():
            status = nd.exited()
            if status is not None:
                raise AssertionError("node %d exited by itself (status %s); its log ends:\n%s"
                                     % (nd.id, status, nd.log_tail()))

    def statuses(self, nodes=None, timeout=STATUS_TIMEOUT):
        """node id -> its ClusterStatusResponse or None, for NODES (default:
        those running and not paused)."""
        return {nd.id: nd.status(timeout) for nd in (nodes or self.running())}

    def serves(self, nd, timeout=STATUS_TIMEOUT):
        """True when ND answers a linearizable Get (OK or NOT_FOUND)."""
        try:
            resp, _ = call(nd.endpoint, "Get", pb.GetRequest(key=PROBE_KEY), timeout=timeout,
                           **self.call_opts)
        except (OSError, WireError):
            return False
        return resp.code in (pb.OK, pb.NOT_FOUND)

    def agreed_leader(self, nodes=None):
        """The Node every one of NODES (default: running, not paused) names
        as leader, which says it is the leader itself; else None."""
        nodes = nodes or self.running()
        st = self.statuses(nodes)
        if not st or any(s is None for s in st.values()):
            return None
        ids = {s.leader_id for s in st.values()}
        if len(ids) != 1:
            return None
        lid = ids.pop()
        if lid not in st or st[lid].role != "leader":
            return None
        return self.nodes[lid]

    def wait_for_leader(self, timeout=LEADER_TIMEOUT, nodes=None, serving=True):
        """Waits until every one of NODES (default: running, not paused)
        agrees on a leader among them and (SERVING) that leader answers a
        linearizable read; returns it. AssertionError after TIMEOUT, with
        what each node said."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            leader = self.agreed_leader(nodes)
            if leader and (not serving or self.serves(leader)):
                return leader
            if time.monotonic() >= deadline:
                st = self.statuses(nodes)
                said = "; ".join("node %d: %s" % (i, "no answer" if s is None else
                                                  "%s, leader %d, term %d" % (s.role, s.leader_id,
                                                                              s.term))
                                 for i, s in sorted(st.items()))
                raise AssertionError("no leader agreed on within %gs (%s)" % (timeout, said))
            time.sleep(POLL_STEP)

    def leader(self):
        """The node a running node names leader (any, not all), else None."""
        for s in self.statuses().values():
            if s and s.leader_id in self.nodes:
                return self.nodes[s.leader_id]
        return None

    def wait_converged(self, timeout=CONVERGE_TIMEOUT):
        """Waits until every node runs and all have applied the same index,
        at least the leader's commit index, with the same store revision;
        returns their statuses (node id -> ClusterStatusResponse)."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            st = self.statuses(list(self.nodes.values()))
            ok = all(s is not None for s in st.values())
            if ok:
                commit = max(s.commit_index for s in st.values())
                applied = {s.applied_index for s in st.values()}
                revisions = {s.revision for s in st.values()}
                if len(applied) == 1 and applied.pop() >= commit and len(revisions) == 1:
                    return st
            if time.monotonic() >= deadline:
                said = "; ".join("node %d: %s" % (i, "no answer" if s is None else
                                                  "applied %d, commit %d, revision %d"
                                                  % (s.applied_index, s.commit_index,
                                                     s.revision))
                                 for i, s in sorted(st.items()))
                raise AssertionError("nodes did not converge within %gs (%s)" % (timeout, said))
            time.sleep(POLL_STEP)

    def logs(self, lines=LOG_TAIL_LINES):
        """The last LINES lines of every node's log, headed by its path."""
        out = []
        for nd in self.nodes.values():
            out.append("---- node %d (%s), log %s:" % (nd.id, nd.endpoint, nd.log_path))
            out.append(nd.log_tail(lines))
        return "\n".join(out)

    def close(self):
        """Kills every node this cluster started (continued first if
        paused) and removes the work directory unless kept."""
        for nd in self.nodes.values():
            try:
                nd.kill()
            except Exception:                   # the others still get killed
                pass
        if self._own_workdir and not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
