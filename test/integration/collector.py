"""A trace collector for the tracing tests, on 127.0.0.1 port 0: receives
OTLP/HTTP protobuf (POST /v1/traces) and Zipkin v2 JSON (POST /api/v2/spans)
and decodes them the way a real collector does. OTLP is parsed with the
vendored opentelemetry-proto files compiled by protoc for python3-protobuf:
the same definitions the sidecar is built from, read by another
implementation. (Real collectors - the OpenTelemetry Collector, Zipkin -
are not Debian packages, so they cannot run here.)"""
import gzip
import json
import os
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.path.join(HERE, "..", "..", "third_party", "opentelemetry-proto")
_PROTOS = ["common/v1/common", "resource/v1/resource", "trace/v1/trace",
           "collector/trace/v1/trace_service"]
_GEN = tempfile.TemporaryDirectory(prefix="otlp-python-")
subprocess.run(["protoc", f"--python_out={_GEN.name}", "-I", PROTO_ROOT,
                *[os.path.join(PROTO_ROOT, "opentelemetry", "proto", p + ".proto") for p in _PROTOS]],
               check=True)
sys.path.insert(0, _GEN.name)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: E402


def _value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


class Collector:
    """Spans received, decoded to dicts:
    otlp:   {trace_id, span_id, parent_span_id (hex, "" for a root), name, kind
             ("SERVER"/"CLIENT"), start, end (ns), attributes {k: v}, status_code,
             service}
    zipkin: the JSON objects as sent.
    `fail_with`: answer every request with this status instead (and count it)."""

    def __init__(self, fail_with=None):
        self.otlp, self.zipkin, self.requests = [], [], []
        self.fail_with = fail_with
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                info = {"path": self.path, "content_type": self.headers.get("Content-Type"),
                        "content_encoding": self.headers.get("Content-Encoding"),
                        "size": len(body)}
                with outer.lock:
                    outer.requests.append(info)
                if outer.fail_with:
                    self._answer(outer.fail_with, b"no\n")
                    return
                if info["content_encoding"] == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/traces":
                    if info["content_type"] != "application/x-protobuf":
                        self._answer(415, b"want application/x-protobuf\n")
                        return
                    spans = outer._decode_otlp(body)
                    with outer.lock:
                        outer.otlp.extend(spans)
                    self._answer(200, trace_service_pb2.ExportTraceServiceResponse()
                                 .SerializeToString(), "application/x-protobuf")
                elif self.path == "/api/v2/spans":
                    spans = json.loads(body)
                    assert isinstance(spans, list)
                    with outer.lock:
                        outer.zipkin.extend(spans)
                    self._answer(202, b"")
                else:
                    self._answer(404, b"")

            def _answer(self, status, body, ctype="text/plain"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def _decode_otlp(body):
        req = trace_service_pb2.ExportTraceServiceRequest()
        req.ParseFromString(body)
        out = []
        kinds = {2: "SERVER", 3: "CLIENT"}
        for rs in req.resource_spans:
            res = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    out.append({
                        "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(), "name": s.name,
                        "kind": kinds.get(s.kind, str(s.kind)),
                        "start": s.start_time_unix_nano, "end": s.end_time_unix_nano,
                        "attributes": {kv.key: _value(kv.value) for kv in s.attributes},
                        "status_code": s.status.code, "trace_state": s.trace_state,
                        "service": res.get("service.name"), "scope": ss.scope.name})
        return out

    def otlp_spans(self):
        with self.lock:
            return list(self.otlp)

    def zipkin_spans(self):
        with self.lock:
            return list(self.zipkin)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
