// Config of the `cache` filter (docs/filters.md "cache"):
//
//   filters:
//     - name: cache
//       config:
//         max_size: 64MiB          # the store, LRU (one store per process)
//         max_object_size: 1MiB    # larger bodies stream through uncached
//         coalesce_timeout: 5s     # how long a miss waits for a concurrent fill
//
// Per route (typed_per_filter_config): { disabled: true }.
#pragma once

#include <cstdint>
#include <memory>

#include "config/registry.h"

namespace sidecar::filters::cache {

struct Config {
  bool disabled = false;
  uint64_t max_size = 64ull << 20;
  uint64_t max_object_size = 1ull << 20;
  config::Duration coalesce_timeout = std::chrono::seconds(5);
};

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

}  // namespace sidecar::filters::cache
