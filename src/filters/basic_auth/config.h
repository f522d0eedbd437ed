// Config of the `basic_auth` filter (docs/security.md; Envoy's basic_auth
// names):
//
//   filters:
//     - name: basic_auth
//       config:
//         users: { filename: /etc/sidecar/htpasswd }  # or { inline_string: "alice:$2y$..." }
//         forward_username_header: x-user             # the user, for the app
//         realm: api                                  # WWW-Authenticate realm
//         forward: false                              # strip Authorization (default)
//
// Per route (typed_per_filter_config): { disabled: true }.
#pragma once

#include <memory>
#include <string>

#include "config/registry.h"

namespace sidecar::filters::basic_auth {

struct Config {
  bool disabled = false;
  std::string users_file;               // re-read when it changes
  std::string users_inline;             // the htpasswd text itself
  std::string forward_username_header;  // lower case; "" sends none
  std::string realm = "sidecar";
  bool forward = false;
};

// The registered parser; an inline or file user list that does not parse
// (plaintext or an unsupported hash) is a config error at its node.
std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

}  // namespace sidecar::filters::basic_auth
