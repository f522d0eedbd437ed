#!/usr/bin/python3
"""Keeping a folder in step with git (git daemon, git http-backend, file://)
and HTTP sources: revisions, atomic switches, failures, hooks, once mode."""
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
import sys
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gitserver import GitDaemon, GitHttp, Repo, git
from harness import BIN, HERE, PYTHON, Sidecar, run_tests, wait_for


def read(path):
    with open(path) as f:
        return f.read()


def sync_config(root, source, period="300ms", extra=""):
    return f"""
workers: 1
sync:
  - name: site
    {source}
    root: {root}
    period: {period}
{extra}"""


class SyncTestBase(unittest.TestCase):
    def setUp(self):
        self.repo = Repo()
        self.addCleanup(self.repo.cleanup)
        self.root = tempfile.mkdtemp(prefix="sidecar-sync-")
        self.addCleanup(shutil.rmtree, self.root, True)

    def sidecar(self, config, **kwargs):
        sc = Sidecar(config, **kwargs)
        self.addCleanup(sc.stop)
        return sc

    def status(self, sc):
        return json.loads(sc.admin_get("/sync")[1])["syncs"][0]

    def live(self, name="index.html"):
        path = os.path.join(self.root, "current", name)
        return read(path) if os.path.exists(path) else None

    def metric(self, sc, name, **labels):
        text = sc.admin_get("/metrics")[1]
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total


