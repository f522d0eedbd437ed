#!/usr/bin/python3
"""What ACME costs: issuance time against pebble on 127.0.0.1 (two names,
PEBBLE_VA_NOSLEEP=1) and the resident memory of a sidecar with `acme` once
its certificate is served, against the same listeners with the certificate
from files. Three runs each; prints JSON.

    bench/acme.py [build/sidecar]
"""
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
os.environ.setdefault("SIDECAR_BIN", os.path.abspath(sys.argv[1] if len(sys.argv) > 1
                                                     else os.path.join(HERE, "..", "build",
                                                                       "sidecar")))
import test_acme  # noqa: E402
from harness import Sidecar, Upstream, free_port, wait_for  # noqa: E402


def status(sc):
    return json.loads(sc.admin_get("/acme")[1])


def main():
    d = tempfile.mkdtemp(prefix="sidecar-bench-acme-")
    try:
        test_acme.make_server_cert(d)
        up = Upstream()
        http_port = free_port()
        pebble = test_acme.Pebble(d, http_port)
        storage = os.path.join(d, "storage")
        cfg = test_acme.acme_config(up, http_port, pebble.directory, storage,
                                    os.path.join(d, "ca.pem"))
        out = {"issue_seconds": [], "rss_kib_acme": [], "rss_kib_files": []}
        for _ in range(3):
            shutil.rmtree(storage, ignore_errors=True)
            sc = Sidecar(cfg)
            t0 = time.monotonic()
            wait_for(lambda: status(sc)["state"] == "valid" and status(sc)["certificate"], 30,
                     0.01, "the certificate")
            out["issue_seconds"].append(round(time.monotonic() - t0, 2))
            time.sleep(0.5)
            out["rss_kib_acme"].append(sc.rss_kib())
            sc.stop()
        cert, key = os.path.join(d, "server.pem"), os.path.join(d, "server.key")
        files = cfg.split("acme:")[0].replace(
            "tls: {}", f"tls: {{ certificates: [ {{ cert: {cert}, key: {key} }} ] }}")
        for _ in range(3):
            sc = Sidecar(files)
            time.sleep(1.0)
            out["rss_kib_files"].append(sc.rss_kib())
            sc.stop()
        pebble.stop()
        up.stop()
        print(json.dumps(out))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
