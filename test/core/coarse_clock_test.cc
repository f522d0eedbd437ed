#include "core/coarse_clock.h"

#include <gtest/gtest.h>

namespace sidecar::core {
namespace {

TEST(CoarseClock, IsSteadyClockAsOfTheLastTick) {
  // Same epoch as steady_clock (CLOCK_MONOTONIC): never ahead of it, and
  // behind by at most a scheduler tick (bounded loosely here: a second).
  const auto before = std::chrono::steady_clock::now();
  const auto coarse = CoarseClock::now();
  const auto after = std::chrono::steady_clock::now();
  EXPECT_LE(coarse, after);
  EXPECT_GT(coarse, before - std::chrono::seconds(1));
  // Monotonic.
  EXPECT_LE(coarse, CoarseClock::now());
}

}  // namespace
}  // namespace sidecar::core
