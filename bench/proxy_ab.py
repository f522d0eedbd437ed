#!/usr/bin/python3
"""A/B CPU comparison of sidecar binaries (and nginx, haproxy) on bench/proxy.py's setup,
or with --h2 on bench/h2.py's.

Where bench/proxy.py and bench/h2.py measure each target once in turn, this
runs the targets round-robin, ROUNDS times, so that a slow minute of a shared
machine falls on every target alike, and prints the median and each round's
CPU seconds per 100k requests, and with haproxy among the targets the median
of each round's ratio to haproxy. HTTP/1.1: small response at saturation
(wrk -c50), small serial (-c1) and 16 KiB at saturation. --h2: small and
16 KiB responses, h2load -c 10 -m 10. Same upstream, pinning and configs as
the two benches.

Usage: bench/proxy_ab.py [--h2] [--rounds 3] [--duration 4] NAME=SIDECAR_BINARY... [haproxy] [nginx]
  e.g. bench/proxy_ab.py main=/tmp/sidecar-main new=build/sidecar uring=build-uring/sidecar haproxy
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2 as H2  # noqa: E402
import proxy as P  # noqa: E402

CASES = (("small saturation", 50, "/hello"), ("small serial", 1, "/hello"),
         ("16KiB saturation", 50, "/16k.bin"))
H2_CASES = (("h2 small", 10, "/hello"), ("h2 16KiB", 10, "/16k.bin"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--h2", action="store_true", help="HTTP/2 (bench/h2.py) instead of HTTP/1.1")
    ap.add_argument("targets", nargs="+")
    args = ap.parse_args()
    cases = H2_CASES if args.h2 else CASES
    start = {"haproxy": H2.start_haproxy if args.h2 else P.start_haproxy,
             "nginx": H2.start_nginx if args.h2 else P.start_nginx}
    start_sidecar = H2.start_sidecar if args.h2 else P.start_sidecar

    def load(url, conns, seconds):
        """Requests completed in `seconds`."""
        if args.h2:
            return H2.h2load(url, seconds)[0]
        return P.wrk(url, conns, seconds)["requests"]

    targets = [t.split("=", 1) if "=" in t else (t, t) for t in args.targets]
    P.WORK = tempfile.mkdtemp(prefix="sidecar-ab-")
    upstream_port = P.free_port()
    upstream = P.start_upstream(upstream_port)
    cpu = {(name, case[0]): [] for name, _ in targets for case in cases}
    try:
        for _ in range(args.rounds):
            for name, binary in targets:
                port = P.free_port()
                if binary in start:
                    proc = start[binary](port, upstream_port)
                else:
                    proc = start_sidecar(binary, port, upstream_port)
                for case, conns, path in cases:
                    url = f"http://127.0.0.1:{port}{path}"
                    load(url, conns, 1)  # warm-up
                    before = P.cpu_seconds(proc.pids())
                    n = load(url, conns, args.duration)
                    after = P.cpu_seconds(proc.pids())
                    cpu[(name, case)].append((after - before) / max(n, 1) * 100_000)
                proc.stop()
    finally:
        upstream.stop()
        for p in list(P.RUNNING):
            p.stop()
        shutil.rmtree(P.WORK, ignore_errors=True)
    print("| target | " + " | ".join(c[0] for c in cases) + " |")
    print("|---" * (len(cases) + 1) + "|")
    base = "haproxy" if any(name == "haproxy" for name, _ in targets) else None
    for name, _ in targets:
        cells = []
        for case, _, _ in cases:
            runs = cpu[(name, case)]
            cell = f"{statistics.median(runs):.2f} ({' '.join(f'{v:.2f}' for v in runs)})"
            if base is not None:
                ratios = [a / b for a, b in zip(runs, cpu[(base, case)])]
                cell += f" {statistics.median(ratios):.2f}x haproxy"
            cells.append(cell)
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
