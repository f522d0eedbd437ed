#!/usr/bin/python3
"""Route retry policies, hedging and mirroring through the real binary
(issue 12, docs/resilience.md): a scripted upstream fails on demand (status
codes, resets, slowness) per request path, and each test shows what the
client gets, what the upstream saw, the access log and the counters."""
import hashlib
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (BIN, Sidecar, curl, free_port, metric_value, parse_metrics, run_tests,
                     wait_for)
from scripted import ScriptedUpstream


class Plan:
    """Per path, the answers to give in order ("503", "reset", "slow:2",
    "429:retry-after=1"); after the list runs out, 200 with the body's
    sha256. Records every request per path."""

    def __init__(self):
        self.plans = {}
        self.seen = {}
        self.lock = threading.Lock()

    def set(self, path, answers):
        with self.lock:
            self.plans[path] = list(answers)
            self.seen[path] = []

    def requests(self, path):
        with self.lock:
            return list(self.seen.get(path, []))

    def __call__(self, req, conn):
        path = req.target.split("?")[0]
        body = req.read_body()
        with self.lock:
            self.seen.setdefault(path, []).append(req)
            answers = self.plans.get(path, [])
            answer = answers.pop(0) if answers else "200"
        if answer == "reset":
            conn.shutdown(socket.SHUT_RDWR)
            return False
        if answer.startswith("slow:"):
            time.sleep(float(answer[5:]))
            answer = "200"
        code, _, extra = answer.partition(":")
        headers = ""
        if extra.startswith("retry-after="):
            headers = f"Retry-After: {extra[12:]}\r\n"
        out = (hashlib.sha256(body).hexdigest() + "\n").encode()
        try:
            conn.sendall(f"HTTP/1.1 {code} X\r\nContent-Length: {len(out)}\r\n{headers}\r\n".encode()
                         + out)
        except OSError:
            return False
        return True


class RetryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.plan = Plan()
        cls.up = ScriptedUpstream(cls.plan)
        cls.shadow_plan = Plan()
        cls.shadow = ScriptedUpstream(cls.shadow_plan)
        cls.dead = free_port()
        cls.tmp = tempfile.TemporaryDirectory(prefix="sidecar-retries-")
        cls.log = os.path.join(cls.tmp.name, "access.log")
        retry = ("retry_policy: { retry_on: [ 5xx, reset ], num_retries: 2, "
                 "retry_back_off: { base_interval: 10ms, max_interval: 50ms } }")
        cls.sc = Sidecar(f"""
workers: 1
access_log:
  path: {cls.log}
  json_format: {{ path: "%REQ(:PATH)%", code: "%RESPONSE_CODE%", flags: "%RESPONSE_FLAGS%",
                  attempts: "%UPSTREAM_REQUEST_ATTEMPT_COUNT%" }}
clusters:
  - {{ name: app, endpoints: [ "{cls.up.address}" ], connect_timeout: 1s }}
  - {{ name: half, endpoints: [ "127.0.0.1:{cls.dead}", "{cls.up.address}" ], connect_timeout: 1s }}
  - {{ name: shadow, endpoints: [ "{cls.shadow.address}" ] }}
listeners:
  - name: inbound
    address: 127.0.0.1:0
    routes:
      - match: {{ prefix: /counted }}
        cluster: app
        include_request_attempt_count: true
        {retry}
      - match: {{ prefix: /post-any }}
        cluster: app
        retry_policy: {{ retry_on: [ 5xx ], num_retries: 1, retry_non_idempotent: true,
                        retry_back_off: {{ base_interval: 10ms }} }}
      - match: {{ prefix: /codes }}
        cluster: app
        retry_policy: {{ retry_on: [ gateway-error ], retriable_status_codes: [ 429 ],
                        num_retries: 1, retry_back_off: {{ base_interval: 10ms, max_interval: 100ms }} }}
      - match: {{ prefix: /connect }}
        cluster: half
        retry_policy: {{ retry_on: [ connect-failure ], num_retries: 1 }}
      - match: {{ prefix: /per-try }}
        cluster: app
        retry_policy: {{ retry_on: [ reset ], num_retries: 1, per_try_timeout: 300ms }}
      - match: {{ prefix: /hedge }}
        cluster: app
        retry_policy: {{ retry_on: [ 5xx ], num_retries: 1, per_try_timeout: 300ms,
                        hedge_on_per_try_timeout: true }}
      - match: {{ prefix: /mirrored }}
        cluster: app
        request_mirror_policies: [ {{ cluster: shadow }} ]
      - match: {{ prefix: / }}
        cluster: app
        {retry}
""")
        cls.port = cls.sc.port()

    @classmethod
    def tearDownClass(cls):
        cls.sc.stop()
        cls.up.stop()
        cls.shadow.stop()
        cls.tmp.cleanup()

    def get(self, path, *args):
        code, out, err = curl("-o", "-", "-w", "\n%{http_code}", *args,
                              f"http://127.0.0.1:{self.port}{path}")
        self.assertEqual(code, 0, err)
        body, _, status = out.decode().rpartition("\n")
        return int(status), body

    def metrics(self):
        status, text = self.sc.admin_get("/metrics")
        self.assertEqual(status, 200)
        return parse_metrics(text)

    def log_entry(self, path):
        def find():
            if not os.path.exists(self.log):
                return None
            with open(self.log) as f:
                for line in f:
                    e = json.loads(line)
                    if e["path"] == path:
                        return e
            return None
        wait_for(lambda: find() is not None, what=f"access log line for {path}")
        return find()

    def test_5xx_is_retried_and_counted(self):
        before = self.metrics()
        self.plan.set("/counted/a", ["503"])
        status, _ = self.get("/counted/a")
        self.assertEqual(status, 200)
        seen = self.plan.requests("/counted/a")
        self.assertEqual(len(seen), 2)
        self.assertEqual([r.header("x-sidecar-attempt-count") for r in seen], ["1", "2"])
        e = self.log_entry("/counted/a")
        self.assertEqual((e["code"], e["attempts"], e["flags"]), (200, 2, "-"))
        after = self.metrics()
        for name in ("sidecar_upstream_retries_total", "sidecar_upstream_retry_successes_total"):
            self.assertEqual(metric_value(after, name, cluster="app") - metric_value(before, name, cluster="app"),
                             1, name)
        self.assertGreaterEqual(metric_value(after, "sidecar_upstream_responses_total", cluster="app",
                                      code_class="5xx"), 1)

    def test_exhausted_retries_answer_the_last_response_with_urx(self):
        before = self.metrics()
        self.plan.set("/b", ["503", "503", "503", "503"])
        status, _ = self.get("/b")
        self.assertEqual(status, 503)
        self.assertEqual(len(self.plan.requests("/b")), 3)  # the first and num_retries 2
        e = self.log_entry("/b")
        self.assertEqual((e["code"], e["attempts"], e["flags"]), (503, 3, "URX"))
        after = self.metrics()
        self.assertEqual(metric_value(after, "sidecar_upstream_retry_limit_exceeded_total", cluster="app")
                         - metric_value(before, "sidecar_upstream_retry_limit_exceeded_total",
                                 cluster="app"), 1)

    def test_non_idempotent_request_is_not_retried_unless_allowed(self):
        self.plan.set("/c", ["503"])
        status, _ = self.get("/c", "-X", "POST", "--data-binary", "x")
        self.assertEqual(status, 503)
        self.assertEqual(len(self.plan.requests("/c")), 1)
        self.plan.set("/post-any/c", ["503"])
        status, body = self.get("/post-any/c", "-X", "POST", "--data-binary", "payload")
        self.assertEqual(status, 200)
        seen = self.plan.requests("/post-any/c")
        self.assertEqual([r.body for r in seen], [b"payload", b"payload"])

    def test_streamed_body_is_replayed_whole(self):
        data = os.urandom(300 * 1024)
        path = os.path.join(self.tmp.name, "body")
        with open(path, "wb") as f:
            f.write(data)
        self.plan.set("/post-any/big", ["503"])
        status, body = self.get("/post-any/big", "-X", "POST", "-H", "Transfer-Encoding: chunked",
                                "--data-binary", f"@{path}")
        self.assertEqual(status, 200)
        self.assertEqual(body.strip(), hashlib.sha256(data).hexdigest())
        seen = self.plan.requests("/post-any/big")
        self.assertEqual([len(r.body) for r in seen], [len(data), len(data)])
        self.assertEqual(seen[0].body, seen[1].body)

    def test_reset_before_the_response_is_retried(self):
        self.plan.set("/d", ["reset"])
        status, _ = self.get("/d")
        self.assertEqual(status, 200)
        self.assertEqual(len(self.plan.requests("/d")), 2)

    def test_status_codes_and_gateway_errors(self):
        self.plan.set("/codes/429", ["429:retry-after=1"])
        self.assertEqual(self.get("/codes/429")[0], 200)
        self.assertEqual(len(self.plan.requests("/codes/429")), 2)
        self.plan.set("/codes/500", ["500"])  # not a gateway error
        self.assertEqual(self.get("/codes/500")[0], 500)
        self.assertEqual(len(self.plan.requests("/codes/500")), 1)
        self.plan.set("/codes/502", ["502"])
        self.assertEqual(self.get("/codes/502")[0], 200)

    def test_connect_failure_goes_to_another_endpoint(self):
        # One of the two endpoints refuses connections: every request lands.
        for i in range(6):
            status, _ = self.get(f"/connect/{i}")
            self.assertEqual(status, 200, i)
        self.assertGreaterEqual(metric_value(self.metrics(), "sidecar_upstream_connect_failures_total",
                                      cluster="half"), 1)

    def test_per_try_timeout_starts_a_new_attempt(self):
        before = self.metrics()
        self.plan.set("/per-try/a", ["slow:1.5"])
        status, _ = self.get("/per-try/a")
        self.assertEqual(status, 200)
        self.assertEqual(len(self.plan.requests("/per-try/a")), 2)
        self.assertEqual(metric_value(self.metrics(), "sidecar_upstream_per_try_timeouts_total",
                               cluster="app")
                         - metric_value(before, "sidecar_upstream_per_try_timeouts_total", cluster="app"),
                         1)
        # With no retry left, a per-try timeout is a 504 with UT.
        self.plan.set("/per-try/b", ["slow:1", "slow:1"])
        status, _ = self.get("/per-try/b")
        self.assertEqual(status, 504)
        e = self.log_entry("/per-try/b")
        self.assertIn("UT", e["flags"])

    def test_hedge_answers_from_the_faster_attempt(self):
        before = self.metrics()
        self.plan.set("/hedge/a", ["slow:2"])
        status, _ = self.get("/hedge/a")
        self.assertEqual(status, 200)
        self.assertEqual(len(self.plan.requests("/hedge/a")), 2)
        e = self.log_entry("/hedge/a")
        self.assertEqual((e["code"], e["attempts"]), (200, 2))
        self.assertEqual(metric_value(self.metrics(), "sidecar_upstream_hedges_total", cluster="app")
                         - metric_value(before, "sidecar_upstream_hedges_total", cluster="app"), 1)
        # The first attempt answering after all wins too: the hedge is dropped.
        self.plan.set("/hedge/b", ["slow:0.5", "slow:3"])
        status, _ = self.get("/hedge/b")
        self.assertEqual(status, 200)

    def test_mirror_gets_a_copy_with_a_shadow_host(self):
        status, body = self.get("/mirrored/x?q=1", "-X", "POST", "--data-binary", "copy me",
                                "-H", "Host: users.example:8080")
        self.assertEqual(status, 200)
        wait_for(lambda: self.shadow_plan.requests("/mirrored/x"), what="the mirrored request")
        m = self.shadow_plan.requests("/mirrored/x")[0]
        self.assertEqual(m.method, "POST")
        self.assertEqual(m.target, "/mirrored/x?q=1")
        self.assertEqual(m.header("host"), "users.example-shadow:8080")
        self.assertEqual(m.body, b"copy me")
        self.assertEqual(len(self.plan.requests("/mirrored/x")), 1)
        # A failing mirror never changes the answer.
        self.shadow_plan.set("/mirrored/y", ["reset"])
        self.assertEqual(self.get("/mirrored/y")[0], 200)


class RetryConfigTest(unittest.TestCase):
    def test_bad_retry_policy_is_a_config_error(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bad.yaml")
            with open(path, "w") as f:
                f.write("clusters: [ { name: a, endpoints: [ '127.0.0.1:1' ] } ]\n"
                        "listeners:\n"
                        "  - name: l\n"
                        "    address: 127.0.0.1:0\n"
                        "    routes:\n"
                        "      - cluster: a\n"
                        "        retry_policy: { retry_on: [ 5xx, sometimes ] }\n"
                        "        request_mirror_policies: [ { cluster: nope } ]\n")
            p = subprocess.run([BIN, "validate", "-c", path], capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(p.returncode, 64)
            self.assertIn(f"{path}:7:42: listeners[0].routes[0].retry_policy.retry_on: "
                          "unknown condition 'sometimes'", p.stderr)
            self.assertIn(f"{path}:8:47: listeners[0].routes[0].request_mirror_policies[0]"
                          ".cluster: no cluster named 'nope'", p.stderr)


if __name__ == "__main__":
    run_tests()
