// Endpoint choice: priority levels, panic mode and the lb_policy of a
// cluster (docs/resilience.md). Pure logic: no sockets, no clock unless the
// policy needs one (ewma), so every policy is unit-tested on its own.
//
// Sources followed:
//  - priorities: Envoy's priority load (overprovisioning factor 1.4: a level
//    takes min(100%, 1.4 * healthy share) of the traffic, the rest spills to
//    the next level) and panic threshold (a level with fewer than 50% of its
//    hosts healthy balances over all of them);
//  - round_robin: nginx's smooth weighted round robin;
//  - least_request: Envoy's (power of two choices when weights are equal;
//    otherwise weights scaled by 1 / (active + 1)^active_request_bias);
//  - random: weighted random;
//  - ring_hash: Envoy's ketama-style ring (minimum_ring_size 1024, entries
//    per host proportional to its weight, key "<address>_<n>"), built over
//    every host of the level: a key whose point belongs to a host not
//    eligible walks on to the next eligible one, so a host that turns
//    unhealthy moves only its own keys (Envoy rebuilds the ring over the
//    healthy hosts, which moves a few more);
//  - maglev: Maglev (Eisenbud et al., NSDI 2016) with Envoy's weighted table
//    filling, table size 65537;
//  - ewma: linkerd2's peak-EWMA (decay 10 s, default RTT 30 ms, cost =
//    estimate * (active + 1), two random choices).
// Hashes are std::hash (libstdc++: 64-bit MurmurHash2, fixed seed), so they
// are the same in every sidecar process of one build, but not Envoy's xxHash.
//
// Thread safety: none. A LoadBalancer and its hosts belong to one worker.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace sidecar::upstream {

// What a balancer knows of one endpoint. upstream::Endpoint derives from it.
class Host {
 public:
  using Clock = std::chrono::steady_clock;

  Host(std::string name, uint32_t weight = 1, uint32_t priority = 0)
      : name_(std::move(name)), weight_(weight == 0 ? 1 : weight), priority_(priority) {}
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;
  Host(Host&&) = default;

  const std::string& name() const { return name_; }  // "127.0.0.1:8080"
  uint32_t weight() const { return weight_; }
  uint32_t priority() const { return priority_; }

  // Set by active health checks and outlier detection (health.h). Every
  // balancing decision (priority load, panic, policies) uses only this.
  bool healthy() const { return healthy_; }
  // Changes health; the balancer owning the host notices at its next choice.
  // Health code and tests call this.
  void set_healthy(bool healthy) {
    if (healthy == healthy_) return;
    healthy_ = healthy;
    if (health_epoch_ != nullptr) ++*health_epoch_;
  }
  // Degraded (Envoy's: an active health check answered with
  // `x-envoy-degraded`): healthy, but used only for the share of traffic
  // the healthy, non-degraded hosts of all levels cannot take.
  bool degraded() const { return degraded_; }
  void set_degraded(bool degraded) {
    if (degraded == degraded_) return;
    degraded_ = degraded;
    if (health_epoch_ != nullptr) ++*health_epoch_;
  }

  // Attempts in flight to this host on this worker (least_request, ewma).
  uint32_t active_requests() const { return active_requests_; }
  void attempt_started() { ++active_requests_; }
  // `rtt`: the attempt's latency (ewma input; negative: not measured).
  void attempt_finished(std::chrono::nanoseconds rtt, Clock::time_point now);

  // Peak-EWMA estimate in nanoseconds, decayed to `now` (linkerd2: the
  // estimate decays towards 0 while nothing is observed, so an idle host is
  // tried again). `default_rtt` seeds a host never measured.
  double ewma_estimate(Clock::time_point now);
  // Sets the decay and the initial estimate, measured from `now` (by the
  // balancer: the same instant for all its hosts, so fresh hosts tie).
  void set_ewma(std::chrono::nanoseconds decay, std::chrono::nanoseconds default_rtt,
                Clock::time_point now);

 private:
  friend class LoadBalancer;

  std::string name_;
  uint32_t weight_;
  uint32_t priority_;
  bool healthy_ = true;
  bool degraded_ = false;
  uint64_t* health_epoch_ = nullptr;  // the owning balancer's
  uint32_t active_requests_ = 0;
  double ewma_ns_ = -1;  // < 0: never seeded
  double decay_ns_ = 10e9;
  Clock::time_point ewma_at_{};
};

