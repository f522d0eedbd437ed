// Route matching for one listener: the first route whose match holds wins.
//
// Built once per config snapshot and shared read-only by all workers (RE2
// matching is thread-safe), so matching takes no lock and allocates nothing.
#pragma once

#include <string_view>
#include <vector>

#include "config/config.h"
#include "http/http1_parser.h"
#include "proxy/route_balancing.h"
#include "stats/stats.h"

namespace sidecar::proxy {

struct CompiledRoute {
  const config::Route* config = nullptr;
  int cluster = -1;           // index into Config::clusters; -1 with weighted_clusters
  WeightedClusters weighted;  // weighted_clusters, else empty
  // Host pattern, lower case, split once: "*" or "" any; "*.x" suffix;
  // "x.*" prefix; else exact.
  enum class HostKind : uint8_t { kAny, kExact, kSuffix, kPrefix } host_kind = HostKind::kAny;
  std::string host;
  std::vector<stats::RouteStats*> stats;  // by worker index (empty without a store)
};

class RouteTable {
 public:
  // With `store`, every route gets its per-worker stats blocks.
  RouteTable(const config::Listener& listener, const config::Config& config,
             stats::Store* store = nullptr);

  // `host` is the request's authority (Host header or absolute-form target),
  // matched case-insensitively and without its port; `path` is the
  // origin-form target (query included; exact path matches ignore the query).
  // Returns nullptr when nothing matches.
  const CompiledRoute* match(std::string_view host, std::string_view path,
                             const http::RequestHead& request) const;

 private:
  std::vector<CompiledRoute> routes_;
};

// Host without the port: "a.example:8080" -> "a.example", "[::1]:80" -> "[::1]".
std::string_view strip_port(std::string_view host);

}  // namespace sidecar::proxy
