// Whether an endpoint is healthy, for the whole process: one EndpointHealth
// per (cluster name, endpoint address), kept in a process-wide registry so
// that it survives config reloads and new endpoint snapshots (discovery).
// Every worker's upstream::Endpoint holds a reference to its entry; the
// health thread (upstream/health_checker.h) writes active health check
// results into it, workers write passive (outlier detection) results.
//
// Semantics follow Envoy (docs/resilience.md):
//   - healthy() = not failed by active health checking AND not ejected by
//     outlier detection.
//   - An endpoint that joins a cluster with active health checks starts
//     failed and pending (FAILED_ACTIVE_HC | PENDING_ACTIVE_HC), for static
//     and DNS clusters alike; its first check decides at once (one success
//     makes it healthy, whatever healthy_threshold says). Load balancers
//     fall back to all endpoints (panic) when too few are healthy, so a
//     starting sidecar still sends traffic before the first round ends.
//   - Outlier ejection: Envoy's algorithm (upstream/outlier.h).
//
// Thread safety: EndpointHealth fields are atomics (relaxed: each is a
// hint read on every request, no ordering between them is relied on).
// ClusterHealth and HealthRegistry lock a mutex; none of it is taken per
// request except on an ejection.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sidecar::upstream {

using HealthClock = std::chrono::steady_clock;

class ClusterHealth;

// A counter bumped whenever some endpoint's healthy() may have changed (any
// thread): each worker compares it with the value it saw last and copies the
// health into its balancers then (ClusterRuntime::refresh_health), so a
// request pays one relaxed load.
uint64_t health_generation();
void health_changed();

class EndpointHealth {
 public:
  EndpointHealth(ClusterHealth& cluster, std::string address)
      : cluster(cluster), address(std::move(address)) {}
  EndpointHealth(const EndpointHealth&) = delete;
  EndpointHealth& operator=(const EndpointHealth&) = delete;

  bool healthy() const {
    return !failed_active_hc.load(std::memory_order_relaxed) &&
           !ejected.load(std::memory_order_relaxed);
  }

  ClusterHealth& cluster;
  const std::string address;  // "127.0.0.1:8080", "[::1]:8080"

  // Active health checking (written by the health thread).
  std::atomic<bool> failed_active_hc{false};
  std::atomic<bool> pending_active_hc{false};  // not checked since it joined
  // The last passing HTTP check carried `x-envoy-degraded` (Envoy's
  // signal): used only for traffic the non-degraded hosts cannot take.
  std::atomic<bool> degraded_active_hc{false};
  std::atomic<uint32_t> hc_consecutive_successes{0};
  std::atomic<uint32_t> hc_consecutive_failures{0};
  std::atomic<uint64_t> hc_successes{0};  // totals, for /clusters
  std::atomic<uint64_t> hc_failures{0};
  std::atomic<int64_t> hc_last_check_unix_ms{0};

  // Outlier detection (written by workers and the health thread).
  std::atomic<bool> ejected{false};
  std::atomic<int64_t> ejected_until_ns{0};       // HealthClock, since its epoch
  std::atomic<int64_t> ejected_until_unix_ms{0};  // the same, wall clock, for /clusters
  std::atomic<uint32_t> ejection_multiplier{0};   // Envoy's eject time backoff
  std::atomic<uint64_t> ejections_total{0};
  std::atomic<uint32_t> consecutive_5xx{0};
  std::atomic<uint32_t> consecutive_gateway_failure{0};
  std::atomic<uint32_t> consecutive_local_origin_failure{0};
  // The success-rate window: the current outlier interval.
  std::atomic<uint64_t> window_requests{0};
  std::atomic<uint64_t> window_successes{0};
  // The last interval's success rate in percent * 1000, -1 before one with traffic.
  std::atomic<int64_t> success_rate_milli{-1};
};

// The endpoints of one cluster (by name) and its cluster-wide counters.
class ClusterHealth {
 public:
  explicit ClusterHealth(std::string name) : name_(std::move(name)) {}
  ClusterHealth(const ClusterHealth&) = delete;
  ClusterHealth& operator=(const ClusterHealth&) = delete;

  const std::string& name() const { return name_; }

  // The entry of `address`, created on first use (healthy, not a member).
  std::shared_ptr<EndpointHealth> endpoint(const std::string& address);

  // The live endpoint set is now `addresses`: entries of the others leave the
  // registry (workers still holding them keep them alive until they let
  // go). With `active_hc`, endpoints new to the set start failed and
  // pending; without it, nothing is failed by active checks.
  void set_members(const std::vector<std::string>& addresses, bool active_hc);
  std::vector<std::shared_ptr<EndpointHealth>> members() const;

  // Ejects `ep` if max_ejection_percent allows (see outlier.h). Returns
  // whether it did. `base` and `max` are the ejection times.
  bool try_eject(EndpointHealth& ep, HealthClock::time_point now, std::chrono::milliseconds base,
                 std::chrono::milliseconds max, uint32_t max_ejection_percent,
                 bool always_eject_one_host);
  // Ends an ejection (interval elapsed, or a passing active check).
  static void uneject(EndpointHealth& ep);

  // Cluster-wide counters (Envoy's outlier_detection.* and dns stats).
  std::atomic<uint64_t> ejections_enforced_total{0};
  std::atomic<uint64_t> ejections_overflow{0};  // refused by max_ejection_percent
  std::atomic<uint64_t> ejections_detected_consecutive_5xx{0};
  std::atomic<uint64_t> ejections_detected_consecutive_gateway_failure{0};
  std::atomic<uint64_t> ejections_detected_consecutive_local_origin_failure{0};
  std::atomic<uint64_t> ejections_detected_success_rate{0};
  std::atomic<uint64_t> ejections_detected_failure_percentage{0};
  std::atomic<uint64_t> health_check_attempts{0};
  std::atomic<uint64_t> health_check_successes{0};
  std::atomic<uint64_t> health_check_failures{0};
  std::atomic<uint64_t> dns_resolutions{0};
  std::atomic<uint64_t> dns_failures{0};
  std::atomic<uint64_t> dns_updates{0};  // resolutions that changed the endpoint set

 private:
  const std::string name_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<EndpointHealth>> endpoints_;
  std::vector<std::string> members_;
};

class HealthRegistry {
 public:
  HealthRegistry() = default;
  HealthRegistry(const HealthRegistry&) = delete;
  HealthRegistry& operator=(const HealthRegistry&) = delete;

  // The process's registry.
  static HealthRegistry& instance();

  // The cluster's entry, created on first use; it lives as long as the
  // registry (a name is a few bytes; clusters come back after reloads).
  ClusterHealth& cluster(const std::string& name);
  // Null when the name was never seen.
  ClusterHealth* find(const std::string& name) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<ClusterHealth>> clusters_;
};

}  // namespace sidecar::upstream
