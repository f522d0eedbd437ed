// Shared checks of the log parser fuzz targets: the pipeline hands parsers
// valid UTF-8 (invalid bytes replaced) followed by padding; whatever a parser
// accepts must re-encode as valid JSON, and a rejected line adds nothing.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "logship/parsers.h"
#include "logship/record.h"

namespace logs_fuzz {

using namespace sidecar::logship;

inline void check(bool ok) {
  if (!ok) std::abort();
}

// The input as the pipeline would give it: UTF-8 fixed, padded.
struct Line {
  Line(const uint8_t* data, size_t size) {
    append_utf8_replacing(text, std::string_view(reinterpret_cast<const char*>(data), size));
    length = text.size();
    text.append(kPadding, ' ');
  }
  std::string_view view() const { return {text.data(), length}; }
  std::string text;
  size_t length = 0;
};

// Checks the last record of `b` after a parser returned `ok`.
inline void check_record(JsonParser& json, const Batch& b, bool ok) {
  const Record& r = b.records.back();
  if (!ok) {
    check(r.field_count == 0 && b.fields.empty() && b.arena.empty());
    return;
  }
  for (uint32_t i = 0; i < r.field_count; ++i) {
    const Field& f = b.fields[r.first_field + i];
    check(static_cast<uint64_t>(f.key) + f.key_len <= b.arena.size());
    check(static_cast<uint64_t>(f.value) + f.value_len <= b.arena.size());
  }
  std::string out;
  append_json(out, b, r);
  check(json.validate(out));
}

}  // namespace logs_fuzz
