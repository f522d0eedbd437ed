#!/usr/bin/python3
"""Idle process memory (issue 17): where an idle sidecar's RSS goes.

Starts `sidecar run` (the embedded default config unless -c is given), waits
until it is up and idle, and prints /proc/PID/smaps_rollup (Rss, Pss,
Anonymous) and, per mapping (the binary, each shared library, heap, stacks,
other anonymous memory), Rss, Pss and Anonymous in KiB, summed over the
mapping's segments. Rss counts file pages shared with other processes (page
cache, e.g. libc mapped by everyone); Pss divides them among the processes
mapping them; Anonymous is private memory. Several runs print the median.

The embedded config listens on :8000 and :9901; as root the bench runs in a
network namespace of its own (`unshare -n`) so that it collides with nothing
else on the machine. With --requests N, an app (python3 http.server) answers
on :8080, N requests go through the sidecar after the first settle, and the
figures are taken after a second one: what the request path brings back.

  bench/idle.sh [build/sidecar] [--runs 3] [--settle 2] [-c config.yaml]
                [--env NAME=VALUE ...] [--top 14] [--requests N]
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict

FIELDS = ("Rss", "Pss", "Anonymous")


def read_rollup(pid):
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            m = re.match(r"(\w+):\s+(\d+) kB", line)
            if m and m.group(1) in FIELDS:
                out[m.group(1)] = int(m.group(2))
    return out


def mapping_name(path, exe):
    if not path:
        return "[anonymous]"
    if path == exe:
        return "sidecar (binary)"
    if path.startswith("["):
        return "[stack]" if path.startswith("[stack") else path
    base = os.path.basename(path)
    return re.sub(r"\.so[.0-9]*$", "", base)


def read_mappings(pid):
    exe = os.readlink(f"/proc/{pid}/exe")
    per = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    name = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = re.match(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$", line)
            if head:
                name = mapping_name(head.group(1).strip(), exe)
                continue
            m = re.match(r"(\w+):\s+(\d+) kB", line)
            if m and m.group(1) in FIELDS and name is not None:
                per[name][m.group(1)] += int(m.group(2))
    return per


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def send_requests(n):
    """n requests on keep-alive connections of 100 each to the embedded
    config's listener (:8000, the app on :8080)."""
    import http.client
    for i in range(0, n, 100):
        c = http.client.HTTPConnection("127.0.0.1", 8000, timeout=5)
        for _ in range(min(100, n - i)):
            c.request("GET", "/")
            c.getresponse().read()
        c.close()


def run_once(args):
    cmd = [os.path.abspath(args.binary), "run"]
    if args.config:
        cmd += ["-c", args.config]
    env = dict(os.environ)
    for kv in args.env:
        k, _, v = kv.partition("=")
        env[k] = v
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # The sidecar is the process that exec'd last; wait for its threads.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if os.readlink(f"/proc/{proc.pid}/exe").endswith("sidecar") and threads(proc.pid) > 1:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise SystemExit("sidecar did not start")
        time.sleep(args.settle)
        if args.requests:
            send_requests(args.requests)
            time.sleep(args.settle)
        if proc.poll() is not None:
            raise SystemExit(f"sidecar exited with {proc.returncode}")
        return read_rollup(proc.pid), read_mappings(proc.pid), threads(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binary", nargs="?", default="build/sidecar")
    p.add_argument("-c", "--config", default="")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--settle", type=float, default=2.0, help="seconds idle before measuring")
    p.add_argument("--env", action="append", default=[], help="NAME=VALUE for the sidecar")
    p.add_argument("--top", type=int, default=14, help="mappings listed one by one")
    p.add_argument("--requests", type=int, default=0,
                   help="then send this many requests (to an app on :8080) and measure again after --settle")
    args = p.parse_args()

    # As root: in a network namespace of our own (the embedded ports are
    # then free), with an app on :8080 when requests are sent.
    if os.geteuid() == 0 and shutil.which("unshare") and os.environ.get("SIDECAR_IDLE_NETNS") != "1":
        env = {**os.environ, "SIDECAR_IDLE_NETNS": "1"}
        inner = 'ip link set lo up 2>/dev/null; exec "$@"'
        return subprocess.call(["unshare", "-n", "sh", "-c", inner, "-", sys.executable, *sys.argv], env=env)
    app = None
    if args.requests:
        app = subprocess.Popen([sys.executable, "-m", "http.server", "8080", "--bind", "127.0.0.1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/tmp")
        time.sleep(0.5)
    try:
        report(args)
    finally:
        if app:
            app.terminate()
            app.wait()


def report(args):

    rollups, maps, nthreads = [], [], []
    for _ in range(args.runs):
        r, m, t = run_once(args)
        rollups.append(r)
        maps.append(m)
        nthreads.append(t)

    def med(values):
        return int(statistics.median(values))

    names = set().union(*maps)
    rows = {n: {f: med([m.get(n, {}).get(f, 0) for m in maps]) for f in FIELDS} for n in names}
    ordered = sorted(rows.items(), key=lambda kv: -kv[1]["Rss"])
    print(f"{'mapping':28} {'Rss':>7} {'Pss':>7} {'Anon':>7}   (KiB, median of {args.runs})")
    rest = dict.fromkeys(FIELDS, 0)
    for i, (n, v) in enumerate(ordered):
        if i < args.top:
            print(f"{n:28} {v['Rss']:7} {v['Pss']:7} {v['Anonymous']:7}")
        else:
            for f in FIELDS:
                rest[f] += v[f]
    if len(ordered) > args.top:
        label = f"{len(ordered) - args.top} others"
        print(f"{label:28} {rest['Rss']:7} {rest['Pss']:7} {rest['Anonymous']:7}")
    total = {f: med([r[f] for r in rollups]) for f in FIELDS}
    print(f"{'total (smaps_rollup)':28} {total['Rss']:7} {total['Pss']:7} {total['Anonymous']:7}"
          f"   threads {med(nthreads)}")
    print("runs Rss: " + " ".join(str(r["Rss"]) for r in rollups))


if __name__ == "__main__":
    sys.exit(main())
