#!/usr/bin/python3
"""A counting receiver for bench/logship.sh and the tests: accepts TCP
connections on 127.0.0.1 (port from argv[1], 0 for any) and counts lines
(and, with --numbers, the distinct values of "n" / n=, for losses and
duplicates). Prints "listening on PORT" first; on SIGTERM or when --expect
lines arrived, prints a JSON summary and exits."""
import argparse
import json
import re
import selectors
import signal
import socket
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int, nargs="?", default=0)
ap.add_argument("--expect", type=int, default=0)
ap.add_argument("--numbers", action="store_true")
ap.add_argument("--timeout", type=float, default=600)
args = ap.parse_args()

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", args.port))
srv.listen(16)
srv.setblocking(False)
print(f"listening on {srv.getsockname()[1]}", flush=True)

sel = selectors.DefaultSelector()
sel.register(srv, selectors.EVENT_READ)
lines = 0
nbytes = 0
first = None
seen = {}
partial = {}
number = re.compile(rb'"n":(\d+)|\bn=(\d+)')
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
deadline = time.monotonic() + args.timeout
while not stop and time.monotonic() < deadline:
    for key, _ in sel.select(timeout=0.2):
        if key.fileobj is srv:
            c, _ = srv.accept()
            c.setblocking(False)
            sel.register(c, selectors.EVENT_READ)
            partial[c] = b""
            continue
        c = key.fileobj
        try:
            data = c.recv(1 << 20)
        except (BlockingIOError, ConnectionResetError):
            data = b"" if not isinstance(sys.exc_info()[1], BlockingIOError) else None
        if data is None:
            continue
        if not data:
            sel.unregister(c)
            c.close()
            continue
        if first is None:
            first = time.monotonic()
        nbytes += len(data)
        lines += data.count(b"\n")
        if args.numbers:
            buf = partial[c] + data
            cut = buf.rfind(b"\n") + 1
            for m in number.finditer(buf, 0, cut):
                k = int(m.group(1) or m.group(2))
                seen[k] = seen.get(k, 0) + 1
            partial[c] = buf[cut:]
    if args.expect and lines >= args.expect:
        break
summary = {"lines": lines, "bytes": nbytes,
           "seconds": (time.monotonic() - first) if first else 0}
if args.numbers:
    summary["distinct"] = len(seen)
    summary["duplicates"] = sum(v - 1 for v in seen.values())
    summary["max"] = max(seen) if seen else -1
print(json.dumps(summary), flush=True)
