#!/usr/bin/python3
"""The admin dashboard (docs/observability.md "Dashboard"): the page in a
real headless Chromium (Debian's `chromium`) at 1280x800 and 400x800 under
load, its DOM after the script ran, the page without JavaScript, the SSE
stream and the tap, with curl."""
import json
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from harness import Sidecar, Upstream, curl, run_tests, wait_for

CHROMIUM = shutil.which("chromium")


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", head[:8]
    return struct.unpack(">II", head[16:24])


class DashboardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = Upstream()
        cls.sc = Sidecar(f"""
workers: 2
clusters:
  - {{ name: app, endpoints: [ "{cls.up.address}" ] }}
listeners:
  - name: inbound
    address: 127.0.0.1:0
    routes:
      - {{ name: api, match: {{ prefix: /status }}, cluster: app }}
      - {{ name: main, match: {{ prefix: / }}, cluster: app }}
""")
        cls.tmp = tempfile.TemporaryDirectory(prefix="dashboard-")
        cls.stop_load = threading.Event()
        cls.load = threading.Thread(target=cls.apply_load, daemon=True)
        cls.load.start()
        wait_for(lambda: "503" in cls.sc.admin_get("/metrics")[1], what="load")

    @classmethod
    def apply_load(cls):
        while not cls.stop_load.is_set():
            curl("-m", "5", "-o", "/dev/null", cls.sc.url("/hello"))
            curl("-m", "5", "-o", "/dev/null", cls.sc.url("/status/503"))
            time.sleep(0.02)

    @classmethod
    def tearDownClass(cls):
        cls.stop_load.set()
        cls.load.join(timeout=10)
        cls.sc.stop()
        cls.up.stop()
        cls.tmp.cleanup()

    def chromium(self, *args):
        # --virtual-time-budget lets the page's first snapshot (a finite
        # fetch) render; the live EventSource opens after that budget.
        p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                            f"--user-data-dir={self.tmp.name}/profile", "--virtual-time-budget=500",
                            "--timeout=20000", *args, f"http://{self.sc.admin}/"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        return p.stdout

    @unittest.skipIf(CHROMIUM is None, "chromium is not installed (scripts/install-deps.sh)")
    def test_page_in_chromium(self):
        dom = self.chromium("--dump-dom")
        # The script ran: live sections shown with data, the static table hidden.
        self.assertRegex(dom, r'<section id="static" hidden')
        self.assertIn('<span id="ready" class="badge ok">ready</span>', dom)
        self.assertRegex(dom, r'<table id="listeners">.*<td>inbound</td>')
        self.assertRegex(dom, r'<table id="routes">.*<td>inbound</td><td>main</td>')
        self.assertRegex(dom, r'<table id="routes">.*<td>api</td>.*\d(µs|ms|s)</td>')
        self.assertRegex(dom, r'<table id="clusters">.*<td>app</td><td>' + self.up.address)
        self.assertRegex(dom, r'<table id="errors">.*<td class="e5">503</td><td>api</td>'
                              r'<td>/status/503</td>')
        for section in ("top-routes", "app", "modules"):
            self.assertIn(f'<table id="{section}"><thead>', dom)
        shots = {}
        for w, h in ((1280, 800), (400, 800)):
            path = os.path.join(self.tmp.name, f"dashboard-{w}.png")
            self.chromium(f"--window-size={w},{h}", f"--screenshot={path}")
            self.assertEqual(png_size(path), (w, h))
            self.assertGreater(os.path.getsize(path), 10000)  # not a blank page
            shots[w] = path
        # `SIDECAR_SCREENSHOTS=dir` keeps them (docs/dashboard.png is one).
        keep = os.environ.get("SIDECAR_SCREENSHOTS")
        if keep:
            for w, path in shots.items():
                shutil.copy(path, os.path.join(keep, os.path.basename(path)))

    def test_page_without_javascript(self):
        rc, body, err = curl("-m", "10", f"http://{self.sc.admin}/")
        self.assertEqual(rc, 0, err)
        page = body.decode()
        self.assertIn('<meta name="viewport"', page)
        self.assertNotIn("http://", page.split("<script>")[0])  # no external assets
        self.assertNotIn("https://", page)
        self.assertLess(len(page), 16 * 1024)
        # The static table: totals by listener and route, with status classes.
        row = [r for r in page.split("<tr>") if r.startswith("<td>inbound</td><td>api</td>")]
        self.assertEqual(len(row), 1, page)
        cells = [c.split("</td>")[0] for c in row[0].split("<td>")[1:]]
        total, c2, c3, c4, c5 = map(float, cells[2:7])
        self.assertGreater(total, 0)
        self.assertEqual(c5, total)  # /status/503 is all the api route gets

    def test_stream_sends_a_snapshot_every_second(self):
        p = subprocess.run(["curl", "-sS", "-N", "-m", "2.5", "-D", "-",
                            f"http://{self.sc.admin}/stream"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 28)  # curl's "timed out": the stream does not end
        self.assertIn("content-type: text/event-stream", p.stdout.lower())
        events = [line[6:] for line in p.stdout.splitlines() if line.startswith("data: ")]
        self.assertIn(len(events), (2, 3, 4))
        self.assertEqual(p.stdout.count("event: snapshot\n"), len(events))
        snaps = [json.loads(e) for e in events]
        self.assertLess(snaps[0]["time"], snaps[-1]["time"])
        s = snaps[-1]
        self.assertTrue(s["ready"])
        names = {m["name"] for m in s["stats"]["metrics"]}
        self.assertIn("sidecar_http_request_duration_seconds", names)
        self.assertEqual(s["clusters"]["clusters"][0]["name"], "app")
        self.assertTrue(s["errors"])
        self.assertEqual(s["errors"][-1]["status"], 503)
        self.assertLessEqual(len(s["errors"]), 20)
        # once=1: one event, then the end.
        p = subprocess.run(["curl", "-sS", "-m", "10", f"http://{self.sc.admin}/stream?once=1"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout.count("data: "), 1)

    def test_tap_streams_matching_requests(self):
        p = subprocess.run(["curl", "-sS", "-N", "-m", "20",
                            f"http://{self.sc.admin}/tap?route=api&status=5xx&n=5"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)  # it ended by itself after n
        lines = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual(len(lines), 5)
        for r in lines:
            self.assertEqual((r["route"], r["status"], r["path"]), ("api", 503, "/status/503"))
            self.assertEqual(r["cluster"], "app")
            self.assertEqual(r["upstream_host"], self.up.address)
            self.assertEqual(len(r["request_id"]), 36)
            self.assertGreater(r["duration_ms"], 0)
        # A filter nothing matches ends at its time limit, empty.
        p = subprocess.run(["curl", "-sS", "-N", "-m", "20",
                            f"http://{self.sc.admin}/tap?route=nothing&seconds=1"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout), (0, ""))


if __name__ == "__main__":
    run_tests()
