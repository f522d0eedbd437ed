// A cheaper "now" for activity stamps and deadlines.
//
// std::chrono::steady_clock::now() is clock_gettime(CLOCK_MONOTONIC): a
// vDSO call that reads the TSC (about 3% of a worker's CPU at saturation
// with the dozen stamps a proxied request takes). CLOCK_MONOTONIC_COARSE is
// the same clock as of the last scheduler tick (1-4 ms old) and only reads
// memory. nginx and haproxy likewise stamp events with a time cached per
// loop turn.
//
// CoarseClock::now() is that clock plus its resolution (one tick): an upper
// bound of steady_clock::now() at the same instant while ticks come on
// time, so a deadline computed from it ("last activity + idle timeout")
// fires at most one tick late. Ticks can come late on a virtual machine (a
// route timeout computed from it once fired 1.4 ms early there), so use it
// only where a few milliseconds either way do not matter: activity stamps
// and the idle timeouts computed from them (seconds). Deadlines a user
// measures (route, connect, per-try timeouts) and reported durations keep
// steady_clock. The result is a steady_clock time_point (same epoch,
// CLOCK_MONOTONIC), so the two compare.
//
// Thread safety: any thread.
#pragma once

#include <time.h>

#include <chrono>

namespace sidecar::core {

struct CoarseClock {
  using time_point = std::chrono::steady_clock::time_point;
  static time_point now() noexcept {
    static const std::chrono::nanoseconds tick = resolution();
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec) +
                      tick);
  }
  // The coarse clock's resolution (the kernel's tick, e.g. 4 ms at HZ=250).
  static std::chrono::nanoseconds resolution() noexcept {
    timespec res{0, 0};
    clock_getres(CLOCK_MONOTONIC_COARSE, &res);
    return std::chrono::seconds(res.tv_sec) + std::chrono::nanoseconds(res.tv_nsec);
  }
};

}  // namespace sidecar::core
