#!/usr/bin/python3
"""The cache filter through the real binary, against an upstream that counts
its hits per path: a 1,000-request burst on one URL makes one upstream
request (coalescing, then hits); Cache-Status [RFC 9211] and Age on hits;
what a shared cache must not store (private, no-store, Set-Cookie,
Authorization without public, 5xx); Vary variants; freshness expiry; bodies
above max_object_size streamed uncached; client no-cache and only-if-cached;
unsafe methods invalidating; the admin purge; RFC 5861: a stale entry
answered at once while exactly one background revalidation refreshes it
(stale-while-revalidate), and answered when the upstream is down, then not
once outside the window (stale-if-error)."""
import http.client
import json
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import Sidecar, curl, run_tests, wait_for

BIG = b"b" * (2 << 20)


class Origin(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def count(self):
        path = self.path.split("?")[0]
        with self.server.lock:
            self.server.hits[path] = self.server.hits.get(path, 0) + 1
            return self.server.hits[path]

    def do_GET(self):
        n = self.count()
        path = self.path.split("?")[0]
        cc, extra, body = "max-age=60", {}, f"{path} #{n}\n".encode()
        if path == "/slow":
            time.sleep(0.5)
        elif path == "/private":
            cc = "private, max-age=60"
        elif path == "/nostore":
            cc = "no-store"
        elif path == "/cookie":
            extra = {"Set-Cookie": "a=b"}
        elif path == "/none":
            cc = None
        elif path == "/short":
            cc = "max-age=1"
        elif path == "/expires":
            cc = None
            extra = {"Expires": time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                              time.gmtime(time.time() + 60)),
                     "Date": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())}
        elif path == "/public-auth":
            cc = "public, max-age=60"
        elif path == "/vary":
            extra = {"Vary": "Accept-Language"}
            body = f"{self.headers.get('Accept-Language')} #{n}\n".encode()
        elif path == "/big":
            body = BIG
        elif path == "/error":
            self.reply(500, b"down\n", {"Cache-Control": "max-age=60"})
            return
        elif path == "/etag":
            # Revalidation: the same representation while the validator holds.
            cc = "max-age=1"
            if self.headers.get("If-None-Match") == '"v1"':
                with self.server.lock:
                    self.server.not_modified += 1
                self.send_response(304)
                self.send_header("Cache-Control", "max-age=60")
                self.send_header("ETag", '"v1"')
                self.send_header("X-Refreshed", "yes")
                self.end_headers()
                return
            self.reply(200, b"etag body\n", {"Cache-Control": cc, "ETag": '"v1"'})
            return
        elif path == "/sie":
            if n > 1:
                self.reply(503, b"down\n", {})
                return
            cc = "max-age=1, stale-if-error=60"
        elif path == "/swr":
            # stale-while-revalidate: the revalidation is held until the
            # test releases it, so the stale answers provably come first.
            if self.headers.get("If-None-Match") == '"s1"':
                with self.server.lock:
                    self.server.swr_revalidations += 1
                self.server.release.wait(10)
                self.send_response(304)
                self.send_header("Cache-Control", "max-age=60")
                self.send_header("ETag", '"s1"')
                self.end_headers()
                return
            self.reply(200, f"swr #{n}\n".encode(),
                       {"Cache-Control": "max-age=1, stale-while-revalidate=30", "ETag": '"s1"'})
            return
        elif path == "/sie-none":
            if n > 1:
                self.reply(503, b"down\n", {})
                return
            cc = "max-age=1"
        headers = dict(extra)
        if cc:
            headers["Cache-Control"] = cc
        headers["ETag"] = f'"{n}"'
        self.reply(200, body, headers)

    def do_POST(self):
        self.count()
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        self.reply(200, b"posted\n", {})

    def reply(self, status, body, headers):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET


