// Config of the `ext_authz` filter (Envoy's envoy.filters.http.ext_authz,
// its HTTP service; docs/security.md):
//
//   filters:
//     - name: ext_authz
//       config:
//         http_service:
//           server_uri: { uri: "http://authz.local/check", cluster: authz, timeout: 200ms }
//           path_prefix: /check                 # prepended to the request's path
//           authorization_request:
//             allowed_headers: { patterns: [ { exact: cookie }, { prefix: x-user- } ] }
//             headers_to_add: [ { key: x-from, value: sidecar } ]
//           authorization_response:
//             allowed_upstream_headers: { patterns: [ { exact: x-user-id } ] }
//             allowed_client_headers: { patterns: [ { exact: www-authenticate } ] }
//         failure_mode_allow: false
//         with_request_body: { max_request_bytes: 8KiB, allow_partial_message: false,
//         pack_as_bytes: false } status_on_error: { code: 403 }
//
// Per route (typed_per_filter_config): `ext_authz: { disabled: true }`.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/registry.h"
#include "filters/string_match.h"

namespace sidecar::filters::ext_authz {

struct Config {
  bool disabled = false;  // a route's override
  std::string cluster;
  std::string cluster_origin;  // "FILE:LINE:COL", for the validator
  std::string host;            // Host of the check request: the uri's authority
  std::string path_prefix;
  config::Duration timeout{200};
  // Request headers sent to the service besides Host, Method and Path's
  // own and Authorization (always sent, as Envoy does).
  std::vector<StringMatch> allowed_headers;
  std::vector<std::pair<std::string, std::string>> headers_to_add;
  // The service's response headers copied onto the upstream request (on 200).
  std::vector<StringMatch> allowed_upstream_headers;
  // The service's response headers sent to the client with a denial; none
  // configured: all but hop-by-hop and framing fields.
  std::vector<StringMatch> allowed_client_headers;
  bool failure_mode_allow = false;
  int status_on_error = 403;
  // with_request_body (Envoy's BufferSettings): the request body, up to
  // max_request_bytes, is the check request's body. Longer bodies get 413
  // unless allow_partial_message (then the first max_request_bytes go).
  // pack_as_bytes only changes Envoy's gRPC check message; accepted, and
  // the HTTP check carries the bytes as they are either way.
  bool with_request_body = false;
  uint32_t max_request_bytes = 8192;
  bool allow_partial_message = false;
  bool pack_as_bytes = false;
};

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

}  // namespace sidecar::filters::ext_authz
