#!/usr/bin/python3
"""Log shipping benchmark (issue 11's method), side by side:

1. Throughput: a file of JSON lines of ~200 bytes (SIZE_MIB, default 1 GiB)
   read from the start and sent over TCP to a counting receiver
   (bench/logship_recv.py); the shipper pinned to CPU 1, the receiver to
   CPU 0. MiB/s from the receiver's first to last byte, CPU seconds per GiB
   (the shipper's utime+stime), peak RSS (VmHWM); medians of RUNS (3).
2. Rotation: 50,000 numbered lines/s for ROTATE_SECONDS (30) with one
   rename-and-create rotation and one copytruncate; lines lost and
   duplicated, counted at the receiver. For sidecar also a SIGTERM restart
   and a SIGKILL restart in the middle of the run.

Shippers: sidecar (JSON parsed and re-encoded; raw lines), rsyslog (imfile
-> omfwd), syslog-ng (file -> network, unpacked from Debian's package by
scripts/install-deps.sh), and `tail -F | socat` (no parsing, no state: the
floor). Fluent Bit and Fluentd are not in Debian 12.

Usage: bench/logship.py build/sidecar     (prints a Markdown table)
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SIDECAR = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/sidecar")
SIZE_MIB = int(os.environ.get("SIZE_MIB", "1024"))
RUNS = int(os.environ.get("RUNS", "3"))
ROTATE_SECONDS = int(os.environ.get("ROTATE_SECONDS", "30"))
RATE = 50000
SYSLOG_NG = "/opt/sidecar-peers/syslog-ng"
WORK = tempfile.mkdtemp(prefix="logship-bench-")
CACHE = os.environ.get("BENCH_CACHE", "/tmp/logship-bench-data")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def make_file():
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, f"json-{SIZE_MIB}.log")
    if os.path.exists(path):
        return path
    log(f"writing {SIZE_MIB} MiB of JSON lines to {path}")
    levels = ["info", "warn", "error", "debug"]
    with open(path + ".tmp", "w") as f:
        size, n = 0, 0
        while size < SIZE_MIB << 20:
            chunk = []
            for _ in range(10000):
                line = ('{"time":"2026-11-21T12:00:%02d.%03dZ","level":"%s","msg":"request handled",'
                        '"method":"GET","path":"/api/v1/items/%d","status":200,"duration_ms":%d.%02d,'
                        '"user":"user-%05d","trace_id":"%016x","n":%d}\n' % (n % 60, n % 1000, levels[n % 4], n * 7 % 999983,
                                                         n % 97, n % 100, n % 99991, n * 2654435761, n))
                chunk.append(line)
                n += 1
            text = "".join(chunk)
            f.write(text)
            size += len(text)
    os.rename(path + ".tmp", path)
    return path


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_hwm(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0


class Receiver:
    def __init__(self, expect=0, numbers=False):
        args = ["taskset", "-c", "0", "/usr/bin/python3", os.path.join(HERE, "logship_recv.py"), "0",
                "--timeout", "900"]
        if expect:
            args += ["--expect", str(expect)]
        if numbers:
            args.append("--numbers")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline().split()[-1])

    def result(self, timeout=900):
        line = self.proc.stdout.readline()
        self.proc.wait(timeout=timeout)
        return json.loads(line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.result()


# --- shippers: start(path, port, dir) -> list of pids; stop(pids) ----------

def start_sidecar(path, port, d, parser="json", fmt="json_lines", pin=True):
    parser_line = f"      parser: {parser}\n" if parser else ""
    with open(os.path.join(d, "sidecar.yaml"), "w") as f:
        f.write(f"""admin: {{ address: 127.0.0.1:0 }}
workers: 1
logs:
  state_dir: {d}/state
  inputs:
    - name: app
      file: {{ paths: [ "{path}" ], rotate_wait: 2s }}
{parser_line}  outputs:
    - name: out
      tcp: {{ address: 127.0.0.1:{port}, format: {fmt} }}
      retry: {{ initial_backoff: 100ms, max_backoff: 500ms }}
