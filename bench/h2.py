#!/usr/bin/python3
"""Side-by-side HTTP/2 (h2c, prior knowledge) reverse proxy benchmark on
127.0.0.1, the method of bench/proxy.py: one nginx upstream (HTTP/1.1,
keep-alive); each proxy with one worker thread, pinned with the upstream on
CPU 1; the client on CPU 0; medians of RUNS runs.

Targets: sidecar (a `protocol: auto` listener; HTTP/2 by the preface), nginx
(`listen ... http2`, upstream keepalive) and haproxy (`bind ... proto h2`,
http-reuse always), all to the same upstream. Load: h2load -c 10 -m 10 (ten
connections, ten streams in flight each) for DURATION seconds, small and
16 KiB responses. Reported: requests/s, the proxy's CPU seconds per 100k
requests (utime+stime, all its processes) and the ratio to haproxy's, and
RSS per open HTTP/2 connection (N idle connections that made one request).

Usage: bench/h2.py SIDECAR_BINARY [--duration 5] [--runs 3] [--only sidecar,nginx,haproxy]
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import proxy as px  # noqa: E402  (processes, CPU and RSS readers, the upstream)

PAYLOADS = {"small": "/hello", "16KiB": "/16k.bin"}


def start_sidecar(binary, port, upstream):
    conf = px.write(os.path.join(px.WORK, "sidecar-h2.yaml"), f"""
admin: {{ address: 127.0.0.1:0 }}
workers: 1
clusters: [ {{ name: up, endpoints: [ "127.0.0.1:{upstream}" ] }} ]
listeners: [ {{ name: bench, address: "127.0.0.1:{port}", routes: [ {{ cluster: up }} ] }} ]
""")
    return px.Proc("sidecar", [binary, "run", "-c", conf, "--log-level", "warn"], port)


def start_nginx(port, upstream):
    conf = px.write(os.path.join(px.WORK, "nginx-h2.conf"), f"""
worker_processes 1;
daemon off;
user root;
pid {px.WORK}/nginx-h2.pid;
error_log stderr error;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  http2_max_requests 1000000;
  client_body_temp_path {px.WORK}/h2-body;
  proxy_temp_path {px.WORK}/h2-proxy;
  upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port} http2 backlog=4096;
    location / {{
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
""")
    return px.Proc("nginx", ["nginx", "-p", px.WORK, "-c", conf], port)


def start_haproxy(port, upstream):
    conf = px.write(os.path.join(px.WORK, "haproxy-h2.cfg"), f"""
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend bench
  bind 127.0.0.1:{port} proto h2
  default_backend up
backend up
  server s1 127.0.0.1:{upstream}
""")
    return px.Proc("haproxy", ["haproxy", "-f", conf], port)


def h2load(url, seconds, connections=10, streams=10):
    """Runs h2load on CPU 0; returns (requests succeeded, requests/s)."""
    out = subprocess.run(["taskset", "-c", "0", "h2load", "-c", str(connections), "-m",
                          str(streams), "-D", str(seconds), url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    m = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
    rps = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
    if not m or not rps:
        raise RuntimeError("h2load output not understood:\n" + out)
    return int(m.group(1)), float(rps.group(1))


def idle_rss_per_connection(proxy, port, n):
    """RSS growth per open HTTP/2 connection: n connections, each with its
    preface, SETTINGS and one request answered, left open."""
    before = px.rss_kib(proxy.pids())
    preface = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    # HEADERS (END_STREAM|END_HEADERS) GET /hello, http, :authority b: HPACK
    # static-table indices and a literal authority.
    block = b"\x82\x86\x41\x01b" + b"\x04\x06/hello"
    headers = len(block).to_bytes(3, "big") + b"\x01\x05\x00\x00\x00\x01" + block
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(preface + headers)
            socks.append(s)
        for s in socks:
            s.settimeout(5)
            s.recv(65536)
        time.sleep(0.5)
        after = px.rss_kib(proxy.pids())
    finally:
        for s in socks:
            s.close()
    return (after - before) * 1024 / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sidecar")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--only", default="sidecar,nginx,haproxy")
    args = ap.parse_args()
    for tool in ("h2load", "nginx", "haproxy", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run scripts/install-deps.sh")
    px.WORK = tempfile.mkdtemp(prefix="sidecar-bench-h2-")
    upstream_port = px.free_port()
    upstream = px.start_upstream(upstream_port)
    rows = []
    try:
        for target in args.only.split(","):
            port = px.free_port()
            start = {"sidecar": lambda: start_sidecar(args.sidecar, port, upstream_port),
                     "nginx": lambda: start_nginx(port, upstream_port),
                     "haproxy": lambda: start_haproxy(port, upstream_port)}[target]
            proxy = start()
            for payload, path in PAYLOADS.items():
                url = f"http://127.0.0.1:{port}{path}"
                h2load(url, 1)  # warm-up
                runs = []
                for _ in range(args.runs):
                    c0 = px.cpu_seconds(proxy.pids())
                    n, rps = h2load(url, args.duration)
                    c1 = px.cpu_seconds(proxy.pids())
                    runs.append((rps, (c1 - c0) / max(n, 1) * 100_000))
                row = {"target": target, "payload": payload,
                       "rps": statistics.median(r[0] for r in runs),
                       "cpu_100k": statistics.median(r[1] for r in runs)}
                rows.append(row)
                print(f"  {target:8} {payload:6} {row['rps']:9.0f} req/s  "
                      f"{row['cpu_100k']:.2f} cpu-s/100k", flush=True)
            idle = idle_rss_per_connection(proxy, port, args.idle)
            for r in rows:
                if r["target"] == target:
                    r["idle_bytes"] = idle
            proxy.stop()
    finally:
        upstream.stop()
        for p in list(px.RUNNING):
            p.stop()
    shutil.rmtree(px.WORK, ignore_errors=True)
    print()
    print("| target | payload | req/s (h2load -c 10 -m 10) | CPU s/100k | CPU vs haproxy | "
          "RSS per idle h2 connection |")
    print("|---" * 6 + "|")
    for r in rows:
        base = next((b for b in rows if b["payload"] == r["payload"] and
                     b["target"] == "haproxy"), None)
        ratio = f"{r['cpu_100k'] / base['cpu_100k']:.2f}" if base else "-"
        print(f"| {r['target']} | {r['payload']} | {r['rps']:.0f} | {r['cpu_100k']:.2f} | "
              f"{ratio} | {r['idle_bytes'] / 1024:.1f} KiB |")


if __name__ == "__main__":
    main()
