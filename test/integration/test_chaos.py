#!/usr/bin/python3
"""The chaos test a user would run (issue 12, docs/resilience.md): three
upstream processes behind a route with retries, active health checks and
outlier detection; wrk for 30 s; one upstream SIGKILLed at 10 s and started
again at 20 s. At least 99.9% of the requests succeed, the dead endpoint is
out of rotation within interval x unhealthy_threshold (plus the time to
notice) and back after it recovers, as /clusters and the metrics show."""
import json
import re
import signal
import subprocess
import sys
import time
import unittest
import urllib.request

from harness import (Sidecar, Upstream, free_port, metric_value, parse_metrics, run_tests,
                     wait_for)

INTERVAL = 1.0
UNHEALTHY = 2
HEALTHY = 2


def endpoint_health(sc, address):
    status, body = sc.admin_get("/clusters")
    assert status == 200, body
    for cluster in json.loads(body)["clusters"]:
        if cluster["name"] != "app":
            continue
        for e in cluster["endpoints"]:
            if e["address"] == address:
                return e
    raise AssertionError(f"{address} not in /clusters")


class ChaosTest(unittest.TestCase):
    def test_kill_and_restart_one_of_three_under_load(self):
        ports = [free_port() for _ in range(3)]
        ups = [Upstream("--port", str(p)) for p in ports]
        addresses = [u.address for u in ups]
        endpoints = ", ".join(f'"{a}"' for a in addresses)
        sc = Sidecar(f"""
workers: 2
clusters:
  - name: app
    endpoints: [ {endpoints} ]
    connect_timeout: 500ms
    health_checks:
      - {{ http: {{ path: /health }}, interval: {INTERVAL}s, timeout: 500ms,
          unhealthy_threshold: {UNHEALTHY}, healthy_threshold: {HEALTHY} }}
    outlier_detection: {{ consecutive_5xx: 5, consecutive_local_origin_failure: 3,
                         interval: 1s, base_ejection_time: 5s, max_ejection_percent: 34 }}
listeners:
  - name: inbound
    address: 127.0.0.1:0
    routes:
      - match: {{ prefix: / }}
        cluster: app
        timeout: 5s
        retry_policy: {{ retry_on: [ 5xx, reset, connect-failure ], num_retries: 2,
                        retry_back_off: {{ base_interval: 10ms, max_interval: 100ms }} }}
""")
        victim = ups[1]
        try:
            wait_for(lambda: all(endpoint_health(sc, a)["healthy"] for a in addresses), 10,
                     what="three healthy endpoints")
            # Bounded load: 30 s, 8 connections.
            wrk = subprocess.Popen(["wrk", "-t1", "-c8", "-d30s", sc.url("/hello")],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                time.sleep(10)
                victim.proc.send_signal(signal.SIGKILL)
                victim.proc.wait(timeout=5)
                killed = time.monotonic()
                # Out of rotation within interval x unhealthy_threshold, plus a
                # check's timeout and an interval of slack for jitter.
                wait_for(lambda: not endpoint_health(sc, victim.address)["healthy"],
                         INTERVAL * UNHEALTHY + 0.5 + INTERVAL + 2, interval=0.1,
                         what="the dead endpoint out")
                out_after = time.monotonic() - killed
                time.sleep(max(0.0, 20 - 10 - out_after))
                revived = Upstream("--port", str(ports[1]))
                ups.append(revived)
                wait_for(lambda: endpoint_health(sc, victim.address)["healthy"],
                         INTERVAL * HEALTHY + 0.5 + INTERVAL + 3, interval=0.1,
                         what="the endpoint back")
                out, _ = wrk.communicate(timeout=60)
            finally:
                if wrk.poll() is None:
                    wrk.kill()
                    wrk.wait()
            total = int(re.search(r"(\d+) requests in", out).group(1))
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                               r"timeout (\d+)", out)
            failed = (int(non2xx.group(1)) if non2xx else 0) + \
                (sum(int(x) for x in errors.groups()) if errors else 0)
            print(f"\nchaos: {total} requests, {failed} failed, dead endpoint out after "
                  f"{out_after:.1f}s", file=sys.stderr)
            self.assertGreater(total, 1000, out)
            self.assertLessEqual(failed / total, 0.001, out)
            m = parse_metrics(sc.admin_get("/metrics")[1])
            self.assertGreater(metric_value(m, "sidecar_cluster_health_check_failures_total",
                                            cluster="app"), 0)
            self.assertEqual(metric_value(m, "sidecar_cluster_membership_healthy",
                                          cluster="app"), 3)
            # The revived endpoint serves again.
            before = revived.stats()["requests"]
            for _ in range(30):
                with urllib.request.urlopen(sc.url("/hello"), timeout=5) as r:
                    self.assertEqual(r.status, 200)
            self.assertGreater(revived.stats()["requests"] - before, 5)
        finally:
            sc.stop()
            for u in ups:
                u.stop()


if __name__ == "__main__":
    run_tests()
