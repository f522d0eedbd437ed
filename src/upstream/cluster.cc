#include "upstream/cluster.h"

#include <algorithm>

#include <boost/asio/ip/address.hpp>

#include "upstream/outlier.h"

namespace sidecar::upstream {

Endpoint::Endpoint(const config::Address& address, stats::EndpointStats* stats,
                   std::shared_ptr<EndpointHealth> health)
    : stats(stats),
      address_(boost::asio::ip::make_address(address.host), address.port),
      name_(address.to_string()),
      host_name_(address.hostname.empty() ? address.host : address.hostname),
      health_(std::move(health)) {}

ClusterRuntime::ClusterRuntime(boost::asio::io_context& io, config::Cluster config,
                               const std::vector<stats::EndpointStats*>& stats,
                               std::shared_ptr<tls::ClientSlot> tls)
    : io_(io), config_(std::move(config)), tls_(std::move(tls)) {
  endpoints_.reserve(config_.endpoints.size());
  ClusterHealth& health = HealthRegistry::instance().cluster(config_.name);
  for (size_t i = 0; i < config_.endpoints.size(); ++i) {
    endpoints_.emplace_back(config_.endpoints[i], stats[i],
                            health.endpoint(config_.endpoints[i].to_string()));
  }
}

void ClusterRuntime::retire() {
  retired_ = true;
  close_idle();
}

ClusterRuntime::~ClusterRuntime() { close_idle(); }

void ClusterRuntime::attempt_finished(Endpoint& endpoint, const AttemptOutcome& outcome) {
  outlier::record(endpoint.health(), config_.outlier_detection, outcome, HealthClock::now());
}

core::Ref<UpstreamConnection> ClusterRuntime::acquire(bool& reused, bool fresh) {
  // Round robin over the healthy endpoints; all of them when none is (panic).
  // TODO(balancer): replaced by the load balancer (lb_policy, panic threshold).
  size_t pick = next_;
  for (size_t n = 0; n < endpoints_.size(); ++n) {
    const size_t i = (next_ + n) % endpoints_.size();
    if (endpoints_[i].healthy()) {
      pick = i;
      break;
    }
  }
  Endpoint& ep = endpoints_[pick];
  next_ = pick + 1 == endpoints_.size() ? 0 : pick + 1;
  while (!fresh && !ep.idle.empty()) {
    core::Ref<UpstreamConnection> c = std::move(ep.idle.back());
    ep.idle.pop_back();
    ep.stats->connections_idle.sub();
    if (!c->is_open()) continue;
    reused = true;
    return c;
  }
  reused = false;
  return core::Ref<UpstreamConnection>(new UpstreamConnection(io_, *this, ep));
}

void ClusterRuntime::release(core::Ref<UpstreamConnection> connection, bool reusable) {
  connection->set_owner(nullptr);
  const uint32_t max = config_.max_requests_per_connection;
  if (!reusable || retired_ || !connection->is_open() || !connection->connected() ||
      !connection->buffer().empty() || (max != 0 && connection->requests >= max) ||
      config_.idle_timeout.count() == 0) {
    connection->close();
    return;
  }
  connection->idle_since = std::chrono::steady_clock::now();
  connection->read();  // notices a close while idle
  connection->endpoint().stats->connections_idle.add();
  connection->endpoint().idle.push_back(std::move(connection));
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
