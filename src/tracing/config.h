// The `tracing:` section (docs/tracing.md, docs/config.md "tracing").
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tracing/context.h"

namespace sidecar::tracing {

// Where one exporter sends its batches.
struct ExporterConfig {
  bool enabled = false;
  std::string endpoint;                           // http:// or https:// URL
  std::chrono::milliseconds batch_timeout{1000};  // a span waits at most this long
  uint32_t max_batch = 512;                       // spans per request
  bool gzip = false;                              // compression: gzip | none
  std::chrono::milliseconds timeout{10000};       // deadline of one export request
  uint32_t max_retries = 3;                       // more attempts on a connection error, 429 or 5xx
  bool operator==(const ExporterConfig&) const = default;
};

struct TracingConfig {
  std::string service_name = "sidecar";  // OTel service.name, Zipkin localEndpoint
  Sampling sampling;
  bool tracecontext = true;        // propagation: W3C traceparent/tracestate
  bool b3 = false;                 // propagation: B3 single + multi
  uint32_t max_queue_size = 2048;  // spans waiting for export; more are dropped
  ExporterConfig otlp;             // OTLP/HTTP protobuf
  ExporterConfig zipkin;           // Zipkin v2 JSON

  // The batch settings of the shared queue: the OTLP exporter's when
  // configured, else Zipkin's.
  const ExporterConfig& batch() const { return otlp.enabled ? otlp : zipkin; }
  bool operator==(const TracingConfig& o) const {
    return service_name == o.service_name && sampling.ratio == o.sampling.ratio &&
           sampling.parent_based == o.sampling.parent_based &&
           sampling.sample_errors == o.sampling.sample_errors && tracecontext == o.tracecontext &&
           b3 == o.b3 && max_queue_size == o.max_queue_size && otlp == o.otlp && zipkin == o.zipkin;
  }
};

// Registers the module kind "tracing" (module/module.h) and its parser.
void register_module();

}  // namespace sidecar::tracing
