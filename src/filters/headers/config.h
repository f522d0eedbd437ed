// Config of the `headers` filter (Envoy's request_headers_to_add/remove and
// response_headers_to_add/remove, config.core.v3.HeaderValueOption):
//
//   filters:
//     - name: headers
//       config:
//         request_headers_to_add:
//           - { name: x-team, value: payments }
//           - { name: x-real-ip, value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
//               append_action: OVERWRITE_IF_EXISTS_OR_ADD }
//         request_headers_to_remove: [ x-debug ]
//         response_headers_to_add:
//           - { name: x-upstream, value: "%UPSTREAM_HOST%" }
//         response_headers_to_remove: [ server ]
//
// Values are Envoy's substitution formats: literal text with %OPERATOR%
// variables (the access log's operators, parsed by config::parse_log_format,
// so a name means the same in both places); "%%" is a literal '%'.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/access_log_format.h"
#include "config/registry.h"

namespace sidecar::filters::headers {

// Envoy's HeaderValueOption.HeaderAppendAction.
enum class AppendAction : uint8_t {
  kAppendIfExistsOrAdd,     // APPEND_IF_EXISTS_OR_ADD (default): one more field line
  kAddIfAbsent,             // ADD_IF_ABSENT: only when no field of that name was received
  kOverwriteIfExistsOrAdd,  // OVERWRITE_IF_EXISTS_OR_ADD: replaces the received ones, or adds
  kOverwriteIfExists,       // OVERWRITE_IF_EXISTS: replaces the received ones; nothing if none
};

struct HeaderToAdd {
  std::string name;
  std::vector<config::LogToken> value;  // literals and variables, parsed at load
  AppendAction action = AppendAction::kAppendIfExistsOrAdd;
  // Envoy's keep_empty_value: false = a value that renders empty (a missing
  // %REQ(x)%, %UPSTREAM_HOST% on the request path) adds nothing.
  bool keep_empty_value = false;
};

struct Config {
  std::vector<HeaderToAdd> request_add;
  std::vector<std::string> request_remove;
  std::vector<HeaderToAdd> response_add;
  std::vector<std::string> response_remove;
};

// The registered parser: validates names as tokens and literal parts of
// values as field values [RFC 9110 5.5], so a config cannot smuggle a line
// break; an unknown variable, or one the filter cannot know (%DURATION%),
// is an error at its position.
std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

}  // namespace sidecar::filters::headers
