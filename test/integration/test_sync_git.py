#!/usr/bin/python3
"""What git-sync users rely on, against real servers (git daemon, git
http-backend behind nginx and fcgiwrap, tinyproxy): shallow fetches,
submodules, sparse checkout, partial clone, commits by id (also only
reachable from a tag, also from servers that refuse ids), garbage
collection, git_config, credentials per URL, askpass URL, cookie file,
proxies (environment and config, https through CONNECT), and where the
files go (link anywhere, touch_file, error_file, group_write)."""
import json
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gitserver import GitDaemon, NginxGit, Repo, TinyProxy, git
from harness import Sidecar, run_tests, wait_for


def read(path):
    with open(path) as f:
        return f.read()


class GitTestBase(unittest.TestCase):
    def setUp(self):
        self.repo = Repo()
        self.addCleanup(self.repo.cleanup)
        self.tmp = tempfile.mkdtemp(prefix="sidecar-sync-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def root(self, name="root"):
        return os.path.join(self.tmp, name)

    def sidecar(self, root, git_yaml, extra="", period="300ms", **kwargs):
        sc = Sidecar(f"""
workers: 1
sync:
  - name: site
    git: {git_yaml}
    root: {root}
    period: {period}
    timeout: 20s
{extra}""", **kwargs)
        self.addCleanup(sc.stop)
        return sc

    def status(self, sc):
        return json.loads(sc.admin_get("/sync")[1])["syncs"][0]

    def wait_file(self, path, text, timeout=15, what=None):
        wait_for(lambda: os.path.exists(path) and read(path) == text, timeout, 0.02,
                 what or f"{path} to hold {text!r}")

    def mirror_git(self, root, *args):
        return git(*args, cwd=os.path.join(root, ".git-mirror"))

    def secret(self, text):
        fd, path = tempfile.mkstemp(dir=self.tmp)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        return path


class FetchTest(GitTestBase):
    def setUp(self):
        super().setUp()
        self.daemon = GitDaemon(self.repo)
        self.addCleanup(self.daemon.stop)

    def test_shallow_by_default_full_history_with_depth_0(self):
        for i in range(30):
            last = self.repo.commit({"index.html": f"v{i}\n"}, push=False)
        self.repo.push()
        shallow, full = self.root("shallow"), self.root("full")
        self.sidecar(shallow, f'{{ repo: "{self.daemon.url}" }}')
        self.sidecar(full, f'{{ repo: "{self.daemon.url}", depth: 0 }}')
        for root in (shallow, full):
            self.wait_file(os.path.join(root, "current", "index.html"), "v29\n")
        self.assertEqual(self.mirror_git(shallow, "rev-list", "--count", last), "1")
        self.assertTrue(os.path.exists(os.path.join(shallow, ".git-mirror", "shallow")))
        self.assertEqual(self.mirror_git(full, "rev-list", "--count", last), "30")

    def test_submodules_recursive_shallow_and_off(self):
        base = self.repo.base
        nested = Repo(name="nested.git", base=base)
        self.addCleanup(nested.cleanup)
        nested.commit({"n.txt": "nested\n"})
        sub = Repo(name="sub.git", base=base)
        self.addCleanup(sub.cleanup)
        sub.add_submodule(f"{self.daemon.base_url}/nested.git", "nested")
        sub.commit({"s.txt": "sub\n"})
        self.repo.add_submodule(f"{self.daemon.base_url}/sub.git", "lib")
        self.repo.commit({"index.html": "main\n"})
        roots = {mode: self.root(mode) for mode in ("recursive", "shallow", "off")}
        for mode, root in roots.items():
            self.sidecar(root, f'{{ repo: "{self.daemon.url}", submodules: {mode} }}')
        for root in roots.values():
            self.wait_file(os.path.join(root, "current", "index.html"), "main\n")
        def has(mode, path):
            return os.path.exists(os.path.join(roots[mode], "current", path))
        wait_for(lambda: has("recursive", "lib/nested/n.txt"), 10, 0.02, "the nested submodule")
        self.assertEqual(read(os.path.join(roots["recursive"], "current", "lib/s.txt")), "sub\n")
        self.assertTrue(has("shallow", "lib/s.txt"))
        self.assertFalse(has("shallow", "lib/nested/n.txt"))
        self.assertFalse(has("off", "lib/s.txt"))
        self.assertTrue(has("off", ".gitmodules"))

    def test_sparse_checkout_and_partial_clone(self):
        self.repo.commit({"a/x.txt": "x\n", "b/big.bin": b"\0" * 100000, "c.txt": "c\n"})
        blob = git("rev-parse", "HEAD:b/big.bin", cwd=self.repo.work)
        root = self.root()
        sc = self.sidecar(root, f'{{ repo: "{self.daemon.url}", filter: "blob:none", '
                                f'sparse_checkout: [ "/a/", "/c.txt" ] }}')
        wait_for(lambda: self.status(sc)["successes"] + self.status(sc)["failures"] > 0, 15, 0.05)
        self.assertEqual(self.status(sc)["last_error"], "")
        self.wait_file(os.path.join(root, "current", "c.txt"), "c\n")
        self.assertEqual(read(os.path.join(root, "current", "a/x.txt")), "x\n")
        self.assertFalse(os.path.exists(os.path.join(root, "current", "b")))
        # The blob outside the sparse patterns never came.
        self.assertEqual(self.mirror_git(root, "config", "remote.origin.partialclonefilter"),
                         "blob:none")
        missing = subprocess.run(["git", "cat-file",
                                  "--batch-check", "--batch-all-objects"],
                                 cwd=os.path.join(root, ".git-mirror"), capture_output=True,
                                 text=True).stdout
        self.assertNotIn(blob, missing)

    def test_a_commit_only_reachable_from_a_tag(self):
        pinned = self.repo.commit({"index.html": "pinned\n"})
        self.repo.commit({"index.html": "tagged\n"})
        self.repo.tag("keep", annotated=False)  # the pinned commit is under it, not its tip
        self.repo.commit({"index.html": "rewritten\n"}, amend=True, force=True)
        # Protocol v2 servers give any reachable commit by id.
        v2 = self.root("v2")
        sc = self.sidecar(v2, f'{{ repo: "{self.daemon.url}", ref: {pinned} }}')
        self.wait_file(os.path.join(v2, "current", "index.html"), "pinned\n")
        self.assertEqual(self.status(sc)["revision"], pinned)
        # A protocol v0 exchange refuses ids that are not tips: every branch
        # and tag is fetched instead.
        v0 = self.root("v0")
        sc0 = self.sidecar(v0, f'{{ repo: "{self.daemon.url}", ref: {pinned}, '
                               f'git_config: {{ protocol.version: "0" }} }}')
        self.wait_file(os.path.join(v0, "current", "index.html"), "pinned\n")
        self.assertIn("cannot be fetched by id", sc0.output())
        self.assertEqual(self.mirror_git(v0, "for-each-ref", "refs/sidecar/all/"), "")

    def test_git_gc_keeps_the_store_small_after_force_pushes(self):
        root = self.root()
        sc = self.sidecar(root, f'{{ repo: "{self.daemon.url}", git_gc: always }}',
                          extra="    keep_old_for: 0s\n", period="100ms")
        for i in range(12):
            self.repo.commit({"index.html": f"v{i}\n", "data.bin": os.urandom(20000)},
                             amend=i > 0, force=True)
            self.wait_file(os.path.join(root, "current", "index.html"), f"v{i}\n")
        wait_for(lambda: len(os.listdir(os.path.join(root, ".revisions"))) <= 3, 10, 0.05,
                 "old revisions removed")
        def counts():
            return dict(line.split(": ") for line in
                        self.mirror_git(root, "count-objects", "-v").splitlines())
        wait_for(lambda: counts()["packs"] == "1" and counts()["count"] == "0", 10, 0.1,
                 "one pack and no loose objects")
        # Old force-pushed commits are gone, not just packed.
        self.assertLess(int(counts()["size-pack"]), 200)  # KiB; 12 x 20 KB were fetched
        self.assertEqual(self.status(sc)["last_error"], "")


class HttpAuthTest(GitTestBase):
    def test_credentials_per_url_for_submodules(self):
        # The main repository and its submodule behind two servers that want
        # different users.
        sub = Repo(name="sub.git", base=self.repo.base)
        self.addCleanup(sub.cleanup)
        sub.commit({"s.txt": "sub\n"})
        a = NginxGit(self.repo, user="alice", password="alice-s3cret")
        b = NginxGit(self.repo, user="bob", password="bob-s3cret")
        self.addCleanup(a.stop)
        self.addCleanup(b.stop)
        self.repo.add_submodule(sub.bare, "lib")
        git("config", "-f", ".gitmodules", "submodule.lib.url", f"{b.base_url}/sub.git",
            cwd=self.repo.work)
        self.repo.commit({"index.html": "main\n"})
        root = self.root()
        sc = self.sidecar(root, f"""{{ repo: "{a.url}", credentials_file: {self.secret('alice:alice-s3cret')},
           credentials: [ {{ url: "{b.base_url}", username: bob,
                             password_file: {self.secret('bob-s3cret')} }} ] }}""")
        self.wait_file(os.path.join(root, "current", "lib", "s.txt"), "sub\n")
        self.assertIn('"GET /sub.git/info/refs?service=git-upload-pack HTTP/1.1" 200',
                      b.requests())
        # The secrets are on no command line and in no file the app can read.
        self.assertNotIn("s3cret", json.dumps(self.status(sc)))
        self.assertNotIn("s3cret", sc.output())
        for dirpath, _, files in os.walk(root):
            for name in files:
                path = os.path.join(dirpath, name)
                if os.path.islink(path) or os.path.getsize(path) > 100000:
                    continue
                with open(path, "rb") as f:
                    self.assertNotIn(b"s3cret", f.read(), path)

    def test_a_password_in_the_url_stays_out_of_the_mirror(self):
        self.repo.commit({"index.html": "in url\n"})
        server = NginxGit(self.repo, user="dave", password="dave-s3cret")
        self.addCleanup(server.stop)
        root = self.root()
        sc = self.sidecar(root, f'{{ repo: "{server.url.replace("://", "://dave:dave-s3cret@")}" }}')
        self.wait_file(os.path.join(root, "current", "index.html"), "in url\n")
        self.assertEqual(self.mirror_git(root, "config", "remote.origin.url"),
                         server.url.replace("://", "://dave@"))
        self.assertNotIn("s3cret", sc.output())

    def test_askpass_url_and_cookie_file(self):
        self.repo.commit({"index.html": "asked\n"})
        server = NginxGit(self.repo, user="carol", password="pc")
        self.addCleanup(server.stop)
        asked = []

        class Askpass(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                asked.append(self.path)
                body = b"username=carol\npassword=pc\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        askpass = ThreadingHTTPServer(("127.0.0.1", 0), Askpass)
        threading.Thread(target=askpass.serve_forever, daemon=True).start()
        self.addCleanup(askpass.server_close)
        self.addCleanup(askpass.shutdown)
        root = self.root("askpass")
        self.sidecar(root, f'{{ repo: "{server.url}", askpass_url: '
                           f'"http://127.0.0.1:{askpass.server_address[1]}/creds" }}')
        self.wait_file(os.path.join(root, "current", "index.html"), "asked\n")
        self.assertGreaterEqual(len(asked), 1)

        cookie_server = NginxGit(self.repo, cookie="session=abc123")
        self.addCleanup(cookie_server.stop)
        cookies = self.secret("127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tabc123")
        root = self.root("cookie")
        self.sidecar(root, f'{{ repo: "{cookie_server.url}", cookie_file: {cookies} }}')
        self.wait_file(os.path.join(root, "current", "index.html"), "asked\n")


class ProxyTest(GitTestBase):
    def test_https_through_a_connect_proxy_from_the_environment_and_the_config(self):
        self.repo.commit({"index.html": "proxied\n"})
        server = NginxGit(self.repo, tls=True)
        self.addCleanup(server.stop)
        proxy = TinyProxy()
        self.addCleanup(proxy.stop)
        # (Debian's git, on GnuTLS, also needs the directory)
        ca = (f'git_config: {{ http.sslCAInfo: "{server.ca}", '
              f'http.sslCAPath: "{os.path.dirname(server.ca)}" }}')
        env_root = self.root("env")
        sc = self.sidecar(env_root, f'{{ repo: "{server.url}", {ca} }}',
                          env={"https_proxy": proxy.url, "no_proxy": ""})
        wait_for(lambda: self.status(sc)["successes"] + self.status(sc)["failures"] > 0, 15, 0.05)
        self.assertEqual(self.status(sc)["last_error"], "")
        self.wait_file(os.path.join(env_root, "current", "index.html"), "proxied\n")
        connect = f"CONNECT 127.0.0.1:{server.port}"
        self.assertIn(connect, proxy.log())
        before = proxy.log().count(connect)
        cfg_root = self.root("config")
        self.sidecar(cfg_root, f'{{ repo: "{server.url}", {ca} }}',
                     extra=f"    http_proxy: {proxy.url}\n")
        self.wait_file(os.path.join(cfg_root, "current", "index.html"), "proxied\n")
        self.assertGreater(proxy.log().count(connect), before)
        # A proxy that is not there is an error, not a direct connection.
        dead_root = self.root("dead")
        sc = self.sidecar(dead_root, f'{{ repo: "{server.url}", {ca} }}',
                          extra="    http_proxy: http://127.0.0.1:9\n")
        wait_for(lambda: self.status(sc)["failures"] >= 1, 10, 0.05, "the failure")
        self.assertIn("cannot reach", self.status(sc)["last_error"])


class FilesTest(GitTestBase):
    def test_link_anywhere_touch_file_error_file_and_group_write(self):
        first = self.repo.commit({"index.html": "v1\n"}, branch="live")
        daemon = GitDaemon(self.repo)
        self.addCleanup(daemon.stop)
        root = self.root()
        elsewhere = os.path.join(self.tmp, "www", "site")
        sc = self.sidecar(root, f'{{ repo: "{daemon.url}", ref: live }}', extra=f"""    link: pub/html
    touch_file: synced
    error_file: {self.tmp}/errors/sync.err
    group_write: true
  - name: other
    git: {{ repo: "{daemon.url}", ref: live }}
    root: {root}-2
    link: {elsewhere}
""")
        self.wait_file(os.path.join(root, "pub", "html", "index.html"), "v1\n")
        self.assertEqual(os.readlink(os.path.join(root, "pub", "html")),
                         f"../.revisions/{first}")
        self.wait_file(os.path.join(elsewhere, "index.html"), "v1\n")
        self.assertFalse(os.path.isabs(os.readlink(elsewhere)))
        touched = os.stat(os.path.join(root, "synced")).st_mtime
        mode = os.stat(os.path.join(root, ".revisions", first, "index.html")).st_mode
        self.assertTrue(mode & stat.S_IWGRP)
        pack_dir = os.path.join(root, ".git-mirror", "objects")
        self.assertTrue(os.stat(pack_dir).st_mode & stat.S_IWGRP)
        error_file = f"{self.tmp}/errors/sync.err"
        self.assertFalse(os.path.exists(error_file))
        time.sleep(0.05)
        self.repo.commit({"index.html": "v2\n"}, branch="live")
        self.wait_file(os.path.join(root, "pub", "html", "index.html"), "v2\n")
        wait_for(lambda: os.stat(os.path.join(root, "synced")).st_mtime > touched, 5, 0.02,
                 "the touch")
        # An error is written for the app, and removed after the next success.
        self.repo.delete_branch("live")
        wait_for(lambda: os.path.exists(error_file), 10, 0.02, "the error file")
        self.assertIn("ref 'live' not found", read(error_file))
        self.repo.push(branch="live")
        wait_for(lambda: not os.path.exists(error_file), 10, 0.02, "the error file removed")
        self.assertEqual(self.status(sc)["last_error"], "")


if __name__ == "__main__":
    run_tests()
