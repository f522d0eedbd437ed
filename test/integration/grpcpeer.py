#!/usr/bin/python3
"""gRPC peers for the integration tests: a real python3-grpcio server and
client with generic handlers (bytes in, bytes out: no generated stubs), plus
the gRPC wire format by hand (length-prefixed messages, grpc-timeout, the
gRPC-Web body with its trailer frame) for what grpcio does not show.

Server (`grpcpeer.py serve [--port P]`, prints "listening on PORT"), service
`test.Echo`:

  Unary         request back; initial metadata x-echo = the request's x-md;
                trailing metadata x-served-by: grpcpeer
  Metadata      JSON {metadata: [[k, v]...], time_remaining: seconds or null}
  ServerStream  request b"N" or b"N:SIZE": N messages b"%08d" padded to SIZE
  ClientStream  b"count=N bytes=M sha256=HEX" over all request messages
  Bidi          every request message back as it comes
  Sleep         request b"S": sleeps S seconds (noticing cancellation), b"slept"
  Abort         trailing metadata x-detail: why, x-blob-bin: 00 01 02 ff, then
                FAILED_PRECONDITION "precondition failed: test"
  Stats         JSON {calls: {method: n}, cancelled: n}

`grpcpeer.py --self-test` runs every call directly client -> server (no
sidecar), and checks the hand-made framing against the same server.
"""
import argparse
import base64
import hashlib
import json
import os
import struct
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "test.Echo"
# grpcio honours http_proxy/grpc_proxy from the environment; tests talk to
# 127.0.0.1 only.
CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0),
                   ("grpc.max_receive_message_length", 16 << 20),
                   ("grpc.max_send_message_length", 16 << 20)]

# Status codes (grpc/doc/statuscodes.md).
OK, CANCELLED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, ALREADY_EXISTS, \
    PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE, \
    UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS, UNAUTHENTICATED = range(17)
BLOB = b"\x00\x01\x02\xff"


class _Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.calls = {}
        self.cancelled = 0

    def call(self, name):
        with self.lock:
            self.calls[name] = self.calls.get(name, 0) + 1

    def json(self):
        with self.lock:
            return json.dumps({"calls": self.calls, "cancelled": self.cancelled}).encode()


def _handlers(stats):
    def unary(request, context):
        stats.call("Unary")
        md = dict(context.invocation_metadata())
        if "x-md" in md:
            context.send_initial_metadata((("x-echo", md["x-md"]),))
        context.set_trailing_metadata((("x-served-by", "grpcpeer"),))
        return request

    def metadata(request, context):
        stats.call("Metadata")
        return json.dumps({"metadata": [[k, v if isinstance(v, str) else v.hex()]
                                        for k, v in context.invocation_metadata()],
                           "time_remaining": context.time_remaining()}).encode()

    def server_stream(request, context):
        stats.call("ServerStream")
        text = request.decode()
        n, _, size = text.partition(":")
        size = int(size or 8)
        for i in range(int(n)):
            if not context.is_active():
                return
            yield (b"%08d" % i).ljust(size, b".")

    def client_stream(request_iterator, context):
        stats.call("ClientStream")
        count = total = 0
        h = hashlib.sha256()
        for msg in request_iterator:
            count += 1
            total += len(msg)
            h.update(msg)
        return b"count=%d bytes=%d sha256=%s" % (count, total, h.hexdigest().encode())

    def bidi(request_iterator, context):
        stats.call("Bidi")
        for msg in request_iterator:
            yield msg

    def sleep(request, context):
        stats.call("Sleep")
        end = time.monotonic() + float(request.decode() or "1")
        while time.monotonic() < end:
            if not context.is_active():
                with stats.lock:
                    stats.cancelled += 1
                return b""
            time.sleep(0.02)
        return b"slept"

    def abort(request, context):
        stats.call("Abort")
        context.set_trailing_metadata((("x-detail", "why"), ("x-blob-bin", BLOB)))
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "precondition failed: test")

    def get_stats(request, context):
        return stats.json()

    return grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Metadata": grpc.unary_unary_rpc_method_handler(metadata),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Sleep": grpc.unary_unary_rpc_method_handler(sleep),
        "Abort": grpc.unary_unary_rpc_method_handler(abort),
        "Stats": grpc.unary_unary_rpc_method_handler(get_stats),
    })


