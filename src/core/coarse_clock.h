// A cheaper "now" for activity stamps and deadlines.
//
// std::chrono::steady_clock::now() is clock_gettime(CLOCK_MONOTONIC): a
// vDSO call that reads the TSC (about 3% of a worker's CPU at saturation
// with the dozen stamps a proxied request takes). CLOCK_MONOTONIC_COARSE is
// the same clock as of the last scheduler tick (1-4 ms old, jiffy
// resolution) and only reads memory. nginx and haproxy likewise stamp
// events with a time cached per loop turn.
//
// Use it where a few milliseconds do not matter: "last activity" stamps and
// the deadlines computed from them (idle, request, linger timeouts are
// seconds). Durations that are reported (latency histograms, access log
// times) keep steady_clock. The result is a steady_clock time_point (same
// epoch, CLOCK_MONOTONIC), so the two compare; a coarse stamp is at most one
// tick earlier than steady_clock::now() at the same instant, so a deadline
// computed from it fires at most one tick early.
//
// Thread safety: any thread.
#pragma once

#include <time.h>

#include <chrono>

namespace sidecar::core {

struct CoarseClock {
  using time_point = std::chrono::steady_clock::time_point;
  static time_point now() noexcept {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
  }
};

}  // namespace sidecar::core
