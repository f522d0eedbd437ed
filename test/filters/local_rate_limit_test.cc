#include <deque>
#include <thread>

#include <gtest/gtest.h>

#include "accesslog/entry.h"
#include "config/loader.h"
#include "filters/local_rate_limit/filter.h"
#include "filters/registry.h"
#include "test_callbacks.h"

namespace sidecar::filters {
namespace {

using local_rate_limit::BucketSpec;
using local_rate_limit::Clock;
using local_rate_limit::KeyedBuckets;
using Recorder = testing::TestCallbacks;

std::shared_ptr<const config::Config> load(const std::string& filters,
                                           const std::string& route_extra = "") {
  register_builtin();
  return config::load_string(R"(
clusters: [ { name: a, endpoints: [ "127.0.0.1:1" ] } ]
listeners:
  - name: l
    address: 127.0.0.1:0
    routes: [ { cluster: a)" + route_extra +
                                 R"( } ]
    filters:
)" + filters,
                             "t");
}

TEST(TokenBucket, RefillsByWholeFillsUpToMax) {
  KeyedBuckets b(BucketSpec{3, 2, std::chrono::seconds(1)}, 10);
  const auto t0 = Clock::now();
  EXPECT_TRUE(b.take(t0).allowed);
  EXPECT_TRUE(b.take(t0).allowed);
  auto r = b.take(t0);
  EXPECT_TRUE(r.allowed);
  EXPECT_EQ(r.remaining, 0u);
  EXPECT_FALSE(b.take(t0).allowed);
  // The next fill adds tokens_per_fill (2), not more however long it was.
  EXPECT_TRUE(b.take(t0 + std::chrono::milliseconds(1001)).allowed);
  EXPECT_TRUE(b.take(t0 + std::chrono::milliseconds(1002)).allowed);
  EXPECT_FALSE(b.take(t0 + std::chrono::milliseconds(1003)).allowed);
  // Many fills later: capped at max_tokens (3).
  const auto later = t0 + std::chrono::seconds(100);
  int admitted = 0;
  for (int i = 0; i < 10; ++i) admitted += b.take(later).allowed ? 1 : 0;
  EXPECT_EQ(admitted, 3);
}

TEST(TokenBucket, ExactAcrossThreads) {
  // One bucket taken from by 4 threads at once admits exactly max_tokens
  // (one fill interval far longer than the test).
  KeyedBuckets b(BucketSpec{1000, 1000, std::chrono::hours(1)}, 10);
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 600; ++i) {
        if (b.take("k", Clock::now()).allowed) ++admitted;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 1000);
}

TEST(TokenBucket, KeysAreBoundedByTheLru) {
  KeyedBuckets b(BucketSpec{1, 1, std::chrono::hours(1)}, 64);
  const auto now = Clock::now();
  for (int i = 0; i < 10000; ++i) b.take("key" + std::to_string(i), now);
  EXPECT_LE(b.size(), 64u + 16u);  // max_keys rounded up to whole shards
  // A key used again is kept while a flood of others passes.
  EXPECT_TRUE(b.take("hot", now).allowed);
  EXPECT_FALSE(b.take("hot", now).allowed);
}

TEST(LocalRateLimit, AnswersTooManyRequestsWithRateLimitFields) {
  auto c = load(R"(      - name: local_rate_limit
        config: { max_tokens: 2, tokens_per_fill: 1, fill_interval: 10s }
)");
  auto factory = make_factory(c->listeners[0].filters[0]);
  auto f1 = factory->create();
  auto f2 = factory->create();  // another stream: the same bucket
  Recorder r1, r2, r3;
  EXPECT_EQ(f1->on_request_headers(r1), http::FilterStatus::kContinue);
  EXPECT_EQ(f2->on_request_headers(r2), http::FilterStatus::kContinue);
  EXPECT_EQ(f1->on_request_headers(r3), http::FilterStatus::kStopIteration);
  ASSERT_TRUE(r3.response);
  EXPECT_EQ(r3.response->status, 429);
  std::map<std::string, std::string> h(r3.response->headers.begin(), r3.response->headers.end());
  EXPECT_EQ(h["ratelimit-policy"], "\"default\";q=1;w=10");
  EXPECT_TRUE(h["ratelimit"].starts_with("\"default\";r=0;t=")) << h["ratelimit"];
  const int retry = std::stoi(h["retry-after"]);
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 10);
  EXPECT_EQ(r3.flags, accesslog::kRateLimited);
  EXPECT_EQ(r3.detail, "local_rate_limited");
  EXPECT_EQ(r1.log, "");  // admitted: nothing asked
}

