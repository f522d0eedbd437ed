#!/usr/bin/python3
"""HTTP/1.1 proxying through the real binary to a real upstream."""
import json
import re
import socket
import subprocess
import time
import unittest

from harness import (BIN, Sidecar, Upstream, curl, proxy_config, raw, run_tests, status_of,
                     wait_for)


class ProxyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = Upstream()
        cls.sc = Sidecar(proxy_config(cls.up.address, request_headers_timeout="500ms"))

    @classmethod
    def tearDownClass(cls):
        cls.sc.stop()
        cls.up.stop()

    def test_get_and_post(self):
        rc, out, err = curl(self.sc.url("/hello"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"hello\n")
        rc, out, err = curl("--data-binary", "some body", self.sc.url("/echo"))
        self.assertEqual(out, b"some body")

    def test_chunked_both_ways(self):
        # curl -T - sends the request body chunked; ?chunked=1 answers chunked.
        data = b"".join(b"line %d\n" % i for i in range(20000))
        p = subprocess.run(["curl", "-sS", "-T", "-", "-X", "POST", "-D", "-",
                            self.sc.url("/echo?chunked=1")],
                           input=data, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout
        self.assertTrue(out.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), out[:100])
        head, _, body = out[25:].partition(b"\r\n\r\n")
        self.assertIn(b"transfer-encoding: chunked", head.lower())
        self.assertEqual(body, data)

    def test_head_204_304_have_no_body(self):
        r = raw(self.sc.port(), b"HEAD /bytes/100 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        self.assertEqual(status_of(r), 200)
        self.assertIn(b"Content-Length: 100", r)
        self.assertTrue(r.endswith(b"\r\n\r\n"), r)
        for status in (204, 304):
            r = raw(self.sc.port(),
                    b"GET /status/%d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % status)
            self.assertEqual(status_of(r), status)
            self.assertTrue(r.endswith(b"\r\n\r\n"), r)

    def test_pipelined_requests_are_answered_in_order(self):
        reqs = (b"GET /slow?delay=0.2 HTTP/1.1\r\nHost: t\r\n\r\n"
                b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
                b"GET /status/204 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        r = raw(self.sc.port(), reqs)
        statuses = [int(m) for m in re.findall(rb"HTTP/1.1 (\d{3})", r)]
        self.assertEqual(statuses, [200, 200, 204])
        self.assertLess(r.index(b"slow\n"), r.index(b"hello\n"))

    def test_hop_by_hop_removed_and_forwarded_headers_added(self):
        rc, out, err = curl("-H", "Connection: keep-alive, X-Secret", "-H", "X-Secret: 1",
                            "-H", "Keep-Alive: timeout=5", "-H", "TE: trailers",
                            "-H", "Proxy-Connection: keep-alive", "-H", "Upgrade: h2c",
                            "-H", "X-Kept: yes", self.sc.url("/headers"))
        self.assertEqual(rc, 0, err)
        info = json.loads(out)
        names = {k.lower(): v for k, v in info["headers"]}
        for gone in ("connection", "x-secret", "keep-alive", "proxy-connection", "upgrade"):
            self.assertNotIn(gone, names)
        # TE is hop-by-hop: the proxy says "trailers" on its own hop because it
        # passes trailers on (docs/proxy.md); other TE values stay behind.
        self.assertEqual(names["te"], "trailers")
        rc, out, err = curl("-H", "TE: gzip", self.sc.url("/headers"))
        self.assertEqual(rc, 0, err)
        self.assertNotIn("te", {k.lower() for k, _ in json.loads(out)["headers"]})
        self.assertEqual(names["x-kept"], "yes")
        self.assertEqual(names["x-forwarded-for"], "127.0.0.1")
        self.assertEqual(names["x-forwarded-proto"], "http")
        self.assertEqual(names["x-forwarded-host"], f"127.0.0.1:{self.sc.port()}")
        self.assertRegex(names["x-request-id"],
                         r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        self.assertEqual(info["request_line"], "GET /headers HTTP/1.1")

    def test_existing_forwarded_headers_are_kept(self):
        rc, out, err = curl("-H", "X-Request-Id: abc", "-H", "X-Forwarded-For: 10.0.0.1",
                            "-H", "X-Forwarded-Proto: https", self.sc.url("/headers"))
        info = json.loads(out)
        xff = [v for k, v in info["headers"] if k.lower() == "x-forwarded-for"]
        # Appended as a second field line, which is the same list [RFC 9110 5.3].
        self.assertEqual(xff, ["10.0.0.1", "127.0.0.1"])
        names = {k.lower(): v for k, v in info["headers"]}
        self.assertEqual(names["x-request-id"], "abc")
        self.assertEqual(names["x-forwarded-proto"], "https")

    def test_absolute_form_target(self):
        r = raw(self.sc.port(), b"GET http://svc.example:81/headers?x=1 HTTP/1.1\r\n"
                                b"Host: other\r\nConnection: close\r\n\r\n")
        self.assertEqual(status_of(r), 200)
        info = json.loads(r.split(b"\r\n\r\n", 1)[1])
        self.assertEqual(info["request_line"], "GET /headers?x=1 HTTP/1.1")
        names = {k.lower(): v for k, v in info["headers"]}
        self.assertEqual(names["host"], "svc.example:81")

    def test_http10_client_gets_dechunked_body_and_close(self):
        r = raw(self.sc.port(), b"GET /echo?chunked=1 HTTP/1.0\r\nContent-Length: 4\r\n\r\nabcd")
        self.assertTrue(r.startswith(b"HTTP/1.1 200"), r)
        head, _, body = r.partition(b"\r\n\r\n")
        self.assertNotIn(b"chunked", head.lower())
        self.assertIn(b"connection: close", head.lower())
        self.assertEqual(body, b"abcd")

    def test_http10_keep_alive(self):
        with socket.create_connection(("127.0.0.1", self.sc.port()), timeout=5) as s:
            for _ in range(2):
                s.sendall(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                data = b""
                while not data.endswith(b"hello\n"):
                    chunk = s.recv(4096)
                    self.assertTrue(chunk, "closed early")
                    data += chunk
                self.assertIn(b"connection: keep-alive", data.lower())

    def test_expect_100_continue(self):
        rc, out, err = curl("-v", "-H", "Expect: 100-continue", "--data-binary", "x" * 5000,
                            self.sc.url("/sink"))
        self.assertEqual(rc, 0, err)
        self.assertIn("HTTP/1.1 100 Continue", err)
        self.assertEqual(json.loads(out)["bytes"], 5000)

    def test_early_hints_are_forwarded(self):
        r = raw(self.sc.port(), b"GET /early-hints HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        self.assertTrue(r.startswith(b"HTTP/1.1 103 Early Hints\r\n"), r)
        self.assertIn(b"HTTP/1.1 200 OK\r\n", r)
        self.assertTrue(r.endswith(b"after hints\n"))

    def test_close_delimited_response(self):
        # An upstream response delimited by its close reaches an HTTP/1.1
        # client chunked (the client's connection stays usable), and an
        # HTTP/1.0 client delimited by the close.
        r = raw(self.sc.port(), b"GET /close HTTP/1.1\r\nHost: t\r\n\r\n"
                                b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        self.assertEqual(status_of(r), 200)
        first, _, rest = r.partition(b"0\r\n\r\n")
        self.assertIn(b"transfer-encoding: chunked", first.lower())
        self.assertTrue(first.endswith(b"c\r\nuntil close\n\r\n"), r)
        self.assertTrue(rest.startswith(b"HTTP/1.1 200") and rest.endswith(b"hello\n"), r)
        r = raw(self.sc.port(), b"GET /close HTTP/1.0\r\n\r\n")
        self.assertEqual(status_of(r), 200)
        self.assertIn(b"connection: close", r.lower())
        self.assertTrue(r.endswith(b"\r\n\r\nuntil close\n"), r)

    def test_keep_alive_reuses_upstream_connections(self):
        before = self.up.stats()
        p = subprocess.run(["wrk", "-t1", "-c4", "-d2s", self.sc.url("/hello")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        m = re.search(r"(\d+) requests in", p.stdout)
        self.assertIsNotNone(m, p.stdout)
        requests = int(m.group(1))
        self.assertNotIn("Non-2xx", p.stdout)
        self.assertNotIn("Socket errors", p.stdout)
        after = self.up.stats()
        new_connections = after["connections"] - before["connections"]
        self.assertGreater(requests, 500)
        self.assertGreaterEqual(after["requests"] - before["requests"], requests)
        # 4 client connections, 2 workers: a handful of upstream connections,
        # not one per request.
        self.assertLessEqual(new_connections, 12, p.stdout)

    def test_bad_requests_get_400_and_are_not_forwarded(self):
        before = self.up.stats()["requests"]
        shapes = [
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked"
            b"\r\n\r\n0\r\n\r\n",
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 3\r\n\r\nabc",
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"GET /hello HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n folded\r\n\r\n",
            b"GET /hello HTTP/1.1\r\nHost : t\r\n\r\n",
            b"GET /hello HTTP/1.1\nHost: t\n\n",
            b"GET /hello HTTP/1.1\r\nHost: t\rX: 1\r\n\r\n",
            b"GET /hello HTTP/1.1\r\nHost: t\r\nX-A: \x01\r\n\r\n",
            b"GET /hello HTTP/1.1\r\nHo(st: t\r\n\r\n",
            b"GET /hello HTTP/1.1\r\n\r\n",
            b"GET  /hello HTTP/1.1\r\nHost: t\r\n\r\n",
            b"garbage\r\n\r\n",
        ]
        for shape in shapes:
            r = raw(self.sc.port(), shape)
            self.assertEqual(status_of(r), 400, (shape, r))
            self.assertIn(b"connection: close", r)
        # Bad chunk framing in the body: the head went upstream, the body did not.
        for body in (b"zz\r\n", b"5\nhello\r\n0\r\n\r\n", b"5\r\nhello\n0\r\n\r\n",
                     b"5 \r\nhello\r\n0\r\n\r\n"):
            r = raw(self.sc.port(), b"POST /sink HTTP/1.1\r\nHost: t\r\n"
                                    b"Transfer-Encoding: chunked\r\n\r\n" + body)
            self.assertEqual(status_of(r), 400, (body, r))
        self.assertEqual(self.up.stats()["requests"], before + 1)  # the stats call itself

    def test_too_large_headers_get_431(self):
        r = raw(self.sc.port(), b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 70000 +
                b"\r\n\r\n")
        self.assertEqual(status_of(r), 431, r[:100])
        many = b"".join(b"X-%d: v\r\n" % i for i in range(120))
        r = raw(self.sc.port(), b"GET /hello HTTP/1.1\r\nHost: t\r\n" + many + b"\r\n")
        self.assertEqual(status_of(r), 431, r[:100])

    def test_unsupported_version_and_connect(self):
        r = raw(self.sc.port(), b"GET /hello HTTP/2.0\r\nHost: t\r\n\r\n")
        self.assertEqual(status_of(r), 505)
        r = raw(self.sc.port(), b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nConnection: close\r\n\r\n")
        self.assertEqual(status_of(r), 405)

    def test_slow_client_gets_408(self):
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.sc.port()), timeout=5) as s:
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n")  # never finishes the head
            data = s.recv(4096)
            elapsed = time.monotonic() - start
        self.assertEqual(status_of(data), 408, data)
        self.assertGreater(elapsed, 0.4)
        self.assertLess(elapsed, 3)

    def test_upstream_reset_gets_502(self):
        rc, out, err = curl("-w", "%{http_code}", self.sc.url("/reset"))
        self.assertTrue(out.endswith(b"502"), out)
        self.assertIn(b"upstream", out)

    def test_large_header_count_up_to_limit_passes(self):
        many = b"".join(b"X-%d: v\r\n" % i for i in range(90))
        r = raw(self.sc.port(), b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + many +
                b"\r\n")
        self.assertEqual(status_of(r), 200)


class UpstreamFailureTest(unittest.TestCase):
    def test_upstream_down_gets_503(self):
        # A port nobody listens on: bind one, then close it.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        sc = Sidecar(proxy_config(f"127.0.0.1:{port}"))
        try:
            rc, out, err = curl("-w", "\n%{http_code}", sc.url("/"))
            body, code = out.rsplit(b"\n", 1)
            self.assertEqual(code, b"503")
            self.assertIn(b"upstream connect error", body)
            self.assertIn(b"refused", body.lower())
        finally:
            sc.stop()

    def test_upstream_slow_gets_504(self):
        up = Upstream()
        config = proxy_config(up.address).replace("cluster: app", "cluster: app\n        timeout: 500ms")
        sc = Sidecar(config)
        try:
            start = time.monotonic()
            rc, out, err = curl("-w", "\n%{http_code}", sc.url("/slow?delay=3"))
            elapsed = time.monotonic() - start
            body, code = out.rsplit(b"\n", 1)
            self.assertEqual(code, b"504")
            self.assertIn(b"timeout", body)
            self.assertLess(elapsed, 2.5)
            # The connection pool is still usable afterwards.
            rc, out, err = curl(sc.url("/hello"))
            self.assertEqual(out, b"hello\n")
        finally:
            sc.stop()
            up.stop()

    def test_upstream_closing_idle_connections_loses_nothing(self):
        up = Upstream("--keepalive-timeout", "0.2")
        sc = Sidecar(proxy_config(up.address))
        try:
            for _ in range(5):
                rc, out, err = curl(sc.url("/hello"))
                self.assertEqual(out, b"hello\n", err)
                time.sleep(0.3)  # the upstream closes the pooled connection meanwhile
        finally:
            sc.stop()
            up.stop()


class FilterTest(unittest.TestCase):
    def test_headers_filter_edits_requests_and_responses(self):
        up = Upstream()
        self.addCleanup(up.stop)
        sc = Sidecar(f"""
workers: 1
clusters: [ {{ name: app, endpoints: [ "{up.address}" ] }} ]
listeners:
  - name: inbound
    address: 127.0.0.1:0
    filters:
      - name: headers
        config:
          request_headers_to_add: [ {{ name: x-team, value: payments }} ]
          request_headers_to_remove: [ x-debug ]
          response_headers_to_add: [ {{ name: strict-transport-security, value: max-age=600 }} ]
          response_headers_to_remove: [ server ]
    routes: [ {{ cluster: app }} ]
""")
        self.addCleanup(sc.stop)
        rc, out, err = curl("-D", "-", "-H", "X-Debug: 1", "-H", "X-Kept: 1", sc.url("/headers"))
        head, _, body = out.partition(b"\r\n\r\n")
        names = {k.lower(): v for k, v in json.loads(body)["headers"]}
        self.assertEqual(names["x-team"], "payments")
        self.assertNotIn("x-debug", names)
        self.assertEqual(names["x-kept"], "1")
        self.assertIn(b"strict-transport-security: max-age=600", head)
        self.assertNotIn(b"server:", head.lower())
        self.assertEqual(json.loads(sc.admin_get("/config")[1])["listeners"][0]["filters"],
                         [{"name": "headers"}])

    def test_filter_config_errors(self):
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write("""clusters: [ { name: a, endpoints: [ "127.0.0.1:1" ] } ]
listeners:
  - name: l
    address: 127.0.0.1:0
    filters:
      - { name: gzip }
      - name: headers
        config: { request_headers_to_add: [ { name: "bad name", value: x } ] }
    routes: [ { cluster: a } ]
""")
            f.flush()
            p = subprocess.run([BIN, "validate", "-c", f.name], capture_output=True, text=True)
        self.assertEqual(p.returncode, 64)
        # The list of known filters grows with every filter: only its shape is checked.
        self.assertRegex(p.stderr, r":6:17: listeners\[0\]\.filters\[0\]: unknown filter 'gzip' "
                                   r"\(known: [a-z_, ]*\bheaders\b[a-z_, ]*\)")
        self.assertIn("request_headers_to_add[0]: 'bad name' is not a field name", p.stderr)


class RoutingTest(unittest.TestCase):
    def test_routes_by_host_path_and_header(self):
        a, b = Upstream(), Upstream()
        sc = Sidecar(f"""
workers: 1
clusters:
  - {{ name: a, endpoints: [ "{a.address}" ] }}
  - {{ name: b, endpoints: [ "{b.address}" ] }}
listeners:
  - name: outbound
    address: 127.0.0.1:0
    routes:
      - {{ match: {{ host: "b.svc" }}, cluster: b }}
      - {{ match: {{ path: /only-b }}, cluster: b }}
      - {{ match: {{ prefix: /, headers: [ {{ name: x-target, exact: b }} ] }}, cluster: b }}
      - {{ match: {{ prefix: /hello }}, cluster: a }}
""")
        try:
            def served_by(*args):
                before = (a.stats()["requests"], b.stats()["requests"])
                curl(*args)
                after = (a.stats()["requests"], b.stats()["requests"])
                return "a" if after[0] - before[0] == 2 else "b" if after[1] - before[1] == 2 else "?"
            self.assertEqual(served_by(sc.url("/hello")), "a")
            self.assertEqual(served_by("-H", "Host: b.svc", sc.url("/hello")), "b")
            self.assertEqual(served_by(sc.url("/only-b")), "b")
            self.assertEqual(served_by("-H", "X-Target: b", sc.url("/hello")), "b")
            rc, out, err = curl("-w", "%{http_code}", sc.url("/nothing"))
            self.assertTrue(out.endswith(b"404"))
        finally:
            sc.stop()
            a.stop()
            b.stop()

    def test_round_robin_across_endpoints(self):
        a, b = Upstream(), Upstream()
        sc = Sidecar(f"""
workers: 1
clusters:
  - {{ name: app, endpoints: [ "{a.address}", "{b.address}" ] }}
listeners:
  - {{ name: l, address: "127.0.0.1:0", routes: [ {{ cluster: app }} ] }}
""")
        try:
            for _ in range(10):
                curl(sc.url("/hello"))
            ra, rb = a.stats()["requests"] - 1, b.stats()["requests"] - 1
            self.assertEqual((ra, rb), (5, 5))
        finally:
            sc.stop()
            a.stop()
            b.stop()


if __name__ == "__main__":
    run_tests()
