"""benchutil - what bench/ttl-bench, bench/watch-bench and bench/expiry-bench
share: starting and stopping kvstored and redis-server on free loopback
ports (every child dies with the script, even by SIGKILL), running kvbench
and reading its CSV row, a process's CPU time and resident memory from
/proc, kvstored's Stats through the Python client, and a count of the
server's instructions under valgrind's callgrind for a stretch of load.

The programs are copied out of the build directory before a run
(snapshot()), so that a rebuild by someone else in the middle of a long
measurement cannot swap the binary under it. Debian's /usr/bin/python3 and
python3-protobuf; stdlib otherwise. Bounded everywhere: every child run
has a timeout, every wait a deadline.
"""
import ctypes
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
from kvstored import Server  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
RUN_TIMEOUT = 300
CHILDREN = []
SHOWN = {}      # a copied program's path -> its path in the build, for printing


class Abort(Exception):
    """Stops a bench script with a message; its servers are still stopped."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def die_with_parent():
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def on_signal(signum, _frame):
    raise Abort("stopped by signal %d" % signum)


def install_signals(max_seconds):
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(s, on_signal)
    signal.alarm(max_seconds)


def stop(proc, timeout=10):
    """SIGTERM, then SIGKILL after TIMEOUT s. Returns the exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc in CHILDREN:
        CHILDREN.remove(proc)
    return proc.returncode


def stop_all():
    signal.alarm(0)
    for proc in list(CHILDREN):
        stop(proc)


def run(cmd, timeout=RUN_TIMEOUT, check=True, **kw):
    kw.setdefault("preexec_fn", die_with_parent)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise Abort("timed out after %d s: %s" % (timeout, shlex.join(cmd)))
    if check and r.returncode != 0:
        raise Abort("%s exited %d:\n%s%s" % (shlex.join(cmd), r.returncode, r.stdout, r.stderr))
    return r


def spawn(cmd, **kw):
    """A child that runs beside the script (stdout piped, text)."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    p = subprocess.Popen(cmd, text=True, preexec_fn=die_with_parent, **kw)
    CHILDREN.append(p)
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid):
    """User + system CPU seconds of PID (all threads), 10 ms ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss(pid):
    """VmRSS of PID in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise Abort("no VmRSS for pid %d" % pid)


def machine_busy():
    """(busy, all) ticks of every CPU so far (/proc/stat)."""
    with open("/proc/stat") as f:
        t = [int(x) for x in f.readline().split()[1:]]
    return sum(t) - t[3] - t[4], sum(t)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# ------------------------------------------------------------ the programs

def snapshot(build_dir, workdir, names=("src/kvstored", "bench/kvbench", "bench/watchbench")):
    """Copies the programs NAMES of BUILD_DIR into WORKDIR; returns their
    paths by base name, and puts the Python client on sys.path."""
    out = {}
    for n in names:
        src = os.path.join(build_dir, n)
        if not os.access(src, os.X_OK):
            raise Abort("%s is not built (ninja -C %s)" % (src, build_dir))
        dst = os.path.join(workdir, os.path.basename(n))
        shutil.copy2(src, dst)
        out[os.path.basename(n)] = dst
        SHOWN[dst] = os.path.relpath(src, REPO) if src.startswith(REPO + "/") else src
    sys.path[:0] = [os.path.join(REPO, "client", "python"),
                    os.path.join(build_dir, "client", "python")]
    try:
        import kvstore  # noqa: F401
    except ImportError as e:
        raise Abort("the Python client does not load (%s): run with /usr/bin/python3 "
                    "(python3-protobuf) after building kv_pb2.py" % e)
    return out


def shown(cmd):
    """Command line CMD (a string) as it would be typed: the build's paths."""
    for dst, src in SHOWN.items():
        cmd = cmd.replace(dst, src)
    return cmd


def describe_source():
    def git(*a):
        return subprocess.run(["git", "-C", REPO, *a], capture_output=True, text=True,
                              timeout=60).stdout.strip()
    try:
        head = git("rev-parse", "--short", "HEAD") or "?"
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src", "include")
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return head + (" (src/ changed since)" if dirty else "")


# ------------------------------------------------------------ servers

def start_kvstored(binary, *args):
    """kvstored (memory engine unless ARGS say otherwise) on a free port."""
    try:
        server = Server(*args, binary=binary, engine_from_env=False, capture_stderr=True,
                        preexec_fn=die_with_parent)
    except RuntimeError as e:
        raise Abort("kvstored did not start: %s" % e)
    CHILDREN.append(server.proc)
    return server


def stop_server(server):
    if server.proc in CHILDREN:
        CHILDREN.remove(server.proc)
    try:
        server.stop()
    except RuntimeError as e:
        log("warning: %s" % e)


