#!/usr/bin/python3
"""HTTP/2 peers for the integration tests, on python3-h2 (sans-IO) over plain
sockets, 127.0.0.1 only.

Server (`h2peer.py serve [--port P] [options]`, prints "listening on PORT"):
an h2c prior-knowledge server (RFC 9113 3.3). Endpoints:

  *    /echo              200 at once, then every DATA chunk back as it comes;
                          request trailers are sent back as response trailers
  *    /headers           after the request ends: JSON {headers (pseudo-headers
                          included, in order), trailers, body_bytes, body_sha256,
                          stream_id, connection}; with `te: trailers` in the
                          request, response trailers x-trailer: yes and
                          x-body-sha256
  GET  /bytes/N[?cl=0]    N bytes, flow-controlled (no content-length with cl=0)
  GET  /slow?delay=S      answers "slow\\n" after S seconds (the loop stays free)
  *    /stall             never answers and never opens the request body's
                          window (a peer that stops reading)
  GET  /goaway            answers (x-connection: its number), then GOAWAY (last
                          stream = this one), closes
  GET  /bad-length        content-length: 100 with 10 bytes of DATA
  GET  /status/N          an empty response with status N
  GET  /stats             {connections, open_connections, streams, max_concurrent,
                          resets_received, refused}

Options: --max-concurrent-streams N (advertised; the observed maximum is in
/stats), --initial-window-size N (the server's receive window), --max-requests
N (GOAWAY after N streams on a connection, as nginx's keepalive_requests;
streams that arrive after it are refused with REFUSED_STREAM).

Clients:
  H2Client   a well-behaved client on h2.H2Connection (flow control, trailers,
             GOAWAY, 1xx), over plain TCP or TLS with ALPN h2
  RawH2      (h2raw.py, re-exported here) frames written by hand (hpack for
             header blocks), for what a correct library refuses to send:
             invalid header blocks, CONTINUATION floods, rapid reset,
             SETTINGS/PING floods, a reader that never opens its window; and
             helpers built on it: stalled_download, rapid_reset,
             continuation_flood, oversized_header_list, invalid_request,
             control_flood.

`h2peer.py --self-test` checks these against the server here and against
nginx (h2c) directly, with curl, nghttp and h2load, without the sidecar.
"""
import argparse
import hashlib
import heapq
import json
import os
import select
import socket
import ssl
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from h2raw import *  # noqa: F401,F403 (the frame tools, re-exported)
from h2raw import (CANCEL, REFUSED_STREAM, MAX_CONCURRENT_STREAMS, Outcome, RawH2,
                   continuation_flood, control_flood, invalid_request,
                   oversized_header_list, rapid_reset, request_headers, stalled_download)

# --------------------------------------------------------------------------
# H2Client: a correct client on the h2 library

class _GracefulConnection(h2.connection.H2Connection):
    """h2 4.1 closes its state machine on any GOAWAY, sent or received, and
    then refuses the frames of the streams that are still to finish (those up
    to last_stream_id, RFC 9113 6.8). A graceful GOAWAY (NO_ERROR) keeps it
    open here; not opening (or refusing) new streams is the caller's job."""

    def _receive_goaway_frame(self, frame):
        state = self.state_machine.state
        result = super()._receive_goaway_frame(frame)
        if frame.error_code == 0:
            self.state_machine.state = state
        return result

    def close_connection(self, error_code=0, additional_data=None, last_stream_id=None):
        state = self.state_machine.state
        super().close_connection(error_code, additional_data, last_stream_id)
        if error_code == 0:
            self.state_machine.state = state


