// Counters of the HTTP filters (why requests were refused, JWKS fetches),
// for /metrics: sidecar_<filter>_<what>_total{labels}.
//
// A counter is looked up once, when a filter factory is built (main thread,
// config load), and then only incremented on the data path: a relaxed
// atomic add, shared by the workers (these count refusals and fetches, not
// every byte, so one shared cache line is cheap enough). The same family and
// labels always give the same counter, so values survive config reloads.
//
// Thread safety: counter() and collect() lock a mutex; Counter::add is
// lock-free.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sidecar::stats {
class MetricWriter;
}

namespace sidecar::filters {

struct FilterCounter {
  std::atomic<uint64_t> value{0};
  void add(uint64_t n = 1) { value.fetch_add(n, std::memory_order_relaxed); }
};

// The counter of `family` (a Prometheus name ending in _total) with
// `labels` (name, value); created at 0 on first use. The reference stays
// valid for the life of the process. `help` is kept from the first call.
FilterCounter& counter(const std::string& family, const std::string& help,
                       std::vector<std::pair<std::string, std::string>> labels = {});

// Writes every filter counter, grouped by family (main thread, scrapes).
void collect(stats::MetricWriter& writer);

}  // namespace sidecar::filters
