// Endpoint health as the admin endpoint and /metrics show it: per-cluster
// Prometheus families (sidecar_cluster_*) and the health fields of an
// endpoint in GET /clusters (docs/resilience.md lists both).
//
// Thread safety: reads atomics and the registry's locks; call from any thread
// (the admin handlers run on the main thread).
#pragma once

#include <string>

#include "config/config.h"

namespace sidecar::stats {
class MetricWriter;
}

namespace sidecar::upstream {

// The health families for the clusters of `config`.
void collect_health(stats::MetricWriter& w, const config::Config& config);

// Appends `,"health_check":{...},"outlier":{...},...` (fields of an endpoint
// object, a leading comma included) for `address` of `cluster`.
void append_endpoint_health_json(std::string& out, const config::Cluster& cluster,
                                 const std::string& address);

// Appends `,"dns":{...}` (a cluster object's field) when the cluster uses
// DNS discovery, and `,"outlier_detection":{...}` counters when enabled.
void append_cluster_health_json(std::string& out, const config::Cluster& cluster);

}  // namespace sidecar::upstream
