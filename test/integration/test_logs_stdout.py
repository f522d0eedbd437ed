#!/usr/bin/python3
"""Log shipping from the supervised app's stdout and stderr: passed through
to the sidecar's own output as before and shipped (logfmt parsed), the
app's last lines shipped on shutdown, a full queue dropping and counting,
and no pipe at all without an app_stdout input."""
import os
import shutil
import signal
import tempfile
import time
import unittest

from harness import PYTHON, Sidecar, run_tests, wait_for
from logpeers import LineReceiver, metric

APP = r"""
import os, sys, time, signal
signal.signal(signal.SIGTERM, lambda *a: (print('level=info msg="bye" n=999', flush=True), sys.exit(0)))
n = int(os.environ.get("LINES", "20"))
for i in range(n):
    print(f'level=info msg="hello {i}" n={i}', flush=True)
    if i % 5 == 0:
        print(f"err {i}", file=sys.stderr, flush=True)
print("fd1=" + os.readlink("/proc/self/fd/1"), flush=True)
time.sleep(3600)
"""


class StdoutTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sidecar-logs-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.app = os.path.join(self.dir, "app.py")
        with open(self.app, "w") as f:
            f.write(APP)
        self.rx = LineReceiver()
        self.addCleanup(self.rx.stop)

    def sidecar(self, logs=True, env=None, extra="", output_extra=""):
        config = f"""
workers: 1
logs:
  state_dir: {self.dir}/state
  inputs:
    - name: stdout
      app_stdout: {{ stream_key: stream {extra} }}
      parser: logfmt
  outputs:
    - name: out
      tcp: {{ address: "{self.rx.address}" }}
{output_extra}
""" if logs else "workers: 1\n"
        sc = Sidecar(config, app=[PYTHON, self.app], env=env, wait=True)
        self.addCleanup(sc.stop)
        return sc

    def test_passed_through_and_shipped_with_logfmt(self):
        sc = self.sidecar()
        wait_for(lambda: "fd1=pipe:" in sc.output(), what="the app's output passed through")
        out = sc.output()
        self.assertIn('level=info msg="hello 19" n=19', out)
        self.assertIn("err 15", out)  # stderr too
        records = wait_for(lambda: len(self.rx.records()) >= 25 and self.rx.records(),
                           what="25 records")
        stdout = [r for r in records if r.get("stream") == "stdout" and "n" in r]
        self.assertEqual([r["n"] for r in stdout], [str(i) for i in range(20)])
        self.assertEqual(stdout[3]["msg"], "hello 3")
        stderr = [r for r in records if r.get("stream") == "stderr"]
        self.assertEqual([r["message"] for r in stderr], [f"err {i}" for i in range(0, 20, 5)])
        # a stderr line is no logfmt: kept as message and counted
        self.assertEqual(metric(sc, "sidecar_logs_input_parse_failures_total"), 4)

    def test_the_apps_last_lines_are_shipped_on_shutdown(self):
        sc = self.sidecar()
        wait_for(lambda: len(self.rx.got()) >= 25, what="the first lines")
        sc.signal(signal.SIGTERM)
        self.assertEqual(sc.wait(timeout=15), 0)
        self.assertTrue(any(r.get("msg") == "bye" for r in self.rx.records()))

    def test_a_full_queue_drops_and_counts_without_blocking_the_app(self):
        self.rx.stop()  # nobody takes the records: the queue fills
        sc = self.sidecar(env={"LINES": "20000"}, extra=", buffer_size: 64KiB",
                          output_extra="      buffer: { memory_size: 64KiB }")
        # the app was never blocked: it wrote all its lines (seen passed through)
        wait_for(lambda: "fd1=pipe:" in sc.output(), timeout=20, what="the app to finish writing")
        wait_for(lambda: metric(sc, "sidecar_logs_dropped_total", reason="app_output_full") > 0,
                 what="drops counted")

    def test_no_pipe_without_an_app_stdout_input(self):
        sc = self.sidecar(logs=False)
        wait_for(lambda: "fd1=" in sc.output(), what="the app's fd 1")
        line = [x for x in sc.output().splitlines() if x.startswith("fd1=")][0]
        # the app writes straight into the sidecar's own stdout (the test's log file)
        self.assertEqual(line, "fd1=" + sc.log_path)


if __name__ == "__main__":
    run_tests()
