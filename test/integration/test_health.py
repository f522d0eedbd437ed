#!/usr/bin/python3
"""Endpoint health and discovery (docs/resilience.md), with real processes:
active HTTP and TCP health checks, outlier ejection after consecutive 5xx,
and DNS discovery against a real dnsmasq whose hosts file changes while
traffic flows."""
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Sidecar, Upstream, _PROCESSES, free_port, wait_for  # noqa: E402


def control(upstream, what, status):
    req = urllib.request.Request(f"http://{upstream.address}/control/{what}?status={status}",
                                 method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


def get(sidecar, path):
    """(status, body) of one request through the proxy, on a new connection."""
    c = http.client.HTTPConnection("127.0.0.1", sidecar.port(), timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def endpoints(sidecar, cluster="app"):
    """The endpoints of `cluster` in /clusters, by address."""
    status, body = sidecar.admin_get("/clusters")
    assert status == 200, body
    for c in json.loads(body)["clusters"]:
        if c["name"] == cluster:
            return {e["address"]: e for e in c["endpoints"]}, c
    raise AssertionError(f"no cluster {cluster} in {body}")


def metric(sidecar, name, **labels):
    status, body = sidecar.admin_get("/metrics")
    assert status == 200
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in body.splitlines():
        if line.startswith(name + "{") and want in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def cluster_config(upstreams, extra):
    eps = ", ".join(f'"{u.address}"' for u in upstreams)
    return f"""
workers: 2
clusters:
  - name: app
    endpoints: [ {eps} ]
    connect_timeout: 1s
{extra}
listeners:
  - name: inbound
    address: 127.0.0.1:0
    routes:
      - match: {{ prefix: / }}
        cluster: app
"""


class ActiveHealthCheckTest(unittest.TestCase):
    def test_http_check_takes_a_failing_endpoint_out_and_back(self):
        ups = [Upstream() for _ in range(3)]
        sick = ups[1]
        sc = Sidecar(cluster_config(ups, """
    health_checks:
      - http: { path: /health, expected_statuses: [ 200-299 ], retriable_statuses: [ 503 ] }
        interval: 200ms
        timeout: 1s
        unhealthy_threshold: 3
        healthy_threshold: 2
"""))
        try:
            wait_for(lambda: all(e["health_check"]["state"] == "healthy"
                                 for e in endpoints(sc)[0].values()), what="first checks")
            served = {get(sc, "/whoami")[1].strip() for _ in range(12)}
            self.assertEqual(served, {u.address for u in ups})

            # /health answers 503 (retriable): out after unhealthy_threshold failures.
            control(sick, "health", 503)
            ep = wait_for(lambda: (lambda e: e if e["health_check"]["state"] == "unhealthy"
                                   else None)(endpoints(sc)[0][sick.address]),
                          what="the endpoint failed by health checks")
            self.assertGreaterEqual(ep["health_check"]["consecutive_failures"], 3)
            self.assertFalse(ep["healthy"])
            self.assertEqual(metric(sc, "sidecar_cluster_membership_healthy", cluster="app"), 2)
            self.assertGreater(
                metric(sc, "sidecar_cluster_health_check_failures_total", cluster="app"), 0)
            for _ in range(20):
                status, who = get(sc, "/whoami")
                self.assertEqual(status, 200)
                self.assertNotEqual(who.strip(), sick.address)

            # Healthy again after healthy_threshold passing checks.
            control(sick, "health", 200)
            ep = wait_for(lambda: (lambda e: e if e["health_check"]["state"] == "healthy"
                                   else None)(endpoints(sc)[0][sick.address]),
                          what="the endpoint healthy again")
            self.assertGreaterEqual(ep["health_check"]["consecutive_successes"], 2)
            served = {get(sc, "/whoami")[1].strip() for _ in range(12)}
            self.assertIn(sick.address, served)
            self.assertEqual(metric(sc, "sidecar_cluster_membership_healthy", cluster="app"), 3)

            # A status outside expected and retriable fails it at the first check.
            control(sick, "health", 500)
            ep = wait_for(lambda: (lambda e: e if e["health_check"]["state"] == "unhealthy"
                                   else None)(endpoints(sc)[0][sick.address]),
                          what="the endpoint failed at once")
            # One failing check did it, not unhealthy_threshold (3) of them;
            # another may have run before the admin endpoint was asked.
            self.assertLessEqual(ep["health_check"]["consecutive_failures"], 2)
        finally:
            sc.stop()
            for u in ups:
                u.stop()

    def test_degraded_endpoint_gets_only_what_the_healthy_cannot_take(self):
        ups = [Upstream() for _ in range(4)]
        slow = ups[0]
        sc = Sidecar(cluster_config(ups, """
    lb_policy: round_robin
    health_checks:
      - http: { path: /health }
        interval: 200ms
        timeout: 1s
"""))
        try:
            wait_for(lambda: all(e["health_check"]["state"] == "healthy"
                                 for e in endpoints(sc)[0].values()), what="first checks")
            # The check answers x-envoy-degraded: 3 of 4 healthy take
            # min(100%, 1.4 * 75%) of the traffic, the degraded one none.
            control(slow, "degraded", 1)
            wait_for(lambda: endpoints(sc)[0][slow.address].get("degraded"),
                     what="the endpoint degraded")
            self.assertEqual(metric(sc, "sidecar_cluster_membership_degraded", cluster="app"), 1)
            self.assertEqual(metric(sc, "sidecar_cluster_membership_healthy", cluster="app"), 4)
            served = [get(sc, "/whoami")[1].strip() for _ in range(40)]
            self.assertNotIn(slow.address, served)
            self.assertEqual(set(served), {u.address for u in ups[1:]})
            # Only it and one other left: it takes the share the other cannot.
            for u in ups[2:]:
                control(u, "health", 500)
            wait_for(lambda: metric(sc, "sidecar_cluster_membership_healthy", cluster="app") == 2,
                     what="two endpoints failed")
            served = [get(sc, "/whoami")[1].strip() for _ in range(60)]
            self.assertIn(slow.address, served)
            self.assertIn(ups[1].address, served)
            # No longer degraded: back to plain round robin.
            control(slow, "degraded", 0)
            wait_for(lambda: not endpoints(sc)[0][slow.address].get("degraded"),
                     what="the endpoint no longer degraded")
            self.assertEqual(metric(sc, "sidecar_cluster_membership_degraded", cluster="app"), 0)
        finally:
            sc.stop()
            for u in ups:
                u.stop()

    def test_tcp_check_against_a_closed_port(self):
        up = Upstream()
        closed = f"127.0.0.1:{free_port()}"
        sc = Sidecar(f"""
workers: 2
clusters:
  - name: app
    endpoints: [ "{up.address}", "{closed}" ]
    connect_timeout: 1s
    health_checks:
      - tcp: {{}}
        interval: 200ms
        timeout: 500ms
listeners:
  - name: inbound
    address: 127.0.0.1:0
    routes:
      - match: {{ prefix: / }}
        cluster: app
""")
        try:
            wait_for(lambda: (lambda eps: eps[up.address]["health_check"]["state"] == "healthy"
                              and eps[closed]["health_check"]["state"] == "unhealthy"
                              and eps[closed]["health_check"]["failures"] >= 1)(endpoints(sc)[0]),
                     what="the closed port failed, the open one passing")
            # Round robin without health would send every other request to
            # the closed port (503); with it, all go to the live one.
            for _ in range(20):
                self.assertEqual(get(sc, "/hello"), (200, "hello\n"))
            config = json.loads(sc.admin_get("/config")[1])
            self.assertEqual(config["clusters"][0]["health_checks"][0]["tcp"]["send"], "")
        finally:
            sc.stop()
            up.stop()


class OutlierDetectionTest(unittest.TestCase):
    def test_consecutive_5xx_ejects_and_the_ejection_ends(self):
        ups = [Upstream() for _ in range(3)]
        bad = ups[0]
        sc = Sidecar(cluster_config(ups, """
    outlier_detection:
      consecutive_5xx: 3
      interval: 500ms
      base_ejection_time: 3s
      max_ejection_percent: 50
"""))
        try:
            control(bad, "fail", 500)
            # Round robin reaches it every third request (per worker).
            for _ in range(60):
                get(sc, "/whoami")
                if endpoints(sc)[0][bad.address]["outlier"]["ejected"]:
                    break
            ep = endpoints(sc)[0][bad.address]
            self.assertTrue(ep["outlier"]["ejected"], ep)
            self.assertEqual(ep["outlier"]["ejections_total"], 1)
            self.assertIn("ejected_until", ep["outlier"])
            self.assertFalse(ep["healthy"])
            self.assertEqual(
                metric(sc, "sidecar_cluster_outlier_detection_ejections_active", cluster="app"), 1)
            self.assertEqual(
                metric(sc, "sidecar_cluster_outlier_detection_ejections_total", cluster="app"), 1)
            self.assertEqual(metric(sc, "sidecar_cluster_outlier_detection_ejections_detected_total",
                                    cluster="app", type="consecutive_5xx"), 1)
            # Ejected: every request goes to the others.
            for _ in range(20):
                status, who = get(sc, "/whoami")
                self.assertEqual(status, 200)
                self.assertNotEqual(who.strip(), bad.address)

            # It recovers; the ejection ends on an interval tick after 3s.
            control(bad, "fail", 0)
            wait_for(lambda: not endpoints(sc)[0][bad.address]["outlier"]["ejected"],
                     timeout=10, what="the ejection to end")
            self.assertEqual(
                metric(sc, "sidecar_cluster_outlier_detection_ejections_active", cluster="app"), 0)
            served = {get(sc, "/whoami")[1].strip() for _ in range(12)}
            self.assertIn(bad.address, served)
        finally:
            sc.stop()
            for u in ups:
                u.stop()


class GrpcHealthCheckTest(unittest.TestCase):
    """grpc.health.v1 over h2c against a real grpcio server."""

    def test_serving_not_serving_serving(self):
        import grpc
        from concurrent import futures
        status = {"users": 1}  # SERVING

        def check(request, context):
            # HealthCheckRequest{service = 1}: the bytes as sent.
            name = request[2:2 + request[1]].decode() if request[:1] == b"\x0a" else ""
            if name not in status:
                context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
            return b"\x08" + bytes([status[name]])

        handler = grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check)})
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        address = f"127.0.0.1:{port}"
        sc = Sidecar(f"""
clusters:
  - name: app
    protocol: h2c
    endpoints: [ "{address}" ]
    health_checks:
      - grpc: {{ service_name: users }}
        interval: 200ms
        timeout: 1s
listeners:
  - name: inbound
    address: 127.0.0.1:0
    routes:
      - match: {{ prefix: / }}
        cluster: app
""")
        state = lambda: endpoints(sc)[0][address]["health_check"]["state"]  # noqa: E731
        try:
            wait_for(lambda: state() == "healthy", what="SERVING")
            status["users"] = 2  # NOT_SERVING: out at the first answer
            wait_for(lambda: state() == "unhealthy", what="NOT_SERVING")
            status["users"] = 1
            wait_for(lambda: state() == "healthy", what="SERVING again")
            self.assertGreaterEqual(endpoints(sc)[0][address]["health_check"]["successes"], 3)
            del status["users"]  # grpc-status NOT_FOUND fails it too
            wait_for(lambda: state() == "unhealthy", what="an unknown service")
        finally:
            sc.stop()
            server.stop(None)


