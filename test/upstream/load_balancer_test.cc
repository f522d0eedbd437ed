#include "upstream/load_balancer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/balancing.h"

namespace sidecar::upstream {
namespace {

using config::LbPolicy;

// Hosts owned by a test, and the balancer over them.
struct Fixture {
  std::vector<std::unique_ptr<Host>> owned;
  std::vector<Host*> hosts;
  std::unique_ptr<LoadBalancer> lb;

  Host& add(const std::string& name, uint32_t weight = 1, uint32_t priority = 0) {
    owned.push_back(std::make_unique<Host>(name, weight, priority));
    hosts.push_back(owned.back().get());
    return *owned.back();
  }
  LoadBalancer& make(LbPolicy p, config::LbSettings s = {}) {
    lb = std::make_unique<LoadBalancer>(p, s, hosts, 42);
    return *lb;
  }
  // Picks per host name over `n` choices.
  std::map<std::string, int> counts(int n, const LbContext& ctx = {}) {
    std::map<std::string, int> c;
    for (int i = 0; i < n; ++i) ++c[lb->choose(ctx)->name()];
    return c;
  }
};

TEST(LoadBalancer, NoHostsGivesNull) {
  Fixture f;
  EXPECT_EQ(f.make(LbPolicy::kRoundRobin).choose({}), nullptr);
}

TEST(RoundRobin, EqualWeightsRotate) {
  Fixture f;
  f.add("a");
  f.add("b");
  f.add("c");
  f.make(LbPolicy::kRoundRobin);
  EXPECT_EQ(f.lb->choose({})->name(), "a");
  EXPECT_EQ(f.lb->choose({})->name(), "b");
  EXPECT_EQ(f.lb->choose({})->name(), "c");
  EXPECT_EQ(f.lb->choose({})->name(), "a");
}

TEST(RoundRobin, SmoothWeightedIsNginxSequence) {
  Fixture f;
  f.add("a", 5);
  f.add("b", 1);
  f.add("c", 1);
  f.make(LbPolicy::kRoundRobin);
  std::string seq;
  for (int i = 0; i < 7; ++i) seq += f.lb->choose({})->name();
  // nginx's documented example: { a a b a c a a } spread, not a a a a a b c.
  EXPECT_EQ(seq, "aabacaa");
}

TEST(RoundRobin, DistributionByWeight) {
  Fixture f;
  f.add("a", 3);
  f.add("b", 1);
  f.make(LbPolicy::kRoundRobin);
  auto c = f.counts(4000);
  EXPECT_EQ(c["a"], 3000);
  EXPECT_EQ(c["b"], 1000);
}

TEST(Random, DistributionByWeight) {
  Fixture f;
  f.add("a", 3);
  f.add("b", 1);
  f.make(LbPolicy::kRandom);
  auto c = f.counts(40000);
  EXPECT_NEAR(c["a"] / 40000.0, 0.75, 0.02);
}

TEST(LeastRequest, PowerOfTwoChoicesAvoidsTheBusyHost) {
  Fixture f;
  Host& busy = f.add("busy");
  f.add("b");
  f.add("c");
  for (int i = 0; i < 10; ++i) busy.attempt_started();
  f.make(LbPolicy::kLeastRequest);
  auto c = f.counts(3000);
  // P2C: the busy host wins only when both choices are it (1/9 of picks).
  EXPECT_LT(c["busy"], 3000 / 9 + 150);
  EXPECT_GT(c["b"], 1100);
  EXPECT_GT(c["c"], 1100);
}

TEST(LeastRequest, IdleHostsShareEvenly) {
  Fixture f;
  f.add("a");
  f.add("b");
  f.make(LbPolicy::kLeastRequest);
  auto c = f.counts(10000);
  EXPECT_NEAR(c["a"] / 10000.0, 0.5, 0.03);
}

TEST(LeastRequest, WeightedScaledByActiveRequests) {
  Fixture f;
  Host& a = f.add("a", 2);
  f.add("b", 1);
  f.make(LbPolicy::kLeastRequest);
  auto c = f.counts(3000);
  EXPECT_NEAR(c["a"], 2000, 5);  // idle: by weight
  // a has 3 in flight: weight 2 / (3 + 1) = 0.5 against b's 1: b gets 2/3.
  for (int i = 0; i < 3; ++i) a.attempt_started();
  c = f.counts(3000);
  EXPECT_NEAR(c["b"], 2000, 5);
}

TEST(Ewma, PrefersTheFasterHost) {
  static Host::Clock::time_point now = Host::Clock::time_point(std::chrono::hours(1));
  Fixture f;
  Host& slow = f.add("slow");
  Host& fast = f.add("fast");
  f.make(LbPolicy::kEwma);
  f.lb->set_clock_for_test([] { return now; });
  // Fresh hosts start at the default RTT (30 ms): the same cost.
  EXPECT_NEAR(slow.ewma_estimate(now), 30e6, 1);
  slow.attempt_started();
  slow.attempt_finished(std::chrono::milliseconds(200), now);  // peak: taken at once
  fast.attempt_started();
  fast.attempt_finished(std::chrono::milliseconds(5), now);
  EXPECT_NEAR(slow.ewma_estimate(now), 200e6, 1);
  auto c = f.counts(1000);
  EXPECT_EQ(c["fast"], 1000);  // two hosts: both are always the two choices
  // Ten decay periods later the peak is forgotten: both near 0 again.
  now += std::chrono::seconds(100);
  EXPECT_NEAR(slow.ewma_estimate(now), 200e6 * std::exp(-10.0), 1);
}

TEST(Ewma, LowerSampleDecaysTowardsIt) {
  const auto t0 = Host::Clock::time_point(std::chrono::hours(1));
  Host h("h");
  h.set_ewma(std::chrono::seconds(10), std::chrono::milliseconds(100), t0);
  EXPECT_NEAR(h.ewma_estimate(t0), 100e6, 1);
  // 10 s later (one decay period) a 0 ms sample: 100 * e^-1 + 0 * (1 - e^-1).
  h.attempt_finished(std::chrono::nanoseconds(0), t0 + std::chrono::seconds(10));
  EXPECT_NEAR(h.ewma_estimate(t0 + std::chrono::seconds(10)), 100e6 * std::exp(-1.0), 1e3);
}

TEST(Ewma, InFlightRequestsRaiseTheCost) {
  static Host::Clock::time_point now = Host::Clock::time_point(std::chrono::hours(1));
  Fixture f;
  Host& a = f.add("a");
  f.add("b");
  f.make(LbPolicy::kEwma);
  f.lb->set_clock_for_test([] { return now; });
  for (int i = 0; i < 3; ++i) a.attempt_started();  // same estimate, 4x the cost
  auto c = f.counts(100);
  EXPECT_EQ(c["b"], 100);
}

// Keys are hashed the way hash_policy does; returns the host of each key.
std::vector<std::string> owners(LoadBalancer& lb, int keys) {
  std::vector<std::string> out;
  for (int k = 0; k < keys; ++k) {
    LbContext ctx;
    ctx.hash = hash_key("user-" + std::to_string(k));
    out.push_back(lb.choose(ctx)->name());
  }
  return out;
}

void expect_consistent(LbPolicy policy, double slack) {
  constexpr int kHosts = 5, kKeys = 20000;
  Fixture f;
  for (int i = 0; i < kHosts; ++i) f.add("10.0.0." + std::to_string(i) + ":80");
  f.make(policy);
  const auto before = owners(*f.lb, kKeys);
  EXPECT_EQ(before, owners(*f.lb, kKeys));  // sticky
  // Every host owns a fair share.
  std::map<std::string, int> share;
  for (const auto& o : before) ++share[o];
  for (const auto& [h, n] : share) EXPECT_NEAR(n, kKeys / kHosts, kKeys / kHosts * 0.35) << h;
  // One host leaves (unhealthy): its keys move, the others' stay.
  f.hosts[2]->set_healthy(false);
  const auto after = owners(*f.lb, kKeys);
  int moved = 0;
  for (int k = 0; k < kKeys; ++k) {
    if (before[k] == after[k]) continue;
    ++moved;
  }
  for (const auto& o : after) EXPECT_NE(o, f.hosts[2]->name());
  const double fraction = static_cast<double>(moved) / kKeys;
  EXPECT_GT(fraction, 1.0 / kHosts - 0.07);
  EXPECT_LT(fraction, 1.0 / kHosts + slack);
  // It comes back: the same owners as before.
  f.hosts[2]->set_healthy(true);
  EXPECT_EQ(before, owners(*f.lb, kKeys));
}

TEST(RingHash, OnlyTheLeavingHostsKeysMove) { expect_consistent(LbPolicy::kRingHash, 0.001); }
TEST(Maglev, AboutOneNthOfKeysMove) { expect_consistent(LbPolicy::kMaglev, 0.05); }

TEST(RingHash, WeightsGiveShares) {
  Fixture f;
  f.add("10.0.0.1:80", 3);
  f.add("10.0.0.2:80", 1);
  f.make(LbPolicy::kRingHash);
  std::map<std::string, int> share;
  for (const auto& o : owners(*f.lb, 20000)) ++share[o];
  EXPECT_NEAR(share["10.0.0.1:80"] / 20000.0, 0.75, 0.05);
}

TEST(Maglev, WeightsGiveShares) {
  Fixture f;
  f.add("10.0.0.1:80", 3);
  f.add("10.0.0.2:80", 1);
  f.make(LbPolicy::kMaglev);
  std::map<std::string, int> share;
  for (const auto& o : owners(*f.lb, 20000)) ++share[o];
  EXPECT_NEAR(share["10.0.0.1:80"] / 20000.0, 0.75, 0.03);
}

// Every policy honours the previous-hosts list when another host exists.
class AvoidTest : public testing::TestWithParam<LbPolicy> {};

TEST_P(AvoidTest, PicksAnotherHost) {
  Fixture f;
  f.add("10.0.0.1:80");
  f.add("10.0.0.2:80");
  f.add("10.0.0.3:80");
  f.make(GetParam());
  for (int i = 0; i < 300; ++i) {
    LbContext ctx;
    ctx.hash = hash_key("k" + std::to_string(i));
    const Host* first = f.lb->choose(ctx);
    const Host* avoid[] = {first};
    ctx.avoid = avoid;
    const Host* second = f.lb->choose(ctx);
    EXPECT_NE(second, first);
    const Host* both[] = {first, second};
    ctx.avoid = both;
    const Host* third = f.lb->choose(ctx);
    EXPECT_NE(third, first);
    EXPECT_NE(third, second);
  }
}

TEST_P(AvoidTest, OnlyAvoidedHostLeftIsStillUsed) {
  Fixture f;
  f.add("10.0.0.1:80");
  f.make(GetParam());
  const Host* only = f.lb->choose({});
  const Host* avoid[] = {only};
  LbContext ctx;
  ctx.avoid = avoid;
  EXPECT_EQ(f.lb->choose(ctx), only);
}

TEST_P(AvoidTest, UnhealthyHostsAreNotChosen) {
  Fixture f;
  f.add("10.0.0.1:80");
  f.add("10.0.0.2:80");
  f.add("10.0.0.3:80");
  f.add("10.0.0.4:80");
  f.make(GetParam());
  f.hosts[1]->set_healthy(false);  // 3 of 4 healthy: above the panic threshold
  for (int i = 0; i < 400; ++i) {
    LbContext ctx;
    ctx.hash = hash_key("k" + std::to_string(i));
    EXPECT_NE(f.lb->choose(ctx), f.hosts[1]);
  }
}

TEST_P(AvoidTest, PanicBalancesOverAll) {
  Fixture f;
  for (int i = 0; i < 4; ++i) f.add("10.0.0." + std::to_string(i) + ":80");
  f.make(GetParam());
  // 1 of 4 healthy (25% < 50%): panic, all four take traffic.
  for (int i = 1; i < 4; ++i) f.hosts[i]->set_healthy(false);
  std::map<const Host*, int> seen;
  for (int i = 0; i < 2000; ++i) {
    LbContext ctx;
    ctx.hash = hash_key("k" + std::to_string(i));
    ++seen[f.lb->choose(ctx)];
  }
  EXPECT_EQ(seen.size(), 4u);
}

INSTANTIATE_TEST_SUITE_P(Policies, AvoidTest,
                         testing::Values(LbPolicy::kRoundRobin, LbPolicy::kLeastRequest,
                                         LbPolicy::kRandom, LbPolicy::kRingHash, LbPolicy::kMaglev,
                                         LbPolicy::kEwma),
                         [](const auto& info) {
                           return std::string(config::to_string(info.param));
                         });

TEST(PriorityLoad, AllHealthyGoesToPriorityZero) {
  const uint32_t healthy[] = {4, 4}, none[] = {0, 0}, total[] = {4, 4};
  auto p = compute_priority_load(healthy, none, total, 140, 50);
  EXPECT_EQ(p.load, (std::vector<uint32_t>{100, 0}));
  EXPECT_EQ(p.panic, (std::vector<bool>{false, false}));
}

TEST(PriorityLoad, OverprovisioningFactorSpills) {
  // Envoy's documented example: P0 at 60% healthy takes 84% (60 * 1.4);
  // the other 16% spill to P1.
  const uint32_t healthy[] = {6, 10}, none[] = {0, 0}, total[] = {10, 10};
  auto p = compute_priority_load(healthy, none, total, 140, 50);
  EXPECT_EQ(p.load, (std::vector<uint32_t>{84, 16}));
  // 3 of 4 healthy: 75% * 1.4 = 105%, capped at 100: nothing spills.
  const uint32_t h2[] = {3, 4}, t2[] = {4, 4};
  EXPECT_EQ(compute_priority_load(h2, none, t2, 140, 50).load, (std::vector<uint32_t>{100, 0}));
}

TEST(PriorityLoad, NormalizedWhenEveryLevelIsMostlyDown) {
  // P0 20% healthy (28), P1 20% (28): total 56 < 100, scaled to 50/50.
  const uint32_t healthy[] = {2, 2}, none[] = {0, 0}, total[] = {10, 10};
  auto p = compute_priority_load(healthy, none, total, 140, 50);
  EXPECT_EQ(p.load, (std::vector<uint32_t>{50, 50}));
  EXPECT_EQ(p.panic, (std::vector<bool>{true, true}));
}

TEST(PriorityLoad, NothingHealthyGoesToPriorityZeroInPanic) {
  const uint32_t healthy[] = {0, 0}, none[] = {0, 0}, total[] = {3, 3};
  auto p = compute_priority_load(healthy, none, total, 140, 50);
  EXPECT_EQ(p.load, (std::vector<uint32_t>{100, 0}));
  EXPECT_EQ(p.panic, (std::vector<bool>{true, true}));
}

TEST(PriorityLoad, PrioritiesSpillInTheBalancer) {
  Fixture f;
  f.add("p0-a", 1, 0);
  f.add("p0-b", 1, 0);
  f.add("p1-a", 1, 1);
  f.add("p1-b", 1, 1);
  f.make(LbPolicy::kRoundRobin);
  auto c = f.counts(1000);
  EXPECT_EQ(c["p0-a"] + c["p0-b"], 1000);  // all healthy: priority 0 only
  f.hosts[0]->set_healthy(false);          // P0 50%: 70% of traffic, 30% spills
  c = f.counts(10000);
  EXPECT_EQ(c["p0-a"], 0);
  EXPECT_NEAR(c["p0-b"] / 10000.0, 0.70, 0.03);
  EXPECT_NEAR((c["p1-a"] + c["p1-b"]) / 10000.0, 0.30, 0.03);
  f.hosts[1]->set_healthy(false);  // P0 down: everything to P1
  c = f.counts(1000);
  EXPECT_EQ(c["p1-a"] + c["p1-b"], 1000);
  EXPECT_EQ(f.lb->priority_load().load, (std::vector<uint32_t>{0, 100}));
}

TEST(PriorityLoad, DegradedHostsTakeWhatHealthyOnesCannot) {
  // Envoy's order: P0 healthy 40% -> 56; P1 healthy 20% -> 28; what is left
  // (16) goes to P0's degraded hosts (3 of 10: up to 42).
  const uint32_t healthy[] = {4, 2}, degraded[] = {3, 0}, total[] = {10, 10};
  auto p = compute_priority_load(healthy, degraded, total, 140, 50);
  EXPECT_EQ(p.load, (std::vector<uint32_t>{56, 28}));
  EXPECT_EQ(p.degraded_load, (std::vector<uint32_t>{16, 0}));
  EXPECT_EQ(p.panic, (std::vector<bool>{false, true}));
  // Enough healthy hosts: degraded ones get nothing.
  const uint32_t h2[] = {8}, d2[] = {2}, t2[] = {10};
  p = compute_priority_load(h2, d2, t2, 140, 50);
  EXPECT_EQ(p.load, (std::vector<uint32_t>{100}));
  EXPECT_EQ(p.degraded_load, (std::vector<uint32_t>{0}));
}

TEST(PriorityLoad, DegradedHostsInTheBalancer) {
  Fixture f;
  for (int i = 0; i < 4; ++i) f.add("h" + std::to_string(i));
  f.make(LbPolicy::kLeastRequest);
  f.hosts[0]->set_degraded(true);  // 3 of 4 healthy: 105% -> the degraded one idles
  auto c = f.counts(1000);
  EXPECT_EQ(c["h0"], 0);
  f.hosts[1]->set_healthy(false);
  f.hosts[2]->set_healthy(false);  // 1 of 4 healthy (35%), 1 degraded (35%): normalized
  c = f.counts(10000);
  EXPECT_EQ(c["h1"] + c["h2"], 0);
  EXPECT_NEAR(c["h3"] / 10000.0, 0.5, 0.03);
  EXPECT_NEAR(c["h0"] / 10000.0, 0.5, 0.03);
  f.hosts[3]->set_degraded(true);  // only degraded hosts: they take it all
  c = f.counts(1000);
  EXPECT_EQ(c["h0"] + c["h3"], 1000);
  EXPECT_EQ(f.lb->priority_load().degraded_load, (std::vector<uint32_t>{100}));
}

TEST(PriorityLoad, SameKeySameLevel) {
  Fixture f;
  f.add("p0", 1, 0);
  f.add("p0b", 1, 0);
  f.add("p1", 1, 1);
  f.make(LbPolicy::kRingHash);
  f.hosts[0]->set_healthy(false);  // P0 at 50%: 70/30 split
  LbContext ctx;
  ctx.hash = hash_key("session-7");
  const Host* first = f.lb->choose(ctx);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(f.lb->choose(ctx), first);
}

}  // namespace
}  // namespace sidecar::upstream
