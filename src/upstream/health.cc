#include "upstream/health.h"

#include <algorithm>

namespace sidecar::upstream {

namespace {
std::atomic<uint64_t> g_health_generation{0};
}  // namespace

uint64_t health_generation() { return g_health_generation.load(std::memory_order_acquire); }
void health_changed() { g_health_generation.fetch_add(1, std::memory_order_release); }

std::shared_ptr<EndpointHealth> ClusterHealth::endpoint(const std::string& address) {
  std::lock_guard lock(mutex_);
  auto& slot = endpoints_[address];
  if (!slot) slot = std::make_shared<EndpointHealth>(*this, address);
  return slot;
}

void ClusterHealth::set_members(const std::vector<std::string>& addresses, bool active_hc) {
  std::lock_guard lock(mutex_);
  std::map<std::string, std::shared_ptr<EndpointHealth>> next;
  for (const std::string& a : addresses) {
    auto it = endpoints_.find(a);
    std::shared_ptr<EndpointHealth> ep;
    const bool joined = std::find(members_.begin(), members_.end(), a) == members_.end();
    if (it != endpoints_.end()) {
      ep = it->second;
    } else {
      ep = std::make_shared<EndpointHealth>(*this, a);
    }
    if (active_hc && joined) {
      ep->failed_active_hc.store(true, std::memory_order_relaxed);
      ep->pending_active_hc.store(true, std::memory_order_relaxed);
    } else if (!active_hc) {
      ep->failed_active_hc.store(false, std::memory_order_relaxed);
      ep->pending_active_hc.store(false, std::memory_order_relaxed);
    }
    health_changed();
    next[a] = std::move(ep);
  }
  endpoints_ = std::move(next);
  members_ = addresses;
}

std::vector<std::shared_ptr<EndpointHealth>> ClusterHealth::members() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<EndpointHealth>> out;
  out.reserve(members_.size());
  for (const std::string& a : members_) {
    if (auto it = endpoints_.find(a); it != endpoints_.end()) out.push_back(it->second);
  }
  return out;
}

bool ClusterHealth::try_eject(EndpointHealth& ep, HealthClock::time_point now,
                              std::chrono::milliseconds base, std::chrono::milliseconds max,
                              uint32_t max_ejection_percent, bool always_eject_one_host) {
  std::lock_guard lock(mutex_);
  if (ep.ejected.load(std::memory_order_relaxed)) return false;
  size_t active = 0;
  size_t total = 0;
  for (const std::string& a : members_) {
    auto it = endpoints_.find(a);
    if (it == endpoints_.end()) continue;
    ++total;
    if (it->second->ejected.load(std::memory_order_relaxed)) ++active;
  }
  if (total == 0) total = 1;  // an endpoint of a set that is gone: judge it alone
  // Envoy: the ejection may not take the ejected share above the limit,
  // except for a first one with always_eject_one_host.
  const double percent = 100.0 * static_cast<double>(active + 1) / static_cast<double>(total);
  if (!(percent <= max_ejection_percent || (always_eject_one_host && active == 0))) {
    ejections_overflow.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  // The ejection time grows with the multiplier, which stops growing once
  // the time reaches max_ejection_time.
  uint32_t mult = ep.ejection_multiplier.load(std::memory_order_relaxed);
  if (base * mult < max || mult == 0) ++mult;
  ep.ejection_multiplier.store(mult, std::memory_order_relaxed);
  const auto duration = std::min<std::chrono::milliseconds>(base * mult, std::max(max, base));
  const auto until = now + duration;
  ep.ejected_until_ns.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(until.time_since_epoch()).count(),
      std::memory_order_relaxed);
  const auto wall = std::chrono::system_clock::now() + duration;
  ep.ejected_until_unix_ms.store(
      std::chrono::duration_cast<std::chrono::milliseconds>(wall.time_since_epoch()).count(),
      std::memory_order_relaxed);
  ep.consecutive_5xx.store(0, std::memory_order_relaxed);
  ep.consecutive_gateway_failure.store(0, std::memory_order_relaxed);
  ep.consecutive_local_origin_failure.store(0, std::memory_order_relaxed);
  ep.ejections_total.fetch_add(1, std::memory_order_relaxed);
  ejections_enforced_total.fetch_add(1, std::memory_order_relaxed);
  ep.ejected.store(true, std::memory_order_relaxed);
  health_changed();
  return true;
}

void ClusterHealth::uneject(EndpointHealth& ep) {
  ep.consecutive_5xx.store(0, std::memory_order_relaxed);
  ep.consecutive_gateway_failure.store(0, std::memory_order_relaxed);
  ep.consecutive_local_origin_failure.store(0, std::memory_order_relaxed);
  ep.ejected_until_unix_ms.store(0, std::memory_order_relaxed);
  ep.ejected.store(false, std::memory_order_relaxed);
  health_changed();
}

HealthRegistry& HealthRegistry::instance() {
  static HealthRegistry registry;
  return registry;
}

ClusterHealth& HealthRegistry::cluster(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto& slot = clusters_[name];
  if (!slot) slot = std::make_unique<ClusterHealth>(name);
  return *slot;
}

ClusterHealth* HealthRegistry::find(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = clusters_.find(name);
  return it == clusters_.end() ? nullptr : it->second.get();
}

}  // namespace sidecar::upstream