def make_server(port=0, workers=16):
    """A started grpc.Server on 127.0.0.1; returns (server, port)."""
    stats = _Stats()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         options=CHANNEL_OPTIONS)
    server.add_generic_rpc_handlers((_handlers(stats),))
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.stats = stats
    return server, port


# --------------------------------------------------------------------------
# client

class Client:
    """Callables for each method of test.Echo on a channel to `target`
    (host:port). Each returns what grpcio returns; bytes in, bytes out."""

    def __init__(self, target):
        self.channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        m = f"/{SERVICE}/"
        self.unary = self.channel.unary_unary(m + "Unary")
        self.metadata = self.channel.unary_unary(m + "Metadata")
        self.server_stream = self.channel.unary_stream(m + "ServerStream")
        self.client_stream = self.channel.stream_unary(m + "ClientStream")
        self.bidi = self.channel.stream_stream(m + "Bidi")
        self.sleep = self.channel.unary_unary(m + "Sleep")
        self.abort = self.channel.unary_unary(m + "Abort")
        self.stats_call = self.channel.unary_unary(m + "Stats")

    def stats(self):
        return json.loads(self.stats_call(b"", timeout=10))

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def bidi_lockstep(self, messages, timeout=60):
        """Sends one message, waits for its echo, sends the next: proves the
        call streams both ways (nothing waits for the end of the request).
        Returns the echoes."""
        import queue
        q = queue.Queue()
        sentinel = object()

        def requests():
            while True:
                item = q.get(timeout=timeout)
                if item is sentinel:
                    return
                yield item
        echoes = []
        call = self.bidi(requests(), timeout=timeout)
        it = iter(messages)
        first = next(it, sentinel)
        q.put(first)
        if first is not sentinel:
            for echo in call:
                echoes.append(echo)
                q.put(next(it, sentinel))
        else:
            list(call)
        return echoes


def wait_ready(target, timeout=10):
    ch = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    try:
        grpc.channel_ready_future(ch).result(timeout=timeout)
    finally:
        ch.close()


# --------------------------------------------------------------------------
# the wire format by hand

def frame_message(msg, compressed=False):
    """One length-prefixed message (gRPC over HTTP/2, PROTOCOL-HTTP2.md)."""
    return struct.pack(">BI", 1 if compressed else 0, len(msg)) + msg


def parse_messages(body):
    """Splits a body into [(flags, payload)]; raises ValueError on a short one."""
    out = []
    i = 0
    while i < len(body):
        if len(body) - i < 5:
            raise ValueError(f"truncated frame header at {i}")
        flags, n = struct.unpack(">BI", body[i:i + 5])
        if len(body) - i - 5 < n:
            raise ValueError(f"truncated frame at {i}: {n} announced")
        out.append((flags, body[i + 5:i + 5 + n]))
        i += 5 + n
    return out


def grpc_request_headers(method, timeout=None, extra=()):
    """Headers of a gRPC call as a client sends them (PROTOCOL-HTTP2.md);
    timeout is a grpc-timeout value such as "300m" (milliseconds)."""
    h = [("content-type", "application/grpc"), ("te", "trailers"),
         ("user-agent", "grpcpeer-raw/1")]
    if timeout:
        h.append(("grpc-timeout", timeout))
    return h + list(extra)


