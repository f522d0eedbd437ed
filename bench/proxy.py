#!/usr/bin/python3
"""Side-by-side HTTP/1.1 reverse proxy benchmark on 127.0.0.1.

One upstream (nginx, one worker: `return 200 "hello\\n"` and a 16 KiB file,
keepalive_requests 1000000) is reached directly and through sidecar, nginx,
haproxy and caddy, each limited to one worker thread, with keep-alive to the
upstream and access logs off. wrk runs on CPU 0; the upstream and the proxy
share CPU 1. "sidecar-log" is sidecar with its JSON access log written to a
file (its metrics counters are always on): the cost of observability. For each target, payload and load (saturation: wrk -t1 -c50;
serial: wrk -t1 -c1) the median of RUNS runs is reported: requests/s, p50 and
p99 latency, p50 added over the direct path, the proxy's CPU seconds per 100k
requests (utime+stime from /proc, all its processes), and its idle and peak
RSS. Ratios are to haproxy.

Usage: bench/proxy.py SIDECAR_BINARY [--duration 5] [--runs 3] [--only sidecar,haproxy]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test",
                                "integration"))
from harness import free_port  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAYLOADS = {"small": "/hello", "16KiB": "/16k.bin"}
LOADS = {"saturation": 50, "serial": 1}
RUNNING = set()


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def children(pid):
    """pid and all its descendants."""
    out = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            for c in f.read().split():
                out += children(int(c))
    except OSError:
        pass
    return out


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / CLK_TCK


def rss_kib(pids, key="VmRSS"):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def parse_duration_us(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v = float(m.group(1))
    return v * {"us": 1, "ms": 1000, "s": 1_000_000}[m.group(2)]


def wrk(url, connections, duration):
    cmd = ["taskset", "-c", "0", "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
           url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": requests,
        "rps": rps,
        "p50_us": parse_duration_us(lat["50"]),
        "p99_us": parse_duration_us(lat["99"]),
        "errors": (errors.group(1) if errors else "") + (f" non2xx={non2xx.group(1)}" if non2xx else ""),
    }


class Proc:
    def __init__(self, name, cmd, port, env=None, cwd=None):
        self.name = name
        self.log = open(os.path.join(WORK, f"{name}.log"), "wb")
        self.proc = subprocess.Popen(["taskset", "-c", "1", *cmd], stdout=self.log,
                                     stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                     cwd=cwd, start_new_session=True)
        self.port = port
        RUNNING.add(self)
        wait_port(port)
        time.sleep(0.3)

    def pids(self):
        return children(self.proc.pid)

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()
        RUNNING.discard(self)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def start_upstream(port):
    root = os.path.join(WORK, "www")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "16k.bin"), "wb") as f:
        f.write(os.urandom(16 * 1024))
    conf = write(os.path.join(WORK, "upstream.conf"), f"""
worker_processes 1;
daemon off;
user root;
pid {WORK}/upstream.pid;
error_log stderr error;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_temp_path {WORK}/up-body;
  server {{
    listen 127.0.0.1:{port} reuseport backlog=4096;
    root {root};
    location = /hello {{ default_type text/plain; return 200 "hello\\n"; }}
    location /cached/ {{ alias {root}/; expires 60s; }}  # bench/filters.py cache_hit
  }}
}}
""")
    return Proc("upstream-nginx", ["nginx", "-p", WORK, "-c", conf], port)


def start_sidecar(binary, port, upstream, access_log=False):
    log = f"access_log: {{ path: {WORK}/access.log }}" if access_log else ""
    conf = write(os.path.join(WORK, "sidecar.yaml"), f"""
admin: {{ address: 127.0.0.1:0 }}
workers: 1
{log}
clusters: [ {{ name: up, endpoints: [ "127.0.0.1:{upstream}" ] }} ]
listeners: [ {{ name: bench, address: "127.0.0.1:{port}", routes: [ {{ cluster: up }} ] }} ]
""")
    return Proc("sidecar-log" if access_log else "sidecar",
                [binary, "run", "-c", conf, "--log-level", "warn"], port)


def start_nginx(port, upstream):
    conf = write(os.path.join(WORK, "nginx-proxy.conf"), f"""
