#!/usr/bin/python3
"""The TCP proxy (listeners with `protocol: tcp`) through the real binary:
redis-server behind it under redis-benchmark, 100 MiB each way with
half-close (splice path) and 16 MiB over TLS origination (copy path), TLS
termination, connect failure (UF), idle timeout (SI), round robin, reload,
drain, metrics (promtool) and the access log line."""
import hashlib
import json
import os
import queue
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import certs
from harness import _PROCESSES, Sidecar, Upstream, free_port, run_tests, wait_for

MIB = 1024 * 1024
BLOCK = os.urandom(MIB)
HAVE_REDIS = shutil.which("redis-server") and shutil.which("redis-benchmark")


class Peer:
    """A TCP server on 127.0.0.1 (port 0): `handler(peer, conn)` runs in a
    thread per connection; what handlers report goes to `results`."""

    def __init__(self, handler, tls=None, name=""):
        self.handler, self.tls, self.name = handler, tls, name
        self.results = queue.Queue()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(c,), daemon=True).start()

    def _run(self, c):
        try:
            c.settimeout(60)
            if self.tls:
                c = self.tls.wrap_socket(c, server_side=True)
            self.handler(self, c)
        except Exception as e:  # reported to the test, which fails on it
            self.results.put(("error", repr(e)))
        finally:
            c.close()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept
        except OSError:
            pass
        self.sock.close()


def read_all(sock, digest=None):
    """Reads until the end of stream; returns the byte count (and feeds `digest`)."""
    n = 0
    buf = bytearray(MIB)
    while True:
        k = sock.recv_into(buf)
        if k == 0:
            return n
        if digest is not None:
            digest.update(memoryview(buf)[:k])
        n += k


def transfer_handler(answer_mib):
    """Reads to the end of stream, reports (count, sha256), then answers
    `answer_mib` MiB of BLOCKs and closes: a client that half-closed gets it."""
    def handle(peer, c):
        h = hashlib.sha256()
        n = read_all(c, h)
        peer.results.put(("received", n, h.hexdigest()))
        for _ in range(answer_mib):
            c.sendall(BLOCK)
    return handle


def echo_handler(peer, c):
    while True:
        data = c.recv(65536)
        if not data:
            return
        c.sendall(data)


def outcome_handler(peer, c):
    """Reads until the end: reports "eof" for a clean end, "reset" for a reset."""
    try:
        read_all(c)
        peer.results.put("eof")
    except ConnectionResetError:
        peer.results.put("reset")


def reset_handler(peer, c):
    """Sends 64 KiB, then resets the connection."""
    c.sendall(BLOCK[:65536])
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def hello_handler(peer, c):
    """A server-first protocol: names itself, then waits for the end."""
    c.sendall(peer.name.encode() + b"\n")
    read_all(c)


def sha_of_blocks(mib):
    h = hashlib.sha256()
    for _ in range(mib):
        h.update(BLOCK)
    return h.hexdigest()


