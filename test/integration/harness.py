"""Starts real processes on 127.0.0.1 for the integration tests: the sidecar
binary ($SIDECAR_BIN), the test upstream (upstream.py), and clients."""
import atexit
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("SIDECAR_BIN") or os.path.join(HERE, "..", "..", "build", "sidecar")
PYTHON = "/usr/bin/python3"

# Every process a test starts, so that none outlives the test run, whatever
# the test did.
_PROCESSES = []


@atexit.register
def _kill_leftovers():
    for p in _PROCESSES:
        if p.poll() is None:
            p.kill()
            p.wait()


def free_port():
    """A port nobody listens on right now (for peers that cannot take port 0)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


class Upstream:
    """The test upstream (upstream.py) on 127.0.0.1, a port of its choosing."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([PYTHON, os.path.join(HERE, "upstream.py"), *args],
                                     stdout=subprocess.PIPE, text=True)
        _PROCESSES.append(self.proc)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"upstream did not start: {line!r}")
        self.port = int(line.split()[-1])
        self.address = f"127.0.0.1:{self.port}"

    def stats(self):
        with urllib.request.urlopen(f"http://{self.address}/stats", timeout=5) as r:
            return json.load(r)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc.stdout.close()


class Sidecar:
    """The sidecar binary with a config written to a temporary file.

    `config` is YAML; "{admin}" in it is not needed: the admin listener is on
    127.0.0.1:0 unless the config sets one. Listener ports should be 0; the
    real ones are read from the admin endpoint.
    """

    def __init__(self, config=None, app=None, args=(), env=None, wait=True):
        self.dir = tempfile.TemporaryDirectory(prefix="sidecar-test-")
        self.address_file = os.path.join(self.dir.name, "admin-address")
        cmd = [BIN, "run", "--admin-address-path", self.address_file, *args]
        if config is not None:
            config = textwrap.dedent(config)
            if "admin:" not in config:
                config = "admin: { address: 127.0.0.1:0 }\n" + config
            self.config_path = os.path.join(self.dir.name, "sidecar.yaml")
            with open(self.config_path, "w") as f:
                f.write(config)
            cmd += ["-c", self.config_path]
        if app:
            cmd += ["--", *app]
        self.log_path = os.path.join(self.dir.name, "sidecar.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        _PROCESSES.append(self.proc)
        self.admin = None
        self.listeners = {}
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=10):
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"sidecar exited with {self.proc.returncode}:\n{self.output()}")
            if not os.path.exists(self.address_file):
                return False
            with open(self.address_file) as f:
                return f.read().strip()
        self.admin = wait_for(ready, timeout, what="the admin address")
        for item in json.loads(self.admin_get("/listeners")[1]):
            host, port = item["address"].rsplit(":", 1)
            self.listeners[item["name"]] = int(port)

    def port(self, listener=None):
        """The port of `listener`; without a name, of the listener whose name
        sorts first (/listeners is ordered by name, not by the config), so a
        test with several listeners names the one it means."""
        if listener is None:
            return next(iter(self.listeners.values()))
        return self.listeners[listener]

    def url(self, path, listener=None):
        return f"http://127.0.0.1:{self.port(listener)}{path}"

    def admin_get(self, path, method="GET"):
        req = urllib.request.Request(f"http://{self.admin}{path}", method=method)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def output(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def peak_rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=15):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.dir.cleanup()


def proxy_config(upstream_address, **listener):
    """A config with one listener on 127.0.0.1:0 routing everything to one cluster."""
    extra = "".join(f"    {k}: {v}\n" for k, v in listener.items())
    return f"""
workers: 2
clusters:
  - name: app
    endpoints: [ "{upstream_address}" ]
    connect_timeout: 1s
listeners:
  - name: inbound
    address: 127.0.0.1:0
{extra}    routes:
      - match: {{ prefix: / }}
        cluster: app
"""


def curl(*args, timeout=120):
    """Runs curl; returns (exit code, stdout bytes, stderr text)."""
    p = subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def raw(port, data, timeout=5.0, read_until_close=True):
    """Sends raw bytes; returns everything read until the peer closes (or the
    timeout passes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            if not read_until_close and b"\r\n\r\n" in out:
                break
        return out


def status_of(response):
    """The status code of the first response in raw bytes, or 0."""
    if not response.startswith(b"HTTP/1.1 "):
        return 0
    return int(response[9:12])


def parse_metrics(text):
    """{(name, frozenset(labels)): value} from the Prometheus text format."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metric_value(metrics, name, **labels):
    """The sum of the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, l), v in metrics.items() if n == name and want <= set(l))


def run_tests():
    import unittest
    if not os.path.exists(BIN):
        print(f"sidecar binary not found at {BIN}", file=sys.stderr)
        sys.exit(1)
    unittest.main(verbosity=2)
