#!/usr/bin/python3
"""Metrics, access logs and the admin endpoint, checked with real tools:
promtool, a real Prometheus server, curl."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

from harness import (HERE, PYTHON, Sidecar, Upstream, curl, free_port, metric_value, parse_metrics,
                     raw, run_tests, status_of, wait_for)



CONFIG = """
workers: 2
access_log:
  path: {log}
clusters:
  - {{ name: app, endpoints: [ "{up}" ] }}
  - {{ name: down, endpoints: [ "127.0.0.1:{dead}" ], connect_timeout: 1s }}
  - {{ name: slow, endpoints: [ "{up}" ] }}
listeners:
  - name: inbound
    address: 127.0.0.1:0
    request_headers_timeout: 1s
    routes:
      - {{ name: down, match: {{ prefix: /down }}, cluster: down }}
      - {{ name: slow, match: {{ prefix: /slow }}, cluster: slow, timeout: 300ms }}
      - {{ name: main, match: {{ prefix: / }}, cluster: app }}
"""


class ObservabilityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = Upstream()
        cls.dir = tempfile.mkdtemp(prefix="sidecar-obs-")
        cls.log = os.path.join(cls.dir, "access.log")
        cls.sc = Sidecar(CONFIG.format(log=cls.log, up=cls.up.address, dead=free_port()))

    @classmethod
    def tearDownClass(cls):
        cls.sc.stop()
        cls.up.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def metrics(self, accept=None):
        req = urllib.request.Request(f"http://{self.sc.admin}/metrics")
        if accept:
            req.add_header("Accept", accept)
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.headers["Content-Type"], r.read().decode()

    def log_lines(self, n):
        def enough():
            if not os.path.exists(self.log):
                return None
            with open(self.log) as f:
                lines = f.read().splitlines()
            return lines if len(lines) >= n else None
        return [json.loads(l) for l in wait_for(enough, 5, what=f"{n} access log lines")]

    def test_a_metrics_count_requests_exactly(self):
        before = parse_metrics(self.metrics()[1])
        n = 25
        for i in range(n):
            rc, out, err = curl("--data-binary", "x" * 10, self.sc.url("/echo"))
            self.assertEqual(out, b"x" * 10, err)
        after = parse_metrics(self.metrics()[1])
        labels = dict(listener="inbound", route="main", cluster="app")
        self.assertEqual(metric_value(after, "sidecar_http_requests_total", code="200", code_class="2xx",
                               **labels) - metric_value(before, "sidecar_http_requests_total", code="200",
                                                 **labels), n)
        self.assertEqual(metric_value(after, "sidecar_http_request_duration_seconds_count", **labels) -
                         metric_value(before, "sidecar_http_request_duration_seconds_count", **labels), n)
        self.assertEqual(metric_value(after, "sidecar_upstream_request_duration_seconds_count", **labels) -
                         metric_value(before, "sidecar_upstream_request_duration_seconds_count", **labels), n)
        self.assertEqual(metric_value(after, "sidecar_http_request_body_bytes_total", **labels) -
                         metric_value(before, "sidecar_http_request_body_bytes_total", **labels), 10 * n)
        self.assertEqual(metric_value(after, "sidecar_http_response_body_bytes_total", **labels) -
                         metric_value(before, "sidecar_http_response_body_bytes_total", **labels), 10 * n)
        inf = metric_value(after, "sidecar_http_request_duration_seconds_bucket", le="+Inf", **labels)
        self.assertEqual(inf, metric_value(after, "sidecar_http_request_duration_seconds_count", **labels))
        self.assertEqual(metric_value(after, "sidecar_upstream_requests_total", cluster="app") -
                         metric_value(before, "sidecar_upstream_requests_total", cluster="app"), n)
        self.assertGreater(metric_value(after, "process_resident_memory_bytes"), 1e6)
        self.assertGreater(metric_value(after, "process_open_fds"), 5)
        self.assertEqual(metric_value(after, "sidecar_build_info"), 1)

    def test_b_promtool_checks_the_text_format(self):
        ctype, text = self.metrics()
        self.assertEqual(ctype, "text/plain; version=0.0.4; charset=utf-8")
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""))

    def test_c_openmetrics_on_request(self):
        ctype, text = self.metrics("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
        self.assertEqual(ctype, "application/openmetrics-text; version=1.0.0; charset=utf-8")
        self.assertTrue(text.endswith("# EOF\n"))
        self.assertIn("# TYPE sidecar_http_requests counter\n", text)
        self.assertIn("\nsidecar_http_requests_total{", text)
        # promtool parses only the 0.0.4 text format (prometheus/prometheus#8932):
        # on OpenMetrics its only complaint is the counters' help, which
        # OpenMetrics declares on the family name without _total.
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        for line in (p.stdout + p.stderr).splitlines():
            self.assertRegex(line, r"^\w+_total no help text$")

    def test_d_access_log_lines_for_200_503_504_400(self):
        time.sleep(0.3)  # lines of earlier tests are written (the writer runs every 100 ms)
        with open(self.log, "a+") as f:
            f.seek(0)
            start = len(f.read().splitlines())
        curl("-H", "User-Agent: obs-test", "-H", "X-Request-Id: id-200", self.sc.url("/hello"))
        curl("-H", "X-Request-Id: id-503", self.sc.url("/down"))
        curl("-H", "X-Request-Id: id-504", self.sc.url("/slow?delay=2"))
        raw(self.sc.port(), b"GET /bad HTTP/1.1\r\nHost: t\nX: 1\r\n\r\n")
        lines = self.log_lines(start + 4)[start:]
        by_status = {l["response_code"]: l for l in lines}
        ok = by_status[200]
        self.assertEqual((ok["method"], ok["path"], ok["protocol"]), ("GET", "/hello", "HTTP/1.1"))
        self.assertEqual(ok["response_flags"], "-")
        self.assertEqual((ok["bytes_received"], ok["bytes_sent"]), (0, 6))
        self.assertEqual(ok["user_agent"], "obs-test")
        self.assertEqual(ok["request_id"], "id-200")
        self.assertEqual(ok["upstream_host"], self.up.address)
        self.assertEqual((ok["route_name"], ok["upstream_cluster"]), ("main", "app"))
        self.assertEqual(ok["x_forwarded_for"], "127.0.0.1")
        self.assertRegex(ok["start_time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertGreater(ok["duration"], 0)
        self.assertLessEqual(ok["upstream_service_time"], ok["duration"])
        self.assertEqual(by_status[503]["response_flags"], "UF")
        self.assertIsNone(by_status[503]["upstream_service_time"])
        self.assertEqual(by_status[504]["response_flags"], "UT")
        self.assertGreaterEqual(by_status[504]["duration"], 300)
        bad = by_status[400]
        self.assertEqual(bad["response_flags"], "DPE")
        self.assertIsNone(bad["method"])
        self.assertIsNone(bad["route_name"])
        m = parse_metrics(self.metrics()[1])
        self.assertGreaterEqual(metric_value(m, "sidecar_upstream_connect_failures_total", cluster="down"), 1)
        self.assertGreaterEqual(metric_value(m, "sidecar_upstream_request_timeouts_total", cluster="slow"), 1)
        self.assertGreaterEqual(metric_value(m, "sidecar_http_rejected_requests_total", reason="bare_lf"), 1)
        self.assertGreaterEqual(metric_value(m, "sidecar_access_log_lines_total"), 4)
        self.assertEqual(metric_value(m, "sidecar_access_log_dropped_total"), 0)

    def test_e_admin_endpoints(self):
        self.assertEqual(self.sc.admin_get("/healthz"), (200, "ok\n"))
        status, body = self.sc.admin_get("/config")
        cfg = json.loads(body)
        self.assertEqual(cfg["listeners"][0]["name"], "inbound")
        self.assertEqual(cfg["listeners"][0]["routes"][1]["timeout"], "300ms")
        self.assertEqual(cfg["access_log"]["path"], self.log)
        status, body = self.sc.admin_get("/stats")
        names = {m["name"] for m in json.loads(body)["metrics"]}
        self.assertIn("sidecar_http_requests_total", names)
        status, body = self.sc.admin_get("/clusters")
        clusters = {c["name"]: c for c in json.loads(body)["clusters"]}
        self.assertEqual(clusters["app"]["endpoints"][0]["address"], self.up.address)
        self.assertGreater(clusters["app"]["endpoints"][0]["requests_total"], 0)
        self.assertEqual(self.sc.admin_get("/logging")[0], 405)
        self.assertEqual(self.sc.admin_get("/logging?level=debug", "POST"), (200, "log level: debug\n"))
        self.assertEqual(self.sc.admin_get("/logging?level=info", "POST")[0], 200)
        self.assertEqual(self.sc.admin_get("/logging?level=loud", "POST")[0], 400)
        self.assertEqual(self.sc.admin_get("/nope")[0], 404)

    def test_f_a_real_prometheus_scrapes_the_rate(self):
        d = tempfile.mkdtemp(prefix="sidecar-prom-")
        self.addCleanup(shutil.rmtree, d, True)
        port = free_port()
        with open(os.path.join(d, "prometheus.yml"), "w") as f:
            f.write(f"""