def raw_call(h2client, method, msg=b"", timeout=None, wait=10.0, authority="test", extra=()):
    """A unary call over an h2peer.H2Client with no client-side deadline (so
    what ends it is the other side). Returns the h2peer Outcome; the gRPC
    status is in the trailers, or in the headers of a Trailers-Only answer."""
    return h2client.request("POST", f"/{SERVICE}/{method}",
                            grpc_request_headers(method, timeout, extra),
                            body=frame_message(msg), authority=authority, timeout=wait)


def grpc_status_of(outcome):
    """(grpc-status as int or None, grpc-message) from trailers or headers."""
    for source in (outcome.trailers, outcome.headers):
        d = dict(source)
        if "grpc-status" in d:
            return int(d["grpc-status"]), d.get("grpc-message", "")
    return None, ""


# gRPC-Web (PROTOCOL-WEB.md): over HTTP/1.1 too; the body is the same
# length-prefixed messages, and the trailers come last in the body as a frame
# with flag 0x80 holding "name: value\r\n" lines. -text is all of it base64.

def grpc_web_body(msg, text=False):
    body = frame_message(msg)
    return base64.b64encode(body) if text else body


def decode_grpc_web(body, text=False):
    """Returns (messages, trailers dict) of a gRPC-Web response body. For
    -text, base64 chunks may each carry padding (a server may encode frame by
    frame), so each padded quantum is decoded on its own."""
    if text:
        raw = bytearray()
        data = body.strip()
        i = 0
        while i < len(data):
            j = i
            while j < len(data) and data[j:j + 1] != b"=":
                j += 1
            while j < len(data) and data[j:j + 1] == b"=":
                j += 1
            piece = data[i:j]
            raw += base64.b64decode(piece + b"=" * (-len(piece) % 4))
            i = j
        body = bytes(raw)
    messages, trailers = [], {}
    for flags, payload in parse_messages(body):
        if flags & 0x80:
            for line in payload.decode().split("\r\n"):
                if line:
                    k, _, v = line.partition(":")
                    trailers[k.strip().lower()] = v.strip()
        else:
            messages.append(payload)
    return messages, trailers


def grpc_web_call(url, method, msg, text=False, timeout=10, extra_headers=None):
    """POSTs a gRPC-Web call over HTTP/1.1 with urllib. Returns
    (HTTP status, headers dict lower-cased, messages, body trailers, raw body)."""
    import urllib.error
    import urllib.request
    ctype = "application/grpc-web-text" if text else "application/grpc-web+proto"
    req = urllib.request.Request(f"{url}/{SERVICE}/{method}", data=grpc_web_body(msg, text),
                                 method="POST")
    req.add_header("Content-Type", ctype)
    req.add_header("Accept", ctype)
    req.add_header("X-Grpc-Web", "1")
    req.add_header("X-User-Agent", "grpc-web-javascript/0.1")
    for k, v in (extra_headers or {}).items():
        req.add_header(k, v)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as r:
            status, headers, body = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, e.headers, e.read()
    headers = {k.lower(): v for k, v in headers.items()}
    messages, trailers = decode_grpc_web(body, text) if body else ([], {})
    return status, headers, messages, trailers, body


class Peer:
    """grpcpeer.py serve as a child process of a test."""

    def __init__(self, *args):
        import subprocess
        from harness import PYTHON, _PROCESSES
        self.proc = subprocess.Popen([PYTHON, os.path.abspath(__file__), "serve", *args],
                                     stdout=subprocess.PIPE, text=True)
        _PROCESSES.append(self.proc)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"grpcpeer did not start: {line!r}")
        self.port = int(line.split()[-1])
        self.address = f"127.0.0.1:{self.port}"

    def stats(self):
        with Client(self.address) as c:
            return c.stats()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc.stdout.close()


# --------------------------------------------------------------------------

