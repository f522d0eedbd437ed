// Config of the `api_key` filter (docs/security.md):
//
//   filters:
//     - name: api_key
//       config:
//         keys_file: /etc/sidecar/api-keys   # "client: key" or "client: sha256:<hex>" per line
//         from_headers: [ x-api-key ]        # default
//         from_params: [ api_key ]
//         client_header: x-client-name       # the matched client, for the app
//         forward: false                     # strip the key (default)
//
// Per route (typed_per_filter_config): { disabled: true }.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/registry.h"

namespace sidecar::filters::api_key {

struct Config {
  bool disabled = false;
  std::string keys_file;
  std::vector<std::string> from_headers;  // lower case
  std::vector<std::string> from_params;
  std::string client_header;  // lower case; "" sends none
  bool forward = false;
};

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

}  // namespace sidecar::filters::api_key
