#include "upstream/circuit_breaker.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <vector>

#include "stats/metric_writer.h"

namespace sidecar::upstream {
namespace {

// Live breakers, for reuse across reloads and for metrics.
struct Registry {
  std::mutex mu;
  std::vector<std::weak_ptr<CircuitBreaker>> breakers;
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: workers may outlive statics
  return *r;
}

}  // namespace

std::string_view CircuitBreaker::resource_name(Resource r) {
  switch (r) {
    case kConnections:
      return "connections";
    case kPendingRequests:
      return "pending_requests";
    case kRequests:
      return "requests";
    case kRetries:
      return "retries";
  }
  return "";
}

CircuitBreaker::CircuitBreaker(std::string cluster, const config::CircuitBreakers& thresholds)
    : cluster_(std::move(cluster)), thresholds_(thresholds) {}

std::shared_ptr<CircuitBreaker> CircuitBreaker::shared(const config::Cluster& cluster) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  std::erase_if(r.breakers, [](const std::weak_ptr<CircuitBreaker>& w) { return w.expired(); });
  for (const auto& w : r.breakers) {
    auto b = w.lock();
    if (b && b->cluster_ == cluster.name && b->thresholds_ == cluster.circuit_breakers) return b;
  }
  auto b = std::make_shared<CircuitBreaker>(cluster.name, cluster.circuit_breakers);
  r.breakers.push_back(b);
  return b;
}

uint64_t CircuitBreaker::limit(Resource r) const {
  switch (r) {
    case kConnections:
      return thresholds_.max_connections;
    case kPendingRequests:
      return thresholds_.max_pending_requests;
    case kRequests:
      return thresholds_.max_requests;
    case kRetries:
      if (!thresholds_.retry_budget) return thresholds_.max_retries;
      {
        // Envoy's retry budget: a share of what is in flight or waiting.
        const double active =
            static_cast<double>(std::max<int64_t>(0, counts_[kRequests].load()) +
                                std::max<int64_t>(0, counts_[kPendingRequests].load()));
        const auto budget =
            static_cast<uint64_t>(std::floor(active * thresholds_.budget_percent / 100.0));
        return std::max<uint64_t>(budget, thresholds_.min_retry_concurrency);
      }
  }
  return 0;
}

bool CircuitBreaker::can_create(Resource r) {
  const int64_t n = counts_[r].load(std::memory_order_relaxed);
  if (n < 0 || static_cast<uint64_t>(n) < limit(r)) return true;
  overflows_[r].fetch_add(1, std::memory_order_relaxed);
  return false;
}

bool CircuitBreaker::try_retry() { return try_acquire(kRetries); }

void CircuitBreaker::collect(stats::MetricWriter& w) {
  std::vector<std::shared_ptr<CircuitBreaker>> live;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mu);
    for (const auto& weak : r.breakers) {
      if (auto b = weak.lock()) live.push_back(std::move(b));
    }
  }
  // One sample per cluster name: the newest breaker of a name wins (an old
  // one lives on only while requests of a previous config finish).
  std::vector<CircuitBreaker*> shown;
  for (auto it = live.rbegin(); it != live.rend(); ++it) {
    bool dup = false;
    for (CircuitBreaker* s : shown) dup = dup || s->cluster_ == (*it)->cluster_;
    if (!dup) shown.push_back(it->get());
  }
  std::sort(shown.begin(), shown.end(), [](const CircuitBreaker* a, const CircuitBreaker* b) {
    return a->cluster_ < b->cluster_;
  });
  auto each = [&](auto value) {
    for (CircuitBreaker* b : shown) {
      for (size_t i = 0; i < kResources; ++i) {
        const auto r = static_cast<Resource>(i);
        const stats::Label labels[] = {{"cluster", b->cluster_}, {"resource", resource_name(r)}};
        w.sample(labels, value(*b, r));
      }
    }
  };
  w.family("sidecar_cluster_circuit_breaker_open", stats::MetricType::kGauge,
           "1 while the cluster's circuit breaker for the resource is at its limit");
  each([](CircuitBreaker& b, Resource r) {
    return static_cast<double>(b.count(r) >= b.limit(r) ? 1 : 0);
  });
  w.family("sidecar_cluster_circuit_breaker_remaining", stats::MetricType::kGauge,
           "How many more of the resource the circuit breaker admits");
  each([](CircuitBreaker& b, Resource r) {
    const int64_t n = std::max<int64_t>(0, b.counts_[r].load());
    const uint64_t l = b.limit(r);
    return static_cast<double>(static_cast<uint64_t>(n) >= l ? 0 : l - static_cast<uint64_t>(n));
  });
  w.family("sidecar_cluster_circuit_breaker_overflow_total", stats::MetricType::kCounter,
           "Requests refused (503, flag UO) or retries not made because the breaker was open");
  each([](CircuitBreaker& b, Resource r) { return static_cast<double>(b.overflows(r)); });
}

}  // namespace sidecar::upstream
