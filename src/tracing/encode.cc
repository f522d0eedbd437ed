#include "tracing/encode.h"

#include <zlib.h>

#include <fmt/format.h>

#include "core/json.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace sidecar::tracing {
namespace {

namespace otlp = opentelemetry::proto;

void set_string(otlp::common::v1::KeyValue* kv, std::string_view key, std::string_view value) {
  kv->set_key(std::string(key));
  kv->mutable_value()->set_string_value(std::string(value));
}

}  // namespace

std::string encode_otlp(const std::vector<SpanRecord>& spans, std::string_view service_name) {
  otlp::collector::trace::v1::ExportTraceServiceRequest req;
  auto* rs = req.add_resource_spans();
  set_string(rs->mutable_resource()->add_attributes(), "service.name", service_name);
  set_string(rs->mutable_resource()->add_attributes(), "telemetry.sdk.name", "sidecar");
  set_string(rs->mutable_resource()->add_attributes(), "telemetry.sdk.language", "cpp");
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("sidecar");
  for (const SpanRecord& in : spans) {
    auto* s = ss->add_spans();
    s->set_trace_id(in.trace_id.data(), in.trace_id.size());
    s->set_span_id(in.span_id.data(), in.span_id.size());
    if (valid(in.parent_span_id)) {
      s->set_parent_span_id(in.parent_span_id.data(), in.parent_span_id.size());
    }
    if (!in.tracestate.empty()) s->set_trace_state(in.tracestate);
    s->set_name(in.name);
    s->set_kind(in.kind == SpanKind::kServer ? otlp::trace::v1::Span::SPAN_KIND_SERVER
                                             : otlp::trace::v1::Span::SPAN_KIND_CLIENT);
    s->set_start_time_unix_nano(in.start_unix_ns);
    s->set_end_time_unix_nano(in.end_unix_ns);
    for (const Attribute& a : in.attributes) {
      auto* kv = s->add_attributes();
      kv->set_key(a.key);
      if (a.is_int) {
        kv->mutable_value()->set_int_value(a.int_value);
      } else {
        kv->mutable_value()->set_string_value(a.string_value);
      }
    }
    if (in.error) {
      s->mutable_status()->set_code(otlp::trace::v1::Status::STATUS_CODE_ERROR);
      if (!in.status_message.empty()) s->mutable_status()->set_message(in.status_message);
    }
  }
  return req.SerializeAsString();
}

std::string encode_zipkin(const std::vector<SpanRecord>& spans, std::string_view service_name) {
  std::string b;
  b.reserve(spans.size() * 600);
  b += '[';
  for (size_t i = 0; i < spans.size(); ++i) {
    const SpanRecord& s = spans[i];
    if (i > 0) b += ',';
    b += "{\"traceId\":\"";
    append_hex(b, s.trace_id.data(), s.trace_id.size());
    b += "\",\"id\":\"";
    append_hex(b, s.span_id.data(), s.span_id.size());
    b += '"';
    if (valid(s.parent_span_id)) {
      b += ",\"parentId\":\"";
      append_hex(b, s.parent_span_id.data(), s.parent_span_id.size());
      b += '"';
    }
    b += ",\"kind\":";
    b += s.kind == SpanKind::kServer ? "\"SERVER\"" : "\"CLIENT\"";
    b += ",\"name\":";
    // Zipkin lower-cases span names; sending them so keeps the UI consistent.
    std::string name = s.name;
    for (char& c : name) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    core::append_json_string(b, name);
    const uint64_t start_us = s.start_unix_ns / 1000;
    const uint64_t end_us = s.end_unix_ns / 1000;
    // A duration of 0 means "unknown" to Zipkin: at least 1 us.
    b += fmt::format(",\"timestamp\":{},\"duration\":{}", start_us,
                     end_us > start_us ? end_us - start_us : 1);
    b += ",\"localEndpoint\":{\"serviceName\":";
    core::append_json_string(b, service_name);
    b += '}';
    if (!s.remote_ip.empty()) {
      b += s.remote_ip.find(':') != std::string::npos ? ",\"remoteEndpoint\":{\"ipv6\":"
                                                      : ",\"remoteEndpoint\":{\"ipv4\":";
      core::append_json_string(b, s.remote_ip);
      if (s.remote_port != 0) b += fmt::format(",\"port\":{}", s.remote_port);
      b += '}';
    }
    b += ",\"tags\":{";
    bool first = true;
    for (const Attribute& a : s.attributes) {
      if (!first) b += ',';
      first = false;
      core::append_json_string(b, a.key);
      b += ':';
      core::append_json_string(b, a.is_int ? std::to_string(a.int_value) : a.string_value);
    }
    if (s.error) {
      if (!first) b += ',';
      b += "\"error\":";
      std::string why = s.status_message;
      for (const Attribute& a : s.attributes) {
        if (why.empty() && a.key == "error.type") why = a.string_value;
      }
      core::append_json_string(b, why);
    }
    b += "}}";
  }
  b += ']';
  return b;
}

std::string gzip(std::string_view data) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return {};
  }
  std::string out;
  out.resize(deflateBound(&z, data.size()));
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return rc == Z_STREAM_END ? out : std::string();
}

}  // namespace sidecar::tracing
