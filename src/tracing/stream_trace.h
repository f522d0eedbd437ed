// The tracing state of one proxied request (proxy::Stream owns one): reads
// or starts the trace context, decides sampling, gives each upstream attempt
// a client span and its propagation headers, and at the end of the request
// hands the server span and the client spans to the exporter's queue.
//
// Spans follow the OpenTelemetry HTTP semantic conventions (v1.26): a
// SERVER span per inbound request, a CLIENT span per attempt upstream (a
// retry is another client span, with `http.request.resend_count`).
//
// Used only on the stream's worker thread. Does nothing (one branch per
// hook) when tracing is off.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tracing/context.h"

namespace sidecar::core {
class Random;
}
namespace sidecar::http {
struct RequestHead;
}

namespace sidecar::tracing {

struct Tracer;

// What the stream knows when the request starts.
struct RequestInfo {
  const http::RequestHead* request = nullptr;
  std::string_view path;          // origin-form target (with the query)
  std::string_view authority;     // Host or the absolute-form authority
  std::string_view peer_address;  // "10.0.0.1:5432"
  std::string_view request_id;    // x-request-id as forwarded
  std::string_view listener;
  bool tls = false;
  std::chrono::steady_clock::time_point started;  // the request's first byte
};

// What the stream knows when it ends.
struct EndInfo {
  uint16_t status = 0;  // sent downstream; 0: none (reset)
  uint32_t flags = 0;   // accesslog::ResponseFlag
  std::string_view route, cluster, upstream_host, detail;
  uint64_t request_body_bytes = 0, response_body_bytes = 0;
};

class StreamTrace {
 public:
  // Starts the trace of a request (a no-op without an active tracer).
  void begin(const RequestInfo& info, core::Random& random);
  bool active() const { return tracer_ != nullptr; }
  // Headers the proxy replaces by its own when forwarding (traceparent,
  // tracestate, b3, x-b3-*), when tracing is active. `name` in any case.
  static bool replaces(std::string_view name);
  // An attempt upstream starts: a new client span.
  void attempt_start(core::Random& random);
  // Appends the propagation headers of the current attempt ("name: value\r\n" lines).
  void append_headers(std::string& out) const;
  // The attempt ended: `status` the upstream's (0: none), `host` "ip:port".
  void attempt_end(std::string_view host, uint16_t status);
  // The request ended: exports its spans when sampled (or 5xx and sample_errors).
  void end(const EndInfo& info);

  // Lower-case hex of the trace id of the request begun last ("" when it
  // was not traced), for the access log; valid after end() too.
  std::string_view trace_id_hex() const { return trace_id_hex_; }

 private:
  struct Attempt {
    SpanId span_id{};
    uint64_t start_ns = 0, end_ns = 0;
    std::string host;
    uint16_t status = 0;
    bool open = false;
  };

  Tracer* tracer_ = nullptr;
  TraceId trace_id_{};
  SpanId span_id_{};         // the server span
  SpanId parent_span_id_{};  // the caller's span (zero: root)
  std::string tracestate_;
  std::string trace_id_hex_;
  bool sampled_ = false;
  uint64_t start_ns_ = 0;
  // Captured at begin (the request head is gone at the end).
  std::string method_, path_, authority_, peer_, user_agent_, request_id_, listener_;
  bool tls_ = false;
  uint8_t version_minor_ = 1;
  std::vector<Attempt> attempts_;
};

}  // namespace sidecar::tracing
