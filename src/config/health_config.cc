#include "config/health_config.h"

#include <fmt/format.h>

#include <arpa/inet.h>

#include <cstdint>
#include <cstdio>

#include "config/config.h"
#include "config/loader.h"
#include "config/reader.h"

namespace sidecar::config {
namespace {

// "200-399" or 200: an inclusive range of statuses.
bool get_status_range(Reader& r, const YAML::Node& n, const std::string& what,
                      std::pair<uint16_t, uint16_t>& out) {
  if (!r.is_scalar(n, what)) return false;
  const std::string s = n.Scalar();
  unsigned lo = 0, hi = 0;
  char dash = 0;
  int used = 0;
  const int got = std::sscanf(s.c_str(), "%u%c%u%n", &lo, &dash, &hi, &used);
  if (got == 1 && s.find_first_not_of("0123456789") == std::string::npos) {
    hi = lo;
  } else if (!(got == 3 && dash == '-' && static_cast<size_t>(used) == s.size())) {
    r.error(n, what + " must be a status (200) or a range (200-399)");
    return false;
  }
  if (lo < 100 || hi > 599 || lo > hi) {
    r.error(n, what + " must lie within 100-599, low end first");
    return false;
  }
  out = {static_cast<uint16_t>(lo), static_cast<uint16_t>(hi)};
  return true;
}

void get_percent(Reader& r, const YAML::Node& n, const std::string& what, uint32_t& out) {
  r.get_count(n, what, out, 0, 100);
}

}  // namespace

void load_health_checks(Reader& r, const YAML::Node& n, const std::string& where,
                        std::vector<HealthCheck>& out) {
  if (!r.is_seq(n, where)) return;
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node h = n[i];
    const std::string w = fmt::format("{}[{}]", where, i);
    if (!r.is_map(h, w)) continue;
    r.check_keys(h, w,
                 {"http", "tcp", "grpc", "interval", "interval_jitter", "timeout",
                  "unhealthy_threshold", "healthy_threshold"});
    HealthCheck hc;
    int kinds = 0;
    if (auto v = h["http"]) {
      ++kinds;
      hc.kind = HealthCheck::Kind::kHttp;
      if (r.is_map(v, w + ".http")) {
        r.check_keys(v, w + ".http", {"path", "host", "expected_statuses", "retriable_statuses"});
        if (auto p = v["path"]) {
          if (r.get_string(p, w + ".http.path", hc.path) && !hc.path.starts_with('/')) {
            r.error(p, w + ".http.path must start with '/'");
          }
        } else {
          r.error(v, w + ".http needs a path");
        }
        if (auto p = v["host"]) r.get_string(p, w + ".http.host", hc.host);
        if (auto p = v["expected_statuses"]) {
          hc.expected_statuses.clear();
          if (r.is_seq(p, w + ".http.expected_statuses")) {
            for (size_t k = 0; k < p.size(); ++k) {
              std::pair<uint16_t, uint16_t> range;
              if (get_status_range(r, p[k], fmt::format("{}.http.expected_statuses[{}]", w, k),
                                   range)) {
                hc.expected_statuses.push_back(range);
              }
            }
            if (p.size() == 0) r.error(p, w + ".http.expected_statuses must not be empty");
          }
        }
        if (auto p = v["retriable_statuses"]) {
          if (r.is_seq(p, w + ".http.retriable_statuses")) {
            for (size_t k = 0; k < p.size(); ++k) {
              std::pair<uint16_t, uint16_t> range;
              if (get_status_range(r, p[k], fmt::format("{}.http.retriable_statuses[{}]", w, k),
                                   range)) {
                hc.retriable_statuses.push_back(range);
              }
            }
          }
        }
      }
    }
    if (auto v = h["tcp"]) {
      ++kinds;
      hc.kind = HealthCheck::Kind::kTcp;
      // `tcp: {}` is a connect-only check.
      if (r.is_map(v, w + ".tcp")) {
        r.check_keys(v, w + ".tcp", {"send", "expect"});
        if (auto p = v["send"]) r.get_string(p, w + ".tcp.send", hc.send);
        if (auto p = v["expect"]) r.get_string(p, w + ".tcp.expect", hc.expect);
      }
    }
    if (auto v = h["grpc"]) {
      ++kinds;
      hc.kind = HealthCheck::Kind::kGrpc;
      if (r.is_map(v, w + ".grpc")) {
        r.check_keys(v, w + ".grpc", {"service_name", "authority"});
        if (auto p = v["service_name"]) r.get_string(p, w + ".grpc.service_name", hc.service_name);
        if (auto p = v["authority"]) r.get_string(p, w + ".grpc.authority", hc.host);
      }
    }
    if (kinds != 1) {
      r.error(h, w + " needs exactly one of http, tcp, grpc");
      continue;
    }
    if (auto v = h["interval"]) r.get_duration(v, w + ".interval", hc.interval);
    if (auto v = h["interval_jitter"]) {
      r.get_duration(v, w + ".interval_jitter", hc.interval_jitter);
    }
    if (auto v = h["timeout"]) r.get_duration(v, w + ".timeout", hc.timeout);
    if (auto v = h["unhealthy_threshold"]) {
      r.get_count(v, w + ".unhealthy_threshold", hc.unhealthy_threshold, 1, 1000);
    }
    if (auto v = h["healthy_threshold"]) {
      r.get_count(v, w + ".healthy_threshold", hc.healthy_threshold, 1, 1000);
    }
    if (hc.interval.count() <= 0) r.error(h, w + ".interval must be above 0");
    if (hc.timeout.count() <= 0) r.error(h, w + ".timeout must be above 0");
    out.push_back(std::move(hc));
  }
}

