#include "tracing/tap.h"

#include <atomic>
#include <ctime>
#include <deque>
#include <mutex>

#include <fmt/format.h>

#include "core/json.h"

namespace sidecar::tracing {
namespace {

struct Hub {
  std::atomic<int> taps{0};
  std::atomic<uint64_t> dropped{0};
  std::mutex mu;
  std::vector<TapRecord> pending;
  std::deque<TapRecord> errors;
};

Hub& hub() {
  static Hub* h = new Hub;  // never destroyed: workers may publish until exit
  return *h;
}

}  // namespace

bool tap_wanted(uint16_t status) {
  return status >= 500 || hub().taps.load(std::memory_order_relaxed) > 0;
}

void tap_publish(TapRecord&& r) {
  Hub& h = hub();
  std::unique_lock<std::mutex> lock(h.mu, std::try_to_lock);
  if (!lock.owns_lock()) {
    h.dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (r.status >= 500) {
    if (h.errors.size() == kRecentErrors) h.errors.pop_front();
    h.errors.push_back(r);
  }
  if (h.taps.load(std::memory_order_relaxed) > 0) {
    if (h.pending.size() >= kMaxPending) {
      h.dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    h.pending.push_back(std::move(r));
  }
}

void tap_open() { hub().taps.fetch_add(1, std::memory_order_relaxed); }

void tap_close() {
  Hub& h = hub();
  if (h.taps.fetch_sub(1, std::memory_order_relaxed) == 1) {
    std::lock_guard<std::mutex> lock(h.mu);
    h.pending.clear();
  }
}

void tap_take(std::vector<TapRecord>& out) {
  out.clear();
  Hub& h = hub();
  std::lock_guard<std::mutex> lock(h.mu);
  out.swap(h.pending);
}

std::vector<TapRecord> recent_errors() {
  Hub& h = hub();
  std::lock_guard<std::mutex> lock(h.mu);
  return {h.errors.begin(), h.errors.end()};
}

uint64_t tap_dropped() { return hub().dropped.load(std::memory_order_relaxed); }

std::string to_json(const TapRecord& r) {
  const time_t secs = static_cast<time_t>(r.start_unix_us / 1000000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char ts[40];
  std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string b =
      fmt::format("{{\"start_time\":\"{}.{:03d}Z\",\"duration_ms\":{:.3f},\"status\":{}", ts,
                  static_cast<int>(r.start_unix_us / 1000 % 1000), r.duration_ms, r.status);
  const std::pair<const char*, const std::string*> fields[] = {{"listener", &r.listener},
                                                               {"route", &r.route},
                                                               {"cluster", &r.cluster},
                                                               {"method", &r.method},
                                                               {"path", &r.path},
                                                               {"authority", &r.authority},
                                                               {"upstream_host", &r.upstream_host},
                                                               {"response_flags", &r.flags},
                                                               {"request_id", &r.request_id},
                                                               {"trace_id", &r.trace_id}};
  for (const auto& [key, value] : fields) {
    b += ",\"";
    b += key;
    b += "\":";
    core::append_json_string(b, *value);
  }
  b += '}';
  return b;
}

}  // namespace sidecar::tracing