class GitDaemonTest(SyncTestBase):
    def setUp(self):
        super().setUp()
        self.first = self.repo.commit({"index.html": "v1\n", "sub/page.txt": "page v1\n"})
        self.daemon = GitDaemon(self.repo)
        self.addCleanup(self.daemon.stop)

    def source(self, ref="main"):
        return f"git: {{ repo: \"{self.daemon.url}\", ref: {ref} }}"

    def test_first_sync_then_new_commits_within_a_period(self):
        sc = self.sidecar(sync_config(self.root, self.source()))
        wait_for(lambda: sc.admin_get("/ready")[0] == 200, 10, what="the first sync")
        self.assertEqual(self.live(), "v1\n")
        self.assertEqual(self.live("sub/page.txt"), "page v1\n")
        self.assertEqual(os.readlink(os.path.join(self.root, "current")),
                         f".revisions/{self.first}")
        second = self.repo.commit({"index.html": "v2\n"})
        start = time.monotonic()
        wait_for(lambda: self.live() == "v2\n", 5, 0.02, "the second commit")
        self.assertLess(time.monotonic() - start, 1.5)  # within one period (300ms) and a fetch
        st = self.status(sc)
        self.assertEqual(st["revision"], second)
        self.assertEqual(self.metric(sc, "sidecar_sync_total", result="success"), 2)
        self.assertEqual(self.metric(sc, "sidecar_sync_revision_info", revision=second), 1)
        wait_for(lambda: self.metric(sc, "sidecar_sync_total", result="unchanged") > 0, 5,
                 what="an unchanged sync")
        # The old revision stays for keep_old_for (30s by default).
        self.assertTrue(os.path.isdir(os.path.join(self.root, ".revisions", self.first)))

    def test_forced_push(self):
        sc = self.sidecar(sync_config(self.root, self.source()))
        wait_for(lambda: self.live() == "v1\n", 10, what="the first sync")
        rewritten = self.repo.commit({"index.html": "rewritten\n"}, amend=True, force=True)
        wait_for(lambda: self.live() == "rewritten\n", 5, 0.02, "the forced push")
        self.assertEqual(self.status(sc)["revision"], rewritten)

    def test_tag_pin(self):
        self.repo.tag("v1")
        self.repo.commit({"index.html": "v2\n"})
        sc = self.sidecar(sync_config(self.root, self.source("v1")))
        wait_for(lambda: sc.admin_get("/ready")[0] == 200, 10, what="the first sync")
        self.assertEqual(self.live(), "v1\n")
        self.assertEqual(self.status(sc)["revision"], self.first)  # the commit, not the tag object
        self.repo.commit({"index.html": "v3\n"})
        time.sleep(1)
        self.assertEqual(self.live(), "v1\n")

    def test_deleted_branch_keeps_the_previous_revision(self):
        self.repo.commit({"index.html": "feature\n"}, branch="feature")
        sc = self.sidecar(sync_config(self.root, self.source("feature")))
        wait_for(lambda: self.live() == "feature\n", 10, what="the first sync")
        self.repo.delete_branch("feature")
        wait_for(lambda: "not found" in self.status(sc)["last_error"], 5, what="the error")
        self.assertIn("ref 'feature' not found", self.status(sc)["last_error"])
        self.assertEqual(self.live(), "feature\n")
        self.assertEqual(sc.admin_get("/ready")[0], 200)  # max_failures: 0, never unready

    def test_server_down_keeps_the_revision_and_retries_soon(self):
        sc = self.sidecar(sync_config(self.root, self.source(),
                                      extra="    max_failures: 2\n"))
        wait_for(lambda: self.live() == "v1\n", 10, what="the first sync")
        self.daemon.stop()
        wait_for(lambda: self.status(sc)["consecutive_failures"] >= 2, 20, what="failures")
        self.assertEqual(self.live(), "v1\n")
        self.assertEqual(sc.admin_get("/ready")[0], 503)  # max_failures reached
        self.assertIn("cannot reach", self.status(sc)["last_error"])
        self.assertGreaterEqual(self.metric(sc, "sidecar_sync_consecutive_failures"), 2)
        # After a failure the next attempt comes after period/10 (30ms), not the period.
        delays = [int(d) for d in re.findall(r"next attempt in (\d+)ms", sc.output())]
        self.assertLessEqual(delays[0], 40)
        # A trigger while down fails again, quietly, and changes nothing.
        self.assertEqual(sc.admin_get("/sync", "POST")[0], 200)
        time.sleep(0.5)
        self.assertEqual(self.live(), "v1\n")

    def test_once_mode_for_an_init_container(self):
        sc = self.sidecar(sync_config(self.root, self.source()).replace(
            "period: 300ms", "period: 300ms\n    once: true"), wait=False)
        self.assertEqual(sc.wait(), 0, sc.output())
        self.assertEqual(self.live(), "v1\n")
        bad = self.sidecar(sync_config(tempfile.mkdtemp(dir=self.root),
                                       "git: { repo: \"git://127.0.0.1:9/nothing.git\" }")
                           .replace("period: 300ms", "period: 300ms\n    once: true"), wait=False)
        self.assertEqual(bad.wait(), 1, bad.output())


class GitHttpTest(SyncTestBase):
    def test_credentials_are_read_at_every_sync(self):
        self.repo.commit({"index.html": "secret v1\n"})
        server = GitHttp(self.repo, user="alice", password="s3cret")
        self.addCleanup(server.stop)
        creds = os.path.join(self.root, "..", os.path.basename(self.root) + ".creds")
        with open(creds, "w") as f:
            f.write("alice:wrong\n")
        self.addCleanup(os.unlink, creds)
        sc = self.sidecar(sync_config(
            self.root, f"git: {{ repo: \"{server.url}\", ref: main, credentials_file: {creds} }}",
            period="10s"))
        wait_for(lambda: self.status(sc)["failures"] >= 1, 10, what="the failed sync")
        self.assertIn("authentication failed", self.status(sc)["last_error"])
        self.assertIsNone(self.live())
        self.assertEqual(sc.admin_get("/ready")[0], 503)  # waits for the first sync
        with open(creds, "w") as f:
            f.write("alice:s3cret\n")
        self.assertEqual(sc.admin_get("/sync", "POST")[0], 200)
        wait_for(lambda: self.live() == "secret v1\n", 10, what="the sync with good credentials")
        self.assertEqual(sc.admin_get("/ready")[0], 200)


@unittest.skipUnless(os.path.exists("/usr/sbin/sshd") and os.geteuid() == 0,
                     "needs openssh-server and root")
