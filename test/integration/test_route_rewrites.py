#!/usr/bin/python3
"""Route rewrites and answers through the real binary, with curl: the path
and Host the upstream receives after prefix_rewrite, regex_rewrite,
host_rewrite and auto_host_rewrite; redirects (Location, status, scheme,
host, port, query) and direct responses (inline and from a file), over
HTTP/1.1 and HTTP/2 (h2c prior knowledge); an answer passes through the
response filters and never reaches the upstream."""
import json
import os
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import Sidecar, curl, run_tests


class Origin(BaseHTTPRequestHandler):
    """Answers every request with what it received: path and Host."""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.server.hits += 1
        body = json.dumps({"path": self.path, "host": self.headers.get("Host"),
                           "xfh": self.headers.get("X-Forwarded-Host")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET


class RouteRewrites(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = ThreadingHTTPServer(("127.0.0.1", 0), Origin)
        cls.origin.hits = 0
        cls.origin.daemon_threads = True
        threading.Thread(target=cls.origin.serve_forever, daemon=True).start()
        port = cls.origin.server_address[1]
        cls.tmp = tempfile.TemporaryDirectory(prefix="sidecar-routes-")
        cls.page = os.path.join(cls.tmp.name, "maintenance.html")
        with open(cls.page, "w") as f:
            f.write("<h1>back soon</h1>\n")
        cls.sidecar = Sidecar(f"""
workers: 2
clusters:
  - name: app
    endpoints: [ "127.0.0.1:{port}" ]
  - name: named
    endpoints: [ "localhost:{port}" ]
listeners:
  - name: in
    address: 127.0.0.1:0
    filters:
      - name: headers
        config: {{ response_headers_to_add: [ {{ name: x-decorated, value: "yes" }} ] }}
    routes:
      - {{ match: {{ prefix: /api/ }}, cluster: app, prefix_rewrite: /v2/ }}
      - {{ match: {{ path: /exact }}, cluster: app, prefix_rewrite: /other/place }}
      - match: {{ prefix: /svc/ }}
        cluster: app
        regex_rewrite: {{ pattern: {{ regex: "^/svc/([^/]+)/(.*)$" }}, substitution: "/\\\\2/on/\\\\1" }}
      - {{ match: {{ prefix: /literal/ }}, cluster: app, host_rewrite: "backend.internal:7000" }}
      - {{ match: {{ prefix: /auto/ }}, cluster: named, auto_host_rewrite: true }}
      - {{ match: {{ prefix: /old/ }}, redirect: {{ prefix_rewrite: /new/, response_code: 308 }} }}
      - {{ match: {{ prefix: /moved }}, redirect: {{ path_redirect: /there, response_code: 302, strip_query: true }} }}
      - {{ match: {{ prefix: /secure }}, redirect: {{ https_redirect: true }} }}
      - {{ match: {{ prefix: /elsewhere }}, redirect: {{ host_redirect: other.example, port_redirect: 8443, scheme_redirect: https, response_code: 307 }} }}
      - {{ match: {{ path: /healthz }}, direct_response: {{ status: 200, body: "ok\\n" }} }}
      - {{ match: {{ path: /down }}, direct_response: {{ status: 503, body: {{ filename: {cls.page} }}, content_type: text/html }} }}
      - {{ match: {{ path: /gone }}, direct_response: {{ status: 410 }} }}
      - {{ match: {{ prefix: / }}, cluster: app }}
""")

    @classmethod
    def tearDownClass(cls):
        cls.sidecar.stop()
        cls.origin.shutdown()
        cls.tmp.cleanup()

    def upstream_saw(self, path, *args):
        code, out, err = curl("--http1.1", *args, self.sidecar.url(path))
        self.assertEqual(code, 0, err)
        return json.loads(out)

    def answer(self, path, *args):
        """(status, headers dict, body) of a request curl makes, not following redirects."""
        code, out, err = curl("-i", *args, self.sidecar.url(path))
        self.assertEqual(code, 0, err)
        head, _, body = out.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return int(lines[0].split()[1]), headers, body

    def test_prefix_rewrite(self):
        self.assertEqual(self.upstream_saw("/api/users?id=7")["path"], "/v2/users?id=7")
        self.assertEqual(self.upstream_saw("/exact?q=1")["path"], "/other/place?q=1")
        self.assertEqual(self.upstream_saw("/exactly")["path"], "/exactly")  # not the exact path

    def test_prefix_rewrite_http2(self):
        code, out, err = curl("--http2-prior-knowledge", self.sidecar.url("/api/x"))
        if code != 0 and "HTTP/2" in err:
            self.skipTest(f"listener does not speak h2c: {err}")
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["path"], "/v2/x")

    def test_regex_rewrite(self):
        saw = self.upstream_saw("/svc/users/list?page=2")
        self.assertEqual(saw["path"], "/list/on/users?page=2")

    def test_host_rewrite(self):
        saw = self.upstream_saw("/literal/a", "-H", "Host: shop.example")
        self.assertEqual(saw["host"], "backend.internal:7000")
        self.assertEqual(saw["xfh"], "shop.example")  # the client's Host is kept there
        self.assertEqual(saw["path"], "/literal/a")
        # Without a rewrite the client's Host goes through.
        self.assertEqual(self.upstream_saw("/plain", "-H", "Host: shop.example")["host"],
                         "shop.example")

    def test_auto_host_rewrite(self):
        saw = self.upstream_saw("/auto/a", "-H", "Host: shop.example")
        port = self.origin.server_address[1]
        self.assertEqual(saw["host"], f"localhost:{port}")

    def test_redirects(self):
        hits = self.origin.hits
        status, h, body = self.answer("/old/page?x=1")
        self.assertEqual(status, 308)
        port = self.sidecar.port()
        self.assertEqual(h["location"], f"http://127.0.0.1:{port}/new/page?x=1")
        self.assertEqual(body, b"")
        self.assertEqual(h.get("x-decorated"), "yes")  # through the response filters
        status, h, _ = self.answer("/moved?x=1", "-H", "Host: a.example:8000")
        self.assertEqual((status, h["location"]), (302, "http://a.example:8000/there"))
        status, h, _ = self.answer("/secure/x?y", "-H", "Host: a.example:80")
        self.assertEqual((status, h["location"]), (301, "https://a.example/secure/x?y"))
        status, h, _ = self.answer("/elsewhere/p", "-H", "Host: a.example:8000")
        self.assertEqual((status, h["location"]), (307, "https://other.example:8443/elsewhere/p"))
        # POST and HEAD are redirected the same way.
        status, h, _ = self.answer("/old/form", "-d", "a=b")
        self.assertEqual(status, 308)
        self.assertEqual(self.origin.hits, hits, "a redirect reached the upstream")
        # curl follows it to the rewritten route.
        code, out, err = curl("-L", "--max-redirs", "2", self.sidecar.url("/old/a"))
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["path"], "/new/a")

    def test_direct_responses(self):
        hits = self.origin.hits
        status, h, body = self.answer("/healthz")
        self.assertEqual((status, body), (200, b"ok\n"))
        self.assertTrue(h["content-type"].startswith("text/plain"))
        self.assertEqual(h["content-length"], "3")
        self.assertEqual(h.get("x-decorated"), "yes")
        status, h, body = self.answer("/down")
        self.assertEqual((status, body), (503, b"<h1>back soon</h1>\n"))
        self.assertEqual(h["content-type"], "text/html")
        status, h, body = self.answer("/gone")
        self.assertEqual((status, body), (410, b""))
        status, h, body = self.answer("/healthz", "-I")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")
        code, out, err = curl("--http2-prior-knowledge", self.sidecar.url("/healthz"))
        if code == 0:
            self.assertEqual(out, b"ok\n")
        self.assertEqual(self.origin.hits, hits, "a direct response reached the upstream")

    def test_config_errors_have_positions(self):
        import subprocess
        from harness import BIN
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write("clusters: [ { name: app, endpoints: [ '127.0.0.1:1' ] } ]\n"
                    "listeners:\n  - name: in\n    address: 127.0.0.1:0\n    routes:\n"
                    "      - { match: { prefix: / }, redirect: { response_code: 300 } }\n"
                    "      - { match: { prefix: / }, cluster: app, regex_rewrite: { pattern: '(', substitution: x } }\n")
        try:
            p = subprocess.run([BIN, "validate", "-c", f.name], capture_output=True, text=True,
                               timeout=30)
        finally:
            os.unlink(f.name)
        self.assertEqual(p.returncode, 64)
        out = p.stdout + p.stderr
        self.assertIn(f"{f.name}:6:", out)
        self.assertIn("'300' is not 301, 302, 303, 307 or 308", out)
        self.assertIn(f"{f.name}:7:", out)
        self.assertIn("regex_rewrite.pattern", out)


if __name__ == "__main__":
    run_tests()
