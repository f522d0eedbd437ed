// The stream's report of each upstream attempt to its cluster
// (ClusterRuntime::attempt_finished: outlier detection, upstream/outlier.h).
#include "proxy/stream.h"
#include "upstream/cluster.h"

namespace sidecar::proxy {

void Stream::report_attempt(upstream::AttemptOutcome::Kind kind, uint16_t status) {
  if (!upstream_ || !cluster_) return;
  upstream::Endpoint* endpoint = upstream_->endpoint();
  if (endpoint == nullptr) return;
  const auto latency = upstream_used_ ? Clock::now() - upstream_start_ : Clock::duration::zero();
  cluster_->attempt_finished(
      *endpoint, upstream::AttemptOutcome{
                     kind, status, std::chrono::duration_cast<std::chrono::nanoseconds>(latency)});
}

}  // namespace sidecar::proxy
