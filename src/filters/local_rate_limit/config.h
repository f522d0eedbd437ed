// Config of the `local_rate_limit` filter (Envoy's local_ratelimit; nginx
// limit_req), docs/filters.md "local_rate_limit":
//
//   filters:
//     - name: local_rate_limit
//       config:
//         max_tokens: 100          # bucket size (burst); required
//         tokens_per_fill: 100     # default: max_tokens
//         fill_interval: 1s        # default 1s, at least 50ms
//         descriptors:             # optional; each has its own buckets
//           - { prefix: /api, key: client_ip }            # one bucket per client IP
//           - { prefix: /upload, key: "header:x-api-key", max_tokens: 5 }
//           - { prefix: /admin }                          # one bucket for all of /admin
//         xff_num_trusted_hops: 0  # client_ip from X-Forwarded-For (N-th from the right)
//         max_keys: 100000         # keys kept per descriptor (LRU)
//         status: 429
//         rate_limit_headers: false  # RateLimit fields on admitted responses too
//
// Without descriptors every request of the listener (or route) shares one
// bucket; with descriptors, a request takes a token from every descriptor
// it matches and is limited if any is empty (requests matching none pass).
// The same config under a route's `typed_per_filter_config` replaces the
// listener's for that route, with buckets of its own.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/registry.h"
#include "filters/local_rate_limit/token_bucket.h"

namespace sidecar::filters::local_rate_limit {

// What a descriptor counts by.
struct DescriptorKey {
  enum class Kind { kNone, kClientIp, kHeader, kPath } kind = Kind::kNone;
  std::string header;  // kHeader: the field name (lower case)
};

struct Descriptor {
  std::string name;    // in the RateLimit fields: "default", "descriptor0", or `name`
  std::string prefix;  // the path starts with this; empty: any path
  DescriptorKey key;
  BucketSpec bucket;
  std::shared_ptr<KeyedBuckets> buckets;  // the shared state, built by the parser
};

struct Config {
  BucketSpec bucket;
  std::vector<Descriptor> descriptors;  // never empty: "default" when none configured
  uint32_t xff_num_trusted_hops = 0;
  uint64_t max_keys = 100000;
  uint32_t status = 429;
  bool rate_limit_headers = false;
};

// The registered parser. Builds the buckets too: they belong to this
// config snapshot (a reload starts them full, as Envoy's).
std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

// Parses "client_ip", "header:<name>" or "path"; false for anything else.
bool parse_key(std::string_view text, DescriptorKey& out);

// Reads what selects a descriptor's requests (shared with `rate_limit`):
// `name` (a token; default "descriptor<index>"), `prefix` (starts with /)
// and `key` (parse_key), reporting errors at `where`.
void load_descriptor_match(config::Reader& reader, const YAML::Node& d, const std::string& where,
                           size_t index, std::string& name, std::string& prefix,
                           DescriptorKey& key);

}  // namespace sidecar::filters::local_rate_limit
