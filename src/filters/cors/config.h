// Config of the `cors` filter (Envoy's CorsPolicy; the Fetch standard's CORS
// protocol; docs/security.md):
//
//   filters:
//     - name: cors
//       config:
//         allow_origin_string_match: [ { exact: "https://app.example" }, { suffix: ".example.com" }
//         ] allow_methods: "GET, POST, PUT" allow_headers: "content-type, authorization"
//         expose_headers: "x-request-id"
//         max_age: "600"
//         allow_credentials: true
//
// Per route (typed_per_filter_config): the same mapping (it replaces the
// listener's), or { disabled: true }.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/registry.h"
#include "filters/string_match.h"

namespace sidecar::filters::cors {

struct Config {
  bool disabled = false;
  std::vector<StringMatch> allow_origins;  // { exact: "*" } allows every origin
  std::string allow_methods;
  std::string allow_headers;
  std::string expose_headers;
  std::string max_age;  // seconds, as text
  bool allow_credentials = false;
};

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

}  // namespace sidecar::filters::cors
