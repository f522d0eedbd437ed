"""A real etcd (Debian's etcd-server 3.4) for the registry tests: one member
or a cluster of three on 127.0.0.1 with free ports and a temporary data
directory, optionally with TLS and client certificates; etcdctl (etcd-client)
to read and change what the sidecar wrote."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import harness

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"


class Etcd:
    def __init__(self, members=1, tls=None, extra=()):
        """`tls`: {"ca", "cert", "key"} (server pair, with client-cert-auth)."""
        self.dir = tempfile.TemporaryDirectory(prefix="sidecar-etcd-")
        self.tls = tls
        self.extra = list(extra)
        scheme = "https" if tls else "http"
        self.names = [f"m{i}" for i in range(members)]
        self.client_urls = [f"{scheme}://127.0.0.1:{harness.free_port()}" for _ in self.names]
        self.peer_urls = [f"http://127.0.0.1:{harness.free_port()}" for _ in self.names]
        self.procs = [None] * members
        self.logs = [os.path.join(self.dir.name, f"{n}.log") for n in self.names]
        for i in range(members):
            self.start_member(i)
        self.wait_healthy()

    def start_member(self, i):
        cluster = ",".join(f"{n}={u}" for n, u in zip(self.names, self.peer_urls))
        cmd = [ETCD, "--name", self.names[i],
               "--data-dir", os.path.join(self.dir.name, self.names[i]),
               "--listen-client-urls", self.client_urls[i],
               "--advertise-client-urls", self.client_urls[i],
               "--listen-peer-urls", self.peer_urls[i],
               "--initial-advertise-peer-urls", self.peer_urls[i],
               "--initial-cluster", cluster, "--initial-cluster-state", "new",
               "--initial-cluster-token", os.path.basename(self.dir.name),
               "--heartbeat-interval", "50", "--election-timeout", "500",
               "--logger", "zap", "--log-level", "warn", *self.extra]
        if self.tls:
            cmd += ["--cert-file", self.tls["cert"], "--key-file", self.tls["key"],
                    "--trusted-ca-file", self.tls["ca"], "--client-cert-auth"]
        log = open(self.logs[i], "ab")
        self.procs[i] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        harness._PROCESSES.append(self.procs[i])

    def stop_member(self, i, sig=signal.SIGTERM):
        p = self.procs[i]
        if p is not None and p.poll() is None:
            p.send_signal(sig)
            p.wait(timeout=10)
        self.procs[i] = None

    def live(self):
        return [i for i, p in enumerate(self.procs) if p is not None and p.poll() is None]

    def ctl(self, *args, member=None, user=None, check=True, timeout=10):
        """Runs etcdctl against the live members (or one); returns stdout."""
        urls = [self.client_urls[member]] if member is not None else \
            [self.client_urls[i] for i in self.live()]
        cmd = [ETCDCTL, "--endpoints", ",".join(urls), "--command-timeout", "3s",
               "--dial-timeout", "2s"]
        if self.tls:
            cmd += ["--cacert", self.tls["ca"], "--cert", self.tls["client_cert"],
                    "--key", self.tls["client_key"]]
        if user:
            cmd += ["--user", user]
        p = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, "ETCDCTL_API": "3"})
        if check and p.returncode != 0:
            raise RuntimeError(f"etcdctl {' '.join(args)}: {p.stderr.strip()}")
        return p.stdout

    def get_prefix(self, prefix, **kw):
        """{key: value} under `prefix`."""
        out = self.ctl("get", "--prefix", prefix, "-w", "json", **kw)
        doc = json.loads(out) if out.strip() else {}
        import base64
        return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode()
                for kv in doc.get("kvs", [])}

    def try_get_prefix(self, prefix, **kw):
        try:
            return self.get_prefix(prefix, **kw)
        except (RuntimeError, subprocess.TimeoutExpired):
            return None

    def leader(self):
        """The index of the leader among the live members."""
        out = self.ctl("endpoint", "status", "-w", "json")
        for st in json.loads(out):
            if st["Status"]["leader"] == st["Status"]["header"]["member_id"]:
                return self.client_urls.index(st["Endpoint"])
        return None

    def wait_healthy(self, timeout=20):
        def healthy():
            try:
                self.ctl("endpoint", "health", timeout=5)
                return True
            except (RuntimeError, subprocess.TimeoutExpired):
                return False
        harness.wait_for(healthy, timeout, interval=0.1, what="etcd to be healthy")

    def stop(self):
        for i in range(len(self.procs)):
            p = self.procs[i]
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        self.dir.cleanup()
