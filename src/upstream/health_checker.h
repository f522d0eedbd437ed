// The health thread: active health checks of every endpoint of every
// cluster with `health_checks`, the outlier detection interval of every
// cluster with `outlier_detection`, and DNS discovery (dns_discovery.h) of
// every cluster with `discovery: { dns: ... }`, on one thread with its own io_context so
// they never add latency to traffic (DESIGN.md "Upstream"). Results are
// published through the atomics of upstream/health.h, which the workers read.
//
// Checks (Envoy's, docs/resilience.md): one per `interval` (+ a random
// [0, interval_jitter]) per endpoint and check, each on a fresh connection
// (TLS when the cluster has `tls`), failed when `timeout` passes first.
//   - http: GET path HTTP/1.1, Host: http.host or the cluster name; healthy
//     when the status is in expected_statuses. A status in
//     retriable_statuses, a connect failure or a timeout counts towards
//     unhealthy_threshold; any other status fails the endpoint at once.
//   - tcp: connect, send `send`, healthy when `expect` arrives (connect only
//     when both are empty).
//   - grpc: grpc.health.v1.Health/Check over HTTP/2 (h2c, or h2 with tls),
//     healthy when the answer is SERVING.
// A failed endpoint needs healthy_threshold successes in a row; a healthy one
// unhealthy_threshold failures; the first check of a new endpoint decides at
// once. A passing check ends an outlier ejection
// (successful_active_health_check_uneject_host).
//
// Thread safety: the public methods are called from the main thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "tls/slot.h"

namespace sidecar::upstream {

class HealthChecker {
 public:
  // `tls(cluster name)`: the cluster's client TLS slot, null for plain TCP.
  using TlsLookup = std::function<std::shared_ptr<tls::ClientSlot>(const std::string& cluster)>;
  explicit HealthChecker(TlsLookup tls);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Applies `config`: sets every cluster's members in the health registry
  // (before the workers see the config, so a new endpoint of a checked
  // cluster starts failed), then, on the health thread, starts checks of
  // new (cluster, endpoint, check) triples and stops those gone; unchanged
  // ones keep their schedule and state. Call before start() too.
  void update(const config::Config& config);
  // Where DNS discovery sends a cluster's new endpoint set (the process
  // publishes it as a new snapshot: module::Host::update_cluster_endpoints).
  // Called on the health thread. Set before start().
  using Publish = std::function<void(const std::string& cluster, std::vector<config::Address>)>;
  void set_discovery_sink(Publish publish);
  // Starts the thread (idempotent), or lets update() start it when a config
  // first has work for it: without health checks, outlier detection or DNS
  // discovery there is no health thread.
  void start();
  // Stops every check and joins the thread by `deadline` (checks are
  // asynchronous: nothing blocks; the thread is detached if it overruns).
  void stop(std::chrono::steady_clock::time_point deadline);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sidecar::upstream
