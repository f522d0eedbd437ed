#include "config/route_action.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <re2/re2.h>

namespace sidecar::config {
namespace {

// The largest direct response body (a maintenance page, a robots.txt): it
// is held in memory by every config snapshot.
constexpr uint64_t kMaxDirectBody = 1024 * 1024;

// `{ pattern: { regex: "^/a/(.*)" }, substitution: "/b/\1" }` (Envoy's
// shape); `pattern: "^/a/(.*)"` is taken too.
void load_regex_rewrite(Reader& r, const YAML::Node& n, const std::string& where,
                        RegexRewrite& out) {
  if (!r.is_map(n, where)) return;
  r.check_keys(n, where, {"pattern", "substitution"});
  std::string pattern;
  const YAML::Node p = n["pattern"];
  if (!p) {
    r.error(n, where + " needs a pattern");
    return;
  }
  if (p.IsMap()) {
    r.check_keys(p, where + ".pattern", {"regex", "google_re2"});
    if (auto v = p["regex"]) {
      r.get_string(v, where + ".pattern.regex", pattern);
    } else {
      r.error(p, where + ".pattern needs a regex");
      return;
    }
  } else if (!r.get_string(p, where + ".pattern", pattern)) {
    return;
  }
  if (auto v = n["substitution"]) {
    r.get_string(v, where + ".substitution", out.substitution);
  } else {
    r.error(n, where + " needs a substitution");
    return;
  }
  RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_shared<RE2>(pattern, options);
  if (!re->ok()) {
    r.error(p, fmt::format("{}.pattern: {}", where, re->error()));
    return;
  }
  std::string why;
  if (!re->CheckRewriteString(out.substitution, &why)) {
    r.error(n["substitution"], fmt::format("{}.substitution: {}", where, why));
    return;
  }
  out.pattern = std::move(re);
}

bool valid_path(std::string_view p) {
  if (p.empty() || p[0] != '/') return false;
  for (char c : p) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

void load_redirect(Reader& r, const YAML::Node& n, const std::string& where, const Route& route,
                   Redirect& d) {
  if (!r.is_map(n, where)) return;
  r.check_keys(
      n, where,
      {"https_redirect", "scheme_redirect", "host_redirect", "port_redirect", "path_redirect",
       "prefix_rewrite", "regex_rewrite", "response_code", "strip_query"});
  if (auto v = n["https_redirect"]) {
    bool https = false;
    if (r.get_bool(v, where + ".https_redirect", https) && https) d.scheme_redirect = "https";
  }
  if (auto v = n["scheme_redirect"]) {
    if (!d.scheme_redirect.empty()) {
      r.error(v, where + " takes https_redirect or scheme_redirect, not both");
    } else {
      r.get_enum(v, where + ".scheme_redirect", d.scheme_redirect, {"http", "https"});
    }
  }
  if (auto v = n["host_redirect"]) {
    if (r.get_string(v, where + ".host_redirect", d.host_redirect) &&
        (d.host_redirect.empty() ||
         d.host_redirect.find_first_of("/?#@ \t\r\n") != std::string::npos)) {
      r.error(v, where + ".host_redirect must be a host name (with an optional :port)");
      d.host_redirect.clear();
    }
  }
  if (auto v = n["port_redirect"])
    r.get_count(v, where + ".port_redirect", d.port_redirect, 1, 65535);
  int paths = 0;
  if (auto v = n["path_redirect"]) {
    ++paths;
    if (r.get_string(v, where + ".path_redirect", d.path_redirect) &&
        !valid_path(d.path_redirect)) {
      r.error(v, where + ".path_redirect must start with / and hold no spaces or controls");
      d.path_redirect.clear();
    }
  }
  if (auto v = n["prefix_rewrite"]) {
    ++paths;
    r.get_string(v, where + ".prefix_rewrite", d.prefix_rewrite);
    if (route.match.prefix.empty() && route.match.path.empty()) {
      r.error(v, where + ".prefix_rewrite needs a match.prefix or match.path to replace");
    }
  }
  if (auto v = n["regex_rewrite"]) {
    ++paths;
    load_regex_rewrite(r, v, where + ".regex_rewrite", d.regex_rewrite);
  }
  if (paths > 1) {
    r.error(n, where + " takes one of path_redirect, prefix_rewrite, regex_rewrite");
  }
  if (auto v = n["response_code"]) {
    // A number, or Envoy's enum names.
    static const std::pair<std::string_view, uint16_t> kNames[] = {{"301", 301},
                                                                   {"302", 302},
                                                                   {"303", 303},
                                                                   {"307", 307},
                                                                   {"308", 308},
                                                                   {"MOVED_PERMANENTLY", 301},
                                                                   {"FOUND", 302},
                                                                   {"SEE_OTHER", 303},
                                                                   {"TEMPORARY_REDIRECT", 307},
                                                                   {"PERMANENT_REDIRECT", 308}};
    std::string s;
    if (r.get_string(v, where + ".response_code", s)) {
      bool found = false;
      for (const auto& [name, code] : kNames) {
        if (s == name) {
          d.response_code = code;
          found = true;
        }
      }
      if (!found) {
        r.error(v,
                fmt::format("{}.response_code: '{}' is not 301, 302, 303, 307 or 308", where, s));
      }
    }
  }
  if (auto v = n["strip_query"]) r.get_bool(v, where + ".strip_query", d.strip_query);
}

// `direct_response: { status: 503, body: "down for maintenance\n" }`;
// body also `{ inline_string: ... }` or `{ filename: ... }` (Envoy's DataSource).
void load_direct_response(Reader& r, const YAML::Node& n, const std::string& where,
                          DirectResponse& d) {
  if (!r.is_map(n, where)) return;
  r.check_keys(n, where, {"status", "body", "content_type"});
  if (auto v = n["status"]) {
    uint32_t status = 0;
    if (r.get_count(v, where + ".status", status, 200, 599))
      d.status = static_cast<uint16_t>(status);
  } else {
    r.error(n, where + " needs a status");
  }
  if (auto v = n["content_type"]) {
    if (r.get_string(v, where + ".content_type", d.content_type) &&
        d.content_type.find_first_of("\r\n") != std::string::npos) {
      r.error(v, where + ".content_type must be one line");
      d.content_type = "text/plain";
    }
  }
  const YAML::Node b = n["body"];
  if (!b) return;
  const std::string bw = where + ".body";
  if (b.IsScalar()) {
    r.get_string(b, bw, d.body);
  } else if (r.is_map(b, bw)) {
    r.check_keys(b, bw, {"inline_string", "filename"});
    if (b["inline_string"] && b["filename"]) {
      r.error(b, bw + " takes inline_string or filename, not both");
    } else if (auto v = b["inline_string"]) {
      r.get_string(v, bw + ".inline_string", d.body);
    } else if (auto v = b["filename"]) {
      std::string path;
      if (!r.get_string(v, bw + ".filename", path)) return;
      std::ifstream in(path, std::ios::binary);
      if (!in) {
        r.error(v, fmt::format("{}.filename: cannot read '{}'", bw, path));
        return;
      }
      std::ostringstream s;
      s << in.rdbuf();
      d.body = std::move(s).str();
    } else {
      r.error(b, bw + " needs inline_string or filename");
    }
  }
  if (d.body.size() > kMaxDirectBody) {
    r.error(b, fmt::format("{}: {} bytes, more than the limit of 1MiB", bw, d.body.size()));
    d.body.clear();
  }
  if (d.status == 204 || d.status == 304) {
    if (!d.body.empty()) r.error(b, fmt::format("{}: a {} response has no body", bw, d.status));
  }
}

}  // namespace

void load_route_action(Reader& r, const YAML::Node& n, const std::string& where, Route& route) {
  int answers = 0;
  if (auto v = n["redirect"]) {
    ++answers;
    auto d = std::make_shared<Redirect>();
    load_redirect(r, v, where + ".redirect", route, *d);
    route.redirect = std::move(d);
  }
  if (auto v = n["direct_response"]) {
    ++answers;
    auto d = std::make_shared<DirectResponse>();
    load_direct_response(r, v, where + ".direct_response", *d);
    route.direct_response = std::move(d);
  }
  // Forwarding is to `cluster` or to `weighted_clusters` (config/balancing.cc).
  const YAML::Node cluster = n["cluster"] ? n["cluster"] : n["weighted_clusters"];
  if (answers > 1) {
    r.error(n, where + " takes one of cluster, redirect, direct_response");
  } else if (answers == 1 && cluster) {
    r.error(cluster, where + " takes one of cluster, redirect, direct_response");
  } else if (answers == 0 && !cluster) {
    r.error(n, where + " needs a cluster (or weighted_clusters, a redirect or direct_response)");
  }

  const bool forwards = answers == 0;
  auto only_forwarding = [&](const YAML::Node& v, const char* key) {
    if (!forwards) {
      r.error(v, fmt::format("{}.{} is for routes with a cluster (a redirect has its own "
                             "prefix_rewrite)",
                             where, key));
    }
  };
  int paths = 0;
  if (auto v = n["prefix_rewrite"]) {
    ++paths;
    only_forwarding(v, "prefix_rewrite");
    r.get_string(v, where + ".prefix_rewrite", route.prefix_rewrite);
    if (route.match.prefix.empty() && route.match.path.empty()) {
      r.error(v, where + ".prefix_rewrite needs a match.prefix or match.path to replace");
    }
  }
  if (auto v = n["regex_rewrite"]) {
    ++paths;
    only_forwarding(v, "regex_rewrite");
    load_regex_rewrite(r, v, where + ".regex_rewrite", route.regex_rewrite);
  }
  if (paths > 1) r.error(n, where + " takes prefix_rewrite or regex_rewrite, not both");
  if (auto v = n["host_rewrite"]) {
    only_forwarding(v, "host_rewrite");
    if (r.get_string(v, where + ".host_rewrite", route.host_rewrite) &&
        (route.host_rewrite.empty() ||
         route.host_rewrite.find_first_of("/?#@ \t\r\n") != std::string::npos)) {
      r.error(v, where + ".host_rewrite must be a host name (with an optional :port)");
      route.host_rewrite.clear();
    }
  }
  if (auto v = n["auto_host_rewrite"]) {
    only_forwarding(v, "auto_host_rewrite");
    r.get_bool(v, where + ".auto_host_rewrite", route.auto_host_rewrite);
    if (route.auto_host_rewrite && !route.host_rewrite.empty()) {
      r.error(v, where + " takes host_rewrite or auto_host_rewrite, not both");
    }
  }
}

}  // namespace sidecar::config
