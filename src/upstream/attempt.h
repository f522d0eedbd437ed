// How one upstream attempt (a request sent to one endpoint, a retry being
// another attempt) ended, as the router reports it to its cluster
// (ClusterRuntime::attempt_finished): the input of outlier detection and of
// latency-aware load balancing.
#pragma once

#include <chrono>
#include <cstdint>

namespace sidecar::upstream {

struct AttemptOutcome {
  enum class Kind {
    kResponse,        // the upstream answered with `status` (its response head arrived)
    kConnectFailure,  // refused, unreachable, TLS handshake failed, connect timeout
    kReset,           // closed or reset before the response completed
    kTimeout,         // the route's (or per-try) timeout fired first
  };
  Kind kind = Kind::kResponse;
  int status = 0;                       // kResponse only
  std::chrono::nanoseconds latency{0};  // send to response head (or failure)
};

}  // namespace sidecar::upstream
