// A cluster as one worker sees it: its endpoints, the round-robin position
// and, per endpoint, the pool of idle keep-alive upstream connections.
//
// Workers share nothing: each has its own ClusterRuntime per configured
// cluster, so nothing here locks. Used only on the worker's thread.
//
// Lifetime: reference counted. The worker holds the runtimes of its current
// config; a request holds its cluster's runtime, and every upstream
// connection holds the runtime it belongs to, so a runtime dropped by a
// reload lives until its last request and connection are gone. A retired
// runtime pools nothing (its pool would otherwise keep it alive forever).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "config/config.h"
#include "core/ref_counted.h"
#include "stats/stats.h"
#include "tls/slot.h"
#include "tls/tls.h"
#include "upstream/attempt.h"
#include "upstream/health.h"
#include "upstream/upstream_connection.h"

namespace sidecar::upstream {

class Endpoint {
 public:
  // `health`: the process-wide entry of (cluster, address) (upstream/health.h).
  Endpoint(const config::Address& address, stats::EndpointStats* stats,
           std::shared_ptr<EndpointHealth> health);

  const boost::asio::ip::tcp::endpoint& address() const { return address_; }
  const std::string& name() const { return name_; }  // "127.0.0.1:8080"
  // The name it was configured by ("users.example"), else the IP: for TLS
  // SNI and certificate verification.
  const std::string& host_name() const { return host_name_; }
  // Passes active health checks and is not ejected by outlier detection.
  bool healthy() const { return health_->healthy(); }
  EndpointHealth& health() const { return *health_; }

  // Pool of connections waiting for a request, most recently used last.
  std::vector<core::Ref<UpstreamConnection>> idle;
  stats::EndpointStats* const stats;  // this worker's block
  tls::SessionCache tls_session;      // for TLS resumption

 private:
  boost::asio::ip::tcp::endpoint address_;
  std::string name_;
  std::string host_name_;
  std::shared_ptr<EndpointHealth> health_;
};

class ClusterRuntime : public core::RefCounted<ClusterRuntime> {
 public:
  // `stats[i]`: this worker's block for endpoint i.
  // `tls` is the cluster's TLS context slot, null for plain TCP.
  ClusterRuntime(boost::asio::io_context& io, config::Cluster config,
                 const std::vector<stats::EndpointStats*>& stats,
                 std::shared_ptr<tls::ClientSlot> tls);
  ~ClusterRuntime();

  const config::Cluster& config() const { return config_; }
  const tls::ClientSlot* tls() const { return tls_.get(); }

  // No longer part of the worker's config: closes the pool and stops pooling.
  void retire();

  // Picks the next endpoint round robin and returns a pooled connection to
  // it (`reused` = true) or a new, unconnected one (`reused` = false; call
  // connect()). With `fresh`, never a pooled one.
  core::Ref<UpstreamConnection> acquire(bool& reused, bool fresh = false);

  // Called once per upstream attempt on `endpoint` (one of this cluster's):
  // feeds outlier detection.
  void attempt_finished(Endpoint& endpoint, const AttemptOutcome& outcome);

  // Returns a checked-out connection. With `reusable` it goes back to its
  // endpoint's pool (with a read pending to notice a close), else it is closed.
  void release(core::Ref<UpstreamConnection> connection, bool reusable);

  // Drops a pooled connection the upstream closed (called by the connection).
  static void remove_idle(UpstreamConnection& connection);

  // Closes pooled connections idle for longer than the cluster's idle_timeout.
  void close_expired(std::chrono::steady_clock::time_point now);
  // Closes every pooled connection (shutdown).
  void close_idle();

 private:
  boost::asio::io_context& io_;
  const config::Cluster config_;  // a copy: a runtime can outlive the config it came from
  std::vector<Endpoint> endpoints_;
  std::shared_ptr<tls::ClientSlot> tls_;
  size_t next_ = 0;
  bool retired_ = false;
};

}  // namespace sidecar::upstream
