#!/usr/bin/python3
"""Side-by-side TLS termination benchmark on 127.0.0.1 (the method of
bench/proxy.py: one nginx upstream; each proxy with one worker thread on CPU 1
with the upstream, clients on CPU 0; medians of RUNS runs).

For sidecar, nginx and haproxy, with the same certificate, ECDSA P-256 and
RSA 2048:
  full:      new connections per second, each a full TLS 1.3 handshake
             (openssl s_time -new: a new session every time);
  full 1.2:  the same with TLS 1.2;
  resumed:   resumed TLS 1.2 handshakes per second (openssl s_time -reuse:
             session tickets or session ids, whichever the server offers;
             s_time cannot resume TLS 1.3);
  keep-alive: requests per second over 50 kept-alive TLS connections (wrk);
with the proxy's CPU seconds per 1k handshakes / per 100k requests, and the
RSS per idle TLS connection (N connections that made one request each and
stay open). Ratios are to haproxy. (wrk with "Connection: close" is not used
for handshakes: wrk keeps its SSL objects and resumes sessions.)

Usage: bench/tls.py SIDECAR_BINARY [--duration 5] [--runs 3] [--idle 2000]
"""
import argparse
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import proxy as px  # noqa: E402  (bench/proxy.py: processes, wrk, CPU and RSS readers)


def make_certs(work):
    out = {}
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{work}/ca.key", "-out",
                    f"{work}/ca.crt", "-days", "3", "-subj", "/CN=bench CA"],
                   check=True, capture_output=True)
    for kind, opts in (("ecdsa", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                       ("rsa", ["-newkey", "rsa:2048"])):
        key, csr, crt = (f"{work}/{kind}.key", f"{work}/{kind}.csr", f"{work}/{kind}.crt")
        subprocess.run(["openssl", "req", *opts, "-nodes", "-keyout", key, "-out", csr, "-subj",
                        "/CN=localhost"], check=True, capture_output=True)
        ext = px.write(f"{work}/{kind}.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", f"{work}/ca.crt", "-CAkey",
                        f"{work}/ca.key", "-CAcreateserial", "-out", crt, "-days", "3",
                        "-extfile", ext], check=True, capture_output=True)
        pem = px.write(f"{work}/{kind}.pem", open(crt).read() + open(key).read())
        out[kind] = (crt, key, pem)
    return out


def start_sidecar(binary, port, upstream, cert):
    crt, key, _ = cert
    conf = px.write(os.path.join(px.WORK, "sidecar-tls.yaml"), f"""
admin: {{ address: 127.0.0.1:0 }}
workers: 1
clusters: [ {{ name: up, endpoints: [ "127.0.0.1:{upstream}" ] }} ]
listeners:
  - name: bench
    address: "127.0.0.1:{port}"
    tls: {{ certificates: [ {{ cert: {crt}, key: {key} }} ] }}
    routes: [ {{ cluster: up }} ]
""")
    return px.Proc("sidecar", [binary, "run", "-c", conf, "--log-level", "warn"], port)


def start_nginx(port, upstream, cert):
    crt, key, _ = cert
    conf = px.write(os.path.join(px.WORK, "nginx-tls.conf"), f"""
worker_processes 1;
daemon off;
user root;
pid {px.WORK}/nginx-tls.pid;
error_log stderr error;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {px.WORK}/tls-body;
  proxy_temp_path {px.WORK}/tls-proxy;
  ssl_session_cache shared:SSL:10m;
  ssl_session_tickets on;
  upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port} ssl backlog=4096;
    ssl_certificate {crt};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {{
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
""")
    return px.Proc("nginx", ["nginx", "-p", px.WORK, "-c", conf], port)


def start_haproxy(port, upstream, cert):
    _, _, pem = cert
    conf = px.write(os.path.join(px.WORK, "haproxy-tls.cfg"), f"""
global
  nbthread 1
  maxconn 8192
  tune.ssl.default-dh-param 2048
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend bench
  bind 127.0.0.1:{port} ssl crt {pem}
  default_backend up
backend up
  server s1 127.0.0.1:{upstream}
""")
    return px.Proc("haproxy", ["haproxy", "-f", conf], port)


def s_time(port, opts, seconds):
    cmd = ["taskset", "-c", "0", "openssl", "s_time", "-connect", f"127.0.0.1:{port}",
           "-time", str(seconds), *opts]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    m = re.findall(r"(\d+) connections in (\d+) real seconds", out)
    if not m:
        raise RuntimeError("s_time: " + out[-500:])
    conns, secs = m[-1]
    return int(conns), int(conns) / max(int(secs), 1)


