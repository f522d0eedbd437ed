#!/usr/bin/python3
"""Memory of idle connections (issue 17): read buffers come from a per-worker
pool when bytes arrive and go back when a connection goes idle, for plain
HTTP/1.1, TLS and HTTP/2 (h2c) downstream connections and for the pooled
upstream connections. Checked through the pool's gauges on /metrics
(sidecar_read_buffers_in_use), which must both rise (connections in the
middle of a request head hold a buffer) and fall back to zero (idle ones hold
none), and by reusing the idle connections afterwards. A loose RSS bound
(< 4 KiB per idle connection over 2,000) is checked on builds without a
sanitizer (ASan's redzones and quarantine make RSS meaningless there)."""
import os
import re
import socket
import ssl
import tempfile
import time
import unittest

import certs
from harness import BIN, Sidecar, Upstream, run_tests, wait_for

REQUEST = b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n"


def read_response(s):
    """Reads one response to GET /hello; returns the bytes."""
    data = b""
    while b"hello\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise AssertionError(f"closed after {data!r}")
        data += chunk
    return data


def sanitized():
    """Whether the binary was built with ASan (its RSS is not comparable)."""
    with open(BIN, "rb") as f:
        return b"__asan_init" in f.read()


class MemoryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream = Upstream()
        cls.tmp = tempfile.TemporaryDirectory(prefix="sidecar-memory-")
        ca = certs.CA(cls.tmp.name, "ca")
        crt, key = ca.issue("server", dns=["localhost"])
        cls.sidecar = Sidecar(f"""
workers: 1
clusters:
  - name: app
    endpoints: [ "{cls.upstream.address}" ]
listeners:
  - name: plain
    address: 127.0.0.1:0
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
  - name: tls
    address: 127.0.0.1:0
    tls: {{ certificates: [ {{ cert: {crt}, key: {key} }} ] }}
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
  - name: h2c
    address: 127.0.0.1:0
    protocol: h2c
    routes: [ {{ match: {{ prefix: / }}, cluster: app }} ]
""")
        cls.tls_ctx = ssl.create_default_context(cafile=ca.cert)

    @classmethod
    def tearDownClass(cls):
        cls.sidecar.stop()
        cls.upstream.stop()
        cls.tmp.cleanup()

    def gauge(self, name):
        _, text = self.sidecar.admin_get("/metrics")
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        self.assertIsNotNone(m, f"{name} missing from /metrics")
        return float(m.group(1))

    def wait_buffers(self, predicate, what):
        # The gauges are published by the worker's 1 s tick; pooled upstream
        # connections give their buffer back on the same tick.
        return wait_for(lambda: predicate(self.gauge("sidecar_read_buffers_in_use")), timeout=10,
                        interval=0.2, what=what)

    def open_plain(self, n):
        conns = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", self.sidecar.port("plain")), timeout=10)
            s.sendall(REQUEST)
            read_response(s)
            conns.append(s)
        return conns

    def test_idle_connections_give_their_buffers_back(self):
        conns = self.open_plain(200)
        try:
            self.wait_buffers(lambda v: v == 0, "idle connections to hold no read buffer")
            # Half a request head: each of these connections holds a buffer.
            partial = []
            for _ in range(40):
                s = socket.create_connection(("127.0.0.1", self.sidecar.port("plain")), timeout=10)
                s.sendall(b"GET /hello HTTP/1.1\r\nHost: te")
                partial.append(s)
            self.wait_buffers(lambda v: v >= 40, "connections mid-head to hold a buffer each")
            for s in partial:
                s.sendall(b"st\r\n\r\n")
                self.assertIn(b" 200 ", read_response(s))
            conns += partial
            self.wait_buffers(lambda v: v == 0, "buffers back once the requests are answered")
            # Idle connections take a buffer again when a request comes:
            # one at a time, and pipelined.
            for s in conns[:20]:
                s.sendall(REQUEST)
                self.assertIn(b" 200 ", read_response(s))
            s = conns[0]
            s.sendall(REQUEST * 3)
            data = b""
            while data.count(b"hello\n") < 3:
                chunk = s.recv(65536)
                self.assertTrue(chunk, f"closed after {data!r}")
                data += chunk
            self.assertEqual(data.count(b"HTTP/1.1 200 "), 3)
            self.assertGreaterEqual(self.gauge("sidecar_read_buffers_free"), 1)
        finally:
            for s in conns:
                s.close()

    def test_tls_idle_connections(self):
        conns = []
        try:
            for _ in range(30):
                raw = socket.create_connection(("127.0.0.1", self.sidecar.port("tls")), timeout=10)
                s = self.tls_ctx.wrap_socket(raw, server_hostname="localhost")
                s.sendall(REQUEST)
                read_response(s)
                conns.append(s)
            self.wait_buffers(lambda v: v == 0, "idle TLS connections to hold no read buffer")
            for s in conns[:5]:
                s.sendall(REQUEST)
                self.assertIn(b" 200 ", read_response(s))
        finally:
            for s in conns:
                s.close()

    def test_http2_idle_connections(self):
        # HPACK literals without Huffman: :method GET, :scheme http,
        # :path /hello, :authority test.
        block = bytes([0x82, 0x86, 0x04, 6]) + b"/hello" + bytes([0x01, 4]) + b"test"

        def frame(kind, flags, stream, payload=b""):
            return (len(payload).to_bytes(3, "big") + bytes([kind, flags]) +
                    stream.to_bytes(4, "big") + payload)

        def exchange(s, stream, hello):
            s.sendall((b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0) if hello else b"") +
                      frame(1, 0x5, stream, block))
            data = b""
            while True:
                chunk = s.recv(65536)
                self.assertTrue(chunk, "h2c connection closed")
                data += chunk
                while len(data) >= 9:
                    n = int.from_bytes(data[:3], "big")
                    if len(data) < 9 + n:
                        break
                    kind, flags = data[3], data[4]
                    sid = int.from_bytes(data[5:9], "big") & 0x7fffffff
                    payload, data = data[9:9 + n], data[9 + n:]
                    if kind == 4 and not flags & 1:
                        s.sendall(frame(4, 1, 0))
                    if kind == 7:
                        self.fail(f"GOAWAY {payload!r}")
                    if sid == stream and kind in (0, 1) and flags & 1:
                        return

        conns = []
        try:
            for _ in range(20):
                s = socket.create_connection(("127.0.0.1", self.sidecar.port("h2c")), timeout=10)
                exchange(s, 1, True)
                conns.append(s)
            self.wait_buffers(lambda v: v == 0, "idle HTTP/2 connections to hold no read buffer")
            for s in conns[:5]:
                exchange(s, 3, False)
        finally:
            for s in conns:
                s.close()

    def test_rss_per_idle_connection(self):
        if sanitized():
            self.skipTest("RSS under ASan is not comparable (redzones, quarantine)")
        warm = self.open_plain(100)
        for s in warm:
            s.close()
        time.sleep(0.5)
        before = self.sidecar.rss_kib()
        n = 2000
        conns = self.open_plain(n)
        try:
            time.sleep(0.5)
            per_conn = (self.sidecar.rss_kib() - before) * 1024 / n
            # 1 KiB is the goal (bench/connmem.sh measures it); 4 KiB does not
            # flake on a loaded machine and fails with a 16 KiB buffer each.
            self.assertLess(per_conn, 4096, f"{per_conn:.0f} bytes per idle connection")
        finally:
            for s in conns:
                s.close()


if __name__ == "__main__":
    run_tests()