void load_outlier_detection(Reader& r, const YAML::Node& n, const std::string& where,
                            OutlierDetection& o) {
  if (!r.is_map(n, where)) return;
  r.check_keys(n, where,
               {"consecutive_5xx",
                "consecutive_gateway_failure",
                "consecutive_local_origin_failure",
                "interval",
                "base_ejection_time",
                "max_ejection_time",
                "max_ejection_percent",
                "always_eject_one_host",
                "split_external_local_origin_errors",
                "enforcing_consecutive_5xx",
                "enforcing_consecutive_gateway_failure",
                "enforcing_consecutive_local_origin_failure",
                "enforcing_success_rate",
                "enforcing_local_origin_success_rate",
                "success_rate_minimum_hosts",
                "success_rate_request_volume",
                "success_rate_stdev_factor",
                "failure_percentage_threshold",
                "enforcing_failure_percentage",
                "failure_percentage_minimum_hosts",
                "failure_percentage_request_volume",
                "successful_active_health_check_uneject_host"});
  o.enabled = true;
  const auto count = [&](const char* key, uint32_t& out) {
    if (auto v = n[key]) r.get_count(v, where + "." + key, out, 0, UINT32_MAX);
  };
  const auto percent = [&](const char* key, uint32_t& out) {
    if (auto v = n[key]) get_percent(r, v, where + "." + key, out);
  };
  const auto duration = [&](const char* key, std::chrono::milliseconds& out) {
    if (auto v = n[key]) r.get_duration(v, where + "." + key, out);
  };
  const auto flag = [&](const char* key, bool& out) {
    if (auto v = n[key]) r.get_bool(v, where + "." + key, out);
  };
  count("consecutive_5xx", o.consecutive_5xx);
  count("consecutive_gateway_failure", o.consecutive_gateway_failure);
  count("consecutive_local_origin_failure", o.consecutive_local_origin_failure);
  duration("interval", o.interval);
  duration("base_ejection_time", o.base_ejection_time);
  duration("max_ejection_time", o.max_ejection_time);
  percent("max_ejection_percent", o.max_ejection_percent);
  flag("always_eject_one_host", o.always_eject_one_host);
  flag("split_external_local_origin_errors", o.split_external_local_origin_errors);
  percent("enforcing_consecutive_5xx", o.enforcing_consecutive_5xx);
  percent("enforcing_consecutive_gateway_failure", o.enforcing_consecutive_gateway_failure);
  percent("enforcing_consecutive_local_origin_failure",
          o.enforcing_consecutive_local_origin_failure);
  percent("enforcing_success_rate", o.enforcing_success_rate);
  percent("enforcing_local_origin_success_rate", o.enforcing_local_origin_success_rate);
  count("success_rate_minimum_hosts", o.success_rate_minimum_hosts);
  count("success_rate_request_volume", o.success_rate_request_volume);
  count("success_rate_stdev_factor", o.success_rate_stdev_factor);
  percent("failure_percentage_threshold", o.failure_percentage_threshold);
  percent("enforcing_failure_percentage", o.enforcing_failure_percentage);
  count("failure_percentage_minimum_hosts", o.failure_percentage_minimum_hosts);
  count("failure_percentage_request_volume", o.failure_percentage_request_volume);
  flag("successful_active_health_check_uneject_host",
       o.successful_active_health_check_uneject_host);
  if (o.interval.count() <= 0) r.error(n, where + ".interval must be above 0");
  // Envoy: max_ejection_time defaults to 300s or base_ejection_time when larger.
  if (!n["max_ejection_time"] && o.base_ejection_time > o.max_ejection_time) {
    o.max_ejection_time = o.base_ejection_time;
  }
}