def idle_rss_per_connection(proxy, port, n):
    before = px.rss_kib(proxy.pids())
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conns = []
    try:
        for _ in range(n):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: b\r\n\r\n")
            data = b""
            while b"hello\n" not in data:
                data += s.recv(4096)
            conns.append(s)
        time.sleep(1)
        after = px.rss_kib(proxy.pids())
    finally:
        for s in conns:
            s.close()
    return (after - before) * 1024 / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sidecar")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--only", default="sidecar,nginx,haproxy")
    args = ap.parse_args()
    for tool in ("wrk", "nginx", "haproxy", "openssl", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run scripts/install-deps.sh")
    px.WORK = tempfile.mkdtemp(prefix="sidecar-bench-tls-")
    certs = make_certs(px.WORK)
    upstream_port = px.free_port()
    upstream = px.start_upstream(upstream_port)
    rows = []
    try:
        for kind in ("ecdsa", "rsa"):
            for target in args.only.split(","):
                port = px.free_port()
                start = {"sidecar": lambda: start_sidecar(args.sidecar, port, upstream_port,
                                                          certs[kind]),
                         "nginx": lambda: start_nginx(port, upstream_port, certs[kind]),
                         "haproxy": lambda: start_haproxy(port, upstream_port, certs[kind])}[target]
                proxy = start()
                url = f"https://127.0.0.1:{port}/hello"
                px.wrk(url, 10, 1)  # warm-up
                row = {"target": target, "cert": kind}
                full, full12, keep, resumed = [], [], [], []
                for _ in range(args.runs):
                    for into, opts in ((full, ["-new"]), (full12, ["-new", "-tls1_2"]),
                                       (resumed, ["-reuse", "-tls1_2"])):
                        c0 = px.cpu_seconds(proxy.pids())
                        n, rate = s_time(port, opts, args.duration)
                        c1 = px.cpu_seconds(proxy.pids())
                        into.append((rate, (c1 - c0) / max(n, 1) * 1000))
                    c0 = px.cpu_seconds(proxy.pids())
                    r = px.wrk(url, 50, args.duration)
                    c1 = px.cpu_seconds(proxy.pids())
                    keep.append((r["rps"], (c1 - c0) / r["requests"] * 100_000))
                for key, runs in (("full", full), ("full12", full12), ("resumed", resumed)):
                    row[key + "_cps"] = statistics.median(x[0] for x in runs)
                    row[key + "_cpu_1k"] = statistics.median(x[1] for x in runs)
                row["keepalive_rps"] = statistics.median(x[0] for x in keep)
                row["keepalive_cpu_100k"] = statistics.median(x[1] for x in keep)
                row["idle_bytes"] = idle_rss_per_connection(proxy, port, args.idle)
                row["peak_rss_kib"] = px.rss_kib(proxy.pids(), "VmHWM")
                rows.append(row)
                print(f"  {kind:5} {target:8} full {row['full_cps']:8.0f}/s "
                      f"({row['full_cpu_1k']:.3f} cpu-s/1k)  full 1.2 {row['full12_cps']:8.0f}/s "
                      f"({row['full12_cpu_1k']:.3f})  resumed {row['resumed_cps']:8.0f}/s "
                      f"({row['resumed_cpu_1k']:.3f} cpu-s/1k)  keep-alive "
                      f"{row['keepalive_rps']:8.0f} req/s ({row['keepalive_cpu_100k']:.2f} "
                      f"cpu-s/100k)  idle {row['idle_bytes'] / 1024:.1f} KiB/conn", flush=True)
                proxy.stop()
    finally:
        upstream.stop()
        for p in list(px.RUNNING):
            p.stop()
    shutil.rmtree(px.WORK, ignore_errors=True)
    print()
    print("| cert | target | full TLS 1.3/s | CPU s/1k | full TLS 1.2/s | CPU s/1k | "
          "resumed TLS 1.2/s | CPU s/1k | keep-alive req/s | CPU s/100k | RSS/idle TLS conn | "
          "CPU full vs haproxy | CPU keep-alive vs haproxy |")
    print("|---" * 13 + "|")
    for r in rows:
        base = next((b for b in rows if b["cert"] == r["cert"] and b["target"] == "haproxy"), None)
        ratio_full = f"{r['full_cpu_1k'] / base['full_cpu_1k']:.2f}" if base else "-"
        ratio_keep = f"{r['keepalive_cpu_100k'] / base['keepalive_cpu_100k']:.2f}" if base else "-"
        print(f"| {r['cert']} | {r['target']} | {r['full_cps']:.0f} | {r['full_cpu_1k']:.3f} | "
              f"{r['full12_cps']:.0f} | {r['full12_cpu_1k']:.3f} | "
              f"{r['resumed_cps']:.0f} | {r['resumed_cpu_1k']:.3f} | {r['keepalive_rps']:.0f} | "
              f"{r['keepalive_cpu_100k']:.2f} | {r['idle_bytes'] / 1024:.1f} KiB | {ratio_full} | "
              f"{ratio_keep} |")


if __name__ == "__main__":
    main()
