#include "proxy/route_action.h"

#include <algorithm>
#include <charconv>

#include <re2/re2.h>

#include "proxy/router.h"
#include "upstream/cluster.h"

namespace sidecar::proxy {
namespace {

// Replaces every match in the path part; the query goes back on unchanged
// (Envoy removes it before matching too).
bool regex_replace(const config::RegexRewrite& rw, std::string_view path, std::string& out) {
  const size_t q = path.find('?');
  std::string p(path.substr(0, q));
  RE2::GlobalReplace(&p, *rw.pattern, rw.substitution);
  if (p.empty() || p[0] != '/') p.insert(p.begin(), '/');
  if (q != std::string_view::npos) p.append(path.substr(q));
  out = std::move(p);
  return true;
}

bool prefix_replace(const config::Route& route, std::string_view rewrite, std::string_view path,
                    std::string& out) {
  size_t matched = 0;
  if (!route.match.prefix.empty()) {
    if (!path.starts_with(route.match.prefix)) return false;
    matched = route.match.prefix.size();
  } else if (!route.match.path.empty()) {
    // The whole path is replaced; the query stays.
    const std::string_view p = path.substr(0, path.find('?'));
    if (p != route.match.path) return false;
    matched = p.size();
  } else {
    return false;
  }
  std::string p;
  p.reserve(rewrite.size() + path.size() - matched + 1);
  p.append(rewrite).append(path.substr(matched));
  if (p.empty() || p[0] != '/') p.insert(p.begin(), '/');
  out = std::move(p);
  return true;
}

uint16_t default_port(std::string_view scheme) { return scheme == "https" ? 443 : 80; }

// The port of an authority ("h:8080" -> 8080), or 0.
uint16_t port_of(std::string_view authority) {
  const std::string_view host = strip_port(authority);
  if (host.size() + 1 >= authority.size()) return 0;
  uint16_t port = 0;
  const std::string_view digits = authority.substr(host.size() + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  return ec == std::errc() && end == digits.data() + digits.size() ? port : 0;
}

}  // namespace

bool rewrite_path(const config::Route& route, std::string_view path, std::string& out) {
  if (route.regex_rewrite.pattern) return regex_replace(route.regex_rewrite, path, out);
  if (!route.prefix_rewrite.empty()) return prefix_replace(route, route.prefix_rewrite, path, out);
  return false;
}

std::string redirect_location(const config::Route& route, const config::Redirect& d, bool tls,
                              std::string_view authority, std::string_view path) {
  const std::string_view from_scheme = tls ? "https" : "http";
  const std::string_view scheme =
      d.scheme_redirect.empty() ? from_scheme : std::string_view(d.scheme_redirect);
  std::string_view host = authority;
  uint16_t port = port_of(authority);
  if (!d.host_redirect.empty()) {
    host = d.host_redirect;
    port = port_of(d.host_redirect);
  } else if (scheme != from_scheme) {
    port = 0;
  }
  if (d.port_redirect != 0) port = static_cast<uint16_t>(d.port_redirect);
  std::string location;
  location.reserve(scheme.size() + host.size() + path.size() + 16);
  location.append(scheme).append("://").append(strip_port(host));
  if (port != 0 && port != default_port(scheme)) location.append(":").append(std::to_string(port));

  const size_t q = path.find('?');
  const std::string_view query = q == std::string_view::npos ? std::string_view() : path.substr(q);
  std::string new_path;
  if (!d.path_redirect.empty()) {
    new_path = d.path_redirect;
    // A query in path_redirect replaces the request's.
    if (d.path_redirect.find('?') == std::string::npos && !d.strip_query) new_path.append(query);
  } else {
    bool rewritten = false;
    if (d.regex_rewrite.pattern) {
      rewritten = regex_replace(d.regex_rewrite, path, new_path);
    } else if (!d.prefix_rewrite.empty()) {
      rewritten = prefix_replace(route, d.prefix_rewrite, path, new_path);
    }
    if (!rewritten) new_path.assign(path);
    if (d.strip_query) new_path.resize(std::min(new_path.find('?'), new_path.size()));
  }
  if (new_path.empty()) new_path = "/";
  location.append(new_path);
  return location;
}

http::LocalResponse route_answer(const config::Route& route, bool tls, std::string_view authority,
                                 std::string_view path) {
  http::LocalResponse r;
  if (route.redirect) {
    r.status = route.redirect->response_code;
    r.headers.emplace_back("location",
                           redirect_location(route, *route.redirect, tls, authority, path));
  } else if (route.direct_response) {
    const config::DirectResponse& d = *route.direct_response;
    r.status = d.status;
    if (!d.body.empty()) r.headers.emplace_back("content-type", d.content_type);
    // The configured body is shared (aliasing the config's pointer), not
    // copied per request: it may be a whole page from a file.
    if (!d.body.empty())
      r.shared_body = std::shared_ptr<const std::string>(route.direct_response, &d.body);
  }
  return r;
}

std::string endpoint_authority(const upstream::Endpoint& endpoint, bool tls) {
  std::string a = endpoint.host_name();
  if (a.find(':') != std::string::npos) a = "[" + a + "]";  // an IPv6 literal
  const uint16_t port = endpoint.address().port();
  if (port != (tls ? 443 : 80)) a.append(":").append(std::to_string(port));
  return a;
}

}  // namespace sidecar::proxy