@unittest.skipUnless(shutil.which("dnsmasq") or os.path.exists("/usr/sbin/dnsmasq"),
                     "dnsmasq is not installed (scripts/install-deps.sh)")
class DnsDiscoveryTest(unittest.TestCase):
    def start_dnsmasq(self, port, hosts):
        binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        p = subprocess.Popen([binary, "--keep-in-foreground", "--conf-file=/dev/null",
                              f"--port={port}", "--listen-address=127.0.0.1",
                              "--bind-interfaces", "--no-resolv", "--no-hosts",
                              f"--addn-hosts={hosts}", "--pid-file=", "--user=root",
                              "--local-ttl=0"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _PROCESSES.append(p)
        return p

    def test_records_added_and_removed_while_traffic_flows(self):
        tmp = tempfile.TemporaryDirectory(prefix="sidecar-dns-")
        hosts = os.path.join(tmp.name, "hosts")
        port = free_port()
        a = Upstream("--host", "127.0.0.2", "--port", str(port))
        a.address = f"127.0.0.2:{port}"
        b = Upstream("--host", "127.0.0.3", "--port", str(port))
        b.address = f"127.0.0.3:{port}"
        with open(hosts, "w") as f:
            f.write("127.0.0.2 users.test\n")
        dns_port = free_port()
        dns = self.start_dnsmasq(dns_port, hosts)
        sc = None
        stop = threading.Event()
        results = []

        def traffic():
            while not stop.is_set():
                try:
                    results.append(get(sc, "/whoami"))
                except OSError as e:
                    results.append((0, str(e)))
                time.sleep(0.005)

        try:
            sc = Sidecar(f"""
workers: 2
clusters:
  - name: app
    endpoints: [ "users.test:{port}" ]
    connect_timeout: 1s
    discovery:
      dns: {{ refresh_rate: 200ms, lookup_family: v4, resolvers: [ "127.0.0.1:{dns_port}" ] }}
listeners:
  - name: inbound
    address: 127.0.0.1:0
    routes:
      - match: {{ prefix: / }}
        cluster: app
""")
            wait_for(lambda: set(endpoints(sc)[0]) == {a.address}, what="the first answer")
            t = threading.Thread(target=traffic)
            t.start()

            # A record added: traffic reaches both.
            with open(hosts, "w") as f:
                f.write("127.0.0.2 users.test\n127.0.0.3 users.test\n")
            dns.send_signal(signal.SIGHUP)
            wait_for(lambda: set(endpoints(sc)[0]) == {a.address, b.address},
                     what="the added record")
            wait_for(lambda: any(r[1].strip() == b.address for r in results),
                     what="traffic to the new endpoint")

            # A record removed: it drains, the rest goes on.
            with open(hosts, "w") as f:
                f.write("127.0.0.3 users.test\n")
            dns.send_signal(signal.SIGHUP)
            wait_for(lambda: set(endpoints(sc)[0]) == {b.address}, what="the removed record")
            mark = len(results)
            wait_for(lambda: len(results) > mark + 20, what="more traffic")

            # The resolver goes away: failures are counted, the endpoints stay.
            dns.terminate()
            dns.wait(timeout=10)
            wait_for(lambda: (metric(sc, "sidecar_cluster_dns_failures_total", cluster="app")
                              or 0) >= 1, timeout=15, what="a failed resolution")
            self.assertEqual(set(endpoints(sc)[0]), {b.address})
            mark2 = len(results)
            wait_for(lambda: len(results) > mark2 + 20, what="traffic after the failure")
            stop.set()
            t.join(timeout=30)

            bad = [r for r in results if r[0] != 200]
            self.assertEqual(bad, [], f"{len(bad)} of {len(results)} requests failed")
            served = [r[1].strip() for r in results]
            self.assertIn(a.address, served)
            self.assertIn(b.address, served)
            # Once the removal was published, nothing new went to it.
            self.assertNotIn(a.address, served[mark + 5:])
            self.assertGreaterEqual(
                metric(sc, "sidecar_cluster_dns_resolutions_total", cluster="app"), 3)
            self.assertGreaterEqual(
                metric(sc, "sidecar_cluster_dns_updates_total", cluster="app"), 2)
            _, cluster = endpoints(sc)
            self.assertGreaterEqual(cluster["dns"]["failures"], 1)
        finally:
            stop.set()
            if sc is not None:
                sc.stop()
            if dns.poll() is None:
                dns.kill()
                dns.wait()
            a.stop()
            b.stop()
            tmp.cleanup()


if __name__ == "__main__":
    unittest.main()
