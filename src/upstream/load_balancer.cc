#include "upstream/load_balancer.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string_view>

#include <fmt/format.h>

namespace sidecar::upstream {
namespace {

// splitmix64's finalizer: spreads a hash's bits (derives Maglev's skip).
uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

bool equal_weights(std::span<Host* const> hosts) {
  for (Host* h : hosts) {
    if (h->weight() != hosts[0]->weight()) return false;
  }
  return true;
}

// nginx's smooth weighted round robin: every pick adds each host's weight to
// its current value, takes the largest and subtracts the total from it. The
// picks of one cycle are spread (5,1,1 gives a a b a c a a), not bunched.
class RoundRobin final : public Policy {
 public:
  void build(std::span<Host* const> hosts, std::span<Host* const>) override {
    hosts_.assign(hosts.begin(), hosts.end());
    current_.assign(hosts_.size(), 0);
    equal_ = equal_weights(hosts);
    if (next_ >= hosts_.size()) next_ = 0;
  }
  Host* pick(const LbContext&, uint32_t) override {
    if (equal_) {
      Host* h = hosts_[next_];
      if (++next_ == hosts_.size()) next_ = 0;
      return h;
    }
    int64_t total = 0;
    size_t best = 0;
    for (size_t i = 0; i < hosts_.size(); ++i) {
      current_[i] += hosts_[i]->weight();
      total += hosts_[i]->weight();
      if (current_[i] > current_[best]) best = i;
    }
    current_[best] -= total;
    return hosts_[best];
  }

 private:
  std::vector<Host*> hosts_;
  std::vector<int64_t> current_;
  size_t next_ = 0;
  bool equal_ = true;
};

// Envoy's least_request. Equal weights: the host with the fewest active
// requests among `choice_count` random ones (power of two choices). Unequal
// weights: smooth weighted round robin over weight / (active + 1)^bias, so a
// busy host's share shrinks (Envoy schedules the same weights by EDF).
class LeastRequest final : public Policy {
 public:
  LeastRequest(LoadBalancer& lb, uint32_t choice_count, double bias)
      : lb_(lb), choice_count_(choice_count), bias_(bias) {}
  void build(std::span<Host* const> hosts, std::span<Host* const>) override {
    hosts_.assign(hosts.begin(), hosts.end());
    current_.assign(hosts_.size(), 0);
    equal_ = equal_weights(hosts);
  }
  Host* pick(const LbContext&, uint32_t) override {
    const size_t n = hosts_.size();
    if (equal_ || n == 1) {
      Host* best = hosts_[lb_.random() % n];
      for (uint32_t i = 1; i < choice_count_; ++i) {
        Host* h = hosts_[lb_.random() % n];
        if (h->active_requests() < best->active_requests()) best = h;
      }
      return best;
    }
    double total = 0;
    size_t best = 0;
    for (size_t i = 0; i < n; ++i) {
      const double active = hosts_[i]->active_requests() + 1.0;
      const double w = bias_ == 1.0   ? hosts_[i]->weight() / active
                       : bias_ == 0.0 ? hosts_[i]->weight()
                                      : hosts_[i]->weight() / std::pow(active, bias_);
      current_[i] += w;
      total += w;
      if (current_[i] > current_[best]) best = i;
    }
    current_[best] -= total;
    return hosts_[best];
  }

 private:
  LoadBalancer& lb_;
  const uint32_t choice_count_;
  const double bias_;
  std::vector<Host*> hosts_;
  std::vector<double> current_;
  bool equal_ = true;
};

// Weighted random: a uniform point in the cumulative weights.
class Random final : public Policy {
 public:
  explicit Random(LoadBalancer& lb) : lb_(lb) {}
  void build(std::span<Host* const> hosts, std::span<Host* const>) override {
    hosts_.assign(hosts.begin(), hosts.end());
    cumulative_.clear();
    uint64_t sum = 0;
    for (Host* h : hosts_) cumulative_.push_back(sum += h->weight());
  }
  Host* pick(const LbContext&, uint32_t) override {
    const uint64_t x = lb_.random() % cumulative_.back();
    const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), x);
    return hosts_[static_cast<size_t>(it - cumulative_.begin())];
  }

