#!/usr/bin/python3
"""The traffic-shaping filters through the real binary: local_rate_limit
(one bucket exactly shared by every worker, per-route overrides, 429 with
Retry-After and RateLimit fields, through the response hooks) and
compressor (gzip, br and zstd decoded by curl, streamed responses, the
cases left alone)."""
import json
import re
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import Sidecar, curl, run_tests

JSON_BODY = json.dumps([{"id": i, "name": f"item {i}", "tags": ["a", "b"]}
                        for i in range(300)]).encode()


class Origin(BaseHTTPRequestHandler):
    """The upstream: bodies of chosen types, sizes and framings."""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.server.hits += 1
        path = self.path.split("?")[0]
        if path == "/json":
            self.reply(JSON_BODY, "application/json", extra={"ETag": '"v1"'})
        elif path == "/stream":
            # Chunked, in three writes: no Content-Length to judge the size by.
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(3):
                part = (f"<p>part {i}</p>" * 200).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/small":
            self.reply(b'{"ok":true}', "application/json")
        elif path == "/png":
            self.reply(b"\x89PNG" + b"\0" * 4000, "image/png")
        elif path == "/encoded":
            self.reply(b"x" * 4000, "text/plain", extra={"Content-Encoding": "br"})
        elif path == "/no-transform":
            self.reply(JSON_BODY, "application/json", extra={"Cache-Control": "no-transform"})
        else:
            self.reply(b"ok\n", "text/plain")

    do_HEAD = do_GET

    def reply(self, body, content_type, extra=None):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def start_origin(test):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    server.daemon_threads = True
    server.hits = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop():
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    test.addCleanup(stop)
    return f"127.0.0.1:{server.server_address[1]}"


def fetch(sc, path, *args):
    """(status, headers dict with lower-case names, body) by curl, one connection each."""
    rc, out, err = curl("-D", "-", *args, sc.url(path))
    if rc != 0:
        raise AssertionError(f"curl failed ({rc}): {err}")
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


class LocalRateLimitTest(unittest.TestCase):
    def test_one_bucket_for_all_workers_and_routes_override(self):
        origin = start_origin(self)
        sc = Sidecar(f"""
workers: 2
clusters: [ {{ name: app, endpoints: [ "{origin}" ] }} ]
listeners:
  - name: inbound
    address: 127.0.0.1:0
    filters:
      - name: local_rate_limit
        config: {{ max_tokens: 6, tokens_per_fill: 6, fill_interval: 1h }}
      - name: headers
        config:
          response_headers_to_add: [ {{ name: x-through, value: headers-filter }} ]
    routes:
      - match: {{ prefix: /api }}
        cluster: app
        typed_per_filter_config:
          local_rate_limit:
            max_tokens: 2
            fill_interval: 1h
            descriptors: [ {{ key: "header:x-api-key" }} ]
      - {{ match: {{ prefix: / }}, cluster: app }}
""")
        self.addCleanup(sc.stop)
        # 20 requests, each on its own connection: the kernel spreads them
        # over both workers, and still exactly 6 pass.
        results = [fetch(sc, "/x") for _ in range(20)]
        statuses = [s for s, _, _ in results]
        self.assertEqual(statuses.count(200), 6, statuses)
        self.assertEqual(statuses.count(429), 14, statuses)
        status, h, body = next(r for r in results if r[0] == 429)
        self.assertEqual(body, b"local_rate_limited\n")
        self.assertTrue(1 <= int(h["retry-after"]) <= 3600, h)
        self.assertEqual(h["ratelimit-policy"], '"default";q=6;w=3600')
        self.assertRegex(h["ratelimit"], r'^"default";r=0;t=\d+$')
        # The 429 is a local reply that passed through the response hooks.
        self.assertEqual(h["x-through"], "headers-filter")

        # The /api route has its own config: 2 per API key, keys apart.
        alice = [fetch(sc, "/api/a", "-H", "x-api-key: alice")[0] for _ in range(4)]
        bob = [fetch(sc, "/api/a", "-H", "x-api-key: bob")[0] for _ in range(3)]
        self.assertEqual(alice, [200, 200, 429, 429])
        self.assertEqual(bob, [200, 200, 429])
        # Without the header no descriptor applies on that route.
        self.assertEqual([fetch(sc, "/api/a")[0] for _ in range(3)], [200, 200, 200])

        metrics = sc.admin_get("/metrics")[1]

        def sample(route, result):
            m = re.search(r'^sidecar_local_rate_limit_requests_total\{listener="inbound",'
                          rf'route="inbound/{route}",result="{result}"\}} (\d+)$', metrics, re.M)
            return int(m.group(1)) if m else None
        self.assertEqual(sample(1, "allowed"), 6, metrics)
        self.assertEqual(sample(1, "limited"), 14)
        self.assertEqual(sample(0, "allowed"), 4)
        self.assertEqual(sample(0, "limited"), 3)


class CompressorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin_cleanups = unittest.TestCase()
        cls.origin = start_origin(cls.origin_cleanups)
        cls.sc = Sidecar(f"""
workers: 2
clusters: [ {{ name: app, endpoints: [ "{cls.origin}" ] }} ]
listeners:
  - name: inbound
    address: 127.0.0.1:0
    filters:
      - name: compressor
        config: {{ gzip: {{}}, brotli: {{}}, zstd: {{}}, min_content_length: 1KiB }}
    routes: [ {{ cluster: app }} ]
""")

    @classmethod
    def tearDownClass(cls):
        cls.sc.stop()
        cls.origin_cleanups.doCleanups()

    def test_each_encoding_decodes_to_the_original(self):
        for encoding in ("gzip", "br", "zstd"):
            with self.subTest(encoding):
                # --compressed: curl asks for all it knows and decodes.
                status, h, body = fetch(self.sc, "/json", "--compressed", "-H",
                                        f"Accept-Encoding: {encoding}")
                self.assertEqual(status, 200)
                self.assertEqual(h["content-encoding"], encoding)
                self.assertEqual(h["vary"], "Accept-Encoding")
                self.assertEqual(h["etag"], 'W/"v1"')
                self.assertNotIn("content-length", h)
                self.assertEqual(h["transfer-encoding"], "chunked")
                self.assertEqual(body, JSON_BODY)
                # The bytes on the wire are smaller.
                _, _, raw_body = fetch(self.sc, "/json", "-H", f"Accept-Encoding: {encoding}")
                self.assertLess(len(raw_body), len(JSON_BODY) // 3)

    def test_gzip_levels_on_isal_and_zlib(self):
        # Levels 1..3 are ISA-L's igzip, 4..9 zlib's: curl (libz) decodes
        # both, fixed-length and streamed (a sync flush per batch), also
        # from a stream reused by the worker (second request).
        for level in (1, 3, 9):
            with self.subTest(level=level):
                sc = Sidecar(f"""
workers: 1
clusters: [ {{ name: app, endpoints: [ "{self.origin}" ] }} ]
listeners:
  - name: inbound
    address: 127.0.0.1:0
    filters:
      - name: compressor
        config: {{ gzip: {{ level: {level} }}, min_content_length: 1KiB }}
    routes: [ {{ cluster: app }} ]
""")
                try:
                    for _ in range(2):
                        status, h, body = fetch(sc, "/json", "--compressed")
                        self.assertEqual(h["content-encoding"], "gzip")
                        self.assertEqual(body, JSON_BODY)
                        _, _, raw = fetch(sc, "/json", "-H", "Accept-Encoding: gzip")
                        self.assertLess(len(raw), len(JSON_BODY) // 3)
                        status, h, body = fetch(sc, "/stream", "--compressed")
                        self.assertEqual(h["content-encoding"], "gzip")
                        self.assertEqual(
                            body, b"".join((f"<p>part {i}</p>" * 200).encode() for i in range(3)))
                finally:
                    sc.stop()

    def test_q_values_choose(self):
        _, h, _ = fetch(self.sc, "/json", "-H", "Accept-Encoding: gzip;q=0.2, zstd;q=0.9, br;q=0")
        self.assertEqual(h["content-encoding"], "zstd")

    def test_streamed_response_is_compressed(self):
        status, h, body = fetch(self.sc, "/stream", "--compressed", "-H", "Accept-Encoding: gzip")
        self.assertEqual(h["content-encoding"], "gzip")
        self.assertEqual(body, b"".join((f"<p>part {i}</p>" * 200).encode() for i in range(3)))

    def test_left_alone(self):
        cases = {
            "/small": "too small",
            "/png": "type not listed",
            "/encoded": "already encoded",
            "/no-transform": "no-transform",
        }
        for path, why in cases.items():
            with self.subTest(why):
                status, h, body = fetch(self.sc, path, "-H", "Accept-Encoding: gzip, br, zstd")
                self.assertEqual(status, 200)
                self.assertEqual(h.get("content-encoding", "") in ("", "br"), True, h)
                self.assertIn("content-length", h)
                if path != "/encoded":
                    self.assertNotIn("content-encoding", h)
        # HEAD: the head as the upstream sent it.
        status, h, _ = fetch(self.sc, "/json", "-I", "-H", "Accept-Encoding: gzip")
        self.assertNotIn("content-encoding", h)
        self.assertEqual(h["content-length"], str(len(JSON_BODY)))
        # Not accepted: identity, with Vary so that caches keep variants apart.
        status, h, body = fetch(self.sc, "/json")
        self.assertNotIn("content-encoding", h)
        self.assertEqual(h["vary"], "Accept-Encoding")
        self.assertEqual(body, JSON_BODY)

    def test_metrics(self):
        fetch(self.sc, "/json", "-H", "Accept-Encoding: br")
        metrics = self.sc.admin_get("/metrics")[1]
        m = re.search(r'^sidecar_compressor_responses_total\{listener="inbound",route="inbound/0",'
                      r'encoding="br"\} (\d+)$', metrics, re.M)
        self.assertTrue(m and int(m.group(1)) >= 1, metrics)
        self.assertRegex(metrics, r'sidecar_compressor_uncompressed_bytes_total\{.*encoding="br"\}')


class FaultTest(unittest.TestCase):
    def test_header_controlled_faults_and_route_abort(self):
        import os
        import tempfile
        origin = start_origin(self)
        log_dir = tempfile.TemporaryDirectory(prefix="sidecar-fault-")
        self.addCleanup(log_dir.cleanup)
        log = os.path.join(log_dir.name, "access.log")
        sc = Sidecar(f"""
workers: 1
access_log: {{ path: {log}, format: json }}
clusters: [ {{ name: app, endpoints: [ "{origin}" ] }} ]
listeners:
  - name: inbound
    address: 127.0.0.1:0
    filters:
      - name: fault
        config:
          delay: {{ header_delay: true }}
          abort: {{ header_abort: true }}
    routes:
      - match: {{ prefix: /broken }}
        cluster: app
        typed_per_filter_config:
          fault: {{ abort: {{ http_status: 503, percentage: 100 }} }}
      - {{ cluster: app }}
""")
        self.addCleanup(sc.stop)
        self.assertEqual(fetch(sc, "/plain")[0], 200)
        status, _, body = fetch(sc, "/a", "-H", "x-sidecar-fault-abort-request: 418")
        self.assertEqual((status, body), (418, b"fault filter abort\n"))
        status, _, body = fetch(sc, "/d", "-H", "x-sidecar-fault-delay-request: 50")
        self.assertEqual((status, body), (200, b"ok\n"))
        self.assertEqual(fetch(sc, "/broken/x")[0], 503)

        def lines():
            try:
                with open(log) as f:
                    return [json.loads(l) for l in f if l.strip()]
            except FileNotFoundError:
                return []
        from harness import wait_for
        entries = wait_for(lambda: len(lines()) >= 4 and lines(), what="four access log lines")
        flags = {e["path"]: e["response_flags"] for e in entries}
        self.assertEqual(flags, {"/plain": "-", "/a": "FI", "/d": "DI", "/broken/x": "FI"})
        metrics = sc.admin_get("/metrics")[1]
        self.assertRegex(metrics, r'sidecar_fault_injected_total\{listener="inbound",'
                                  r'route="inbound/1",kind="abort"\} 1\b')
        self.assertRegex(metrics, r'sidecar_fault_injected_total\{listener="inbound",'
                                  r'route="inbound/0",kind="abort"\} 1\b')
        self.assertRegex(metrics, r'sidecar_fault_injected_total\{listener="inbound",'
                                  r'route="inbound/1",kind="delay"\} 1\b')


if __name__ == "__main__":
    run_tests()
