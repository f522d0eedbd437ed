#!/usr/bin/python3
"""basic_auth through the real binary, with curl: bcrypt, SHA-crypt and
{SHA} users of an htpasswd file; 401 with the Basic challenge for missing,
unknown and wrong credentials (never reaching the app); the user passed
on, Authorization stripped; the file re-read when it changes; per-route
disabled; plaintext files refused at load with FILE:LINE:COL."""
import base64
import crypt
import hashlib
import json
import os
import subprocess
import tempfile
import threading
import time
import unittest
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import BIN, Sidecar, curl, run_tests, wait_for

warnings.filterwarnings("ignore", category=DeprecationWarning)


class Origin(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.server.hits += 1
        body = json.dumps({"user": self.headers.get("X-User"),
                           "authorization": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def sha1_entry(password):
    return "{SHA}" + base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()


class BasicAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = ThreadingHTTPServer(("127.0.0.1", 0), Origin)
        cls.origin.hits = 0
        cls.origin.daemon_threads = True
        threading.Thread(target=cls.origin.serve_forever, daemon=True).start()
        cls.tmp = tempfile.TemporaryDirectory(prefix="sidecar-basic-")
        cls.users = os.path.join(cls.tmp.name, "htpasswd")
        cls.write_users({
            "alice": crypt.crypt("alice-pw", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)),
            "bob": crypt.crypt("bob-pw", crypt.mksalt(crypt.METHOD_SHA512)),
            "carol": sha1_entry("carol-pw"),
        })
        port = cls.origin.server_address[1]
        cls.sidecar = Sidecar(f"""
workers: 2
clusters:
  - name: app
    endpoints: [ "127.0.0.1:{port}" ]
listeners:
  - name: in
    address: 127.0.0.1:0
    filters:
      - name: basic_auth
        config:
          users: {{ filename: {cls.users} }}
          forward_username_header: x-user
          realm: "test realm"
    routes:
      - match: {{ prefix: /public }}
        cluster: app
        typed_per_filter_config: {{ basic_auth: {{ disabled: true }} }}
      - {{ match: {{ prefix: / }}, cluster: app }}
""")

    @classmethod
    def tearDownClass(cls):
        cls.sidecar.stop()
        cls.origin.shutdown()
        cls.tmp.cleanup()

    @classmethod
    def write_users(cls, users):
        tmp = cls.users + ".new"
        with open(tmp, "w") as f:
            f.write("# test users\n")
            for name, h in users.items():
                f.write(f"{name}:{h}\n")
        os.replace(tmp, cls.users)

    def get(self, path="/x", *args):
        code, out, err = curl("-i", *args, self.sidecar.url(path))
        self.assertEqual(code, 0, err)
        head, _, body = out.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (line.partition(":") for line in lines[1:])}
        return int(lines[0].split()[1]), headers, body

    def test_users_pass_with_their_name(self):
        for user in ("alice", "bob", "carol"):
            status, _, body = self.get("/x", "-u", f"{user}:{user}-pw")
            self.assertEqual(status, 200, body)
            saw = json.loads(body)
            self.assertEqual(saw["user"], user)
            self.assertIsNone(saw["authorization"])  # not forwarded
        # Again: the verified credentials are remembered (same answer).
        status, _, body = self.get("/x", "-u", "alice:alice-pw")
        self.assertEqual(json.loads(body)["user"], "alice")

    def test_refusals(self):
        hits = self.origin.hits
        status, h, body = self.get("/x")
        self.assertEqual(status, 401)
        self.assertEqual(h["www-authenticate"], 'Basic realm="test realm", charset="UTF-8"')
        for creds in ("alice:wrong", "nobody:alice-pw", "bob:", "carol:alice-pw", "alice:bob-pw"):
            status, h, _ = self.get("/x", "-u", creds)
            self.assertEqual(status, 401, creds)
            self.assertIn("www-authenticate", h)
        status, _, _ = self.get("/x", "-H", "Authorization: Basic !!!")
        self.assertEqual(status, 401)
        status, _, _ = self.get("/x", "-H", "Authorization: Bearer abc")
        self.assertEqual(status, 401)
        self.assertEqual(self.origin.hits, hits, "a refused request reached the app")
        # A client may not pose as another user by sending the header itself.
        status, _, body = self.get("/x", "-H", "X-User: mallory", "-u", "carol:carol-pw")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["user"], "carol")

    def test_concurrent_logins(self):
        # Many bcrypt checks at once: all answered right, none lost.
        results = []

        def one(i):
            pw = "alice-pw" if i % 2 == 0 else "nope"
            code, out, _ = curl("-s", "-o", "/dev/null", "-w", "%{http_code}", "-u",
                                f"alice:{pw}", self.sidecar.url("/c"))
            results.append((i % 2, out))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(results), 40)
        for odd, code in results:
            self.assertEqual(code, b"401" if odd else b"200")

    def test_per_route_disabled(self):
        status, _, body = self.get("/public/page")
        self.assertEqual(status, 200)

    def test_file_reloaded(self):
        self.write_users({
            "alice": crypt.crypt("alice-pw", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)),
            "bob": crypt.crypt("bob-pw", crypt.mksalt(crypt.METHOD_SHA512)),
            "carol": sha1_entry("carol-pw"),
            "dave": sha1_entry("dave-pw"),
        })
        wait_for(lambda: self.get("/x", "-u", "dave:dave-pw")[0] == 200, timeout=10,
                 what="dave to be accepted after the reload")
        # A broken file keeps the previous users.
        with open(self.users, "a") as f:
            f.write("eve:plaintext\n")
        time.sleep(1.2)
        self.assertEqual(self.get("/x", "-u", "dave:dave-pw")[0], 200)
        self.assertIn("keeping the previous users", self.sidecar.output())

    def test_metrics(self):
        self.get("/x")
        metrics = self.sidecar.admin_get("/metrics")[1]
        self.assertIn('sidecar_basic_auth_denied_total{reason="missing"}', metrics)
        self.assertIn("sidecar_basic_auth_allowed_total", metrics)
        # The password never shows in the log.
        self.assertNotIn("alice-pw", self.sidecar.output())

    def test_plaintext_refused_at_load(self):
        path = os.path.join(self.tmp.name, "plain")
        with open(path, "w") as f:
            f.write("alice:secret\n")
        cfg = os.path.join(self.tmp.name, "bad.yaml")
        with open(cfg, "w") as f:
            f.write("clusters: [ { name: app, endpoints: [ '127.0.0.1:1' ] } ]\n"
                    "listeners:\n  - name: in\n    address: 127.0.0.1:0\n    filters:\n"
                    f"      - {{ name: basic_auth, config: {{ users: {{ filename: {path} }} }} }}\n"
                    "    routes: [ { match: { prefix: / }, cluster: app } ]\n")
        p = subprocess.run([BIN, "validate", "-c", cfg], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 64)
        self.assertIn(f"{cfg}:6:", p.stdout + p.stderr)
        self.assertIn("line 1: the password is not hashed", p.stdout + p.stderr)


if __name__ == "__main__":
    run_tests()
