// When ACME works: the renewal time of a certificate and the wait after a
// failed attempt. Pure functions (the caller draws the random numbers), so
// that the rules are unit-tested.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>

namespace sidecar::acme {

using Duration = std::chrono::milliseconds;
using SystemTime = std::chrono::system_clock::time_point;

// When to renew a certificate valid from `not_before` to `not_after`
// (seconds since the epoch): the earlier of `renew_before` ahead of expiry
// and 2/3 of its lifetime (Certbot and certmagic renew with a third left).
// A `renew_before` as long as the lifetime would renew a new certificate at
// once, again and again: then 2/3 of the lifetime holds alone. The time is
// moved earlier by `jitter` (in [0, 1)) times min(lifetime / 50, 1h), so
// that sidecars deployed together do not renew together.
SystemTime renewal_time(int64_t not_before, int64_t not_after, Duration renew_before,
                        double jitter);

// The wait after the `failures`-th consecutive failure (1, 2, ...): `base`
// doubled per failure up to `max`, times a jitter factor 0.8 + 0.4 * `jitter`
// (jitter in [0, 1)), and never shorter than the server's Retry-After.
Duration retry_delay(uint32_t failures, Duration base, Duration max, double jitter,
                     std::optional<std::chrono::seconds> retry_after);

// Waits that a stop (or a trigger) ends early. Thread-safe.
class Interrupt {
 public:
  // Sleeps up to `d`, less after stop(); false once stop() was called.
  bool sleep_for(Duration d);
  // The same, and also ends at trigger() (pending until take_trigger()).
  bool wait_for(Duration d);
  void stop();
  bool stopped() const;
  void trigger();
  // Whether trigger() was called since the last take_trigger().
  bool take_trigger();

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool stopped_ = false;
  bool triggered_ = false;
};

}  // namespace sidecar::acme
