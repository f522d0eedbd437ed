#!/usr/bin/python3
"""How long a /metrics scrape takes with many routes.

Starts sidecar with ROUTES routes (one listener, one upstream), sends one
request through every route (so every route has a response-code series), then
times SCRAPES scrapes of /metrics (text format) and prints the median and the
slowest, with the body size. Measured, not asserted.

Usage: bench/scrape.py build/sidecar [--routes 1000] [--scrapes 50]
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import http.client

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test",
                                "integration"))
from harness import Sidecar, Upstream  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sidecar")
    ap.add_argument("--routes", type=int, default=1000)
    ap.add_argument("--scrapes", type=int, default=50)
    args = ap.parse_args()
    os.environ["SIDECAR_BIN"] = os.path.abspath(args.sidecar)
    import harness
    harness.BIN = os.environ["SIDECAR_BIN"]
    up = Upstream()
    routes = "".join(f"      - {{ name: r{i}, match: {{ prefix: /r{i}/ }}, cluster: app }}\n"
                     for i in range(args.routes))
    sc = Sidecar(f"""
workers: 2
clusters: [ {{ name: app, endpoints: [ "{up.address}" ] }} ]
listeners:
  - name: inbound
    address: 127.0.0.1:0
    routes:
{routes}""")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", sc.port())
        for i in range(args.routes):
            conn.request("GET", f"/r{i}/hello")
            conn.getresponse().read()
        # curl's time_total: connect, request, and the whole body read by a C client.
        times = []
        size = 0
        for _ in range(args.scrapes):
            out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w",
                                  "%{time_total} %{size_download}",
                                  f"http://{sc.admin}/metrics"],
                                 capture_output=True, text=True, check=True).stdout.split()
            times.append(float(out[0]) * 1000)
            size = int(out[1])
        with subprocess.Popen(["curl", "-s", f"http://{sc.admin}/metrics"],
                              stdout=subprocess.PIPE) as p:
            lines = p.stdout.read().count(b"\n")
        print(f"{args.routes} routes: /metrics median {statistics.median(times):.2f} ms, "
              f"slowest {max(times):.2f} ms, {size / 1024:.0f} KiB, {lines} lines "
              f"({args.scrapes} scrapes)")
    finally:
        sc.stop()
        up.stop()


if __name__ == "__main__":
    main()