void load_dns_discovery(Reader& r, const YAML::Node& n, const std::string& where, DnsDiscovery& d) {
  d.enabled = true;
  if (n.IsNull()) return;  // `dns:` alone: the defaults
  if (!r.is_map(n, where)) return;
  r.check_keys(n, where, {"refresh_rate", "respect_ttl", "lookup_family", "resolvers"});
  if (auto v = n["refresh_rate"]) {
    if (r.get_duration(v, where + ".refresh_rate", d.refresh_rate) &&
        d.refresh_rate < std::chrono::milliseconds(1)) {
      r.error(v, where + ".refresh_rate must be at least 1ms");
    }
  }
  if (auto v = n["respect_ttl"]) r.get_bool(v, where + ".respect_ttl", d.respect_ttl);
  if (auto v = n["lookup_family"]) {
    std::string f;
    if (r.get_enum(v, where + ".lookup_family", f, {"auto", "v4", "v6"})) {
      d.lookup_family = f == "v4"   ? DnsDiscovery::Family::kV4
                        : f == "v6" ? DnsDiscovery::Family::kV6
                                    : DnsDiscovery::Family::kAuto;
    }
  }
  if (auto v = n["resolvers"]) {
    if (r.get_strings(v, where + ".resolvers", d.resolvers)) {
      for (const std::string& s : d.resolvers) {
        if (s.rfind(':') == std::string::npos) {
          r.error(v, where + ".resolvers entries are HOST:PORT");
          break;
        }
      }
    }
  }
}

bool get_dns_target(Reader& r, const YAML::Node& n, const std::string& what,
                    DnsDiscovery::Target& out) {
  if (n.IsMap()) {
    // { address: HOST:PORT, weight, priority }, as a static endpoint.
    r.check_keys(n, what, {"address", "weight", "priority"});
    if (auto v = n["weight"]) r.get_count(v, what + ".weight", out.weight, 1, 1000000);
    if (auto v = n["priority"]) r.get_count(v, what + ".priority", out.priority, 0, 127);
    if (auto v = n["address"]) return get_dns_target(r, v, what + ".address", out);
    r.error(n, what + " needs an address");
    return false;
  }
  std::string text;
  if (!r.get_string(n, what, text)) return false;
  std::string host = text;
  std::string port_text;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      r.error(n, fmt::format("{}: invalid address '{}' (expected [IPv6]:PORT)", what, text));
      return false;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon || colon == 0) {
      r.error(n, fmt::format("{}: invalid address '{}' (expected HOST:PORT)", what, text));
      return false;
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  char extra = 0;
  if (std::sscanf(port_text.c_str(), "%u%c", &port, &extra) != 1 || port == 0 || port > 65535 ||
      port_text.find_first_not_of("0123456789") != std::string::npos) {
    r.error(n, fmt::format("{}: invalid port in '{}' (expected 1-65535)", what, text));
    return false;
  }
  out.host = host;
  out.port = static_cast<uint16_t>(port);
  return true;
}

void finish_dns_cluster(Cluster& cluster) {
  cluster.endpoints.clear();
  for (const DnsDiscovery::Target& t : cluster.discovery.dns.targets) {
    unsigned char raw[16];
    if (inet_pton(AF_INET, t.host.c_str(), raw) == 1 ||
        inet_pton(AF_INET6, t.host.c_str(), raw) == 1) {
      cluster.endpoints.push_back(Address{t.host, t.port, ""});
    }
  }
}

}  // namespace sidecar::config
