// Parsing of the load balancing parts of the config (docs/resilience.md):
// a cluster's endpoint entries with weight and priority, lb_policy and its
// settings, circuit_breakers; a route's weighted_clusters and hash_policy.
// Names and defaults are Envoy's. Errors go to the Reader (FILE:LINE:COL).
#pragma once

#include <string>

#include <yaml-cpp/yaml.h>

#include "config/config.h"
#include "config/reader.h"

namespace sidecar::config {

// `n` is "HOST:PORT" or { address: HOST:PORT, weight: N, priority: P }.
// Returns false (with an error recorded) when it is neither.
bool load_endpoint(Reader& r, const YAML::Node& n, const std::string& where, Address& out);

// Reads lb_policy, its *_lb_config sections and circuit_breakers of the
// cluster map `n` into `cl`.
void load_cluster_balancing(Reader& r, const YAML::Node& n, const std::string& where, Cluster& cl);

// Reads weighted_clusters and hash_policy of the route map `n`. Cluster names
// must exist in `c` (clusters are loaded before listeners).
void load_route_balancing(Reader& r, const YAML::Node& n, const std::string& where, const Config& c,
                          Route& route);

// "round_robin", "least_request", ...
std::string_view to_string(LbPolicy p);

}  // namespace sidecar::config
