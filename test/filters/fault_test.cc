#include <deque>

#include <gtest/gtest.h>

#include "accesslog/entry.h"
#include "config/loader.h"
#include "filters/fault/filter.h"
#include "filters/registry.h"
#include "test_callbacks.h"

namespace sidecar::filters {
namespace {

using Recorder = testing::TestCallbacks;

std::unique_ptr<http::HttpFilter> make(const std::string& config,
                                       std::shared_ptr<const config::Config>& keep) {
  register_builtin();
  keep = config::load_string(R"(
clusters: [ { name: a, endpoints: [ "127.0.0.1:1" ] } ]
listeners:
  - name: l
    address: 127.0.0.1:0
    routes: [ { cluster: a } ]
    filters:
      - name: fault
        config: )" + config + "\n",
                             "t");
  return make_factory(keep->listeners[0].filters[0])->create();
}

void header(Recorder& r, std::string_view name, std::string_view value) {
  static std::deque<std::string> storage;
  storage.emplace_back(name);
  const std::string& n = storage.back();
  storage.emplace_back(value);
  r.head.headers.push_back({n, storage.back()});
}

TEST(Fault, DelaysThenContinues) {
  std::shared_ptr<const config::Config> keep;
  auto f = make("{ delay: { fixed_delay: 20ms } }", keep);
  Recorder r;
  EXPECT_EQ(f->on_request_headers(r), http::FilterStatus::kStopIteration);
  EXPECT_EQ(r.flags, accesslog::kDelayInjected);
  EXPECT_EQ(r.continued, 0);
  r.io_context.run_for(std::chrono::seconds(5));
  EXPECT_EQ(r.continued, 1);
  EXPECT_FALSE(r.reply_status);
  f->on_stream_end();
}

TEST(Fault, AStreamThatEndsDuringTheDelayIsNotContinued) {
  std::shared_ptr<const config::Config> keep;
  auto f = make("{ delay: { fixed_delay: 10ms }, max_active_faults: 1 }", keep);
  Recorder r1, r2;
  EXPECT_EQ(f->on_request_headers(r1), http::FilterStatus::kStopIteration);
  // One fault at a time: another stream goes on undelayed.
  auto other = make_factory(keep->listeners[0].filters[0])->create();
  EXPECT_EQ(other->on_request_headers(r2), http::FilterStatus::kContinue);
  f->on_stream_end();
  f.reset();  // the instance is gone before its timer's handler runs
  r1.io_context.run_for(std::chrono::seconds(1));
  EXPECT_EQ(r1.continued, 0);
  // The slot is free again.
  Recorder r3;
  EXPECT_EQ(other->on_request_headers(r3), http::FilterStatus::kStopIteration);
  other->on_stream_end();
}

TEST(Fault, AbortsByPercentage) {
  std::shared_ptr<const config::Config> keep;
  auto always = make("{ abort: { http_status: 503 } }", keep);
  Recorder r;
  EXPECT_EQ(always->on_request_headers(r), http::FilterStatus::kStopIteration);
  EXPECT_EQ(r.reply_status, 503);
  EXPECT_EQ(r.flags, accesslog::kFaultInjected);
  EXPECT_EQ(r.detail, "fault_filter_abort");
  std::shared_ptr<const config::Config> keep2;
  auto half = make("{ abort: { http_status: 500, percentage: 50 } }", keep2);
  int aborted = 0;
  for (int i = 0; i < 2000; ++i) {
    Recorder q;
    if (half->on_request_headers(q) == http::FilterStatus::kStopIteration) ++aborted;
  }
  // 50% of 2000: far outside these bounds only with probability ~1e-40.
  EXPECT_GT(aborted, 700);
  EXPECT_LT(aborted, 1300);
}

TEST(Fault, HeaderControlled) {
  std::shared_ptr<const config::Config> keep;
  auto f = make("{ delay: { header_delay: true }, abort: { header_abort: true } }", keep);
  Recorder none;
  EXPECT_EQ(f->on_request_headers(none), http::FilterStatus::kContinue);
  Recorder teapot;
  header(teapot, "x-sidecar-fault-abort-request", "418");
  EXPECT_EQ(f->on_request_headers(teapot), http::FilterStatus::kStopIteration);
  EXPECT_EQ(teapot.reply_status, 418);
  Recorder grpc;
  header(grpc, "x-sidecar-fault-abort-grpc-request", "14");
  EXPECT_EQ(f->on_request_headers(grpc), http::FilterStatus::kStopIteration);
  ASSERT_TRUE(grpc.response);
  EXPECT_EQ(grpc.response->status, 200);
  EXPECT_EQ(grpc.response->headers[1], (std::pair<std::string, std::string>("grpc-status", "14")));
  Recorder zero;
  header(zero, "x-sidecar-fault-abort-request", "503");
  header(zero, "x-sidecar-fault-abort-request-percentage", "0");
  EXPECT_EQ(f->on_request_headers(zero), http::FilterStatus::kContinue);
  // Delay then abort, both from headers.
  Recorder both;
  header(both, "x-sidecar-fault-delay-request", "5");
  header(both, "x-sidecar-fault-abort-request", "429");
  EXPECT_EQ(f->on_request_headers(both), http::FilterStatus::kStopIteration);
  EXPECT_FALSE(both.reply_status);
  both.io_context.run_for(std::chrono::seconds(5));
  EXPECT_EQ(both.reply_status, 429);
  EXPECT_EQ(both.continued, 0);
  EXPECT_EQ(both.flags, accesslog::kDelayInjected | accesslog::kFaultInjected);
  f->on_stream_end();
}

TEST(Fault, ConfigErrors) {
  std::shared_ptr<const config::Config> keep;
  try {
    make("{ delay: { fixed_delay: 1s, header_delay: true }, abort: { percentage: 150 } }", keep);
    FAIL();
  } catch (const config::ConfigError& e) {
    const std::string all = e.what();
    EXPECT_NE(all.find("fixed_delay or header_delay, not both"), std::string::npos) << all;
    EXPECT_NE(all.find("fault.abort.percentage"), std::string::npos) << all;
    EXPECT_NE(all.find("takes one of http_status, grpc_status, header_abort"), std::string::npos)
        << all;
  }
}

}  // namespace
}  // namespace sidecar::filters
