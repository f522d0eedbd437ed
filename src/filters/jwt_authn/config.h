// Config of the `jwt_authn` filter (Envoy's JwtAuthentication; docs/security.md):
//
//   filters:
//     - name: jwt_authn
//       config:
//         providers:
//           main:
//             issuer: https://issuer.example
//             audiences: [ api ]
//             local_jwks: { filename: /etc/jwks.json }   # or { inline_string: '{"keys":[..]}' }
//             # remote_jwks: { http_uri: { uri: https://idp/jwks, cluster: idp, timeout: 1s },
//             #                cache_duration: 5m }
//             from_headers: [ { name: Authorization, value_prefix: "Bearer " } ]   # default
//             from_params: [ access_token ]
//             from_cookies: [ session ]
//             forward: false                           # strip the token (default)
//             claim_to_headers: [ { claim_name: sub, header_name: x-user } ]
//             forward_payload_header: x-jwt-payload
//             clock_skew_seconds: 60
//         rules:
//           - match: { prefix: /api }
//             requires: { provider_name: main }
//         requirement_map: { admin: { provider_and_audiences: { provider_name: main, audiences:
//         [admin] } } }
//
// Per route (typed_per_filter_config): `jwt_authn: { disabled: true }` or
// `jwt_authn: { requirement_name: admin }`.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/registry.h"

namespace sidecar::filters::jwt_authn {

struct FromHeader {
  std::string name;
  std::string value_prefix;
};

struct Provider {
  std::string name;
  std::string issuer;                  // "" accepts any iss
  std::vector<std::string> audiences;  // empty accepts any aud
  // Keys: exactly one of a file, inline text, or a remote JWKS.
  std::string local_jwks_filename;
  std::string local_jwks_inline;
  bool remote = false;
  std::string remote_uri;             // for the log and Host
  std::string remote_cluster;         // the config cluster the JWKS is fetched through
  std::string remote_cluster_origin;  // "FILE:LINE:COL", for the validator
  std::string remote_host;            // Host sent
  std::string remote_path;            // origin-form path
  config::Duration remote_timeout{1000};
  config::Duration cache_duration{5 * 60 * 1000};
  std::vector<FromHeader> from_headers;  // default Authorization: "Bearer "
  std::vector<std::string> from_params;
  std::vector<std::string> from_cookies;
  bool forward = false;
  std::vector<std::pair<std::string, std::string>> claim_to_headers;  // claim path, header
  std::string forward_payload_header;
  int64_t clock_skew_seconds = 60;
};

// Envoy's JwtRequirement.
struct Requirement {
  enum class Kind { kProvider, kAny, kAll, kAllowMissing, kAllowMissingOrFailed };
  Kind kind = Kind::kProvider;
  size_t provider = 0;                 // index into Config::providers (kProvider)
  std::vector<std::string> audiences;  // provider_and_audiences: these instead of the provider's
  std::vector<Requirement> children;   // kAny, kAll
};

struct Rule {
  std::string prefix;  // path starts with
  std::string path;    // path (without query) equals
  bool has_requires = false;
  Requirement requirement;
};

struct Config {
  std::vector<Provider> providers;
  std::vector<Rule> rules;  // first match wins; no match: no check
  std::vector<std::pair<std::string, Requirement>> requirement_map;
  // A route's override (typed_per_filter_config): only these are set.
  bool per_route = false;
  bool disabled = false;
  std::string requirement_name;  // a key of the listener's requirement_map
  std::string origin;            // "FILE:LINE:COL" of this config

  const Requirement* requirement(std::string_view name) const {
    for (const auto& [n, r] : requirement_map) {
      if (n == name) return &r;
    }
    return nullptr;
  }
};

// The registered parser; returns a Config. One parser serves both places (the
// loader has one per filter name): a mapping with `providers` is a listener's
// config, one with `disabled` or `requirement_name` a route's (per_route).
std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

}  // namespace sidecar::filters::jwt_authn
