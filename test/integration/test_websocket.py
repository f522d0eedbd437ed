#!/usr/bin/python3
"""WebSocket through the real binary (issue 9): python3-websockets client and
server (wspeer.py) through an HTTP/1.1 listener (Upgrade -> 101 -> a byte
tunnel), route `upgrade: []`, the tunnel's idle timeout, drain, and
extended CONNECT over HTTP/2 (RFC 8441) to the HTTP/1.1 WebSocket server."""
import asyncio
import signal
import time
import unittest

import websockets

import wspeer
from harness import Sidecar, raw, run_tests, status_of, wait_for


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class WebSocketTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ws = wspeer.Peer()
        cls.sc = Sidecar(f"""
workers: 2
clusters: [ {{ name: ws, endpoints: [ "{cls.ws.address}" ] }} ]
listeners:
  - name: inbound
    address: 127.0.0.1:0
    routes:
      - {{ match: {{ prefix: /noupgrade }}, cluster: ws, upgrade: [] }}
      - {{ match: {{ prefix: / }}, cluster: ws }}
  - name: idle
    address: 127.0.0.1:0
    stream_idle_timeout: 1s
    routes: [ {{ match: {{ prefix: / }}, cluster: ws }} ]
""")

    @classmethod
    def tearDownClass(cls):
        cls.sc.stop()
        cls.ws.stop()

    def url(self, path, listener="inbound"):
        return f"ws://127.0.0.1:{self.sc.port(listener)}{path}"

    def test_10000_messages_text_and_binary(self):
        msgs = wspeer.messages(10000)

        async def go():
            async with wspeer.connect(self.url("/echo")) as ws:
                return await wspeer.echo_many(ws, msgs)
        echoes = run(go(), 90)
        self.assertEqual(len(echoes), 10000)
        for i, (sent, got) in enumerate(zip(msgs, echoes)):
            if sent != got:
                self.fail(f"message {i}: sent {type(sent).__name__} {sent[:40]!r}, "
                          f"got {type(got).__name__} {got[:40]!r}")

    def test_close_codes_pass_through(self):
        async def server_closes():
            async with wspeer.connect(self.url("/a")) as ws:
                await ws.send("close 4001 server bye")
                try:
                    await asyncio.wait_for(ws.recv(), 10)
                except websockets.ConnectionClosed:
                    pass
                return ws.close_code, ws.close_reason
        self.assertEqual(run(server_closes()), (4001, "server bye"))

        async def client_closes():
            async with wspeer.connect(self.url("/b")) as ws:
                await ws.send("x")
                await ws.recv()
                await ws.close(4002, "client bye")
        before = len(self.ws.stats()["closes"])
        run(client_closes())
        wait_for(lambda: len(self.ws.stats()["closes"]) > before, 5, what="the server's close")
        self.assertIn([4002, "client bye"], self.ws.stats()["closes"])

    def test_ping_pong_both_ways(self):
        async def go():
            async with wspeer.connect(self.url("/p")) as ws:
                pong = await ws.ping(b"from client")
                await asyncio.wait_for(pong, 10)
                await ws.send("ping")  # the server pings; our pong must reach it
                return await asyncio.wait_for(ws.recv(), 10)
        self.assertEqual(run(go()), "pong received")

    def test_upgrade_refused_where_the_route_allows_none(self):
        before = self.ws.stats()["handshakes"]

        async def go():
            async with wspeer.connect(self.url("/noupgrade")):
                pass
        with self.assertRaises(websockets.exceptions.InvalidHandshake):
            run(go())
        r = raw(self.sc.port("inbound"), b"GET /noupgrade HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                                b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                read_until_close=False)
        self.assertNotEqual(status_of(r), 101, r)
        self.assertNotEqual(status_of(r), 0, r)
        self.assertEqual(self.ws.stats()["handshakes"], before)
        # The same request on a route with the default allows it.
        r = raw(self.sc.port("inbound"), b"GET /yes HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                                b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                read_until_close=False)
        self.assertEqual(status_of(r), 101, r)

    def test_idle_tunnel_times_out_and_a_busy_one_does_not(self):
        async def go():
            async with wspeer.connect(self.url("/idle", "idle")) as idle, \
                    wspeer.connect(self.url("/busy", "idle")) as busy:
                # busy: a message every 0.4 s for 2.4 s, past the 1 s timeout
                for i in range(6):
                    await busy.send(f"tick {i}")
                    self.assertEqual(await asyncio.wait_for(busy.recv(), 5), f"tick {i}")
                    await asyncio.sleep(0.4)
                # idle: nothing moved for > 1 s, so the tunnel is gone.
                await asyncio.wait_for(idle.wait_closed(), 10)
                return idle.close_code
        code = run(go(), 30)
        self.assertIn(code, (1006, 1001, 1011))

    def test_extended_connect_over_http2(self):
        c = wspeer.H2WebSocket(self.sc.port("inbound"), "/h2ws", "ws.test")
        try:
            self.assertTrue(c.connect_protocol, f"no SETTINGS_ENABLE_CONNECT_PROTOCOL: {c.settings}")
            self.assertEqual(c.status, 200, c.outcome)
            c.send("path")
            self.assertEqual(c.recv(), "/h2ws")
            msgs = [f"h2 text {i}" if i % 2 else bytes([i]) * (i % 150) for i in range(200)]
            for m in msgs:
                c.send(m)
                self.assertEqual(c.recv(), m)
            c.ping(b"h2ping")
            frames = []
            deadline = time.monotonic() + 5
            while not any(f.opcode == websockets.frames.Opcode.PONG for f in frames) and \
                    time.monotonic() < deadline:
                frames += c.frames(1)
            self.assertIn(b"h2ping", [bytes(f.data) for f in frames
                                      if f.opcode == websockets.frames.Opcode.PONG])
            before = len(self.ws.stats()["closes"])
            c.send_close(4003, "h2 bye")
            self.assertIsNone(c.recv())  # the server's close frame
            self.assertIsNotNone(c.ws.close_rcvd, "no close frame back")
            self.assertEqual(c.ws.close_rcvd.code, 4003)
        finally:
            c.close()
        wait_for(lambda: len(self.ws.stats()["closes"]) > before, 5, what="the server's close")
        self.assertIn([4003, "h2 bye"], self.ws.stats()["closes"])


class WebSocketDrainTest(unittest.TestCase):
    def test_drain_waits_for_the_tunnel_then_closes_it(self):
        ws = wspeer.Peer()
        sc = Sidecar(f"""
clusters: [ {{ name: ws, endpoints: [ "{ws.address}" ] }} ]
listeners:
  - name: inbound
    address: 127.0.0.1:0
    routes: [ {{ match: {{ prefix: / }}, cluster: ws }} ]
drain: {{ timeout: 2s }}
""")
        try:
            async def go():
                async with wspeer.connect(f"ws://127.0.0.1:{sc.port()}/d") as c:
                    await c.send("before")
                    self.assertEqual(await asyncio.wait_for(c.recv(), 5), "before")
                    sc.signal(signal.SIGTERM)
                    await asyncio.sleep(0.5)
                    # Draining: the tunnel still carries messages.
                    await c.send("during drain")
                    self.assertEqual(await asyncio.wait_for(c.recv(), 5), "during drain")
                    # Past the drain timeout it is closed.
                    await asyncio.wait_for(c.wait_closed(), 10)
                    return c.close_code
            run(go(), 30)
            self.assertEqual(sc.wait(15), 0, sc.output())
        finally:
            sc.stop()
            ws.stop()


if __name__ == "__main__":
    run_tests()