""")
    cmd = [SIDECAR, "run", "-c", os.path.join(d, "sidecar.yaml")]
    if pin:
        cmd = ["taskset", "-c", "1"] + cmd
    p = subprocess.Popen(cmd, stdout=open(os.path.join(d, "sidecar.log"), "ab"),
                         stderr=subprocess.STDOUT)
    return [p]


def start_rsyslog(path, port, d):
    os.makedirs(os.path.join(d, "work"), exist_ok=True)
    conf = os.path.join(d, "rsyslog.conf")
    with open(conf, "w") as f:
        f.write(f"""global(workDirectory="{d}/work" maxMessageSize="64k")
module(load="imfile")
template(name="line" type="string" string="%msg%\\n")
input(type="imfile" File="{path}" Tag="app" reopenOnTruncate="on" freshStartTail="off")
action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp" template="line")
""")
    p = subprocess.Popen(["taskset", "-c", "1", "rsyslogd", "-n", "-f", conf, "-i",
                          os.path.join(d, "rsyslog.pid")],
                         stdout=open(os.path.join(d, "rsyslog.log"), "ab"), stderr=subprocess.STDOUT)
    return [p]


def start_syslog_ng(path, port, d):
    conf = os.path.join(d, "syslog-ng.conf")
    with open(conf, "w") as f:
        f.write(f"""@version: 3.38