global: {{ scrape_interval: 1s, evaluation_interval: 1s }}
scrape_configs:
  - job_name: sidecar
    static_configs: [ {{ targets: [ "{self.sc.admin}" ] }} ]
""")
        prom = subprocess.Popen(["prometheus", f"--config.file={d}/prometheus.yml",
                                 f"--storage.tsdb.path={d}/data",
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            def query(q):
                url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(q)}"
                try:
                    with urllib.request.urlopen(url, timeout=5) as r:
                        return json.load(r)["data"]["result"]
                except OSError:
                    return None
            deadline = time.monotonic() + 30
            rate = None
            while time.monotonic() < deadline:
                for _ in range(20):
                    curl(self.sc.url("/hello"))
                result = query('sum(rate(sidecar_http_requests_total{route="main"}[5s]))')
                if result and float(result[0]["value"][1]) > 0:
                    rate = float(result[0]["value"][1])
                    break
                time.sleep(0.5)
            self.assertIsNotNone(rate, "Prometheus never saw a request rate")
            up = query('up{job="sidecar"}')
            self.assertEqual(up[0]["value"][1], "1")  # its OpenMetrics scrape parsed
        finally:
            prom.terminate()
            prom.wait(timeout=30)


class AccessLogOptionsTest(unittest.TestCase):
    def test_text_format_status_filter_listener_off_and_reopen(self):
        up = Upstream()
        self.addCleanup(up.stop)
        d = tempfile.mkdtemp(prefix="sidecar-log-")
        self.addCleanup(shutil.rmtree, d, True)
        log = os.path.join(d, "access.log")
        sc = Sidecar(f"""
