// Config of the `rate_limit` filter: limits counted across every replica in
// Redis (Envoy's ratelimit filter with its Redis-backed service, in-process;
// docs/filters.md "rate_limit"):
//
//   filters:
//     - name: rate_limit
//       config:
//         redis: { address: redis:6379 }
//         timeout: 20ms              # per request, then failure_mode_deny decides
//         failure_mode_deny: false   # Redis down or slow: let requests through (counted)
//         domain: sidecar            # the Redis key prefix, to share a Redis
//         descriptors:
//           - { prefix: /api, key: "header:x-api-key", limit: 1000, window: 60s }
//
// Each descriptor allows `limit` requests per `window` per key value, as a
// GCRA (a token bucket of `limit` tokens refilled continuously) computed by
// one Lua script in Redis (EVALSHA), atomically, on Redis's clock.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/registry.h"
#include "filters/local_rate_limit/config.h"

namespace sidecar::filters::rate_limit {

struct Descriptor {
  std::string name;    // in keys and the RateLimit fields
  std::string prefix;  // the path starts with this; empty: any
  local_rate_limit::DescriptorKey key;
  uint32_t limit = 0;
  std::chrono::milliseconds window{0};
};

struct Config {
  config::Address redis;
  std::chrono::milliseconds timeout{20};
  bool failure_mode_deny = false;
  std::string domain = "sidecar";
  uint32_t xff_num_trusted_hops = 0;
  uint32_t status = 429;
  std::vector<Descriptor> descriptors;
};

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

// The Lua script and its SHA-1 (hex), for EVALSHA / EVAL.
const std::string& script();
const std::string& script_sha1();

}  // namespace sidecar::filters::rate_limit