class SshTest(SyncTestBase):
    """ssh:// against a real sshd on 127.0.0.1 with its own host key: the
    host key is checked against known_hosts, plain and hashed."""

    def setUp(self):
        super().setUp()
        self.repo.commit({"index.html": "over ssh\n"})
        d = tempfile.mkdtemp(prefix="sidecar-sshd-")
        self.addCleanup(shutil.rmtree, d, True)
        self.d = d
        for name, kind in (("host", "ed25519"), ("other", "ed25519"), ("client", "ed25519")):
            subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", f"{d}/{name}"],
                           check=True)
        shutil.copy(f"{d}/client.pub", f"{d}/authorized_keys")
        os.makedirs("/run/sshd", exist_ok=True)
        from gitserver import free_port
        self.port = free_port()
        with open(f"{d}/sshd_config", "w") as f:
            f.write(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {d}/host
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
""")
        self.sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", f"{d}/sshd_config"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(self.sshd.wait, 10)
        self.addCleanup(self.sshd.terminate)
        import socket
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", self.port)) == 0, 10,
                 what="sshd")
        self.url = f"ssh://root@127.0.0.1:{self.port}{self.repo.bare}"

    def known_hosts(self, key, hashed=False):
        path = f"{self.d}/known_hosts-{key}-{hashed}"
        with open(f"{self.d}/{key}.pub") as f:
            kind, blob = f.read().split()[:2]
        with open(path, "w") as f:
            f.write(f"# test\n[127.0.0.1]:{self.port} {kind} {blob}\n")
        if hashed:
            subprocess.run(["ssh-keygen", "-q", "-H", "-f", path], check=True,
                           capture_output=True)
        return path

    def config(self, known_hosts, root):
        return sync_config(root, f"git: {{ repo: \"{self.url}\", ref: main, "
                                 f"ssh_key: {self.d}/client, known_hosts: {known_hosts} }}",
                           period="10s")

    def test_known_host_plain_and_hashed(self):
        for hashed in (False, True):
            root = tempfile.mkdtemp(dir=self.root)
            sc = self.sidecar(self.config(self.known_hosts("host", hashed), root))
            wait_for(lambda: os.path.exists(os.path.join(root, "current", "index.html")), 15,
                     what=f"the ssh sync (hashed={hashed})")
            self.assertEqual(read(os.path.join(root, "current", "index.html")), "over ssh\n")
            sc.stop()

    def test_unknown_host_key_is_refused(self):
        sc = self.sidecar(self.config(self.known_hosts("other"), self.root))
        wait_for(lambda: self.status(sc)["failures"] >= 1, 15, what="the refused host")
        self.assertIn("is not in", self.status(sc)["last_error"])
        self.assertIsNone(self.live())


class HooksTest(SyncTestBase):
    def test_exec_webhook_and_signal_hooks_in_order(self):
        events = os.path.join(self.root + ".events")
        app_ready = self.root + ".ready"
        self.addCleanup(lambda: os.path.exists(app_ready) and os.unlink(app_ready))
        self.addCleanup(lambda: os.path.exists(events) and os.unlink(events))
        hooks = []

        class Hook(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                hooks.append(self.headers.get("X-Sync-Revision"))
                with open(events, "a") as f:
                    f.write("webhook\n")
                # The first call fails: the hook is retried.
                self.send_response(500 if len(hooks) == 1 else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        receiver = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        self.addCleanup(receiver.shutdown)
        app = os.path.join(self.root + ".app.py")
        with open(app, "w") as f:
            f.write(f"""import signal, time
def hup(*_):
    with open({events!r}, "a") as f:
        f.write("SIGHUP\\n")
signal.signal(signal.SIGHUP, hup)
open({app_ready!r}, "w").close()
while True:
    time.sleep(1)
""")
        self.addCleanup(os.unlink, app)
        sc = self.sidecar(sync_config(self.root, f"git: {{ repo: \"file://{self.repo.bare}\" }}",
                                      extra=f"""    notify:
      - exec: [ "sh", "-c", "echo exec $SIDECAR_SYNC_REVISION $(cat index.html) >> {events}" ]
      - webhook: http://127.0.0.1:{receiver.server_address[1]}/reload
      - signal: SIGHUP
"""), app=[PYTHON, app])
        # The first commit only once the app handles SIGHUP.
        wait_for(lambda: os.path.exists(app_ready), 10, what="the app")
        self.repo.commit({"index.html": "v1\n"})
        wait_for(lambda: os.path.exists(events) and read(events).count("webhook") == 2, 15,
                 what="the hooks")
        head = git("rev-parse", "HEAD", cwd=self.repo.work)
        lines = read(events).splitlines()
        # In order; the failed webhook is retried on its own, without holding
        # back the signal.
        self.assertEqual(lines[:2], [f"exec {head} v1", "webhook"])
        self.assertEqual(sorted(lines[2:]), ["SIGHUP", "webhook"])
        self.assertEqual(hooks, [head, head])
        # What each hook told the app, by hook.
        markers = read(os.path.join(self.root, ".sidecar-notified")).splitlines()
        self.assertEqual(len(markers), 3)
        self.assertTrue(all(m.endswith(" " + head) for m in markers), markers)
        wait_for(lambda: all(h["notified"] == head for h in self.status(sc)["hooks"]), 5,
                 what="the hooks' status")
        self.assertEqual(self.metric(sc, "sidecar_sync_hook_runs_total", kind="webhook",
                                     result="failure"), 1)


class HttpSourceTest(SyncTestBase):
    def file_server(self, state, path, etag=False):
        """Serves state["body"] at any path (with an ETag and 304s when `etag`),
        counting requests in state; returns the URL of `path`."""
        state.setdefault("requests", 0)
        state.setdefault("304", 0)

        class Files(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                state["requests"] += 1
                body = state["body"]
                tag = '"' + hashlib.sha1(body).hexdigest() + '"'
                if etag and self.headers.get("If-None-Match") == tag:
                    state["304"] += 1
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                if etag:
                    self.send_header("ETag", tag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Files)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return f"http://127.0.0.1:{server.server_address[1]}{path}"

    def test_archive_with_etag_costs_one_304_when_unchanged(self):
        state = {"body": self.tarball({"index.html": "http v1\n"})}
        url = self.file_server(state, "/site.tar.gz", etag=True)
        sc = self.sidecar(sync_config(self.root, f"http: {{ url: \"{url}\" }}", period="200ms"))
        wait_for(lambda: self.live() == "http v1\n", 10, what="the first download")
        wait_for(lambda: state["304"] >= 3, 5, what="conditional requests")
        self.assertEqual(state["requests"] - state["304"], 1)
        state["body"] = self.tarball({"index.html": "http v2\n"})
        wait_for(lambda: self.live() == "http v2\n", 5, what="the new archive")
        self.assertEqual(self.metric(sc, "sidecar_sync_total", result="success"), 2)

    def test_plain_file_and_copy_to(self):
        plain = tempfile.mkdtemp(prefix="sidecar-plain-")
        self.addCleanup(shutil.rmtree, plain, True)
        content = {"body": b"setting=1\n"}
        url = self.file_server(content, "/conf/app.conf")
        self.sidecar(sync_config(self.root, f"http: {{ url: \"{url}\" }}", period="200ms",
                                 extra=f"    copy_to: {plain}\n"))
        wait_for(lambda: os.path.exists(os.path.join(plain, "app.conf")), 10, what="the copy")
        self.assertEqual(read(os.path.join(plain, "app.conf")), "setting=1\n")
        self.assertFalse(os.path.islink(os.path.join(plain, "app.conf")))
        content["body"] = b"setting=2\n"
        wait_for(lambda: read(os.path.join(plain, "app.conf")) == "setting=2\n", 5, what="update")
        self.assertEqual(self.live("app.conf"), "setting=2\n")
        # A live tree deleted from outside is downloaded again.
        shutil.rmtree(os.path.realpath(os.path.join(self.root, "current")))
        wait_for(lambda: self.live("app.conf") == "setting=2\n", 5, what="the repair")

    def test_archives_cannot_write_outside_the_folder(self):
        for name, link in (("../escape.txt", None), ("/tmp/absolute.txt", None),
                           ("link", "../../outside")):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:gz") as tar:
                info = tarfile.TarInfo(name)
                if link:
                    info.type = tarfile.SYMTYPE
                    info.linkname = link
                    tar.addfile(info)
                else:
                    info.size = 4
                    tar.addfile(info, io.BytesIO(b"evil"))
            url = self.file_server({"body": buf.getvalue()}, "/evil.tar.gz")
            root = tempfile.mkdtemp(dir=self.root)
            sc = self.sidecar(sync_config(root, f"http: {{ url: \"{url}\" }}", period="10s"))
            wait_for(lambda: self.status(sc)["failures"] >= 1, 10, what="the refused archive")
            self.assertIn("outside the folder", self.status(sc)["last_error"])
            self.assertFalse(os.path.exists(os.path.join(root, "current")))
            self.assertFalse(os.path.exists(os.path.join(self.root, "escape.txt")))
            self.assertFalse(os.path.exists("/tmp/absolute.txt"))
            sc.stop()

    @staticmethod
    def tarball(files):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()


class ModuleTest(SyncTestBase):
    def test_without_the_module_sync_is_a_clear_error(self):
        d = tempfile.mkdtemp(prefix="sidecar-nomodule-")
        self.addCleanup(shutil.rmtree, d, True)
        shutil.copy(BIN, d)  # the binary alone, without libsidecar-sync.so
        cfg = os.path.join(d, "c.yaml")
        with open(cfg, "w") as f:
            f.write(sync_config(self.root, f"git: {{ repo: \"file://{self.repo.bare}\" }}"))
        p = subprocess.run([os.path.join(d, "sidecar"), "run", "-c", cfg], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 70)
        self.assertIn(f"sync needs {d}/libsidecar-sync.so", p.stderr)


class AtomicityTest(SyncTestBase):
    def test_readers_never_see_a_mix_of_revisions(self):
        names = [f"f{i}.txt" for i in range(8)]
        self.repo.commit({n: "0\n" for n in names})
        sc = self.sidecar(sync_config(self.root, f"git: {{ repo: \"file://{self.repo.bare}\" }}",
                                      period="10ms"))
        wait_for(lambda: os.path.exists(os.path.join(self.root, "current", names[0])), 10,
                 what="the first sync")
        stop = threading.Event()
        problems = []
        seen = set()
        reads = [0]

        def reader():
            while not stop.is_set():
                # Resolve the link once, read the whole tree from there.
                d = os.path.realpath(os.path.join(self.root, "current"))
                try:
                    values = {read(os.path.join(d, n)) for n in names}
                except OSError as e:
                    problems.append(f"missing file: {e}")
                    continue
                if len(values) != 1:
                    problems.append(f"mixed revisions in {d}: {values}")
                seen.add(values.pop())
                reads[0] += 1

        readers = [threading.Thread(target=reader) for _ in range(2)]
        for t in readers:
            t.start()
        for n in range(1, 201):
            self.repo.commit({name: f"{n}\n" for name in names}, message=f"r{n}")
        wait_for(lambda: self.live(names[0]) == "200\n", 10, 0.02, "the last commit")
        stop.set()
        for t in readers:
            t.join()
        self.assertEqual(problems, [])
        self.assertGreater(reads[0], 5000)
        syncs = self.status(sc)["successes"]
        print(f"  {syncs} syncs, {reads[0]} reads, {len(seen)} revisions seen", file=sys.stderr)
        self.assertGreater(syncs, 100, "too few syncs happened during the reads")
        self.assertGreater(len(seen), 50)


if __name__ == "__main__":
    run_tests()
