#!/usr/bin/python3
"""Endpoint choice and limits with real upstream processes (docs/resilience.md):
weights, least_request and ewma against a slow endpoint, ring_hash and maglev
stickiness by header and cookie (Set-Cookie sent), weighted_clusters, circuit
breaker overflow (503 UO, metrics), config errors with positions.

Priority spill-over needs endpoint health (health checks, outlier
detection); until they land it is covered by the unit tests
(test/upstream/load_balancer_test.cc, PriorityLoad.*)."""
import http.client
import json
import os
import subprocess
import tempfile
import threading
import time
import unittest

from harness import BIN, Sidecar, Upstream, free_port, run_tests, wait_for


def get(port, path="/hello", headers=None, conn=None):
    """One GET; returns (status, headers dict lower-case, body)."""
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        if own:
            c.close()


def in_flight(upstream):
    """Requests the upstream is serving, besides the /stats call itself."""
    return upstream.stats()["in_flight"] - 1


def cluster_yaml(name, upstreams, extra=""):
    eps = ", ".join(f'"{u.address}"' for u in upstreams)
    return f"""  - name: {name}
    endpoints: [ {eps} ]
    connect_timeout: 1s
{extra}"""


def config(clusters, route, workers=1, extra=""):
    return f"""
workers: {workers}
{extra}clusters:
{clusters}
listeners:
  - name: in
    address: 127.0.0.1:0
    routes:
      - match: {{ prefix: / }}
{route}
"""


class Fixture(unittest.TestCase):
    def start_upstreams(self, *names, delay=0.0):
        ups = []
        for n in names:
            args = ["--name", n]
            if delay and n.startswith("slow"):
                args += ["--delay", str(delay)]
            u = Upstream(*args)
            self.addCleanup(u.stop)
            ups.append(u)
        return ups

    def start_sidecar(self, yaml):
        s = Sidecar(yaml)
        self.addCleanup(s.stop)
        return s

    def served_by(self, port, n, path="/hello", headers=None):
        """Counts of the x-upstream header over `n` keep-alive requests."""
        counts = {}
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for _ in range(n):
                status, h, _ = get(port, path, headers, conn=c)
                self.assertEqual(status, 200)
                counts[h["x-upstream"]] = counts.get(h["x-upstream"], 0) + 1
        finally:
            c.close()
        return counts


class Weights(Fixture):
    def test_round_robin_weights_are_honoured(self):
        a, b = self.start_upstreams("a", "b")
        clusters = f"""  - name: app
    endpoints:
      - {{ address: "{a.address}", weight: 3 }}
      - "{b.address}"
"""
        s = self.start_sidecar(config(clusters, "        cluster: app"))
        counts = self.served_by(s.port(), 400)
        # Smooth weighted round robin on one worker: exactly 3 to 1.
        self.assertEqual(counts, {"a": 300, "b": 100})

    def test_random_weights_are_honoured(self):
        a, b = self.start_upstreams("a", "b")
        clusters = f"""  - name: app
    lb_policy: random
    endpoints: [ {{ address: "{a.address}", weight: 4 }}, "{b.address}" ]
"""
        s = self.start_sidecar(config(clusters, "        cluster: app", workers=2))
        counts = self.served_by(s.port(), 500)
        self.assertGreater(counts.get("a", 0), 320)  # 400 expected
        self.assertGreater(counts.get("b", 0), 40)   # 100 expected


