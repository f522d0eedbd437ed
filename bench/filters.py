#!/usr/bin/python3
"""The cost of the traffic-shaping filters, side by side with nginx and
haproxy doing the same work, on 127.0.0.1 (the machinery of bench/proxy.py:
one nginx upstream, each proxy on one worker thread pinned to CPU 1, wrk on
CPU 0, median of RUNS runs, CPU seconds per 100k requests from /proc).

Cases (each against the same proxy without the feature):
  ratelimit  a local rate limit that never limits (sidecar local_rate_limit,
             nginx limit_req, haproxy stick-table + http-request deny)
  gzip       gzip (level 1, as nginx's default) of a 16 KiB JSON body
             (sidecar compressor, nginx gzip, haproxy compression)
  cache_hit  the 16 KiB body answered from the cache (the upstream says
             max-age=60): sidecar cache, nginx proxy_cache, haproxy cache
  cache_miss the cache on, the body not cacheable (no freshness): every
             request looked up, then proxied
  rewrite    a path prefix rewrite and two added request headers, one a
             literal and one the client's address from a variable (sidecar
             route prefix_rewrite + headers filter with
             %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%, nginx rewrite +
             proxy_set_header $remote_addr, haproxy set-path + set-header
             %[src])

Usage: bench/filters.py SIDECAR_BINARY [--duration 5] [--runs 3]
         [--only sidecar,nginx,haproxy] [--cases plain,gzip,...] [--perf DIR]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxy as bench  # noqa: E402

JSON_BODY = json.dumps([{"id": i, "name": f"item {i}", "email": f"user{i}@example.com",
                         "active": i % 3 == 0} for i in range(220)])[:16 * 1024]
CASES = {
    "plain": ("/16k.json", []),
    "ratelimit": ("/16k.json", []),
    "gzip": ("/16k.json", ["-H", "Accept-Encoding: gzip"]),
    "cache_hit": ("/cached/16k.json", []),
    "cache_miss": ("/16k.json", []),
    "rewrite": ("/r/16k.json", []),
}


def sidecar_config(case, port, upstream):
    filters = {
        "plain": "",
        "ratelimit": "filters: [ { name: local_rate_limit, config: { max_tokens: 1000000000, "
                     "fill_interval: 1s } } ]",
        "gzip": "filters: [ { name: compressor, config: { gzip: { level: 1 } } } ]",
        "cache_hit": "filters: [ { name: cache, config: { max_size: 64MiB } } ]",
        "cache_miss": "filters: [ { name: cache, config: { max_size: 64MiB } } ]",
        "rewrite": "filters: [ { name: headers, config: { request_headers_to_add: "
                   "[ { name: x-team, value: payments }, { name: x-client, value: "
                   "'%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%', "
                   "append_action: OVERWRITE_IF_EXISTS_OR_ADD } ] } } ]",
    }[case]
    routes = "[ { cluster: up } ]"
    if case == "rewrite":
        routes = "[ { match: { prefix: /r/ }, prefix_rewrite: /, cluster: up } ]"
    return f"""
admin: {{ address: 127.0.0.1:0 }}
workers: 1
clusters: [ {{ name: up, endpoints: [ "127.0.0.1:{upstream}" ] }} ]
listeners: [ {{ name: bench, address: "127.0.0.1:{port}", routes: {routes},
               {filters} }} ]
"""


def nginx_config(case, port, upstream):
    extra, location = "", ""
    if case == "ratelimit":
        extra = "limit_req_zone $binary_remote_addr zone=rl:10m rate=1000000000r/s;"
        location = "limit_req zone=rl burst=1000000000 nodelay;"
    elif case == "gzip":
        location = "gzip on; gzip_types text/plain application/json; gzip_comp_level 1; gzip_proxied any;"
    elif case in ("cache_hit", "cache_miss"):
        extra = f"proxy_cache_path {bench.WORK}/nginx-cache keys_zone=c:10m max_size=64m;"
        location = "proxy_cache c;"
    elif case == "rewrite":
        location = "rewrite ^/r/(.*)$ /$1 break; proxy_set_header X-Team payments; proxy_set_header X-Client $remote_addr;"
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
  {extra}
  upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      {location}
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""


def haproxy_config(case, port, upstream):
    fe = ""
    if case == "ratelimit":
        fe = ("  stick-table type ip size 100k expire 10s store http_req_rate(1s)\n"
              "  http-request track-sc0 src\n"
              "  http-request deny deny_status 429 if { sc_http_req_rate(0) gt 1000000000 }\n")
    elif case == "gzip":
        fe = "  filter compression\n  compression algo gzip\n  compression type text/plain application/json\n"
    elif case in ("cache_hit", "cache_miss"):
        fe = ("  filter cache c\n  http-request cache-use c\n  http-response cache-store c\n")
    elif case == "rewrite":
        fe = ("  http-request set-path %[path,regsub(^/r/,/)]\n"
              "  http-request set-header X-Team payments\n"
              "  http-request set-header X-Client %[src]\n")
    tail = ""
    if case in ("cache_hit", "cache_miss"):
        tail = "cache c\n  total-max-size 64\n  max-object-size 65536\n  max-age 60\n"
    return bench.HAPROXY_DEFAULTS + f"""
