#include "config/route_policy.h"

#include <fmt/format.h>

namespace sidecar::config {

namespace {

struct Condition {
  std::string_view name;
  uint32_t bit;
};

constexpr Condition kConditions[] = {
    {"5xx", RetryPolicy::k5xx},
    {"gateway-error", RetryPolicy::kGatewayError},
    {"reset", RetryPolicy::kReset},
    {"connect-failure", RetryPolicy::kConnectFailure},
    {"retriable-4xx", RetryPolicy::kRetriable4xx},
    {"refused-stream", RetryPolicy::kRefusedStream},
    {"retriable-status-codes", RetryPolicy::kRetriableStatusCodes},
};

}  // namespace

void load_retry_policy(Reader& r, const YAML::Node& n, const std::string& where, RetryPolicy& out) {
  if (!r.is_map(n, where)) return;
  r.check_keys(n, where,
               {"retry_on", "retriable_status_codes", "num_retries", "per_try_timeout",
                "retry_back_off", "retry_non_idempotent", "hedge_on_per_try_timeout"});
  if (auto v = n["retry_on"]) {
    // A list, or Envoy's comma-separated string.
    std::vector<YAML::Node> items;
    if (v.IsSequence()) {
      for (size_t i = 0; i < v.size(); ++i) items.push_back(v[i]);
    } else {
      items.push_back(v);
    }
    for (const YAML::Node& item : items) {
      std::string names;
      if (!r.get_string(item, where + ".retry_on", names)) continue;
      size_t start = 0;
      while (start <= names.size()) {
        size_t end = names.find(',', start);
        if (end == std::string::npos) end = names.size();
        std::string_view one = std::string_view(names).substr(start, end - start);
        while (!one.empty() && one.front() == ' ') one.remove_prefix(1);
        while (!one.empty() && one.back() == ' ') one.remove_suffix(1);
        bool known = false;
        for (const Condition& c : kConditions) {
          if (c.name == one) {
            out.retry_on |= c.bit;
            known = true;
          }
        }
        if (!known) {
          r.error(item, fmt::format("{}.retry_on: unknown condition '{}' (5xx, gateway-error, "
                                    "reset, connect-failure, retriable-4xx, refused-stream, "
                                    "retriable-status-codes)",
                                    where, one));
        }
        start = end + 1;
      }
    }
  } else {
    r.error(n, where + " needs retry_on");
  }
  if (auto v = n["retriable_status_codes"]) {
    const std::string w = where + ".retriable_status_codes";
    if (r.is_seq(v, w)) {
      for (size_t i = 0; i < v.size(); ++i) {
        uint32_t code = 0;
        if (r.get_count(v[i], fmt::format("{}[{}]", w, i), code, 100, 599)) {
          out.retriable_status_codes.push_back(static_cast<uint16_t>(code));
        }
      }
    }
  }
  if (auto v = n["num_retries"]) r.get_count(v, where + ".num_retries", out.num_retries, 0, 10);
  if (auto v = n["per_try_timeout"]) {
    r.get_duration(v, where + ".per_try_timeout", out.per_try_timeout);
  }
  if (auto v = n["retry_back_off"]) {
    const std::string w = where + ".retry_back_off";
    if (r.is_map(v, w)) {
      r.check_keys(v, w, {"base_interval", "max_interval"});
      bool has_max = false;
      if (auto b = v["base_interval"]) {
        if (r.get_duration(b, w + ".base_interval", out.base_interval) &&
            out.base_interval.count() <= 0) {
          r.error(b, w + ".base_interval must be above 0");
        }
      } else {
        r.error(v, w + " needs base_interval");
      }
      if (auto m = v["max_interval"]) {
        has_max = r.get_duration(m, w + ".max_interval", out.max_interval);
        if (has_max && out.max_interval < out.base_interval) {
          r.error(m, w + ".max_interval must not be below base_interval");
        }
      }
      if (!has_max) out.max_interval = out.base_interval * 10;  // Envoy's default
    }
  }
  if (auto v = n["retry_non_idempotent"]) {
    r.get_bool(v, where + ".retry_non_idempotent", out.retry_non_idempotent);
  }
  if (auto v = n["hedge_on_per_try_timeout"]) {
    if (r.get_bool(v, where + ".hedge_on_per_try_timeout", out.hedge_on_per_try_timeout) &&
        out.hedge_on_per_try_timeout && !n["per_try_timeout"]) {
      r.error(v, where + ".hedge_on_per_try_timeout needs per_try_timeout");
    }
  }
}

std::vector<std::string> retry_on_names(uint32_t bits) {
  std::vector<std::string> names;
  for (const Condition& c : kConditions) {
    if ((bits & c.bit) != 0) names.emplace_back(c.name);
  }
  return names;
}

void load_mirror_policies(Reader& r, const YAML::Node& n, const std::string& where, const Config& c,
                          std::vector<MirrorPolicy>& out) {
  if (!r.is_seq(n, where)) return;
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string w = fmt::format("{}[{}]", where, i);
    const YAML::Node m = n[i];
    if (!r.is_map(m, w)) continue;
    r.check_keys(m, w, {"cluster", "runtime_fraction"});
    MirrorPolicy p;
    if (auto v = m["cluster"]) {
      if (r.get_string(v, w + ".cluster", p.cluster) && c.cluster_index(p.cluster) < 0) {
        r.error(v, fmt::format("{}.cluster: no cluster named '{}'", w, p.cluster));
      }
    } else {
      r.error(m, w + " needs a cluster");
    }
    if (auto v = m["runtime_fraction"]) r.get_double(v, w + ".runtime_fraction", p.fraction, 0, 1);
    out.push_back(std::move(p));
  }
}

}  // namespace sidecar::config
