// A route's part in endpoint choice (docs/resilience.md): the request's
// consistent-hash key by the route's hash_policy (Envoy's RouteAction
// hash_policy semantics) and the cluster of a weighted_clusters route.
//
// Envoy's list semantics: every entry that yields a value is hashed and the
// hashes are combined in order; an entry with `terminal: true` that yields
// a value ends the list; when no entry yields one, the request has no key
// (the balancer picks as if it had none). A `cookie` entry with a `ttl`
// whose cookie is absent makes one up (16 random hex digits): the key is
// that value and the response carries Set-Cookie so that the client's next
// requests land on the same endpoint.
//
// Thread safety: pure functions; the worker's thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "http/http1_parser.h"

namespace sidecar::proxy {

struct HashInput {
  const http::RequestHead* request = nullptr;  // headers (Cookie, named headers)
  std::string_view path;                       // origin-form target, query included
  std::string_view source_ip;                  // the downstream peer's address
  uint64_t random = 0;                         // for a cookie to make up
};

struct HashResult {
  std::optional<uint64_t> hash;
  // A cookie to set on the response ("name=value; Max-Age=N; Path=/;
  // HttpOnly"), or "" when none.
  std::string set_cookie;
};

// The key of a request by `policy` (empty policy: no key).
HashResult compute_hash(const std::vector<config::HashPolicy>& policy, const HashInput& in);

// The value of cookie `name` in the request's Cookie headers, or nullopt.
std::optional<std::string_view> find_cookie(const http::RequestHead& request,
                                            std::string_view name);
// The value of query parameter `name` in `path` (not percent-decoded), or nullopt.
std::optional<std::string_view> find_query_parameter(std::string_view path, std::string_view name);

// weighted_clusters compiled: cluster indexes and cumulative weights.
struct WeightedClusters {
  std::vector<int> clusters;         // index into Config::clusters
  std::vector<uint64_t> cumulative;  // running sum of the weights
  bool empty() const { return clusters.empty(); }
  // The cluster for a request: by `hash` when the route has a hash policy
  // and the request a key (the same key, the same cluster), else by `random`.
  int choose(const std::optional<uint64_t>& hash, uint64_t random) const;
};

}  // namespace sidecar::proxy
