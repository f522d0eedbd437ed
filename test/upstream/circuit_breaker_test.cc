#include "upstream/circuit_breaker.h"

#include <gtest/gtest.h>

#include <string>

#include "config/loader.h"
#include "stats/metric_writer.h"

namespace sidecar::upstream {
namespace {

TEST(CircuitBreaker, EnvoyDefaults) {
  config::CircuitBreakers t;
  CircuitBreaker b("c", t);
  EXPECT_EQ(b.limit(CircuitBreaker::kConnections), 1024u);
  EXPECT_EQ(b.limit(CircuitBreaker::kPendingRequests), 1024u);
  EXPECT_EQ(b.limit(CircuitBreaker::kRequests), 1024u);
  EXPECT_EQ(b.limit(CircuitBreaker::kRetries), 3u);
}

TEST(CircuitBreaker, RefusesBeyondTheLimitAndCounts) {
  config::CircuitBreakers t;
  t.max_requests = 2;
  CircuitBreaker b("c", t);
  EXPECT_TRUE(b.try_acquire(CircuitBreaker::kRequests));
  EXPECT_TRUE(b.try_acquire(CircuitBreaker::kRequests));
  EXPECT_FALSE(b.try_acquire(CircuitBreaker::kRequests));
  EXPECT_EQ(b.overflows(CircuitBreaker::kRequests), 1u);
  b.sub(CircuitBreaker::kRequests);
  EXPECT_TRUE(b.try_acquire(CircuitBreaker::kRequests));
}

TEST(CircuitBreaker, MaxRetries) {
  config::CircuitBreakers t;
  CircuitBreaker b("c", t);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(b.try_retry());
  EXPECT_FALSE(b.try_retry());
  b.retry_done();
  EXPECT_TRUE(b.try_retry());
}

TEST(CircuitBreaker, RetryBudgetReplacesMaxRetries) {
  config::CircuitBreakers t;
  t.retry_budget = true;  // 20%, at least 3
  CircuitBreaker b("c", t);
  EXPECT_EQ(b.limit(CircuitBreaker::kRetries), 3u);  // idle: min_retry_concurrency
  for (int i = 0; i < 100; ++i) b.add(CircuitBreaker::kRequests);
  EXPECT_EQ(b.limit(CircuitBreaker::kRetries), 20u);  // 20% of 100 in flight
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(b.try_retry());
  EXPECT_FALSE(b.try_retry());
}

TEST(RetryToken, HeldUntilTheRetryAttemptEnds) {
  config::CircuitBreakers t;
  t.max_retries = 1;
  auto b = std::make_shared<CircuitBreaker>("c", t);
  RetryToken first, second;
  ASSERT_TRUE(first.acquire(b));
  EXPECT_FALSE(second.acquire(b));  // max_retries 1: the second retry overflows
  EXPECT_EQ(b->overflows(CircuitBreaker::kRetries), 1u);
  first.attempt_ended();  // the failed attempt before the retry: still held
  EXPECT_EQ(b->count(CircuitBreaker::kRetries), 1u);
  first.attempt_started();
  first.attempt_ended();  // the retry's attempt ended: released
  EXPECT_EQ(b->count(CircuitBreaker::kRetries), 0u);
  EXPECT_TRUE(second.acquire(b));
  second.release();  // the request ended during the back-off
  EXPECT_EQ(b->count(CircuitBreaker::kRetries), 0u);
  {
    RetryToken scoped;
    ASSERT_TRUE(scoped.acquire(b));
  }
  EXPECT_EQ(b->count(CircuitBreaker::kRetries), 0u);  // and when the stream goes
}

TEST(CircuitBreaker, SharedAcrossReloadsWhileThresholdsHold) {
  config::Cluster c;
  c.name = "shared-test";
  auto a = CircuitBreaker::shared(c);
  auto b = CircuitBreaker::shared(c);
  EXPECT_EQ(a.get(), b.get());
  c.circuit_breakers.max_requests = 7;
  auto d = CircuitBreaker::shared(c);
  EXPECT_NE(a.get(), d.get());
  EXPECT_EQ(d->limit(CircuitBreaker::kRequests), 7u);
}

TEST(CircuitBreaker, Metrics) {
  config::Cluster c;
  c.name = "metrics-test";
  c.circuit_breakers.max_requests = 1;
  auto b = CircuitBreaker::shared(c);
  ASSERT_TRUE(b->try_acquire(CircuitBreaker::kRequests));
  EXPECT_FALSE(b->try_acquire(CircuitBreaker::kRequests));
  std::string out;
  stats::TextWriter w(out, false);
  CircuitBreaker::collect(w);
  w.finish();
  EXPECT_NE(out.find("sidecar_cluster_circuit_breaker_open{cluster=\"metrics-test\",resource="
                     "\"requests\"} 1"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("sidecar_cluster_circuit_breaker_remaining{cluster=\"metrics-test\","
                     "resource=\"connections\"} 1024"),
            std::string::npos);
  EXPECT_NE(out.find("sidecar_cluster_circuit_breaker_overflow_total{cluster=\"metrics-test\","
                     "resource=\"requests\"} 1"),
            std::string::npos);
}

// The config: endpoints with weight and priority, lb_policy, breakers.
TEST(BalancingConfig, Parses) {
  auto c = config::load_string(R"(
listeners:
  - name: in
    address: 127.0.0.1:8000
    routes:
      - match: { prefix: / }
        weighted_clusters: [ { name: a, weight: 90 }, { name: b, weight: 10 } ]
        hash_policy:
          - header: { header_name: X-User }
            terminal: true
          - cookie: { name: sticky, ttl: 1h, path: / }
          - connection_properties: { source_ip: true }
          - query_parameter: { name: u }
clusters:
  - name: a
    endpoints: [ 127.0.0.1:8080, { address: 127.0.0.1:8081, weight: 3, priority: 1 } ]
    lb_policy: maglev
    circuit_breakers: { max_connections: 10, max_requests: 5, retry_budget: { budget_percent: 25 } }
  - name: b
    endpoints: [ 127.0.0.1:8082 ]
)",
                               "t.yaml");
  const auto& a = c->clusters[0];
  EXPECT_EQ(a.lb_policy, config::LbPolicy::kMaglev);
  ASSERT_EQ(a.endpoints.size(), 2u);
  EXPECT_EQ(a.endpoints[0].weight, 1u);
  EXPECT_EQ(a.endpoints[1].weight, 3u);
  EXPECT_EQ(a.endpoints[1].priority, 1u);
  EXPECT_EQ(a.circuit_breakers.max_connections, 10u);
  EXPECT_EQ(a.circuit_breakers.max_pending_requests, 1024u);
  EXPECT_TRUE(a.circuit_breakers.retry_budget);
  EXPECT_EQ(a.circuit_breakers.budget_percent, 25);
  EXPECT_EQ(a.circuit_breakers.min_retry_concurrency, 3u);
  EXPECT_EQ(c->clusters[1].lb_policy, config::LbPolicy::kRoundRobin);
  const auto& r = c->listeners[0].routes[0];
  ASSERT_EQ(r.weighted_clusters.size(), 2u);
  EXPECT_EQ(r.weighted_clusters[1].name, "b");
  ASSERT_EQ(r.hash_policy.size(), 4u);
  EXPECT_EQ(r.hash_policy[0].name, "x-user");
  EXPECT_TRUE(r.hash_policy[0].terminal);
  EXPECT_EQ(r.hash_policy[1].kind, config::HashPolicy::Kind::kCookie);
  EXPECT_EQ(r.hash_policy[1].ttl, std::chrono::hours(1));
  EXPECT_EQ(r.hash_policy[2].kind, config::HashPolicy::Kind::kSourceIp);
  EXPECT_EQ(r.hash_policy[3].kind, config::HashPolicy::Kind::kQueryParameter);
}

std::string error_of(const std::string& yaml) {
  try {
    config::load_string(yaml, "t.yaml");
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(BalancingConfig, ErrorsHavePositions) {
  const std::string head = R"(
listeners:
  - name: in
    address: 127.0.0.1:8000
    routes: [ { match: { prefix: / }, cluster: a } ]
clusters:
  - name: a
)";
  EXPECT_NE(
      error_of(head + "    endpoints: [ { address: 127.0.0.1:1, weight: 0 } ]\n").find("t.yaml:8:"),
      std::string::npos);
  EXPECT_NE(error_of(head + "    endpoints: [ 127.0.0.1:1 ]\n    lb_policy: fastest\n")
                .find("t.yaml:9:16: clusters[0].lb_policy"),
            std::string::npos)
      << error_of(head + "    endpoints: [ 127.0.0.1:1 ]\n    lb_policy: fastest\n");
  EXPECT_NE(
      error_of(head + "    endpoints: [ { address: 127.0.0.1:1, wieght: 2 } ]\n").find("wieght"),
      std::string::npos);
  EXPECT_NE(error_of(head + "    endpoints: [ 127.0.0.1:1 ]\n"
                            "    circuit_breakers: { max_requests: 0 }\n")
                .find("max_requests"),
            std::string::npos);
}

}  // namespace
}  // namespace sidecar::upstream
