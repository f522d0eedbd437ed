#include "upstream/cluster.h"

#include <algorithm>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>

#include "core/coarse_clock.h"
#include "upstream/outlier.h"

namespace sidecar::upstream {

const boost::system::error_category& attempt_category() {
  class Category final : public boost::system::error_category {
   public:
    const char* name() const noexcept override { return "sidecar.upstream"; }
    std::string message(int ev) const override {
      switch (static_cast<AttemptError>(ev)) {
        case AttemptError::kOverflow:
          return "upstream overflow (circuit breaker open)";
        case AttemptError::kNoHealthyUpstream:
          return "no healthy upstream";
        case AttemptError::kAlpnMismatch:
          return "the upstream negotiated another protocol by ALPN";
      }
      return "unknown upstream error";
    }
  };
  static const Category category;
  return category;
}

Endpoint::Endpoint(const config::Address& address, stats::EndpointStats* stats,
                   std::shared_ptr<EndpointHealth> health)
    : Host(address.to_string(), address.weight, address.priority),
      stats(stats),
      address_(boost::asio::ip::make_address(address.host), address.port),
      host_name_(address.hostname.empty() ? address.host : address.hostname),
      health_(std::move(health)) {
  set_healthy(health_->healthy());
}

ClusterRuntime::ClusterRuntime(boost::asio::io_context& io, config::Cluster config,
                               const std::vector<stats::EndpointStats*>& stats,
                               std::shared_ptr<tls::ClientSlot> tls,
                               std::shared_ptr<CircuitBreaker> breaker, uint64_t seed)
    : io_(io), config_(std::move(config)), tls_(std::move(tls)), breaker_(std::move(breaker)) {
  if (!breaker_) {
    breaker_ = std::make_shared<CircuitBreaker>(config_.name, config_.circuit_breakers);
  }
  // Endpoints never move after this: connections and the balancer point at them.
  endpoints_.reserve(config_.endpoints.size());
  ClusterHealth& health = HealthRegistry::instance().cluster(config_.name);
  for (size_t i = 0; i < config_.endpoints.size(); ++i) {
    endpoints_.emplace_back(config_.endpoints[i], stats[i],
                            health.endpoint(config_.endpoints[i].to_string()));
  }
  std::vector<Host*> hosts;
  for (Endpoint& e : endpoints_) hosts.push_back(&e);
  lb_ = std::make_unique<LoadBalancer>(config_.lb_policy, config_.lb, hosts, seed);
}

void ClusterRuntime::refresh_health() {
  const uint64_t generation = health_generation();
  if (generation == health_seen_) return;
  health_seen_ = generation;
  for (Endpoint& e : endpoints_) {
    e.set_healthy(e.health().healthy());
    e.set_degraded(e.health().degraded_active_hc.load(std::memory_order_relaxed));
  }
}

Endpoint* ClusterRuntime::choose(const LbContext& ctx, Refusal& why) {
  why = Refusal::kNone;
  refresh_health();
  if (endpoints_.empty()) {
    why = Refusal::kNoEndpoint;
    return nullptr;
  }
  if (!breaker_->can_create(CircuitBreaker::kRequests)) {
    why = Refusal::kOverflow;
    return nullptr;
  }
  Host* h = lb_->choose(ctx);
  if (h == nullptr) {
    why = Refusal::kNoEndpoint;
    return nullptr;
  }
  return static_cast<Endpoint*>(h);
}

void ClusterRuntime::attempt_started(Endpoint& endpoint) {
  endpoint.attempt_started();
  if (endpoint.stats != nullptr) endpoint.stats->requests_active.add();
  breaker_->add(CircuitBreaker::kRequests);
}

void ClusterRuntime::attempt_cancelled(Endpoint& endpoint) {
  breaker_->sub(CircuitBreaker::kRequests);
  if (endpoint.stats != nullptr) endpoint.stats->requests_active.sub();
  endpoint.attempt_finished(std::chrono::nanoseconds(-1), core::CoarseClock::now());
}

void ClusterRuntime::attempt_finished(Endpoint& endpoint, const AttemptOutcome& outcome) {
  breaker_->sub(CircuitBreaker::kRequests);
  if (endpoint.stats != nullptr) endpoint.stats->requests_active.sub();
  // ewma: a refused connect is fast but must not make the endpoint look
  // good; it counts as a 1 s response (linkerd2's failure penalty is alike).
  std::chrono::nanoseconds rtt = outcome.latency;
  if (outcome.kind == AttemptOutcome::Kind::kConnectFailure) {
    rtt = std::max<std::chrono::nanoseconds>(rtt, std::chrono::seconds(1));
  }
  // Stamps for the ewma's decay (seconds) and an ejection's start: the
  // coarse clock does (a clock_gettime less per request).
  const auto now = core::CoarseClock::now();
  endpoint.attempt_finished(rtt, now);
  outlier::record(endpoint.health(), config_.outlier_detection, outcome, now);
}

Attempt::~Attempt() { finish({AttemptOutcome::Kind::kReset}); }

void Attempt::start(ClusterRuntime& cluster, Endpoint& endpoint) {
  finish({AttemptOutcome::Kind::kReset});
  cluster_.reset(&cluster);
  endpoint_ = &endpoint;
  status_ = 0;
  started_ = std::chrono::steady_clock::now();
  cluster.attempt_started(endpoint);
}

void Attempt::swap(Attempt& other) noexcept {
  std::swap(cluster_, other.cluster_);
  std::swap(endpoint_, other.endpoint_);
  std::swap(last_, other.last_);
  std::swap(started_, other.started_);
  std::swap(status_, other.status_);
  std::swap(response_latency_, other.response_latency_);
}

void Attempt::cancel() {
  if (endpoint_ == nullptr) return;
  Endpoint* e = endpoint_;
  endpoint_ = nullptr;
  core::Ref<ClusterRuntime> c = std::move(cluster_);
  c->attempt_cancelled(*e);
}

void Attempt::responded(int status) {
  if (endpoint_ == nullptr || status_ != 0) return;
  status_ = status;
  response_latency_ = std::chrono::steady_clock::now() - started_;
  if (response_latency_.count() == 0) response_latency_ = std::chrono::nanoseconds(1);
}

void Attempt::finish() {
  if (status_ != 0) {
    finish({AttemptOutcome::Kind::kResponse, status_, response_latency_});
  } else {
    finish({AttemptOutcome::Kind::kReset});
  }
}

void Attempt::finish(const AttemptOutcome& outcome) {
  if (endpoint_ == nullptr) return;
  AttemptOutcome o = outcome;
  if (o.latency.count() == 0) o.latency = std::chrono::steady_clock::now() - started_;
  Endpoint* e = endpoint_;
  endpoint_ = nullptr;
  last_ = e;
  core::Ref<ClusterRuntime> c = std::move(cluster_);
  c->attempt_finished(*e, o);
}

void ClusterRuntime::retire() {
  retired_ = true;
  close_idle();
}

ClusterRuntime::~ClusterRuntime() { close_idle(); }

core::Ref<UpstreamConnection> ClusterRuntime::acquire(bool& reused, bool fresh) {
  Refusal why;
  Endpoint* ep = choose(LbContext{}, why);
  if (ep == nullptr) return nullptr;
  return acquire(*ep, reused, fresh);
}

core::Ref<UpstreamConnection> ClusterRuntime::acquire(Endpoint& ep, bool& reused, bool fresh) {
  while (!fresh && !ep.idle.empty()) {
    core::Ref<UpstreamConnection> c = std::move(ep.idle.back());
    ep.idle.pop_back();
    ep.stats->connections_idle.sub();
    if (!c->is_open()) continue;
    reused = true;
    return c;
  }
  reused = false;
  // Envoy's max_connections and max_pending_requests: a new connection and
  // the request waiting for it. An idle pooled connection (of another
  // endpoint) never keeps a request from its own: it is closed first.
  if (breaker_->full(CircuitBreaker::kConnections)) evict_idle();
  if (!breaker_->can_create(CircuitBreaker::kConnections) ||
      !breaker_->can_create(CircuitBreaker::kPendingRequests)) {
    return nullptr;
  }
  return core::Ref<UpstreamConnection>(new UpstreamConnection(io_, *this, ep));
}

bool ClusterRuntime::evict_idle() {
  Endpoint* oldest = nullptr;
  for (Endpoint& ep : endpoints_) {
    if (ep.idle.empty()) continue;
    if (oldest == nullptr || ep.idle.front()->idle_since < oldest->idle.front()->idle_since) {
      oldest = &ep;
    }
  }
  if (oldest == nullptr) return false;
  oldest->idle.front()->close();
  oldest->idle.erase(oldest->idle.begin());
  oldest->stats->connections_idle.sub();
  return true;
}

bool ClusterRuntime::wait_for_connection(ConnectionWaiter& waiter, bool front) {
  if (waiter.waiting_ || !breaker_->full(CircuitBreaker::kConnections) ||
      !breaker_->can_create(CircuitBreaker::kPendingRequests)) {
    return false;
  }
  breaker_->add(CircuitBreaker::kPendingRequests);
  waiter.waiting_ = true;
  if (front) {
    waiters_.push_front(&waiter);
  } else {
    waiters_.push_back(&waiter);
  }
  return true;
}

void ClusterRuntime::cancel_wait(ConnectionWaiter& waiter) {
  if (!waiter.waiting_) return;
  waiter.waiting_ = false;
  breaker_->sub(CircuitBreaker::kPendingRequests);
  waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), &waiter), waiters_.end());
}

