#include "config/balancing.h"

#include <fmt/format.h>

namespace sidecar::config {

bool load_endpoint(Reader& r, const YAML::Node& n, const std::string& where, Address& out) {
  if (n.IsScalar()) return r.get_address(n, where, out);
  if (!n.IsMap()) {
    r.error(n, where + " must be HOST:PORT or { address, weight, priority }");
    return false;
  }
  r.check_keys(n, where, {"address", "weight", "priority"});
  bool ok = false;
  if (auto v = n["address"]) {
    ok = r.get_address(v, where + ".address", out);
  } else {
    r.error(n, where + " needs an address");
  }
  if (auto v = n["weight"]) r.get_count(v, where + ".weight", out.weight, 1, 1000000);
  if (auto v = n["priority"]) r.get_count(v, where + ".priority", out.priority, 0, 127);
  return ok;
}

namespace {

void load_circuit_breakers(Reader& r, const YAML::Node& n, const std::string& where,
                           CircuitBreakers& cb) {
  if (!r.is_map(n, where)) return;
  r.check_keys(
      n, where,
      {"max_connections", "max_pending_requests", "max_requests", "max_retries", "retry_budget"});
  if (auto v = n["max_connections"])
    r.get_count(v, where + ".max_connections", cb.max_connections, 1, UINT32_MAX);
  if (auto v = n["max_pending_requests"])
    r.get_count(v, where + ".max_pending_requests", cb.max_pending_requests, 1, UINT32_MAX);
  if (auto v = n["max_requests"])
    r.get_count(v, where + ".max_requests", cb.max_requests, 1, UINT32_MAX);
  if (auto v = n["max_retries"])
    r.get_count(v, where + ".max_retries", cb.max_retries, 0, UINT32_MAX);
  if (auto b = n["retry_budget"]) {
    const std::string bw = where + ".retry_budget";
    if (r.is_map(b, bw)) {
      r.check_keys(b, bw, {"budget_percent", "min_retry_concurrency"});
      cb.retry_budget = true;
      if (auto v = b["budget_percent"])
        r.get_double(v, bw + ".budget_percent", cb.budget_percent, 0, 100);
      if (auto v = b["min_retry_concurrency"])
        r.get_count(v, bw + ".min_retry_concurrency", cb.min_retry_concurrency, 0, UINT32_MAX);
    }
  }
}

}  // namespace

std::string_view to_string(LbPolicy p) {
  switch (p) {
    case LbPolicy::kRoundRobin:
      return "round_robin";
    case LbPolicy::kLeastRequest:
      return "least_request";
    case LbPolicy::kRandom:
      return "random";
    case LbPolicy::kRingHash:
      return "ring_hash";
    case LbPolicy::kMaglev:
      return "maglev";
    case LbPolicy::kEwma:
      return "ewma";
  }
  return "round_robin";
}

void load_cluster_balancing(Reader& r, const YAML::Node& n, const std::string& where, Cluster& cl) {
  LbSettings& lb = cl.lb;
  if (auto v = n["lb_policy"]) {
    std::string p;
    if (r.get_enum(v, where + ".lb_policy", p,
                   {"round_robin", "least_request", "random", "ring_hash", "maglev", "ewma"})) {
      for (LbPolicy candidate : {LbPolicy::kRoundRobin, LbPolicy::kLeastRequest, LbPolicy::kRandom,
                                 LbPolicy::kRingHash, LbPolicy::kMaglev, LbPolicy::kEwma}) {
        if (to_string(candidate) == p) cl.lb_policy = candidate;
      }
    }
  }
  if (auto s = n["least_request_lb_config"]) {
    const std::string w = where + ".least_request_lb_config";
    if (r.is_map(s, w)) {
      r.check_keys(s, w, {"choice_count", "active_request_bias"});
      if (auto v = s["choice_count"]) r.get_count(v, w + ".choice_count", lb.choice_count, 2, 100);
      if (auto v = s["active_request_bias"])
        r.get_double(v, w + ".active_request_bias", lb.active_request_bias, 0, 10);
    }
  }
  if (auto s = n["ring_hash_lb_config"]) {
    const std::string w = where + ".ring_hash_lb_config";
    if (r.is_map(s, w)) {
      r.check_keys(s, w, {"minimum_ring_size", "maximum_ring_size"});
      // Envoy's bounds: at most 8M entries.
      if (auto v = s["minimum_ring_size"]) {
        uint32_t x = 0;
        if (r.get_count(v, w + ".minimum_ring_size", x, 1, 8 * 1024 * 1024))
          lb.minimum_ring_size = x;
      }
      if (auto v = s["maximum_ring_size"]) {
        uint32_t x = 0;
        if (r.get_count(v, w + ".maximum_ring_size", x, 1, 8 * 1024 * 1024))
          lb.maximum_ring_size = x;
      }
      if (lb.minimum_ring_size > lb.maximum_ring_size) {
        r.error(s, w + ": minimum_ring_size is above maximum_ring_size");
      }
    }
  }
  if (auto s = n["common_lb_config"]) {
    const std::string w = where + ".common_lb_config";
    if (r.is_map(s, w)) {
      r.check_keys(s, w, {"healthy_panic_threshold", "overprovisioning_factor"});
      if (auto v = s["healthy_panic_threshold"])
        r.get_count(v, w + ".healthy_panic_threshold", lb.healthy_panic_threshold, 0, 100);
      if (auto v = s["overprovisioning_factor"])
        r.get_count(v, w + ".overprovisioning_factor", lb.overprovisioning_factor, 100, 1000);
    }
  }
  if (auto s = n["ewma_lb_config"]) {
    const std::string w = where + ".ewma_lb_config";
    if (r.is_map(s, w)) {
      r.check_keys(s, w, {"decay", "default_rtt"});
      if (auto v = s["decay"]) {
        if (r.get_duration(v, w + ".decay", lb.ewma_decay) && lb.ewma_decay.count() <= 0)
          r.error(v, w + ".decay must be above 0");
      }
      if (auto v = s["default_rtt"]) r.get_duration(v, w + ".default_rtt", lb.ewma_default_rtt);
    }
  }
  if (auto v = n["circuit_breakers"])
    load_circuit_breakers(r, v, where + ".circuit_breakers", cl.circuit_breakers);
}

void load_route_balancing(Reader& r, const YAML::Node& n, const std::string& where, const Config& c,
                          Route& route) {
  if (auto v = n["weighted_clusters"]) {
    const std::string w = where + ".weighted_clusters";
    if (r.is_seq(v, w)) {
      uint64_t total = 0;
      for (size_t i = 0; i < v.size(); ++i) {
        const std::string ew = fmt::format("{}[{}]", w, i);
        if (!r.is_map(v[i], ew)) continue;
        r.check_keys(v[i], ew, {"name", "weight"});
        WeightedCluster wc;
        if (auto x = v[i]["name"]) {
          if (r.get_string(x, ew + ".name", wc.name) && c.cluster_index(wc.name) < 0) {
            r.error(x, fmt::format("{}.name: no cluster named '{}'", ew, wc.name));
          }
        } else {
          r.error(v[i], ew + " needs a name");
        }
        if (auto x = v[i]["weight"]) {
          r.get_count(x, ew + ".weight", wc.weight, 0, 1000000);
        } else {
          r.error(v[i], ew + " needs a weight");
        }
        total += wc.weight;
        route.weighted_clusters.push_back(std::move(wc));
      }
      if (v.size() == 0) r.error(v, w + " must not be empty");
      if (v.size() > 0 && total == 0) r.error(v, w + ": the weights add up to 0");
    }
  }
  if (auto v = n["hash_policy"]) {
    const std::string w = where + ".hash_policy";
    if (!r.is_seq(v, w)) return;
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string ew = fmt::format("{}[{}]", w, i);
      const YAML::Node e = v[i];
      if (!r.is_map(e, ew)) continue;
      r.check_keys(e, ew,
                   {"header", "cookie", "connection_properties", "query_parameter", "terminal"});
      HashPolicy h;
      int kinds = 0;
      if (auto x = e["header"]) {
        ++kinds;
        h.kind = HashPolicy::Kind::kHeader;
        if (r.is_map(x, ew + ".header")) {
          r.check_keys(x, ew + ".header", {"header_name"});
          if (auto y = x["header_name"]) {
            if (r.get_string(y, ew + ".header.header_name", h.name)) {
              for (char& ch : h.name) ch = static_cast<char>(std::tolower(ch));
              if (h.name.empty()) r.error(y, ew + ".header.header_name must not be empty");
            }
          } else {
            r.error(x, ew + ".header needs a header_name");
          }
        }
      }
      if (auto x = e["cookie"]) {
        ++kinds;
        h.kind = HashPolicy::Kind::kCookie;
        if (r.is_map(x, ew + ".cookie")) {
          r.check_keys(x, ew + ".cookie", {"name", "ttl", "path"});
          if (auto y = x["name"]) {
            if (r.get_string(y, ew + ".cookie.name", h.name) && h.name.empty())
              r.error(y, ew + ".cookie.name must not be empty");
          } else {
            r.error(x, ew + ".cookie needs a name");
          }
          if (auto y = x["ttl"]) r.get_duration(y, ew + ".cookie.ttl", h.ttl);
          if (auto y = x["path"]) r.get_string(y, ew + ".cookie.path", h.path);
        }
      }
      if (auto x = e["connection_properties"]) {
        ++kinds;
        h.kind = HashPolicy::Kind::kSourceIp;
        if (r.is_map(x, ew + ".connection_properties")) {
          r.check_keys(x, ew + ".connection_properties", {"source_ip"});
          bool on = false;
          if (auto y = x["source_ip"]) r.get_bool(y, ew + ".connection_properties.source_ip", on);
          if (!on) r.error(x, ew + ".connection_properties needs source_ip: true");
        }
      }
      if (auto x = e["query_parameter"]) {
        ++kinds;
        h.kind = HashPolicy::Kind::kQueryParameter;
        if (r.is_map(x, ew + ".query_parameter")) {
          r.check_keys(x, ew + ".query_parameter", {"name"});
          if (auto y = x["name"]) {
            if (r.get_string(y, ew + ".query_parameter.name", h.name) && h.name.empty())
              r.error(y, ew + ".query_parameter.name must not be empty");
          } else {
            r.error(x, ew + ".query_parameter needs a name");
          }
        }
      }
      if (kinds != 1) {
        r.error(e, ew + " takes one of header, cookie, connection_properties, query_parameter");
      }
      if (auto x = e["terminal"]) r.get_bool(x, ew + ".terminal", h.terminal);
      route.hash_policy.push_back(std::move(h));
    }
  }
}

}  // namespace sidecar::config
