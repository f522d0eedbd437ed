// Joins the lines of one source that belong to one record: a start pattern
// (every line matching it begins a record, the others continue it), or the
// built-in rules for Java, Python and Go stack traces (the cases Fluent
// Bit's built-in multiline parsers cover). A pending record is emitted when
// the next one starts, when it reaches max_lines / max_bytes, or when
// `timeout` passes without a new line (the caller asks with expired()).
//
// Thread safety: one source, one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "logship/config.h"

namespace sidecar::logship {

class Multiline {
 public:
  // Receives a complete record's text (followed by kPadding readable bytes)
  // and how many lines it joined.
  using Emit = std::function<void(std::string_view text, uint32_t lines)>;

  explicit Multiline(const MultilineConfig& config);

  // Feeds one line (without its newline) seen at `now_ms`.
  void feed(std::string_view line, int64_t now_ms, const Emit& emit);
  // Emits the pending record, if any.
  void flush(const Emit& emit);
  bool pending() const { return lines_ > 0; }
  // A pending record has waited `timeout` since its last line.
  bool expired(int64_t now_ms) const {
    return lines_ > 0 && now_ms - last_ms_ >= config_.timeout.count();
  }

  // Whether `line` continues the record before it, for the built-in rules
  // (exposed for tests).
  enum class Rule { kStart, kContinue, kLast };
  static Rule classify(MultilineConfig::Mode mode, std::string_view line, bool in_trace);

 private:
  void append(std::string_view line, int64_t now_ms);
  const MultilineConfig& config_;
  std::string text_;
  uint32_t lines_ = 0;
  int64_t last_ms_ = 0;
  bool in_trace_ = false;  // python: inside a traceback; go: inside a panic
};

}  // namespace sidecar::logship
