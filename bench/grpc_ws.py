#!/usr/bin/python3
"""gRPC and WebSocket through the sidecar against the same peers reached
directly, on 127.0.0.1 (issue 9). The peers are the integration tests' own
(test/integration/grpcpeer.py: python3-grpcio; wspeer.py: python3-websockets),
started as processes pinned with the proxy on CPU 1; the clients run on CPU 0.

- gRPC unary calls/s: h2load sends unary calls to test.Echo/Unary (POST,
  `content-type: application/grpc`, `te: trailers`, a length-prefixed
  message of --grpc-bytes bytes), -c 10 -m 10 for DURATION seconds,
  direct to the grpcio server and through a sidecar listener (protocol
  auto, h2c by the preface) to an h2c cluster. Reported: calls/s, calls that
  ended with grpc-status 0 (h2load counts HTTP 200s; the bench checks one
  call's trailers separately), the sidecar's CPU seconds per 100k calls.
  The python server is the bottleneck on this machine: the figure shows
  what the proxy costs the client, not the proxy's ceiling.
- WebSocket echo round trip: one connection, --ws-messages messages of
  --ws-bytes bytes sent one at a time, each waiting for its echo; p50, p99
  and mean in microseconds, direct and through a sidecar listener whose
  route takes the HTTP/1.1 upgrade (the tunnel copies bytes both ways).

Medians of RUNS runs. Usage:
  bench/grpc_ws.py SIDECAR_BINARY [--duration 3] [--runs 3] [--ws-messages 2000]
"""
import argparse
import asyncio
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "..", "test", "integration")
sys.path.insert(0, HERE)
import proxy as px  # noqa: E402  (processes, CPU readers, ports)


def start_grpc_server(port):
    return px.Proc("grpc-server", ["/usr/bin/python3", os.path.join(PEERS, "grpcpeer.py"),
                                   "serve", "--port", str(port)], port)


def start_ws_server(port):
    return px.Proc("ws-server", ["/usr/bin/python3", os.path.join(PEERS, "wspeer.py"),
                                 "serve", "--port", str(port)], port)


def start_sidecar(binary, grpc_port, ws_port, grpc_up, ws_up):
    conf = px.write(os.path.join(px.WORK, "sidecar-grpc-ws.yaml"), f"""
admin: {{ address: 127.0.0.1:0 }}
workers: 1
clusters:
  - {{ name: grpc, endpoints: [ "127.0.0.1:{grpc_up}" ], protocol: h2c }}
  - {{ name: ws, endpoints: [ "127.0.0.1:{ws_up}" ] }}
listeners:
  - {{ name: grpc, address: "127.0.0.1:{grpc_port}", routes: [ {{ cluster: grpc }} ] }}
  - {{ name: ws, address: "127.0.0.1:{ws_port}", routes: [ {{ cluster: ws }} ] }}
""")
    proc = px.Proc("sidecar", [binary, "run", "-c", conf, "--log-level", "warn"], grpc_port)
    px.wait_port(ws_port)
    return proc


def grpc_message(size):
    """One gRPC message: uncompressed flag, 4-byte big-endian length, bytes."""
    return b"\x00" + struct.pack(">I", size) + b"x" * size


def h2load_grpc(port, data_file, seconds):
    """h2load unary calls; returns (calls answered 2xx, calls/s)."""
    out = subprocess.run(
        ["taskset", "-c", "0", "h2load", "-c", "10", "-m", "10", "-D", str(seconds),
         "-d", data_file, "-H", "content-type: application/grpc", "-H", "te: trailers",
         f"http://127.0.0.1:{port}/test.Echo/Unary"],
        capture_output=True, text=True, timeout=seconds + 60).stdout
    m = re.search(r"status codes: (\d+) 2xx", out)
    rps = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
    if not m or not rps:
        raise RuntimeError("h2load output not understood:\n" + out)
    return int(m.group(1)), float(rps.group(1))


def grpc_check(port, size):
    """One call with grpcio's own client: the echo and status OK arrive."""
    import grpc
    with grpc.insecure_channel(f"127.0.0.1:{port}",
                               options=[("grpc.enable_http_proxy", 0)]) as ch:
        call = ch.unary_unary("/test.Echo/Unary")
        payload = b"x" * size
        reply, c = call.with_call(payload, timeout=10)
        if reply != payload or c.code() != grpc.StatusCode.OK:
            raise RuntimeError(f"gRPC check failed on port {port}: {c.code()}")


