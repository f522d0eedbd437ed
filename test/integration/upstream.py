#!/usr/bin/python3
"""A real HTTP/1.1 upstream for the integration tests.

Listens on 127.0.0.1 (port from --port, or $PORT, or 0) and prints
"listening on PORT" once ready. Keep-alive, chunked request bodies and
responses, and misbehaviours on demand:

  GET  /hello               200 "hello\\n"
  *    /echo[?chunked=1]    the request body back (Content-Length or chunked)
  *    /sink                reads the body, answers {"bytes": n, "sha256": ...}
  GET  /bytes/N[?chunked=1] N bytes, streamed
  GET  /slow?delay=S        answers after S seconds
  GET  /headers             the request line and headers as JSON
  GET  /status/N            an empty response with status N
  GET  /close               a body delimited by closing the connection
  GET  /early-hints         103 Early Hints, then 200
  GET  /reset               closes the connection without answering
  GET  /stats               {"connections": accepted, "requests": served}
  GET  /health              200, or the status POST /control/health?status=N set;
                            with x-envoy-degraded after POST /control/degraded?status=1
  POST /control/fail?status=N  from now on every other path answers N (0: normal again)
  GET  /whoami              "HOST:PORT" it listens on (which upstream answered)

--name N adds "x-upstream: N" to the responses of send_body (which endpoint
answered); --delay S waits S seconds before serving any request but /stats
(a slow endpoint).
"""
import argparse
import hashlib
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

STATS = {"connections": 0, "requests": 0, "in_flight": 0, "health_checks": 0}
CONTROL = {"health": 200, "fail": 0, "degraded": 0}  # failing on demand (health checks, outlier detection)
LOCK = threading.Lock()
CHUNK = 64 * 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "test-upstream"
    keepalive_timeout = None

    def setup(self):
        super().setup()
        with LOCK:
            STATS["connections"] += 1
        # Headers and body are separate writes: without this, Nagle holds the
        # body until the proxy's delayed ACK (40 ms) on every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.keepalive_timeout:
            self.connection.settimeout(self.keepalive_timeout)

    def log_message(self, fmt, *args):
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (socket.timeout, ConnectionError):
            self.close_connection = True

    # -- request bodies --
    def body_chunks(self):
        te = self.headers.get("Transfer-Encoding", "")
        if te.lower() == "chunked":
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = size
                while left:
                    data = self.rfile.read(min(left, CHUNK))
                    if not data:
                        raise ConnectionError("short chunk")
                    left -= len(data)
                    yield data
                self.rfile.readline(16)
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                data = self.rfile.read(min(left, CHUNK))
                if not data:
                    raise ConnectionError("short body")
                left -= len(data)
                yield data

    # -- responses --
    def send_body(self, status, body, content_type="text/plain", chunked=False, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in extra:
            self.send_header(name, value)
        if Handler.name:
            self.send_header("x-upstream", Handler.name)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if body:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(body), body))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    name = ""
    delay = 0.0

    def do_any(self):
        with LOCK:
            STATS["requests"] += 1
            STATS["in_flight"] += 1
        try:
            if Handler.delay and not self.path.startswith("/stats"):
                time.sleep(Handler.delay)
            self.serve()
        finally:
            with LOCK:
                STATS["in_flight"] -= 1

    def serve(self):
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        path = url.path
        chunked = q.get("chunked") == ["1"]
        if path.startswith("/control/"):
            for _ in self.body_chunks():
                pass
            with LOCK:
                CONTROL[path[len("/control/"):]] = int(q.get("status", ["200"])[0])
            self.send_body(200, b"ok\n")
            return
        if path == "/health":
            with LOCK:
                STATS["health_checks"] += 1
                status = CONTROL["health"]
                degraded = CONTROL["degraded"]
            self.send_body(status, b"health\n",
                           extra=[("x-envoy-degraded", "")] if degraded else ())
            return
        with LOCK:
            fail = CONTROL["fail"]
        if fail and path != "/stats":
            for _ in self.body_chunks():
                pass
            self.send_body(fail, b"failing on demand\n")
            return
        if path == "/whoami":
            self.send_body(200, ("%s:%d\n" % self.server.server_address[:2]).encode())
        elif path == "/hello":
            self.send_body(200, b"hello\n")
        elif path == "/echo":
            body = b"".join(self.body_chunks())
            self.send_body(200, body, "application/octet-stream", chunked)
        elif path == "/sink":
            h = hashlib.sha256()
            n = 0
            for data in self.body_chunks():
                h.update(data)
                n += len(data)
            self.send_body(200, json.dumps({"bytes": n, "sha256": h.hexdigest()}).encode(),
                           "application/json")
        elif path.startswith("/bytes/"):
            n = int(path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(n))
            self.end_headers()
            if self.command == "HEAD":
                return
            block = b"0123456789abcdef" * (CHUNK // 16)
            left = n
            while left:
                piece = block[:min(left, CHUNK)]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                left -= len(piece)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        elif path == "/slow":
            for _ in self.body_chunks():
                pass
            time.sleep(float(q.get("delay", ["1"])[0]))
            self.send_body(200, b"slow\n")
        elif path == "/headers":
            for _ in self.body_chunks():
                pass
            info = {"request_line": self.requestline,
                    "headers": [[k, v] for k, v in self.headers.items()]}
            self.send_body(200, json.dumps(info).encode(), "application/json")
        elif path.startswith("/status/"):
            status = int(path.split("/")[2])
            self.send_response(status)
            if status not in (204, 304):
                self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/close":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
                             b"until close\n")
            self.close_connection = True
        elif path == "/early-hints":
            self.wfile.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
            self.send_body(200, b"after hints\n")
        elif path == "/reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.close_connection = True
            self.connection.close()
        elif path == "/stats":
            with LOCK:
                body = json.dumps(STATS).encode()
            self.send_body(200, body, "application/json")
        else:
            self.send_body(404, b"no such test endpoint\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = do_any


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", "0")))
    ap.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    ap.add_argument("--keepalive-timeout", type=float, default=0,
                    help="close idle keep-alive connections after this many seconds")
    ap.add_argument("--sigterm-report", default="",
                    help="on SIGTERM, write the requests in flight to this file and exit 0")
    ap.add_argument("--name", default="", help="sent back as the x-upstream header")
    ap.add_argument("--delay", type=float, default=0, help="seconds before serving a request")
    args = ap.parse_args()
    Handler.name = args.name
    Handler.delay = args.delay
    if args.sigterm_report:
        def on_sigterm(*_):
            with LOCK:
                report = {"in_flight": STATS["in_flight"] - 0, "requests": STATS["requests"]}
            with open(args.sigterm_report, "w") as f:
                json.dump(report, f)
            os._exit(0)
        signal.signal(signal.SIGTERM, on_sigterm)
    if args.keepalive_timeout:
        Handler.keepalive_timeout = args.keepalive_timeout
    server = Server((args.host, args.port), Handler)
    print("listening on", server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
