#!/usr/bin/python3
"""Hooks decoupled from syncing: a receiver that is down for a while is told
once it is back; a slow hook does not delay the next revision; a newer
revision replaces a pending one; a hook added to the config runs for the
live revision; POST /sync during a hook's retries syncs at once; `once` exits
1 when a hook fails; `status: 0` does not check the answer; the pre_publish
gate keeps a rejected revision from going live."""
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gitserver import Repo
from harness import Sidecar, run_tests, wait_for


def read(path):
    with open(path) as f:
        return f.read()


class Receiver:
    """A webhook receiver on a fixed port: `up()` / `down()`, the status it
    answers, and the revisions it was told about."""

    def __init__(self, status=204):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.status = status
        self.revisions = []
        self.server = None

    def up(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                receiver.revisions.append(self.headers.get("X-Sync-Revision"))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"


class HookTestBase(unittest.TestCase):
    def setUp(self):
        self.repo = Repo()
        self.addCleanup(self.repo.cleanup)
        self.root = tempfile.mkdtemp(prefix="sidecar-sync-")
        self.addCleanup(shutil.rmtree, self.root, True)

    def sidecar(self, extra, period="200ms", root=None, **kwargs):
        sc = Sidecar(f"""
workers: 1
sync:
  - name: site
    git: {{ repo: "file://{self.repo.bare}" }}
    root: {root or self.root}
    period: {period}
{extra}""", **kwargs)
        self.addCleanup(sc.stop)
        return sc

    def status(self, sc):
        return json.loads(sc.admin_get("/sync")[1])["syncs"][0]

    def live(self):
        path = os.path.join(self.root, "current", "index.html")
        return read(path) if os.path.exists(path) else None

    def receiver(self, status=204):
        r = Receiver(status)
        self.addCleanup(r.down)
        return r


class HookQueueTest(HookTestBase):
    def test_a_receiver_down_for_a_while_is_told_once_back(self):
        head = self.repo.commit({"index.html": "v1\n"})
        r = self.receiver()  # down
        sc = self.sidecar(f"""    notify:
      - {{ webhook: "{r.url}", max_interval: 300ms }}
""")
        wait_for(lambda: self.live() == "v1\n", 10, 0.02, "the first sync")
        wait_for(lambda: self.status(sc)["hooks"][0]["failures"] >= 3, 10, 0.05, "failures")
        hook = self.status(sc)["hooks"][0]
        self.assertEqual(hook["pending"], head)
        self.assertIn("Couldn't connect", hook["last_error"])
        time.sleep(1)  # down for a while: the retries go on, at most 300ms apart
        r.up()
        wait_for(lambda: r.revisions == [head], 5, 0.02, "the webhook once back")
        wait_for(lambda: self.status(sc)["hooks"][0]["notified"] == head, 5, 0.02, "notified")
        self.assertEqual(self.status(sc)["hooks"][0]["pending"], "")

    def test_a_slow_hook_does_not_delay_the_next_revision(self):
        self.repo.commit({"index.html": "v1\n"})
        sc = self.sidecar("""    notify:
      - exec: [ "sleep", "3" ]
""")
        wait_for(lambda: self.live() == "v1\n", 10, 0.02, "the first sync")
        self.repo.commit({"index.html": "v2\n"})
        wait_for(lambda: self.live() == "v2\n", 10, 0.02, "the second revision")
        # Live while the hook of the first one still runs.
        self.assertEqual(self.status(sc)["hooks"][0]["notified"], "")

    def test_a_newer_revision_replaces_a_pending_one(self):
        first = self.repo.commit({"index.html": "v1\n"})
        r = self.receiver(status=500)
        r.up()
        sc = self.sidecar(f"""    notify:
      - {{ webhook: "{r.url}", max_interval: 200ms }}
""")
        wait_for(lambda: first in r.revisions, 10, 0.02, "the first attempt")
        second = self.repo.commit({"index.html": "v2\n"})
        wait_for(lambda: second in r.revisions, 10, 0.02, "the newer revision")
        r.status = 204
        wait_for(lambda: self.status(sc)["hooks"][0]["notified"] == second, 10, 0.02, "success")
        after = r.revisions[r.revisions.index(second):]
        self.assertNotIn(first, after)  # never the old one once the new one is pending

    def test_post_sync_during_a_hooks_retries_syncs_at_once(self):
        self.repo.commit({"index.html": "v1\n"})
        r = self.receiver(status=500)
        r.up()
        sc = self.sidecar(f"""    notify:
      - {{ webhook: "{r.url}", max_interval: 10s }}
""", period="1h")
        wait_for(lambda: self.live() == "v1\n", 10, 0.02, "the first sync")
        wait_for(lambda: len(r.revisions) >= 2, 10, 0.02, "a retry")
        self.repo.commit({"index.html": "v2\n"})
        self.assertEqual(sc.admin_get("/sync", "POST")[0], 200)
        wait_for(lambda: self.live() == "v2\n", 5, 0.02, "the sync asked for")

    def test_fire_and_forget_does_not_check_the_status(self):
        head = self.repo.commit({"index.html": "v1\n"})
        r = self.receiver(status=500)
        r.up()
        sc = self.sidecar(f"""    notify:
      - {{ webhook: "{r.url}", status: 0 }}
""")
        wait_for(lambda: self.status(sc)["hooks"][0]["notified"] == head, 10, 0.02, "the hook")
        time.sleep(0.5)
        self.assertEqual(r.revisions, [head])  # not retried


class RestartTest(HookTestBase):
    def test_a_hook_added_to_the_config_runs_for_the_live_revision(self):
        head = self.repo.commit({"index.html": "v1\n"})
        sc = self.sidecar("")
        wait_for(lambda: self.live() == "v1\n", 10, 0.02, "the first sync")
        sc.stop()
        marker = self.root + ".hook"
        self.addCleanup(lambda: os.path.exists(marker) and os.unlink(marker))
        self.sidecar(f"""    notify:
      - exec: [ "sh", "-c", "echo $SIDECAR_SYNC_REVISION $GITSYNC_HASH >> {marker}" ]
""")
        wait_for(lambda: os.path.exists(marker), 10, 0.02, "the new hook")
        self.assertEqual(read(marker), f"{head} {head}\n")

    def test_once_exits_1_when_a_hook_fails(self):
        self.repo.commit({"index.html": "v1\n"})
        sc = self.sidecar("""    once: true
    notify:
      - exec: [ "sh", "-c", "echo no >&2; exit 3" ]
""", wait=False)
        self.assertEqual(sc.wait(timeout=30), 1, sc.output())
        self.assertEqual(self.live(), "v1\n")  # the sync itself worked
        self.assertIn("exit code 3: no", sc.output())
        root2 = tempfile.mkdtemp(prefix="sidecar-sync-")
        self.addCleanup(shutil.rmtree, root2, True)
        ok = self.sidecar("""    once: true
    notify:
      - exec: [ "true" ]
""", root=root2, wait=False)
        self.assertEqual(ok.wait(timeout=30), 0, ok.output())


class PrePublishTest(HookTestBase):
    def test_a_rejected_revision_never_goes_live(self):
        first = self.repo.commit({"index.html": "v1\n"})
        sc = self.sidecar("""    pre_publish:
      exec: [ "sh", "-c", "test ! -e broken || { echo broken file >&2; exit 1; }" ]
""")
        wait_for(lambda: self.live() == "v1\n", 10, 0.02, "the first sync")
        bad = self.repo.commit({"index.html": "v2\n", "broken": "x\n"})
        wait_for(lambda: "pre_publish rejected" in self.status(sc)["last_error"], 10, 0.02,
                 "the rejection")
        st = self.status(sc)
        self.assertIn(bad, st["last_error"])
        self.assertIn("broken file", st["last_error"])
        self.assertEqual(st["revision"], first)
        self.assertEqual(self.live(), "v1\n")
        self.repo.commit({"index.html": "v3\n"}, push=False)
        os.unlink(os.path.join(self.repo.work, "broken"))
        self.repo.commit({}, message="fix")
        wait_for(lambda: self.live() == "v3\n", 10, 0.02, "the fixed revision")


if __name__ == "__main__":
    run_tests()
