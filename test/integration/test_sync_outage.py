#!/usr/bin/python3
"""A sync never hangs: a git server that accepts connections and never
answers (a "black hole", over git:// and http://) fails each sync within its
timeout, visibly (/sync, metrics, log, /ready after max_failures); the sync
recovers within about one period once the server answers again; SIGTERM
ends sidecar within the operation's deadline; an outage is followed by fast
recovery; a live tree deleted from disk is built again."""
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import unittest

from gitserver import BlackHole, GitDaemon, NginxGit, Repo, processes_in, wait_gone
from harness import Sidecar, run_tests, wait_for


def read(path):
    with open(path) as f:
        return f.read()


class OutageTestBase(unittest.TestCase):
    def setUp(self):
        self.repo = Repo()
        self.addCleanup(self.repo.cleanup)
        self.first = self.repo.commit({"index.html": "v1\n"})
        self.root = tempfile.mkdtemp(prefix="sidecar-sync-")
        self.addCleanup(shutil.rmtree, self.root, True)

    def sidecar(self, url, period="500ms", timeout="1s", extra="", **kwargs):
        sc = Sidecar(f"""
workers: 1
sync:
  - name: site
    git: {{ repo: "{url}", ref: main }}
    root: {self.root}
    period: {period}
    timeout: {timeout}
{extra}""", **kwargs)
        self.addCleanup(sc.stop)
        return sc

    def status(self, sc):
        return json.loads(sc.admin_get("/sync")[1])["syncs"][0]

    def live(self, name="index.html"):
        path = os.path.join(self.root, "current", name)
        return read(path) if os.path.exists(path) else None

    def metric(self, sc, name, **labels):
        total = 0.0
        for line in sc.admin_get("/metrics")[1].splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                if all(f'{k}="{v}"' in line for k, v in labels.items()):
                    total += float(line.rsplit(" ", 1)[1])
        return total


class BlackHoleTest(OutageTestBase):
    def check_black_hole(self, server, scheme):
        hole = BlackHole(server.port)
        self.addCleanup(hole.stop)
        url = server.url.replace(f":{server.port}/", f":{hole.port}/")
        sc = self.sidecar(url, extra="    max_failures: 2\n")
        # Every attempt fails within the timeout, and says so everywhere.
        wait_for(lambda: self.status(sc)["failures"] >= 2, 20, 0.05, f"{scheme} timeouts")
        st = self.status(sc)
        self.assertRegex(st["last_error"],
                         r"^timed out after 1s(ec)? (without data )?while fetching from "
                         + re.escape(scheme))
        self.assertEqual(sc.admin_get("/ready")[0], 503)  # max_failures reached
        self.assertGreaterEqual(self.metric(sc, "sidecar_sync_total", result="failure"), 2)
        self.assertGreaterEqual(self.metric(sc, "sidecar_sync_consecutive_failures"), 2)
        self.assertIn("timed out after", sc.output())
        self.assertIsNone(self.live())
        # The server answers again: the next attempt (within a period) syncs.
        hole.answer()
        wait_for(lambda: self.live() == "v1\n", 10, 0.02, "the sync once the server answers")
        self.assertEqual(sc.admin_get("/ready")[0], 200)
        self.assertEqual(self.status(sc)["last_error"], "")
        self.assertEqual(self.status(sc)["consecutive_failures"], 0)

    def test_git_daemon_black_hole(self):
        daemon = GitDaemon(self.repo)
        self.addCleanup(daemon.stop)
        self.check_black_hole(daemon, "git://")

    def test_http_black_hole(self):
        server = NginxGit(self.repo)
        self.addCleanup(server.stop)
        self.check_black_hole(server, "http://")

    def test_sigterm_during_a_hanging_fetch_ends_within_the_deadline(self):
        hole = BlackHole()
        self.addCleanup(hole.stop)
        # A long operation deadline: SIGTERM must not wait for it.
        sc = self.sidecar(f"git://127.0.0.1:{hole.port}/repo.git", timeout="2m")
        wait_for(lambda: hole.accepted >= 1, 10, 0.02, "git connecting to the black hole")
        self.assertNotEqual(processes_in(self.root), [])  # git, in the mirror
        time.sleep(0.3)  # git is now waiting for an answer
        sc.proc.send_signal(signal.SIGTERM)
        took = wait_gone(sc.proc, 60)  # a hang would be 2 minutes
        self.assertEqual(sc.proc.returncode, 0, sc.output())
        self.assertLess(took, 30)
        self.assertIn("exit 0", sc.output())
        # The git child went with it.
        self.assertEqual(processes_in(self.root), [])

    def test_once_mode_fails_within_the_timeout(self):
        hole = BlackHole()
        self.addCleanup(hole.stop)
        sc = self.sidecar(f"git://127.0.0.1:{hole.port}/repo.git", extra="    once: true\n",
                          wait=False)
        self.assertEqual(sc.wait(timeout=60), 1, sc.output())
        self.assertIn("timed out after 1s", sc.output())


