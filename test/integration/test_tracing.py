#!/usr/bin/python3
"""Distributed tracing (docs/tracing.md): trace context in and out, sampling,
and the spans two chained sidecars export, as a collector decodes them
(collector.py: OTLP/HTTP protobuf and Zipkin v2 JSON)."""
import json
import os
import signal
import tempfile
import subprocess
import time
import unittest

from collector import Collector
from harness import BIN, Sidecar, Upstream, curl, run_tests, wait_for

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def config(cluster_address, collector, name, ratio=1.0, extra="", batch_timeout="200ms",
           otlp_extra="", zipkin=True):
    zipkin_line = (f"  zipkin: {{ endpoint: http://127.0.0.1:{collector.port}/api/v2/spans, "
                   f"batch_timeout: {batch_timeout} }}\n") if zipkin else ""
    return f"""
workers: 2
clusters:
  - {{ name: app, endpoints: [ "{cluster_address}" ], connect_timeout: 1s }}
listeners:
  - name: inbound
    address: 127.0.0.1:0
    routes:
      - {{ name: main, match: {{ prefix: / }}, cluster: app }}
tracing:
  service_name: {name}
  sampling: {{ ratio: {ratio}, parent_based: true, sample_errors: true }}
  propagation: [ tracecontext, b3 ]
  otlp: {{ endpoint: http://127.0.0.1:{collector.port}/v1/traces, batch_timeout: {batch_timeout},
          max_batch: 512, compression: gzip{otlp_extra} }}
{zipkin_line}{extra}"""


def get(url, *headers):
    args = []
    for h in headers:
        args += ["-H", h]
    rc, out, err = curl("-m", "10", *args, url)
    assert rc == 0, err
    return out


def upstream_headers(url, *headers):
    """The request headers the test upstream received (GET /headers), lower-cased names."""
    seen = json.loads(get(url, *headers))
    return {k.lower(): v for k, v in seen["headers"]}