def send_half_close_and_read(port, mib, timeout=120):
    """Sends `mib` MiB, shuts down the write side, reads the whole answer:
    returns (bytes, sha256)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        for _ in range(mib):
            s.sendall(BLOCK)
        s.shutdown(socket.SHUT_WR)
        h = hashlib.sha256()
        n = read_all(s, h)
        return n, h.hexdigest()


def closed_by_peer(sock, timeout):
    """True when the peer closes `sock` (end of stream or reset) within `timeout`."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def metric(sc, family, **labels):
    text = sc.admin_get("/metrics")[1]
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(family + "{") and not line.startswith(family + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def log_lines(path, cluster):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    return [e for e in lines if e.get("upstream_cluster") == cluster]


class Redis:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "no"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _PROCESSES.append(self.proc)

        def pong():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(64) == b"+PONG\r\n"
            except OSError:
                return False
        wait_for(pong, 10, what="redis-server")

    def commands_processed(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"INFO stats\r\n")
            data = b""
            while b"total_commands_processed:" not in data or not data.endswith(b"\r\n"):
                data += s.recv(65536)
        for line in data.decode().splitlines():
            if line.startswith("total_commands_processed:"):
                return int(line.split(":")[1])
        return 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


class TcpProxyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sidecar-tcp-")
        d = cls.tmp.name
        cls.log = os.path.join(d, "access.log")
        ca = certs.CA(d, "ca")
        crt, key = ca.issue("server", dns=["localhost"], ips=["127.0.0.1"])
        cls.ca = ca.cert
        upstream_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        upstream_tls.load_cert_chain(crt, key)
        cls.redis = Redis() if HAVE_REDIS else None
        cls.xfer = Peer(transfer_handler(100))
        cls.xfer_tls = Peer(transfer_handler(16), tls=upstream_tls)
        cls.echo = Peer(echo_handler)
        cls.outcome = Peer(outcome_handler)
        cls.resetter = Peer(reset_handler)
        cls.a = Peer(hello_handler, name="a")
        cls.b = Peer(hello_handler, name="b")
        cls.dead_port = free_port()  # nothing listens there
        cls.http_up = Upstream()
        redis = cls.redis.port if cls.redis else free_port()
        # One worker: round robin is per worker, so the order is known.
        cls.sc = Sidecar(f"""
workers: 1
access_log: {{ path: {cls.log} }}
clusters:
  - {{ name: redis, endpoints: [ "127.0.0.1:{redis}" ] }}
  - {{ name: xfer, endpoints: [ "{cls.xfer.address}" ] }}
  - name: xfer_tls
    endpoints: [ "{cls.xfer_tls.address}" ]
    tls: {{ ca: {ca.cert}, sni: localhost }}
  - {{ name: echo, endpoints: [ "{cls.echo.address}" ] }}
  - {{ name: echo2, endpoints: [ "{cls.echo.address}" ] }}
  - {{ name: rr, endpoints: [ "{cls.a.address}", "{cls.b.address}" ] }}
  - {{ name: dead, endpoints: [ "127.0.0.1:{cls.dead_port}" ], connect_timeout: 2s }}
  - {{ name: idle, endpoints: [ "{cls.echo.address}" ] }}
  - {{ name: outcome, endpoints: [ "{cls.outcome.address}" ] }}
  - name: badtls
    endpoints: [ "{cls.echo.address}" ]
    tls: {{ ca: {ca.cert}, sni: localhost }}
  - {{ name: resetter, endpoints: [ "{cls.resetter.address}" ] }}
  - {{ name: http, endpoints: [ "{cls.http_up.address}" ] }}
listeners:
  - {{ name: redis, address: 127.0.0.1:0, protocol: tcp, cluster: redis }}
  - {{ name: xfer, address: 127.0.0.1:0, protocol: tcp, cluster: xfer }}
  - {{ name: xfer_tls, address: 127.0.0.1:0, protocol: tcp, cluster: xfer_tls }}
  - name: tls_in
    address: 127.0.0.1:0
    protocol: tcp
    cluster: echo
    tls: {{ certificates: [ {{ cert: {crt}, key: {key} }} ] }}
  - {{ name: rr, address: 127.0.0.1:0, protocol: tcp, cluster: rr }}
  - {{ name: dead, address: 127.0.0.1:0, protocol: tcp, cluster: dead }}
  - {{ name: idle, address: 127.0.0.1:0, protocol: tcp, cluster: idle, idle_timeout: 1s }}
  - {{ name: outcome, address: 127.0.0.1:0, protocol: tcp, cluster: outcome }}
  - {{ name: badtls, address: 127.0.0.1:0, protocol: tcp, cluster: badtls }}
  - {{ name: resetter, address: 127.0.0.1:0, protocol: tcp, cluster: resetter }}
  - name: http
    address: 127.0.0.1:0
    routes: [ {{ match: {{ prefix: / }}, cluster: http }} ]
""")

    @classmethod
    def tearDownClass(cls):
        cls.sc.stop()
        for p in (cls.xfer, cls.xfer_tls, cls.echo, cls.outcome, cls.resetter, cls.a, cls.b):
            p.close()
        if cls.redis:
            cls.redis.stop()
        cls.http_up.stop()
        cls.tmp.cleanup()

    def wait_log(self, cluster, count=1):
        return wait_for(lambda: len(log_lines(self.log, cluster)) >= count and
                        log_lines(self.log, cluster), 10, what=f"{cluster} access log lines")

    @unittest.skipUnless(HAVE_REDIS, "redis-server and redis-benchmark are not installed")
    def test_redis_benchmark(self):
        port = self.sc.port("redis")
        before = self.redis.commands_processed()
        p = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-q",
                            "-n", "20000", "-t", "set,get"],
                           capture_output=True, text=True, timeout=300)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out)
        self.assertNotIn("rror", out)
        for command in ("SET", "GET"):
            self.assertRegex(out, rf"{command}: [\d.]+ requests per second")
        # Every command reached the real server.
        self.assertGreaterEqual(self.redis.commands_processed() - before, 40000)
        # And the bytes come back unchanged.
        value = os.urandom(4096).hex()
        cli = ["redis-cli", "-h", "127.0.0.1", "-p", str(port)]
        subprocess.run([*cli, "set", "k", value], check=True, capture_output=True, timeout=30)
        got = subprocess.run([*cli, "get", "k"], check=True, capture_output=True, text=True,
                             timeout=30).stdout.strip()
        self.assertEqual(got, value)

    def test_100mib_each_way_with_half_close(self):
        before = (metric(self.sc, "sidecar_tcp_received_bytes_total", listener="xfer"),
                  metric(self.sc, "sidecar_tcp_sent_bytes_total", listener="xfer"))
        n, digest = send_half_close_and_read(self.sc.port("xfer"), 100)
        self.assertEqual(self.xfer.results.get(timeout=30),
                         ("received", 100 * MIB, sha_of_blocks(100)))
        self.assertEqual((n, digest), (100 * MIB, sha_of_blocks(100)))
        # Metrics and the access log count the client's bytes both ways.
        wait_for(lambda: metric(self.sc, "sidecar_tcp_connections_active", listener="xfer") == 0,
                 10, what="the connection to close")
        self.assertEqual(metric(self.sc, "sidecar_tcp_received_bytes_total", listener="xfer"),
                         before[0] + 100 * MIB)
        self.assertEqual(metric(self.sc, "sidecar_tcp_sent_bytes_total", listener="xfer"),
                         before[1] + 100 * MIB)
        e = self.wait_log("xfer")[-1]
        self.assertEqual((e["bytes_received"], e["bytes_sent"]), (100 * MIB, 100 * MIB))
        self.assertEqual(e["upstream_host"], self.xfer.address)
        self.assertEqual(e["response_flags"], "-")
        self.assertEqual(e["response_code"], 0)
        # No HTTP: method, path, protocol and the rest are null.
        for k in ("method", "path", "protocol", "request_id", "authority", "route_name",
                  "upstream_service_time"):
            self.assertIsNone(e[k], k)
        self.assertGreater(e["duration"], 0)
        self.assertRegex(e["downstream_remote_address"], r"^127\.0\.0\.1:\d+$")

    def test_half_close_over_tls_origination(self):
        # The copy path: the cluster has TLS; the client's end of stream
        # reaches the upstream as close_notify + FIN, and its answer comes back.
        n, digest = send_half_close_and_read(self.sc.port("xfer_tls"), 16)
        self.assertEqual(self.xfer_tls.results.get(timeout=30),
                         ("received", 16 * MIB, sha_of_blocks(16)))
        self.assertEqual((n, digest), (16 * MIB, sha_of_blocks(16)))
        e = self.wait_log("xfer_tls")[-1]
        self.assertEqual((e["bytes_received"], e["bytes_sent"]), (16 * MIB, 16 * MIB))

    def test_tls_termination(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        with socket.create_connection(("127.0.0.1", self.sc.port("tls_in")), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                self.assertIsNone(s.selected_alpn_protocol())
                payload = os.urandom(256 * 1024)
                # One thread: an SSL object must not be read and written
                # from two threads at once (that flaked under load).
                self.assertEqual(_echo_over(s, payload), payload)
        e = self.wait_log("echo")[-1]
        self.assertEqual(e["bytes_received"], 256 * 1024)
        self.assertIsNone(e["protocol"])

    def test_connect_failure_closes_the_client_and_logs_uf(self):
        before = metric(self.sc, "sidecar_tcp_connect_failures_total", listener="dead")
        with socket.create_connection(("127.0.0.1", self.sc.port("dead")), timeout=10) as s:
            self.assertTrue(closed_by_peer(s, 10))
        e = self.wait_log("dead")[-1]
        self.assertEqual(e["response_flags"], "UF")
        self.assertEqual(e["upstream_host"], f"127.0.0.1:{self.dead_port}")
        self.assertEqual((e["bytes_received"], e["bytes_sent"]), (0, 0))
        self.assertEqual(metric(self.sc, "sidecar_tcp_connect_failures_total", listener="dead"),
                         before + 1)
        self.assertGreaterEqual(
            metric(self.sc, "sidecar_upstream_connect_failures_total", cluster="dead"), 1)

    def test_client_reset_resets_the_upstream(self):
        # Clean end first, for contrast: the upstream sees its end of stream.
        with socket.create_connection(("127.0.0.1", self.sc.port("outcome")), timeout=10) as s:
            s.sendall(BLOCK)
        self.assertEqual(self.outcome.results.get(timeout=30), "eof")
        s = socket.create_connection(("127.0.0.1", self.sc.port("outcome")), timeout=10)
        s.sendall(BLOCK)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # RST
        self.assertEqual(self.outcome.results.get(timeout=30), "reset")
        lines = wait_for(lambda: len(log_lines(self.log, "outcome")) >= 2 and
                         log_lines(self.log, "outcome"), 10, what="the log lines")
        self.assertEqual(sorted(e["response_flags"] for e in lines[-2:]), ["-", "DC"])

    def test_upstream_reset_resets_the_client(self):
        with socket.create_connection(("127.0.0.1", self.sc.port("resetter")), timeout=10) as s:
            with self.assertRaises(ConnectionResetError):
                read_all(s)
        e = self.wait_log("resetter")[-1]
        self.assertEqual(e["response_flags"], "UC")

    def test_tls_origination_failure_is_a_connect_failure(self):
        # The cluster wants TLS; the endpoint speaks plain TCP (the echo server).
        with socket.create_connection(("127.0.0.1", self.sc.port("badtls")), timeout=10) as s:
            self.assertTrue(closed_by_peer(s, 15))
        e = self.wait_log("badtls")[-1]
        self.assertEqual(e["response_flags"], "UF")
        wait_for(lambda: "upstream " + self.echo.address + " of cluster badtls: TLS handshake "
                 "failed" in self.sc.output(), 10, what="the warning")

    def test_idle_timeout(self):
        with socket.create_connection(("127.0.0.1", self.sc.port("idle")), timeout=10) as s:
            s.sendall(b"ping")
            self.assertEqual(_read_n(s, 4), b"ping")
            # Nothing moves: the listener's idle_timeout (1s) closes it.
            self.assertTrue(closed_by_peer(s, 15))
        e = self.wait_log("idle")[-1]
        self.assertEqual(e["response_flags"], "SI")
        self.assertEqual((e["bytes_received"], e["bytes_sent"]), (4, 4))
        self.assertGreaterEqual(metric(self.sc, "sidecar_tcp_idle_timeouts_total",
                                       listener="idle"), 1)

    def test_round_robin(self):
        names = []
        for _ in range(4):
            with socket.create_connection(("127.0.0.1", self.sc.port("rr")), timeout=10) as s:
                names.append(s.makefile("rb").readline().strip().decode())
        self.assertIn(names, (["a", "b", "a", "b"], ["b", "a", "b", "a"]))

    def test_http_listener_beside(self):
        import urllib.request
        with urllib.request.urlopen(self.sc.url("/hello", "http"), timeout=10) as r:
            self.assertEqual((r.status, r.read()), (200, b"hello\n"))

    def test_metrics_pass_promtool(self):
        with socket.create_connection(("127.0.0.1", self.sc.port("rr")), timeout=10) as s:
            s.makefile("rb").readline()
            self.assertEqual(metric(self.sc, "sidecar_tcp_connections_active", listener="rr"), 1)
        text = self.sc.admin_get("/metrics")[1]
        for family in ("sidecar_tcp_connections_active", "sidecar_tcp_connections_total",
                       "sidecar_tcp_received_bytes_total", "sidecar_tcp_sent_bytes_total",
                       "sidecar_tcp_connect_failures_total"):
            self.assertIn(f'\n{family}{{listener="rr"}} ', text)
        self.assertGreaterEqual(metric(self.sc, "sidecar_downstream_connections_total",
                                       listener="rr"), 1)
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""))
        config = json.loads(self.sc.admin_get("/config")[1])
        rr = [l for l in config["listeners"] if l["name"] == "rr"][0]
        self.assertEqual((rr["protocol"], rr["cluster"]), ("tcp", "rr"))


