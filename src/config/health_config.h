// Per-cluster endpoint health and discovery settings (docs/resilience.md):
// active health checks (`health_checks`), passive outlier detection
// (`outlier_detection`) and DNS discovery (`discovery.dns`). Names and
// defaults are Envoy's (config.core.v3.HealthCheck,
// config.cluster.v3.OutlierDetection, STRICT_DNS clusters).
//
// Thread safety: plain values, part of the immutable Config.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace sidecar::config {

class Reader;
struct Cluster;
using namespace std::chrono_literals;

// One active health check of every endpoint of a cluster.
struct HealthCheck {
  enum class Kind : uint8_t { kHttp, kTcp, kGrpc };
  Kind kind = Kind::kHttp;
  // http: GET `path` with Host `host` (default: the cluster's name, as Envoy);
  // healthy when the status is in one of `expected_statuses` (inclusive ranges).
  std::string path;
  std::string host;
  std::vector<std::pair<uint16_t, uint16_t>> expected_statuses{{200, 399}};
  // Statuses that count towards unhealthy_threshold; any other unexpected
  // status fails the endpoint at once (Envoy's "active" failure).
  std::vector<std::pair<uint16_t, uint16_t>> retriable_statuses;
  // tcp: connect, then write `send` (raw bytes, may be empty: connect only)
  // and expect `expect` somewhere in what comes back (empty: nothing read).
  std::string send;
  std::string expect;
  // grpc: grpc.health.v1.Health/Check for `service_name` ("" = the server).
  std::string service_name;
  std::chrono::milliseconds interval = 5s;
  std::chrono::milliseconds interval_jitter = 0ms;  // added at random, [0, jitter]
  std::chrono::milliseconds timeout = 1s;
  uint32_t unhealthy_threshold = 3;
  uint32_t healthy_threshold = 2;
  bool operator==(const HealthCheck&) const = default;
};

// Envoy's outlier detection; percentages are 0-100.
struct OutlierDetection {
  bool enabled = false;  // the section is present
  uint32_t consecutive_5xx = 5;
  uint32_t consecutive_gateway_failure = 5;
  uint32_t consecutive_local_origin_failure = 5;
  std::chrono::milliseconds interval = 10s;
  std::chrono::milliseconds base_ejection_time = 30s;
  std::chrono::milliseconds max_ejection_time = 300s;
  uint32_t max_ejection_percent = 10;
  bool always_eject_one_host = false;
  bool split_external_local_origin_errors = false;
  uint32_t enforcing_consecutive_5xx = 100;
  uint32_t enforcing_consecutive_gateway_failure = 0;
  uint32_t enforcing_consecutive_local_origin_failure = 100;
  uint32_t enforcing_success_rate = 100;
  uint32_t enforcing_local_origin_success_rate = 100;
  uint32_t success_rate_minimum_hosts = 5;
  uint32_t success_rate_request_volume = 100;
  uint32_t success_rate_stdev_factor = 1900;  // thousandths: 1900 = 1.9 standard deviations
  uint32_t failure_percentage_threshold = 85;
  uint32_t enforcing_failure_percentage = 0;
  uint32_t failure_percentage_minimum_hosts = 5;
  uint32_t failure_percentage_request_volume = 50;
  bool successful_active_health_check_uneject_host = true;
  bool operator==(const OutlierDetection&) const = default;
};

// `discovery: { dns: {...} }` (Envoy's STRICT_DNS): every A/AAAA record of
// each endpoint's host name is an endpoint.
struct DnsDiscovery {
  bool enabled = false;
  std::chrono::milliseconds refresh_rate = 5s;
  bool respect_ttl = false;
  enum class Family : uint8_t { kAuto, kV4, kV6 };
  Family lookup_family = Family::kAuto;
  // "HOST:PORT" servers to ask instead of /etc/resolv.conf's (tests, pods
  // with a node-local cache); empty: the system's.
  std::vector<std::string> resolvers;
  // The cluster's configured endpoints ("users.svc:8080"): what is
  // resolved. Cluster::endpoints holds the answers.
  struct Target {
    std::string host;  // a name, or an IP literal (taken as it is)
    uint16_t port = 0;
    uint32_t weight = 1;  // given to every address the name resolves to
    uint32_t priority = 0;
    bool operator==(const Target&) const = default;
  };
  std::vector<Target> targets;
  bool operator==(const DnsDiscovery&) const = default;
};

// Parsers for the keys above, called by the cluster loader (loader.cc);
// errors are recorded in `r` as FILE:LINE:COL.
void load_health_checks(Reader& r, const YAML::Node& n, const std::string& where,
                        std::vector<HealthCheck>& out);
void load_outlier_detection(Reader& r, const YAML::Node& n, const std::string& where,
                            OutlierDetection& out);
void load_dns_discovery(Reader& r, const YAML::Node& n, const std::string& where,
                        DnsDiscovery& out);
// "HOST:PORT" of a DNS cluster: a name is kept, not resolved (the resolver
// does that later; the name may not exist yet).
bool get_dns_target(Reader& r, const YAML::Node& n, const std::string& what,
                    DnsDiscovery::Target& out);
// After the targets of a DNS cluster were read: the endpoints until the
// first answer are the IP literals among them (possibly none: requests get
// a 503 UH until the resolver answers).
void finish_dns_cluster(Cluster& cluster);

}  // namespace sidecar::config
