#!/usr/bin/python3
"""The three HTTP/1.1 deviations of issue 9, each against the real binary:
an error answer to HEAD has no body (RFC 9110 9.3.2); an absolute-form
target with an empty path is routed as "/" (RFC 9110 4.2.3); a 100 Continue
from the upstream is forwarded unless the proxy generated one for this
request's Expect (RFC 9110 15.2)."""
import re
import socket
import time
import unittest

from harness import Sidecar, Upstream, free_port, raw, run_tests, status_of
from scripted import ScriptedUpstream


def scripted_answer(req, sock):
    """/continue: 100 Continue before reading the body, then 200 with the
    body's length; anything else: 200 with the request line as the body."""
    if req.target.startswith("/continue"):
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = req.read_body()
        answer = b"got %d" % len(body)
    else:
        req.read_body()
        answer = req.request_line.encode()
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))


def responses(data):
    """Status codes of the responses in raw bytes, in order."""
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


class Http1FixesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = Upstream()
        cls.scripted = ScriptedUpstream(scripted_answer)
        dead = free_port()
        cls.sc = Sidecar(f"""
workers: 1
clusters:
  - {{ name: app, endpoints: [ "{cls.up.address}" ] }}
  - {{ name: scripted, endpoints: [ "{cls.scripted.address}" ] }}
  - {{ name: dead, endpoints: [ "127.0.0.1:{dead}" ], connect_timeout: 1s }}
listeners:
  - name: inbound
    address: 127.0.0.1:0
    routes:
      - {{ match: {{ prefix: /hello }}, cluster: app }}
      - {{ match: {{ prefix: /slow }}, cluster: app, timeout: 300ms }}
      - {{ match: {{ prefix: /dead }}, cluster: dead }}
      - {{ match: {{ prefix: /up/ }}, cluster: app }}
  - name: all
    address: 127.0.0.1:0
    routes:
      - {{ match: {{ prefix: / }}, cluster: scripted }}
""")

    @classmethod
    def tearDownClass(cls):
        cls.sc.stop()
        cls.scripted.stop()
        cls.up.stop()

    # -- RFC 9110 9.3.2: no body in any answer to HEAD --

    def assert_head_answer_then_next(self, head_request, want_status):
        """A HEAD answered with an error, pipelined with a GET: the GET's
        response must start right after the HEAD response's head."""
        r = raw(self.sc.port("inbound"), head_request +
                b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", timeout=10)
        self.assertEqual(status_of(r), want_status, r[:200])
        head, _, rest = r.partition(b"\r\n\r\n")
        self.assertTrue(rest.startswith(b"HTTP/1.1 200 ") or rest == b"",
                        f"bytes after the HEAD answer's head: {rest[:80]!r}")
        if b"connection: close" not in head.lower():
            self.assertTrue(rest.startswith(b"HTTP/1.1 200 "), rest[:80])
            self.assertTrue(rest.endswith(b"hello\n"), rest)

    def test_head_no_route_404_has_no_body(self):
        self.assert_head_answer_then_next(b"HEAD /nowhere HTTP/1.1\r\nHost: t\r\n\r\n", 404)

    def test_head_upstream_down_503_has_no_body(self):
        self.assert_head_answer_then_next(b"HEAD /dead HTTP/1.1\r\nHost: t\r\n\r\n", 503)

    def test_head_timeout_504_has_no_body(self):
        self.assert_head_answer_then_next(b"HEAD /slow?delay=2 HTTP/1.1\r\nHost: t\r\n\r\n", 504)

    def test_head_bad_request_400_has_no_body(self):
        # A rejected request closes the connection; what was sent ends with
        # the head (a body would be read as the next response).
        r = raw(self.sc.port("inbound"), b"HEAD /hello HTTP/1.1\r\nHost: t\r\nX-A: \x01\r\n\r\n")
        self.assertEqual(status_of(r), 400, r)
        self.assertTrue(r.endswith(b"\r\n\r\n"), r)
        r = raw(self.sc.port("inbound"), b"HEAD /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
                                         b"Content-Length: 2\r\n\r\n")
        self.assertEqual(status_of(r), 400, r)
        self.assertTrue(r.endswith(b"\r\n\r\n"), r)

    def test_get_error_still_has_its_body(self):
        r = raw(self.sc.port("inbound"), b"GET /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        self.assertEqual(status_of(r), 404)
        self.assertNotEqual(r.partition(b"\r\n\r\n")[2], b"")

    # -- RFC 9110 4.2.3: absolute form with an empty path is "/" --

    def test_absolute_form_empty_path_routes_as_slash(self):
        for target, want_line, want_host in (
                (b"http://svc.example?q=1", "GET /?q=1 HTTP/1.1", "svc.example"),
                (b"http://svc.example:81", "GET / HTTP/1.1", "svc.example:81"),
                (b"http://svc.example/", "GET / HTTP/1.1", "svc.example")):
            with self.subTest(target=target):
                before = len(self.scripted.requests)
                r = raw(self.sc.port("all"), b"GET " + target + b" HTTP/1.1\r\nHost: other\r\n"
                                             b"Connection: close\r\n\r\n")
                self.assertEqual(status_of(r), 200, r[:200])
                self.assertEqual(r.partition(b"\r\n\r\n")[2].decode(), want_line)
                self.assertEqual(len(self.scripted.requests), before + 1)
                self.assertEqual(self.scripted.requests[-1].header("host"), want_host)

    # -- RFC 9110 15.2: 1xx from the upstream --

    def test_upstream_100_continue_is_forwarded(self):
        # No Expect from the client: the proxy generated nothing, so the
        # upstream's 100 is the client's to see.
        r = raw(self.sc.port("all"), b"POST /continue HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                                     b"Connection: close\r\n\r\nhello")
        self.assertEqual(responses(r), [100, 200], r)
        self.assertTrue(r.endswith(b"got 5"), r)

    def test_proxy_generated_100_is_not_doubled(self):
        # Expect: 100-continue: the proxy answers 100 itself (as today), so the
        # upstream's own 100 is not passed on as a second one.
        with socket.create_connection(("127.0.0.1", self.sc.port("all")), timeout=10) as s:
            s.sendall(b"POST /continue HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                      b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
            first = b""
            deadline = time.monotonic() + 5
            while b"\r\n\r\n" not in first and time.monotonic() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                first += chunk
            self.assertTrue(first.startswith(b"HTTP/1.1 100 Continue\r\n"), first)
            s.sendall(b"hello")
            r = first
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                r += chunk
        self.assertEqual(responses(r), [100, 200], r)
        self.assertTrue(r.endswith(b"got 5"), r)

    def test_no_1xx_to_an_http10_client(self):
        # RFC 9110 15.2: a server must not send 1xx to an HTTP/1.0 client.
        r = raw(self.sc.port("all"), b"POST /continue HTTP/1.0\r\nHost: t\r\nContent-Length: 5\r\n"
                                     b"\r\nhello")
        self.assertEqual(responses(r), [200], r)
        self.assertTrue(r.endswith(b"got 5"), r)


if __name__ == "__main__":
    run_tests()
