#!/usr/bin/python3
"""Log shipping to real receivers and through failures: rsyslog and
syslog-ng (RFC 5424 over TCP with octet counting, and UDP), the http, loki
and elasticsearch wire formats (a receiver in the test: Loki and
Elasticsearch are not installable here), dead letters, a receiver down
(the disk buffer grows, nothing is lost, it drains), SIGTERM, SIGKILL and
restart, and a full buffer disk."""
import gzip
import json
import os
import shutil
import signal
import tempfile
import time
import unittest

from harness import Sidecar, run_tests, wait_for
from logpeers import HttpReceiver, LineReceiver, Rsyslog, SyslogNg, logs_status, metric


class DeliveryBase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sidecar-logs-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.logs = os.path.join(self.dir, "logs")
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.logs)

    def path(self, name="app.log"):
        return os.path.join(self.logs, name)

    def append(self, start, count, extra=None):
        with open(self.path(), "a") as f:
            for i in range(start, start + count):
                record = {"n": i, "level": "error" if i % 10 == 0 else "info", "msg": f"line {i}"}
                record.update(extra or {})
                f.write(json.dumps(record) + "\n")

    def sidecar(self, outputs, input_extra="", parser="json", keep=False):
        config = f"""
workers: 1
drain: {{ timeout: 5s }}
logs:
  state_dir: {self.state}
  checkpoint_interval: 200ms
  inputs:
    - name: app
      file: {{ paths: [ "{self.logs}/*.log" ], poll_interval: 200ms }}
      parser: {parser}
{input_extra}
  outputs:
{outputs}
"""
        sc = Sidecar(config)
        if not keep:
            self.addCleanup(sc.stop)
        return sc


class SyslogTest(DeliveryBase):
    def check_syslog(self, daemon, transport, port):
        self.addCleanup(daemon.stop)
        self.append(0, 20)
        self.append(20, 1, {"msg": "multi\nline é"})
        self.sidecar(f"""
    - name: syslog
      syslog: {{ address: "127.0.0.1:{port}", transport: {transport}, app_name: myapp,
                hostname: pod-1, severity_key: level, message_key: msg, facility: 16 }}
      retry: {{ initial_backoff: 100ms }}
""")
        daemon.wait_messages(21)
        # (a message with a newline is written by syslog-ng as two lines)
        wait_for(lambda: len([m for m in daemon.messages() if m.count("|") >= 3]) >= 21,
                 what="21 messages")
        fields = [m.split("|", 3) for m in daemon.messages() if m.count("|") >= 3]
        self.assertEqual({f[0] for f in fields}, {"pod-1"})
        self.assertEqual({f[1] for f in fields}, {"myapp"})
        # facility local0 (16): PRI = 128 + severity (error 3, info 6)
        self.assertEqual(fields[0][2], "131")
        self.assertEqual(fields[1][2], "134")
        self.assertEqual([f[3] for f in fields[:20]], [f"line {i}" for i in range(20)])
        self.assertEqual(len(fields), 21)
        self.fields = fields

    def test_rsyslog_tcp_octet_counting(self):
        r = Rsyslog()
        self.check_syslog(r, "tcp", r.tcp_port)
        # the multi-line message arrived whole (octet counting, not newline
        # framing): rsyslog writes the newline as #012
        self.assertEqual(self.fields[20][3], "multi#012line é")

    def test_rsyslog_udp(self):
        r = Rsyslog()
        self.check_syslog(r, "udp", r.udp_port)

    def test_syslog_ng_tcp_octet_counting(self):
        s = SyslogNg()
        self.check_syslog(s, "tcp", s.tcp_port)
        self.assertTrue(self.fields[20][3] == "multi" and s.messages()[-1] == "line é")

    def test_syslog_ng_udp(self):
        s = SyslogNg()
        self.check_syslog(s, "udp", s.udp_port)