class RecoveryTest(OutageTestBase):
    def test_after_an_outage_the_server_is_used_within_about_a_period(self):
        daemon = GitDaemon(self.repo)
        self.addCleanup(lambda: daemon.stop())
        sc = self.sidecar(daemon.url, period="2s")
        wait_for(lambda: self.live() == "v1\n", 10, 0.02, "the first sync")
        # The outage: connections refused for a while.
        daemon.stop()
        self.repo.commit({"index.html": "v2\n"})
        sc.admin_get("/sync", "POST")
        wait_for(lambda: self.status(sc)["consecutive_failures"] >= 3, 20, 0.02, "failures")
        delays = [int(d) for d in re.findall(r"next attempt in (\d+)ms", sc.output())]
        # period/10 (+-10%), doubling, at most the period.
        self.assertTrue(150 <= delays[0] <= 250, delays)
        self.assertGreater(delays[1], delays[0] * 1.5)
        self.assertTrue(all(d <= 2200 for d in delays), delays)
        self.assertEqual(self.live(), "v1\n")  # the live revision stays
        self.assertIn("cannot reach", self.status(sc)["last_error"])
        # Back, on the same port.
        daemon = GitDaemon(self.repo, port=daemon.port)
        back = time.monotonic()
        wait_for(lambda: self.live() == "v2\n", 15, 0.02, "the sync after the outage")
        print(f"  recovered {time.monotonic() - back:.2f}s after the server was back "
              f"(period 2s)", file=sys.stderr)


class RepairTest(OutageTestBase):
    def test_a_deleted_live_tree_or_link_is_built_again(self):
        daemon = GitDaemon(self.repo)
        self.addCleanup(daemon.stop)
        sc = self.sidecar(daemon.url, period="200ms")
        wait_for(lambda: self.live() == "v1\n", 10, 0.02, "the first sync")
        tree = os.path.join(self.root, ".revisions", self.first)
        shutil.rmtree(tree)
        wait_for(lambda: self.live() == "v1\n", 10, 0.02, "the repaired tree")
        # The tree can be back a moment before the sync thread publishes its
        # status: wait for the count, then check it is exactly one.
        wait_for(lambda: self.status(sc)["repairs"] >= 1, 10, 0.02, "the repair counted")
        self.assertEqual(self.status(sc)["repairs"], 1)
        self.assertIn("missing or damaged", sc.output())
        self.assertEqual(self.metric(sc, "sidecar_sync_total", result="repaired"), 1)
        os.unlink(os.path.join(self.root, "current"))
        wait_for(lambda: self.live() == "v1\n", 10, 0.02, "the link again")
        self.assertEqual(os.readlink(os.path.join(self.root, "current")),
                         f".revisions/{self.first}")
        self.assertEqual(self.status(sc)["revision"], self.first)


if __name__ == "__main__":
    run_tests()