void ClusterRuntime::wake_waiter() {
  if (waiters_.empty()) return;
  boost::asio::post(io_, [self = core::Ref<ClusterRuntime>(this)] {
    if (self->waiters_.empty()) return;
    ConnectionWaiter* w = self->waiters_.front();
    self->waiters_.pop_front();
    w->waiting_ = false;
    self->breaker_->sub(CircuitBreaker::kPendingRequests);
    w->on_connection_available();
  });
}

void ClusterRuntime::wake_waiters_with_room() {
  if (waiters_.empty()) return;
  const uint64_t count = breaker_->count(CircuitBreaker::kConnections);
  const uint64_t limit = breaker_->limit(CircuitBreaker::kConnections);
  for (uint64_t i = count; i < limit && i - count < waiters_.size(); ++i) wake_waiter();
}

void ClusterRuntime::release(core::Ref<UpstreamConnection> connection, bool reusable) {
  connection->set_owner(nullptr);
  const uint32_t max = config_.max_requests_per_connection;
  if (!reusable || retired_ || !connection->is_open() || !connection->connected() ||
      !connection->buffer().empty() || (max != 0 && connection->requests >= max) ||
      config_.idle_timeout.count() == 0) {
    connection->close();
  } else {
    connection->idle_since = core::CoarseClock::now();
    connection->read();  // notices a close while idle
    connection->endpoint().stats->connections_idle.add();
    connection->endpoint().idle.push_back(std::move(connection));
  }
  // Either way a connection is free or its place is: the first queued
  // request takes it.
  wake_waiter();
}