 private:
  LoadBalancer& lb_;
  std::vector<Host*> hosts_;
  std::vector<uint64_t> cumulative_;
};

// Envoy's ring hash: each host owns ring points in proportion to its weight,
// the ring has at least minimum_ring_size points, and a key belongs to the
// first point at or after its hash. A host that leaves takes only its own
// points with it: only its keys move.
class RingHash final : public Policy {
 public:
  RingHash(LoadBalancer& lb, uint64_t min_size, uint64_t max_size)
      : lb_(lb), min_size_(min_size), max_size_(max_size) {}
  void build(std::span<Host* const> eligible, std::span<Host* const> all) override {
    if (ring_.empty()) build_ring(all);
    // `eligible` is a subsequence of `all`, in the same order.
    eligible_.assign(all_.size(), 0);
    size_t e = 0;
    for (size_t i = 0; i < all_.size() && e < eligible.size(); ++i) {
      if (all_[i] == eligible[e]) {
        eligible_[i] = 1;
        ++e;
      }
    }
  }
  Host* pick(const LbContext& ctx, uint32_t attempt) override {
    const uint64_t h = ctx.hash ? *ctx.hash : lb_.random();
    auto it = std::lower_bound(ring_.begin(), ring_.end(), h,
                               [](const Point& p, uint64_t v) { return p.hash < v; });
    size_t i = static_cast<size_t>(it - ring_.begin());
    // A retry walks on along the ring (Envoy: as if the host were absent).
    i = (i + attempt) % ring_.size();
    // Points of hosts not eligible pass the key on to the next point.
    for (size_t n = 0; n < ring_.size(); ++n, i = (i + 1) % ring_.size()) {
      if (eligible_[ring_[i].host]) return all_[ring_[i].host];
    }
    return all_[ring_[i].host];  // unreachable: build() had an eligible host
  }

 private:
  struct Point {
    uint64_t hash;
    uint32_t host;  // index into all_
  };
  void build_ring(std::span<Host* const> all) {
    all_.assign(all.begin(), all.end());
    double weight_sum = 0;
    for (Host* h : all_) weight_sum += h->weight();
    double min_normalized = 1.0;
    for (Host* h : all_) min_normalized = std::min(min_normalized, h->weight() / weight_sum);
    // Enough points that the lightest host gets its share of a ring of at
    // least min_size points, capped at max_size (Envoy's sizing).
    const double scale =
        std::min(std::ceil(min_normalized * static_cast<double>(min_size_)) / min_normalized,
                 static_cast<double>(max_size_));
    ring_.reserve(static_cast<size_t>(std::ceil(scale)) + all_.size());
    double current = 0, target = 0;
    std::string key;
    for (size_t h = 0; h < all_.size(); ++h) {
      target += scale * (all_[h]->weight() / weight_sum);
      for (uint64_t i = 0; current < target; ++i, current += 1) {
        key.assign(all_[h]->name()).append("_").append(std::to_string(i));
        ring_.push_back({hash_key(key), static_cast<uint32_t>(h)});
      }
    }
    std::sort(ring_.begin(), ring_.end(),
              [](const Point& a, const Point& b) { return a.hash < b.hash; });
  }

  LoadBalancer& lb_;
  const uint64_t min_size_, max_size_;
  std::vector<Host*> all_;
  std::vector<Point> ring_;
  std::vector<char> eligible_;  // by index into all_
};