worker_processes 1;
daemon off;
user root;
pid {WORK}/nginx-proxy.pid;
error_log stderr error;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {WORK}/px-body;
  proxy_temp_path {WORK}/px-proxy;
  upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
""")
    return Proc("nginx", ["nginx", "-p", WORK, "-c", conf], port)


def start_haproxy(port, upstream):
    conf = write(os.path.join(WORK, "haproxy.cfg"), f"""
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
  bind 127.0.0.1:{port}
  default_backend up
backend up
  server s1 127.0.0.1:{upstream}
""")
    return Proc("haproxy", ["haproxy", "-f", conf], port)


def start_caddy(port, upstream):
    conf = write(os.path.join(WORK, "Caddyfile"), f"""
{{
  admin off
  auto_https off
}}
http://127.0.0.1:{port} {{
  bind 127.0.0.1
  reverse_proxy 127.0.0.1:{upstream}
}}
""")
    return Proc("caddy", ["caddy", "run", "--config", conf, "--adapter", "caddyfile"], port,
                env={"GOMAXPROCS": "1", "XDG_DATA_HOME": WORK, "XDG_CONFIG_HOME": WORK})


def measure(proc, run_wrk, duration, runs):
    """A 1 s warm-up, then `runs` runs of run_wrk(duration) (a dict as wrk()
    returns): the medians of req/s, latency and `proc`'s CPU seconds per 100k
    requests, and the errors of every run."""
    run_wrk(1)
    results = []
    for _ in range(runs):
        before = cpu_seconds(proc.pids())
        r = run_wrk(duration)
        after = cpu_seconds(proc.pids())
        r["cpu_per_100k"] = (after - before) / r["requests"] * 100_000
        results.append(r)
    med = {k: statistics.median(r[k] for r in results) for k in ("rps", "p50_us", "cpu_per_100k")}
    med["errors"] = ";".join(r["errors"] for r in results if r["errors"])
    return med


def start_target(target, sidecar, port, config):
    """Writes `config` for `target` (sidecar, nginx or haproxy) and starts it
    listening on `port`; `sidecar` is the binary."""
    if target == "sidecar":
        conf = write(os.path.join(WORK, "sidecar.yaml"), config)
        return Proc("sidecar", [sidecar, "run", "-c", conf, "--log-level", "warn"], port)
    if target == "nginx":
        conf = write(os.path.join(WORK, "nginx-proxy.conf"), config)
        return Proc("nginx", ["nginx", "-p", WORK, "-c", conf], port)
    conf = write(os.path.join(WORK, "haproxy.cfg"), config)
    return Proc("haproxy", ["haproxy", "-f", conf], port)


HAPROXY_DEFAULTS = """
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
"""


def fmt_us(us):
    return f"{us / 1000:.2f}ms" if us >= 1000 else f"{us:.0f}us"


def main():
    global WORK
    ap = argparse.ArgumentParser()
    ap.add_argument("sidecar")
    ap.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", "5")))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    ap.add_argument("--only", default="")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    for tool in ("wrk", "nginx", "haproxy", "caddy", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run scripts/install-deps.sh")
    WORK = tempfile.mkdtemp(prefix="sidecar-bench-")
    # sidecar-log: the same sidecar with a JSON access log written to a file
    # (its counters are always on), for the cost of observability.
    targets = ["direct", "sidecar", "sidecar-log", "nginx", "haproxy", "caddy"]
    if args.only:
        targets = ["direct"] + [t for t in args.only.split(",") if t != "direct"]

    upstream_port = free_port()
    upstream = start_upstream(upstream_port)
    results = {}
    try:
        for target in targets:
            proxy = None
            if target == "direct":
                port = upstream_port
            else:
                port = free_port()
                starter = {"sidecar": lambda: start_sidecar(args.sidecar, port, upstream_port),
                           "sidecar-log": lambda: start_sidecar(args.sidecar, port, upstream_port,
                                                                access_log=True),
                           "nginx": lambda: start_nginx(port, upstream_port),
                           "haproxy": lambda: start_haproxy(port, upstream_port),
                           "caddy": lambda: start_caddy(port, upstream_port)}[target]
                proxy = starter()
            idle_rss = rss_kib(proxy.pids()) if proxy else 0
            for payload, path in PAYLOADS.items():
                for load, conns in LOADS.items():
                    url = f"http://127.0.0.1:{port}{path}"
                    wrk(url, conns, 1)  # warm-up: connections, pools, caches
                    runs = []
                    for _ in range(args.runs):
                        before = cpu_seconds(proxy.pids()) if proxy else 0
                        r = wrk(url, conns, args.duration)
                        after = cpu_seconds(proxy.pids()) if proxy else 0
                        r["cpu_per_100k"] = (after - before) / r["requests"] * 100_000 if proxy else 0
                        runs.append(r)
                    med = {k: statistics.median(r[k] for r in runs)
                           for k in ("rps", "p50_us", "p99_us", "cpu_per_100k")}
                    med["errors"] = ";".join(r["errors"] for r in runs if r["errors"])
                    results[(target, payload, load)] = med
                    print(f"  {target:8} {payload:6} {load:10} {med['rps']:10.0f} req/s  "
                          f"p50 {fmt_us(med['p50_us'])}  p99 {fmt_us(med['p99_us'])}  "
                          f"cpu {med['cpu_per_100k']:.2f}s/100k {med['errors']}", flush=True)
            peak_rss = rss_kib(proxy.pids(), "VmHWM") if proxy else 0
            for key in results:
                if key[0] == target:
                    results[key]["idle_rss_kib"] = idle_rss
                    results[key]["peak_rss_kib"] = peak_rss
            if proxy:
                proxy.stop()
    finally:
        upstream.stop()
        for p in list(RUNNING):
            p.stop()

    shutil.rmtree(WORK, ignore_errors=True)
    print_table(results, targets)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"|".join(k): v for k, v in results.items()}, f, indent=1)


def print_table(results, targets):
    lines = []
    header = ("| target | payload | load | req/s | p50 | p99 | p50 added | CPU s/100k req | "
              "idle RSS | peak RSS | req/s vs haproxy | CPU vs haproxy |")
    lines.append(header)
    lines.append("|---" * 12 + "|")
    for payload in PAYLOADS:
        for load in LOADS:
            direct = results.get(("direct", payload, load))
            base = results.get(("haproxy", payload, load))
            for target in targets:
                r = results.get((target, payload, load))
                if not r:
                    continue
                added = fmt_us(r["p50_us"] - direct["p50_us"]) if direct and target != "direct" else "-"
                rps_ratio = f"{r['rps'] / base['rps']:.2f}" if base and target != "direct" else "-"
                cpu_ratio = (f"{r['cpu_per_100k'] / base['cpu_per_100k']:.2f}"
                             if base and base["cpu_per_100k"] and target != "direct" else "-")
                cpu = f"{r['cpu_per_100k']:.2f}" if target != "direct" else "-"
                idle = f"{r['idle_rss_kib'] / 1024:.1f} MiB" if target != "direct" else "-"
                peak = f"{r['peak_rss_kib'] / 1024:.1f} MiB" if target != "direct" else "-"
                lines.append(f"| {target} | {payload} | {load} | {r['rps']:.0f} | "
                             f"{fmt_us(r['p50_us'])} | {fmt_us(r['p99_us'])} | {added} | {cpu} | "
                             f"{idle} | {peak} | {rps_ratio} | {cpu_ratio} |")
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
