#include "core/coarse_clock.h"

#include <gtest/gtest.h>

namespace sidecar::core {

namespace {

TEST(CoarseClock, IsSteadyClockRoundedUpToTheNextTick) {
  // Same epoch as steady_clock (CLOCK_MONOTONIC), at most one tick ahead of
  // it: bounded loosely here (a second each way), never timed.
  const auto res = CoarseClock::resolution();
  EXPECT_GT(res.count(), 0);
  EXPECT_LT(res, std::chrono::seconds(1));
  const auto before = std::chrono::steady_clock::now();
  const auto coarse = CoarseClock::now();
  const auto after = std::chrono::steady_clock::now();
  EXPECT_GT(coarse, before - std::chrono::seconds(1));
  EXPECT_LT(coarse, after + res + std::chrono::seconds(1));
  // Monotonic.
  EXPECT_LE(coarse, CoarseClock::now());
}

}  // namespace
}  // namespace sidecar::core
