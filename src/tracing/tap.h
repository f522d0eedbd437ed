// Live requests for the admin dashboard: `GET /tap` (linkerd viz tap) and
// the recent errors of `GET /` and `/stream`.
//
// The workers publish a finished request here only when someone taps (an
// atomic count checked per request) or when it ended with a 5xx (kept in a
// ring of the last kRecentErrors). The admin thread takes what was
// published. A worker never waits: when the hub is busy (another worker
// holds its lock) or full (kMaxPending), the record is dropped and counted.
// Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sidecar::tracing {

struct TapRecord {
  int64_t start_unix_us = 0;
  double duration_ms = 0;
  uint16_t status = 0;
  std::string listener, route, cluster, method, path, authority, upstream_host, flags, request_id,
      trace_id;
};

inline constexpr size_t kRecentErrors = 20;
inline constexpr size_t kMaxPending = 4096;

// Whether a request with `status` is wanted (cheap: one relaxed load).
bool tap_wanted(uint16_t status);
// Publishes a finished request (from a worker).
void tap_publish(TapRecord&& record);

// The admin side: a tap session starts / ends (the workers publish while
// at least one is open).
void tap_open();
void tap_close();
// Moves what was published since the last call into `out`.
void tap_take(std::vector<TapRecord>& out);
// The last kRecentErrors 5xx requests, oldest first.
std::vector<TapRecord> recent_errors();
// Records dropped because the hub was busy or full.
uint64_t tap_dropped();

// One JSON object (no newline): start_time (RFC 3339), duration_ms, status,
// listener, route, cluster, method, path, authority, upstream_host,
// response_flags, request_id, trace_id.
std::string to_json(const TapRecord& r);

}  // namespace sidecar::tracing
