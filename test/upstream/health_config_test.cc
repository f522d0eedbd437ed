#include <gtest/gtest.h>

#include "config/config_errors.h"
#include "config/loader.h"

namespace sidecar::config {
namespace {

using testing::errors_of;
using testing::has_error;

TEST(HealthConfig, DefaultsAreEnvoys) {
  auto c = load_string(R"(
clusters:
  - name: users
    endpoints: [ 127.0.0.1:8080 ]
    health_checks:
      - http: { path: /health }
      - tcp: {}
    outlier_detection: {}
    discovery: { dns: {} }
)",
                       "t.yaml");
  const Cluster& cl = c->clusters[0];
  ASSERT_EQ(cl.health_checks.size(), 2u);
  const HealthCheck& h = cl.health_checks[0];
  EXPECT_EQ(h.kind, HealthCheck::Kind::kHttp);
  EXPECT_EQ(h.path, "/health");
  EXPECT_EQ(h.interval, std::chrono::seconds(5));
  EXPECT_EQ(h.timeout, std::chrono::seconds(1));
  EXPECT_EQ(h.unhealthy_threshold, 3u);
  EXPECT_EQ(h.healthy_threshold, 2u);
  ASSERT_EQ(h.expected_statuses.size(), 1u);
  EXPECT_EQ(h.expected_statuses[0], (std::pair<uint16_t, uint16_t>{200, 399}));
  EXPECT_EQ(cl.health_checks[1].kind, HealthCheck::Kind::kTcp);
  const OutlierDetection& o = cl.outlier_detection;
  EXPECT_TRUE(o.enabled);
  EXPECT_EQ(o.consecutive_5xx, 5u);
  EXPECT_EQ(o.interval, std::chrono::seconds(10));
  EXPECT_EQ(o.base_ejection_time, std::chrono::seconds(30));
  EXPECT_EQ(o.max_ejection_time, std::chrono::seconds(300));
  EXPECT_EQ(o.max_ejection_percent, 10u);
  EXPECT_EQ(o.success_rate_stdev_factor, 1900u);
  EXPECT_EQ(o.enforcing_consecutive_gateway_failure, 0u);
  EXPECT_TRUE(cl.discovery.dns.enabled);
  EXPECT_EQ(cl.discovery.dns.refresh_rate, std::chrono::seconds(5));
  EXPECT_EQ(cl.discovery.dns.lookup_family, DnsDiscovery::Family::kAuto);
}

TEST(HealthConfig, FullHttpCheck) {
  auto c = load_string(R"(
clusters:
  - name: users
    endpoints: [ 127.0.0.1:8080 ]
    health_checks:
      - http: { path: /ready, host: users.internal, expected_statuses: [ 200, 204-206 ],
                retriable_statuses: [ 500-599 ] }
        interval: 2s
        interval_jitter: 100ms
        timeout: 250ms
        unhealthy_threshold: 1
        healthy_threshold: 4
)",
                       "t.yaml");
  const HealthCheck& h = c->clusters[0].health_checks[0];
  EXPECT_EQ(h.host, "users.internal");
  ASSERT_EQ(h.expected_statuses.size(), 2u);
  EXPECT_EQ(h.expected_statuses[0], (std::pair<uint16_t, uint16_t>{200, 200}));
  EXPECT_EQ(h.expected_statuses[1], (std::pair<uint16_t, uint16_t>{204, 206}));
  ASSERT_EQ(h.retriable_statuses.size(), 1u);
  EXPECT_EQ(h.interval, std::chrono::seconds(2));
  EXPECT_EQ(h.interval_jitter, std::chrono::milliseconds(100));
  EXPECT_EQ(h.timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(h.unhealthy_threshold, 1u);
  EXPECT_EQ(h.healthy_threshold, 4u);
}

TEST(HealthConfig, Errors) {
  auto e = errors_of(R"(
clusters:
  - name: users
    endpoints: [ 127.0.0.1:8080 ]
    health_checks:
      - { http: { path: health }, tcp: {} }
      - { http: { expected_statuses: [ 99-700 ] } }
      - { grpc: {}, unhealthy_threshold: 0, bogus: 1 }
    outlier_detection: { max_ejection_percent: 150, consecutive5xx: 3 }
    discovery: { dns: { lookup_family: v5 } }
)");
  EXPECT_TRUE(has_error(e, "clusters[0].health_checks[0] needs exactly one of"));
  EXPECT_TRUE(has_error(e, "health_checks[1].http needs a path"));
  EXPECT_TRUE(has_error(e, "health_checks[1].http.expected_statuses[0] must lie within"));
  EXPECT_TRUE(has_error(e, "health_checks[2].unhealthy_threshold"));
  EXPECT_TRUE(has_error(e, "bogus"));
  EXPECT_TRUE(has_error(e, "outlier_detection.max_ejection_percent"));
  EXPECT_TRUE(has_error(e, "consecutive5xx"));
  EXPECT_TRUE(has_error(e, "discovery.dns.lookup_family"));
}

}  // namespace
}  // namespace sidecar::config
