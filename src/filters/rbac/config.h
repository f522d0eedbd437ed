// Config of the `rbac` filter (Envoy's envoy.filters.http.rbac, the model of
// Istio's AuthorizationPolicy; docs/security.md):
//
//   filters:
//     - name: rbac
//       config:
//         rules:
//           action: DENY                      # ALLOW | DENY
//           policies:
//             no-bob:
//               principals: [ { jwt_claim: { name: sub, exact: bob } } ]
//               permissions: [ { any: true } ]
//         shadow_rules: { action: ALLOW, policies: {...} }   # only counted and logged
//
// Principals: any, source_ip / remote_ip ("10.0.0.0/8" or
// { address_prefix, prefix_len }), authenticated { principal_name: <string
// match> } (the TLS peer's URI SAN, DNS SAN or subject), jwt_claim { name:
// <path>, <string match> } (claims published by jwt_authn), header,
// and_ids { ids }, or_ids { ids }, not_id.
// Permissions: any, methods [GET, ...], url_path { path: <string match> },
// header { name, <string match> | present } (":authority", ":method" and
// ":path" name the request's), destination_port <port> (the listener's
// port, FilterCallbacks::local_port), destination_port_range { start, end }
// (end exclusive, as Envoy), and_rules { rules }, or_rules { rules },
// not_rule.
// A string match is one of exact, prefix, suffix, contains, safe_regex:
// { regex } (RE2), with ignore_case.
//
// Per route (typed_per_filter_config): the same mapping, or { disabled: true }.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/registry.h"
#include "filters/string_match.h"

namespace sidecar::filters::rbac {

using filters::StringMatch;

struct Cidr {
  std::array<uint8_t, 16> bytes{};
  bool v6 = false;
  uint32_t prefix_len = 0;
  bool contains(std::string_view ip) const;
};

// A principal or a permission: one node of a tree.
struct Matcher {
  enum class Kind {
    kAny,
    kAnd,
    kOr,
    kNot,
    kSourceIp,
    kAuthenticated,
    kJwtClaim,
    kHeader,
    kMethods,
    kUrlPath,
    kDestinationPort,  // destination_port, destination_port_range
  };
  Kind kind = Kind::kAny;
  std::vector<Matcher> children;  // kAnd, kOr, kNot (one)
  Cidr cidr;
  std::string name;                  // header name or claim path
  std::optional<StringMatch> match;  // kAuthenticated without it: any peer certificate
  std::vector<std::string> methods;
  uint32_t port_start = 0, port_end = 0;  // kDestinationPort: [start, end)
};

struct Policy {
  std::string name;
  std::vector<Matcher> principals;   // any of
  std::vector<Matcher> permissions;  // any of
};

struct Rules {
  bool present = false;
  bool allow = true;  // action ALLOW (else DENY)
  std::vector<Policy> policies;
};

struct Config {
  Rules rules;
  Rules shadow_rules;
  bool disabled = false;  // a route's { disabled: true }
};

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

}  // namespace sidecar::filters::rbac
