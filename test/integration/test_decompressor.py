#!/usr/bin/python3
"""The decompressor filter through the real binary: request bodies encoded
with gzip, br and zstd reach the upstream decoded (chunked, without
Content-Encoding), encoded responses reach the client decoded, the
upstream is offered the encodings (advertise_accept_encoding), and the
bounds hold: a zip bomb gets 413 and never reaches the upstream whole, a
corrupt body gets 400, a response bomb is cut short. zstd bytes come from
the zstd tool, br bytes from the sidecar's own compressor (no brotli
module for Debian's python3)."""
import gzip
import json
import subprocess
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import Sidecar, curl, metric_value, parse_metrics, run_tests

JSON_BODY = json.dumps([{"id": i, "name": f"item {i}", "tags": ["a", "b"]}
                        for i in range(2000)]).encode()


def zstd_bytes(data):
    return subprocess.run(["zstd", "-q", "-c", "-3"], input=data, capture_output=True,
                          check=True, timeout=30).stdout


class Origin(BaseHTTPRequestHandler):
    """Records what each request brought; serves encoded bodies."""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body, True
                body += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n), False

    def do_POST(self):
        try:
            body, chunked = self.read_body()
        except (ValueError, ConnectionError):
            self.server.cut += 1
            self.close_connection = True
            return
        self.server.seen.append({
            "body": body, "chunked": chunked,
            "content-encoding": self.headers.get("Content-Encoding"),
            "content-length": self.headers.get("Content-Length")})
        self.reply(b"stored\n", "text/plain")

    def do_GET(self):
        self.server.accept_encoding.append(self.headers.get("Accept-Encoding"))
        enc = self.path.rsplit("/", 1)[-1]
        body, extra = self.server.encoded[enc]
        self.reply(body, "application/json", extra)

    def reply(self, body, content_type, extra=None):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class DecompressorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = ThreadingHTTPServer(("127.0.0.1", 0), Origin)
        cls.server.daemon_threads = True
        cls.server.seen, cls.server.accept_encoding, cls.server.cut = [], [], 0
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()
        origin = f"127.0.0.1:{cls.server.server_address[1]}"
        cls.sc = Sidecar(f"""
workers: 2
clusters: [ {{ name: app, endpoints: [ "{origin}" ] }} ]
listeners:
  - name: in
    address: 127.0.0.1:0
    filters:
      - name: decompressor
        config: {{ max_decompressed_bytes: 1MiB }}
    routes:
      - match: {{ prefix: /off }}
        cluster: app
        typed_per_filter_config: {{ decompressor: {{ disabled: true }} }}
      - {{ match: {{ prefix: / }}, cluster: app }}
  - name: comp
    address: 127.0.0.1:0
    filters: [ {{ name: compressor, config: {{ brotli: {{}} }} }} ]
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
""")
        # br bytes, made by the sidecar's compressor from a plain body.
        cls.server.encoded = {"plain": (JSON_BODY, {})}
        rc, out, err = curl("-H", "Accept-Encoding: br", cls.sc.url("/get/plain", "comp"))
        assert rc == 0 and out and out != JSON_BODY, err
        cls.br = out
        bomb = gzip.compress(b"\0" * (8 * 1024 * 1024), 9)
        cls.server.encoded.update({
            "gzip": (gzip.compress(JSON_BODY), {"Content-Encoding": "gzip", "ETag": '"e1"'}),
            "br": (cls.br, {"Content-Encoding": "br"}),
            "zstd": (zstd_bytes(JSON_BODY), {"Content-Encoding": "zstd"}),
            "layered": (gzip.compress(JSON_BODY), {"Content-Encoding": "identity, gzip"}),
            "notransform": (gzip.compress(JSON_BODY),
                            {"Content-Encoding": "gzip", "Cache-Control": "no-transform"}),
            "bomb": (bomb, {"Content-Encoding": "gzip"}),
        })
        cls.bomb = bomb

    @classmethod
    def tearDownClass(cls):
        cls.sc.stop()
        cls.server.shutdown()
        cls.server.server_close()
        cls.thread.join(timeout=10)

    def post(self, body, encoding, path="/upload", *extra):
        p = subprocess.run(["curl", "-sS", *extra, "-o", "/dev/null", "-w", "%{http_code}",
                            "--data-binary", "@-", "-H", f"Content-Encoding: {encoding}",
                            "-H", "Content-Type: application/json", self.sc.url(path, "in")],
                           input=body, capture_output=True, timeout=60)
        return int(p.stdout or b"0")

    def get(self, path):
        rc, out, err = curl("-D", "-", self.sc.url(path, "in"))
        self.assertEqual(rc, 0, err)
        head, _, body = out.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n")[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return headers, body

    def test_request_bodies_reach_the_upstream_decoded(self):
        for encoding, data in (("gzip", gzip.compress(JSON_BODY)), ("br", self.br),
                               ("zstd", zstd_bytes(JSON_BODY)),
                               ("deflate, gzip", gzip.compress(JSON_BODY))):
            with self.subTest(encoding=encoding):
                before = len(self.server.seen)
                self.assertEqual(self.post(data, encoding), 200)
                seen = self.server.seen[before]
                self.assertEqual(seen["body"], JSON_BODY)
                self.assertTrue(seen["chunked"])  # the length changed: streamed
                self.assertIsNone(seen["content-length"])
                # Only the undone coding leaves the field.
                self.assertEqual(seen["content-encoding"],
                                 "deflate" if encoding.startswith("deflate") else None)

    def test_over_http2(self):
        # An HTTP/2 client (prior knowledge on the auto listener): the body
        # arrives as DATA frames, goes upstream decoded and chunked.
        before = len(self.server.seen)
        self.assertEqual(self.post(zstd_bytes(JSON_BODY), "zstd", "/upload",
                                   "--http2-prior-knowledge"), 200)
        seen = self.server.seen[before]
        self.assertEqual(seen["body"], JSON_BODY)
        self.assertTrue(seen["chunked"])
        self.assertEqual(self.post(self.bomb, "gzip", "/upload", "--http2-prior-knowledge"), 413)
        self.assertEqual(len(self.server.seen), before + 1)
        rc, out, err = curl("--http2-prior-knowledge", self.sc.url("/get/br", "in"))
        self.assertEqual((rc, out), (0, JSON_BODY), err)

    def test_left_alone(self):
        data = gzip.compress(JSON_BODY)
        for path, encoding in (("/upload", "compress"), ("/off", "gzip")):
            with self.subTest(path=path, encoding=encoding):
                before = len(self.server.seen)
                self.assertEqual(self.post(data, encoding, path), 200)
                seen = self.server.seen[before]
                self.assertEqual(seen["body"], data)
                self.assertEqual(seen["content-length"], str(len(data)))
                self.assertEqual(seen["content-encoding"], encoding)

    def test_responses_reach_the_client_decoded(self):
        for encoding in ("gzip", "br", "zstd", "layered"):
            with self.subTest(encoding=encoding):
                headers, body = self.get(f"/get/{encoding}")
                self.assertEqual(body, JSON_BODY)
                self.assertNotIn("content-length", headers)
                # "identity, gzip": nothing is left to say once gzip is undone.
                self.assertIsNone(headers.get("content-encoding"))
        headers, _ = self.get("/get/gzip")
        self.assertEqual(headers["etag"], 'W/"e1"')
        # The upstream was offered what the filter can undo.
        self.assertEqual(self.server.accept_encoding[-1], "gzip, br, zstd")
        rc, out, _ = curl("-H", "Accept-Encoding: br;q=0.5, deflate", self.sc.url("/get/plain", "in"))
        self.assertEqual(self.server.accept_encoding[-1], "br;q=0.5, deflate, gzip, zstd")

    def test_no_transform_is_respected(self):
        headers, body = self.get("/get/notransform")
        self.assertEqual(headers.get("content-encoding"), "gzip")
        self.assertEqual(gzip.decompress(body), JSON_BODY)

    def test_bounds(self):
        before, cut = len(self.server.seen), self.server.cut
        # 8 MiB of zeros in ~8 KiB: over 1 MiB, and over the 100x ratio.
        self.assertEqual(self.post(self.bomb, "gzip"), 413)
        self.assertEqual(len(self.server.seen), before)  # never reached the app whole
        self.assertEqual(self.post(b"\x1f\x8b\x08\0garbage-not-deflate" * 10, "gzip"), 400)
        truncated = gzip.compress(JSON_BODY)[:-40]
        self.assertEqual(self.post(truncated, "gzip"), 400)
        self.assertEqual(len(self.server.seen), before)
        # A response bomb is refused: a 502 when nothing was sent yet (as
        # here: the first batch already inflates past the bound), else the
        # body is cut short; never a whole body.
        rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                            self.sc.url("/get/bomb", "in"))
        code, size = (out.decode().split() + ["0", "0"])[:2]
        self.assertTrue(rc != 0 or code == "502", (rc, out, err))
        self.assertLess(int(size), 2 * 1024 * 1024)
        m = parse_metrics(self.sc.admin_get("/metrics")[1])
        self.assertGreaterEqual(metric_value(m, "sidecar_decompressor_errors_total",
                                             direction="request", reason="too_large"), 1)
        self.assertGreaterEqual(metric_value(m, "sidecar_decompressor_errors_total",
                                             direction="request", reason="invalid"), 2)
        self.assertGreaterEqual(metric_value(m, "sidecar_decompressor_errors_total",
                                             direction="response", reason="too_large"), 1)

    def test_metrics(self):
        self.assertEqual(self.post(gzip.compress(JSON_BODY), "gzip"), 200)
        m = parse_metrics(self.sc.admin_get("/metrics")[1])
        self.assertGreaterEqual(metric_value(m, "sidecar_decompressor_decompressed_total",
                                             direction="request", encoding="gzip"), 1)
        self.assertGreaterEqual(metric_value(m, "sidecar_decompressor_uncompressed_bytes_total",
                                             direction="request", encoding="gzip"),
                                len(JSON_BODY))


if __name__ == "__main__":
    run_tests()
