// A cluster as one worker sees it: its endpoints, its load balancer
// (load_balancer.h: priorities, health, lb_policy) and, per endpoint, the pool
// of idle keep-alive upstream connections; plus the process-wide circuit
// breaker of the cluster (circuit_breaker.h).
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
#include <deque>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "config/config.h"
#include "core/ref_counted.h"
#include "stats/stats.h"
#include "tls/slot.h"
#include "tls/tls.h"
#include "upstream/attempt.h"
#include "upstream/circuit_breaker.h"
#include "upstream/health.h"
#include "upstream/load_balancer.h"
#include "upstream/upstream_connection.h"

namespace sidecar::upstream {

// Why an upstream attempt did not start, as the error of
// UpstreamEvents::on_upstream_ready: the stream answers 503 with response
// flag UO (overflow) or UH (no healthy upstream) instead of UF.
// kAlpnMismatch: on a `protocol: auto` cluster the new connection
// negotiated another protocol than the codec the stream tried (the
// endpoint's Endpoint::alpn now says which): the stream starts the attempt
// again with the other codec.
enum class AttemptError { kOverflow = 1, kNoHealthyUpstream = 2, kAlpnMismatch = 3 };
const boost::system::error_category& attempt_category();
inline boost::system::error_code make_error_code(AttemptError e) {
  return {static_cast<int>(e), attempt_category()};
}

// An endpoint: Host (name "127.0.0.1:8080", weight, priority, healthy(),
// active requests) plus its address and connection pool.
//
// Health: the process-wide EndpointHealth (active checks, outlier
// detection; any thread writes it) is copied into this worker's Host bit by
// ClusterRuntime::refresh_health() when health_generation() moved, so that
// the balancer's view changes only between its decisions.
class Endpoint : public Host {
 public:
  // `health`: the process-wide entry of (cluster, address) (upstream/health.h).
  Endpoint(const config::Address& address, stats::EndpointStats* stats,
           std::shared_ptr<EndpointHealth> health);

  const boost::asio::ip::tcp::endpoint& address() const { return address_; }
  // The name it was configured by ("users.example"), else the IP: for TLS
  // SNI and certificate verification.
  const std::string& host_name() const { return host_name_; }
  // Active health checks and outlier detection, process-wide (any thread).
  EndpointHealth& health() const { return *health_; }

  // Pool of connections waiting for a request, most recently used last.
  std::vector<core::Ref<UpstreamConnection>> idle;
  // `protocol: auto`: what the endpoint chose by ALPN on this worker's
  // latest new connection; kUnknown until the first. Envoy's mixed pool
  // likewise remembers the protocol per host.
  enum class Alpn : uint8_t { kUnknown, kHttp1, kH2 };
  Alpn alpn = Alpn::kUnknown;
  stats::EndpointStats* const stats;  // this worker's block
  tls::SessionCache tls_session;      // for TLS resumption

 private:
  boost::asio::ip::tcp::endpoint address_;
  std::string host_name_;
  std::shared_ptr<EndpointHealth> health_;
};

// A request waiting for a connection because the cluster is at
// max_connections (Envoy's pending request; ClusterRuntime::wait_for_connection).
// The waiter must call cancel_wait() before it goes away.
class ConnectionWaiter {
 public:
  // A connection of this worker's pool was released or closed, or the
  // breaker has room again: try acquire() once more (it may still fail:
  // wait again, at the front).
  virtual void on_connection_available() = 0;

 protected:
  ~ConnectionWaiter() = default;

 private:
  friend class ClusterRuntime;
  bool waiting_ = false;
};

class ClusterRuntime : public core::RefCounted<ClusterRuntime> {
 public:
  // `stats[i]`: this worker's block for endpoint i.
  // `tls` is the cluster's TLS context slot, null for plain TCP.
  // `breaker`: the cluster's process-wide circuit breaker (null: a private
  // one with the config's thresholds). `seed` seeds the balancer's choices.
  ClusterRuntime(boost::asio::io_context& io, config::Cluster config,
                 const std::vector<stats::EndpointStats*>& stats,
                 std::shared_ptr<tls::ClientSlot> tls,
                 std::shared_ptr<CircuitBreaker> breaker = nullptr, uint64_t seed = 0);
  ~ClusterRuntime();

