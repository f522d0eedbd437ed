#include "filters/string_match.h"

#include <fmt/format.h>
#include <re2/re2.h>

namespace sidecar::filters {
namespace {

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

}  // namespace

bool parse_string_match(const YAML::Node& n, const std::string& where, config::Reader& reader,
                        StringMatch& out, bool allow_present) {
  int kinds = 0;
  static constexpr std::pair<std::string_view, StringMatch::Kind> kKinds[] = {
      {"exact", StringMatch::Kind::kExact},      {"prefix", StringMatch::Kind::kPrefix},
      {"suffix", StringMatch::Kind::kSuffix},    {"contains", StringMatch::Kind::kContains},
      {"safe_regex", StringMatch::Kind::kRegex}, {"present", StringMatch::Kind::kPresent},
  };
  for (const auto& [key, kind] : kKinds) {
    const YAML::Node v = n[std::string(key)];
    if (!v) continue;
    ++kinds;
    out.kind = kind;
    const std::string w = where + "." + std::string(key);
    if (kind == StringMatch::Kind::kPresent) {
      bool present = false;
      reader.get_bool(v, w, present);
      if (!allow_present) reader.error(v, w + ": present is for headers and claims");
    } else if (kind == StringMatch::Kind::kRegex) {
      if (reader.is_map(v, w)) {
        reader.check_keys(v, w, {"regex"});
        if (reader.get_string(v["regex"], w + ".regex", out.value)) {
          auto re = std::make_shared<re2::RE2>(out.value, re2::RE2::Quiet);
          if (!re->ok()) {
            reader.error(v["regex"], fmt::format("{}.regex: {}", w, re->error()));
          } else {
            out.regex = std::move(re);
          }
        }
      }
    } else {
      reader.get_string(v, w, out.value);
    }
  }
  if (auto v = n["ignore_case"]) reader.get_bool(v, where + ".ignore_case", out.ignore_case);
  if (out.ignore_case)
    for (char& c : out.value) c = lower(c);
  if (kinds != 1) {
    reader.error(n, where + " needs one of exact, prefix, suffix, contains, safe_regex" +
                        (allow_present ? ", present" : ""));
    return false;
  }
  return true;
}

bool StringMatch::matches(std::string_view s) const {
  std::string folded;
  if (ignore_case) {
    folded.assign(s);
    for (char& c : folded) c = lower(c);
    s = folded;
  }
  switch (kind) {
    case Kind::kExact:
      return s == value;
    case Kind::kPrefix:
      return s.starts_with(value);
    case Kind::kSuffix:
      return s.ends_with(value);
    case Kind::kContains:
      return s.find(value) != std::string_view::npos;
    case Kind::kRegex:
      return regex && re2::RE2::FullMatch(s, *regex);
    case Kind::kPresent:
      return true;
  }
  return false;
}

}  // namespace sidecar::filters
