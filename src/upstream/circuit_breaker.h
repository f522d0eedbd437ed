// Circuit breakers of a cluster (Envoy's, priority DEFAULT): limits on the
// connections, the requests waiting for a connection, the requests in flight
// and the retries in flight to all endpoints of a cluster, counted across the
// whole process. Beyond a limit the request fails at once (503, response
// flag UO): nothing queues. docs/resilience.md "Circuit breakers".
//
// One CircuitBreaker per cluster, shared by every worker (atomic counts); a
// reload that keeps the cluster's name and thresholds keeps the same object,
// so counts of requests in flight survive it.
//
// Thread safety: every method may be called from any thread. The checks are
// Envoy's "check, then count" (not one atomic step): with N workers a limit
// may be passed by up to N - 1 at the same instant, as in Envoy.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "config/config.h"

namespace sidecar::stats {
class MetricWriter;
}

namespace sidecar::upstream {

class CircuitBreaker {
 public:
  enum Resource : uint8_t { kConnections, kPendingRequests, kRequests, kRetries };
  static constexpr size_t kResources = 4;
  // Metric label values: "connections", "pending_requests", "requests", "retries".
  static std::string_view resource_name(Resource r);

  CircuitBreaker(std::string cluster, const config::CircuitBreakers& thresholds);

  // The process-wide breaker of `cluster`: the existing one when a breaker
  // of that name and thresholds is alive, else a new one (registered for
  // metrics until its last user drops it). Main thread (config loading).
  static std::shared_ptr<CircuitBreaker> shared(const config::Cluster& cluster);

  // Whether one more of `r` fits; counts an overflow when not.
  bool can_create(Resource r);
  void add(Resource r) { counts_[r].fetch_add(1, std::memory_order_relaxed); }
  void sub(Resource r) { counts_[r].fetch_sub(1, std::memory_order_relaxed); }
  // can_create + add.
  bool try_acquire(Resource r) {
    if (!can_create(r)) return false;
    add(r);
    return true;
  }

  // For the retry code: true and counted when one more retry may start
  // (max_retries, or the retry budget: budget_percent of the requests in
  // flight and pending, at least min_retry_concurrency); false counts a
  // retry overflow. Every true must be matched by one retry_done().
  bool try_retry();
  void retry_done() { sub(kRetries); }

  uint64_t count(Resource r) const {
    const int64_t n = counts_[r].load(std::memory_order_relaxed);
    return n < 0 ? 0 : static_cast<uint64_t>(n);
  }
  uint64_t limit(Resource r) const;
  // At its limit (not counted as an overflow).
  bool full(Resource r) const { return count(r) >= limit(r); }
  uint64_t overflows(Resource r) const { return overflows_[r].load(std::memory_order_relaxed); }
  const std::string& cluster() const { return cluster_; }
  const config::CircuitBreakers& thresholds() const { return thresholds_; }

  // Writes sidecar_cluster_circuit_breaker_open{cluster,resource} (1 while
  // at its limit), ..._remaining and ..._overflow_total of every live breaker.
  static void collect(stats::MetricWriter& w);

 private:
  const std::string cluster_;
  const config::CircuitBreakers thresholds_;
  std::array<std::atomic<int64_t>, kResources> counts_{};
  std::array<std::atomic<uint64_t>, kResources> overflows_{};
};

// One retry counted in a cluster's breaker (max_retries or retry_budget),
// held from the decision to retry until the retry's attempt ends or the
// request does (Envoy counts a retry in flight the same way). One per stream.
class RetryToken {
 public:
  RetryToken() = default;
  RetryToken(const RetryToken&) = delete;
  RetryToken& operator=(const RetryToken&) = delete;
  ~RetryToken() { release(); }

  // Releases a token still held, then asks `breaker` for one; false (and
  // the breaker's retry overflow counted) when the breaker is full.
  bool acquire(std::shared_ptr<CircuitBreaker> breaker) {
    release();
    if (!breaker->try_retry()) return false;
    breaker_ = std::move(breaker);
    return true;
  }
  // The retry's attempt started; attempt_ended() then releases the token.
  void attempt_started() { started_ = breaker_ != nullptr; }
  void attempt_ended() {
    if (started_) release();
  }
  void release() {
    if (breaker_) breaker_->retry_done();
    breaker_.reset();
    started_ = false;
  }

 private:
  std::shared_ptr<CircuitBreaker> breaker_;
  bool started_ = false;
};

}  // namespace sidecar::upstream
