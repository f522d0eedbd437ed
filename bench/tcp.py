#!/usr/bin/python3
"""TCP proxy benchmark on 127.0.0.1 (the method of bench/proxy.py: each
proxy with one worker thread on CPU 1; clients and servers on CPU 0, except
redis-server, which shares CPU 1 with the proxy as the upstream does there).

Targets: direct (no proxy); sidecar (splice(2) between plain sockets);
sidecar-copy (the same binary with SIDECAR_TCP_SPLICE=0: read/write through
user-space buffers); haproxy `mode tcp` without splice and with
`option splice-request` + `splice-response`.

  bulk:  1 GiB through one connection, client to server (up) and server to
         client (down): throughput and the proxy's CPU seconds per GiB
         (utime+stime from /proc), medians of RUNS runs;
  redis: redis-benchmark -c 50 -n N -t set,get: requests/s and the proxy's
         CPU seconds per 100k requests.

Usage: bench/tcp.py SIDECAR_BINARY [--runs 3] [--gib 1] [--redis-requests 200000]
       [--only sidecar,sidecar-copy]
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
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import proxy as px  # noqa: E402  (bench/proxy.py: processes, CPU readers)

MIB = 1024 * 1024
BLOCK = os.urandom(MIB)


class BulkServer:
    """On each connection: the first byte says what to do. 'u': read to the
    end and answer the count; 'd' + 8-byte size: send that many bytes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(c,), daemon=True).start()

    @staticmethod
    def handle(c):
        with c:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * MIB)
            mode = c.recv(1)
            if mode == b"u":
                n = 0
                buf = bytearray(MIB)
                while True:
                    k = c.recv_into(buf)
                    if k == 0:
                        break
                    n += k
                c.sendall(str(n).encode())
            elif mode == b"d":
                size = int.from_bytes(c.recv(8), "big")
                for _ in range(size // MIB):
                    c.sendall(BLOCK)

    def close(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def bulk(port, direction, size):
    """One transfer of `size` bytes; returns the seconds it took."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        if direction == "up":
            s.sendall(b"u")
            for _ in range(size // MIB):
                s.sendall(BLOCK)
            s.shutdown(socket.SHUT_WR)
            answer = b""
            while True:
                chunk = s.recv(64)
                if not chunk:
                    break
                answer += chunk
            assert int(answer) == size, answer
        else:
            s.sendall(b"d" + size.to_bytes(8, "big"))
            buf = bytearray(MIB)
            n = 0
            while True:
                k = s.recv_into(buf)
                if k == 0:
                    break
                n += k
            assert n == size, n
    return time.monotonic() - start


def start_sidecar(binary, port, upstream, splice=True):
    conf = px.write(os.path.join(px.WORK, f"sidecar-tcp-{splice}.yaml"), f"""
admin: {{ address: 127.0.0.1:0 }}
workers: 1
clusters: [ {{ name: up, endpoints: [ "127.0.0.1:{upstream}" ] }} ]
listeners: [ {{ name: bench, address: "127.0.0.1:{port}", protocol: tcp, cluster: up }} ]
""")
    return px.Proc("sidecar" if splice else "sidecar-copy",
                   [binary, "run", "-c", conf, "--log-level", "warn"], port,
                   env={"SIDECAR_TCP_SPLICE": "1" if splice else "0"})


def start_haproxy(port, upstream, splice):
    options = "  option splice-request\n  option splice-response\n" if splice else ""
    conf = px.write(os.path.join(px.WORK, f"haproxy-tcp-{splice}.cfg"), f"""
global
  nbthread 1
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
{options}frontend bench
  bind 127.0.0.1:{port}
  default_backend up
backend up
  server s1 127.0.0.1:{upstream}
""")
    return px.Proc("haproxy-splice" if splice else "haproxy", ["haproxy", "-f", conf], port)


def redis_benchmark(port, requests):
    out = subprocess.run(["taskset", "-c", "0", "redis-benchmark", "-h", "127.0.0.1", "-p",
                          str(port), "-c", "50", "-n", str(requests), "-t", "set,get", "-q"],
                         capture_output=True, text=True, timeout=600).stdout
    rates = [float(x) for x in re.findall(r"([\d.]+) requests per second", out)]
    if len(rates) != 2:
        raise RuntimeError(f"redis-benchmark: {out}")
    return sum(rates) / 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sidecar")
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--redis-requests", type=int, default=200000)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    for tool in ("haproxy", "redis-server", "redis-benchmark", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run scripts/install-deps.sh")
    os.sched_setaffinity(0, {0})
    px.WORK = tempfile.mkdtemp(prefix="sidecar-bench-tcp-")
    targets = ["direct", "sidecar", "sidecar-copy", "haproxy", "haproxy-splice"]
    if args.only:
        targets = ["direct"] + [t for t in args.only.split(",") if t != "direct"]
    size = int(args.gib * 1024) * MIB

    server = BulkServer()
    redis_port = px.free_port()
    redis = px.Proc("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no"], redis_port)
    results = {}
    try:
        for target in targets:
            proc = None
            bulk_port, rport = server.port, redis_port
            if target != "direct":
                bulk_port, rport = px.free_port(), px.free_port()
                if target.startswith("sidecar"):
                    splice = target == "sidecar"
                    proc = [start_sidecar(args.sidecar, bulk_port, server.port, splice),
                            start_sidecar(args.sidecar, rport, redis_port, splice)]
                else:
                    splice = target == "haproxy-splice"
                    proc = [start_haproxy(bulk_port, server.port, splice),
                            start_haproxy(rport, redis_port, splice)]
            for direction in ("up", "down"):
                bulk(bulk_port, direction, 64 * MIB)  # warm-up
                runs = []
                for _ in range(args.runs):
                    before = px.cpu_seconds(proc[0].pids()) if proc else 0
                    secs = bulk(bulk_port, direction, size)
                    after = px.cpu_seconds(proc[0].pids()) if proc else 0
                    runs.append((size / secs / (1024 * MIB), (after - before) / (size / (1024 * MIB))))
                gibs = statistics.median(r[0] for r in runs)
                cpu = statistics.median(r[1] for r in runs)
                results[(target, direction)] = (gibs, cpu)
                print(f"  {target:14} {direction:4} {gibs:6.2f} GiB/s  cpu {cpu:.3f} s/GiB",
                      flush=True)
            redis_benchmark(rport, 10000)  # warm-up
            runs = []
            for _ in range(args.runs):
                before = px.cpu_seconds(proc[1].pids()) if proc else 0
                rps = redis_benchmark(rport, args.redis_requests)
                after = px.cpu_seconds(proc[1].pids()) if proc else 0
                runs.append((rps, (after - before) / (2 * args.redis_requests) * 100_000))
            rps = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            results[(target, "redis")] = (rps, cpu)
            print(f"  {target:14} redis {rps:9.0f} req/s  cpu {cpu:.3f} s/100k", flush=True)
            for p in proc or []:
                p.stop()
    finally:
        server.close()
        redis.stop()
        for p in list(px.RUNNING):
            p.stop()
    shutil.rmtree(px.WORK, ignore_errors=True)

    print()
    print("| target | up GiB/s | up CPU s/GiB | down GiB/s | down CPU s/GiB | redis req/s | "
          "redis CPU s/100k |")
    print("|---" * 7 + "|")
    for t in targets:
        up, down, r = results[(t, "up")], results[(t, "down")], results[(t, "redis")]
        cpu = (lambda v: "-" if t == "direct" else f"{v:.3f}")
        print(f"| {t} | {up[0]:.2f} | {cpu(up[1])} | {down[0]:.2f} | {cpu(down[1])} | "
              f"{r[0]:.0f} | {cpu(r[1])} |")


if __name__ == "__main__":
    main()
