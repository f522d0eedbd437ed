#!/usr/bin/python3
"""The cost of resilience: sidecar with least_request balancing, active
health checks, outlier detection and a retry policy, against itself with
plain round robin, and against haproxy (balance leastconn, option httpchk,
retry-on all-retryable-errors) and nginx (least_conn, proxy_next_upstream)
doing the same, on 127.0.0.1 with the machinery of bench/proxy.py (one nginx
upstream listening on three ports = three endpoints, each proxy on one worker
thread pinned to CPU 1, wrk on CPU 0, median of RUNS runs, CPU seconds per
100k requests from /proc). Nothing fails during the run: this measures what
the features cost on the happy path, which is what every request pays.

Usage: bench/resilience.py SIDECAR_BINARY [--duration 5] [--runs 3]
"""
import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxy as bench  # noqa: E402

CASES = ("plain", "resilient")


def start_upstreams(ports):
    root = os.path.join(bench.WORK, "www")
    os.makedirs(root, exist_ok=True)
    listens = "\n".join(f"    listen 127.0.0.1:{p} reuseport backlog=4096;" for p in ports)
    conf = bench.write(os.path.join(bench.WORK, "upstream.conf"), f"""
worker_processes 1;
daemon off;
user root;
pid {bench.WORK}/upstream.pid;
error_log stderr error;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  server {{
{listens}
    root {root};
    location = /hello {{ default_type text/plain; return 200 "hello\\n"; }}
  }}
}}
""")
    return bench.Proc("upstream-nginx", ["nginx", "-p", bench.WORK, "-c", conf], ports[0])


def sidecar_config(case, port, ups):
    endpoints = ", ".join(f'"127.0.0.1:{p}"' for p in ups)
    cluster = f"name: up, endpoints: [ {endpoints} ]"
    route = "cluster: up"
    if case == "resilient":
        cluster += (", lb_policy: least_request"
                    ", health_checks: [ { http: { path: /hello }, interval: 1s, timeout: 1s } ]"
                    ", outlier_detection: { consecutive_5xx: 5 }")
        route += (", retry_policy: { retry_on: [ 5xx, reset, connect-failure ], num_retries: 2,"
                  " per_try_timeout: 1s }")
    return f"""
admin: {{ address: 127.0.0.1:0 }}
workers: 1
clusters: [ {{ {cluster} }} ]
listeners: [ {{ name: bench, address: "127.0.0.1:{port}", routes: [ {{ {route} }} ] }} ]
"""


def nginx_config(case, port, ups):
    balance, retry = "", ""
    if case == "resilient":
        balance = "least_conn;"
        retry = ("proxy_next_upstream error timeout http_502 http_503 http_504; "
                 "proxy_next_upstream_tries 3;")
    servers = " ".join(f"server 127.0.0.1:{p};" for p in ups)
    W = bench.WORK
    return f"""
worker_processes 1;
daemon off;
user root;
pid {W}/nginx-proxy.pid;
error_log stderr error;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {W}/px-body;
  proxy_temp_path {W}/px-proxy;
  upstream up {{ {balance} {servers} keepalive 64; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      {retry}
    }}
  }}
}}
"""


def haproxy_config(case, port, ups):
    backend = ""
    check = ""
    if case == "resilient":
        backend = ("  balance leastconn\n  option httpchk GET /hello\n"
                   "  retry-on all-retryable-errors\n  retries 2\n")
        check = " check inter 1s"
    servers = "".join(f"  server s{i} 127.0.0.1:{p}{check}\n" for i, p in enumerate(ups))
    return bench.HAPROXY_DEFAULTS + f"""
frontend bench
  bind 127.0.0.1:{port}
  default_backend up
backend up
{backend}{servers}"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sidecar")
    ap.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", "5")))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    ap.add_argument("--connections", type=int, default=50)
    args = ap.parse_args()
    for tool in ("wrk", "nginx", "haproxy", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run scripts/install-deps.sh")
    bench.WORK = tempfile.mkdtemp(prefix="sidecar-bench-resilience-")
    ups = [bench.free_port() for _ in range(3)]
    upstream = start_upstreams(ups)
    results = {}
    try:
        for target in ("sidecar", "nginx", "haproxy"):
            for case in CASES:
                port = bench.free_port()
                make_config = {"sidecar": sidecar_config, "nginx": nginx_config,
                               "haproxy": haproxy_config}[target]
                proc = bench.start_target(target, args.sidecar, port,
                                          make_config(case, port, ups))
                try:
                    url = f"http://127.0.0.1:{port}/hello"
                    med = bench.measure(proc, lambda d: bench.wrk(url, args.connections, d),
                                        args.duration, args.runs)
                    results[(target, case)] = med
                    print(f"  {target:8} {case:10} {med['rps']:10.0f} req/s  "
                          f"cpu {med['cpu_per_100k']:.2f}s/100k {med['errors']}", flush=True)
                finally:
                    proc.stop()
    finally:
        upstream.stop()
        for p in list(bench.RUNNING):
            p.stop()
        shutil.rmtree(bench.WORK, ignore_errors=True)
    print()
    print("| target | case | req/s | CPU s/100k req | vs its plain | vs haproxy same case |")
    print("|---|---|---|---|---|---|")
    for (target, case), r in results.items():
        plain = results[(target, "plain")]["cpu_per_100k"]
        ha = results.get(("haproxy", case))
        vs_ha = f"{r['cpu_per_100k'] / ha['cpu_per_100k']:.2f}" if ha else "-"
        print(f"| {target} | {case} | {r['rps']:.0f} | {r['cpu_per_100k']:.2f} | "
              f"{r['cpu_per_100k'] / plain:.2f} | {vs_ha} |")


if __name__ == "__main__":
    main()
