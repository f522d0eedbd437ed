#!/usr/bin/python3
"""An app that, when told to stop, still needs the network: on SIGTERM it
calls a service through the sidecar's outbound listener (URL in argv[1]) and
exits 0 if that worked, 1 if not."""
import signal
import sys
import time
import urllib.request


def on_sigterm(*_):
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
            ok = r.read() == b"hello\n"
    except Exception as e:  # noqa: BLE001 - any failure is the answer
        print("outbound call failed:", e, flush=True)
        ok = False
    sys.exit(0 if ok else 1)


signal.signal(signal.SIGTERM, on_sigterm)
while True:
    time.sleep(1)
