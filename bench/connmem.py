#!/usr/bin/python3
"""Memory per connection: sidecar, nginx and haproxy side by side (issue 17).

Each proxy runs with one worker in front of the same upstream, on 127.0.0.1.
For each scenario the proxy is warmed up (a few connections come and go),
its RSS is read from /proc (all its processes: for nginx the master does not
change, so the difference is its worker's), N connections are opened, and
RSS is read again once they are all in the wanted state:

  idle     plain HTTP/1.1: one request, response read, connection left open
           in keep-alive (the shape of a sidecar's inbound listener)
  tls      the same over TLS 1.3 (a self-signed ECDSA P-256 certificate)
  h2       HTTP/2 with prior knowledge (h2c): preface, SETTINGS, one request
           answered, connection left open
  active   one request in flight per connection: the upstream (a Python
           asyncio server) has read the request and does not answer until
           the measurement is taken, so the proxy holds both sides

Prints bytes per connection per proxy and ratios to nginx and haproxy, as a
Markdown table. Needs nginx and haproxy (scripts/install-deps.sh).

Usage: bench/connmem.py SIDECAR_BINARY [-n 5000] [--only idle,tls,h2,active]
       [--proxies sidecar,nginx,haproxy]
"""
import argparse
import os
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxy as bench  # noqa: E402  (Proc, start_upstream, rss_kib, ...)
from proxy import free_port, write  # noqa: E402

REQUEST = b"GET /hello HTTP/1.1\r\nHost: bench\r\n\r\n"
SLOW_REQUEST = b"GET /slow HTTP/1.1\r\nHost: bench\r\n\r\n"
SCENARIOS = ("idle", "tls", "h2", "active")


# ---- the slow upstream: holds every request until released ----

class SlowUpstream:
    """Accepts, reads each request head, answers only after release()."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8192)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self._read_head(c)

    def _read_head(self, c):
        # Heads are small and arrive whole on loopback: a blocking read with a
        # short timeout is enough and keeps this one thread.
        c.settimeout(5)
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    c.close()
                    return
                data += chunk
        except OSError:
            c.close()
            return
        with self.lock:
            self.held.append(c)

    def count(self):
        with self.lock:
            return len(self.held)

    def release(self):
        with self.lock:
            held, self.held = self.held, []
        for c in held:
            try:
                c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nslow\n")
            except OSError:
                pass
            c.close()

    def stop(self):
        self.stopped = True
        self.sock.close()
        self.release()


# ---- the proxies ----

def start_sidecar(binary, port, upstream, slow, tls, h2):
    listener_tls = (f"\n    tls: {{ certificates: [ {{ cert: {bench.WORK}/cert.pem, "
                    f"key: {bench.WORK}/key.pem }} ] }}") if tls else ""
    protocol = "\n    protocol: h2c" if h2 else ""
    conf = write(os.path.join(bench.WORK, "sidecar.yaml"), f"""
admin: {{ address: 127.0.0.1:0 }}
workers: 1
clusters:
  - {{ name: up, endpoints: [ "127.0.0.1:{upstream}" ] }}
  # Envoy's default breakers (1,024) would refuse the active scenario's
  # requests beyond them; nginx and haproxy are not limited here either.
  - {{ name: slow, endpoints: [ "127.0.0.1:{slow}" ],
       circuit_breakers: {{ max_connections: 20000, max_pending_requests: 20000,
                           max_requests: 20000 }} }}
listeners:
  - name: bench
    address: "127.0.0.1:{port}"{listener_tls}{protocol}
    idle_timeout: 600s
    routes:
      - {{ match: {{ prefix: /slow }}, cluster: slow, timeout: 120s }}
      - {{ match: {{ prefix: / }}, cluster: up }}
