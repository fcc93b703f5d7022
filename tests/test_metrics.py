"""test_metrics - --metrics-listen: GET /metrics in Prometheus's text format
with the same figures as a Stats call (requests per method and code, Get's
hits and misses, keys; a latency histogram per method whose count is the
calls, cumulative, +Inf equal to the count), checked by promtool and
scraped by a real Prometheus server; GET /health (200; in a cluster 503
until this node knows a leader); 404 for other paths, 405 for other
methods; hostile HTTP (garbage, a huge request, more connections than
allowed, a half-sent request) leaves the KV listener serving; off by
default; a bad address refused at start.

Servers start through tests/support/kvstored.py and clusters through
tests/support/cluster.py; KV calls use the Python client (client/python).
promtool and prometheus are Debian's (package prometheus); a test that
needs one that is missing is skipped. Every wait is bounded.
Debian's /usr/bin/python3; meson test sets $KVSTORED and PYTHONPATH.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

import kvstore
from cluster import Cluster, free_port
from kvstored import Server, refused, wait_for

PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
HTTP_TIMEOUT = 10.0
PROMETHEUS_DEADLINE = 90.0  # its start, a first scrape, the sample queryable
BUCKETS = 21                # 10 us .. 10.49 s, then +Inf

SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def parse(text):
    """{(name, ((label, value), ...)): float} of the samples of TEXT, and
    {family: type} of its TYPE lines. Fails on a line that is neither."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.fullmatch(line)
        assert m, "not a sample: %r" % line
        labels = tuple((k, v.encode().decode("unicode_escape"))
                       for k, v in LABEL.findall(m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples, types


def request(address, method="GET", path="/metrics", body=None, headers=None):
    """(status, headers dict, body bytes) of one request to ADDRESS."""
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=HTTP_TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def stats(client):
    return client.Stats(kvstore.pb.StatsRequest())


def metrics_address(server):
    """The address kvstored printed as "metrics on HOST:PORT"."""
    m = re.search(r"metrics on (\S+)\n", server.stdout_text())
    assert m, "no 'metrics on' line in %r" % server.stdout_text()
    return m.group(1)


def method_stats(st, name):
    for m in st.methods:
        if m.method.endswith("/" + name):
            return m
    raise AssertionError("no method %s in Stats" % name)


class MetricsTest(unittest.TestCase):
    def setUp(self):
        self.server = Server("--metrics-listen", "127.0.0.1:0")
        self.addCleanup(self.stop)
        self.metrics = metrics_address(self.server)
        self.client = kvstore.Client(self.server.endpoint)
        self.addCleanup(self.client.close)

    def stop(self):
        """A clean stop: under the sanitizers, a leak or an error after
        the scrapes would make it exit non-zero."""
        self.assertEqual(self.server.stop(), 0)

    def scrape(self):
        status, headers, body = request(self.metrics)
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
        return body.decode()

    def test_stats_names_the_address_printed(self):
        self.assertEqual(stats(self.client).metrics_address, self.metrics)
        self.assertRegex(self.metrics, r"^127\.0\.0\.1:\d+$")

    def test_the_scrape_says_what_stats_says(self):
        for i in range(7):
            self.client.set(b"k%d" % i, b"v")
        for i in range(5):
            self.assertEqual(self.client.get(b"k%d" % i), b"v")
        for i in range(3):
            with self.assertRaises(kvstore.KeyNotFound):
                self.client.get(b"missing%d" % i)
        text = self.scrape()
        st = stats(self.client)     # after: it counts itself, the scrape does not
        samples, types = parse(text)

        def one(name, **labels):
            return samples[(name, tuple(labels.items()))]

        self.assertEqual(one("kvstore_up"), 1)
        self.assertEqual(one("kvstore_requests_total", method="Set", code="OK"), 7)
        self.assertEqual(one("kvstore_requests_total", method="Get", code="OK"), 5)
        self.assertEqual(one("kvstore_requests_total", method="Get", code="NOT_FOUND"), 3)
        for name in ("Set", "Get"):
            m = method_stats(st, name)
            for cc in m.codes:
                self.assertEqual(one("kvstore_requests_total", method=name,
                                     code=kvstore.pb.StatusCode.Name(cc.code)), cc.count)
            self.assertEqual(one("kvstore_request_errors_total", method=name), m.errors)
            self.assertEqual(one("kvstore_request_duration_seconds_count", method=name), m.calls)
            self.assertGreater(one("kvstore_request_duration_seconds_sum", method=name), 0)
            buckets = sorted(((float(dict(lb)["le"]), v) for (n, lb), v in samples.items()
                              if n == "kvstore_request_duration_seconds_bucket"
                              and dict(lb)["method"] == name))
            self.assertEqual(len(buckets), BUCKETS + 1)
            self.assertEqual(buckets[0][0], 1e-05)
            self.assertEqual(buckets[-2][0], 10.48576)
            self.assertEqual(buckets[-1], (float("inf"), m.calls))
            counts = [v for _, v in buckets]
            self.assertEqual(counts, sorted(counts), "buckets must be cumulative")
        self.assertEqual(one("kvstore_keys"), st.keys)
        self.assertEqual(one("kvstore_keys"), 7)
        self.assertEqual(one("kvstore_get_hits_total"), st.get_hits)
        self.assertEqual(one("kvstore_get_misses_total"), st.get_misses)
        self.assertEqual(one("kvstore_get_misses_total"), 3)
        self.assertEqual(one("kvstore_connections_current"), st.connections_current)
        self.assertEqual(one("kvstore_pid"), self.server.pid)
        self.assertEqual(one("kvstore_build_info", version=st.version, engine=st.engine), 1)
        self.assertEqual(one("kvstore_metrics_listen_info", address=self.metrics), 1)
        for cr in st.connections_closed:
            self.assertIn(("kvstore_connections_closed_total", (("reason", cr.reason),)),
                          samples)
        self.assertEqual(types["kvstore_request_duration_seconds"], "histogram")
        self.assertEqual(types["kvstore_requests_total"], "counter")
        for name, kind in types.items():
            if kind == "counter":
                self.assertTrue(name.endswith("_total"), name)

    def test_promtool_finds_nothing_to_say(self):
        if not os.access(PROMTOOL, os.X_OK):
            self.skipTest("%s missing (Debian package prometheus)" % PROMTOOL)
        self.client.set(b"k", b"v")
        text = self.scrape()
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, "promtool: %s%s" % (p.stdout, p.stderr))

    def test_a_prometheus_server_scrapes_it(self):
        if not os.access(PROMETHEUS, os.X_OK):
            self.skipTest("%s missing (Debian package prometheus)" % PROMETHEUS)
        self.client.set(b"k", b"v")
        tmp = tempfile.mkdtemp(prefix="kvstore-prometheus.")
        self.addCleanup(shutil.rmtree, tmp, True)
        config = os.path.join(tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: kvstore\n"
                    "    static_configs:\n      - targets: ['%s']\n" % self.metrics)
        web = "127.0.0.1:%d" % free_port("127.0.0.1")
        log = open(os.path.join(tmp, "prometheus.log"), "w")
        self.addCleanup(log.close)
        proc = subprocess.Popen([PROMETHEUS, "--config.file=" + config,
                                 "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                                 "--web.listen-address=" + web],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)

        def end():
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        self.addCleanup(end)

        def query(q):
            url = "http://%s/api/v1/query?query=%s" % (web, urllib.parse.quote(q))
            try:
                with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as r:
                    return json.load(r)["data"]["result"]
            except OSError:
                return None     # not listening yet

        def sampled():
            self.assertIsNone(proc.poll(), "prometheus exited; see %s" % log.name)
            return query('kvstore_requests_total{method="Set",code="OK"}')

        try:
            result = wait_for("prometheus to scrape kvstored", sampled,
                              timeout=PROMETHEUS_DEADLINE, step=0.5)
        except AssertionError:
            with open(log.name) as f:
                raise AssertionError("no sample; prometheus says:\n" + f.read()[-4000:])
        self.assertEqual(float(result[0]["value"][1]), 1)
        up = query('up{job="kvstore"}')
        self.assertEqual(float(up[0]["value"][1]), 1)

    def test_health_and_the_other_answers(self):
        status, _, body = request(self.metrics, path="/health")
        self.assertEqual((status, body), (200, b"ok\n"))
        status, headers, body = request(self.metrics, method="HEAD")
        self.assertEqual((status, body), (200, b""))
        status, _, _ = request(self.metrics, path="/nothing-here")
        self.assertEqual(status, 404)
        status, _, _ = request(self.metrics, path="/metrics/")
        self.assertEqual(status, 404)
        for method in ("POST", "PUT", "DELETE"):
            status, headers, _ = request(self.metrics, method=method, body=b"x=1")
            self.assertEqual(status, 405, method)
            self.assertEqual(headers.get("Allow"), "GET, HEAD")

    def test_hostile_http_leaves_the_kv_listener_serving(self):
        host, port = self.metrics.rsplit(":", 1)

        def connect():
            return socket.create_connection((host, int(port)), timeout=HTTP_TIMEOUT)

        def answer(sock):
            """What the server sends before it closes (or the timeout)."""
            got = b""
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return got
                    got += chunk
            except (socket.timeout, ConnectionResetError):
                return got

        # Garbage: an error status or a close, never a hang of the loop.
        with connect() as s:
            s.sendall(b"\x00\x01\x02 NOT HTTP AT ALL\r\n\r\n")
            self.assertRegex(answer(s)[:12], rb"^(HTTP/1\.[01] 4\d\d|)")
        # A request far over the per-connection limit.
        with connect() as s:
            try:
                s.sendall(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.assertRegex(answer(s)[:12], rb"^(HTTP/1\.[01] 4\d\d|)")
        # More connections than allowed, some with half a request.
        held = []
        self.addCleanup(lambda: [c.close() for c in held])
        for i in range(40):
            try:
                c = connect()
                if i % 2:
                    c.sendall(b"GET /metr")
                held.append(c)
            except OSError:
                break
        self.assertEqual(self.client.ping(), "PONG")
        self.client.set(b"still", b"here")
        self.assertEqual(self.client.get(b"still"), b"here")
        for c in held:
            c.close()
        held.clear()
        # Once they are gone, scrapes are answered again.
        wait_for("/health to answer again", lambda: self._health_ok(), timeout=30, step=0.2)

    def _health_ok(self):
        try:
            return request(self.metrics, path="/health")[0] == 200
        except OSError:
            return False


class OffAndRefusedTest(unittest.TestCase):
    def test_off_by_default(self):
        server = Server()
        self.addCleanup(server.kill)
        with kvstore.Client(server.endpoint) as c:
            self.assertEqual(stats(c).metrics_address, "")
        self.assertNotIn("metrics on", server.stdout_text())

    def test_a_malformed_address_is_a_usage_error(self):
        r = refused("--metrics-listen", "no-port-here")
        self.assertEqual(r.status, 2, r.stderr)
        self.assertIn("metrics-listen", r.stderr)

    def test_an_address_in_use_is_refused_at_start(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            where = "127.0.0.1:%d" % taken.getsockname()[1]
            r = refused("--metrics-listen", where)
        self.assertEqual(r.status, 1, r.stderr)
        self.assertIn("--metrics-listen: cannot listen on %s" % where, r.stderr)

    def test_the_start_says_where_and_the_stop_closes_it(self):
        server = Server("--metrics-listen", "127.0.0.1:0", capture_stderr=True)
        self.addCleanup(server.kill)
        address = metrics_address(server)
        server.wait_for_stderr(r" started: .*; auth off; tls off; metrics on %s\n" % re.escape(address))
        self.assertEqual(request(address, path="/health")[0], 200)
        self.assertEqual(server.stop(), 0)
        with self.assertRaises(OSError):
            request(address, path="/health")


class OddSettingsTest(unittest.TestCase):
    def test_a_setting_that_is_not_utf8_reaches_stats_and_promtool(self):
        """A --log-file path with a byte that is not UTF-8: Stats' proto3
        strings and Prometheus' label values must be valid UTF-8, or a
        strict client cannot decode Stats at all and Prometheus drops the
        whole scrape. The byte shows as the text \\xHH."""
        top = tempfile.mkdtemp(prefix="kv-metrics-test.")
        self.addCleanup(shutil.rmtree, top, True)
        log = os.path.join(os.fsencode(top), b"log\xff\"\\.txt")
        server = Server("--metrics-listen", "127.0.0.1:0", "--log-file", os.fsdecode(log))
        self.addCleanup(server.kill)
        with kvstore.Client(server.endpoint) as c:
            values = {s.name: s.value for s in stats(c).settings}
        self.assertEqual(values["log-file"], top + "/log\\xff\"\\.txt")
        status, _, body = request(metrics_address(server))
        self.assertEqual(status, 200)
        text = body.decode()        # valid UTF-8, or this raises
        self.assertIn('kvstore_setting_info{name="log-file",value="%s/log\\\\xff\\"\\\\.txt"} 1'
                      % top, text)
        if os.access(PROMTOOL, os.X_OK):
            p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(p.returncode, 0, "promtool: %s%s" % (p.stdout, p.stderr))
        self.assertEqual(server.stop(), 0)


class ClusterHealthTest(unittest.TestCase):
    ARGS = ("--metrics-listen", "127.0.0.1:0")

    def cluster(self, n):
        c = Cluster(n, args=self.ARGS)
        self.addCleanup(c.close)
        return c

    def health(self, node):
        return request(metrics_address(node.server), path="/health")

    def test_a_node_is_healthy_once_it_knows_a_leader(self):
        c = self.cluster(1)
        c.start()
        c.wait_for_leader()
        node = c.node(1)
        wait_for("/health 200", lambda: self.health(node)[0] == 200)
        self.assertEqual(self.health(node)[2], b"ok\n")
        samples, _ = parse(request(metrics_address(node.server))[2].decode())
        self.assertEqual(samples[("kvstore_cluster_leader_id", ())], 1)
        self.assertEqual(samples[("kvstore_cluster_role_info", (("role", "leader"),))], 1)

    def test_a_node_without_a_leader_is_unavailable(self):
        c = self.cluster(3)
        node = c.node(1)
        node.start()        # alone: no majority, no leader
        status, _, body = self.health(node)
        self.assertEqual(status, 503, body)
        self.assertIn(b"no leader known to node 1", body)


if __name__ == "__main__":
    unittest.main()
