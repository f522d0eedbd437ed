#include "proxy/retry.h"

#include <gtest/gtest.h>

namespace sidecar::proxy {
namespace {

using config::RetryPolicy;
using std::chrono::milliseconds;
using std::chrono::seconds;

RetryPolicy policy(uint32_t on) {
  RetryPolicy p;
  p.retry_on = on;
  return p;
}

TEST(RetryTest, FailuresFollowEnvoysConditions) {
  const RetryPolicy five = policy(RetryPolicy::k5xx);
  for (auto f : {AttemptFailure::kConnectFailure, AttemptFailure::kReset,
                 AttemptFailure::kRefusedStream, AttemptFailure::kPerTryTimeout}) {
    EXPECT_TRUE(retriable(five, f));
  }
  const RetryPolicy gateway = policy(RetryPolicy::kGatewayError);
  EXPECT_TRUE(retriable(gateway, AttemptFailure::kConnectFailure));
  EXPECT_TRUE(retriable(gateway, AttemptFailure::kPerTryTimeout));
  EXPECT_FALSE(retriable(gateway, AttemptFailure::kReset));
  const RetryPolicy reset = policy(RetryPolicy::kReset);
  EXPECT_TRUE(retriable(reset, AttemptFailure::kReset));
  EXPECT_TRUE(retriable(reset, AttemptFailure::kRefusedStream));
  EXPECT_FALSE(retriable(reset, AttemptFailure::kConnectFailure));
  const RetryPolicy connect = policy(RetryPolicy::kConnectFailure);
  EXPECT_TRUE(retriable(connect, AttemptFailure::kConnectFailure));
  EXPECT_FALSE(retriable(connect, AttemptFailure::kReset));
  const RetryPolicy refused = policy(RetryPolicy::kRefusedStream);
  EXPECT_TRUE(retriable(refused, AttemptFailure::kRefusedStream));
  EXPECT_FALSE(retriable(refused, AttemptFailure::kReset));
  EXPECT_TRUE(unprocessed(AttemptFailure::kConnectFailure));
  EXPECT_FALSE(unprocessed(AttemptFailure::kPerTryTimeout));
}

TEST(RetryTest, StatusesFollowEnvoysConditions) {
  const RetryPolicy five = policy(RetryPolicy::k5xx);
  EXPECT_TRUE(retriable(five, 500));
  EXPECT_TRUE(retriable(five, 599));
  EXPECT_FALSE(retriable(five, 499));
  const RetryPolicy gateway = policy(RetryPolicy::kGatewayError);
  EXPECT_FALSE(retriable(gateway, 500));
  EXPECT_TRUE(retriable(gateway, 502));
  EXPECT_TRUE(retriable(gateway, 503));
  EXPECT_TRUE(retriable(gateway, 504));
  const RetryPolicy conflict = policy(RetryPolicy::kRetriable4xx);
  EXPECT_TRUE(retriable(conflict, 409));
  EXPECT_FALSE(retriable(conflict, 429));
  RetryPolicy codes = policy(RetryPolicy::kReset);
  codes.retriable_status_codes = {429};
  EXPECT_TRUE(retriable(codes, 429));
  EXPECT_FALSE(retriable(codes, 503));
}

TEST(RetryTest, BackOffIsFullJitterUnderTheExponentialCeiling) {
  RetryPolicy p;
  p.base_interval = milliseconds(25);
  p.max_interval = milliseconds(250);
  // The ceiling doubles per retry: 25, 50, 100, 200, then max 250.
  const int64_t ceilings[] = {25, 50, 100, 200, 250, 250};
  for (uint32_t retry = 1; retry <= 6; ++retry) {
    int64_t most = 0;
    for (uint64_t r = 0; r < 1000; ++r) {
      const auto d = retry_back_off(p, retry, r * 7919 + 13, std::nullopt).count();
      EXPECT_GE(d, 0);
      EXPECT_LT(d, ceilings[retry - 1]);
      most = std::max(most, d);
    }
    EXPECT_EQ(most, ceilings[retry - 1] - 1) << retry;  // the whole range is reached
  }
  // A huge retry number does not overflow the shift.
  EXPECT_LT(retry_back_off(p, 1000, 123456789, std::nullopt).count(), 250);
}

TEST(RetryTest, RetryAfterIsRespectedUpToMaxInterval) {
  RetryPolicy p;
  p.max_interval = milliseconds(250);
  EXPECT_EQ(retry_back_off(p, 1, 5, seconds(0)), milliseconds(0));
  EXPECT_EQ(retry_back_off(p, 1, 5, seconds(3)), milliseconds(250));
  p.max_interval = milliseconds(5000);
  EXPECT_EQ(retry_back_off(p, 1, 5, seconds(3)), milliseconds(3000));
}

TEST(RetryTest, ParsesRetryAfter) {
  const int64_t now = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(parse_retry_after("120", now), seconds(120));
  EXPECT_EQ(parse_retry_after(" 0 ", now), seconds(0));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now), seconds(10));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now), seconds(0));  // past
  EXPECT_EQ(parse_retry_after("99999999999999", now), seconds(999999999));
  EXPECT_FALSE(parse_retry_after("", now));
  EXPECT_FALSE(parse_retry_after("-1", now));
  EXPECT_FALSE(parse_retry_after("soon", now));
  EXPECT_FALSE(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT trailing", now));
}

}  // namespace
}  // namespace sidecar::proxy