void ClusterRuntime::remove_idle(UpstreamConnection& connection) {
  auto& idle = connection.endpoint().idle;
  core::Ref<UpstreamConnection> keep(&connection);  // outlive the erase
  connection.close();
  const size_t before = idle.size();
  idle.erase(std::remove(idle.begin(), idle.end(), keep), idle.end());
  connection.endpoint().stats->connections_idle.sub(static_cast<int64_t>(before - idle.size()));
}

void ClusterRuntime::close_expired(std::chrono::steady_clock::time_point now) {
  wake_waiters_with_room();
  const auto timeout = config_.idle_timeout;
  for (Endpoint& ep : endpoints_) {
    // Oldest first: stop at the first one still fresh.
    size_t expired = 0;
    while (expired < ep.idle.size() && now - ep.idle[expired]->idle_since >= timeout) {
      ep.idle[expired]->close();
      ++expired;
    }
    for (size_t i = expired; i < ep.idle.size(); ++i) ep.idle[i]->release_buffer();
    if (expired > 0) {
      ep.idle.erase(ep.idle.begin(), ep.idle.begin() + static_cast<std::ptrdiff_t>(expired));
      ep.stats->connections_idle.sub(static_cast<int64_t>(expired));
    }
  }
}

void ClusterRuntime::close_idle() {
  for (Endpoint& ep : endpoints_) {
    for (auto& c : ep.idle) c->close();
    ep.stats->connections_idle.sub(static_cast<int64_t>(ep.idle.size()));
    ep.idle.clear();
  }
}

}  // namespace sidecar::upstream