def self_test():
    failed = 0

    def check(cond, what):
        nonlocal failed
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        failed += 0 if cond else 1

    server, port = make_server()
    target = f"127.0.0.1:{port}"
    wait_ready(target)
    with Client(target) as c:
        resp, call = c.unary.with_call(b"hi", metadata=(("x-md", "m1"),), timeout=10)
        check(resp == b"hi" and ("x-echo", "m1") in call.initial_metadata() and
              ("x-served-by", "grpcpeer") in call.trailing_metadata(), "unary + metadata")
        msgs = list(c.server_stream(b"10000", timeout=60))
        check(len(msgs) == 10000 and msgs[9999] == b"00009999", "server stream of 10,000")
        r = c.client_stream(iter([b"a" * 100] * 1000), timeout=30)
        check(r.startswith(b"count=1000 bytes=100000 "), f"client stream: {r[:40]!r}")
        echoes = c.bidi_lockstep([b"m%d" % i for i in range(500)], timeout=30)
        check(echoes == [b"m%d" % i for i in range(500)], "bidi lockstep 500")
        try:
            c.sleep(b"5", timeout=0.3)
            check(False, "deadline exceeded")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, f"deadline exceeded: {e.code()}")
        try:
            c.abort(b"", timeout=10)
            check(False, "abort")
        except grpc.RpcError as e:
            md = dict(e.trailing_metadata())
            check(e.code() == grpc.StatusCode.FAILED_PRECONDITION and
                  e.details() == "precondition failed: test" and md.get("x-detail") == "why" and
                  md.get("x-blob-bin") == BLOB, f"abort with trailing metadata: {md}")
        m = json.loads(c.metadata(b"", timeout=5))
        check(0 < m["time_remaining"] <= 5.5, f"deadline propagated: {m['time_remaining']}")
        big = os.urandom(3 << 20)
        check(c.unary(big, timeout=30) == big, "3 MiB message")
        time.sleep(0.2)
        check(c.stats()["cancelled"] >= 1, "the server saw the cancellation")
    # The hand-made framing against the same server.
    import h2peer
    with h2peer.H2Client(port) as h:
        o = raw_call(h, "Unary", b"raw", authority=target)
        check(o.status == 200 and parse_messages(o.body) == [(0, b"raw")] and
              grpc_status_of(o)[0] == OK, f"raw unary: {o} {o.trailers}")
        o = raw_call(h, "Sleep", b"3", timeout="200m", authority=target)
        check(grpc_status_of(o)[0] == DEADLINE_EXCEEDED,
              f"raw grpc-timeout 200m is honoured by the server: {grpc_status_of(o)}")
        o = raw_call(h, "Abort", authority=target)
        check(grpc_status_of(o) == (FAILED_PRECONDITION, "precondition failed: test"),
              f"raw abort: {grpc_status_of(o)}")
    # gRPC-Web framing round trip (no gRPC-Web server here to ask: the
    # format is PROTOCOL-WEB.md's).
    trailer = b"grpc-status: 0\r\ngrpc-message: \r\n"
    body = frame_message(b"abc") + struct.pack(">BI", 0x80, len(trailer)) + trailer
    check(decode_grpc_web(body) == ([b"abc"], {"grpc-status": "0", "grpc-message": ""}),
          "gRPC-Web body decoded")
    chunked_text = base64.b64encode(frame_message(b"abc")) + base64.b64encode(body[8:])
    check(decode_grpc_web(chunked_text, text=True)[0] == [b"abc"],
          "gRPC-Web text with padded chunks decoded")
    server.stop(0)
    print(f"{failed} failed", flush=True)
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description="gRPC peers for the integration tests")
    ap.add_argument("--self-test", action="store_true")
    sub = ap.add_subparsers(dest="cmd")
    sv = sub.add_parser("serve")
    sv.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    if args.self_test:
        sys.exit(self_test())
    if args.cmd == "serve":
        server, port = make_server(args.port)
        print("listening on", port, flush=True)
        try:
            server.wait_for_termination()
        except KeyboardInterrupt:
            pass
        return
    ap.print_help()


if __name__ == "__main__":
    main()
