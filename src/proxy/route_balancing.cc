#include "proxy/route_balancing.h"

#include <algorithm>

#include <fmt/format.h>

#include "http/http1_parser.h"
#include "upstream/load_balancer.h"

namespace sidecar::proxy {
namespace {

// A different mix of the same key for the cluster split than for the
// endpoint choice, so that the two are independent.
uint64_t remix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

}  // namespace

std::optional<std::string_view> find_cookie(const http::RequestHead& request,
                                            std::string_view name) {
  for (const http::HeaderField& f : request.headers) {
    if (!http::iequals(f.name, "cookie")) continue;
    std::string_view v = f.value;
    while (!v.empty()) {
      const size_t semi = v.find(';');
      std::string_view pair = http::trim_ows(v.substr(0, semi));
      v = semi == std::string_view::npos ? std::string_view() : v.substr(semi + 1);
      const size_t eq = pair.find('=');
      if (eq == std::string_view::npos) continue;
      if (http::trim_ows(pair.substr(0, eq)) != name) continue;
      std::string_view value = http::trim_ows(pair.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);  // RFC 6265 quoted cookie-value
      }
      return value;
    }
  }
  return std::nullopt;
}

std::optional<std::string_view> find_query_parameter(std::string_view path, std::string_view name) {
  const size_t q = path.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = path.substr(q + 1);
  const size_t hash = query.find('#');
  if (hash != std::string_view::npos) query = query.substr(0, hash);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    const std::string_view key = pair.substr(0, eq);
    if (key != name) continue;
    return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
  }
  return std::nullopt;
}

HashResult compute_hash(const std::vector<config::HashPolicy>& policy, const HashInput& in) {
  HashResult out;
  using Kind = config::HashPolicy::Kind;
  for (const config::HashPolicy& p : policy) {
    std::optional<uint64_t> h;
    switch (p.kind) {
      case Kind::kHeader:
        if (in.request != nullptr) {
          // Several fields of the name: all of their values, in order.
          for (const http::HeaderField& f : in.request->headers) {
            if (!http::iequals(f.name, p.name)) continue;
            const uint64_t v = upstream::hash_key(f.value);
            h = h ? upstream::combine_hash(*h, v) : v;
          }
        }
        break;
      case Kind::kCookie: {
        std::optional<std::string_view> v;
        if (in.request != nullptr) v = find_cookie(*in.request, p.name);
        if (v) {
          h = upstream::hash_key(*v);
        } else if (p.ttl.count() > 0 && out.set_cookie.empty()) {
          const std::string made = fmt::format("{:016x}", in.random);
          h = upstream::hash_key(made);
          out.set_cookie = fmt::format("{}={}; Max-Age={}", p.name, made,
                                       std::max<int64_t>(1, p.ttl.count() / 1000));
          if (!p.path.empty()) out.set_cookie.append("; Path=").append(p.path);
          out.set_cookie.append("; HttpOnly");
        }
        break;
      }
      case Kind::kSourceIp:
        if (!in.source_ip.empty()) h = upstream::hash_key(in.source_ip);
        break;
      case Kind::kQueryParameter:
        if (auto v = find_query_parameter(in.path, p.name)) h = upstream::hash_key(*v);
        break;
    }
    if (!h) continue;
    out.hash = out.hash ? upstream::combine_hash(*out.hash, *h) : *h;
    if (p.terminal) break;
  }
  return out;
}

int WeightedClusters::choose(const std::optional<uint64_t>& hash, uint64_t random) const {
  if (clusters.empty()) return -1;
  const uint64_t total = cumulative.back();
  if (total == 0) return clusters.front();
  const uint64_t x = (hash ? remix(*hash) : random) % total;
  const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), x);
  return clusters[static_cast<size_t>(it - cumulative.begin())];
}

}  // namespace sidecar::proxy