// Maglev: a lookup table of a prime size where every host fills slots in the
// order of its own permutation (offset, skip), heavier hosts more often per
// round (Envoy's weighted variant). Lookup is one index; a host that leaves
// moves little more than its own share of keys.
class Maglev final : public Policy {
 public:
  static constexpr uint64_t kTableSize = 65537;
  explicit Maglev(LoadBalancer& lb) : lb_(lb) {}
  void build(std::span<Host* const> hosts, std::span<Host* const>) override {
    hosts_.assign(hosts.begin(), hosts.end());
    table_.assign(kTableSize, UINT32_MAX);
    struct Entry {
      uint64_t offset, skip, next = 0;
      double weight, target = 0;
    };
    std::vector<Entry> entries;
    uint32_t max_weight = 0;
    for (Host* h : hosts_) max_weight = std::max(max_weight, h->weight());
    for (Host* h : hosts_) {
      const uint64_t a = hash_key(h->name());
      entries.push_back({a % kTableSize, mix(a) % (kTableSize - 1) + 1, 0,
                         static_cast<double>(h->weight()) / max_weight, 0});
    }
    uint64_t filled = 0;
    for (uint64_t round = 1; filled < kTableSize; ++round) {
      for (size_t i = 0; i < entries.size() && filled < kTableSize; ++i) {
        Entry& e = entries[i];
        // A host of the largest weight fills a slot every round, one of a
        // third of it every third round.
        if (static_cast<double>(round) * e.weight < e.target) continue;
        e.target += 1.0;
        uint64_t slot = (e.offset + e.skip * e.next) % kTableSize;
        while (table_[slot] != UINT32_MAX) {
          ++e.next;
          slot = (e.offset + e.skip * e.next) % kTableSize;
        }
        table_[slot] = static_cast<uint32_t>(i);
        ++e.next;
        ++filled;
      }
    }
  }
  Host* pick(const LbContext& ctx, uint32_t attempt) override {
    uint64_t h = ctx.hash ? *ctx.hash : lb_.random();
    if (attempt > 0) h = mix(h + attempt);  // another slot for a retry
    return hosts_[table_[h % kTableSize]];
  }

 private:
  LoadBalancer& lb_;
  std::vector<Host*> hosts_;
  std::vector<uint32_t> table_;  // host index by slot
};

// linkerd2's balancer: two random hosts, the one of lower peak-EWMA cost
// (estimate * (active + 1), divided by weight here) wins.
class Ewma final : public Policy {
 public:
  Ewma(LoadBalancer& lb, Host::Clock::time_point (**now)()) : lb_(lb), now_(now) {}
  void build(std::span<Host* const> hosts, std::span<Host* const>) override {
    hosts_.assign(hosts.begin(), hosts.end());
  }
  Host* pick(const LbContext&, uint32_t) override {
    const size_t n = hosts_.size();
    if (n == 1) return hosts_[0];
    const size_t a = lb_.random() % n;
    size_t b = lb_.random() % (n - 1);
    if (b >= a) ++b;  // two distinct hosts
    const auto now = (*now_)();
    return cost(*hosts_[a], now) <= cost(*hosts_[b], now) ? hosts_[a] : hosts_[b];
  }

 private:
  static double cost(Host& h, Host::Clock::time_point now) {
    const double estimate = h.ewma_estimate(now);
    const double active = h.active_requests();
    // An estimate decayed to nothing must still count what is in flight.
    if (estimate <= 0) return (active > 0 ? 1e9 + active : 0) / h.weight();
    return estimate * (active + 1) / h.weight();
  }
  LoadBalancer& lb_;
  Host::Clock::time_point (**now_)();
  std::vector<Host*> hosts_;
};

}  // namespace

void Host::set_ewma(std::chrono::nanoseconds decay, std::chrono::nanoseconds default_rtt,
                    Clock::time_point now) {
  decay_ns_ = std::max<double>(1.0, static_cast<double>(decay.count()));
  ewma_ns_ = static_cast<double>(default_rtt.count());
  ewma_at_ = now;
}

double Host::ewma_estimate(Clock::time_point now) {
  if (ewma_ns_ < 0) return 0;
  if (now > ewma_at_) {
    const double elapsed = static_cast<double>((now - ewma_at_).count());
    ewma_ns_ *= std::exp(-elapsed / decay_ns_);
    ewma_at_ = now;
  }
  return ewma_ns_;
}

void Host::attempt_finished(std::chrono::nanoseconds rtt, Clock::time_point now) {
  if (active_requests_ > 0) --active_requests_;
  if (rtt.count() < 0 || ewma_ns_ < 0) return;
  const double x = static_cast<double>(rtt.count());
  if (x > ewma_ns_) {
    ewma_ns_ = x;  // peak: the worst recent latency counts at once
  } else {
    const double elapsed = now > ewma_at_ ? static_cast<double>((now - ewma_at_).count()) : 0.0;
    const double decay = std::exp(-elapsed / decay_ns_);
    ewma_ns_ = ewma_ns_ * decay + x * (1 - decay);
  }
  ewma_at_ = now;
}

