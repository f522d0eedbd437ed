#!/usr/bin/python3
"""gRPC through the real binary (issue 9): a python3-grpcio client and
server (grpcpeer.py) over an h2c listener and an h2c cluster: the four call
kinds, deadlines, status and trailing metadata; grpc-timeout as the route
timeout; gRPC local replies; %GRPC_STATUS% and sidecar_grpc_requests_total;
gRPC-Web over HTTP/1.1."""
import json
import os
import tempfile
import unittest

import grpc

import grpcpeer
import h2peer
from harness import Sidecar, free_port, run_tests, wait_for

NAMES = {0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 4: "DEADLINE_EXCEEDED",
         9: "FAILED_PRECONDITION", 14: "UNAVAILABLE"}


def status_forms(code):
    """The ways a gRPC status may be written: 9, "9", FAILED_PRECONDITION and
    Envoy's default %GRPC_STATUS% form, FailedPrecondition (CAMEL_STRING)."""
    snake = NAMES[code]
    camel = "".join(p.capitalize() for p in snake.split("_"))
    if code == 0:
        camel = "Ok"
    return {code, str(code), snake, camel}


def grpc_count(sc, route, code):
    """sidecar_grpc_requests_total{route=..., grpc_status=code} (any form of code)."""
    total = 0.0
    for line in sc.admin_get("/metrics")[1].splitlines():
        if not line.startswith("sidecar_grpc_requests_total{"):
            continue
        labels = dict(kv.split("=", 1) for kv in line[line.index("{") + 1:line.index("}")]
                      .replace('"', "").split(","))
        if labels.get("route") == route and labels.get("grpc_status") in status_forms(code):
            total += float(line.rsplit(" ", 1)[1])
    return total


class GrpcTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sidecar-grpc-")
        cls.log = os.path.join(cls.tmp.name, "access.log")
        cls.server = grpcpeer.Peer()
        cls.h2up = h2peer.Peer()  # an h2 upstream that ignores grpc-timeout
        cls.sc = Sidecar(f"""
workers: 2
access_log:
  path: {cls.log}
  json_format: {{ path: "%REQ(:PATH)%", grpc: "%GRPC_STATUS%", code: "%RESPONSE_CODE%",
                  route: "%ROUTE_NAME%" }}
clusters:
  - {{ name: grpc, endpoints: [ "{cls.server.address}" ], protocol: h2c }}
  - {{ name: h2peer, endpoints: [ "{cls.h2up.address}" ], protocol: h2c }}
  - {{ name: dead, endpoints: [ "127.0.0.1:{free_port()}" ], protocol: h2c, connect_timeout: 1s }}
listeners:
  - name: grpc
    address: 127.0.0.1:0
    protocol: h2c
    routes:
      - {{ name: capped, match: {{ prefix: "/slow?delay=3&capped" }}, cluster: h2peer, timeout: 1s }}
      - {{ name: slow, match: {{ prefix: /slow }}, cluster: h2peer, timeout: 15s }}
      - {{ name: grpc, match: {{ prefix: / }}, cluster: grpc }}
  - name: auto
    address: 127.0.0.1:0
    routes: [ {{ name: grpc-auto, match: {{ prefix: / }}, cluster: grpc }} ]
  - name: dead
    address: 127.0.0.1:0
    protocol: h2c
    routes: [ {{ name: dead, match: {{ prefix: / }}, cluster: dead }} ]
  - name: web
    address: 127.0.0.1:0
    filters: [ {{ name: grpc_web }} ]
    routes: [ {{ name: web, match: {{ prefix: / }}, cluster: grpc }} ]
""")
        cls.target = f"127.0.0.1:{cls.sc.port('grpc')}"
        cls.client = grpcpeer.Client(cls.target)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.sc.stop()
        cls.h2up.stop()
        cls.server.stop()
        cls.tmp.cleanup()

    def log_entry(self, predicate):
        def find():
            if not os.path.exists(self.log):
                return None
            for line in open(self.log):
                entry = json.loads(line)
                if predicate(entry):
                    return entry
            return None
        return wait_for(find, 5, what="the access log line")

    # -- the four call kinds --

    def test_unary_with_metadata(self):
        resp, call = self.client.unary.with_call(b"hello", metadata=(("x-md", "v1"),), timeout=10)
        self.assertEqual(resp, b"hello")
        self.assertIn(("x-echo", "v1"), call.initial_metadata())
        self.assertIn(("x-served-by", "grpcpeer"), call.trailing_metadata())
        self.assertEqual(call.code(), grpc.StatusCode.OK)
        big = os.urandom(3 << 20)
        self.assertEqual(self.client.unary(big, timeout=30), big)

    def test_unary_through_the_auto_listener(self):
        with grpcpeer.Client(f"127.0.0.1:{self.sc.port('auto')}") as c:
            self.assertEqual(c.unary(b"sniffed", timeout=10), b"sniffed")

    def test_server_stream_of_10000_messages(self):
        msgs = list(self.client.server_stream(b"10000:64", timeout=60))
        self.assertEqual(len(msgs), 10000)
        self.assertEqual(msgs[0], b"00000000".ljust(64, b"."))
        self.assertEqual(msgs[-1], b"00009999".ljust(64, b"."))

    def test_client_stream(self):
        parts = [bytes([i % 256]) * (i % 500) for i in range(1000)]
        import hashlib
        h = hashlib.sha256(b"".join(parts)).hexdigest()
        r = self.client.client_stream(iter(parts), timeout=30)
        self.assertEqual(r, b"count=1000 bytes=%d sha256=%s" % (sum(map(len, parts)), h.encode()))

    def test_bidi_echo_in_lockstep(self):
        # Each message waits for the previous echo: the proxy must stream
        # both directions, not wait for the end of the request.
        msgs = [b"bidi %d" % i + b"x" * (i % 300) for i in range(1000)]
        self.assertEqual(self.client.bidi_lockstep(msgs, timeout=60), msgs)

    # -- status and deadlines --

    def test_error_status_and_trailing_metadata_intact(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.client.abort(b"", timeout=10)
        e = cm.exception
        self.assertEqual(e.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(e.details(), "precondition failed: test")
        md = dict(e.trailing_metadata())
        self.assertEqual(md.get("x-detail"), "why")
        self.assertEqual(md.get("x-blob-bin"), grpcpeer.BLOB)

    def test_client_deadline_cancels_the_server_call(self):
        before = self.server.stats()["cancelled"]
        with self.assertRaises(grpc.RpcError) as cm:
            self.client.sleep(b"5", timeout=0.5)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        # The cancellation (RST_STREAM) reached the server through the proxy.
        wait_for(lambda: self.server.stats()["cancelled"] > before, 10,
                 what="the server call cancelled")

    def test_grpc_timeout_is_the_route_timeout(self):
        # The h2 upstream answers after 3 s and knows nothing of grpc-timeout:
        # only the proxy can end the call at 300 ms, as a gRPC error.
        with h2peer.H2Client(self.sc.port("grpc")) as c:
            o = c.request("POST", "/slow?delay=3", grpcpeer.grpc_request_headers("x", "300m"),
                          body=grpcpeer.frame_message(b""), timeout=10)
        self.assertEqual(o.status, 200, o)
        self.assertTrue(o.header("content-type", "").startswith("application/grpc"), o.headers)
        self.assertEqual(grpcpeer.grpc_status_of(o)[0], grpcpeer.DEADLINE_EXCEEDED, o)

    def test_grpc_timeout_is_capped_by_the_route_timeout(self):
        # grpc-timeout 10 s, route timeout 1 s: the route's wins.
        with h2peer.H2Client(self.sc.port("grpc")) as c:
            o = c.request("POST", "/slow?delay=3&capped", grpcpeer.grpc_request_headers("x", "10S"),
                          body=grpcpeer.frame_message(b""), timeout=10)
        self.assertEqual(o.status, 200, o)
        self.assertEqual(grpcpeer.grpc_status_of(o)[0], grpcpeer.DEADLINE_EXCEEDED, o)

    def test_no_upstream_is_unavailable(self):
        with grpcpeer.Client(f"127.0.0.1:{self.sc.port('dead')}") as c:
            with self.assertRaises(grpc.RpcError) as cm:
                c.unary(b"x", timeout=10)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        # On the wire: HTTP 200 and grpc-status 14, not an HTML/text 503
        # (which grpcio would also map to UNAVAILABLE).
        with h2peer.H2Client(self.sc.port("dead")) as c:
            o = grpcpeer.raw_call(c, "Unary", b"x")
        self.assertEqual(o.status, 200, o)
        self.assertTrue(o.header("content-type", "").startswith("application/grpc"), o.headers)
        self.assertEqual(grpcpeer.grpc_status_of(o)[0], grpcpeer.UNAVAILABLE, (o.headers, o.trailers))

    # -- observability --

    def test_grpc_status_in_access_log_and_metrics(self):
        ok0 = grpc_count(self.sc, "grpc", 0)
        fp0 = grpc_count(self.sc, "grpc", 9)
        for _ in range(3):
            self.client.unary(b"counted", timeout=10)
        for _ in range(2):
            with self.assertRaises(grpc.RpcError):
                self.client.abort(b"", timeout=10)
        wait_for(lambda: grpc_count(self.sc, "grpc", 9) - fp0 == 2, 5,
                 what="sidecar_grpc_requests_total{grpc_status=9} += 2")
        self.assertEqual(grpc_count(self.sc, "grpc", 0) - ok0, 3)
        entry = self.log_entry(lambda e: e["path"] == "/test.Echo/Abort")
        self.assertIn(entry["grpc"], status_forms(9), entry)
        self.assertEqual(entry["code"], 200)
        self.assertEqual(entry["route"], "grpc")
        entry = self.log_entry(lambda e: e["path"] == "/test.Echo/Unary")
        self.assertIn(entry["grpc"], status_forms(0), entry)

    # -- gRPC-Web (HTTP/1.1 to gRPC) --

    def test_grpc_web_binary(self):
        url = f"http://127.0.0.1:{self.sc.port('web')}"
        status, headers, msgs, trailers, body = grpcpeer.grpc_web_call(url, "Unary", b"web hello")
        self.assertEqual(status, 200, body)
        self.assertTrue(headers.get("content-type", "").startswith("application/grpc-web"), headers)
        self.assertEqual(msgs, [b"web hello"])
        # The trailers are the last frame of the body (PROTOCOL-WEB.md).
        self.assertEqual(trailers.get("grpc-status"), "0", body)
        self.assertEqual(trailers.get("x-served-by"), "grpcpeer")
        status, headers, msgs, trailers, body = grpcpeer.grpc_web_call(url, "ServerStream", b"100")
        self.assertEqual(len(msgs), 100)
        self.assertEqual(trailers.get("grpc-status"), "0")

    def test_grpc_web_text(self):
        url = f"http://127.0.0.1:{self.sc.port('web')}"
        status, headers, msgs, trailers, body = grpcpeer.grpc_web_call(url, "Unary", b"as text",
                                                                       text=True)
        self.assertEqual(status, 200, body)
        self.assertTrue(headers.get("content-type", "").startswith("application/grpc-web-text"),
                        headers)
        self.assertEqual(msgs, [b"as text"])
        self.assertEqual(trailers.get("grpc-status"), "0")

    def test_grpc_web_error_status(self):
        url = f"http://127.0.0.1:{self.sc.port('web')}"
        status, headers, msgs, trailers, body = grpcpeer.grpc_web_call(url, "Abort", b"")
        self.assertEqual(status, 200, body)
        # A Trailers-Only answer may carry the status in the HTTP headers.
        merged = {**headers, **trailers}
        self.assertEqual(merged.get("grpc-status"), "9", (headers, body))
        self.assertEqual(merged.get("grpc-message"), "precondition failed: test")
        self.assertEqual(merged.get("x-detail"), "why")


if __name__ == "__main__":
    run_tests()
