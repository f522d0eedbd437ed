// Counters of the HTTP filters, exported on /metrics (DESIGN.md "Metrics").
//
// A filter asks once for the counter of a label set (say its listener and
// route) and keeps the pointer: counters live for the whole process, so they
// survive reloads and never go backwards, like the data path's (src/stats).
// Unlike those, filter counters are one atomic shared by all workers (a
// fetch_add per count): they are counted per request at most, not per byte.
//
// Thread safety: counter() and collect() take a mutex; the counters
// themselves are atomics, safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace sidecar::stats {
class MetricWriter;
}

namespace sidecar::filters {

// One count shared by all workers: a relaxed atomic add.
struct FilterCounter {
  std::atomic<uint64_t> value{0};
  void add(uint64_t n = 1) { value.fetch_add(n, std::memory_order_relaxed); }
  uint64_t get() const { return value.load(std::memory_order_relaxed); }
};

// The counter of family `name` (a Prometheus counter name ending in
// `_total`, e.g. "sidecar_local_rate_limit_requests_total") for `labels`
// (name, value pairs in a fixed order per family); created on first use.
// `help` is the family's description (the first one given is kept).
FilterCounter* counter(
    std::string_view name, std::string_view help,
    std::initializer_list<std::pair<std::string_view, std::string_view>> labels = {});

// Writes every filter counter family, with its samples.
void collect(stats::MetricWriter& w);

// A filter instance's cache of its per-route counters: the route of a
// stream rarely changes between the exchanges of one connection, so the
// lookup (a mutex) is paid once per route change, not per request.
class RouteCounter {
 public:
  RouteCounter(std::string_view name, std::string_view help, std::string_view label,
               std::string_view value)
      : name_(name), help_(help), label_(label), value_(value) {}
  FilterCounter* get(std::string_view listener, std::string_view route);

 private:
  std::string_view name_, help_, label_, value_;
  std::string listener_, route_;
  FilterCounter* counter_ = nullptr;
};

}  // namespace sidecar::filters