PriorityLoad compute_priority_load(std::span<const uint32_t> healthy,
                                   std::span<const uint32_t> degraded,
                                   std::span<const uint32_t> total,
                                   uint32_t overprovisioning_factor, uint32_t panic_threshold) {
  const size_t n = total.size();
  PriorityLoad out;
  out.load.assign(n, 0);
  out.degraded_load.assign(n, 0);
  out.panic.assign(n, false);
  if (n == 0) return out;
  // Slots 0..n-1: the levels' healthy hosts; n..2n-1: their degraded hosts.
  std::vector<uint32_t> health(2 * n, 0);
  uint32_t sum = 0;
  for (size_t i = 0; i < n; ++i) {
    if (total[i] == 0) continue;
    const uint64_t h = uint64_t{overprovisioning_factor} * healthy[i] / total[i];
    const uint64_t d = uint64_t{overprovisioning_factor} * degraded[i] / total[i];
    health[i] = static_cast<uint32_t>(std::min<uint64_t>(100, h));
    health[n + i] = static_cast<uint32_t>(std::min<uint64_t>(100 - health[i], d));
    sum += health[i] + health[n + i];
    out.panic[i] = uint64_t{healthy[i] + degraded[i]} * 100 < uint64_t{panic_threshold} * total[i];
  }
  const uint32_t normalized = std::min<uint32_t>(100, sum);
  if (normalized == 0) {
    // Nothing healthy anywhere: all traffic to the first level, in panic.
    out.load[0] = 100;
    for (size_t i = 0; i < n; ++i) out.panic[i] = true;
    return out;
  }
  std::vector<uint32_t> share(2 * n, 0);
  uint32_t left = 100;
  for (size_t i = 0; i < 2 * n; ++i) {
    share[i] = std::min(left, health[i] * 100 / normalized);
    left -= share[i];
  }
  // Rounding leftovers go to the first slot that takes traffic.
  for (size_t i = 0; i < 2 * n && left > 0; ++i) {
    if (health[i] > 0) {
      share[i] += left;
      left = 0;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    // A level in panic balances over all its hosts: one pool.
    out.load[i] = share[i] + (out.panic[i] ? share[n + i] : 0);
    out.degraded_load[i] = out.panic[i] ? 0 : share[n + i];
  }
  return out;
}

LoadBalancer::LoadBalancer(config::LbPolicy policy, const config::LbSettings& settings,
                           std::span<Host* const> hosts, uint64_t seed)
    : policy_(policy), settings_(settings), rng_(seed == 0 ? 0x9e3779b97f4a7c15ULL : seed) {
  std::map<uint32_t, std::vector<Host*>> by_priority;
  const auto now = now_();
  for (Host* h : hosts) {
    h->health_epoch_ = &health_epoch_;
    if (policy_ == config::LbPolicy::kEwma) {
      h->set_ewma(settings_.ewma_decay, settings_.ewma_default_rtt, now);
    }
    by_priority[h->priority()].push_back(h);
  }
  for (auto& [priority, list] : by_priority) {
    Level& l = levels_.emplace_back();
    l.all = std::move(list);
    l.policy = make_policy();
  }
}

LoadBalancer::~LoadBalancer() {
  for (Level& l : levels_) {
    for (Host* h : l.all) h->health_epoch_ = nullptr;
  }
}

std::unique_ptr<Policy> LoadBalancer::make_policy() {
  switch (policy_) {
    case config::LbPolicy::kRoundRobin:
      return std::make_unique<RoundRobin>();
    case config::LbPolicy::kLeastRequest:
      return std::make_unique<LeastRequest>(*this, settings_.choice_count,
                                            settings_.active_request_bias);
    case config::LbPolicy::kRandom:
      return std::make_unique<Random>(*this);
    case config::LbPolicy::kRingHash:
      return std::make_unique<RingHash>(*this, settings_.minimum_ring_size,
                                        settings_.maximum_ring_size);
    case config::LbPolicy::kMaglev:
      return std::make_unique<Maglev>(*this);
    case config::LbPolicy::kEwma:
      return std::make_unique<Ewma>(*this, &now_);
  }
  return std::make_unique<RoundRobin>();
}

void LoadBalancer::set_clock_for_test(Host::Clock::time_point (*now)()) {
  now_ = now;
  if (policy_ != config::LbPolicy::kEwma) return;
  for (Level& l : levels_) {
    for (Host* h : l.all) h->set_ewma(settings_.ewma_decay, settings_.ewma_default_rtt, now_());
  }
}

uint64_t LoadBalancer::random() {
  // splitmix64: one add and a mix per number; plenty for choosing hosts.
  rng_ += 0x9e3779b97f4a7c15ULL;
  return mix(rng_);
}

void LoadBalancer::refresh() {
  built_epoch_ = health_epoch_;
  std::vector<uint32_t> healthy, degraded, total;
  for (Level& l : levels_) {
    uint32_t h = 0, d = 0;
    for (Host* host : l.all) {
      if (host->healthy()) ++(host->degraded() ? d : h);
    }
    healthy.push_back(h);
    degraded.push_back(d);
    total.push_back(static_cast<uint32_t>(l.all.size()));
  }
  load_ = compute_priority_load(healthy, degraded, total, settings_.overprovisioning_factor,
                                settings_.healthy_panic_threshold);
  for (size_t i = 0; i < levels_.size(); ++i) {
    Level& l = levels_[i];
    l.eligible.clear();
    l.degraded.clear();
    for (Host* h : l.all) {
      if (load_.panic[i] || (h->healthy() && !h->degraded())) {
        l.eligible.push_back(h);
      } else if (h->healthy()) {
        l.degraded.push_back(h);
      }
    }
    if (!l.eligible.empty()) l.policy->build(l.eligible, l.all);
    if (!l.degraded.empty()) {
      if (!l.degraded_policy) l.degraded_policy = make_policy();
      l.degraded_policy->build(l.degraded, l.all);
    }
  }
}

const PriorityLoad& LoadBalancer::priority_load() {
  if (built_epoch_ != health_epoch_) refresh();
  return load_;
}

Host* LoadBalancer::choose(const LbContext& ctx) {
  if (levels_.empty()) return nullptr;
  if (built_epoch_ != health_epoch_) refresh();
  // The level and pool (healthy, else degraded): by the request's hash
  // when it has one (the same key stays on the same level), else at random.
  size_t level = 0;
  bool use_degraded = false;
  if (levels_.size() > 1 || load_.degraded_load[0] > 0) {
    const uint64_t x = (ctx.hash ? mix(*ctx.hash) : random()) % 100;
    uint64_t acc = 0;
    bool found = false;
    for (size_t i = 0; i < levels_.size() && !found; ++i) {
      acc += load_.load[i];
      if (x < acc) level = i, found = true;
    }
    for (size_t i = 0; i < levels_.size() && !found; ++i) {
      acc += load_.degraded_load[i];
      if (x < acc) level = i, use_degraded = true, found = true;
    }
  }
  Level& l = levels_[level];
  std::vector<Host*>& pool = use_degraded ? l.degraded : l.eligible;
  Policy* policy = use_degraded ? l.degraded_policy.get() : l.policy.get();
  if (pool.empty()) return nullptr;  // cannot happen: a loaded pool has hosts
  Host* h = policy->pick(ctx, 0);
  if (ctx.avoid.empty() || !ctx.avoided(*h)) return h;
  // Previous hosts: ask the policy again a few times, then take any other
  // host of the pool, then the same one (a retry to it beats none).
  const uint32_t tries = static_cast<uint32_t>(std::min<size_t>(pool.size() * 2, 16));
  for (uint32_t attempt = 1; attempt <= tries; ++attempt) {
    Host* other = policy->pick(ctx, attempt);
    if (!ctx.avoided(*other)) return other;
  }
  const size_t start = random() % pool.size();
  for (size_t i = 0; i < pool.size(); ++i) {
    Host* other = pool[(start + i) % pool.size()];
    if (!ctx.avoided(*other)) return other;
  }
  return h;
}

uint64_t hash_key(std::string_view key) { return std::hash<std::string_view>{}(key); }

uint64_t combine_hash(uint64_t acc, uint64_t h) { return ((acc << 1) | (acc >> 63)) ^ h; }

}  // namespace sidecar::upstream
