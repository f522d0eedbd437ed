#include "filters/rbac/config.h"

#include <arpa/inet.h>

#include <cstring>

#include <fmt/format.h>

namespace sidecar::filters::rbac {
namespace {

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool parse_ip(std::string_view text, std::array<uint8_t, 16>& out, bool& v6) {
  const std::string s(text);
  if (inet_pton(AF_INET, s.c_str(), out.data()) == 1) {
    v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), out.data()) == 1) {
    v6 = true;
    return true;
  }
  return false;
}

void parse_cidr(const YAML::Node& n, const std::string& where, config::Reader& reader, Cidr& out) {
  std::string address;
  uint32_t len = 0;
  bool has_len = false;
  if (n.IsScalar()) {
    address = n.Scalar();
    const size_t slash = address.find('/');
    if (slash != std::string::npos) {
      has_len = true;
      try {
        len = static_cast<uint32_t>(std::stoul(address.substr(slash + 1)));
      } catch (...) {
        len = 999;
      }
      address.resize(slash);
    }
  } else if (reader.is_map(n, where)) {
    reader.check_keys(n, where, {"address_prefix", "prefix_len"});
    reader.get_string(n["address_prefix"], where + ".address_prefix", address);
    if (auto l = n["prefix_len"]) has_len = reader.get_count(l, where + ".prefix_len", len, 0, 128);
  } else {
    return;
  }
  if (!parse_ip(address, out.bytes, out.v6)) {
    reader.error(n, fmt::format("{}: '{}' is not an IP address", where, address));
    return;
  }
  const uint32_t max = out.v6 ? 128 : 32;
  out.prefix_len = has_len ? len : max;
  if (out.prefix_len > max) reader.error(n, where + ": prefix length out of range");
}

void parse_matcher(const YAML::Node& n, const std::string& where, bool principal,
                   config::Reader& reader, Matcher& out);

void parse_list(const YAML::Node& n, const std::string& where, bool principal,
                config::Reader& reader, std::vector<Matcher>& out) {
  if (!reader.is_seq(n, where)) return;
  if (n.size() == 0) reader.error(n, where + " is empty");
  for (size_t i = 0; i < n.size(); ++i) {
    Matcher m;
    parse_matcher(n[i], fmt::format("{}[{}]", where, i), principal, reader, m);
    out.push_back(std::move(m));
  }
}

void parse_matcher(const YAML::Node& n, const std::string& where, bool principal,
                   config::Reader& reader, Matcher& out) {
  if (!reader.is_map(n, where) || n.size() != 1) {
    if (n.IsMap()) reader.error(n, where + " needs exactly one key");
    return;
  }
  const std::string key = n.begin()->first.Scalar();
  const YAML::Node v = n.begin()->second;
  const std::string w = where + "." + key;
  const std::string_view list_key = principal ? "ids" : "rules";
  if (key == "any") {
    bool any = false;
    reader.get_bool(v, w, any);
    if (!any) reader.error(v, w + " must be true");
    out.kind = Matcher::Kind::kAny;
  } else if (key == (principal ? "and_ids" : "and_rules") ||
             key == (principal ? "or_ids" : "or_rules")) {
    out.kind = key.starts_with("and") ? Matcher::Kind::kAnd : Matcher::Kind::kOr;
    if (reader.is_map(v, w)) {
      reader.check_keys(v, w, {list_key});
      parse_list(v[std::string(list_key)], w + "." + std::string(list_key), principal, reader,
                 out.children);
    }
  } else if (key == (principal ? "not_id" : "not_rule")) {
    out.kind = Matcher::Kind::kNot;
    out.children.emplace_back();
    parse_matcher(v, w, principal, reader, out.children.back());
  } else if (key == "header") {
    out.kind = Matcher::Kind::kHeader;
    if (reader.is_map(v, w)) {
      reader.check_keys(v, w,
                        {"name", "exact", "prefix", "suffix", "contains", "safe_regex", "present",
                         "ignore_case"});
      reader.get_string(v["name"], w + ".name", out.name);
      for (char& c : out.name) c = lower(c);
      YAML::Node rest = YAML::Clone(v);
      rest.remove("name");
      out.match.emplace();
      parse_string_match(rest, w, reader, *out.match, true);
    }
  } else if (principal && (key == "source_ip" || key == "remote_ip" || key == "direct_remote_ip")) {
    out.kind = Matcher::Kind::kSourceIp;
    parse_cidr(v, w, reader, out.cidr);
  } else if (principal && key == "authenticated") {
    out.kind = Matcher::Kind::kAuthenticated;
    if (reader.is_map(v, w)) {
      reader.check_keys(v, w, {"principal_name"});
      if (auto p = v["principal_name"]) {
        out.match.emplace();
        if (reader.is_map(p, w + ".principal_name"))
          parse_string_match(p, w + ".principal_name", reader, *out.match, false);
      }
    }
  } else if (principal && key == "jwt_claim") {
    out.kind = Matcher::Kind::kJwtClaim;
    if (reader.is_map(v, w)) {
      reader.check_keys(v, w,
                        {"name", "exact", "prefix", "suffix", "contains", "safe_regex", "present",
                         "ignore_case"});
      reader.get_string(v["name"], w + ".name", out.name);
      YAML::Node rest = YAML::Clone(v);
      rest.remove("name");
      out.match.emplace();
      parse_string_match(rest, w, reader, *out.match, true);
    }
  } else if (!principal && key == "methods") {
    out.kind = Matcher::Kind::kMethods;
    reader.get_strings(v, w, out.methods);
  } else if (!principal && key == "url_path") {
    out.kind = Matcher::Kind::kUrlPath;
    if (reader.is_map(v, w)) {
      reader.check_keys(v, w, {"path"});
      out.match.emplace();
      if (reader.is_map(v["path"], w + ".path"))
        parse_string_match(v["path"], w + ".path", reader, *out.match, false);
    }
  } else if (!principal && key == "destination_port") {
    out.kind = Matcher::Kind::kDestinationPort;
    if (reader.get_count(v, w, out.port_start, 0, 65535)) out.port_end = out.port_start + 1;
  } else if (!principal && key == "destination_port_range") {
    out.kind = Matcher::Kind::kDestinationPort;
    if (reader.is_map(v, w)) {
      reader.check_keys(v, w, {"start", "end"});
      reader.get_count(v["start"], w + ".start", out.port_start, 0, 65535);
      reader.get_count(v["end"], w + ".end", out.port_end, 0, 65536);
      if (out.port_end <= out.port_start)
        reader.error(v, fmt::format("{}: end must be above start (end is exclusive)", w));
    }
  } else {
    reader.error(n.begin()->first,
                 fmt::format("{}: unknown {} '{}' (expected one of: {})", where,
                             principal ? "principal" : "permission", key,
                             principal ? "any, source_ip, remote_ip, authenticated, jwt_claim, "
                                         "header, and_ids, or_ids, not_id"
                                       : "any, methods, url_path, header, destination_port, "
                                         "destination_port_range, and_rules, or_rules, not_rule"));
  }
}

