#include "upstream/outlier.h"

#include <gtest/gtest.h>

#include "upstream/health_grpc.h"
#include "upstream/health_session.h"

namespace sidecar::upstream {
namespace {

using namespace std::chrono_literals;
using Kind = AttemptOutcome::Kind;

uint32_t always() { return 0; }  // every enforcing_* roll passes (when > 0)
uint32_t never() { return 99; }  // only enforcing 100 passes

AttemptOutcome response(uint16_t status) { return {Kind::kResponse, status, 1ms}; }

struct Fixture {
  explicit Fixture(size_t n) : cluster("c") {
    std::vector<std::string> addresses;
    for (size_t i = 0; i < n; ++i) addresses.push_back("10.0.0." + std::to_string(i + 1) + ":80");
    cluster.set_members(addresses, false);
    for (const auto& a : addresses) eps.push_back(cluster.endpoint(a));
  }
  ClusterHealth cluster;
  std::vector<std::shared_ptr<EndpointHealth>> eps;
  config::OutlierDetection od = [] {
    config::OutlierDetection o;
    o.enabled = true;
    o.max_ejection_percent = 100;
    return o;
  }();
  HealthClock::time_point t0 = HealthClock::now();
};

TEST(Outlier, Consecutive5xxEjectsAfterThreshold) {
  Fixture f(3);
  EndpointHealth& ep = *f.eps[0];
  for (int i = 0; i < 4; ++i) outlier::record(ep, f.od, response(500), f.t0, always);
  EXPECT_TRUE(ep.healthy());
  EXPECT_EQ(ep.consecutive_5xx.load(), 4u);
  outlier::record(ep, f.od, response(500), f.t0, always);
  EXPECT_FALSE(ep.healthy());
  EXPECT_EQ(ep.ejections_total.load(), 1u);
  EXPECT_EQ(f.cluster.ejections_enforced_total.load(), 1u);
  EXPECT_EQ(f.cluster.ejections_detected_consecutive_5xx.load(), 1u);
  EXPECT_EQ(ep.consecutive_5xx.load(), 0u);  // reset by the ejection
}

TEST(Outlier, SuccessResetsTheCount) {
  Fixture f(3);
  EndpointHealth& ep = *f.eps[0];
  for (int i = 0; i < 4; ++i) outlier::record(ep, f.od, response(503), f.t0, always);
  outlier::record(ep, f.od, response(200), f.t0, always);
  for (int i = 0; i < 4; ++i) outlier::record(ep, f.od, response(503), f.t0, always);
  EXPECT_TRUE(ep.healthy());
}

TEST(Outlier, LocalFailuresCountAs5xxWithoutSplit) {
  Fixture f(3);
  EndpointHealth& ep = *f.eps[0];
  outlier::record(ep, f.od, {Kind::kConnectFailure, 0, 0ms}, f.t0, always);
  outlier::record(ep, f.od, {Kind::kReset, 0, 0ms}, f.t0, always);
  outlier::record(ep, f.od, {Kind::kTimeout, 0, 0ms}, f.t0, always);
  EXPECT_EQ(ep.consecutive_5xx.load(), 3u);
  EXPECT_EQ(ep.consecutive_gateway_failure.load(), 3u);  // 503, 503, 504
}

TEST(Outlier, SplitLocalOriginErrors) {
  Fixture f(3);
  f.od.split_external_local_origin_errors = true;
  f.od.consecutive_local_origin_failure = 2;
  EndpointHealth& ep = *f.eps[0];
  outlier::record(ep, f.od, {Kind::kConnectFailure, 0, 0ms}, f.t0, always);
  EXPECT_EQ(ep.consecutive_5xx.load(), 0u);
  outlier::record(ep, f.od, {Kind::kTimeout, 0, 0ms}, f.t0, always);
  EXPECT_FALSE(ep.healthy());
  EXPECT_EQ(f.cluster.ejections_detected_consecutive_local_origin_failure.load(), 1u);
}

TEST(Outlier, GatewayFailureDetectedButNotEnforcedByDefault) {
  Fixture f(3);
  f.od.consecutive_5xx = 100;
  EndpointHealth& ep = *f.eps[0];
  for (int i = 0; i < 5; ++i) outlier::record(ep, f.od, response(502), f.t0, always);
  EXPECT_TRUE(ep.healthy());  // enforcing_consecutive_gateway_failure: 0
  EXPECT_EQ(f.cluster.ejections_detected_consecutive_gateway_failure.load(), 1u);
  f.od.enforcing_consecutive_gateway_failure = 100;
  for (int i = 0; i < 5; ++i) outlier::record(ep, f.od, response(504), f.t0, never);
  EXPECT_FALSE(ep.healthy());
}

TEST(Outlier, EnforcingIsAProbability) {
  Fixture f(3);
  f.od.enforcing_consecutive_5xx = 50;
  EndpointHealth& ep = *f.eps[0];
  for (int i = 0; i < 5; ++i) outlier::record(ep, f.od, response(500), f.t0, never);
  EXPECT_TRUE(ep.healthy());
  EXPECT_EQ(f.cluster.ejections_detected_consecutive_5xx.load(), 1u);
}

TEST(Outlier, MaxEjectionPercent) {
  Fixture f(3);
  f.od.max_ejection_percent = 10;  // Envoy's default: 1 of 3 is 33% > 10%
  EndpointHealth& ep = *f.eps[0];
  for (int i = 0; i < 5; ++i) outlier::record(ep, f.od, response(500), f.t0, always);
  EXPECT_TRUE(ep.healthy());
  EXPECT_EQ(f.cluster.ejections_overflow.load(), 1u);
  f.od.always_eject_one_host = true;
  for (int i = 0; i < 5; ++i) outlier::record(ep, f.od, response(500), f.t0, always);
  EXPECT_FALSE(ep.healthy());
  // A second one would exceed the limit even with always_eject_one_host.
  for (int i = 0; i < 5; ++i) outlier::record(*f.eps[1], f.od, response(500), f.t0, always);
  EXPECT_TRUE(f.eps[1]->healthy());
  // 50%: 1 of 3 (33%) passes, 2 of 3 (67%) does not.
  Fixture g(3);
  g.od.max_ejection_percent = 50;
  for (int i = 0; i < 5; ++i) outlier::record(*g.eps[0], g.od, response(500), g.t0, always);
  for (int i = 0; i < 5; ++i) outlier::record(*g.eps[1], g.od, response(500), g.t0, always);
  EXPECT_FALSE(g.eps[0]->healthy());
  EXPECT_TRUE(g.eps[1]->healthy());
}

TEST(Outlier, EjectionTimeGrowsWithCountAndIsCapped) {
  Fixture f(2);
  f.od.base_ejection_time = 10s;
  f.od.max_ejection_time = 25s;
  EndpointHealth& ep = *f.eps[0];
  auto eject_at = [&](HealthClock::time_point t) {
    for (int i = 0; i < 5; ++i) outlier::record(ep, f.od, response(500), t, always);
    ASSERT_FALSE(ep.healthy());
  };
  auto t = f.t0;
  eject_at(t);  // 1 * 10s
  outlier::on_interval(f.cluster, f.od, t + 9s, always);
  EXPECT_FALSE(ep.healthy());
  outlier::on_interval(f.cluster, f.od, t + 10s, always);
  EXPECT_TRUE(ep.healthy());
  t += 10s;
  eject_at(t);  // 2 * 10s
  EXPECT_EQ(ep.ejection_multiplier.load(), 2u);
  outlier::on_interval(f.cluster, f.od, t + 19s, always);
  EXPECT_FALSE(ep.healthy());
  outlier::on_interval(f.cluster, f.od, t + 20s, always);
  EXPECT_TRUE(ep.healthy());
  t += 20s;
  eject_at(t);  // 3 * 10s = 30s, capped at 25s
  outlier::on_interval(f.cluster, f.od, t + 24s, always);
  EXPECT_FALSE(ep.healthy());
  outlier::on_interval(f.cluster, f.od, t + 25s, always);
  EXPECT_TRUE(ep.healthy());
  // Healthy intervals shrink the multiplier back.
  const uint32_t m = ep.ejection_multiplier.load();
  outlier::on_interval(f.cluster, f.od, t + 35s, always);
  EXPECT_EQ(ep.ejection_multiplier.load(), m - 1);
}

TEST(Outlier, SuccessRateEjectsTheOutlier) {
  Fixture f(6);
  f.od.success_rate_request_volume = 100;
  f.od.success_rate_minimum_hosts = 5;
  f.od.consecutive_5xx = 1000;
  for (size_t i = 0; i < f.eps.size(); ++i) {
    for (int r = 0; r < 200; ++r) {
      // Endpoint 0 fails one request in two; the others one in a hundred.
      const bool fail = i == 0 ? r % 2 == 0 : r % 100 == 0;
      outlier::record(*f.eps[i], f.od, response(fail ? 500 : 200), f.t0, always);
    }
  }
  outlier::on_interval(f.cluster, f.od, f.t0 + 10s, always);
  EXPECT_FALSE(f.eps[0]->healthy());
  for (size_t i = 1; i < f.eps.size(); ++i) EXPECT_TRUE(f.eps[i]->healthy()) << i;
  EXPECT_EQ(f.cluster.ejections_detected_success_rate.load(), 1u);
  EXPECT_EQ(f.eps[1]->success_rate_milli.load(), 99000);
}

TEST(Outlier, SuccessRateNeedsEnoughHostsAndVolume) {
  Fixture f(4);  // below success_rate_minimum_hosts 5
  f.od.consecutive_5xx = 1000;
  for (size_t i = 0; i < f.eps.size(); ++i) {
    for (int r = 0; r < 200; ++r) {
      outlier::record(*f.eps[i], f.od, response(i == 0 && r % 2 ? 500 : 200), f.t0, always);
    }
  }
  outlier::on_interval(f.cluster, f.od, f.t0 + 10s, always);
  for (const auto& ep : f.eps) EXPECT_TRUE(ep->healthy());
  // The window was reset.
  EXPECT_EQ(f.eps[0]->window_requests.load(), 0u);
}

TEST(Outlier, FailurePercentageWhenEnforced) {
  Fixture f(5);
  f.od.consecutive_5xx = 1000;
  f.od.enforcing_success_rate = 0;
  f.od.enforcing_failure_percentage = 100;
  for (size_t i = 0; i < f.eps.size(); ++i) {
    for (int r = 0; r < 60; ++r) {
      outlier::record(*f.eps[i], f.od, response(i == 2 && r % 10 ? 500 : 200), f.t0, always);
    }
  }
  outlier::on_interval(f.cluster, f.od, f.t0 + 10s, always);
  EXPECT_FALSE(f.eps[2]->healthy());
  EXPECT_EQ(f.cluster.ejections_detected_failure_percentage.load(), 1u);
}

TEST(Outlier, DisabledDoesNothing) {
  Fixture f(3);
  f.od.enabled = false;
  for (int i = 0; i < 10; ++i) outlier::record(*f.eps[0], f.od, response(500), f.t0, always);
  EXPECT_TRUE(f.eps[0]->healthy());
  EXPECT_EQ(f.eps[0]->consecutive_5xx.load(), 0u);
}

TEST(ActiveHealth, ThresholdsAndFirstCheck) {
  ClusterHealth cluster("c");
  cluster.set_members({"10.0.0.1:80"}, true);
  auto ep = cluster.endpoint("10.0.0.1:80");
  EXPECT_FALSE(ep->healthy());  // new endpoints of a checked cluster start failed
  config::HealthCheck hc;
  using V = HealthSession::Verdict;
  HealthSession::publish(*ep, hc, V::kHealthy, true, "");
  EXPECT_TRUE(ep->healthy());  // the first check decides at once
  HealthSession::publish(*ep, hc, V::kFailed, true, "x");
  HealthSession::publish(*ep, hc, V::kFailed, true, "x");
  EXPECT_TRUE(ep->healthy());
  HealthSession::publish(*ep, hc, V::kFailed, true, "x");
  EXPECT_FALSE(ep->healthy());  // unhealthy_threshold 3
  HealthSession::publish(*ep, hc, V::kHealthy, true, "");
  EXPECT_FALSE(ep->healthy());
  HealthSession::publish(*ep, hc, V::kHealthy, true, "");
  EXPECT_TRUE(ep->healthy());  // healthy_threshold 2
  HealthSession::publish(*ep, hc, V::kFailedActive, true, "503");
  EXPECT_FALSE(ep->healthy());  // an unexpected status fails at once
  EXPECT_EQ(cluster.health_check_successes.load(), 3u);
  EXPECT_EQ(cluster.health_check_failures.load(), 4u);
}

TEST(ActiveHealth, StateSurvivesNewSnapshots) {
  ClusterHealth cluster("c");
  cluster.set_members({"10.0.0.1:80", "10.0.0.2:80"}, true);
  auto a = cluster.endpoint("10.0.0.1:80");
  HealthSession::publish(*a, {}, HealthSession::Verdict::kHealthy, true, "");
  cluster.set_members({"10.0.0.1:80", "10.0.0.3:80"}, true);
  EXPECT_EQ(cluster.endpoint("10.0.0.1:80"), a);
  EXPECT_TRUE(a->healthy());
  EXPECT_FALSE(cluster.endpoint("10.0.0.3:80")->healthy());  // new: pending
  EXPECT_EQ(cluster.members().size(), 2u);
  cluster.set_members({"10.0.0.1:80", "10.0.0.3:80"}, false);  // checks removed
  EXPECT_TRUE(cluster.endpoint("10.0.0.3:80")->healthy());
}

TEST(ActiveHealth, PassingCheckUnejects) {
  Fixture f(2);
  for (int i = 0; i < 5; ++i) outlier::record(*f.eps[0], f.od, response(500), f.t0, always);
  ASSERT_FALSE(f.eps[0]->healthy());
  HealthSession::publish(*f.eps[0], {}, HealthSession::Verdict::kHealthy, true, "");
  EXPECT_TRUE(f.eps[0]->healthy());
}

TEST(Grpc, ParseHealthResponse) {
  EXPECT_EQ(parse_health_response(std::string("\0\0\0\0\x02\x08\x01", 7)), 1);
  EXPECT_EQ(parse_health_response(std::string("\0\0\0\0\x02\x08\x02", 7)), 2);
  EXPECT_EQ(parse_health_response(std::string("\0\0\0\0\0", 5)), 0);  // UNKNOWN
  EXPECT_EQ(parse_health_response(std::string("\0\0\0\0\x03\x08\x01", 7)), -1);
  EXPECT_EQ(parse_health_response(std::string("\x01\0\0\0\x02\x08\x01", 7)), -1);
  EXPECT_EQ(parse_health_response(std::string("\0\0\0\0\x01\x08", 6)), -1);
}

}  // namespace
}  // namespace sidecar::upstream