class H2Client:
    """An h2 client connection (prior knowledge, or TLS with ALPN h2).

    Header names and values are str. Inbound header validation is off so that
    tests can see exactly what a peer sent (a hop-by-hop field arriving is a
    test failure, not an exception in the client). Windows are opened as data
    is read unless auto_window is False."""

    def __init__(self, port, host="127.0.0.1", ssl_context=None, server_hostname=None,
                 settings=None, auto_window=True, timeout=10.0):
        sock = socket.create_connection((host, port), timeout=timeout)
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname)
            if sock.selected_alpn_protocol() != "h2":
                sock.close()
                raise ConnectionError(f"ALPN chose {sock.selected_alpn_protocol()!r}, not h2")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_inbound_headers=False,
                                        normalize_inbound_headers=False)
        self.conn = _GracefulConnection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.auto_window = auto_window
        self.streams = {}
        self.goaway = None
        self.closed = False
        self.remote_settings = {}
        self.flush()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def flush(self):
        out = self.conn.data_to_send()
        if out:
            try:
                self.sock.sendall(out)
            except OSError:
                self.closed = True

    # -- sending --
    def start(self, method="GET", path="/", headers=(), authority="test", scheme="http",
              end_stream=False):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", scheme), (":authority", authority),
                (":path", path), *headers]
        if method == "CONNECT" and any(n == ":protocol" for n, _ in headers):
            pass
        self.streams[sid] = Outcome()
        self.conn.send_headers(sid, hdrs, end_stream=end_stream)
        self.flush()
        return sid

    def send_body(self, sid, data, end_stream=False, timeout=10.0):
        """Sends data as the peer's windows allow (waits for WINDOW_UPDATEs)."""
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while len(view):
            window = min(self.conn.local_flow_control_window(sid),
                         self.conn.max_outbound_frame_size)
            if window <= 0:
                if time.monotonic() > deadline or self.streams[sid].done:
                    raise TimeoutError("the peer never opened its window")
                self.pump(0.1)
                continue
            n = min(window, len(view))
            self.conn.send_data(sid, bytes(view[:n]))
            view = view[n:]
            self.flush()
        if end_stream:
            self.conn.end_stream(sid)
            self.flush()

    def send_trailers(self, sid, trailers):
        self.conn.send_headers(sid, list(trailers), end_stream=True)
        self.flush()

    def request(self, method="GET", path="/", headers=(), body=None, trailers=None,
                authority="test", timeout=10.0):
        """One whole exchange; returns the Outcome (raises TimeoutError if the
        stream is not done in time)."""
        no_body = not body and trailers is None
        sid = self.start(method, path, headers, authority, end_stream=no_body)
        if not no_body:
            if body:
                self.send_body(sid, body, end_stream=trailers is None, timeout=timeout)
            if trailers is not None:
                self.send_trailers(sid, trailers)
            elif not body:
                self.conn.end_stream(sid)
                self.flush()
        return self.wait(sid, timeout)

    def reset(self, sid, code=CANCEL):
        self.conn.reset_stream(sid, code)
        self.flush()

    # -- receiving --
    def pump(self, timeout=0.1):
        """Reads once (up to timeout) and handles the events."""
        if self.closed:
            return
        try:
            r, _, _ = select.select([self.sock], [], [], timeout)
            if not r:
                return
            data = self.sock.recv(262144)
        except (ssl.SSLWantReadError, BlockingIOError):
            return
        except OSError:
            data = b""
        if not data:
            self.closed = True
            for o in self.streams.values():
                if not o.done:
                    o.closed = True
            return
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            self.flush()
            self.closed = True
            for o in self.streams.values():
                if not o.done:
                    o.closed = True
            self.protocol_error = e
            return
        for ev in events:
            self._event(ev)
        self.flush()

    def _event(self, ev):
        o = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.InformationalResponseReceived) and o:
            o.informational.append(list(ev.headers))
        elif isinstance(ev, h2.events.ResponseReceived) and o:
            o.headers = list(ev.headers)
            o.status = int(dict(o.headers)[":status"])
        elif isinstance(ev, h2.events.DataReceived):
            if o:
                o.body += ev.data
            if self.auto_window and ev.flow_controlled_length:
                try:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                except h2.exceptions.StreamClosedError:
                    pass
        elif isinstance(ev, h2.events.TrailersReceived) and o:
            o.trailers = list(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded) and o:
            o.ended = True
        elif isinstance(ev, h2.events.StreamReset) and o:
            o.reset = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = (int(ev.error_code), ev.last_stream_id)
            for sid, s in self.streams.items():
                s.goaway = self.goaway
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            for k, v in ev.changed_settings.items():
                self.remote_settings[int(k)] = v.new_value

    def wait(self, sid, timeout=10.0):
        o = self.streams[sid]
        deadline = time.monotonic() + timeout
        while not o.done:
            if self.goaway and sid > self.goaway[1]:
                break
            if self.closed:
                o.closed = True
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"stream {sid} not done after {timeout}s: {o}")
            self.pump(min(left, 0.2))
        return o

    def wait_until(self, predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return predicate()
            self.pump(min(left, 0.2))
        return True


def tls_client_context(ca_file, alpn=("h2",)):
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.set_alpn_protocols(list(alpn))
    return ctx


# --------------------------------------------------------------------------
# the server

class _Out:
    """A stream's response body still to send: bytes, plus a generated tail."""

    def __init__(self):
        self.buf = bytearray()
        self.generate = 0       # bytes still to produce from the pattern
        self.generated = 0
        self.end = False
        self.trailers = None

    def empty(self):
        return not self.buf and not self.generate


PATTERN = b"0123456789abcdef" * 4096
PATTERN2 = PATTERN * 2


class _ServerConnection:
    def __init__(self, server, sock, number):
        self.server = server
        self.sock = sock
        self.number = number
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8",
                                        validate_inbound_headers=False,
                                        normalize_inbound_headers=False,
                                        validate_outbound_headers=False)
        self.conn = _GracefulConnection(config=cfg)
        self.requests = {}   # sid -> dict(headers, body sha, trailers ...)
        self.out = {}        # sid -> _Out
        self.tasks = []      # heap of (when, seq, fn)
        self.seq = 0
        self.closing_at = None
        self.goaway_last = None  # set once this side sent GOAWAY
        self.open_streams = set()
        self.stream_count = 0

    def later(self, delay, fn):
        self.seq += 1
        heapq.heappush(self.tasks, (time.monotonic() + delay, self.seq, fn))

    def run(self):
        s = self.server
        settings = {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: s.max_concurrent_streams,
                    h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: s.initial_window_size}
        self.conn.local_settings = h2.settings.Settings(client=False, initial_values=settings)
        self.conn.initiate_connection()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(30)
        try:
            self._send()
            while True:
                now = time.monotonic()
                if self.closing_at is not None and now >= self.closing_at:
                    break
                wait = 0.05
                if self.tasks:
                    wait = max(0.0, min(wait, self.tasks[0][0] - now))
                r, _, _ = select.select([self.sock], [], [], wait)
                if r:
                    data = self.sock.recv(262144)
                    if not data:
                        break
                    try:
                        events = self.conn.receive_data(data)
                    except h2.exceptions.ProtocolError:
                        self._send()
                        break
                    for ev in events:
                        self._event(ev)
                while self.tasks and self.tasks[0][0] <= time.monotonic():
                    _, _, fn = heapq.heappop(self.tasks)
                    fn()
                self._pump_bodies()
                self._send()
        except OSError:
            pass
        finally:
            with s.lock:
                s.stats["open_connections"] -= 1
            try:
                self.sock.close()
            except OSError:
                pass

    def _send(self):
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def _event(self, ev):
        s = self.server
        if isinstance(ev, h2.events.RequestReceived):
            sid = ev.stream_id
            if self.goaway_last is not None and sid > self.goaway_last:
                # After our GOAWAY: refused, never processed, so the peer may
                # retry it elsewhere (RFC 9113 6.8).
                self.conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
                with s.lock:
                    s.stats["refused"] += 1
                return
            self.open_streams.add(sid)
            self.stream_count += 1
            with s.lock:
                s.stats["streams"] += 1
                s.stats["max_concurrent"] = max(s.stats["max_concurrent"],
                                                len(self.open_streams))
            req = {"headers": list(ev.headers), "trailers": [], "bytes": 0,
                   "sha": hashlib.sha256(), "ended": False}
            self.requests[sid] = req
            self._begin(sid, req)
            if ev.stream_ended:
                self._ended(sid)
            if s.max_requests and self.stream_count >= s.max_requests and \
                    self.goaway_last is None:
                self.conn.close_connection(last_stream_id=sid)
                self.goaway_last = sid
                self.closing_at = time.monotonic() + 5
        elif isinstance(ev, h2.events.DataReceived):
            req = self.requests.get(ev.stream_id)
            if req is None:
                return
            req["bytes"] += len(ev.data)
            req["sha"].update(ev.data)
            if req["path"] == "/stall":
                return  # never opens the window again
            if req["path"] == "/echo":
                self._queue(ev.stream_id, ev.data)
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived):
            req = self.requests.get(ev.stream_id)
            if req is not None:
                req["trailers"] = list(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded):
            self._ended(ev.stream_id)
        elif isinstance(ev, h2.events.StreamReset):
            self._forget(ev.stream_id)
            with s.lock:
                s.stats["resets_received"] += 1
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.closing_at = time.monotonic() + 0.2

    def _forget(self, sid):
        self.open_streams.discard(sid)
        self.out.pop(sid, None)
        self.requests.pop(sid, None)

    def _respond(self, sid, status, headers=(), end=False):
        try:
            self.conn.send_headers(sid, [(":status", str(status)), *headers], end_stream=end)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self._forget(sid)
            return
        if end:
            self.open_streams.discard(sid)
            self.requests.pop(sid, None)

    def _queue(self, sid, data=b"", generate=0, end=False, trailers=None):
        o = self.out.setdefault(sid, _Out())
        o.buf += data
        o.generate += generate
        if end:
            o.end = True
            o.trailers = trailers

    def _begin(self, sid, req):
        hdrs = dict(req["headers"])
        url = urlsplit(hdrs.get(":path", "/"))
        req["path"] = url.path
        req["query"] = parse_qs(url.query)
        if url.path == "/echo":
            ctype = hdrs.get("content-type", "application/octet-stream")
            self._respond(sid, 200, [("content-type", ctype)])
        elif url.path == "/stall":
            pass

    def _ended(self, sid):
        req = self.requests.get(sid)
        if req is None or req["ended"]:
            return
        req["ended"] = True
        path, q = req["path"], req["query"]
        hdrs = dict(req["headers"])
        if path == "/echo":
            trailers = req["trailers"] or None
            self._queue(sid, end=True, trailers=trailers)
        elif path == "/headers":
            info = {"headers": req["headers"], "trailers": req["trailers"],
                    "body_bytes": req["bytes"], "body_sha256": req["sha"].hexdigest(),
                    "stream_id": sid, "connection": self.number}
            body = json.dumps(info).encode()
            trailers = None
            if hdrs.get("te") == "trailers":
                trailers = [("x-trailer", "yes"), ("x-body-sha256", req["sha"].hexdigest())]
            self._respond(sid, 200, [("content-type", "application/json"),
                                     ("content-length", str(len(body)))])
            self._queue(sid, body, end=True, trailers=trailers)
        elif path.startswith("/bytes/"):
            n = int(path.split("/")[2])
            extra = [] if q.get("cl") == ["0"] else [("content-length", str(n))]
            self._respond(sid, 200, [("content-type", "application/octet-stream"), *extra],
                          end=n == 0)
            if n:
                self._queue(sid, generate=n, end=True)
        elif path == "/slow":
            delay = float(q.get("delay", ["1"])[0])

            def answer():
                if sid in self.requests:
                    self._respond(sid, 200, [("content-type", "text/plain")])
                    self._queue(sid, b"slow\n", end=True)
            self.later(delay, answer)
        elif path == "/stall":
            pass
        elif path == "/goaway":
            self._respond(sid, 200, [("content-type", "text/plain"),
                                     ("x-connection", str(self.number))])
            self._queue(sid, b"goaway\n", end=True)

            def bye():
                self.conn.close_connection(last_stream_id=sid)
                self.goaway_last = sid
                self.closing_at = time.monotonic() + 0.5
            self.later(0.05, bye)
        elif path == "/bad-length":
            self._respond(sid, 200, [("content-length", "100")])
            self._queue(sid, b"x" * 10, end=True)
        elif path.startswith("/status/"):
            self._respond(sid, int(path.split("/")[2]), end=True)
        elif path == "/stats":
            with self.server.lock:
                body = json.dumps(self.server.stats).encode()
            self._respond(sid, 200, [("content-type", "application/json")])
            self._queue(sid, body, end=True)
        else:
            self._respond(sid, 404, [("content-type", "text/plain")])
            self._queue(sid, b"no such test endpoint\n", end=True)

    def _pump_bodies(self):
        queued = 0
        for sid in list(self.out):
            o = self.out[sid]
            try:
                while not o.empty():
                    window = min(self.conn.local_flow_control_window(sid),
                                 self.conn.max_outbound_frame_size)
                    if window <= 0:
                        break
                    if o.buf:
                        chunk = bytes(o.buf[:window])
                        del o.buf[:len(chunk)]
                    else:
                        # The body is PATTERN repeated, whatever the chunking.
                        n = min(window, o.generate, len(PATTERN))
                        start = o.generated % len(PATTERN)
                        chunk = PATTERN2[start:start + n]
                        o.generate -= n
                        o.generated += n
                    self.conn.send_data(sid, chunk)
                    queued += len(chunk)
                    if queued > 1 << 20:
                        self._send()
                        queued = 0
                if o.empty() and o.end:
                    if o.trailers:
                        self.conn.send_headers(sid, o.trailers, end_stream=True)
                    else:
                        self.conn.end_stream(sid)
                    del self.out[sid]
                    self.open_streams.discard(sid)
                    self.requests.pop(sid, None)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                self._forget(sid)


