"""Receivers for the log shipping tests, all on 127.0.0.1:

- LineReceiver: a TCP server keeping every line it gets (json_lines, raw);
  can go down and come back on the same port.
- HttpReceiver: an HTTP/1.1 server checking the documented wire formats of
  the http, loki and elasticsearch outputs (Loki and Elasticsearch are not
  installable here), answering 200/429/500/400 or per-item _bulk errors on
  demand.
- Rsyslog, SyslogNg: the real daemons from Debian as unprivileged foreground
  receivers (TCP with octet counting, UDP), each with its own config and
  work directory, writing what they receive to a file.
"""
import gzip
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import _PROCESSES, free_port, wait_for

SYSLOG_NG_ROOT = "/opt/sidecar-peers/syslog-ng"


class LineReceiver:
    def __init__(self, port=0):
        self.lines = []
        self.lock = threading.Lock()
        self.port = port
        self.sock = None
        self.conns = []
        self.start()

    def start(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        self.port = s.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.sock = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._read, args=(c,), daemon=True).start()

    def _read(self, c):
        buf = b""
        while True:
            try:
                data = c.recv(1 << 20)
            except OSError:
                return
            if not data:
                return
            buf += data
            *complete, buf = buf.split(b"\n")
            with self.lock:
                self.lines.extend(x.decode("utf-8", "replace") for x in complete)

    def stop(self):
        """Goes down: closes the listener and every connection."""
        if self.sock:
            # close() alone leaves the socket listening while the accept
            # thread is blocked in accept(): shutdown() wakes it and stops it.
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
            self.sock = None
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self.conns = []

    def got(self):
        with self.lock:
            return list(self.lines)

    def records(self):
        return [json.loads(x) for x in self.got()]

    def wait_lines(self, n, timeout=20):
        return wait_for(lambda: len(self.got()) >= n and self.got(), timeout,
                        what=f"{n} lines at the receiver (have {len(self.got())})")


class HttpReceiver:
    """Records (path, headers, decoded body); `plan` is a list of statuses
    used once each, in order ("bulk_errors" answers a _bulk with per-item
    errors: the first item 400, the second 429, the rest 201)."""

    def __init__(self, port=0):
        self.requests = []
        self.plan = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with receiver.lock:
                    action = receiver.plan.pop(0) if receiver.plan else 200
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                              "body": body, "status": action})
                if action == "bulk_errors":
                    lines = body.decode().strip().split("\n")
                    items = []
                    for i in range(len(lines) // 2):
                        st = 400 if i == 0 else 429 if i == 1 else 201
                        item = {"status": st}
                        if st >= 300:
                            item["error"] = {"type": "x", "reason": f"item {i} failed"}
                        items.append({"create": item})
                    out = json.dumps({"took": 1, "errors": True, "items": items}).encode()
                    status = 200
                elif self.path.endswith("/_bulk") and action == 200:
                    n = len(body.decode().strip().split("\n")) // 2
                    out = json.dumps({"took": 1, "errors": False,
                                      "items": [{"create": {"status": 201}}] * n}).encode()
                    status = 200
                else:
                    status = action
                    out = b"" if status == 204 else f"status {status}\n".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ok_requests(self):
        with self.lock:
            return [r for r in self.requests if r["status"] in (200, 204)]

    def all_requests(self):
        with self.lock:
            return list(self.requests)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class _Daemon:
    def _start(self, cmd, env=None):
        self.log = open(os.path.join(self.dir, "daemon.log"), "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        _PROCESSES.append(self.proc)

    def messages(self):
        try:
            with open(self.out, "rb") as f:
                return [x.decode("utf-8", "replace") for x in f.read().split(b"\n") if x]
        except FileNotFoundError:
            return []

    def wait_messages(self, n, timeout=20):
        return wait_for(lambda: len(self.messages()) >= n and self.messages(), timeout,
                        what=f"{n} messages at {type(self).__name__} (have {len(self.messages())})")

    def wait_port(self, port, udp=False):
        def up():
            if self.proc.poll() is not None:
                with open(os.path.join(self.dir, "daemon.log")) as f:
                    raise RuntimeError(f"{type(self).__name__} exited: {f.read()}")
            if udp:
                return True
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return True
            except OSError:
                return False
        wait_for(up, 10, what=f"{type(self).__name__} on {port}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Rsyslog(_Daemon):
    """rsyslogd -n with imtcp (octet counting is accepted by default) and
    imudp on free ports; every message's fields go to a file, one per line:
    HOSTNAME|APP-NAME|PRI|MSG."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="rsyslog-test-")
        self.out = os.path.join(self.dir, "out.log")
        self.tcp_port = free_port()
        self.udp_port = free_port()
        conf = os.path.join(self.dir, "rsyslog.conf")
        with open(conf, "w") as f:
            f.write(f"""
global(workDirectory="{self.dir}" maxMessageSize="64k")
module(load="imtcp")
module(load="imudp")
input(type="imtcp" address="127.0.0.1" port="{self.tcp_port}")
input(type="imudp" address="127.0.0.1" port="{self.udp_port}")
template(name="fields" type="string" string="%HOSTNAME%|%APP-NAME%|%PRI%|%msg%\\n")
action(type="omfile" file="{self.out}" template="fields")
""")
        self._start(["rsyslogd", "-n", "-f", conf, "-i", os.path.join(self.dir, "pid")])
        self.wait_port(self.tcp_port)


class SyslogNg(_Daemon):
    """syslog-ng -F (unpacked from Debian's package, see
    scripts/install-deps.sh) with syslog() sources (RFC 5424, octet
    counting on TCP) on free ports; writes HOST|PROGRAM|PRI|MSG lines."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="syslog-ng-test-")
        self.out = os.path.join(self.dir, "out.log")
        self.tcp_port = free_port()
        self.udp_port = free_port()
        conf = os.path.join(self.dir, "syslog-ng.conf")
        with open(conf, "w") as f:
            f.write(f"""@version: 3.38
options {{ keep-hostname(yes); log-msg-size(65536); }};
source s_tcp {{ syslog(ip(127.0.0.1) port({self.tcp_port}) transport("tcp")); }};
source s_udp {{ syslog(ip(127.0.0.1) port({self.udp_port}) transport("udp")); }};
destination d_file {{ file("{self.out}" template("$HOST|$PROGRAM|$PRI|$MSG\\n")); }};
log {{ source(s_tcp); source(s_udp); destination(d_file); flags(flow-control); }};
""")
        lib = os.path.join(SYSLOG_NG_ROOT, "usr/lib/syslog-ng")
        self._start([os.path.join(SYSLOG_NG_ROOT, "usr/sbin/syslog-ng"), "-F",
                     f"--module-path={lib}/3.38", "-f", conf,
                     f"--persist-file={self.dir}/persist", f"--pidfile={self.dir}/pid",
                     f"--control={self.dir}/ctl"],
                    env={"LD_LIBRARY_PATH": lib})
        self.wait_port(self.tcp_port)


def metric(sidecar, name, **labels):
    total = 0.0
    for line in sidecar.admin_get("/metrics")[1].splitlines():
        if not (line.startswith(name + "{") or line.startswith(name + " ")):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def logs_status(sidecar):
    return json.loads(sidecar.admin_get("/logs")[1])


def numbered(records, key="n"):
    """The record numbers seen, from JSON records or raw 'n=' lines."""
    out = []
    for r in records:
        if isinstance(r, dict):
            out.append(int(r[key]))
        else:
            out.append(int(r.split("n=")[1].split()[0]))
    return out