class Redis:
    """redis-server --save '' --appendonly no on a free port of 127.0.0.1."""

    def __init__(self, workdir):
        if not shutil.which("redis-server"):
            raise Abort("redis-server is missing: apt-get install -y redis-server")
        self.port = free_port()
        d = tempfile.mkdtemp(prefix="redis-", dir=workdir)
        self.proc = spawn(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                           "--save", "", "--appendonly", "no", "--daemonize", "no",
                           "--dir", d, "--logfile", os.path.join(d, "redis.log")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Abort("redis-server exited %d at start" % self.proc.returncode)
            try:
                if self.cmd("PING") == "PONG":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise Abort("redis-server did not answer on port %d" % self.port)

    def cmd(self, *words):
        """One command; its reply's first line without the type byte."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            req = b"*%d\r\n" % len(words) + b"".join(
                b"$%d\r\n%s\r\n" % (len(w), w.encode()) for w in words)
            s.sendall(req)
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            first = data.split(b"\r\n", 1)[0].decode()
            if first.startswith("$"):       # a bulk string: read it whole
                n = int(first[1:])
                while len(data) < len(first) + 2 + n + 2 and n >= 0:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                return data.split(b"\r\n", 1)[1][:n].decode() if n >= 0 else None
            return first[1:]

    def dbsize(self):
        return int(self.cmd("DBSIZE"))

    def stop(self):
        stop(self.proc)


def kv_stats(port):
    import kvstore
    with kvstore.Client("127.0.0.1:%d" % port, timeout=10) as c:
        return c.Stats()


# ------------------------------------------------------------ kvbench

def kvbench(kvbench_bin, port, test, clients, pipeline, requests, *, protocol="kvstore",
            size=3, keyspace=100000, ttl=None, populate=False, extra=(), server_pid=None,
            timeout=RUN_TIMEOUT):
    """One kvbench run (KEYSPACE None: every request on key 0); its CSV row (rps, p50/p99/p999/max latency in ms) and,
    with SERVER_PID, the server's CPU per request (µs) and busy fraction."""
    cmd = [kvbench_bin, "-h", "127.0.0.1", "-p", str(port), "-c", str(clients),
           "-n", str(requests), "-P", str(pipeline), "-d", str(size),
           *(["-r", str(keyspace)] if keyspace else []),
           "-t", test, "--csv", "--protocol", protocol]
    if ttl:
        cmd += ["--ttl", str(ttl)]
    if not populate:
        cmd += ["--no-populate"]
    cmd += list(extra)
    cpu0, t0 = (proc_cpu(server_pid) if server_pid else 0), time.monotonic()
    r = run(cmd, timeout=timeout)
    cpu1, t1 = (proc_cpu(server_pid) if server_pid else 0), time.monotonic()
    lines = r.stdout.splitlines()
    head = [l for l in lines if l.startswith('"test",')]
    row = [l for l in lines if l.startswith('"%s"' % test.upper())]
    if not head or len(row) != 1:
        raise Abort("no %s row in the output of %s:\n%s" % (test, shlex.join(cmd), r.stdout))
    names = [c.strip('"') for c in head[0].split(",")]
    vals = dict(zip(names[1:], (float(c.strip('"')) for c in row[0].split(",")[1:])))
    out = {"rps": vals["rps"], "p50": vals["p50_latency_ms"], "p99": vals["p99_latency_ms"],
           "p999": vals.get("p999_latency_ms", float("nan")), "max": vals["max_latency_ms"],
           "cmd": shown(shlex.join(cmd))}
    if server_pid:
        out["cpu_us"] = (cpu1 - cpu0) / requests * 1e6
        out["busy"] = (cpu1 - cpu0) / max(t1 - t0, 1e-9)
    return out


def load(kvbench_bin, port, nkeys, *, protocol="kvstore", size=3, ttl=None, start_key=0):
    """Stores keys 0..NKEYS-1 (sequential, -c 50 -P 64)."""
    cmd = [kvbench_bin, "-h", "127.0.0.1", "-p", str(port), "-t", "set", "--sequential",
           "-n", str(nkeys), "-r", str(nkeys), "-d", str(size), "-c", "50", "-P", "64", "-q",
           "--protocol", protocol]
    if ttl:
        cmd += ["--ttl", str(ttl)]
    run(cmd)
    return shown(shlex.join(cmd))


# ------------------------------------------------------------ callgrind

class Callgrind:
    """kvstored under valgrind --tool=callgrind; zero() then dump() around
    a stretch of load gives the server's instructions (Ir) for it alone."""

    def __init__(self, kvstored_bin, workdir, *args):
        if not shutil.which("valgrind"):
            raise Abort("valgrind is missing: apt-get install -y valgrind")
        self.dir = tempfile.mkdtemp(prefix="callgrind-", dir=workdir)
        self.out = os.path.join(self.dir, "callgrind.out")
        self.port = free_port()
        self.proc = spawn(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + self.out,
                           kvstored_bin, "--listen", "127.0.0.1:%d" % self.port, *args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Abort("kvstored under callgrind exited %d" % self.proc.returncode)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise Abort("kvstored under callgrind did not listen")
        self.pid = self.proc.pid

    def _ctl(self, *a):
        run(["callgrind_control", *a, str(self.pid)], timeout=120)

    def zero(self):
        self._ctl("--zero")

    def dump(self):
        """Dumps and returns the instructions since the last zero()."""
        before = set(os.listdir(self.dir))
        self._ctl("--dump")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            new = sorted(set(os.listdir(self.dir)) - before)
            for n in new:
                with open(os.path.join(self.dir, n)) as f:
                    text = f.read()
                m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
                if m:
                    return int(m.group(1))
            time.sleep(0.2)
        raise Abort("callgrind wrote no dump")

    def stop(self):
        stop(self.proc, timeout=60)
