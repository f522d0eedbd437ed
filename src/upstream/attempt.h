// One upstream attempt of a request, as the balancer and the health code see
// it: started when an endpoint is chosen, finished once with its outcome.
//
// The stream reports every attempt through ClusterRuntime::attempt_started /
// attempt_finished (least_request's active counts, ewma's latency, the
// circuit breakers' request counts and, in health.h, outlier detection).
// `Attempt` is the guard a stream holds so that an attempt is finished
// exactly once, also when the stream is reset or destroyed mid-way.
//
// Thread safety: the worker's thread only.
#pragma once

#include <chrono>

#include "core/ref_counted.h"

namespace sidecar::upstream {

class ClusterRuntime;
class Endpoint;

struct AttemptOutcome {
  enum class Kind {
    kResponse,        // a response head arrived (any status)
    kConnectFailure,  // refused, unreachable, TLS failure or connect timeout
    kReset,           // closed or reset before the response completed; or abandoned
    kTimeout,         // the route's (or per-try) timeout fired
  } kind;
  int status = 0;  // kResponse: the upstream's status code
  // From the start of the attempt to its outcome; 0: measured by Attempt.
  std::chrono::nanoseconds latency{};
};

class Attempt {
 public:
  Attempt() = default;
  Attempt(const Attempt&) = delete;
  Attempt& operator=(const Attempt&) = delete;
  ~Attempt();  // finishes an open attempt as kReset

  // Finishes a previous attempt still open (as kReset), then starts one to
  // `endpoint` of `cluster`.
  void start(ClusterRuntime& cluster, Endpoint& endpoint);
  // A response head arrived: remembered (status, time to it) as the
  // outcome unless finish() is called with another one.
  void responded(int status);
  // Reports the outcome; later calls until the next start() do nothing.
  void finish(const AttemptOutcome& outcome);
  // The attempt never reached the endpoint (a circuit breaker refused its
  // connection): its counts are undone and no outcome is reported.
  void cancel();
  // Reports the remembered response, else kReset (the attempt was abandoned
  // or cut before a response).
  void finish();

  // Exchanges the attempts (a hedge that won becomes the stream's attempt).
  void swap(Attempt& other) noexcept;

  bool active() const { return endpoint_ != nullptr; }
  Endpoint* endpoint() const { return endpoint_; }
  // The endpoint of the attempt in flight, else of the last one finished
  // (for a retry's previous-hosts list).
  Endpoint* last_endpoint() const { return endpoint_ != nullptr ? endpoint_ : last_; }

 private:
  core::Ref<ClusterRuntime> cluster_;
  Endpoint* endpoint_ = nullptr;
  Endpoint* last_ = nullptr;  // kept alive by nothing: compare only, never dereference
  std::chrono::steady_clock::time_point started_;
  int status_ = 0;  // responded(): the status
  std::chrono::nanoseconds response_latency_{};
};

}  // namespace sidecar::upstream
