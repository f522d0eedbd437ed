// Config of the `headers` filter (Envoy's request_headers_to_add/remove and
// response_headers_to_add/remove):
//
//   filters:
//     - name: headers
//       config:
//         request_headers_to_add:  [ { name: x-team, value: payments } ]
//         request_headers_to_remove: [ x-debug ]
//         response_headers_to_add: [ { name: strict-transport-security, value: "max-age=31536000" }
//         ] response_headers_to_remove: [ server ]
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/registry.h"

namespace sidecar::filters::headers {

struct Config {
  std::vector<std::pair<std::string, std::string>> request_add;
  std::vector<std::string> request_remove;
  std::vector<std::pair<std::string, std::string>> response_add;
  std::vector<std::string> response_remove;
};

// The registered parser: validates names as tokens and values as field
// values [RFC 9110 5.5], so a config cannot smuggle a line break.
std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

}  // namespace sidecar::filters::headers
