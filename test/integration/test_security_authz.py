#!/usr/bin/python3
"""ext_authz against a real authorization server (HTTP, started here) and
cors with curl: allowed requests reach the upstream with the service's
headers, denied ones never do (the upstream's request count), the denial
is the service's own answer, a dead service fails closed (or open with
failure_mode_allow), and preflights are answered by the sidecar."""
import hashlib
import subprocess
import json
import os
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import Sidecar, Upstream, curl, free_port, run_tests, wait_for


class AuthzServer:
    """Allows requests whose Authorization is "Bearer good" (answering
    x-user-id), refuses others with 401 and its own body; records the
    checks it got."""

    def __init__(self):
        self.checks = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.checks.append({"method": self.command, "path": self.path, "body": body,
                                     "headers": {k.lower(): v for k, v in self.headers.items()}})
                if self.path.startswith("/check/slow"):
                    time.sleep(1)
                if self.headers.get("Authorization") == "Bearer good" or \
                        body.startswith(b"allow"):
                    self.send_response(200)
                    self.send_header("x-user-id", "42")
                    self.send_header("x-internal", "not for the upstream")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b"denied by authz\n"
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Bearer realm="authz"')
                self.send_header("x-internal", "not for the client")
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class ExtAuthzAndCors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory(prefix="sidecar-authz-")
        cls.log = os.path.join(cls.dir.name, "access.log")
        cls.authz = AuthzServer()
        cls.up = Upstream()
        dead = f"127.0.0.1:{free_port()}"
        keys = os.path.join(cls.dir.name, "api-keys")
        with open(keys, "w") as f:
            # billing's key in clear, reports' as its SHA-256
            f.write("billing: key-billing-1\n"
                    "reports: sha256:" + hashlib.sha256(b"key-reports-1").hexdigest() + "\n")
        authz = """
      - name: ext_authz
        config:
          http_service:
            server_uri: {{ uri: "http://authz.local", cluster: {cluster}, timeout: 300ms }}
            path_prefix: /check
            authorization_request:
              allowed_headers: {{ patterns: [ {{ prefix: x-user- }} ] }}
              headers_to_add: [ {{ key: x-from, value: sidecar }} ]
            authorization_response:
              allowed_upstream_headers: {{ patterns: [ {{ exact: x-user-id }} ] }}
              allowed_client_headers: {{ patterns: [ {{ exact: www-authenticate }} ] }}
          failure_mode_allow: {open}
"""
        cls.sc = Sidecar(f"""
workers: 2
access_log:
  path: {cls.log}
  json_format: {{ path: "%REQ(:PATH)%", code: "%RESPONSE_CODE%", details: "%RESPONSE_CODE_DETAILS%" }}
clusters:
  - {{ name: app, endpoints: [ "{cls.up.address}" ] }}
  - {{ name: authz, endpoints: [ "{cls.authz.address}" ] }}
  - {{ name: dead, endpoints: [ "{dead}" ], connect_timeout: 200ms }}
listeners:
  - name: guarded
    address: 127.0.0.1:0
    filters:
      - name: cors
        config:
          allow_origin_string_match: [ {{ exact: "https://app.example" }} ]
          allow_methods: "GET, POST"
          allow_headers: "authorization, content-type"
          max_age: "600"
          allow_credentials: true
{authz.format(cluster="authz", open="false")}
    routes:
      - match: {{ prefix: /hello }}
        cluster: app
        typed_per_filter_config: {{ ext_authz: {{ disabled: true }} }}
      - match: {{ prefix: / }}
        cluster: app
  - name: closed
    address: 127.0.0.1:0
    filters:
{authz.format(cluster="dead", open="false")}
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
  - name: keys
    address: 127.0.0.1:0
    filters:
      - name: api_key
        config: {{ keys_file: {keys}, from_params: [ api_key ], client_header: x-client }}
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
  - name: open
    address: 127.0.0.1:0
    filters:
{authz.format(cluster="dead", open="true")}
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
  - name: body
    address: 127.0.0.1:0
    filters:
{authz.format(cluster="authz", open="false")}          with_request_body: {{ max_request_bytes: 64 }}
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
  - name: high_ports
    address: 127.0.0.1:0
    filters:
      - name: rbac
        config:
          rules:
            action: ALLOW
            policies:
              high: {{ principals: [ {{ any: true }} ],
                      permissions: [ {{ destination_port_range: {{ start: 1024, end: 65536 }} }} ] }}
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
  - name: port_one
    address: 127.0.0.1:0
    filters:
      - name: rbac
        config:
          rules:
            action: ALLOW
            policies:
              one: {{ principals: [ {{ any: true }} ], permissions: [ {{ destination_port: 1 }} ] }}
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
  - name: partial
    address: 127.0.0.1:0
    filters:
{authz.format(cluster="authz", open="false")}          with_request_body: {{ max_request_bytes: 64, allow_partial_message: true }}
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
""")

    @classmethod
    def tearDownClass(cls):
        cls.sc.stop()
        cls.up.stop()
        cls.authz.stop()
        cls.dir.cleanup()

    def request(self, listener, path, *headers, method="GET"):
        args = ["-X", method, "-o", "-", "-D", "-", self.sc.url(path, listener)]
        for h in headers:
            args += ["-H", h]
        before = self.up.stats()["requests"]
        rc, out, err = curl(*args)
        self.assertEqual(rc, 0, err)
        reached = self.up.stats()["requests"] - before - 1  # minus the /stats call itself
        head, _, body = out.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields.setdefault(name.strip().lower(), value.strip())
        return int(lines[0].split()[1]), fields, body, reached

    def post(self, listener, body, *headers):
        """(status, the upstream's /sink answer or None, whether it reached it)."""
        args = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--data-binary", "@-",
                self.sc.url("/sink", listener)]
        for h in headers:
            args += [h] if h.startswith("--") else ["-H", h]
        before = self.up.stats()["requests"]
        p = subprocess.run(args, input=body, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        reached = self.up.stats()["requests"] - before - 1
        out, _, code = p.stdout.rpartition(b"\n")
        return int(code), json.loads(out) if reached else None, reached

    def test_with_request_body(self):
        # The whole body goes to the service, and then to the app.
        body = b"allow: a small body"
        code, sink, reached = self.post("body", body)
        self.assertEqual((code, reached), (200, 1))
        self.assertEqual(sink["bytes"], len(body))
        check = self.authz.checks[-1]
        self.assertEqual(check["body"], body)
        self.assertEqual(check["headers"]["x-envoy-auth-partial-body"], "false")
        # The service decides on the body.
        code, _, reached = self.post("body", b"deny me")
        self.assertEqual((code, reached), (401, 0))
        # Longer than max_request_bytes: 413 before asking, known length or not.
        checks = len(self.authz.checks)
        code, _, reached = self.post("body", b"allow" + b"x" * 100)
        self.assertEqual((code, reached), (413, 0))
        code, _, reached = self.post("body", b"allow" + b"x" * 100,
                                     "Transfer-Encoding: chunked")
        self.assertEqual((code, reached), (413, 0))
        self.assertEqual(len(self.authz.checks), checks)
        # allow_partial_message: the first 64 bytes go to the service, the
        # whole body (chunked, behind Expect: 100-continue) to the app.
        long = b"allow" + bytes(range(256)) * 40
        code, sink, reached = self.post("partial", long, "Transfer-Encoding: chunked",
                                        "Expect: 100-continue")
        self.assertEqual((code, reached), (200, 1))
        self.assertEqual(sink["bytes"], len(long))
        self.assertEqual(sink["sha256"], hashlib.sha256(long).hexdigest())
        check = self.authz.checks[-1]
        self.assertEqual(check["body"], long[:64])
        self.assertEqual(check["headers"]["x-envoy-auth-partial-body"], "true")
        # The same over HTTP/2 (DATA frames, no chunked framing).
        code, sink, reached = self.post("partial", long, "--http2-prior-knowledge")
        self.assertEqual((code, reached), (200, 1))
        self.assertEqual(sink["sha256"], hashlib.sha256(long).hexdigest())
        # (The 413 goes out before the body is read; the stream is then
        # reset with NO_ERROR, which curl 7.88 reports as a framing error
        # while it still uploads: only the app's side is checked.)
        before = self.up.stats()["requests"]
        subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--data-binary", "@-",
                        self.sc.url("/sink", "body")], input=b"allow" + b"x" * 100,
                       capture_output=True, timeout=60)
        self.assertEqual(self.up.stats()["requests"] - before - 1, 0)

    def test_rbac_destination_port(self):
        # The listeners are on ephemeral ports (configured as 0): the bound
        # port is what rbac sees.
        code, _, _, reached = self.request("high_ports", "/hello")
        self.assertEqual((code, reached), (200, 1))
        code, _, _, reached = self.request("port_one", "/hello")
        self.assertEqual((code, reached), (403, 0))

    def test_allowed_request_carries_the_services_headers(self):
        code, _, body, reached = self.request("guarded", "/headers?q=1", "Authorization: Bearer good",
                                              "X-User-Name: ann", "X-Other: no",
                                              "X-User-Id: spoofed")
        self.assertEqual(code, 200, body)
        self.assertEqual(reached, 1)
        seen = {}
        for k, v in json.loads(body)["headers"]:
            seen.setdefault(k.lower(), []).append(v)
        self.assertEqual(seen.get("x-user-id"), ["42"])
        self.assertNotIn("x-internal", seen)
        check = self.authz.checks[-1]
        self.assertEqual(check["path"], "/check/headers?q=1")
        self.assertEqual(check["headers"]["authorization"], "Bearer good")
        self.assertEqual(check["headers"]["x-user-name"], "ann")
        self.assertEqual(check["headers"]["x-from"], "sidecar")
        self.assertNotIn("x-other", check["headers"])

    def test_denial_is_the_services_answer_and_never_reaches_the_app(self):
        code, fields, body, reached = self.request("guarded", "/api", "Authorization: Bearer bad",
                                                   method="POST")
        self.assertEqual(code, 401)
        self.assertEqual(reached, 0)
        self.assertEqual(body, b"denied by authz\n")
        self.assertEqual(fields.get("www-authenticate"), 'Bearer realm="authz"')
        self.assertNotIn("x-internal", fields)
        self.assertEqual(self.authz.checks[-1]["method"], "POST")

    def test_route_override_skips_the_check(self):
        n = len(self.authz.checks)
        code, _, _, reached = self.request("guarded", "/hello")
        self.assertEqual((code, reached), (200, 1))
        self.assertEqual(len(self.authz.checks), n)

    def test_timeout_and_dead_service(self):
        code, _, _, reached = self.request("guarded", "/slow", "Authorization: Bearer good")
        self.assertEqual((code, reached), (403, 0))
        code, _, _, reached = self.request("closed", "/hello", "Authorization: Bearer good")
        self.assertEqual((code, reached), (403, 0))
        code, _, _, reached = self.request("open", "/hello")
        self.assertEqual((code, reached), (200, 1))
        def logged():
            if not os.path.exists(self.log):
                return False
            with open(self.log) as f:
                return "ext_authz_error" in f.read()
        wait_for(logged, what="ext_authz_error in the access log")
        metrics = self.sc.admin_get("/metrics")[1]
        self.assertRegex(metrics, r'sidecar_ext_authz_requests_total\{result="error"\} [1-9]')
        self.assertRegex(metrics,
                         r'sidecar_ext_authz_requests_total\{result="failure_mode_allowed"\} [1-9]')

    def test_cors_preflight_and_decoration(self):
        n = len(self.authz.checks)
        code, fields, _, reached = self.request(
            "guarded", "/api", "Origin: https://app.example",
            "Access-Control-Request-Method: POST", method="OPTIONS")
        self.assertEqual((code, reached), (200, 0))
        self.assertEqual(len(self.authz.checks), n)  # cors runs first: no check for a preflight
        self.assertEqual(fields.get("access-control-allow-origin"), "https://app.example")
        self.assertEqual(fields.get("access-control-allow-methods"), "GET, POST")
        self.assertEqual(fields.get("access-control-max-age"), "600")
        self.assertEqual(fields.get("access-control-allow-credentials"), "true")
        # An actual request: decorated, and so is a denial (the browser may read it).
        code, fields, _, _ = self.request("guarded", "/hello", "Origin: https://app.example")
        self.assertEqual(code, 200)
        self.assertEqual(fields.get("access-control-allow-origin"), "https://app.example")
        code, fields, _, _ = self.request("guarded", "/api", "Origin: https://app.example")
        self.assertEqual(code, 401)
        self.assertEqual(fields.get("access-control-allow-origin"), "https://app.example")
        # Another origin: not decorated; its preflight is not answered by the sidecar.
        code, fields, _, _ = self.request("guarded", "/hello", "Origin: https://evil.example")
        self.assertEqual(code, 200)
        self.assertNotIn("access-control-allow-origin", fields)

    def test_api_keys(self):
        code, _, body, reached = self.request("keys", "/headers", "X-Api-Key: key-billing-1",
                                              "X-Client: forged")
        self.assertEqual((code, reached), (200, 1))
        seen = [(k.lower(), v) for k, v in json.loads(body)["headers"]]
        self.assertIn(("x-client", "billing"), seen)
        self.assertNotIn("forged", json.dumps(seen))
        self.assertNotIn("x-api-key", [k for k, _ in seen])
        code, _, body, reached = self.request("keys", "/headers?api_key=key-reports-1")
        self.assertEqual((code, reached), (200, 1))
        self.assertIn(("x-client", "reports"), [(k.lower(), v) for k, v in json.loads(body)["headers"]])
        self.assertIn('"request_line": "GET /headers HTTP/1.1"', body.decode())  # key stripped
        for headers in (["X-Api-Key: wrong"], []):
            code, _, _, reached = self.request("keys", "/headers", *headers)
            self.assertEqual((code, reached), (401, 0))


if __name__ == "__main__":
    run_tests()
