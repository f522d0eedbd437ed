#include "filters/jwt_authn/config.h"

#include <fmt/format.h>

#include "http/http1_parser.h"

namespace sidecar::filters::jwt_authn {
namespace {

bool valid_token(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n) {
    if (!http::is_tchar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

void parse_header_name(const YAML::Node& n, const std::string& what, config::Reader& reader,
                       std::string& out) {
  if (reader.get_string(n, what, out) && !valid_token(out))
    reader.error(n, fmt::format("{}: '{}' is not a field name", what, out));
}

int provider_index(const Config& c, const std::string& name) {
  for (size_t i = 0; i < c.providers.size(); ++i) {
    if (c.providers[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

// "http://host:port/path" -> host "host:port", path "/path".
bool split_uri(std::string_view uri, std::string& host, std::string& path) {
  const size_t scheme = uri.find("://");
  if (scheme == std::string_view::npos) return false;
  uri.remove_prefix(scheme + 3);
  const size_t slash = uri.find('/');
  host = std::string(uri.substr(0, slash));
  path = slash == std::string_view::npos ? "/" : std::string(uri.substr(slash));
  return !host.empty();
}

void parse_provider(const YAML::Node& n, Provider& p, config::Reader& reader) {
  const std::string where = "jwt_authn.providers." + p.name;
  if (!reader.is_map(n, where)) return;
  reader.check_keys(n, where,
                    {"issuer", "audiences", "local_jwks", "remote_jwks", "from_headers",
                     "from_params", "from_cookies", "forward", "claim_to_headers",
                     "forward_payload_header", "clock_skew_seconds"});
  if (auto v = n["issuer"]) reader.get_string(v, where + ".issuer", p.issuer);
  if (auto v = n["audiences"]) reader.get_strings(v, where + ".audiences", p.audiences);
  int sources = 0;
  if (auto v = n["local_jwks"]) {
    ++sources;
    const std::string w = where + ".local_jwks";
    if (reader.is_map(v, w)) {
      reader.check_keys(v, w, {"filename", "inline_string"});
      if (auto f = v["filename"]) reader.get_string(f, w + ".filename", p.local_jwks_filename);
      if (auto s = v["inline_string"])
        reader.get_string(s, w + ".inline_string", p.local_jwks_inline);
      if (p.local_jwks_filename.empty() == p.local_jwks_inline.empty())
        reader.error(v, w + " needs one of filename or inline_string");
    }
  }
  if (auto v = n["remote_jwks"]) {
    ++sources;
    p.remote = true;
    const std::string w = where + ".remote_jwks";
    if (reader.is_map(v, w)) {
      reader.check_keys(v, w, {"http_uri", "cache_duration"});
      if (auto c = v["cache_duration"])
        reader.get_duration(c, w + ".cache_duration", p.cache_duration);
      const YAML::Node h = v["http_uri"];
      if (!h) {
        reader.error(v, w + " needs http_uri: { uri, cluster, timeout }");
      } else if (reader.is_map(h, w + ".http_uri")) {
        reader.check_keys(h, w + ".http_uri", {"uri", "cluster", "timeout"});
        if (auto u = h["uri"]) {
          if (reader.get_string(u, w + ".http_uri.uri", p.remote_uri) &&
              !split_uri(p.remote_uri, p.remote_host, p.remote_path)) {
            reader.error(u, w + ".http_uri.uri must be http://host[:port]/path");
          }
        } else {
          reader.error(h, w + ".http_uri needs a uri");
        }
        if (auto c = h["cluster"]) {
          reader.get_string(c, w + ".http_uri.cluster", p.remote_cluster);
          p.remote_cluster_origin = reader.origin(c);
        } else {
          reader.error(h, w + ".http_uri needs a cluster");
        }
        if (auto t = h["timeout"])
          reader.get_duration(t, w + ".http_uri.timeout", p.remote_timeout);
      }
    }
  }
  if (sources != 1) reader.error(n, where + " needs exactly one of local_jwks or remote_jwks");
  if (auto v = n["from_headers"]) {
    if (reader.is_seq(v, where + ".from_headers")) {
      for (size_t i = 0; i < v.size(); ++i) {
        const std::string w = fmt::format("{}.from_headers[{}]", where, i);
        if (!reader.is_map(v[i], w)) continue;
        reader.check_keys(v[i], w, {"name", "value_prefix"});
        FromHeader f;
        parse_header_name(v[i]["name"], w + ".name", reader, f.name);
        if (auto pre = v[i]["value_prefix"])
          reader.get_string(pre, w + ".value_prefix", f.value_prefix);
        p.from_headers.push_back(std::move(f));
      }
    }
  }
  if (auto v = n["from_params"]) reader.get_strings(v, where + ".from_params", p.from_params);
  if (auto v = n["from_cookies"]) reader.get_strings(v, where + ".from_cookies", p.from_cookies);
  if (p.from_headers.empty() && p.from_params.empty() && p.from_cookies.empty())
    p.from_headers.push_back({"authorization", "Bearer "});
  if (auto v = n["forward"]) reader.get_bool(v, where + ".forward", p.forward);
  if (auto v = n["claim_to_headers"]) {
    if (reader.is_seq(v, where + ".claim_to_headers")) {
      for (size_t i = 0; i < v.size(); ++i) {
        const std::string w = fmt::format("{}.claim_to_headers[{}]", where, i);
        if (!reader.is_map(v[i], w)) continue;
        reader.check_keys(v[i], w, {"claim_name", "header_name"});
        std::string claim, header;
        reader.get_string(v[i]["claim_name"], w + ".claim_name", claim);
        parse_header_name(v[i]["header_name"], w + ".header_name", reader, header);
        p.claim_to_headers.emplace_back(claim, header);
      }
    }
  }
  if (auto v = n["forward_payload_header"])
    parse_header_name(v, where + ".forward_payload_header", reader, p.forward_payload_header);
  if (auto v = n["clock_skew_seconds"]) {
    uint32_t skew = 60;
    if (reader.get_count(v, where + ".clock_skew_seconds", skew, 0, 3600))
      p.clock_skew_seconds = skew;
  }
}

bool parse_requirement(const YAML::Node& n, const std::string& where, const Config& c,
                       config::Reader& reader, Requirement& out) {
  if (!reader.is_map(n, where)) return false;
  if (n.size() != 1) {
    reader.error(n, where +
                        " needs exactly one of provider_name, provider_and_audiences, "
                        "requires_any, requires_all, allow_missing, allow_missing_or_failed");
    return false;
  }
  const std::string key = n.begin()->first.Scalar();
  const YAML::Node v = n.begin()->second;
  auto provider = [&](const YAML::Node& name_node, const std::string& w) {
    std::string name;
    if (!reader.get_string(name_node, w, name)) return false;
    const int i = provider_index(c, name);
    if (i < 0) {
      reader.error(name_node, fmt::format("{}: no provider named '{}'", w, name));
      return false;
    }
    out.provider = static_cast<size_t>(i);
    return true;
  };
  if (key == "provider_name") {
    out.kind = Requirement::Kind::kProvider;
    return provider(v, where + ".provider_name");
  }
  if (key == "provider_and_audiences") {
    const std::string w = where + ".provider_and_audiences";
    if (!reader.is_map(v, w)) return false;
    reader.check_keys(v, w, {"provider_name", "audiences"});
    out.kind = Requirement::Kind::kProvider;
    if (auto a = v["audiences"]) reader.get_strings(a, w + ".audiences", out.audiences);
    return provider(v["provider_name"], w + ".provider_name");
  }
  if (key == "requires_any" || key == "requires_all") {
    const std::string w = where + "." + key;
    out.kind = key == "requires_any" ? Requirement::Kind::kAny : Requirement::Kind::kAll;
    if (!reader.is_map(v, w)) return false;
    reader.check_keys(v, w, {"requirements"});
    const YAML::Node list = v["requirements"];
    if (!reader.is_seq(list, w + ".requirements")) return false;
    if (list.size() < 2) reader.error(list, w + ".requirements needs two or more entries");
    for (size_t i = 0; i < list.size(); ++i) {
      Requirement child;
      if (parse_requirement(list[i], fmt::format("{}.requirements[{}]", w, i), c, reader, child))
        out.children.push_back(std::move(child));
    }
    return true;
  }
  if (key == "allow_missing" || key == "allow_missing_or_failed") {
    out.kind = key == "allow_missing" ? Requirement::Kind::kAllowMissing
                                      : Requirement::Kind::kAllowMissingOrFailed;
    return true;
  }
  reader.error(n.begin()->first, fmt::format("{}: unknown requirement '{}'", where, key));
  return false;
}

void parse_rule(const YAML::Node& n, const std::string& where, const Config& c,
                config::Reader& reader, Rule& r) {
  if (!reader.is_map(n, where)) return;
  reader.check_keys(n, where, {"match", "requires"});
  const YAML::Node m = n["match"];
  if (!m) {
    reader.error(n, where + " needs a match: { prefix } or { path }");
  } else if (reader.is_map(m, where + ".match")) {
    reader.check_keys(m, where + ".match", {"prefix", "path"});
    if (auto v = m["prefix"]) reader.get_string(v, where + ".match.prefix", r.prefix);
    if (auto v = m["path"]) reader.get_string(v, where + ".match.path", r.path);
    if (m["prefix"].IsDefined() == m["path"].IsDefined())
      reader.error(m, where + ".match needs one of prefix or path");
  }
  if (auto v = n["requires"]) {
    r.has_requires = parse_requirement(v, where + ".requires", c, reader, r.requirement);
  }
}

}  // namespace

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader) {
  auto c = std::make_shared<Config>();
  if (!node || !node.IsMap()) {
    reader.error(node, "the jwt_authn filter needs a config mapping");
    return c;
  }
  c->origin = reader.origin(node);
  if (!node["providers"]) {
    // A route's override.
    c->per_route = true;
    reader.check_keys(node, "jwt_authn (per route)", {"disabled", "requirement_name"});
    if (auto v = node["disabled"]) reader.get_bool(v, "jwt_authn.disabled", c->disabled);
    if (auto v = node["requirement_name"])
      reader.get_string(v, "jwt_authn.requirement_name", c->requirement_name);
    if (c->disabled == !c->requirement_name.empty())
      reader.error(node,
                   "jwt_authn needs providers (on a listener), or one of disabled: true and "
                   "requirement_name (on a route)");
    return c;
  }
  reader.check_keys(node, "jwt_authn", {"providers", "rules", "requirement_map"});
  const YAML::Node providers = node["providers"];
  if (reader.is_map(providers, "jwt_authn.providers")) {
    for (auto it = providers.begin(); it != providers.end(); ++it) {
      Provider p;
      p.name = it->first.Scalar();
      parse_provider(it->second, p, reader);
      c->providers.push_back(std::move(p));
    }
    if (c->providers.empty()) reader.error(providers, "jwt_authn.providers is empty");
  }
  if (auto rules = node["rules"]; rules && reader.is_seq(rules, "jwt_authn.rules")) {
    for (size_t i = 0; i < rules.size(); ++i) {
      Rule r;
      parse_rule(rules[i], fmt::format("jwt_authn.rules[{}]", i), *c, reader, r);
      c->rules.push_back(std::move(r));
    }
  }
  if (auto map = node["requirement_map"]; map && reader.is_map(map, "jwt_authn.requirement_map")) {
    for (auto it = map.begin(); it != map.end(); ++it) {
      Requirement r;
      const std::string name = it->first.Scalar();
      if (parse_requirement(it->second, "jwt_authn.requirement_map." + name, *c, reader, r))
        c->requirement_map.emplace_back(name, std::move(r));
    }
  }
  return c;
}

}  // namespace sidecar::filters::jwt_authn
