#!/usr/bin/python3
"""Log shipping from files: discovery, rotation (rename, copytruncate,
create-before-rename, many per second), truncation, deletion while open,
inode reuse, long lines, invalid UTF-8, read_from, checkpoints across a
restart. The output is TCP json_lines to a receiver in the test."""
import json
import os
import shutil
import signal
import tempfile
import threading
import time
import unittest

from harness import Sidecar, run_tests, wait_for
from logpeers import LineReceiver, logs_status, metric


class FilesTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sidecar-logs-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.logs = os.path.join(self.dir, "logs")
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.logs)
        self.rx = LineReceiver()
        self.addCleanup(self.rx.stop)

    def sidecar(self, file_opts="", input_extra="", parser="json", output_extra="",
                fmt="json_lines", paths=None):
        paths = paths or [f"{self.logs}/*.log"]
        config = f"""
workers: 1
logs:
  state_dir: {self.state}
  checkpoint_interval: 200ms
  inputs:
    - name: app
      file: {{ paths: {json.dumps(paths)}, poll_interval: 200ms, rotate_wait: 1s {file_opts} }}
      {f"parser: {parser}" if parser else ""}
{input_extra}
  outputs:
    - name: out
      tcp: {{ address: "{self.rx.address}", format: {fmt} }}
      retry: {{ initial_backoff: 100ms, max_backoff: 500ms }}
{output_extra}
"""
        sc = Sidecar(config)
        self.addCleanup(sc.stop)
        return sc

    def path(self, name="app.log"):
        return os.path.join(self.logs, name)

    def append(self, start, count, name="app.log"):
        with open(self.path(name), "a") as f:
            for i in range(start, start + count):
                f.write(json.dumps({"n": i, "msg": f"line {i}"}) + "\n")

    def numbers(self):
        return [r["n"] for r in self.rx.records()]

    def assert_exactly(self, expected):
        got = self.numbers()
        self.assertEqual(sorted(got), list(expected),
                         f"missing {sorted(set(expected) - set(got))[:10]} "
                         f"duplicated {[n for n in set(got) if got.count(n) > 1][:10]}")

    def test_existing_lines_new_lines_and_exact_resume_after_restart(self):
        self.append(0, 100)
        sc = self.sidecar()
        self.rx.wait_lines(100)
        self.append(100, 50)
        self.rx.wait_lines(150)
        wait_for(lambda: logs_status(sc)["inputs"][0]["files"][0]["offset"] ==
                 os.path.getsize(self.path()), what="the checkpoint at the end")
        self.assertEqual(metric(sc, "sidecar_logs_input_lines_total", input="app"), 150)
        self.assertEqual(metric(sc, "sidecar_logs_output_records_total", output="out",
                                status="sent"), 150)
        sc.stop()
        self.append(150, 30)  # written while the sidecar is down
        sc2 = self.sidecar()
        self.rx.wait_lines(180)
        time.sleep(0.5)
        self.assert_exactly(range(180))
        self.assertEqual(metric(sc2, "sidecar_logs_input_replayed_lines_total"), 0)

    def _writer(self, total, rotate, rate_per_s=4000):
        """Writes `total` numbered lines, calling rotate(i) at some of them."""
        f = open(self.path(), "a")
        interval = 1.0 / rate_per_s
        for i in range(total):
            f.write(json.dumps({"n": i}) + "\n")
            f.flush()
            if rotate(i):
                f.close()
                f = open(self.path(), "a")
            if i % 50 == 0:
                time.sleep(50 * interval)
        f.close()

    def test_rotation_by_rename_create_before_rename_and_many_per_second(self):
        sc = self.sidecar()
        rotations = [0]

        def rotate(i):
            # every 1000 lines a rename+create; between 5000 and 6000 one
            # every 50 lines (20 a second or more); at 3000 create-before-rename
            if i == 3000:
                with open(self.path("app.log.new"), "w"):
                    pass
                os.rename(self.path(), self.path(f"app.log.{i}"))
                os.rename(self.path("app.log.new"), self.path())
                rotations[0] += 1
                return True
            if (i % 1000 == 999) or (5000 <= i < 6000 and i % 50 == 49):
                os.rename(self.path(), self.path(f"app.log.{i}"))
                rotations[0] += 1
                return True
            return False

        self._writer(8000, rotate)
        self.rx.wait_lines(8000, timeout=30)
        time.sleep(0.5)
        self.assert_exactly(range(8000))
        self.assertGreater(rotations[0], 25)

    def test_copytruncate_reads_the_rest_from_the_copy(self):
        sc = self.sidecar()

        def rotate(i):
            if i % 1500 == 1499:
                shutil.copyfile(self.path(), self.path(f"app.log.{i}"))
                os.truncate(self.path(), 0)
            return False

        self._writer(6000, rotate)
        self.rx.wait_lines(6000, timeout=30)
        time.sleep(0.5)
        self.assert_exactly(range(6000))

    def test_truncation_without_a_copy_reads_the_new_content(self):
        self.append(0, 20)
        sc = self.sidecar()
        self.rx.wait_lines(20)
        os.truncate(self.path(), 0)
        time.sleep(0.3)
        self.append(100, 5)
        self.rx.wait_lines(25)
        self.assertEqual(sorted(self.numbers()), list(range(20)) + list(range(100, 105)))

    def test_file_deleted_while_open_is_read_to_its_end(self):
        f = open(self.path(), "a")
        for i in range(10):
            f.write(json.dumps({"n": i}) + "\n")
        f.flush()
        sc = self.sidecar()
        self.rx.wait_lines(10)
        os.unlink(self.path())
        for i in range(10, 30):
            f.write(json.dumps({"n": i}) + "\n")
        f.close()
        self.rx.wait_lines(30)
        self.assert_exactly(range(30))

    def test_new_files_matching_the_glob_and_excludes(self):
        sc = self.sidecar(file_opts=', exclude: [ "*.skip.log" ]')
        self.append(0, 3, "a.log")
        self.append(3, 3, "b.log")
        self.append(100, 3, "c.skip.log")
        with open(self.path("d.gz"), "w") as f:
            f.write('{"n": 200}\n')
        self.rx.wait_lines(6)
        time.sleep(0.6)
        self.assert_exactly(range(6))

    def test_polling_finds_files_where_inotify_cannot_watch(self):
        # A wildcard in a directory part: no inotify watch, polling only.
        os.makedirs(os.path.join(self.logs, "pod-1"))
        sc = self.sidecar(paths=[f"{self.logs}/*/app.log"])
        self.append(0, 5, "pod-1/app.log")
        self.rx.wait_lines(5)
        os.makedirs(os.path.join(self.logs, "pod-2"))
        self.append(5, 5, "pod-2/app.log")
        self.rx.wait_lines(10)
        self.assert_exactly(range(10))

    def test_reused_inode_with_other_content_is_read_from_the_start(self):
        self.append(0, 10)
        sc = self.sidecar()
        self.rx.wait_lines(10)
        sc.stop()
        # The same inode with new content (what a reused inode looks like to
        # the checkpoint): it must not resume at the old offset.
        with open(self.path(), "r+") as f:
            f.seek(0)
            for i in range(100, 130):
                f.write(json.dumps({"n": i, "msg": "new"}) + "\n")
        self.sidecar()
        self.rx.wait_lines(40)
        time.sleep(0.5)
        self.assertEqual(sorted(self.numbers()), list(range(10)) + list(range(100, 130)))

    def test_a_10mb_line_whole_split_or_truncated(self):
        big = "x" * (10 * 1024 * 1024)
        with open(self.path(), "w") as f:
            f.write(big + "\n" + "after\n")
        sc = self.sidecar(file_opts=", max_line_size: 16MiB", parser="", fmt="raw")
        got = self.rx.wait_lines(2, timeout=30)
        self.assertEqual(len(got[0]), len(big))
        self.assertEqual(got[1], "after")
        sc.stop()

        rx2 = LineReceiver()
        self.addCleanup(rx2.stop)
        self.rx = rx2
        shutil.rmtree(self.state)
        sc = self.sidecar(file_opts=", max_line_size: 4MiB", parser="", fmt="raw")
        got = self.rx.wait_lines(4, timeout=30)
        self.assertEqual([len(x) for x in got], [4 << 20, 4 << 20, 2 << 20, 5])
        self.assertEqual(metric(sc, "sidecar_logs_long_lines_total", action="split"), 2)
        sc.stop()

        rx3 = LineReceiver()
        self.addCleanup(rx3.stop)
        self.rx = rx3
        shutil.rmtree(self.state)
        sc = self.sidecar(file_opts=", max_line_size: 1MiB, long_lines: truncate", parser="",
                          fmt="raw")
        got = self.rx.wait_lines(2, timeout=30)
        time.sleep(0.3)
        self.assertEqual([len(x) for x in self.rx.got()], [1 << 20, 5])
        self.assertEqual(metric(sc, "sidecar_logs_long_lines_total", action="truncated"), 1)

    def test_invalid_utf8_is_replaced_and_counted(self):
        with open(self.path(), "wb") as f:
            f.write(b'{"n": 1, "msg": "ok \xc3\xa9"}\n')
            f.write(b'bad \xff\xfe bytes\n')
        sc = self.sidecar()
        got = self.rx.wait_lines(2)
        records = [json.loads(x) for x in got]
        self.assertEqual(records[0]["msg"], "ok \u00e9")
        self.assertEqual(records[1]["message"], "bad \ufffd\ufffd bytes")
        self.assertEqual(metric(sc, "sidecar_logs_input_invalid_utf8_total"), 1)
        self.assertEqual(metric(sc, "sidecar_logs_input_parse_failures_total"), 1)

    def test_read_from_tail_skips_what_was_there(self):
        self.append(0, 10)
        sc = self.sidecar(file_opts=", read_from: tail")
        wait_for(lambda: logs_status(sc)["inputs"][0]["files"], what="the file open")
        self.append(10, 5)
        self.rx.wait_lines(5)
        time.sleep(0.3)
        self.assert_exactly(range(10, 15))

    def test_java_stack_traces_become_one_record(self):
        with open(self.path(), "w") as f:
            f.write("2026-11-21 12:00:00 ERROR failed\n"
                    "java.lang.IllegalStateException: boom\n"
                    "\tat com.example.A.run(A.java:10)\n"
                    "\tat com.example.B.main(B.java:5)\n"
                    "Caused by: java.io.IOException: disk\n"
                    "\t... 2 more\n"
                    "2026-11-21 12:00:01 INFO next\n")
        sc = self.sidecar(input_extra="      multiline: { start: '^\\d{4}-', timeout: 300ms }",
                          parser="")
        got = wait_for(lambda: len(self.rx.records()) >= 2 and self.rx.records(),
                       what="two records")
        self.assertEqual(got[0]["message"].count("\n"), 5)
        self.assertTrue(got[0]["message"].endswith("... 2 more"))
        self.assertEqual(got[1]["message"], "2026-11-21 12:00:01 INFO next")


if __name__ == "__main__":
    run_tests()
