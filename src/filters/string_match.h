// String matchers of filter configs (Envoy's StringMatcher): exact, prefix,
// suffix, contains, safe_regex (RE2, linear time), with ignore_case; and
// "present" where a header or claim only has to exist.
//
// Thread safety: immutable after parsing; matches() is const.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "config/reader.h"

namespace re2 {
class RE2;
}

namespace sidecar::filters {

struct StringMatch {
  enum class Kind { kExact, kPrefix, kSuffix, kContains, kRegex, kPresent };
  Kind kind = Kind::kExact;
  std::string value;
  bool ignore_case = false;
  std::shared_ptr<const re2::RE2> regex;
  bool matches(std::string_view s) const;
};

// Parses `n` (a mapping with one of the kinds, and ignore_case) into `out`;
// errors go to `reader`. `allow_present` accepts { present: true }.
bool parse_string_match(const YAML::Node& n, const std::string& where, config::Reader& reader,
                        StringMatch& out, bool allow_present);

}  // namespace sidecar::filters
