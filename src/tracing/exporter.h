// The span exporter: a thread that takes batches from the tracer's queue and
// sends them as OTLP/HTTP protobuf and/or Zipkin v2 JSON. It lives in
// libsidecar-tracing.so (libprotobuf and libcurl are mapped only when a
// config has `tracing:`); the tracing module loads it through the C entry
// point below. Only plain data and this virtual interface cross the boundary.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace sidecar::tracing {

struct TracingConfig;
class SpanSink;

// Counters of one exporter since start (monotonic).
struct ExporterStats {
  uint64_t spans_exported = 0;  // accepted by the collector (2xx)
  uint64_t spans_failed = 0;    // given up on after the retries
  uint64_t requests = 0;        // HTTP requests sent, retries included
  uint64_t retries = 0;
  std::string last_error;  // "" when the last request succeeded
};

class Exporter {
 public:
  virtual ~Exporter() = default;
  // Starts the export thread.
  virtual void start() = 0;
  // Sends what is queued, within `deadline`, and stops the thread. Spans
  // still queued at the deadline are dropped and counted as failed.
  virtual void stop(std::chrono::steady_clock::time_point deadline) = 0;
  // A snapshot of the counters (any thread). `zipkin`: that exporter's.
  virtual ExporterStats stats(bool zipkin) const = 0;
};

// `config` and `sink` outlive the exporter.
using CreateExporterFn = Exporter* (*)(const TracingConfig* config, SpanSink* sink);
inline constexpr const char* kCreateExporterSymbol = "sidecar_tracing_exporter_create";

}  // namespace sidecar::tracing