""")
    return bench.Proc("sidecar", [binary, "run", "-c", conf, "--log-level", "warn"], port)


def start_nginx(port, upstream, slow, tls, h2):
    listen = f"127.0.0.1:{port} backlog=8192"
    if tls:
        listen += " ssl"
    if h2:
        listen += " http2"
    # nginx 1.22 leaves TLS 1.3 out of its default ssl_protocols.
    certs = (f"ssl_certificate {bench.WORK}/cert.pem; ssl_certificate_key {bench.WORK}/key.pem; "
             "ssl_protocols TLSv1.2 TLSv1.3;" if tls else "")
    conf = write(os.path.join(bench.WORK, "nginx-proxy.conf"), f"""
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
user root;
pid {bench.WORK}/nginx-proxy.pid;
error_log stderr error;
events {{ worker_connections 19000; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 600s;
  http2_idle_timeout 600s;
  proxy_read_timeout 120s;
  client_body_temp_path {bench.WORK}/px-body;
  proxy_temp_path {bench.WORK}/px-proxy;
  upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  upstream slow {{ server 127.0.0.1:{slow}; }}
  server {{
    listen {listen};
    {certs}
    location /slow {{ proxy_pass http://slow; proxy_http_version 1.1; }}
    location / {{
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
""")
    return bench.Proc("nginx", ["nginx", "-p", bench.WORK, "-c", conf], port)


def start_haproxy(port, upstream, slow, tls, h2):
    bind = f"127.0.0.1:{port}"
    if tls:
        bind += f" ssl crt {bench.WORK}/combined.pem"
    if h2:
        bind += " proto h2"
    conf = write(os.path.join(bench.WORK, "haproxy.cfg"), f"""
global
  nbthread 1
  maxconn 9000
defaults
  mode http
  maxconn 9000
  timeout connect 5s
  timeout client 600s
  timeout server 120s
  timeout http-keep-alive 600s
  http-reuse always
frontend bench
  bind {bind}
  use_backend slow if {{ path_beg /slow }}
  default_backend up
backend up
  server s1 127.0.0.1:{upstream}
backend slow
  server s1 127.0.0.1:{slow}
""")
    return bench.Proc("haproxy", ["haproxy", "-f", conf], port)


STARTERS = {"nginx": start_nginx, "haproxy": start_haproxy}


# ---- the clients ----

def read_response(s):
    data = b""
    while b"hello\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError(f"connection closed: {data[:200]!r}")
        data += chunk


def open_http1(port, tls_ctx):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if tls_ctx:
        s = tls_ctx.wrap_socket(s, server_hostname="bench")
    s.sendall(REQUEST)
    read_response(s)
    return s


# HPACK without Huffman or indexing: :method GET (2), :scheme http (6),
# :path (literal, name 4) /hello, :authority (literal, name 1) bench.
H2_HEADERS = bytes([0x82, 0x86, 0x04, 6]) + b"/hello" + bytes([0x01, 5]) + b"bench"


def h2_frame(kind, flags, stream, payload=b""):
    return (len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") +
            payload)


def open_h2(port, tls_ctx):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0) +
              h2_frame(1, 0x5, 1, H2_HEADERS))
    data = b""
    acked = False
    while True:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("h2 connection closed")
        data += chunk
        done = False
        while len(data) >= 9:
            n = int.from_bytes(data[:3], "big")
            if len(data) < 9 + n:
                break
            kind, flags, stream = data[3], data[4], int.from_bytes(data[5:9], "big") & 0x7fffffff
            data = data[9 + n:]
            if kind == 4 and not flags & 1 and not acked:
                s.sendall(h2_frame(4, 1, 0))
                acked = True
            if stream == 1 and kind in (0, 1) and flags & 1:
                done = True
        if done and acked:
            return s


def open_active(port, tls_ctx):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(SLOW_REQUEST)
    return s


def settle(pids, seconds=1.0):
    time.sleep(seconds)
    return bench.rss_kib(pids)


def measure(name, scenario, args, ports):
    tls = scenario == "tls"
    h2 = scenario == "h2"
    port = free_port()
    if name == "sidecar":
        proxy = start_sidecar(args.sidecar, port, ports["up"], ports["slow"], tls, h2)
    else:
        proxy = STARTERS[name](port, ports["up"], ports["slow"], tls, h2)
    tls_ctx = None
    if tls:
        tls_ctx = ssl.create_default_context()
        tls_ctx.check_hostname = False
        tls_ctx.verify_mode = ssl.CERT_NONE
        tls_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    opener = {"idle": open_http1, "tls": open_http1, "h2": open_h2, "active": open_active}[scenario]
    conns = []
    try:
        # Warm-up: pools, caches, the first upstream connection.
        for _ in range(3):
            warm = [open_h2(port, None) if h2 else open_http1(port, tls_ctx) for _ in range(50)]
            for s in warm:
                s.close()
        before = settle(proxy.pids())
        quarter = args.n // 4
        for _ in range(quarter):
            conns.append(opener(port, tls_ctx))
        if scenario == "active":
            wait_held(ports["slow_server"], quarter)
        mid = settle(proxy.pids())
        for _ in range(args.n - quarter):
            conns.append(opener(port, tls_ctx))
        if scenario == "active":
            deadline = time.monotonic() + 60
            while ports["slow_server"].count() < args.n and time.monotonic() < deadline:
                time.sleep(0.05)
            if ports["slow_server"].count() < args.n:
                raise RuntimeError(f"only {ports['slow_server'].count()} requests reached the "
                                   f"upstream")
        after = settle(proxy.pids())
        peak = bench.rss_kib(proxy.pids(), "VmHWM")
    finally:
        if scenario == "active":
            ports["slow_server"].release()
        for s in conns:
            s.close()
        proxy.stop()
    per_conn = (after - before) * 1024 / args.n
    # What one more connection costs, without the constant that opening the
    # first ones adds (heap and pool growth): the slope from N/4 to N.
    marginal = (after - mid) * 1024 / (args.n - quarter)
    print(f"  {name:8} {scenario:7} RSS {before / 1024:7.1f} -> {mid / 1024:7.1f} -> "
          f"{after / 1024:7.1f} MiB (peak {peak / 1024:.1f})  {per_conn / 1024:6.2f} KiB per "
          f"connection, {marginal / 1024:6.2f} KiB marginal", flush=True)
    return {"before_kib": before, "after_kib": after, "per_conn": per_conn, "marginal": marginal}


def wait_held(slow_server, n):
    deadline = time.monotonic() + 60
    while slow_server.count() < n and time.monotonic() < deadline:
        time.sleep(0.05)


def make_cert():
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{bench.WORK}/key.pem", "-out",
                    f"{bench.WORK}/cert.pem", "-days", "2", "-subj", "/CN=bench"],
                   check=True, capture_output=True, timeout=60)
    with open(f"{bench.WORK}/combined.pem", "w") as out:
        for f in ("cert.pem", "key.pem"):
            with open(f"{bench.WORK}/{f}") as src:
                out.write(src.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sidecar")
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("--only", default=",".join(SCENARIOS))
    ap.add_argument("--proxies", default="sidecar,nginx,haproxy")
    args = ap.parse_args()
    for tool in ("nginx", "haproxy", "taskset", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run scripts/install-deps.sh")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.n + 1000
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, need), hard))
    bench.WORK = tempfile.mkdtemp(prefix="sidecar-connmem-")
    make_cert()
    ports = {"up": free_port()}
    upstream = bench.start_upstream(ports["up"])
    slow = SlowUpstream()
    ports["slow"] = slow.port
    ports["slow_server"] = slow
    proxies = args.proxies.split(",")
    scenarios = [s for s in args.only.split(",") if s]
    results = {}
    try:
        for scenario in scenarios:
            for name in proxies:
                results[(name, scenario)] = measure(name, scenario, args, ports)
    finally:
        slow.stop()
        upstream.stop()
        for p in list(bench.RUNNING):
            p.stop()
        shutil.rmtree(bench.WORK, ignore_errors=True)
    print()
    print(f"N = {args.n} connections per scenario, one worker each; RSS from /proc (VmRSS)")
    print()
    print("(marginal: the RSS slope from N/4 to N connections, the cost of one more)")
    print()
    print("| scenario | proxy | RSS before | RSS after | per connection | marginal | vs nginx "
          "| vs haproxy |")
    print("|---|---|---|---|---|---|---|---|")
    for scenario in scenarios:
        for name in proxies:
            r = results[(name, scenario)]
            ratios = []
            for base in ("nginx", "haproxy"):
                b = results.get((base, scenario))
                ratios.append(f"{r['per_conn'] / b['per_conn']:.2f}"
                              if b and b["per_conn"] > 0 else "-")
            print(f"| {scenario} | {name} | {r['before_kib'] / 1024:.1f} MiB | "
                  f"{r['after_kib'] / 1024:.1f} MiB | {r['per_conn'] / 1024:.2f} KiB | "
                  f"{r['marginal'] / 1024:.2f} KiB | {ratios[0]} | {ratios[1]} |")


if __name__ == "__main__":
    main()