class HttpTest(DeliveryBase):
    def setUp(self):
        super().setUp()
        self.http = HttpReceiver()
        self.addCleanup(self.http.stop)

    def records_of(self, requests):
        out = []
        for r in requests:
            out.extend(json.loads(x) for x in r["body"].decode().split("\n") if x)
        return out

    def test_http_ndjson_gzip_batches_headers_and_auth(self):
        self.append(0, 300)
        self.sidecar(f"""
    - name: http
      http: {{ url: "{self.http.url}/ingest", gzip: true, headers: {{ X-Tenant: t1 }},
              auth: {{ user: u, password: p }} }}
      batch: {{ max_bytes: 8KiB, timeout: 200ms }}
      time_key: "@timestamp"
      tag_key: tag
""")
        wait_for(lambda: len(self.records_of(self.http.ok_requests())) >= 300, what="300 records")
        reqs = self.http.ok_requests()
        self.assertGreater(len(reqs), 3)  # batched by size
        h = reqs[0]["headers"]
        self.assertEqual(h["Content-Encoding"], "gzip")
        self.assertEqual(h["Content-Type"], "application/x-ndjson")
        self.assertEqual(h["X-Tenant"], "t1")
        self.assertEqual(h["Authorization"], "Basic dTpw")
        recs = self.records_of(reqs)
        self.assertEqual([r["n"] for r in recs], list(range(300)))
        self.assertEqual(recs[0]["tag"], "app")
        self.assertRegex(recs[0]["@timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")

    def test_json_array_and_bearer(self):
        self.append(0, 5)
        self.sidecar(f"""
    - name: http
      http: {{ url: "{self.http.url}/", format: json_array, auth: {{ bearer_token: abc }} }}
      batch: {{ timeout: 100ms }}
""")
        wait_for(lambda: self.http.ok_requests(), what="a request")
        r = self.http.ok_requests()[0]
        self.assertEqual(r["headers"]["Authorization"], "Bearer abc")
        self.assertEqual([x["n"] for x in json.loads(r["body"])], list(range(5)))

    def test_loki_push_format_and_labels(self):
        self.append(0, 10)
        self.sidecar(f"""
    - name: loki
      loki: {{ url: "{self.http.url}/loki/api/v1/push", labels: {{ app: shop }},
              label_keys: [ level ] }}
      batch: {{ timeout: 100ms }}
""")
        wait_for(lambda: self.http.ok_requests(), what="a push")
        time.sleep(0.3)
        streams = []
        for r in self.http.ok_requests():
            self.assertEqual(r["path"], "/loki/api/v1/push")
            self.assertEqual(r["headers"]["Content-Type"], "application/json")
            streams.extend(json.loads(r["body"])["streams"])
        labels = sorted(json.dumps(s["stream"], sort_keys=True) for s in streams)
        self.assertEqual(labels, ['{"app": "shop", "level": "error"}',
                                  '{"app": "shop", "level": "info"}'])
        values = [v for s in streams for v in s["values"]]
        self.assertEqual(len(values), 10)
        for ts, line in values:
            self.assertTrue(ts.isdigit() and len(ts) >= 19)
            self.assertIn('"msg":"line', line)

    def test_elasticsearch_bulk_retries_only_failed_items(self):
        self.append(0, 5)
        self.http.plan = ["bulk_errors"]
        sc = self.sidecar(f"""
    - name: es
      elasticsearch: {{ url: "{self.http.url}", index: app-logs }}
      batch: {{ timeout: 100ms }}
      retry: {{ initial_backoff: 100ms }}
""")
        wait_for(lambda: len(self.http.all_requests()) >= 2, what="a retry")
        first, second = self.http.all_requests()[:2]
        self.assertEqual(first["path"], "/_bulk")
        lines = first["body"].decode().strip().split("\n")
        self.assertEqual(json.loads(lines[0]), {"create": {"_index": "app-logs"}})
        self.assertIn("@timestamp", json.loads(lines[1]))
        # item 0 (400) went to the dead letters, item 1 (429) is sent again, alone
        retried = second["body"].decode().strip().split("\n")
        self.assertEqual(len(retried), 2)
        self.assertEqual(json.loads(retried[1])["n"], 1)
        dead = os.path.join(self.state, "dead_letter", "es.ndjson")
        wait_for(lambda: os.path.exists(dead), what="the dead letter file")
        with open(dead) as f:
            d = [json.loads(x) for x in f]
        self.assertEqual(len(d), 1)
        self.assertEqual((d[0]["status"], d[0]["record"]["n"]), (400, 0))
        wait_for(lambda: metric(sc, "sidecar_logs_output_records_total", status="sent") == 4,
                 what="4 records sent")

    def test_400_goes_to_dead_letters_429_and_500_are_retried(self):
        self.append(0, 3)
        self.http.plan = [500, 429, 400]
        sc = self.sidecar(f"""
    - name: http
      http: {{ url: "{self.http.url}/x" }}
      batch: {{ timeout: 100ms }}
      retry: {{ initial_backoff: 100ms }}
""")
        wait_for(lambda: len(self.http.all_requests()) >= 3, what="three attempts")
        wait_for(lambda: metric(sc, "sidecar_logs_output_records_total", status="dead_letter") == 3,
                 what="3 dead letters")
        self.assertGreaterEqual(metric(sc, "sidecar_logs_retries_total"), 2)
        self.append(3, 2)
        wait_for(lambda: self.http.ok_requests(), what="the next batch accepted")
        self.assertEqual([r["n"] for r in self.records_of(self.http.ok_requests())], [3, 4])


class FailureTest(DeliveryBase):
    def test_receiver_down_disk_buffer_grows_nothing_lost_then_drains(self):
        # The case is a 60 s outage; 4 s shows the same behaviour.
        http = HttpReceiver()
        url = http.url
        port = http.port
        http.stop()
        self.append(0, 2000)
        sc = self.sidecar(f"""
    - name: http
      http: {{ url: "{url}/x" }}
      batch: {{ max_bytes: 16KiB, timeout: 100ms }}
      buffer: {{ type: disk, memory_size: 64KiB, max_size: 64MiB }}
      retry: {{ initial_backoff: 200ms, max_backoff: 1s }}
""")
        wait_for(lambda: metric(sc, "sidecar_logs_buffer_bytes", type="disk") > 0,
                 what="chunks on disk")
        # Spilled chunks count as delivered for the checkpoint: it moves on.
        wait_for(lambda: logs_status(sc)["inputs"][0]["files"][0]["lag_bytes"] == 0,
                 what="the checkpoint past what is on disk")
        self.append(2000, 1000)
        time.sleep(3)
        http3 = HttpReceiver(port)  # back, on the same port
        self.addCleanup(http3.stop)
        wait_for(lambda: len(_records(http3)) >= 3000, timeout=30, what="the backlog delivered")
        nums = [r["n"] for r in _records(http3)]
        self.assertEqual(sorted(set(nums)), list(range(3000)))
        wait_for(lambda: metric(sc, "sidecar_logs_buffer_bytes", type="disk") == 0,
                 what="the disk buffer empty")
        self.assertGreater(metric(sc, "sidecar_logs_retries_total"), 0)

    def test_sigterm_delivers_what_is_left_within_the_drain_timeout(self):
        rx = LineReceiver()
        self.addCleanup(rx.stop)
        sc = self.sidecar(f"""
    - name: out
      tcp: {{ address: "{rx.address}" }}
""", input_extra="      multiline: { start: '^{', timeout: 1h }", keep=True)
        self.append(0, 100)
        rx.wait_lines(99)  # the last one waits in multiline
        sc.signal(signal.SIGTERM)
        self.assertEqual(sc.wait(timeout=15), 0)
        sc.stop()
        self.assertEqual(sorted(r["n"] for r in rx.records()), list(range(100)))
        with open(os.path.join(self.state, "checkpoints.json")) as f:
            cp = json.load(f)
        self.assertTrue(cp["clean"])
        self.assertEqual(cp["files"][0]["offset"], os.path.getsize(self.path()))

    def test_sigkill_and_restart_lose_nothing_and_count_duplicates(self):
        rx = LineReceiver()
        self.addCleanup(rx.stop)
        outputs = f"""
    - name: out
      tcp: {{ address: "{rx.address}" }}
"""
        self.append(0, 20000)
        sc = self.sidecar(outputs, keep=True)
        wait_for(lambda: len(rx.got()) >= 5000, what="some lines delivered")
        sc.signal(signal.SIGKILL)
        sc.wait()
        sc.stop()
        self.append(20000, 100)
        sc2 = self.sidecar(outputs)
        wait_for(lambda: len(set(r["n"] for r in rx.records())) >= 20100, timeout=30,
                 what="every line")
        nums = [r["n"] for r in rx.records()]
        self.assertEqual(sorted(set(nums)), list(range(20100)))
        dups = len(nums) - len(set(nums))
        replayed = metric(sc2, "sidecar_logs_input_replayed_lines_total")
        # duplicates are bounded by what was read after the last checkpoint,
        # and counted (as lines that may have been delivered before)
        self.assertLessEqual(dups, replayed)

    def test_full_buffer_disk_blocks_counts_and_recovers(self):
        http = HttpReceiver()
        self.addCleanup(http.stop)
        http.plan = [503] * 1000  # down for now
        self.append(0, 3000)
        sc = self.sidecar(f"""
    - name: http
      http: {{ url: "{http.url}/x" }}
      batch: {{ max_bytes: 16KiB, timeout: 100ms }}
      buffer: {{ type: disk, memory_size: 64KiB, max_size: 128KiB }}
      retry: {{ initial_backoff: 100ms, max_backoff: 200ms }}
""")
        wait_for(lambda: metric(sc, "sidecar_logs_buffer_full_total") >= 1, what="the buffer full")
        lag = logs_status(sc)["inputs"][0]["files"][0]["lag_bytes"]
        self.assertGreater(lag, 0)  # blocked: the file is the buffer
        with http.lock:
            http.plan = []
        wait_for(lambda: len(set(_numbers(http))) >= 3000, timeout=30, what="everything")
        self.assertEqual(sorted(set(_numbers(http))), list(range(3000)))


def _records(http):
    out = []
    for r in http.ok_requests():
        out.extend(json.loads(x) for x in r["body"].decode().split("\n") if x)
    return out


def _numbers(http):
    return [r["n"] for r in _records(http)]


if __name__ == "__main__":
    run_tests()