options {{ log-msg-size(65536); flush-lines(100); }};
source s {{ file("{path}" follow-freq(1) flags(no-parse) log-fetch-limit(1000) log-iw-size(100000)); }};
destination d {{ network("127.0.0.1" port({port}) transport("tcp") template("$MSG\\n")); }};
log {{ source(s); destination(d); flags(flow-control); }};
""")
    lib = os.path.join(SYSLOG_NG, "usr/lib/syslog-ng")
    p = subprocess.Popen(["taskset", "-c", "1", os.path.join(SYSLOG_NG, "usr/sbin/syslog-ng"), "-F",
                          f"--module-path={lib}/3.38", "-f", conf, f"--persist-file={d}/persist",
                          f"--pidfile={d}/pid", f"--control={d}/ctl"],
                         stdout=open(os.path.join(d, "syslog-ng.log"), "ab"), stderr=subprocess.STDOUT,
                         env={**os.environ, "LD_LIBRARY_PATH": lib})
    return [p]


def start_tail_socat(path, port, d):
    tail = subprocess.Popen(["taskset", "-c", "1", "tail", "-n", "+1", "-F", path],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    socat = subprocess.Popen(["taskset", "-c", "1", "socat", "-u", "-", f"TCP:127.0.0.1:{port}"],
                             stdin=tail.stdout)
    tail.stdout.close()
    return [tail, socat]


SHIPPERS = {
    "sidecar (json parse + re-encode)": lambda p, port, d: start_sidecar(p, port, d),
    "sidecar (raw lines)": lambda p, port, d: start_sidecar(p, port, d, parser=None, fmt="raw"),
    "rsyslog 8.2302 imfile -> omfwd": start_rsyslog,
    "syslog-ng 3.38 file -> network": start_syslog_ng,
    "`tail -F | socat` (the floor)": start_tail_socat,
}


def stop_all(procs):
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def throughput(name, start, path, lines):
    results = []
    for run in range(RUNS):
        d = tempfile.mkdtemp(dir=WORK)
        rx = Receiver(expect=lines)
        procs = start(path, rx.port, d)
        try:
            r = rx.result()
            cpu = sum(proc_cpu(p.pid) for p in procs)
            hwm = sum(proc_hwm(p.pid) for p in procs)
        finally:
            stop_all(procs)
        mib = r["bytes"] / (1 << 20)
        results.append((mib / r["seconds"], cpu / (r["bytes"] / (1 << 30)), hwm))
        log(f"  {name} run {run + 1}: {results[-1][0]:.0f} MiB/s, {results[-1][1]:.2f} CPU-s/GiB, "
            f"{hwm:.1f} MiB")
    return tuple(statistics.median(x[i] for x in results) for i in range(3))


def writer(path, seconds, stop_at, events):
    """50,000 numbered lines a second; a rename rotation at 1/3 and a
    copytruncate at 2/3 of the run; `events` are (fraction, fn) run once."""
    total = RATE * seconds
    f = open(path, "a")
    start = time.monotonic()
    done = set()
    pad = "x" * 120
    for i in range(0, total, 500):
        text = "".join('{"n":%d,"msg":"%s"}\n' % (k, pad) for k in range(i, min(i + 500, total)))
        f.write(text)
        f.flush()
        frac = i / total
        if frac >= 1 / 3 and "rename" not in done:
            done.add("rename")
            f.close()
            os.rename(path, path + ".1")
            f = open(path, "a")
        if frac >= 2 / 3 and "copytruncate" not in done:
            done.add("copytruncate")
            shutil.copyfile(path, path + ".2")
            os.truncate(path, 0)
        for at, fn in events:
            if frac >= at and fn not in done:
                done.add(fn)
                fn()
        delay = start + (i + 500) / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    f.close()
    return total


def rotation(name, start, restart=None):
    d = tempfile.mkdtemp(dir=WORK)
    logdir = os.path.join(d, "logs")
    os.makedirs(logdir)
    path = os.path.join(logdir, "app.log")
    open(path, "w").close()
    rx = Receiver(numbers=True)
    procs = start(path, rx.port, d)
    time.sleep(1)
    events = []
    if restart:
        def bounce():
            for p in procs:
                p.send_signal(restart)
                p.wait()
            time.sleep(1)
            procs[:] = start(path, rx.port, d)
        events.append((0.5, bounce))
    total = writer(path, ROTATE_SECONDS, None, events)
    # Let it finish: until the receiver has seen everything, or 20 s.
    time.sleep(20 if restart else 10)
    r = rx.stop()
    stop_all(procs)
    lost = total - r.get("distinct", 0)
    log(f"  {name}: {total} lines, lost {lost}, duplicated {r.get('duplicates')}")
    return lost, r.get("duplicates", 0)


def main():
    path = make_file()
    with open(path, "rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))
    rows = []
    for name, start in SHIPPERS.items():
        if "syslog-ng" in name and not os.path.exists(SYSLOG_NG):
            continue
        log(f"{name}: throughput")
        mibs, cpu, rss = throughput(name, start, path, lines)
        log(f"{name}: rotation")
        lost, dup = rotation(name, start)
        rows.append((name, mibs, cpu, rss, lost, dup))
    extra = []
    for label, sig in (("SIGTERM", signal.SIGTERM), ("SIGKILL", signal.SIGKILL)):
        log(f"sidecar rotation with a {label} restart")
        lost, dup = rotation(f"sidecar, {label} restart", SHIPPERS["sidecar (json parse + re-encode)"], sig)
        extra.append((label, lost, dup))
    print(f"\nFile -> TCP, {SIZE_MIB} MiB of ~200-byte JSON lines, medians of {RUNS}; rotation: "
          f"{RATE} lines/s for {ROTATE_SECONDS} s with a rename and a copytruncate.\n")
    print("| shipper | MiB/s | CPU s per GiB | peak RSS | lines lost in rotation | duplicated |")
    print("|---|---|---|---|---|---|")
    for name, mibs, cpu, rss, lost, dup in rows:
        print(f"| {name} | {mibs:.0f} | {cpu:.2f} | {rss:.1f} MiB | {lost:,} | {dup:,} |")
    for label, lost, dup in extra:
        print(f"| sidecar rotation run with a {label} restart in the middle | | | | {lost:,} | {dup:,} |")
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
