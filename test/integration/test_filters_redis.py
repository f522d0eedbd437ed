#!/usr/bin/python3
"""The global rate_limit filter: two sidecars sharing one real redis-server
admit the limit in total; Redis down fails open (counted); a restarted Redis
(which lost the script: NOSCRIPT) limits again."""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import _PROCESSES, Sidecar, curl, free_port, run_tests, wait_for

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


class Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")


class Redis:
    """redis-server on 127.0.0.1:port, no persistence."""

    def __init__(self, port, workdir):
        self.port = port
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir, "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _PROCESSES.append(self.proc)
        wait_for(self.ping, timeout=10, what="redis-server")

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def status(sc, path, key):
    rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", "-H", f"x-api-key: {key}",
                        sc.url(path))
    if rc != 0:
        raise AssertionError(f"curl failed ({rc}): {err}")
    return int(out)


@unittest.skipUnless(os.path.exists(REDIS), "redis-server is not installed")
class GlobalRateLimitTest(unittest.TestCase):
    def test_two_sidecars_share_the_limit_and_fail_open(self):
        server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(lambda: (server.shutdown(), server.server_close()))
        work = tempfile.TemporaryDirectory(prefix="sidecar-redis-")
        self.addCleanup(work.cleanup)
        port = free_port()
        redis = Redis(port, work.name)
        self.addCleanup(lambda: redis.stop())
        config = f"""
workers: 2
clusters: [ {{ name: app, endpoints: [ "127.0.0.1:{server.server_address[1]}" ] }} ]
listeners:
  - name: inbound
    address: 127.0.0.1:0
    filters:
      - name: rate_limit
        config:
          redis: {{ address: "127.0.0.1:{port}" }}
          timeout: 500ms
          failure_mode_deny: false
          descriptors: [ {{ prefix: /api, key: "header:x-api-key", limit: 10, window: 60s }} ]
    routes: [ {{ cluster: app }} ]
"""
        a, b = Sidecar(config), Sidecar(config)
        self.addCleanup(a.stop)
        self.addCleanup(b.stop)

        # 30 requests for one key, alternating replicas: 10 admitted in all
        # (GCRA: a new token every 6s, so at most one more if this is slow).
        codes = [status(a if i % 2 else b, "/api/x", "alice") for i in range(30)]
        admitted = codes.count(200)
        self.assertGreaterEqual(admitted, 10, codes)
        self.assertLessEqual(admitted, 11, codes)
        self.assertEqual(codes.count(429), 30 - admitted)
        # The first 10 pass on both replicas, then both refuse.
        self.assertEqual(codes[:10], [200] * 10)
        # Another key has its own quota; paths outside the prefix are free.
        self.assertEqual(status(a, "/api/x", "bob"), 200)
        self.assertEqual(status(a, "/other", "alice"), 200)

        rc, out, _ = curl("-D", "-", "-o", "/dev/null", "-H", "x-api-key: alice", a.url("/api/x"))
        head = out.decode().lower()
        self.assertIn("429", head.split("\r\n")[0])
        self.assertRegex(head, r"retry-after: \d+")
        self.assertIn('ratelimit-policy: "descriptor0";q=10;w=60', head)

        # Redis goes away: requests pass (fail open), counted as errors.
        redis.stop()
        codes = [status(a if i % 2 else b, "/api/x", "carol") for i in range(6)]
        self.assertEqual(codes, [200] * 6)
        errors = 0
        for sc in (a, b):
            m = re.search(r'^sidecar_rate_limit_requests_total\{listener="inbound",'
                          r'route="inbound/0",result="error"\} (\d+)$', sc.admin_get("/metrics")[1],
                          re.M)
            errors += int(m.group(1)) if m else 0
        self.assertEqual(errors, 6)

        # A new Redis on the same port (the script is gone: NOSCRIPT, then
        # EVAL) limits again once the sidecars reconnect.
        redis = Redis(port, work.name)
        self.addCleanup(lambda: redis.stop())
        time.sleep(0.3)  # past the reconnect delay
        codes = [status(a if i % 2 else b, "/api/y", "dave") for i in range(14)]
        admitted = codes.count(200)
        # The first request of each worker may still fail open while it reconnects.
        self.assertGreaterEqual(admitted, 10, codes)
        self.assertLessEqual(admitted, 14 - 2, codes)
        self.assertIn(429, codes)


if __name__ == "__main__":
    run_tests()
