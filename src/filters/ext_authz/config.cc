#include "filters/ext_authz/config.h"

#include <fmt/format.h>

#include "http/http1_parser.h"

namespace sidecar::filters::ext_authz {
namespace {

void parse_patterns(const YAML::Node& n, const std::string& where, config::Reader& reader,
                    std::vector<StringMatch>& out) {
  if (!reader.is_map(n, where)) return;
  reader.check_keys(n, where, {"patterns"});
  const YAML::Node list = n["patterns"];
  if (!reader.is_seq(list, where + ".patterns")) return;
  for (size_t i = 0; i < list.size(); ++i) {
    StringMatch m;
    const std::string w = fmt::format("{}.patterns[{}]", where, i);
    if (!reader.is_map(list[i], w)) continue;
    reader.check_keys(list[i], w,
                      {"exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"});
    // Field names are case-insensitive: compare in lower case.
    m.ignore_case = true;
    if (parse_string_match(list[i], w, reader, m, false)) {
      m.ignore_case = true;
      for (char& c : m.value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.push_back(std::move(m));
    }
  }
}

bool valid_name(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n) {
    if (!http::is_tchar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader) {
  auto c = std::make_shared<Config>();
  if (!node || !node.IsMap()) {
    reader.error(node, "the ext_authz filter needs a config mapping");
    return c;
  }
  if (!node["http_service"]) {
    reader.check_keys(node, "ext_authz (per route)", {"disabled"});
    if (auto v = node["disabled"]) reader.get_bool(v, "ext_authz.disabled", c->disabled);
    if (!c->disabled)
      reader.error(node, "ext_authz needs http_service (or, on a route, disabled: true)");
    return c;
  }
  reader.check_keys(node, "ext_authz",
                    {"http_service", "failure_mode_allow", "status_on_error", "with_request_body"});
  if (auto v = node["with_request_body"]; v && reader.is_map(v, "ext_authz.with_request_body")) {
    const std::string w = "ext_authz.with_request_body";
    reader.check_keys(v, w, {"max_request_bytes", "allow_partial_message", "pack_as_bytes"});
    c->with_request_body = true;
    if (auto m = v["max_request_bytes"])
      reader.get_size32(m, w + ".max_request_bytes", c->max_request_bytes, 1, 64 * 1024 * 1024);
    if (auto a = v["allow_partial_message"])
      reader.get_bool(a, w + ".allow_partial_message", c->allow_partial_message);
    if (auto b = v["pack_as_bytes"]) reader.get_bool(b, w + ".pack_as_bytes", c->pack_as_bytes);
  }
  if (auto v = node["failure_mode_allow"])
    reader.get_bool(v, "ext_authz.failure_mode_allow", c->failure_mode_allow);
  if (auto v = node["status_on_error"]; v && reader.is_map(v, "ext_authz.status_on_error")) {
    reader.check_keys(v, "ext_authz.status_on_error", {"code"});
    uint32_t code = 403;
    if (reader.get_count(v["code"], "ext_authz.status_on_error.code", code, 200, 599))
      c->status_on_error = static_cast<int>(code);
  }
  const YAML::Node s = node["http_service"];
  const std::string w = "ext_authz.http_service";
  if (!reader.is_map(s, w)) return c;
  reader.check_keys(
      s, w, {"server_uri", "path_prefix", "authorization_request", "authorization_response"});
  if (auto u = s["server_uri"]; !u) {
    reader.error(s, w + " needs server_uri: { uri, cluster, timeout }");
  } else if (reader.is_map(u, w + ".server_uri")) {
    reader.check_keys(u, w + ".server_uri", {"uri", "cluster", "timeout"});
    std::string uri;
    if (reader.get_string(u["uri"], w + ".server_uri.uri", uri)) {
      const size_t scheme = uri.find("://");
      if (scheme == std::string::npos) {
        reader.error(u["uri"], w + ".server_uri.uri must be http://host[:port]");
      } else {
        c->host = uri.substr(scheme + 3);
        c->host = c->host.substr(0, c->host.find('/'));
      }
    }
    if (reader.get_string(u["cluster"], w + ".server_uri.cluster", c->cluster))
      c->cluster_origin = reader.origin(u["cluster"]);
    if (auto t = u["timeout"]) reader.get_duration(t, w + ".server_uri.timeout", c->timeout);
  }
  if (auto v = s["path_prefix"]) {
    if (reader.get_string(v, w + ".path_prefix", c->path_prefix) && !c->path_prefix.empty() &&
        c->path_prefix[0] != '/') {
      reader.error(v, w + ".path_prefix must start with /");
    }
  }
  if (auto r = s["authorization_request"]; r && reader.is_map(r, w + ".authorization_request")) {
    const std::string rw = w + ".authorization_request";
    reader.check_keys(r, rw, {"allowed_headers", "headers_to_add"});
    if (auto v = r["allowed_headers"])
      parse_patterns(v, rw + ".allowed_headers", reader, c->allowed_headers);
    if (auto v = r["headers_to_add"]; v && reader.is_seq(v, rw + ".headers_to_add")) {
      for (size_t i = 0; i < v.size(); ++i) {
        const std::string iw = fmt::format("{}.headers_to_add[{}]", rw, i);
        if (!reader.is_map(v[i], iw)) continue;
        reader.check_keys(v[i], iw, {"key", "value"});
        std::string key, value;
        reader.get_string(v[i]["key"], iw + ".key", key);
        reader.get_string(v[i]["value"], iw + ".value", value);
        if (!valid_name(key)) reader.error(v[i], iw + ": the key is not a field name");
        for (char ch : value) {
          if (static_cast<unsigned char>(ch) < 0x20 && ch != '\t') {
            reader.error(v[i], iw + ": control characters in the value");
            break;
          }
        }
        c->headers_to_add.emplace_back(key, value);
      }
    }
  }
  if (auto r = s["authorization_response"]; r && reader.is_map(r, w + ".authorization_response")) {
    const std::string rw = w + ".authorization_response";
    reader.check_keys(r, rw, {"allowed_upstream_headers", "allowed_client_headers"});
    if (auto v = r["allowed_upstream_headers"])
      parse_patterns(v, rw + ".allowed_upstream_headers", reader, c->allowed_upstream_headers);
    if (auto v = r["allowed_client_headers"])
      parse_patterns(v, rw + ".allowed_client_headers", reader, c->allowed_client_headers);
  }
  return c;
}

}  // namespace sidecar::filters::ext_authz
