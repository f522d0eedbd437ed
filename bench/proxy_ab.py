#!/usr/bin/python3
"""A/B CPU comparison of sidecar binaries (and nginx, haproxy) on bench/proxy.py's setup.

Where bench/proxy.py measures each target once in turn, this runs the targets
round-robin, ROUNDS times, so that a slow minute of a shared machine falls on
every target alike, and prints the median and each round's CPU seconds per 100k
requests for: small response at saturation (wrk -c50), small serial (-c1) and
16 KiB at saturation. Same upstream, pinning and configs as bench/proxy.py.

Usage: bench/proxy_ab.py [--rounds 3] [--duration 4] NAME=SIDECAR_BINARY... [haproxy] [nginx]
  e.g. bench/proxy_ab.py main=/tmp/sidecar-main new=build/sidecar uring=build-uring/sidecar haproxy
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxy as P  # noqa: E402

CASES = (("small saturation", 50, "/hello"), ("small serial", 1, "/hello"),
         ("16KiB saturation", 50, "/16k.bin"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("targets", nargs="+")
    args = ap.parse_args()
    targets = [t.split("=", 1) if "=" in t else (t, t) for t in args.targets]
    P.WORK = tempfile.mkdtemp(prefix="sidecar-ab-")
    upstream_port = P.free_port()
    upstream = P.start_upstream(upstream_port)
    cpu = {(name, case[0]): [] for name, _ in targets for case in CASES}
    try:
        for _ in range(args.rounds):
            for name, binary in targets:
                port = P.free_port()
                if binary == "haproxy":
                    proc = P.start_haproxy(port, upstream_port)
                elif binary == "nginx":
                    proc = P.start_nginx(port, upstream_port)
                else:
                    proc = P.start_sidecar(binary, port, upstream_port)
                for case, conns, path in CASES:
                    url = f"http://127.0.0.1:{port}{path}"
                    P.wrk(url, conns, 1)  # warm-up
                    before = P.cpu_seconds(proc.pids())
                    r = P.wrk(url, conns, args.duration)
                    after = P.cpu_seconds(proc.pids())
                    cpu[(name, case)].append((after - before) / r["requests"] * 100_000)
                proc.stop()
    finally:
        upstream.stop()
        for p in list(P.RUNNING):
            p.stop()
        shutil.rmtree(P.WORK, ignore_errors=True)
    print("| target | " + " | ".join(c[0] for c in CASES) + " |")
    print("|---" * (len(CASES) + 1) + "|")
    for name, _ in targets:
        cells = []
        for case, _, _ in CASES:
            runs = cpu[(name, case)]
            cells.append(f"{statistics.median(runs):.2f} ({' '.join(f'{v:.2f}' for v in runs)})")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
