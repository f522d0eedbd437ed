#!/usr/bin/python3
"""examples/git-sync-nginx, run for real: the sidecar syncs a repository
served by `git daemon` and supervises nginx, which serves the synced folder.
A pushed commit is served within one period, by the same nginx process."""
import os
import re
import shutil
import tempfile
import time
import unittest

from gitserver import GitDaemon, Repo, free_port
from harness import HERE, Sidecar, curl, run_tests, wait_for

EXAMPLE = os.path.join(HERE, "..", "..", "examples", "git-sync-nginx")


class GitSyncNginxTest(unittest.TestCase):
    def test_a_commit_is_served_within_one_period_without_restarting_nginx(self):
        repo = Repo()
        self.addCleanup(repo.cleanup)
        repo.commit({"index.html": "<h1>v1</h1>\n"})
        daemon = GitDaemon(repo)
        self.addCleanup(daemon.stop)
        work = tempfile.mkdtemp(prefix="sidecar-example-")
        self.addCleanup(shutil.rmtree, work, True)
        os.chmod(work, 0o755)  # nginx's workers run as nobody
        root = os.path.join(work, "site")
        nginx_port = free_port()
        pid_file = os.path.join(work, "nginx.pid")

        with open(os.path.join(EXAMPLE, "sidecar.yaml")) as f:
            config = f.read()
        config = (config.replace("https://github.com/example/site.git", daemon.url)
                  .replace("/srv/site", root)
                  .replace("period: 10s", "period: 500ms")
                  .replace("127.0.0.1:9901", "127.0.0.1:0")
                  .replace("0.0.0.0:8000", "127.0.0.1:0")
                  .replace("port: 8080", f"port: {nginx_port}")
                  .replace("127.0.0.1:8080", f"127.0.0.1:{nginx_port}"))
        with open(os.path.join(EXAMPLE, "nginx.conf")) as f:
            nginx = f.read()
        nginx = (nginx.replace("/srv/site", root).replace("/tmp/git-sync-nginx.pid", pid_file)
                 .replace("127.0.0.1:8080", f"127.0.0.1:{nginx_port}"))
        nginx_conf = os.path.join(work, "nginx.conf")
        with open(nginx_conf, "w") as f:
            f.write(nginx)

        sc = Sidecar(config, app=["nginx", "-p", work, "-c", nginx_conf])
        self.addCleanup(sc.stop)
        wait_for(lambda: sc.admin_get("/ready")[0] == 200, 20, 0.1, "sync and nginx ready")
        rc, out, err = curl(sc.url("/"))
        self.assertEqual(out, b"<h1>v1</h1>\n", err)
        with open(pid_file) as f:
            master = int(f.read())

        repo.commit({"index.html": "<h1>v2</h1>\n"})
        start = time.monotonic()
        wait_for(lambda: curl(f"http://127.0.0.1:{nginx_port}/")[1] == b"<h1>v2</h1>\n", 10, 0.02,
                 "nginx serving the new commit")
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, 1.5, "not within one period (500ms) and a fetch")
        with open(pid_file) as f:
            self.assertEqual(int(f.read()), master)  # the same nginx, not restarted
        self.assertEqual(curl(sc.url("/"))[1], b"<h1>v2</h1>\n")  # and through the sidecar
        self.assertIn("sidecar_sync_revision_info", sc.admin_get("/metrics")[1])
        # The worktree's .git file is not served.
        self.assertIn(b"404", curl("-s", "-o", "/dev/null", "-w", "%{http_code}",
                                   f"http://127.0.0.1:{nginx_port}/.git")[1])


if __name__ == "__main__":
    run_tests()
