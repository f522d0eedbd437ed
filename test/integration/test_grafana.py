#!/usr/bin/python3
"""deploy/grafana/sidecar.json and deploy/prometheus/alerts.yaml against a
real Prometheus (Debian's `prometheus`) scraping a sidecar under load that
has every feature the panels and alerts watch: a supervised app, a TLS
listener, a dead cluster, sync, log shipping and tracing. Every panel query
and every alert's query (its expression without the final comparison) must
return data; promtool checks the rules."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

from certs import CA
from collector import Collector
from harness import HERE, PYTHON, Sidecar, curl, free_port, run_tests, wait_for

ROOT = os.path.join(HERE, "..", "..")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "sidecar.json")
ALERTS = os.path.join(ROOT, "deploy", "prometheus", "alerts.yaml")


def panel_queries():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append((p["title"], t["expr"]))
    return dash, out


def alert_queries():
    import yaml
    with open(ALERTS) as f:
        rules = yaml.safe_load(f)
    out = []
    for g in rules["groups"]:
        for r in g["rules"]:
            m = re.match(r"^(.*\S)\s+(>=|<=|>|<|==|!=)\s+[-0-9. *]+$", r["expr"])
            assert m, r["expr"]
            out.append((r["alert"], m.group(1)))
    return out


def grafana_to_promql(expr):
    return (expr.replace("$__rate_interval", "30s").replace('"$job"', '".*"')
            .replace('"$instance"', '".*"'))


class GrafanaTest(unittest.TestCase):
    def test_dashboard_shape(self):
        dash, queries = panel_queries()
        self.assertEqual(dash["schemaVersion"], 38)  # Grafana 10
        self.assertEqual(len({p["id"] for p in dash["panels"]}), len(dash["panels"]))
        kinds = {p["type"] for p in dash["panels"]}
        self.assertIn("heatmap", kinds)
        text = json.dumps(dash)
        for family in ("sidecar_http_requests_total", "sidecar_upstream_connect_failures_total",
                       "sidecar_app_resident_memory_bytes", "sidecar_sync_consecutive_failures",
                       "sidecar_logs_lag_bytes", "sidecar_http_request_duration_seconds_bucket"):
            self.assertIn(family, text)
        self.assertGreaterEqual(len(queries), 30)
        # The committed JSON is what the generator writes.
        with tempfile.TemporaryDirectory() as d:
            shutil.copy(os.path.join(ROOT, "deploy", "grafana", "generate.py"), d)
            subprocess.run([PYTHON, os.path.join(d, "generate.py")], check=True, timeout=30)
            with open(os.path.join(d, "sidecar.json")) as a, open(DASHBOARD) as b:
                self.assertEqual(a.read(), b.read(), "run deploy/grafana/generate.py")

    def test_promtool_checks_the_rules(self):
        p = subprocess.run(["promtool", "check", "rules", ALERTS], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("SUCCESS: 6 rules found", p.stdout)

    def test_every_query_returns_data_from_a_real_prometheus(self):
        d = tempfile.mkdtemp(prefix="sidecar-grafana-")
        self.addCleanup(shutil.rmtree, d, True)
        ca = CA(os.path.join(d, "pki"))
        crt, key = ca.issue("localhost", dns=["localhost"], days=10)
        os.makedirs(os.path.join(d, "logs"))
        with open(os.path.join(d, "logs", "app.log"), "w") as f:
            f.write('{"msg": "hello"}\n' * 100)
        collector = Collector()
        self.addCleanup(collector.stop)
        app_port = free_port()
        dead = free_port()
        sc = Sidecar(f"""
workers: 2
app: {{ port: {app_port} }}
clusters:
  - {{ name: app, endpoints: [ "127.0.0.1:{app_port}" ] }}
  - {{ name: down, endpoints: [ "127.0.0.1:{dead}" ], connect_timeout: 1s }}
listeners:
  - name: inbound
    address: 127.0.0.1:0
    routes:
      - {{ name: down, match: {{ prefix: /down }}, cluster: down }}
      - {{ name: main, match: {{ prefix: / }}, cluster: app }}
  - name: secure
    address: 127.0.0.1:0
    tls: {{ certificates: [ {{ cert: {crt}, key: {key} }} ] }}
    routes: [ {{ name: secure, match: {{ prefix: / }}, cluster: app }} ]
sync:
  - {{ name: site, http: {{ url: "http://127.0.0.1:{app_port}/hello" }}, root: {d}/site, period: 1s }}
logs:
  state_dir: {d}/state
  inputs:
    - {{ name: app, file: {{ paths: [ "{d}/logs/*.log" ], poll_interval: 200ms }}, parser: json }}
  outputs:
    - name: out
      tcp: {{ address: "127.0.0.1:{dead}", format: json_lines }}
      retry: {{ initial_backoff: 100ms, max_backoff: 500ms }}
tracing:
  sampling: {{ ratio: 1 }}
  otlp: {{ endpoint: "http://127.0.0.1:{collector.port}/v1/traces", batch_timeout: 200ms }}
""", app=[PYTHON, os.path.join(HERE, "upstream.py"), "--port", str(app_port)])
        self.addCleanup(sc.stop)
        wait_for(lambda: curl("-m", "2", "-o", "/dev/null", "-f", sc.url("/hello", "inbound"))[0] == 0,
                 timeout=15, what="the app")

        stop = threading.Event()

        def load():
            while not stop.is_set():
                for path in ("/hello", "/status/503", "/down"):
                    curl("-m", "3", "-o", "/dev/null", sc.url(path, "inbound"))
                curl("-m", "3", "-k", "-o", "/dev/null",
                     f"https://localhost:{sc.port('secure')}/hello",
                     "--resolve", f"localhost:{sc.port('secure')}:127.0.0.1")
                time.sleep(0.05)
        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        self.addCleanup(loader.join, 10)
        self.addCleanup(stop.set)

        port = free_port()
        with open(os.path.join(d, "prometheus.yml"), "w") as f:
            f.write(f"""
global: {{ scrape_interval: 1s, evaluation_interval: 1s }}
rule_files: [ "{ALERTS}" ]
scrape_configs:
  - job_name: sidecar
    static_configs: [ {{ targets: [ "{sc.admin}" ] }} ]
""")
        prom = subprocess.Popen(["prometheus", f"--config.file={d}/prometheus.yml",
                                 f"--storage.tsdb.path={d}/data",
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop_prom():
            prom.terminate()
            prom.wait(timeout=30)
        self.addCleanup(stop_prom)

        def query(q):
            url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(q)}"
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    body = json.load(r)
            except OSError:
                return None
            assert body["status"] == "success", body
            return body["data"]["result"]

        _, panels = panel_queries()
        queries = [(f"panel {t}", grafana_to_promql(e)) for t, e in panels]
        queries += [(f"alert {a}", e) for a, e in alert_queries()]
        missing = dict(queries)
        deadline = time.monotonic() + 90
        while missing and time.monotonic() < deadline:
            for name, q in list(missing.items()):
                if query(q):
                    del missing[name]
            time.sleep(1)
        self.assertEqual(missing, {}, "queries that never returned data")
        # The rules loaded into Prometheus too.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/rules", timeout=5) as r:
            rules = json.load(r)["data"]["groups"][0]["rules"]
        self.assertEqual(len(rules), 6)
        self.assertTrue(all(r["health"] == "ok" for r in rules), rules)


if __name__ == "__main__":
    run_tests()