TEST(LocalRateLimit, DescriptorsKeyByClientHeaderAndPrefix) {
  auto c = load(R"(      - name: local_rate_limit
        config:
          max_tokens: 1
          fill_interval: 1h
          xff_num_trusted_hops: 1
          descriptors:
            - { prefix: /api, key: client_ip }
            - { name: keys, prefix: /k, key: "header:X-Api-Key" }
)");
  auto f = make_factory(c->listeners[0].filters[0])->create();
  auto run = [&](std::string path, std::string peer, std::string xff, std::string key) {
    Recorder r;
    r.path_value = std::move(path);
    r.peer = std::move(peer);
    static std::deque<std::string> storage;  // field views must outlive the head
    storage.push_back(xff);
    storage.push_back(key);
    if (!xff.empty()) r.head.headers.push_back({"X-Forwarded-For", storage[storage.size() - 2]});
    if (!key.empty()) r.head.headers.push_back({"x-api-key", storage.back()});
    const auto st = f->on_request_headers(r);
    f->on_stream_end();
    return st == http::FilterStatus::kContinue ? 200 : r.response->status;
  };
  // client_ip from the last X-Forwarded-For hop: two clients behind one proxy.
  EXPECT_EQ(run("/api/a", "10.0.0.9", "1.1.1.1, 2.2.2.2", ""), 200);
  EXPECT_EQ(run("/api/a", "10.0.0.9", "1.1.1.1, 2.2.2.2", ""), 429);
  EXPECT_EQ(run("/api/a", "10.0.0.9", "3.3.3.3", ""), 200);
  // No X-Forwarded-For: the peer.
  EXPECT_EQ(run("/api/a", "10.0.0.7", "", ""), 200);
  EXPECT_EQ(run("/api/a", "10.0.0.7", "", ""), 429);
  // Header keyed: absent header, no limit.
  EXPECT_EQ(run("/k", "1.2.3.4", "", "alice"), 200);
  EXPECT_EQ(run("/k", "1.2.3.4", "", "alice"), 429);
  EXPECT_EQ(run("/k", "1.2.3.4", "", "bob"), 200);
  EXPECT_EQ(run("/k", "1.2.3.4", "", ""), 200);
  EXPECT_EQ(run("/k", "1.2.3.4", "", ""), 200);
  // No descriptor matches: not limited.
  EXPECT_EQ(run("/other", "1.2.3.4", "", ""), 200);
  EXPECT_EQ(run("/other", "1.2.3.4", "", ""), 200);
}

TEST(LocalRateLimit, RouteConfigOverridesTheListener) {
  auto c = load(R"(      - name: local_rate_limit
        config: { max_tokens: 100, rate_limit_headers: true }
)",
                ", typed_per_filter_config: { local_rate_limit: { max_tokens: 1 } }");
  ASSERT_EQ(c->listeners[0].routes[0].per_filter_config.size(), 1u);
  auto f = make_factory(c->listeners[0].filters[0])->create();
  Recorder r1, r2;
  r1.route_configs["local_rate_limit"] = c->listeners[0].routes[0].per_filter_config[0].typed.get();
  r2.route_configs = r1.route_configs;
  EXPECT_EQ(f->on_request_headers(r1), http::FilterStatus::kContinue);
  f->on_stream_end();
  EXPECT_EQ(f->on_request_headers(r2), http::FilterStatus::kStopIteration);
  // rate_limit_headers on the listener's config: admitted responses carry them.
  Recorder r3;
  EXPECT_EQ(f->on_request_headers(r3), http::FilterStatus::kContinue);
  f->on_response_headers(http::ResponseHead{}, r3);
  EXPECT_EQ(r3.log,
            "+resp ratelimit-policy=\"default\";q=100;w=1;+resp ratelimit=\"default\";r=99;t=1;");
}

TEST(LocalRateLimit, ConfigErrors) {
  try {
    load(R"(      - name: local_rate_limit
        config: { fill_interval: 10ms, descriptors: [ { key: cookie, prefix: api } ], x: 1 }
)");
    FAIL();
  } catch (const config::ConfigError& e) {
    const std::string all = e.what();
    EXPECT_NE(all.find("needs max_tokens"), std::string::npos) << all;
    EXPECT_NE(all.find("at least 50ms"), std::string::npos) << all;
    EXPECT_NE(all.find("'cookie' is not a key"), std::string::npos) << all;
    EXPECT_NE(all.find("prefix must start with /"), std::string::npos) << all;
    EXPECT_NE(all.find("unknown key 'x' in local_rate_limit"), std::string::npos) << all;
  }
}

}  // namespace
}  // namespace sidecar::filters
