// Minimal JSON output helpers (the admin endpoint and the access log write
// JSON by appending to a string; nothing here parses).
#pragma once

#include <string>
#include <string_view>

namespace sidecar::core {

// Appends `s` as a JSON string literal, quotes included (RFC 8259 7):
// quote, backslash and control characters are escaped; other bytes as is.
void append_json_string(std::string& out, std::string_view s);

// Whether `s` is, whole, a JSON number [RFC 8259 6]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?  (no range check).
bool is_json_number(std::string_view s);

}  // namespace sidecar::core
