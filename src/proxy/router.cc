#include "proxy/router.h"

#include <algorithm>

#include <re2/re2.h>

namespace sidecar::proxy {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c; }

bool iequals_lower(std::string_view s, std::string_view lower_pattern) {
  if (s.size() != lower_pattern.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (lower(s[i]) != lower_pattern[i]) return false;
  }
  return true;
}

bool host_matches(const CompiledRoute& r, std::string_view host) {
  switch (r.host_kind) {
    case CompiledRoute::HostKind::kAny:
      return true;
    case CompiledRoute::HostKind::kExact:
      return iequals_lower(host, r.host);
    case CompiledRoute::HostKind::kSuffix:  // "*.example.com" stored as ".example.com"
      return host.size() > r.host.size() &&
             iequals_lower(host.substr(host.size() - r.host.size()), r.host);
    case CompiledRoute::HostKind::kPrefix:  // "api.*" stored as "api."
      return host.size() > r.host.size() && iequals_lower(host.substr(0, r.host.size()), r.host);
  }
  return false;
}

bool value_matches(const config::HeaderMatcher& m, std::string_view v) {
  using Kind = config::HeaderMatcher::Kind;
  switch (m.kind) {
    case Kind::kExact:
      return v == m.value;
    case Kind::kPrefix:
      return v.substr(0, m.value.size()) == m.value;
    case Kind::kSuffix:
      return v.size() >= m.value.size() && v.substr(v.size() - m.value.size()) == m.value;
    case Kind::kContains:
      return v.find(m.value) != std::string_view::npos;
    case Kind::kPresent:
      return true;
    case Kind::kRegex:
      return m.regex != nullptr && RE2::FullMatch(re2::StringPiece(v.data(), v.size()), *m.regex);
  }
  return false;
}

bool header_matches(const config::HeaderMatcher& m, const http::RequestHead& request) {
  bool matched = false;
  for (const http::HeaderField& f : request.headers) {
    if (http::iequals(f.name, m.name) && value_matches(m, f.value)) {
      matched = true;
      break;
    }
  }
  return matched != m.invert;
}

}  // namespace

std::string_view strip_port(std::string_view host) {
  if (!host.empty() && host[0] == '[') {
    const size_t close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  const size_t colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

RouteTable::RouteTable(const config::Listener& listener, const config::Config& config,
                       stats::Store* store) {
  routes_.reserve(listener.routes.size());
  for (const config::Route& r : listener.routes) {
    CompiledRoute c;
    c.config = &r;
    c.cluster = r.cluster.empty() ? -1 : config.cluster_index(r.cluster);
    uint64_t sum = 0;
    for (const config::WeightedCluster& w : r.weighted_clusters) {
      if (w.weight == 0) continue;
      c.weighted.clusters.push_back(config.cluster_index(w.name));
      c.weighted.cumulative.push_back(sum += w.weight);
    }
    if (store != nullptr) {
      std::string label = r.cluster;  // weighted_clusters: "v1,v2"
      for (const config::WeightedCluster& w : r.weighted_clusters) {
        if (!label.empty()) label += ',';
        label += w.name;
      }
      c.stats = store->route(listener.name, r.name, label);
    }
    std::string h = r.match.host;
    std::transform(h.begin(), h.end(), h.begin(), lower);
    if (h.empty() || h == "*") {
      c.host_kind = CompiledRoute::HostKind::kAny;
    } else if (h.size() > 1 && h[0] == '*') {
      c.host_kind = CompiledRoute::HostKind::kSuffix;
      c.host = h.substr(1);
    } else if (h.size() > 1 && h.back() == '*') {
      c.host_kind = CompiledRoute::HostKind::kPrefix;
      c.host = h.substr(0, h.size() - 1);
    } else {
      c.host_kind = CompiledRoute::HostKind::kExact;
      c.host = h;
    }
    routes_.push_back(std::move(c));
  }
}

const CompiledRoute* RouteTable::match(std::string_view host, std::string_view path,
                                       const http::RequestHead& request) const {
  host = strip_port(host);
  std::string_view path_only = path.substr(0, path.find('?'));
  for (const CompiledRoute& r : routes_) {
    const config::RouteMatch& m = r.config->match;
    if (!host_matches(r, host)) continue;
    if (!m.prefix.empty() && path.substr(0, m.prefix.size()) != m.prefix) continue;
    if (!m.path.empty() && path_only != m.path) continue;
    bool headers_ok = true;
    for (const config::HeaderMatcher& hm : m.headers) {
      if (!header_matches(hm, request)) {
        headers_ok = false;
        break;
      }
    }
    if (headers_ok) return &r;
  }
  return nullptr;
}

}  // namespace sidecar::proxy
