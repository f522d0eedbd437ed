#!/usr/bin/python3
"""WebSocket peers for the integration tests, on python3-websockets (10.4).

Server (`wspeer.py serve [--port P]`, prints "listening on PORT"): an
HTTP/1.1 WebSocket server (RFC 6455) on 127.0.0.1 that echoes every message
with its type (text stays text, binary stays binary), except these text
commands:

  "close CODE REASON"   the server closes with that code and reason
  "ping"                the server pings (payload b"srv"), waits for the
                        pong, then sends the text "pong received"
  "path"                the request path the handshake came with

Plain GET /stats (not an upgrade) answers JSON {handshakes, open, closes:
[[code, reason], ...] in the order connections ended, paths}.

Clients: `connect(url)` (websockets' asyncio client, no automatic pings), and
H2WebSocket: a WebSocket over an HTTP/2 stream by extended CONNECT (RFC
8441), the frames made by websockets' own sans-IO protocol
(websockets.connection.Connection) and carried in DATA frames by h2peer.RawH2.

`wspeer.py --self-test` checks the peers against each other, without the
sidecar.
"""
import argparse
import asyncio
import http
import json
import os
import sys
import time

import websockets
from websockets.connection import Connection, Side, State
from websockets.frames import Opcode

import h2peer

STATS = {"handshakes": 0, "open": 0, "closes": [], "paths": []}


async def _handler(ws, path=None):
    path = path or ws.path
    STATS["handshakes"] += 1
    STATS["open"] += 1
    STATS["paths"].append(path)
    try:
        async for msg in ws:
            if isinstance(msg, str) and msg.startswith("close "):
                _, code, reason = (msg.split(" ", 2) + [""])[:3]
                await ws.close(int(code), reason)
                break
            if msg == "ping":
                waiter = await ws.ping(b"srv")
                await asyncio.wait_for(waiter, 5)
                await ws.send("pong received")
                continue
            if msg == "path":
                await ws.send(path)
                continue
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass
    finally:
        STATS["open"] -= 1
        STATS["closes"].append([ws.close_code, ws.close_reason])


async def _process_request(path, headers):
    if path == "/stats" and "upgrade" not in headers.get("Connection", "").lower():
        return (http.HTTPStatus.OK, [("Content-Type", "application/json")],
                json.dumps(STATS).encode())
    return None


async def serve(port=0, ready=None):
    async with websockets.serve(_handler, "127.0.0.1", port, process_request=_process_request,
                                ping_interval=None, max_size=16 << 20,
                                compression=None) as server:
        actual = server.sockets[0].getsockname()[1]
        if ready:
            ready(actual)
        await asyncio.Future()


def connect(url, **kw):
    """websockets' client, no keepalive pings (a test that wants them sends
    them), no compression (so the bytes on the wire are the messages)."""
    kw.setdefault("ping_interval", None)
    kw.setdefault("max_size", 16 << 20)
    kw.setdefault("compression", None)
    kw.setdefault("open_timeout", 10)
    kw.setdefault("close_timeout", 5)
    return websockets.connect(url, **kw)


def stats(port):
    import urllib.request
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/stats", timeout=5) as r:
        return json.load(r)


async def echo_many(ws, messages, window=100):
    """Sends the messages with up to `window` in flight; returns the echoes
    (the same types as sent, if the path is right)."""
    echoes = []
    for i in range(0, len(messages), window):
        batch = messages[i:i + window]
        for m in batch:
            await ws.send(m)
        for _ in batch:
            echoes.append(await asyncio.wait_for(ws.recv(), 10))
    return echoes