def metrics(sc):
    status, text = sc.admin_get("/metrics")
    assert status == 200
    out = {}
    for line in text.splitlines():
        if line.startswith("sidecar_tracing"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


class ChainTest(unittest.TestCase):
    """client -> sidecar A -> sidecar B -> upstream, both exporting."""

    @classmethod
    def setUpClass(cls):
        cls.collector = Collector()
        cls.up = Upstream()
        cls.logdir = tempfile.TemporaryDirectory(prefix="tracing-log-")
        cls.log = os.path.join(cls.logdir.name, "access.log")
        cls.b = Sidecar(config(cls.up.address, cls.collector, "svc-b",
                               extra=f"access_log: {{ path: {cls.log} }}\n"))
        cls.a = Sidecar(config(f"127.0.0.1:{cls.b.port()}", cls.collector, "svc-a"))

    @classmethod
    def tearDownClass(cls):
        cls.a.stop()
        cls.b.stop()
        cls.up.stop()
        cls.collector.stop()
        cls.logdir.cleanup()

    def spans_of(self, trace_id, n, source):
        def found():
            spans = [s for s in source() if (s.get("trace_id") or s.get("traceId")) == trace_id]
            return spans if len(spans) >= n else None
        return wait_for(found, timeout=10, what=f"{n} spans of trace {trace_id}")

    def test_chain_continues_the_callers_trace(self):
        headers = upstream_headers(self.a.url("/headers?x=1"),
                                   f"traceparent: 00-{CALLER_TRACE}-{CALLER_SPAN}-01",
                                   "tracestate: vendor=abc", "user-agent: tracing-test/1")
        tp = headers["traceparent"].split("-")
        self.assertEqual(tp[0], "00")
        self.assertEqual(tp[1], CALLER_TRACE)
        self.assertEqual(tp[3], "01")
        self.assertEqual(headers["tracestate"], "vendor=abc")
        # B3 is emitted too (propagation: [tracecontext, b3]), the same ids.
        self.assertEqual(headers["x-b3-traceid"], CALLER_TRACE)
        self.assertEqual(headers["x-b3-spanid"], tp[2])
        self.assertEqual(headers["x-b3-sampled"], "1")
        self.assertTrue(headers["b3"].startswith(f"{CALLER_TRACE}-{tp[2]}-1-"))

        spans = self.spans_of(CALLER_TRACE, 4, self.collector.otlp_spans)
        self.assertEqual(len(spans), 4, spans)
        by = {(s["service"], s["kind"]): s for s in spans}
        a_srv, a_cli = by[("svc-a", "SERVER")], by[("svc-a", "CLIENT")]
        b_srv, b_cli = by[("svc-b", "SERVER")], by[("svc-b", "CLIENT")]
        # The parent chain: caller -> A server -> A client -> B server -> B client -> app.
        self.assertEqual(a_srv["parent_span_id"], CALLER_SPAN)
        self.assertEqual(a_cli["parent_span_id"], a_srv["span_id"])
        self.assertEqual(b_srv["parent_span_id"], a_cli["span_id"])
        self.assertEqual(b_cli["parent_span_id"], b_srv["span_id"])
        self.assertEqual(tp[2], b_cli["span_id"])
        self.assertEqual(a_srv["trace_state"], "vendor=abc")
        for s in spans:
            self.assertEqual(len(s["span_id"]), 16)
            self.assertLessEqual(s["start"], s["end"])
            self.assertEqual(s["attributes"]["http.request.method"], "GET")
            self.assertEqual(s["attributes"]["http.response.status_code"], 200)
            self.assertEqual(s["attributes"]["url.path"], "/headers")
            self.assertEqual(s["scope"], "sidecar")
        # The client span lies within its server span.
        self.assertLessEqual(a_srv["start"], a_cli["start"])
        self.assertLessEqual(a_cli["end"], a_srv["end"])
        # OTel HTTP semantic conventions and the proxy's own attributes.
        at = a_srv["attributes"]
        self.assertEqual(a_srv["name"], "GET main")
        self.assertEqual(at["url.query"], "x=1")
        self.assertEqual(at["url.scheme"], "http")
        self.assertEqual(at["server.address"], "127.0.0.1")
        self.assertEqual(at["server.port"], self.a.port())
        self.assertEqual(at["network.peer.address"], "127.0.0.1")
        self.assertEqual(at["user_agent.original"], "tracing-test/1")
        self.assertEqual(at["sidecar.route"], "main")
        self.assertEqual(at["sidecar.cluster"], "app")
        self.assertEqual(at["sidecar.upstream_host"], f"127.0.0.1:{self.b.port()}")
        self.assertEqual(at["sidecar.response_flags"], "-")
        # x-request-id is tied to the trace: the id B and the app saw.
        self.assertEqual(at["sidecar.request_id"], headers["x-request-id"])
        self.assertEqual(b_srv["attributes"]["sidecar.request_id"], headers["x-request-id"])
        self.assertEqual(b_cli["attributes"]["server.address"], "127.0.0.1")
        self.assertEqual(b_cli["attributes"]["server.port"], self.up.port)
        self.assertEqual(b_cli["name"], "GET")
        # OTLP bodies went gzip-compressed as protobuf.
        otlp_reqs = [r for r in self.collector.requests if r["path"] == "/v1/traces"]
        self.assertTrue(otlp_reqs)
        self.assertTrue(all(r["content_encoding"] == "gzip" for r in otlp_reqs))

        # Zipkin v2 JSON: the same spans.
        z = self.spans_of(CALLER_TRACE, 4, self.collector.zipkin_spans)
        zby = {(s["localEndpoint"]["serviceName"], s["kind"]): s for s in z}
        self.assertEqual(zby[("svc-a", "SERVER")]["id"], a_srv["span_id"])
        self.assertEqual(zby[("svc-a", "SERVER")]["parentId"], CALLER_SPAN)
        self.assertEqual(zby[("svc-b", "SERVER")]["parentId"], a_cli["span_id"])
        zc = zby[("svc-b", "CLIENT")]
        self.assertEqual(zc["remoteEndpoint"], {"ipv4": "127.0.0.1", "port": self.up.port})
        self.assertEqual(zc["tags"]["http.response.status_code"], "200")
        self.assertEqual(zc["name"], "get")
        self.assertIsInstance(zc["timestamp"], int)
        self.assertGreaterEqual(zc["duration"], 1)

        # The access log line has the trace id (the default JSON line).
        def logged():
            with open(self.log) as f:
                lines = [json.loads(line) for line in f if line.strip()]
            return [x for x in lines if x["trace_id"] == CALLER_TRACE]
        line = wait_for(logged, timeout=10, what="the access log line")[0]
        self.assertEqual(line["request_id"], headers["x-request-id"])

    def test_b3_single_and_multi_are_read(self):
        trace = "80f198ee56343ba864fe8b2a57d3eff7"
        headers = upstream_headers(self.a.url("/headers"),
                                   f"b3: {trace}-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")
        self.assertEqual(headers["traceparent"].split("-")[1], trace)
        spans = self.spans_of(trace, 4, self.collector.otlp_spans)
        a_srv = [s for s in spans if s["service"] == "svc-a" and s["kind"] == "SERVER"][0]
        self.assertEqual(a_srv["parent_span_id"], "e457b5a2e4d86bd1")
        # Multi headers with a 64-bit trace id (left-padded to 128 bits).
        headers = upstream_headers(self.a.url("/headers"), "x-b3-traceid: a3ce929d0e0e4736",
                                   "x-b3-spanid: 00f067aa0ba902b7", "x-b3-sampled: 1")
        self.assertEqual(headers["traceparent"].split("-")[1], "0000000000000000a3ce929d0e0e4736")

    def test_errors_are_marked(self):
        trace = "11111111111111111111111111111111"
        rc, out, err = curl("-m", "10", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                            f"traceparent: 00-{trace}-{CALLER_SPAN}-01", self.a.url("/status/503"))
        self.assertEqual(out, b"503")
        spans = self.spans_of(trace, 4, self.collector.otlp_spans)
        for s in spans:
            self.assertEqual(s["status_code"], 2, s)  # STATUS_CODE_ERROR
            self.assertEqual(s["attributes"]["error.type"], "503")
        z = self.spans_of(trace, 4, self.collector.zipkin_spans)
        self.assertTrue(all(s["tags"]["error"] == "503" for s in z))


class SamplingTest(unittest.TestCase):
    """ratio 0, parent-based, sample_errors: what is exported and what is not."""

    def test_sampling_decisions(self):
        collector = Collector()
        up = Upstream()
        sc = Sidecar(config(up.address, collector, "svc", ratio=0.0, zipkin=False))
        try:
            # The caller said "not sampled": nothing exported, the flag passed on.
            unsampled = "22222222222222222222222222222222"
            tp = upstream_headers(sc.url("/headers"),
                                  f"traceparent: 00-{unsampled}-{CALLER_SPAN}-00")["traceparent"].split("-")
            self.assertEqual((tp[1], tp[3]), (unsampled, "00"))
            # No context and ratio 0: a new trace, not sampled.
            fresh = upstream_headers(sc.url("/headers"))["traceparent"].split("-")
            self.assertNotEqual(fresh[1], unsampled)
            self.assertEqual(fresh[3], "00")
            # A malformed traceparent starts a new trace [W3C 3.2.2.5].
            upper = "ABCDEF0123456789ABCDEF0123456789"
            tp = upstream_headers(sc.url("/headers"),
                                  f"traceparent: 00-{upper}-{CALLER_SPAN}-01")["traceparent"]
            self.assertNotIn(upper.lower(), tp)
            self.assertTrue(tp.endswith("-00"), tp)
            # An unsampled request that ends in 5xx is exported (sample_errors).
            errored = "33333333333333333333333333333333"
            get(sc.url("/status/500"), f"traceparent: 00-{errored}-{CALLER_SPAN}-00")
            # The caller's sampled flag wins over ratio 0 (parent_based).
            sampled = "44444444444444444444444444444444"
            get(sc.url("/hello"), f"traceparent: 00-{sampled}-{CALLER_SPAN}-01")

            def traces():
                ids = {s["trace_id"] for s in collector.otlp_spans()}
                return ids if sampled in ids and errored in ids else None
            ids = wait_for(traces, timeout=10, what="the sampled and the errored trace")
            # Spans leave in order through one queue: the unsampled ones
            # would have been sent by now.
            self.assertEqual(ids, {sampled, errored})
            m = metrics(sc)
            self.assertEqual(m["sidecar_tracing_spans_total"], 4)
            self.assertEqual(m['sidecar_tracing_spans_exported_total{exporter="otlp"}'], 4)
            self.assertEqual(m["sidecar_tracing_spans_dropped_total"], 0)
        finally:
            sc.stop()
            up.stop()
            collector.stop()


class ExportTest(unittest.TestCase):
    def test_full_queue_drops_and_failures_are_counted(self):
        collector = Collector(fail_with=503)
        up = Upstream()
        # A queue of one span: the client span of each request finds it full.
        sc = Sidecar(config(up.address, collector, "svc", batch_timeout="100ms", zipkin=False,
                            otlp_extra=", max_retries: 2, timeout: 2s",
                            extra="  max_queue_size: 1\n"))
        try:
            get(sc.url("/hello"))
            m = wait_for(lambda: (lambda m: m if m.get(
                'sidecar_tracing_spans_failed_total{exporter="otlp"}', 0) >= 1 else None)(
                    metrics(sc)), timeout=15, what="a failed export")
            self.assertEqual(m["sidecar_tracing_spans_dropped_total"], 1)
            self.assertEqual(m['sidecar_tracing_export_requests_total{exporter="otlp"}'], 3)
            self.assertEqual(m['sidecar_tracing_export_retries_total{exporter="otlp"}'], 2)
            status, body = sc.admin_get("/tracing")
            self.assertEqual(status, 200)
            st = json.loads(body)
            self.assertEqual(st["exporters"]["otlp"]["last_error"], "HTTP 503")
            self.assertEqual(st["queue"]["dropped"], 1)
        finally:
            sc.stop()
            up.stop()
            collector.stop()

    def test_queued_spans_are_sent_at_shutdown(self):
        collector = Collector()
        up = Upstream()
        # A batch timeout far beyond the test: only the shutdown flush sends.
        sc = Sidecar(config(up.address, collector, "svc", batch_timeout="1h"))
        try:
            get(sc.url("/hello"))
            time.sleep(0.2)
            self.assertEqual(collector.otlp_spans(), [])
            sc.signal(signal.SIGTERM)
            self.assertEqual(sc.wait(timeout=15), 0)
            self.assertEqual(len(collector.otlp_spans()), 2)
            self.assertEqual(len(collector.zipkin_spans()), 2)
        finally:
            sc.stop()
            up.stop()
            collector.stop()

    def test_config_errors(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bad.yaml")
            with open(path, "w") as f:
                f.write("tracing:\n  propagation: [ tracecontext, jaeger ]\n"
                        "  sampling: { ratio: 2 }\n")
            p = subprocess.run([BIN, "validate", "-c", path], capture_output=True, text=True,
                               timeout=10)
            self.assertEqual(p.returncode, 64)
            self.assertIn(f"{path}:2:32: tracing.propagation: unknown format 'jaeger'", p.stderr)
            self.assertIn(f"{path}:3:22: tracing.sampling.ratio must be a number from 0 to 1",
                          p.stderr)
            self.assertIn("tracing needs an exporter", p.stderr)

class ReloadTest(unittest.TestCase):
    def test_reload_switches_exporter_and_keeps_counting(self):
        first, second = Collector(), Collector()
        up = Upstream()
        # Spans wait in the first exporter's queue (batch_timeout 1h) until the reload.
        sc = Sidecar(config(up.address, first, "svc-1", batch_timeout="1h", zipkin=False))
        try:
            get(sc.url("/hello"))
            time.sleep(0.2)
            self.assertEqual(first.otlp_spans(), [])
            tmp = sc.config_path + ".tmp"
            with open(tmp, "w") as f:
                f.write("admin: { address: 127.0.0.1:0 }\n" +
                        config(up.address, second, "svc-2", zipkin=False))
            os.rename(tmp, sc.config_path)
            sc.signal(signal.SIGHUP)
            # The replaced exporter sends what it held; new requests go to the new one.
            wait_for(lambda: len(first.otlp_spans()) == 2, timeout=10, what="the old queue sent")
            self.assertEqual({s["service"] for s in first.otlp_spans()}, {"svc-1"})

            def second_spans():
                get(sc.url("/hello"))
                return {s["service"] for s in second.otlp_spans()} == {"svc-2"}
            wait_for(second_spans, timeout=10, what="spans of the new config")
            status, body = sc.admin_get("/tracing")
            self.assertEqual(json.loads(body)["service_name"], "svc-2")
            # Counters add up across the reload.
            m = metrics(sc)
            self.assertGreaterEqual(m["sidecar_tracing_spans_total"], 4)
            self.assertEqual(m['sidecar_tracing_spans_exported_total{exporter="otlp"}'],
                             len(first.otlp_spans()) + len(second.otlp_spans()))
        finally:
            sc.stop()
            up.stop()
            first.stop()
            second.stop()


if __name__ == "__main__":
    run_tests()
