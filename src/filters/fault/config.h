// Config of the `fault` filter (Envoy's HTTP fault injection), for chaos
// testing; docs/filters.md "fault":
//
//   filters:
//     - name: fault
//       config:
//         delay: { fixed_delay: 2s, percentage: 10 }     # or { header_delay: true }
//         abort: { http_status: 503, percentage: 5 }     # or grpc_status: 14, or header_abort:
//         true max_active_faults: 100                         # default: no limit
//
// Header-controlled faults (Envoy's x-envoy-fault-* with our prefix): with
// `header_delay`, a request's `x-sidecar-fault-delay-request: <ms>` is
// delayed that long; with `header_abort`, `x-sidecar-fault-abort-request:
// <status>` (or `x-sidecar-fault-abort-grpc-request: <code>`) is answered so.
// Requests without the header get no fault. The configured percentage
// (default 100) still applies, lowered by `x-sidecar-fault-delay-request-
// percentage` / `x-sidecar-fault-abort-request-percentage` when given.
// Per-route `typed_per_filter_config` replaces the listener's.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>

#include "config/registry.h"

namespace sidecar::filters::fault {

struct Config {
  struct Delay {
    std::chrono::milliseconds fixed{0};
    bool from_header = false;
    double percentage = 100;  // 0..100
  };
  struct Abort {
    int http_status = 0;             // 200..599
    std::optional<int> grpc_status;  // 0..16: a gRPC error instead
    bool from_header = false;
    double percentage = 100;
  };
  std::optional<Delay> delay;
  std::optional<Abort> abort;
  uint64_t max_active_faults = UINT64_MAX;
  // Faults in progress (delays pending), shared by the workers.
  std::shared_ptr<std::atomic<uint64_t>> active = std::make_shared<std::atomic<uint64_t>>(0);
};

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

}  // namespace sidecar::filters::fault