frontend bench
  bind 127.0.0.1:{port}
{fe}  default_backend up
backend up
  server s1 127.0.0.1:{upstream}
{tail}"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sidecar")
    ap.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", "5")))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--only", default="sidecar,nginx,haproxy",
                    help="targets, comma-separated (sidecar,nginx,haproxy)")
    ap.add_argument("--cases", default=",".join(CASES),
                    help="cases, comma-separated (" + ",".join(CASES) + ")")
    ap.add_argument("--perf", metavar="DIR",
                    help="also record `perf record -g` of sidecar's worker per case into DIR "
                         "(a profile: the CPU figures of those runs include perf's cost)")
    args = ap.parse_args()
    targets = [t for t in args.only.split(",") if t]
    cases = {c: CASES[c] for c in args.cases.split(",") if c}
    for tool in ("wrk", "nginx", "haproxy", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run scripts/install-deps.sh")
    bench.WORK = tempfile.mkdtemp(prefix="sidecar-bench-filters-")
    upstream_port = bench.free_port()
    upstream = bench.start_upstream(upstream_port)
    with open(os.path.join(bench.WORK, "www", "16k.json"), "w") as f:
        f.write(JSON_BODY)
    results = {}
    try:
        for target in targets:
            for case, (path, headers) in cases.items():
                port = bench.free_port()
                make_config = {"sidecar": sidecar_config, "nginx": nginx_config,
                               "haproxy": haproxy_config}[target]
                proc = bench.start_target(target, args.sidecar, port,
                                          make_config(case, port, upstream_port))
                try:
                    url = f"http://127.0.0.1:{port}{path}"
                    if args.perf and target == "sidecar":
                        record(proc, args.perf, case,
                               lambda d: wrk_with_headers(url, args.connections, d, headers),
                               args.duration)
                    med = bench.measure(
                        proc, lambda d: wrk_with_headers(url, args.connections, d, headers),
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
    print("| target | case | req/s | CPU s/100k req | added CPU s/100k over plain |")
    print("|---|---|---|---|---|")
    for (target, case), r in results.items():
        plain = results.get((target, "plain"))
        added = f"{r['cpu_per_100k'] - plain['cpu_per_100k']:+.2f}" if plain and case != "plain" else "-"
        print(f"| {target} | {case} | {r['rps']:.0f} | {r['cpu_per_100k']:.2f} | {added} |")


def record(proc, directory, case, run_wrk, duration):
    """perf record -g of `proc` while run_wrk(duration) runs; the report
    (self time, no children) goes to DIRECTORY/CASE.txt."""
    import subprocess
    import threading
    os.makedirs(directory, exist_ok=True)
    data = os.path.join(directory, f"{case}.data")
    pid = str(proc.pids()[0])
    perf = subprocess.Popen(["perf", "record", "-q", "-g", "-o", data, "-p", pid],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t = threading.Thread(target=run_wrk, args=(duration,))
    t.start()
    t.join()
    perf.send_signal(2)
    perf.wait(timeout=30)
    with open(os.path.join(directory, f"{case}.txt"), "w") as out:
        subprocess.run(["perf", "report", "-i", data, "--no-children", "--percent-limit", "0.7",
                        "--stdio", "-g", "none"], stdout=out, stderr=subprocess.DEVNULL)


def wrk_with_headers(url, connections, duration, headers):
    if not headers:
        return bench.wrk(url, connections, duration)
    # wrk takes headers with -H; reuse bench.wrk's parsing by a wrapper command.
    import re
    import subprocess
    cmd = ["taskset", "-c", "0", "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
           *headers, url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_us": bench.parse_duration_us(lat["50"]),
        "p99_us": bench.parse_duration_us(lat["99"]),
        "errors": (errors.group(1) if errors else "") + (f" non2xx={non2xx.group(1)}" if non2xx else ""),
    }


if __name__ == "__main__":
    main()