void parse_rules(const YAML::Node& n, const std::string& where, config::Reader& reader,
                 Rules& out) {
  if (!reader.is_map(n, where)) return;
  out.present = true;
  reader.check_keys(n, where, {"action", "policies"});
  std::string action = "ALLOW";
  if (auto v = n["action"]) reader.get_enum(v, where + ".action", action, {"ALLOW", "DENY"});
  out.allow = action == "ALLOW";
  const YAML::Node policies = n["policies"];
  if (!policies) return;  // no policies: ALLOW denies everything, DENY nothing
  if (!reader.is_map(policies, where + ".policies")) return;
  for (auto it = policies.begin(); it != policies.end(); ++it) {
    Policy p;
    p.name = it->first.Scalar();
    const std::string w = where + ".policies." + p.name;
    const YAML::Node body = it->second;
    if (!reader.is_map(body, w)) continue;
    reader.check_keys(body, w, {"principals", "permissions"});
    if (!body["principals"] || !body["permissions"]) {
      reader.error(body, w + " needs principals and permissions");
      continue;
    }
    parse_list(body["principals"], w + ".principals", true, reader, p.principals);
    parse_list(body["permissions"], w + ".permissions", false, reader, p.permissions);
    out.policies.push_back(std::move(p));
  }
}

}  // namespace

bool Cidr::contains(std::string_view ip) const {
  std::array<uint8_t, 16> b{};
  bool is_v6 = false;
  if (!parse_ip(ip, b, is_v6)) return false;
  if (is_v6 && !v6) {
    // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) matches IPv4 ranges.
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b.data(), kMapped, 12) != 0) return false;
    std::memmove(b.data(), b.data() + 12, 4);
    is_v6 = false;
  }
  if (is_v6 != v6) return false;
  const uint32_t full = prefix_len / 8;
  if (std::memcmp(b.data(), bytes.data(), full) != 0) return false;
  const uint32_t rest = prefix_len % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (b[full] & mask) == (bytes[full] & mask);
}

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader) {
  auto c = std::make_shared<Config>();
  if (!node || !node.IsMap()) {
    reader.error(node, "the rbac filter needs a config mapping");
    return c;
  }
  reader.check_keys(node, "rbac", {"rules", "shadow_rules", "disabled"});
  if (auto v = node["disabled"]) reader.get_bool(v, "rbac.disabled", c->disabled);
  if (auto v = node["rules"]) parse_rules(v, "rbac.rules", reader, c->rules);
  if (auto v = node["shadow_rules"]) parse_rules(v, "rbac.shadow_rules", reader, c->shadow_rules);
  if (!c->disabled && !c->rules.present && !c->shadow_rules.present)
    reader.error(node, "rbac needs rules or shadow_rules (or, on a route, disabled: true)");
  return c;
}

}  // namespace sidecar::filters::rbac