class H2Server:
    """The h2c server, in this process (threads). Use `Peer` below to run it
    as a child process from a test."""

    def __init__(self, port=0, max_concurrent_streams=100, initial_window_size=65535,
                 max_requests=0):
        self.max_concurrent_streams = max_concurrent_streams
        self.initial_window_size = initial_window_size
        self.max_requests = max_requests
        self.lock = threading.Lock()
        self.stats = {"connections": 0, "open_connections": 0, "streams": 0,
                      "max_concurrent": 0, "resets_received": 0, "refused": 0}
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self._stop = False

    def serve_forever(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with self.lock:
                self.stats["connections"] += 1
                self.stats["open_connections"] += 1
                number = self.stats["connections"]
            threading.Thread(target=_ServerConnection(self, conn, number).run,
                             daemon=True).start()

    def start(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self._stop = True
        self.sock.close()


class Peer:
    """h2peer.py serve as a child process of a test (registered with the
    harness so it never outlives the run)."""

    def __init__(self, *args):
        import subprocess
        from harness import PYTHON, _PROCESSES
        self.proc = subprocess.Popen([PYTHON, os.path.abspath(__file__), "serve", *args],
                                     stdout=subprocess.PIPE, text=True)
        _PROCESSES.append(self.proc)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"h2peer did not start: {line!r}")
        self.port = int(line.split()[-1])
        self.address = f"127.0.0.1:{self.port}"

    def stats(self):
        with H2Client(self.port) as c:
            return json.loads(c.request("GET", "/stats").body)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc.stdout.close()


# --------------------------------------------------------------------------
# self-test: the tools against real peers, without the sidecar

NGINX_CONF = """daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log stderr error;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port} http2;
    location /big {{ root {dir}/www; }}
    location = /nginx_status {{ stub_status; }}
    location / {{ return 200 "nginx $server_protocol\\n"; }}
  }}
{tls}}}
"""

NGINX_TLS = """  server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location /big {{ root {dir}/www; }}
    location / {{ return 200 "nginx $server_protocol $ssl_protocol\\n"; }}
  }}
"""

# TLS without http2: ALPN offers only http/1.1 (an upstream for `protocol: auto`).
NGINX_TLS_HTTP1 = """  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{ return 200 "nginx $server_protocol $ssl_protocol\\n"; }}
  }}
"""


def start_nginx_h2c(directory, port, tls_port=None, cert=None, key=None, tls_http1_port=None):
    """nginx with an h2c (prior knowledge) listener on `port`: `/` answers
    "nginx HTTP/2.0", /big/1m is a 1 MiB file, /nginx_status its
    stub_status (accepted connections); with tls_port, also h2 over TLS
    there ("nginx HTTP/2.0 TLSv1.3"); with tls_http1_port, TLS that speaks
    only HTTP/1.1 there ("nginx HTTP/1.1 TLSv1.3"). Returns the Popen."""
    import subprocess
    os.makedirs(os.path.join(directory, "www", "big"), exist_ok=True)
    with open(os.path.join(directory, "www", "big", "1m"), "wb") as f:
        f.write(PATTERN * 16)
    tls = NGINX_TLS.format(port=tls_port, cert=cert, key=key, dir=directory) if tls_port else ""
    if tls_http1_port:
        tls += NGINX_TLS_HTTP1.format(port=tls_http1_port, cert=cert, key=key)
    conf = os.path.join(directory, "nginx-h2c.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=directory, port=port, tls=tls))
    return subprocess.Popen(["nginx", "-p", directory, "-c", conf], stderr=subprocess.PIPE)


def nginx_accepted(port):
    """Connections nginx accepted so far (stub_status), asked over h2c."""
    with H2Client(port) as c:
        body = c.request("GET", "/nginx_status", authority="nginx.test").body.decode()
    return int(body.splitlines()[2].split()[0])


def _check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        _check.failed += 1


_check.failed = 0


def self_test():
    import subprocess
    import tempfile
    server = H2Server(max_concurrent_streams=10).start()
    port = server.port
    # H2Client against the server.
    with H2Client(port) as c:
        o = c.request("POST", "/echo", [("content-type", "text/x")], body=b"x" * 300000,
                      trailers=[("x-t", "1")])
        _check(o.status == 200 and o.body == b"x" * 300000 and o.trailer("x-t") == "1",
               f"echo with trailers, 300 kB both ways through flow control: {o}")
        o = c.request("GET", "/headers", [("te", "trailers"), ("x-a", "b")],
                      authority="svc:81")
        info = json.loads(o.body)
        _check(["x-a", "b"] in info["headers"] and [":authority", "svc:81"] in info["headers"]
               and o.trailer("x-trailer") == "yes", "headers seen, response trailers")
        o = c.request("GET", "/bytes/5000000", timeout=30)
        _check(len(o.body) == 5000000 and o.header("content-length") == "5000000",
               "5 MB response")
        sids = [c.start("GET", "/slow?delay=0.3", end_stream=True) for _ in range(10)]
        outs = [c.wait(s, 10) for s in sids]
        _check(all(x.body == b"slow\n" for x in outs), "10 concurrent slow streams")
        o = c.request("GET", "/bad-length")
        _check(o.reset is not None or c.closed or getattr(c, "protocol_error", None),
               f"a wrong content-length is an error in the client: {o}")
    _check(server.stats["max_concurrent"] == 10, f"concurrency seen: {server.stats}")
    with H2Client(port) as c:
        o = c.request("GET", "/goaway")
        c.wait_until(lambda: c.closed, 5)
        _check(o.body == b"goaway\n" and c.goaway == (0, 1) and c.closed,
               f"GOAWAY on demand: {c.goaway}")
    with H2Client(port) as c:
        s1 = c.start("GET", "/slow?delay=0.2", end_stream=True)
        o = c.request("GET", "/goaway")
        o1 = c.wait(s1)
        _check(o1.body == b"slow\n" and c.goaway == (0, 3),
               f"a stream below GOAWAY's last stream id finishes: {o1} {c.goaway}")
    limited = H2Server(max_requests=5).start()
    with H2Client(limited.port) as c:
        sids = [c.start("GET", "/slow?delay=0.2", end_stream=True) for _ in range(8)]
        outs = [c.wait(x, 5) for x in sids]
        _check([o.status for o in outs[:5]] == [200] * 5 and c.goaway == (0, 9) and
               [o.reset for o in outs[5:]] == [REFUSED_STREAM] * 3,
               f"--max-requests 5: GOAWAY after 5, later streams refused: {outs} {c.goaway}")
    limited.stop()
    # A stalled upload: the server never opens the window.
    with H2Client(port) as c:
        sid = c.start("POST", "/stall")
        try:
            c.send_body(sid, b"y" * 200000, timeout=1.5)
            stalled = False
        except TimeoutError:
            stalled = True
        _check(stalled and c.conn.local_flow_control_window(sid) == 0,
               "a stalled upload stops at the window")
    # RawH2 against the server.
    with RawH2(port) as c:
        s = c.wait_settings()
        _check(s.get(MAX_CONCURRENT_STREAMS) == 10, f"raw: server settings {s}")
        sid = c.request("POST", "/echo", body=b"hello")
        o = c.wait(sid)
        _check(o.status == 200 and o.body == b"hello", f"raw: echo {o}")
    o = stalled_download(port, "/bytes/10000000", stall_for=1.0)
    _check(o.received == 65535 and not o.done, f"raw: never-opening reader gets 64 KiB: {o}")
    b = rapid_reset(port, n=2000, read_for=1)
    _check(b.sent == 2000, f"raw: rapid reset written: {b}")
    bad, nxt = invalid_request(port, [(":method", "GET"), (":scheme", "http"), (":path", "/hello"),
                                      (":authority", "t"), ("Upper", "x")], follow_path="/status/204")
    _check(bad.status == 404 and nxt and nxt.status == 204,
           "raw: uppercase name sent as-is (the lax python server answers)")
    # A sane single request with hand-made frames, then the same client tools
    # against nginx (h2c): proves the frames are well-formed for a real server.
    with tempfile.TemporaryDirectory(prefix="h2peer-") as d:
        os.chmod(d, 0o755)
        from harness import free_port, wait_for
        nport = free_port()
        nginx = start_nginx_h2c(d, nport)
        try:
            def up():
                try:
                    socket.create_connection(("127.0.0.1", nport), timeout=0.2).close()
                    return True
                except OSError:
                    return False
            wait_for(up, 10, what="nginx")
            with RawH2(nport) as c:
                o = c.wait(c.request("GET", "/", "nginx.test"))
                _check(o.status == 200 and o.body == b"nginx HTTP/2.0\n", f"raw -> nginx: {o}")
            with H2Client(nport) as c:
                o = c.request("GET", "/big/1m", authority="nginx.test")
                _check(len(o.body) == 1 << 20, "h2 client -> nginx 1 MiB")
            a = nginx_accepted(nport)
            _check(nginx_accepted(nport) == a + 1, f"nginx stub_status counts connections: {a}")
            bad, nxt = invalid_request(nport, [(":method", "GET"), (":scheme", "http"),
                                               (":authority", "t")], follow_path="/")
            _check(bad.status == 400 or bad.reset is not None,
                   f"nginx refuses a request without :path: {bad}")
            # nginx 1.22 ignores connection-specific fields in h2 (laxer than
            # RFC 9113 8.2.2): this only shows the field goes out as given.
            bad, _ = invalid_request(nport, request_headers(extra=[("connection", "keep-alive")]))
            _check(bad.done, f"connection: keep-alive sent to nginx: {bad}")
            big, _ = oversized_header_list(nport, total=70 * 1024)
            _check(big.status in (400, 431) or big.reset is not None or big.closed,
                   f"nginx refuses a 70 KiB header list: {big}")
            b = continuation_flood(nport, max_bytes=8 << 20, timeout=5)
            _check(b.bytes_sent > 0, f"continuation flood -> nginx: {b}")
            b = rapid_reset(nport, n=10000, path="/", read_for=2)
            _check(b.sent > 0, f"rapid reset -> nginx: {b}")
            b = control_flood(nport, "ping", n=200000, timeout=3, read_for=1)
            _check(b.sent > 0, f"ping flood -> nginx: {b}")
            b = control_flood(nport, "settings", n=200000, timeout=3, read_for=1)
            _check(b.sent > 0, f"settings flood -> nginx: {b}")
            # The command-line clients against the peers.
            p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-w", " %{http_version}",
                                f"http://127.0.0.1:{nport}/"], capture_output=True, timeout=20)
            _check(p.stdout == b"nginx HTTP/2.0\n 2", f"curl -> nginx: {p.stdout!r}")
            p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--data-binary", "abc",
                                f"http://127.0.0.1:{port}/echo"], capture_output=True, timeout=20)
            _check(p.stdout == b"abc", f"curl -> h2peer: {p.stdout!r} {p.stderr!r}")
            p = subprocess.run(["nghttp", "-n", "-s", f"http://127.0.0.1:{nport}/"],
                               capture_output=True, timeout=20, text=True)
            _check(p.returncode == 0, f"nghttp -> nginx: {p.stdout[-200:]} {p.stderr[-200:]}")
            p = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "10",
                                f"http://127.0.0.1:{nport}/"], capture_output=True, timeout=60,
                               text=True)
            _check("2000 succeeded, 0 failed, 0 errored" in p.stdout,
                   "h2load -> nginx: " + " ".join(l for l in p.stdout.splitlines()
                                                  if "succeeded" in l))
            p = subprocess.run(["h2load", "-n", "500", "-c", "2", "-m", "5",
                                f"http://127.0.0.1:{port}/bytes/100"], capture_output=True,
                               timeout=60, text=True)
            _check("500 succeeded" in p.stdout, "h2load -> h2peer: " + " ".join(
                l for l in p.stdout.splitlines() if "succeeded" in l))
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
    server.stop()
    print(f"{_check.failed} failed", flush=True)
    return 1 if _check.failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--self-test", action="store_true")
    sub = ap.add_subparsers(dest="cmd")
    sv = sub.add_parser("serve")
    sv.add_argument("--port", type=int, default=0)
    sv.add_argument("--max-concurrent-streams", type=int, default=100)
    sv.add_argument("--initial-window-size", type=int, default=65535)
    sv.add_argument("--max-requests", type=int, default=0)
    args = ap.parse_args()
    if args.self_test:
        sys.exit(self_test())
    if args.cmd == "serve":
        server = H2Server(args.port, args.max_concurrent_streams, args.initial_window_size,
                          args.max_requests)
        print("listening on", server.port, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        return
    ap.print_help()


if __name__ == "__main__":
    main()
