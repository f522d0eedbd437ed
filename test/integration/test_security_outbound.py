#!/usr/bin/python3
"""credential_injector on an outbound listener with real peers: a token file
re-read when it is replaced (as a Kubernetes projected token is), and an
OAuth2 token endpoint started here that counts its calls: many concurrent
outbound requests make one token request, and a failing endpoint gives 503
with the reason, never a request without credentials (the partner's
request count)."""
import concurrent.futures
import http.client
import json
import os
import tempfile
import threading
import time
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import Sidecar, Upstream, run_tests, wait_for


class TokenEndpoint:
    """RFC 6749 4.4: answers client credentials with a token after `delay`
    seconds, or 500 when `failing`."""

    def __init__(self):
        self.calls = 0
        self.forms = []
        self.delay = 0.5
        self.failing = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                outer.calls += 1
                outer.forms.append(form)
                time.sleep(outer.delay)
                if outer.failing or form.get("client_secret") != ["s3cret"]:
                    body = b'{"error":"invalid_client"}'
                    self.send_response(500 if outer.failing else 401)
                else:
                    body = json.dumps({"access_token": f"tok-{outer.calls}",
                                       "token_type": "Bearer", "expires_in": 3600}).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Outbound(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory(prefix="sidecar-outbound-")
        cls.token_file = os.path.join(cls.dir.name, "token")
        with open(cls.token_file, "w") as f:
            f.write("first-token\n")
        secret = os.path.join(cls.dir.name, "secret")
        with open(secret, "w") as f:
            f.write("s3cret\n")
        cls.idp = TokenEndpoint()
        cls.partner = Upstream()
        oauth = f"""
      - name: credential_injector
        config:
          oauth2_client_credentials:
            token_endpoint: {{ uri: "http://idp.example/oauth2/token", cluster: idp, timeout: 5s }}
            client_id: my-app
            client_secret_file: {secret}
            scopes: [ read ]
"""
        cls.sc = Sidecar(f"""
workers: 2
clusters:
  - {{ name: partner, endpoints: [ "{cls.partner.address}" ] }}
  - {{ name: idp, endpoints: [ "{cls.idp.address}" ] }}
listeners:
  - name: file
    address: 127.0.0.1:0
    direction: outbound
    filters:
      - name: credential_injector
        config: {{ bearer_from_file: {{ path: {cls.token_file} }} }}
    routes: [ {{ match: {{ prefix: / }}, cluster: partner }} ]
  - name: oauth
    address: 127.0.0.1:0
    direction: outbound
    filters:
{oauth}
    routes: [ {{ match: {{ prefix: / }}, cluster: partner }} ]
""")

    @classmethod
    def tearDownClass(cls):
        cls.sc.stop()
        cls.partner.stop()
        cls.idp.stop()
        cls.dir.cleanup()

    def authorization(self, listener, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.sc.port(listener), timeout=30)
        try:
            conn.request("GET", "/headers", headers=headers or {})
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                return r.status, body
            seen = [v for k, v in json.loads(body)["headers"] if k.lower() == "authorization"]
            return r.status, seen
        finally:
            conn.close()

    def test_1_token_file_is_reread_when_replaced(self):
        self.assertEqual(self.authorization("file"), (200, ["Bearer first-token"]))
        self.assertEqual(self.authorization("file", {"Authorization": "Bearer app"}),
                         (200, ["Bearer app"]))  # overwrite: false keeps the app's
        tmp = self.token_file + ".new"
        with open(tmp, "w") as f:
            f.write("second-token\n")
        os.replace(tmp, self.token_file)
        wait_for(lambda: self.authorization("file") == (200, ["Bearer second-token"]),
                 timeout=10, interval=0.2, what="the new token")

    def test_2_concurrent_requests_share_one_token_request(self):
        n = 1000
        with concurrent.futures.ThreadPoolExecutor(max_workers=100) as pool:
            results = list(pool.map(lambda _: self.authorization("oauth"), range(n)))
        self.assertEqual(results, [(200, ["Bearer tok-1"])] * n)
        self.assertEqual(self.idp.calls, 1)
        form = self.idp.forms[0]
        self.assertEqual(form["grant_type"], ["client_credentials"])
        self.assertEqual(form["client_id"], ["my-app"])
        self.assertEqual(form["scope"], ["read"])

    def test_3_failing_endpoint_is_a_503_and_nothing_reaches_the_partner(self):
        # A fresh sidecar: no cached token.
        self.idp.failing = True
        self.idp.delay = 0
        secret = os.path.join(self.dir.name, "secret")
        sc = Sidecar(f"""
clusters:
  - {{ name: partner, endpoints: [ "{self.partner.address}" ] }}
  - {{ name: idp, endpoints: [ "{self.idp.address}" ] }}
listeners:
  - name: oauth
    address: 127.0.0.1:0
    direction: outbound
    filters:
      - name: credential_injector
        config:
          oauth2_client_credentials:
            token_endpoint: {{ uri: "http://idp/token", cluster: idp }}
            client_id: my-app
            client_secret_file: {secret}
    routes: [ {{ match: {{ prefix: / }}, cluster: partner }} ]
""")
        try:
            before = self.partner.stats()["requests"]
            conn = http.client.HTTPConnection("127.0.0.1", sc.port("oauth"), timeout=10)
            conn.request("GET", "/headers")
            r = conn.getresponse()
            body = r.read()
            conn.close()
            self.assertEqual(r.status, 503)
            self.assertIn(b"the token endpoint answered 500", body)
            self.assertEqual(self.partner.stats()["requests"] - before, 1)  # only /stats
        finally:
            sc.stop()
            self.idp.failing = False


if __name__ == "__main__":
    run_tests()