workers: 1
access_log:
  path: {log}
  text_format: "%RESPONSE_CODE% %REQ(:METHOD)% %REQ(:PATH)% %REQ(X-TEAM?USER-AGENT):8% %RESP(CONTENT-TYPE)% %RESPONSE_FLAGS%"
  status: [ "5xx", 404 ]
clusters: [ {{ name: app, endpoints: [ "{up.address}" ] }} ]
listeners:
  - name: a
    address: "127.0.0.1:0"
    routes:
      - {{ match: {{ prefix: /hello }}, cluster: app }}
      - {{ match: {{ path: /down }}, direct_response: {{ status: 503, body: "down", content_type: text/html }} }}
  - {{ name: b, address: "127.0.0.1:0", access_log: false, routes: [ {{ cluster: app }} ] }}
""")
        self.addCleanup(sc.stop)
        curl(sc.url("/hello", "a"))                       # 200: filtered out
        curl("-H", "X-Team: payments-team", sc.url("/status/500", "a"))  # 404: no route on a
        curl(sc.url("/status/500", "b"))                  # 500, but b does not log
        def read(path):
            with open(path) as f:
                return f.read()
        wait_for(lambda: os.path.exists(log) and read(log).count("\n") >= 1, 5, what="a line")
        time.sleep(0.3)
        with open(log) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines, ["404 GET /status/500 payments text/plain NR"])
        # logrotate: move the file away, SIGUSR1, the next lines go to a new file.
        os.rename(log, log + ".1")
        sc.signal(signal.SIGUSR1)
        time.sleep(0.3)
        curl("-A", "curl", sc.url("/nothing", "a"))
        # A route's direct_response logs the content type it was written with.
        curl("-A", "curl", sc.url("/down", "a"))
        wait_for(lambda: os.path.exists(log) and read(log).count("\n") >= 2, 5,
                 what="the reopened log")
        with open(log) as f:
            self.assertEqual(f.read().splitlines(),
                             ["404 GET /nothing curl text/plain NR", "503 GET /down curl text/html -"])


class AppMetricsTest(unittest.TestCase):
    def test_supervised_app_metrics(self):
        port = free_port()
        sc = Sidecar(f"""
workers: 1
app: {{ port: {port} }}
clusters: [ {{ name: app, endpoints: [ "127.0.0.1:{port}" ] }} ]
listeners: [ {{ name: inbound, address: "127.0.0.1:0", routes: [ {{ cluster: app }} ] }} ]
metrics:
  processes: [ {{ name: self, pid_file: /proc/self/stat }} ]
""", app=[PYTHON, os.path.join(HERE, "upstream.py")])
        self.addCleanup(sc.stop)
        wait_for(lambda: sc.admin_get("/ready")[0] == 200, 10, 0.05, "ready")
        with urllib.request.urlopen(f"http://{sc.admin}/metrics", timeout=5) as r:
            m = parse_metrics(r.read().decode())
        self.assertEqual(metric_value(m, "sidecar_app_up", app="app"), 1)
        self.assertGreater(metric_value(m, "sidecar_app_resident_memory_bytes", app="app"), 1e6)
        self.assertGreaterEqual(metric_value(m, "sidecar_app_threads", app="app"), 1)
        self.assertEqual(metric_value(m, "sidecar_app_restarts_total", app="app"), 0)
        self.assertEqual(metric_value(m, "sidecar_ready"), 1)


if __name__ == "__main__":
    run_tests()