def messages(n, seed=0):
    """n messages alternating text and binary, sizes 0..~3000 bytes."""
    out = []
    for i in range(n):
        size = (i * 7919 + seed) % 3000
        if i % 2:
            out.append(bytes((i + k) & 0xFF for k in range(size % 257)) * (size // 257 + 1))
        else:
            out.append(f"text {i} " + "é" * (size % 100))
    return out


class H2WebSocket:
    """A WebSocket client over HTTP/2 extended CONNECT (RFC 8441 4-5):
    SETTINGS_ENABLE_CONNECT_PROTOCOL must be 1 in the peer's SETTINGS, then
    HEADERS :method CONNECT, :protocol websocket, :scheme, :path, :authority,
    sec-websocket-version: 13; a 200 opens the stream for WebSocket frames
    (client frames masked, RFC 6455 5.3). Keeps what it sends under the
    default 64 KiB windows."""

    def __init__(self, port, path="/", authority="test", timeout=10.0):
        self.h = h2peer.RawH2(port, timeout=timeout)
        self.settings = self.h.wait_settings(timeout)
        self.connect_protocol = self.settings.get(h2peer.ENABLE_CONNECT_PROTOCOL) == 1
        self.sid = self.h.headers([(":method", "CONNECT"), (":protocol", "websocket"),
                                   (":scheme", "http"), (":path", path),
                                   (":authority", authority),
                                   ("sec-websocket-version", "13")], end_stream=False)
        self.outcome = self.h.outcomes[self.sid]
        deadline = time.monotonic() + timeout
        while self.outcome.status is None and not self.outcome.done and \
                time.monotonic() < deadline:
            self.h.read_frame(deadline - time.monotonic())
        self.status = self.outcome.status
        self.ws = Connection(Side.CLIENT, State.OPEN, max_size=16 << 20)
        self.offset = 0
        self.eof = False

    def close(self):
        self.h.close()

    def _flush(self):
        for chunk in self.ws.data_to_send():
            if chunk:
                self.h.data(self.sid, chunk)
            else:
                self.h.data(self.sid, b"", end_stream=True)

    def send(self, message):
        if isinstance(message, str):
            self.ws.send_text(message.encode())
        else:
            self.ws.send_binary(message)
        self._flush()

    def ping(self, data):
        self.ws.send_ping(data)
        self._flush()

    def send_close(self, code, reason=""):
        self.ws.send_close(code, reason)
        self._flush()

    def frames(self, timeout=10.0):
        """The WebSocket frames received next (at least one, unless the stream
        or connection ended or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.outcome.body
            if len(body) > self.offset:
                self.ws.receive_data(body[self.offset:])
                self.offset = len(body)
            if self.outcome.done and not self.eof:
                self.eof = True
                self.ws.receive_eof()
            events = self.ws.events_received()
            self._flush()  # pongs and close replies
            if events or self.eof or time.monotonic() >= deadline:
                return events
            self.h.read_frame(min(0.2, deadline - time.monotonic()))

    def recv(self, timeout=10.0):
        """The next data message (str or bytes), answering pings on the way;
        None if the WebSocket closed first."""
        deadline = time.monotonic() + timeout
        pending = getattr(self, "_pending", [])
        while True:
            while pending:
                f = pending.pop(0)
                if f.opcode == Opcode.TEXT:
                    self._pending = pending
                    return f.data.decode()
                if f.opcode == Opcode.BINARY:
                    self._pending = pending
                    return bytes(f.data)
                if f.opcode == Opcode.CLOSE:
                    self._pending = pending
                    return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no WebSocket message in time")
            pending = self.frames(left)
            if not pending and self.eof:
                return None


# --------------------------------------------------------------------------

def _run_server_thread():
    import threading
    box = {}
    started = threading.Event()

    def run():
        loop = asyncio.new_event_loop()
        box["loop"] = loop

        def ready(port):
            box["port"] = port
            started.set()
        try:
            loop.run_until_complete(serve(0, ready))
        except (asyncio.CancelledError, RuntimeError):
            pass
    threading.Thread(target=run, daemon=True).start()
    if not started.wait(10):
        raise RuntimeError("wspeer did not start")
    return box["port"]


def self_test():
    failed = 0

    def check(cond, what):
        nonlocal failed
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        failed += 0 if cond else 1

    port = _run_server_thread()
    url = f"ws://127.0.0.1:{port}"

    async def run():
        async with connect(url + "/echo") as ws:
            msgs = messages(2000)
            echoes = await echo_many(ws, msgs)
            check(echoes == msgs, "2,000 text and binary messages echoed with their types")
            pong = await ws.ping(b"cli")
            await asyncio.wait_for(pong, 5)
            check(True, "client ping answered")
            await ws.send("ping")
            check(await asyncio.wait_for(ws.recv(), 5) == "pong received", "server ping answered")
            await ws.send("path")
            check(await ws.recv() == "/echo", "path seen")
            await ws.send("close 4001 server bye")
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except websockets.ConnectionClosed:
                pass
            check(ws.close_code == 4001 and ws.close_reason == "server bye",
                  f"server close code: {ws.close_code} {ws.close_reason!r}")
        async with connect(url + "/c") as ws:
            await ws.close(4002, "client bye")
    asyncio.run(run())
    time.sleep(0.2)
    check(stats(port)["closes"][-1] == [4002, "client bye"], "client close code seen by the server")
    # The extended CONNECT client needs an h2 peer that does RFC 8441: none
    # here besides the sidecar; check its WebSocket half against the server
    # through a plain TCP socket carrying the frames instead.
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /raw HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    check(head.startswith(b"HTTP/1.1 101"), "raw upgrade")
    ws = Connection(Side.CLIENT, State.OPEN)
    rest = head.split(b"\r\n\r\n", 1)[1]
    ws.send_text("over sans-IO".encode())
    ws.send_binary(b"\x00\x01")
    s.sendall(b"".join(ws.data_to_send()))
    got = []
    ws.receive_data(rest)
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        got += [f for f in ws.events_received() if f.opcode in (Opcode.TEXT, Opcode.BINARY)]
        if len(got) < 2:
            ws.receive_data(s.recv(4096))
    check([bytes(f.data) for f in got] == [b"over sans-IO", b"\x00\x01"],
          "sans-IO frames understood by the server")
    ws.send_close(4003, "sans-io bye")
    s.sendall(b"".join(ws.data_to_send()))
    s.close()
    deadline = time.monotonic() + 5
    while len(stats(port)["closes"]) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    closes = stats(port)["closes"]
    check([4003, "sans-io bye"] in closes, f"sans-IO close code: {closes}")
    print(f"{failed} failed", flush=True)
    return 1 if failed else 0


class Peer:
    """wspeer.py serve as a child process of a test."""

    def __init__(self, *args):
        import subprocess
        from harness import PYTHON, _PROCESSES
        self.proc = subprocess.Popen([PYTHON, os.path.abspath(__file__), "serve", *args],
                                     stdout=subprocess.PIPE, text=True)
        _PROCESSES.append(self.proc)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"wspeer did not start: {line!r}")
        self.port = int(line.split()[-1])
        self.address = f"127.0.0.1:{self.port}"

    def stats(self):
        return stats(self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc.stdout.close()


def main():
    ap = argparse.ArgumentParser(description="WebSocket peers for the integration tests")
    ap.add_argument("--self-test", action="store_true")
    sub = ap.add_subparsers(dest="cmd")
    sv = sub.add_parser("serve")
    sv.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    if args.self_test:
        sys.exit(self_test())
    if args.cmd == "serve":
        try:
            asyncio.run(serve(args.port, lambda p: print("listening on", p, flush=True)))
        except KeyboardInterrupt:
            pass
        return
    ap.print_help()


if __name__ == "__main__":
    main()