def ws_round_trips(port, count, size):
    """Round-trip times in microseconds of `count` echoes, one at a time."""
    import websockets  # (not wspeer: this folder's h2.py hides the h2 package it imports)

    async def run():
        times = []
        payload = b"\x5a" * size
        async with websockets.connect(f"ws://127.0.0.1:{port}/bench", ping_interval=None,
                                      compression=None, open_timeout=10) as ws:
            for _ in range(20):  # warm-up
                await ws.send(payload)
                await asyncio.wait_for(ws.recv(), 10)
            for _ in range(count):
                t0 = time.perf_counter_ns()
                await ws.send(payload)
                echo = await asyncio.wait_for(ws.recv(), 10)
                times.append((time.perf_counter_ns() - t0) / 1000)
                if echo != payload:
                    raise RuntimeError("WebSocket echo differs")
        return times

    return asyncio.run(run())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sidecar")
    ap.add_argument("--duration", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--grpc-bytes", type=int, default=64)
    ap.add_argument("--ws-messages", type=int, default=2000)
    ap.add_argument("--ws-bytes", type=int, default=64)
    args = ap.parse_args()
    for tool in ("h2load", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run scripts/install-deps.sh")
    # The clients (grpcio in grpc_check, websockets here) run in this process: on CPU 0.
    os.sched_setaffinity(0, {0})
    px.WORK = tempfile.mkdtemp(prefix="sidecar-bench-grpc-ws-")
    data_file = px.write(os.path.join(px.WORK, "unary.bin"), "")
    with open(data_file, "wb") as f:
        f.write(grpc_message(args.grpc_bytes))
    grpc_up, ws_up = px.free_port(), px.free_port()
    grpc_port, ws_port = px.free_port(), px.free_port()
    rows = []
    try:
        grpc_server = start_grpc_server(grpc_up)
        ws_server = start_ws_server(ws_up)
        sidecar = start_sidecar(args.sidecar, grpc_port, ws_port, grpc_up, ws_up)
        for target, gport, wport in (("direct", grpc_up, ws_up),
                                     ("sidecar", grpc_port, ws_port)):
            grpc_check(gport, args.grpc_bytes)
            h2load_grpc(gport, data_file, 1)  # warm-up
            runs = []
            for _ in range(args.runs):
                c0 = px.cpu_seconds(sidecar.pids())
                n, rps = h2load_grpc(gport, data_file, args.duration)
                c1 = px.cpu_seconds(sidecar.pids())
                runs.append((rps, (c1 - c0) / max(n, 1) * 100_000))
            ws = [ws_round_trips(wport, args.ws_messages, args.ws_bytes)
                  for _ in range(args.runs)]
            row = {"target": target,
                   "grpc_rps": statistics.median(r[0] for r in runs),
                   "grpc_cpu": statistics.median(r[1] for r in runs),
                   "ws_p50": statistics.median(statistics.median(t) for t in ws),
                   "ws_p99": statistics.median(sorted(t)[int(len(t) * 0.99) - 1] for t in ws),
                   "ws_mean": statistics.median(statistics.mean(t) for t in ws)}
            rows.append(row)
            print(f"  {target:8} gRPC {row['grpc_rps']:8.0f} calls/s  "
                  f"WebSocket p50 {row['ws_p50']:.0f} us p99 {row['ws_p99']:.0f} us",
                  flush=True)
    finally:
        for p in list(px.RUNNING):
            p.stop()
    shutil.rmtree(px.WORK, ignore_errors=True)
    print()
    print(f"| path | gRPC unary calls/s (h2load -c 10 -m 10, {args.grpc_bytes} B) | "
          "sidecar CPU s/100k calls | WebSocket echo p50 | p99 | mean |")
    print("|---" * 6 + "|")
    for r in rows:
        cpu = f"{r['grpc_cpu']:.2f}" if r["target"] == "sidecar" else "-"
        print(f"| {r['target']} | {r['grpc_rps']:.0f} | {cpu} | {r['ws_p50']:.0f} us | "
              f"{r['ws_p99']:.0f} us | {r['ws_mean']:.0f} us |")


if __name__ == "__main__":
    main()
