// The rate_limit filter's failure paths against sockets that refuse or never
// answer (its limits against a real redis-server are checked in
// test/integration/test_filters_redis.py).
#include <boost/asio/ip/tcp.hpp>

#include <gtest/gtest.h>

#include "config/loader.h"
#include "filters/rate_limit/filter.h"
#include "filters/registry.h"
#include "test_callbacks.h"

namespace sidecar::filters {
namespace {

using Recorder = testing::TestCallbacks;

// Runs `r`'s event loop until the filter decided (or 5 s passed): the Redis
// connection keeps the loop busy, so run_for() alone would wait it out.
void run_until_decided(Recorder& r) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (r.continued == 0 && !r.reply_status && !r.response &&
         std::chrono::steady_clock::now() < deadline) {
    r.io_context.run_one_for(std::chrono::milliseconds(50));
  }
}

std::shared_ptr<const config::Config> load(const std::string& config) {
  register_builtin();
  return config::load_string(R"(
clusters: [ { name: a, endpoints: [ "127.0.0.1:1" ] } ]
listeners:
  - name: l
    address: 127.0.0.1:0
    routes: [ { cluster: a } ]
    filters:
      - name: rate_limit
        config: )" + config + "\n",
                             "t");
}

// A port with nothing listening.
uint16_t closed_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

TEST(RateLimit, RedisDownFailsOpenOrDenies) {
  const std::string port = std::to_string(closed_port());
  for (bool deny : {false, true}) {
    auto c = load("{ redis: { address: 127.0.0.1:" + port + " }, timeout: 2s, " +
                  "failure_mode_deny: " + (deny ? "true" : "false") +
                  ", descriptors: [ { limit: 5, window: 1s } ] }");
    auto f = make_factory(c->listeners[0].filters[0])->create();
    Recorder r;
    EXPECT_EQ(f->on_request_headers(r), http::FilterStatus::kStopIteration);
    EXPECT_EQ(r.continued, 0);  // never decided inside the hook
    run_until_decided(r);
    if (deny) {
      EXPECT_EQ(r.continued, 0);
      EXPECT_EQ(r.reply_status, 500);
      EXPECT_EQ(r.detail, "rate_limit_service_error");
    } else {
      EXPECT_EQ(r.continued, 1);
      EXPECT_FALSE(r.reply_status);
    }
    f->on_stream_end();
  }
}

TEST(RateLimit, ARedisThatNeverAnswersTimesOut) {
  // Accepts connections (the kernel's backlog) but never reads or answers.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const std::string port = std::to_string(silent.local_endpoint().port());
  auto c = load("{ redis: { address: 127.0.0.1:" + port +
                " }, timeout: 50ms, descriptors: [ { limit: 5, window: 1s } ] }");
  auto f = make_factory(c->listeners[0].filters[0])->create();
  Recorder r;
  EXPECT_EQ(f->on_request_headers(r), http::FilterStatus::kStopIteration);
  run_until_decided(r);
  EXPECT_EQ(r.continued, 1);  // failure_mode_deny: false
  f->on_stream_end();
}

TEST(RateLimit, AStreamThatEndsWhileWaitingIsNeverTouched) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const std::string port = std::to_string(silent.local_endpoint().port());
  auto c = load("{ redis: { address: 127.0.0.1:" + port +
                " }, timeout: 20ms, descriptors: [ { limit: 5, window: 1s } ] }");
  auto f = make_factory(c->listeners[0].filters[0])->create();
  Recorder r;
  EXPECT_EQ(f->on_request_headers(r), http::FilterStatus::kStopIteration);
  f->on_stream_end();
  f.reset();
  r.io_context.run_for(std::chrono::milliseconds(200));
  EXPECT_EQ(r.continued, 0);
  EXPECT_FALSE(r.reply_status);
}

TEST(RateLimit, NoDescriptorMatchesNoRedis) {
  auto c = load(
      "{ redis: { address: 127.0.0.1:1 }, descriptors: [ { prefix: /api, key: \"header:x-k\", "
      "limit: 1, window: 1s } ] }");
  auto f = make_factory(c->listeners[0].filters[0])->create();
  Recorder r;
  r.path_value = "/other";
  EXPECT_EQ(f->on_request_headers(r), http::FilterStatus::kContinue);
  Recorder r2;
  r2.path_value = "/api/x";  // no x-k header
  EXPECT_EQ(f->on_request_headers(r2), http::FilterStatus::kContinue);
}

TEST(RateLimit, ConfigErrors) {
  try {
    load("{ timeout: 0s, descriptors: [ { key: nope, window: 1s } ] }");
    FAIL();
  } catch (const config::ConfigError& e) {
    const std::string all = e.what();
    EXPECT_NE(all.find("needs redis"), std::string::npos) << all;
    EXPECT_NE(all.find("timeout must be above 0"), std::string::npos) << all;
    EXPECT_NE(all.find("'nope' is not a key"), std::string::npos) << all;
    EXPECT_NE(all.find("needs a limit"), std::string::npos) << all;
  }
}

}  // namespace
}  // namespace sidecar::filters