def _echo_over(sock, payload, timeout=30):
    """Writes `payload` to a TLS socket while reading its echo, in one thread."""
    import selectors
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    sent, out = 0, b""
    deadline = time.monotonic() + timeout
    try:
        while len(out) < len(payload) and time.monotonic() < deadline:
            sel.select(0.5)
            if sent < len(payload):
                try:
                    sent += sock.send(payload[sent:sent + 16384])
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                    pass
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return out
                    out += chunk
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                pass
            if sent >= len(payload):
                sel.modify(sock, selectors.EVENT_READ)
    finally:
        sel.close()
        sock.setblocking(True)
    return out


def _read_n(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


class ReloadAndDrainTest(unittest.TestCase):
    def test_reload_then_drain(self):
        a, b = Peer(hello_handler, name="a"), Peer(hello_handler, name="b")
        config = """
workers: 2
drain: {{ timeout: 3s }}
clusters:
  - {{ name: up, endpoints: [ "{}" ] }}
listeners:
  - {{ name: t, address: "127.0.0.1:{}", protocol: tcp, cluster: up }}
"""
        port = free_port()
        sc = Sidecar(config.format(a.address, port))
        try:
            old = socket.create_connection(("127.0.0.1", port), timeout=10)
            self.assertEqual(old.makefile("rb").readline(), b"a\n")
            # A reload moves the listener to another cluster: new connections
            # go there, the one open stays on its upstream.
            with open(sc.config_path, "w") as f:
                f.write("admin: { address: 127.0.0.1:0 }\n" + config.format(b.address, port))
            sc.signal(signal.SIGHUP)
            wait_for(lambda: "config reloaded (SIGHUP)" in sc.output(), 10, what="the reload")
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                self.assertEqual(s.makefile("rb").readline(), b"b\n")
            old.sendall(b"still here")
            # Shutdown: the listener stops accepting; the open connection is
            # served until drain.timeout, then closed, and the process exits.
            sc.signal(signal.SIGTERM)
            wait_for(lambda: _refused(port), 10, what="the listener to close")
            self.assertTrue(closed_by_peer(old, 15))
            self.assertEqual(sc.wait(15), 0)
            old.close()
        finally:
            sc.stop()
            a.close()
            b.close()


def _refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        # Caught in the backlog of a listener that was closing: not yet
        # refused; ask again.
        return False


if __name__ == "__main__":
    run_tests()