class BusyEndpoints(Fixture):
    def closed_loop(self, port, clients, per_client):
        """`clients` threads doing requests back to back; counts by upstream."""
        counts = {}
        lock = threading.Lock()
        errors = []

        def run():
            try:
                got = self.served_by(port, per_client)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
                return
            with lock:
                for k, v in got.items():
                    counts[k] = counts.get(k, 0) + v

        threads = [threading.Thread(target=run) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        return counts

    def check_prefers_fast(self, policy):
        ups = self.start_upstreams("slow", "fast1", "fast2", delay=0.25)
        s = self.start_sidecar(config(cluster_yaml("app", ups, f"    lb_policy: {policy}\n"),
                                      "        cluster: app"))
        counts = self.closed_loop(s.port(), clients=6, per_client=25)
        total = sum(counts.values())
        self.assertEqual(total, 150)
        # Round robin would send a third (50) to the slow endpoint; with
        # two choices it is picked only when both choices are it (1/9), or
        # when its cost is not above the other's.
        self.assertLess(counts.get("slow", 0), 30, counts)
        return counts

    def test_least_request_prefers_the_less_busy_endpoint(self):
        self.check_prefers_fast("least_request")

    def test_ewma_prefers_the_faster_endpoint(self):
        self.check_prefers_fast("ewma")

    def test_round_robin_does_not(self):
        # The control: the same load spread evenly by round robin.
        ups = self.start_upstreams("slow", "fast1", "fast2", delay=0.25)
        s = self.start_sidecar(config(cluster_yaml("app", ups), "        cluster: app"))
        counts = self.closed_loop(s.port(), clients=6, per_client=10)
        self.assertEqual(counts.get("slow", 0), 20, counts)


class Stickiness(Fixture):
    def sticky_by_header(self, policy):
        ups = self.start_upstreams("a", "b", "c")
        route = """        cluster: app
        hash_policy: [ { header: { header_name: x-user } } ]"""
        s = self.start_sidecar(config(cluster_yaml("app", ups, f"    lb_policy: {policy}\n"),
                                      route, workers=2))
        owners = {}
        for user in range(30):
            counts = self.served_by(s.port(), 4, headers={"x-user": f"user-{user}"})
            self.assertEqual(len(counts), 1, f"user-{user} went to {counts}")
            owners[user] = next(iter(counts))
        # Keys spread over the endpoints (30 keys on 3: all of them).
        self.assertEqual(set(owners.values()), {"a", "b", "c"})
        # A second sidecar (another process, another worker) maps keys alike.
        s2 = self.start_sidecar(config(cluster_yaml("app", ups, f"    lb_policy: {policy}\n"),
                                       route, workers=1))
        for user in range(0, 30, 5):
            counts = self.served_by(s2.port(), 1, headers={"x-user": f"user-{user}"})
            self.assertEqual(next(iter(counts)), owners[user])

    def test_ring_hash_by_header(self):
        self.sticky_by_header("ring_hash")

    def test_maglev_by_header(self):
        self.sticky_by_header("maglev")

    def test_ring_hash_by_cookie_sets_the_cookie(self):
        ups = self.start_upstreams("a", "b", "c")
        route = """        cluster: app
        hash_policy: [ { cookie: { name: affinity, ttl: 1h, path: / } } ]"""
        s = self.start_sidecar(config(cluster_yaml("app", ups, "    lb_policy: ring_hash\n"),
                                      route, workers=2))
        seen = set()
        for _ in range(12):
            status, h, _ = get(s.port())
            self.assertEqual(status, 200)
            cookie = h.get("set-cookie", "")
            self.assertRegex(cookie, r"^affinity=[0-9a-f]{16}; Max-Age=3600; Path=/; HttpOnly$")
            first = h["x-upstream"]
            value = cookie.split(";")[0]
            # With the cookie: always the same endpoint, no new cookie.
            for _ in range(4):
                status, h2, _ = get(s.port(), headers={"Cookie": f"other=1; {value}"})
                self.assertEqual(h2["x-upstream"], first)
                self.assertNotIn("set-cookie", h2)
            seen.add(first)
        self.assertGreater(len(seen), 1)  # new cookies spread


class PreviousHosts(Fixture):
    def test_a_retry_goes_to_another_endpoint(self):
        # ring_hash sends a key to the same endpoint every time; a retry of a
        # key whose endpoint refuses connections must go to the other one.
        (live,) = self.start_upstreams("live")
        dead = free_port()
        clusters = f"""  - name: app
    lb_policy: ring_hash
    endpoints: [ "127.0.0.1:{dead}", "{live.address}" ]
    connect_timeout: 1s
"""
        route = """        cluster: app
        hash_policy: [ { header: { header_name: x-user } } ]
        retry_policy: { retry_on: [ connect-failure ], num_retries: 1 }"""
        s = self.start_sidecar(config(clusters, route))
        for user in range(40):
            status, h, _ = get(s.port(), headers={"x-user": f"user-{user}"})
            self.assertEqual(status, 200, f"user-{user}")
            self.assertEqual(h["x-upstream"], "live")
        _, body = s.admin_get("/metrics")
        failures = [line for line in body.splitlines()
                    if line.startswith('sidecar_upstream_connect_failures_total{cluster="app"')]
        self.assertTrue(failures and float(failures[0].rsplit(" ", 1)[1]) >= 1, failures)


class WeightedClusters(Fixture):
    def test_split_by_weight(self):
        (v1,) = self.start_upstreams("v1")
        (v2,) = self.start_upstreams("v2")
        route = """        weighted_clusters: [ { name: v1, weight: 80 }, { name: v2, weight: 20 } ]"""
        s = self.start_sidecar(config(cluster_yaml("v1", [v1]) + cluster_yaml("v2", [v2]), route,
                                      workers=2))
        counts = self.served_by(s.port(), 500)
        self.assertGreater(counts.get("v2", 0), 50)   # 100 expected
        self.assertLess(counts.get("v2", 0), 160)

    def test_sticky_with_a_hash_policy(self):
        (v1,) = self.start_upstreams("v1")
        (v2,) = self.start_upstreams("v2")
        route = """        weighted_clusters: [ { name: v1, weight: 50 }, { name: v2, weight: 50 } ]
        hash_policy: [ { header: { header_name: x-user } } ]"""
        s = self.start_sidecar(config(cluster_yaml("v1", [v1]) + cluster_yaml("v2", [v2]), route,
                                      workers=2))
        versions = set()
        for user in range(20):
            counts = self.served_by(s.port(), 5, headers={"x-user": f"u{user}"})
            self.assertEqual(len(counts), 1, counts)
            versions |= set(counts)
        self.assertEqual(versions, {"v1", "v2"})


class CircuitBreakers(Fixture):
    def metrics(self, s):
        status, body = s.admin_get("/metrics")
        self.assertEqual(status, 200)
        out = {}
        for line in body.splitlines():
            if (line.startswith(("sidecar_cluster_circuit_breaker", "sidecar_upstream_requests_active"))
                    and 'cluster="app"' in line):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def test_max_requests_overflow_is_503_uo(self):
        (slow,) = self.start_upstreams("slow", delay=2.0)
        log = tempfile.NamedTemporaryFile(prefix="balancing-log-", delete=False)
        log.close()
        self.addCleanup(os.unlink, log.name)
        clusters = cluster_yaml("app", [slow], "    circuit_breakers: { max_requests: 2 }\n")
        access_log = f'access_log: {{ path: "{log.name}", format: json }}\n'
        s = self.start_sidecar(config(clusters, "        cluster: app", workers=2,
                                      extra=access_log))
        port = s.port()
        before = self.metrics(s)
        self.assertEqual(
            before['sidecar_cluster_circuit_breaker_remaining{cluster="app",resource="requests"}'],
            2)
        results = []
        threads = [threading.Thread(target=lambda: results.append(get(port)[0]))
                   for _ in range(2)]
        for t in threads:
            t.start()
        wait_for(lambda: in_flight(slow) >= 2, timeout=10, what="2 requests in flight")
        m = self.metrics(s)
        self.assertEqual(m['sidecar_cluster_circuit_breaker_open{cluster="app",resource="requests"}'],
                         1)
        self.assertEqual(
            m['sidecar_cluster_circuit_breaker_remaining{cluster="app",resource="requests"}'], 0)
        self.assertEqual(m['sidecar_upstream_requests_active{cluster="app"}'], 2)
        _, body = s.admin_get("/clusters")
        (endpoint,) = json.loads(body)["clusters"][0]["endpoints"]
        self.assertEqual((endpoint["requests_active"], endpoint["weight"], endpoint["priority"]),
                         (2, 1, 0))
        # The third: refused at once, the upstream never sees it.
        seen = slow.stats()["requests"]
        status, h, body = get(port)
        self.assertEqual(status, 503)
        self.assertIn(b"overflow", body)
        self.assertEqual(slow.stats()["requests"], seen + 1)  # + this /stats call
        for t in threads:
            t.join(30)
        self.assertEqual(sorted(results), [200, 200])
        m = self.metrics(s)
        self.assertGreaterEqual(
            m['sidecar_cluster_circuit_breaker_overflow_total{cluster="app",resource="requests"}'],
            1)
        # Closed again once both finished (the worker counts them down
        # right after the responses went out).
        open_key = 'sidecar_cluster_circuit_breaker_open{cluster="app",resource="requests"}'
        wait_for(lambda: self.metrics(s)[open_key] == 0, timeout=10, what="the breaker closed")
        self.assertEqual(self.metrics(s)['sidecar_upstream_requests_active{cluster="app"}'], 0)
        # The access log says UO for the refused one.
        def flags():
            with open(log.name) as f:
                return [json.loads(line).get("response_flags") for line in f if line.strip()]
        wait_for(lambda: len(flags()) >= 3, timeout=10, what="3 access log lines")
        self.assertIn("UO", flags())
        # Capacity is back: a request goes through.
        self.assertEqual(get(port)[0], 200)

    def test_max_connections_overflow(self):
        (slow,) = self.start_upstreams("slow", delay=0.8)
        # One connection, one place in the queue: a third request is
        # refused at once.
        clusters = cluster_yaml(
            "app", [slow], "    circuit_breakers: { max_connections: 1, max_pending_requests: 1 }\n")
        s = self.start_sidecar(config(clusters, "        cluster: app"))
        port = s.port()
        results = []
        threads = [threading.Thread(target=lambda: results.append(get(port)[0]))
                   for _ in range(2)]
        threads[0].start()
        wait_for(lambda: in_flight(slow) >= 1, timeout=10, what="1 request in flight")
        threads[1].start()
        remaining = 'sidecar_cluster_circuit_breaker_remaining{cluster="app",resource="pending_requests"}'
        wait_for(lambda: self.metrics(s)[remaining] == 0, timeout=10, what="1 request queued")
        status, _, body = get(port)  # needs a second connection; the queue is full
        self.assertEqual(status, 503)
        self.assertIn(b"overflow", body)
        for t in threads:
            t.join(30)
        self.assertEqual(results, [200, 200])  # the queued one got the connection
        m = self.metrics(s)
        self.assertGreaterEqual(
            m['sidecar_cluster_circuit_breaker_overflow_total{cluster="app",resource="connections"}'],
            1)
        # The pooled connection is reused (once back in the pool): no new one needed.
        wait_for(lambda: get(port)[0] == 200, timeout=10, what="a request on the pooled connection")
        self.assertGreaterEqual(
            self.metrics(s)[
                'sidecar_cluster_circuit_breaker_overflow_total{cluster="app",resource="pending_requests"}'],
            1)

    def test_requests_queue_for_a_connection_up_to_max_pending_requests(self):
        a, b = self.start_upstreams("slow-a", "slow-b", delay=0.2)
        # connect_timeout 1 s (cluster_yaml) bounds each wait: 3 x 0.2 s fit.
        clusters = cluster_yaml(
            "app", [a, b], "    circuit_breakers: { max_connections: 1, max_pending_requests: 4 }\n")
        s = self.start_sidecar(config(clusters, "        cluster: app"))
        port = s.port()
        results = []
        threads = [threading.Thread(target=lambda: results.append(get(port)[0]))
                   for _ in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: in_flight(a) + in_flight(b) >= 1, timeout=10, what="1 request in flight")
        # One connection at a time; the other three wait in the queue, and
        # each takes the connection (or its place, on the other endpoint)
        # when the one before finishes.
        wait_for(lambda: self.metrics(s).get(
            'sidecar_cluster_circuit_breaker_remaining{cluster="app",resource="pending_requests"}')
            == 1, timeout=10, what="3 requests queued")
        peak = 0
        while any(t.is_alive() for t in threads):
            peak = max(peak, in_flight(a) + in_flight(b))
            time.sleep(0.05)
        for t in threads:
            t.join(30)
        self.assertEqual(results, [200, 200, 200, 200])
        self.assertEqual(peak, 1)

    def test_a_queued_request_gives_up_after_connect_timeout(self):
        (slow,) = self.start_upstreams("slow", delay=3)
        # connect_timeout 1 s (cluster_yaml): the most a request waits.
        clusters = cluster_yaml("app", [slow], "    circuit_breakers: { max_connections: 1 }\n")
        s = self.start_sidecar(config(clusters, "        cluster: app"))
        port = s.port()
        t = threading.Thread(target=lambda: get(port))
        t.start()
        wait_for(lambda: in_flight(slow) >= 1, timeout=10, what="1 request in flight")
        start = time.monotonic()
        status, _, body = get(port)
        waited = time.monotonic() - start
        self.assertEqual(status, 503)
        self.assertIn(b"overflow", body)
        self.assertGreaterEqual(waited, 0.9)  # it did wait (the tick ends it: 1 s granularity)
        t.join(30)


class RetryBreaker(Fixture):
    def test_max_retries_zero_refuses_retries(self):
        # ring_hash over a refusing endpoint and a live one: with retries
        # allowed, keys of the refusing one are retried on the live one
        # (test_a_retry_goes_to_another_endpoint); with max_retries 0 the
        # breaker refuses every retry and those keys fail.
        (live,) = self.start_upstreams("live")
        dead = free_port()
        clusters = f"""  - name: app
    lb_policy: ring_hash
    endpoints: [ "127.0.0.1:{dead}", "{live.address}" ]
    connect_timeout: 1s
    circuit_breakers: {{ max_retries: 0 }}
"""
        route = """        cluster: app
        hash_policy: [ { header: { header_name: x-user } } ]
        retry_policy: { retry_on: [ connect-failure ], num_retries: 1 }"""
        s = self.start_sidecar(config(clusters, route))
        statuses = [get(s.port(), headers={"x-user": f"user-{u}"})[0] for u in range(40)]
        self.assertIn(503, statuses)
        self.assertIn(200, statuses)
        _, body = s.admin_get("/metrics")
        overflow = [line for line in body.splitlines() if line.startswith(
            'sidecar_cluster_circuit_breaker_overflow_total{cluster="app",resource="retries"}')]
        self.assertEqual(float(overflow[0].rsplit(" ", 1)[1]), statuses.count(503), overflow)


class ConfigErrors(unittest.TestCase):
    def validate(self, yaml):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(yaml)
        try:
            p = subprocess.run([BIN, "validate", "-c", f.name], capture_output=True, text=True,
                               timeout=30)
        finally:
            os.unlink(f.name)
        return p.returncode, p.stderr + p.stdout, f.name

    def test_bad_fields_have_positions(self):
        code, out, path = self.validate("""clusters:
  - name: app
    endpoints: [ { address: 127.0.0.1:8080, weight: 0 } ]
    lb_policy: fastest
listeners:
  - name: in
    address: 127.0.0.1:0
    routes: [ { match: { prefix: / }, weighted_clusters: [ { name: nope, weight: 1 } ] } ]
""")
        self.assertEqual(code, 64, out)
        self.assertIn(f"{path}:3:", out)
        self.assertIn(f"{path}:4:16: clusters[0].lb_policy", out)
        self.assertIn("no cluster named 'nope'", out)


if __name__ == "__main__":
    run_tests()
