#include "acme/schedule.h"

#include <algorithm>

namespace sidecar::acme {

SystemTime renewal_time(int64_t not_before, int64_t not_after, Duration renew_before,
                        double jitter) {
  using std::chrono::seconds;
  const auto start = SystemTime(seconds(not_before));
  const auto end = SystemTime(seconds(not_after));
  const Duration lifetime =
      std::max(Duration(0), std::chrono::duration_cast<Duration>(end - start));
  SystemTime at = start + lifetime * 2 / 3;
  if (renew_before < lifetime) at = std::min(at, end - renew_before);
  const Duration spread = std::min<Duration>(lifetime / 50, std::chrono::hours(1));
  const double j = std::clamp(jitter, 0.0, 1.0);
  return at - Duration(static_cast<int64_t>(static_cast<double>(spread.count()) * j));
}

Duration retry_delay(uint32_t failures, Duration base, Duration max, double jitter,
                     std::optional<std::chrono::seconds> retry_after) {
  Duration d = base;
  for (uint32_t i = 1; i < failures && d < max; ++i) d *= 2;
  d = std::min(d, max);
  const double factor = 0.8 + 0.4 * std::clamp(jitter, 0.0, 1.0);
  d = Duration(static_cast<int64_t>(static_cast<double>(d.count()) * factor));
  if (retry_after) d = std::max<Duration>(d, *retry_after);
  return d;
}

bool Interrupt::sleep_for(Duration d) {
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, d, [this] { return stopped_; });
  return !stopped_;
}

bool Interrupt::wait_for(Duration d) {
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, d, [this] { return stopped_ || triggered_; });
  return !stopped_;
}

void Interrupt::stop() {
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
  }
  cv_.notify_all();
}

bool Interrupt::stopped() const {
  std::lock_guard lock(mutex_);
  return stopped_;
}

void Interrupt::trigger() {
  {
    std::lock_guard lock(mutex_);
    triggered_ = true;
  }
  cv_.notify_all();
}

bool Interrupt::take_trigger() {
  std::lock_guard lock(mutex_);
  const bool t = triggered_;
  triggered_ = false;
  return t;
}

}  // namespace sidecar::acme