  const config::Cluster& config() const { return config_; }
  const tls::ClientSlot* tls() const { return tls_.get(); }

  // No longer part of the worker's config: closes the pool and stops pooling.
  void retire();

  CircuitBreaker& breaker() { return *breaker_; }
  const std::shared_ptr<CircuitBreaker>& breaker_ptr() const { return breaker_; }
  LoadBalancer& load_balancer() { return *lb_; }
  std::vector<Endpoint>& endpoints() { return endpoints_; }

  // Why choose() or acquire() gave nothing.
  enum class Refusal {
    kNone,
    kOverflow,    // a circuit breaker is at its limit: 503, flag UO
    kNoEndpoint,  // the cluster has no endpoint: 503, flag UH
  };

  // The endpoint for the next attempt (priority levels, health, lb_policy;
  // `ctx`: hash key and endpoints to avoid), or nullptr with `why`: no
  // endpoint, or max_requests reached. Call attempt_started() when used.
  Endpoint* choose(const LbContext& ctx, Refusal& why);

  // A pooled connection to `endpoint` (`reused` = true) or a new,
  // unconnected one (`reused` = false; call connect()); with `fresh`, never
  // a pooled one. nullptr (Refusal::kOverflow) when a new connection would
  // pass max_connections or max_pending_requests.
  core::Ref<UpstreamConnection> acquire(Endpoint& endpoint, bool& reused, bool fresh = false);
  // choose() without a context, then acquire() (the TCP proxy). nullptr
  // when either refuses.
  core::Ref<UpstreamConnection> acquire(bool& reused, bool fresh = false);

  // After acquire() refused because max_connections are open: queues
  // `waiter` (FIFO; `front` for one that was woken and lost the race)
  // while fewer than max_pending_requests wait or connect, counting it as
  // pending. It is woken when a connection of this worker is released or
  // closed (a pooled connection of another endpoint is closed to make room
  // then: acquire() does that), or on the worker's tick when other workers
  // freed some. The waiter bounds the wait (the stream's connect deadline)
  // and cancels it. false: not queued (max_pending_requests reached, or the
  // refusal was not max_connections): 503 UO at once.
  bool wait_for_connection(ConnectionWaiter& waiter, bool front = false);
  void cancel_wait(ConnectionWaiter& waiter);

  // Called by the stream once per upstream attempt (attempt.h): counts the
  // request in the endpoint's active requests and the circuit breaker, and
  // feeds the balancer (and outlier detection) with the outcome.
  void attempt_started(Endpoint& endpoint);
  void attempt_finished(Endpoint& endpoint, const AttemptOutcome& outcome);
  // An attempt that never reached the endpoint (Attempt::cancel).
  void attempt_cancelled(Endpoint& endpoint);

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
  std::shared_ptr<CircuitBreaker> breaker_;
  std::unique_ptr<LoadBalancer> lb_;
  uint64_t health_seen_ = UINT64_MAX;  // health_generation() last copied into the hosts
  bool retired_ = false;
  std::deque<ConnectionWaiter*> waiters_;

  // Closes this worker's oldest pooled connection (of any endpoint) so
  // that a new one fits under max_connections; false when none is pooled.
  bool evict_idle();
  // Wakes the first waiter from a fresh stack (posted).
  void wake_waiter();
  // The tick: waiters are woken when the breaker has room (connections
  // closed on other workers).
  void wake_waiters_with_room();

  // Copies each endpoint's process-wide health into its Host bit when
  // health_generation() moved since the last time.
  void refresh_health();
};

}  // namespace sidecar::upstream