// Per request: what the balancer may use besides host state.
struct LbContext {
  // The request's consistent-hash key (route hash_policy); ring_hash and
  // maglev need it (without one they pick at random), others ignore it
  // except to choose the priority level.
  std::optional<uint64_t> hash;
  // Hosts to avoid when another is available (Envoy's previous_hosts retry
  // predicate); honoured by every policy.
  std::span<const Host* const> avoid;

  bool avoided(const Host& h) const {
    for (const Host* a : avoid) {
      if (a == &h) return true;
    }
    return false;
  }
};

// One policy over one priority level's eligible hosts.
class Policy {
 public:
  virtual ~Policy() = default;
  // The eligible hosts changed (health, panic): rebuild tables. `all`: every
  // host of the level, eligible or not (the same on every call).
  virtual void build(std::span<Host* const> eligible, std::span<Host* const> all) = 0;
  // A host of the last build (non-empty). `attempt` > 0: the previous pick
  // was avoided; give another candidate.
  virtual Host* pick(const LbContext& ctx, uint32_t attempt) = 0;
};

// Which fraction of traffic each priority level gets, and which are in panic
// (Envoy's LoadBalancerBase). Exposed for tests and /clusters.
struct PriorityLoad {
  // Percent by level, to its healthy (non-degraded) hosts, then to its
  // degraded hosts; both together sum to 100 (levels with hosts).
  std::vector<uint32_t> load;
  std::vector<uint32_t> degraded_load;
  std::vector<bool> panic;  // the level balances over all its hosts
};
// `healthy[i]`, `degraded[i]`, `total[i]`: host counts of level i (healthy
// excludes degraded). Envoy's order: every level's healthy hosts take
// min(100%, factor * healthy share) in priority order, then degraded hosts
// the same way for what is left; a level whose healthy and degraded hosts
// are below the panic threshold is in panic (its load goes to all its
// hosts, in `load`).
PriorityLoad compute_priority_load(std::span<const uint32_t> healthy,
                                   std::span<const uint32_t> degraded,
                                   std::span<const uint32_t> total,
                                   uint32_t overprovisioning_factor, uint32_t panic_threshold);

class LoadBalancer {
 public:
  // `hosts` stay owned by the caller and must outlive the balancer; `seed`
  // seeds its random choices (per worker).
  LoadBalancer(config::LbPolicy policy, const config::LbSettings& settings,
               std::span<Host* const> hosts, uint64_t seed);
  ~LoadBalancer();
  LoadBalancer(const LoadBalancer&) = delete;
  LoadBalancer& operator=(const LoadBalancer&) = delete;

  // The host for a request, or nullptr when the cluster has none.
  Host* choose(const LbContext& ctx);

  // The current split (recomputed first if health changed).
  const PriorityLoad& priority_load();
  config::LbPolicy policy() const { return policy_; }
  // The random numbers of this balancer (xoshiro-like; not cryptographic).
  uint64_t random();
  // For tests of ewma: the clock it reads.
  // (Restarts the hosts' EWMA clocks at its now.)
  void set_clock_for_test(Host::Clock::time_point (*now)());

 private:
  struct Level {
    std::vector<Host*> all;
    std::vector<Host*> eligible;  // healthy and not degraded, or all in panic
    std::unique_ptr<Policy> policy;
    std::vector<Host*> degraded;  // healthy and degraded (not in panic)
    std::unique_ptr<Policy> degraded_policy;
  };
  void refresh();
  std::unique_ptr<Policy> make_policy();

  const config::LbPolicy policy_;
  const config::LbSettings settings_;
  std::vector<Level> levels_;  // by priority, only levels with hosts
  PriorityLoad load_;
  uint64_t health_epoch_ = 1;
  uint64_t built_epoch_ = 0;
  uint64_t rng_;
  Host::Clock::time_point (*now_)() = &Host::Clock::now;
};

// 64-bit hash of a key (std::hash of the bytes), the one hash_policy uses.
uint64_t hash_key(std::string_view key);
// Combines hashes of several hash_policy entries (Envoy: rotate and xor).
uint64_t combine_hash(uint64_t acc, uint64_t h);

}  // namespace sidecar::upstream
