#include "acme/schedule.h"

#include <gtest/gtest.h>

#include <thread>

namespace sidecar::acme {
namespace {

using namespace std::chrono_literals;
using std::chrono::hours;
using std::chrono::seconds;

constexpr int64_t kDay = 86400;
const SystemTime kEpoch{};

TEST(Renewal, TwoThirdsOfTheLifetimeOrRenewBeforeWhicheverIsFirst) {
  // 90 days, renew_before 30d: both rules say day 60.
  EXPECT_EQ(renewal_time(0, 90 * kDay, hours(24 * 30), 0), kEpoch + seconds(60 * kDay));
  // renew_before 45d is earlier than 2/3.
  EXPECT_EQ(renewal_time(0, 90 * kDay, hours(24 * 45), 0), kEpoch + seconds(45 * kDay));
  // renew_before 7d is later than 2/3: 2/3 wins.
  EXPECT_EQ(renewal_time(0, 90 * kDay, hours(24 * 7), 0), kEpoch + seconds(60 * kDay));
}

TEST(Renewal, RenewBeforeLongerThanTheLifetimeDoesNotRenewAtOnce) {
  // A 15 s certificate with the default 30d: at 10 s, not at once and forever.
  EXPECT_EQ(renewal_time(1000, 1015, hours(24 * 30), 0), kEpoch + seconds(1010));
}

TEST(Renewal, JitterMovesItEarlierByAtMostAFiftiethOrAnHour) {
  const SystemTime plain = renewal_time(0, 90 * kDay, hours(24 * 30), 0);
  const SystemTime most = renewal_time(0, 90 * kDay, hours(24 * 30), 0.999999);
  EXPECT_LT(most, plain);
  EXPECT_GE(most, plain - hours(1));
  const SystemTime short_cert = renewal_time(0, 50, hours(24), 0.999999);
  EXPECT_GE(short_cert, kEpoch + 33s - 1s);  // 50 s / 50
}

TEST(RetryDelay, DoublesUpToTheMaximumWithJitter) {
  const Duration base = 1min, max = 1h;
  EXPECT_EQ(retry_delay(1, base, max, 0.5, std::nullopt), 1min);
  EXPECT_EQ(retry_delay(2, base, max, 0.5, std::nullopt), 2min);
  EXPECT_EQ(retry_delay(3, base, max, 0.5, std::nullopt), 4min);
  EXPECT_EQ(retry_delay(30, base, max, 0.5, std::nullopt), 1h);
  EXPECT_EQ(retry_delay(1000, base, max, 0.5, std::nullopt), 1h);
  EXPECT_EQ(retry_delay(1, base, max, 0.0, std::nullopt), 48s);
  EXPECT_EQ(retry_delay(1, base, max, 1.0, std::nullopt), 72s);
}

TEST(RetryDelay, NeverSoonerThanRetryAfter) {
  EXPECT_EQ(retry_delay(1, 1min, 1h, 0.5, seconds(3600 * 3)), hours(3));
  EXPECT_EQ(retry_delay(1, 1min, 1h, 0.5, seconds(1)), 1min);
}

TEST(Interrupt, StopEndsWaitsAndTriggerEndsOnlyIdleWaits) {
  Interrupt i;
  i.trigger();
  EXPECT_TRUE(i.wait_for(1h));  // returns at once: triggered
  EXPECT_TRUE(i.take_trigger());
  EXPECT_FALSE(i.take_trigger());
  std::thread t([&] {
    std::this_thread::sleep_for(20ms);
    i.stop();
  });
  EXPECT_FALSE(i.sleep_for(1h));
  t.join();
  EXPECT_TRUE(i.stopped());
  EXPECT_FALSE(i.wait_for(1h));
}

}  // namespace
}  // namespace sidecar::acme