class DownOrigin(BaseHTTPRequestHandler):
    """An origin the test stops: HTTP/1.0, so no pooled connection outlives it."""
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        body = b"from the origin\n"
        self.send_response(200)
        self.send_header("Cache-Control", "max-age=1, stale-if-error=2")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Cache(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = ThreadingHTTPServer(("127.0.0.1", 0), Origin)
        cls.origin.hits = {}
        cls.origin.not_modified = 0
        cls.origin.swr_revalidations = 0
        cls.origin.release = threading.Event()
        cls.origin.lock = threading.Lock()
        cls.origin.daemon_threads = True
        cls.origin.request_queue_size = 1024
        threading.Thread(target=cls.origin.serve_forever, daemon=True).start()
        port = cls.origin.server_address[1]
        cls.down = ThreadingHTTPServer(("127.0.0.1", 0), DownOrigin)
        cls.down.daemon_threads = True
        threading.Thread(target=cls.down.serve_forever, daemon=True).start()
        down_port = cls.down.server_address[1]
        cls.sidecar = Sidecar(f"""
workers: 2
clusters:
  - name: app
    endpoints: [ "127.0.0.1:{port}" ]
  - name: down
    endpoints: [ "127.0.0.1:{down_port}" ]
listeners:
  - name: in
    address: 127.0.0.1:0
    filters:
      - name: cache
        config: {{ max_size: 64MiB, max_object_size: 1MiB }}
    routes:
      - match: {{ prefix: /nocache/ }}
        cluster: app
        typed_per_filter_config: {{ cache: {{ disabled: true }} }}
      - {{ match: {{ prefix: /down/ }}, cluster: down }}
      - {{ match: {{ prefix: / }}, cluster: app }}
""")

    @classmethod
    def tearDownClass(cls):
        cls.sidecar.stop()
        cls.origin.release.set()
        cls.origin.shutdown()
        if cls.down is not None:
            cls.down.shutdown()
            cls.down.server_close()

    def hits(self, path):
        with self.origin.lock:
            return self.origin.hits.get(path, 0)

    def get(self, path, *args):
        code, out, err = curl("-i", *args, self.sidecar.url(path))
        self.assertEqual(code, 0, err)
        head, _, body = out.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (line.partition(":") for line in lines[1:])}
        return int(lines[0].split()[1]), headers, body

    def test_burst_makes_one_upstream_request(self):
        port = self.sidecar.port()

        def worker(n):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            bodies = []
            for _ in range(n):
                conn.request("GET", "/slow")
                r = conn.getresponse()
                bodies.append((r.status, r.read()))
            conn.close()
            return bodies

        with ThreadPoolExecutor(max_workers=50) as pool:
            results = [b for f in [pool.submit(worker, 20) for _ in range(50)] for b in f.result()]
        self.assertEqual(len(results), 1000)
        self.assertTrue(all(r == (200, b"/slow #1\n") for r in results), set(results))
        self.assertEqual(self.hits("/slow"), 1)
        metrics = self.sidecar.admin_get("/metrics")[1]
        self.assertIn('sidecar_cache_requests_total{result="collapsed"}', metrics)

    def test_hit_headers(self):
        status, h, body = self.get("/fresh")
        self.assertEqual(status, 200)
        self.assertEqual(h["cache-status"], "sidecar; fwd=uri-miss; fwd-status=200; stored")
        status, h, body2 = self.get("/fresh")
        self.assertEqual(body2, body)
        self.assertTrue(h["cache-status"].startswith("sidecar; hit; ttl="), h)
        self.assertIn("age", h)
        self.assertEqual(h["etag"], '"1"')
        self.assertEqual(h["content-length"], str(len(body)))
        self.assertEqual(self.hits("/fresh"), 1)
        # HEAD is answered from the GET's entry.
        status, h, _ = self.get("/fresh", "-I")
        self.assertEqual(status, 200)
        self.assertTrue(h["cache-status"].startswith("sidecar; hit"))
        self.assertEqual(self.hits("/fresh"), 1)
        # Another query string is another resource.
        self.get("/fresh?x=1")
        self.assertEqual(self.hits("/fresh"), 2)

    def test_not_stored(self):
        for path in ("/private", "/nostore", "/cookie", "/none", "/error", "/nocache/x"):
            self.get(path)
            _, h, _ = self.get(path)
            self.assertEqual(self.hits(path), 2, path)
            if path != "/nocache/x":
                self.assertNotIn("stored", h.get("cache-status", ""), path)
        self.assertNotIn("cache-status", self.get("/nocache/y")[1])

    def test_authorization(self):
        self.get("/auth", "-H", "Authorization: Bearer x")
        self.get("/auth", "-H", "Authorization: Bearer x")
        self.assertEqual(self.hits("/auth"), 2)
        self.get("/public-auth", "-H", "Authorization: Bearer x")
        self.get("/public-auth", "-H", "Authorization: Bearer x")
        self.assertEqual(self.hits("/public-auth"), 1)

    def test_vary(self):
        _, _, en = self.get("/vary", "-H", "Accept-Language: en")
        _, _, fr = self.get("/vary", "-H", "Accept-Language: fr")
        _, h, en2 = self.get("/vary", "-H", "Accept-Language: en")
        _, _, fr2 = self.get("/vary", "-H", "Accept-Language: fr")
        self.assertEqual((en, fr), (en2, fr2))
        self.assertTrue(en.startswith(b"en #"))
        self.assertTrue(fr.startswith(b"fr #"))
        self.assertEqual(self.hits("/vary"), 2)
        _, h, _ = self.get("/vary", "-H", "Accept-Language: de")
        self.assertIn("fwd=vary-miss", h["cache-status"])

    def test_expiry_and_expires(self):
        self.get("/short")
        self.get("/short")
        self.assertEqual(self.hits("/short"), 1)
        time.sleep(1.2)
        _, h, body = self.get("/short")
        self.assertIn("fwd=stale", h["cache-status"])
        self.assertEqual(body, b"/short #2\n")
        self.get("/expires")
        self.get("/expires")
        self.assertEqual(self.hits("/expires"), 1)

    def test_revalidation(self):
        _, _, body = self.get("/etag")
        time.sleep(1.2)
        status, h, body2 = self.get("/etag")
        self.assertEqual((status, body2), (200, body))
        self.assertEqual(h["cache-status"], "sidecar; fwd=stale; fwd-status=304")
        self.assertEqual(h.get("x-refreshed"), "yes")  # the 304's fields are kept
        self.assertEqual(self.origin.not_modified, 1)
        # The 304 refreshed the entry (max-age=60 now): a hit.
        _, h, _ = self.get("/etag")
        self.assertTrue(h["cache-status"].startswith("sidecar; hit"), h)
        self.assertEqual(self.hits("/etag"), 2)
        # A client's own conditional request gets the origin's 304.
        status, _, _ = self.get("/etag", "-H", 'If-None-Match: "v1"', "-H", "Cache-Control: no-cache")
        self.assertEqual(status, 304)

    def test_stale_if_error(self):
        _, _, body = self.get("/sie")
        self.get("/sie-none")
        time.sleep(1.2)
        status, h, body2 = self.get("/sie")
        self.assertEqual((status, body2), (200, body))
        self.assertIn("fwd-status=503; detail=stale-if-error", h["cache-status"])
        # Without stale-if-error the error goes through.
        status, _, _ = self.get("/sie-none")
        self.assertEqual(status, 503)
        # The client may allow it itself (the 503 was not stored; the entry stays).
        status, h, _ = self.get("/sie-none", "-H", "Cache-Control: stale-if-error=60")
        self.assertEqual(status, 200)
        self.assertIn("detail=stale-if-error", h["cache-status"])
        self.assertEqual(self.hits("/sie-none"), 3)

    def metric(self, sample):
        for line in self.sidecar.admin_get("/metrics")[1].splitlines():
            if line.startswith(sample + " "):
                return float(line.split()[1])
        return 0.0

    def test_stale_while_revalidate(self):
        _, _, body = self.get("/swr")
        self.assertEqual(body, b"swr #1\n")
        time.sleep(1.2)
        # The origin holds the revalidation until released: every answer
        # below comes from the stale entry while it waits.
        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(lambda _: self.get("/swr"), range(20)))
        self.assertFalse(self.origin.release.is_set())
        for status, h, b in results:
            self.assertEqual((status, b), (200, body))
            self.assertIn("detail=stale-while-revalidate", h["cache-status"])
            # stale: no freshness left (ttl 0 while the whole-second age
            # equals max-age, negative after)
            self.assertTrue(h["cache-status"].startswith("sidecar; hit; ttl="), h)
            self.assertLessEqual(int(h["cache-status"].split("ttl=")[1].split(";")[0]), 0, h)
            self.assertGreaterEqual(int(h["age"]), 1)
        # Exactly one revalidation reached the origin, conditional.
        wait_for(lambda: self.origin.swr_revalidations == 1, what="the revalidation")
        self.assertEqual(self.hits("/swr"), 2)
        self.origin.release.set()
        # The 304 makes the entry fresh again: a plain hit, nothing upstream.
        wait_for(lambda: self.metric(
            'sidecar_cache_revalidations_total{result="not_modified"}') >= 1,
            what="the revalidation's 304")
        status, h, b = self.get("/swr")
        self.assertEqual((status, b), (200, body))
        self.assertRegex(h["cache-status"], r"^sidecar; hit; ttl=\d+$")
        self.assertEqual(self.hits("/swr"), 2)
        self.assertEqual(self.origin.swr_revalidations, 1)
        self.assertGreaterEqual(self.metric(
            'sidecar_cache_stale_served_total{reason="stale-while-revalidate"}'), 20)

    def test_stale_if_error_upstream_down(self):
        status, _, body = self.get("/down/x")
        self.assertEqual((status, body), (200, b"from the origin\n"))
        self.down.shutdown()
        self.down.server_close()
        self.down = None  # connections to its port are refused now
        type(self).down = None
        time.sleep(1.5)
        # Stale (max-age=1) within stale-if-error=2: the entry, not the 503.
        status, h, b = self.get("/down/x")
        self.assertEqual((status, b), (200, body))
        self.assertIn("fwd=stale; fwd-status=503; detail=stale-if-error", h["cache-status"])
        self.assertGreaterEqual(self.metric(
            'sidecar_cache_stale_served_total{reason="stale-if-error"}'), 1)
        # Past the window the proxy's error goes through.
        time.sleep(2.5)
        status, h, _ = self.get("/down/x")
        self.assertEqual(status, 503)
        self.assertNotIn("detail=stale-if-error", h.get("cache-status", ""))

    def test_big_bodies_stream_uncached(self):
        for _ in range(2):
            code, out, err = curl(self.sidecar.url("/big"))
            self.assertEqual(code, 0, err)
            self.assertEqual(len(out), len(BIG))
        self.assertEqual(self.hits("/big"), 2)

    def test_client_directives(self):
        self.get("/cc")
        self.get("/cc", "-H", "Cache-Control: no-cache")
        self.assertEqual(self.hits("/cc"), 2)
        status, h, _ = self.get("/cc")
        self.assertTrue(h["cache-status"].startswith("sidecar; hit"))
        status, _, _ = self.get("/never-seen", "-H", "Cache-Control: only-if-cached")
        self.assertEqual(status, 504)
        self.assertEqual(self.hits("/never-seen"), 0)

    def test_unsafe_method_invalidates(self):
        self.get("/resource")
        self.get("/resource")
        self.assertEqual(self.hits("/resource"), 1)
        self.get("/resource", "-d", "x=1")
        self.get("/resource")
        self.assertEqual(self.hits("/resource"), 3)  # GET, POST, GET again

    def test_admin_purge(self):
        self.get("/p/a")
        self.get("/p/b")
        self.get("/q")
        status, body = self.sidecar.admin_get("/cache/purge?prefix=/p/", method="POST")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["purged"], 2)
        self.get("/p/a")
        self.get("/q")
        self.assertEqual(self.hits("/p/a"), 2)
        self.assertEqual(self.hits("/q"), 1)


if __name__ == "__main__":
    run_tests()
