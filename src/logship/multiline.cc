#include "logship/multiline.h"

#include <re2/re2.h>

#include "logship/parsers.h"

namespace sidecar::logship {
namespace {

bool starts_with_space(std::string_view s) { return !s.empty() && (s[0] == ' ' || s[0] == '\t'); }

bool java_continuation(std::string_view line) {
  // "\tat com.x.Y.z(Y.java:10)", "\t... 5 more", "Caused by: ...",
  // "Suppressed: ...", or any indented line.
  if (starts_with_space(line)) return true;
  return line.starts_with("Caused by:") || line.starts_with("Suppressed:");
}

bool go_frame(std::string_view line) {
  // "main.main()", "runtime.gopanic({0x4b3f20, 0xc00001a0c0})",
  // "created by main.start in goroutine 1", "goroutine 1 [running]:", "\t/x.go:12 +0x1d"
  static const re2::RE2 frame(R"(^[\w./*()\[\]-]+\(.*\)( in goroutine \d+)?$)");
  if (line.empty() || line[0] == '\t') return true;
  if (line.starts_with("goroutine ") || line.starts_with("created by ") ||
      line.starts_with("[signal ") || line.starts_with("exit status ")) {
    return true;
  }
  return re2::RE2::FullMatch(re2::StringPiece(line.data(), line.size()), frame);
}

}  // namespace

Multiline::Multiline(const MultilineConfig& config) : config_(config) {}

Multiline::Rule Multiline::classify(MultilineConfig::Mode mode, std::string_view line,
                                    bool in_trace) {
  switch (mode) {
    case MultilineConfig::Mode::kJava:
      return java_continuation(line) ? Rule::kContinue : Rule::kStart;
    case MultilineConfig::Mode::kPython:
      // Traceback (most recent call last):
      //   File "x.py", line 1, in <module>
      //     raise ValueError("x")
      // ValueError: x                     <- the last line of the record
      if (line.starts_with("Traceback (most recent call last):")) {
        return in_trace ? Rule::kContinue : Rule::kStart;
      }
      if (!in_trace) return Rule::kStart;
      if (starts_with_space(line)) return Rule::kContinue;
      if (line.empty() || line.starts_with("During handling of the above exception") ||
          line.starts_with("The above exception was the direct cause")) {
        return Rule::kContinue;
      }
      return Rule::kLast;
    case MultilineConfig::Mode::kGo:
      if (line.starts_with("panic: ") || line.starts_with("fatal error: ")) return Rule::kStart;
      return in_trace && go_frame(line) ? Rule::kContinue : Rule::kStart;
    default:
      return Rule::kStart;
  }
}

void Multiline::append(std::string_view line, int64_t now_ms) {
  if (lines_ > 0) text_ += '\n';
  text_.append(line);
  ++lines_;
  last_ms_ = now_ms;
}

void Multiline::flush(const Emit& emit) {
  if (lines_ == 0) return;
  const size_t size = text_.size();
  text_.append(kPadding, ' ');
  emit(std::string_view(text_.data(), size), lines_);
  text_.clear();
  lines_ = 0;
  in_trace_ = false;
}

void Multiline::feed(std::string_view line, int64_t now_ms, const Emit& emit) {
  if (config_.mode == MultilineConfig::Mode::kStart) {
    const bool start =
        re2::RE2::PartialMatch(re2::StringPiece(line.data(), line.size()), *config_.start);
    if (start) flush(emit);
    append(line, now_ms);
  } else {
    const Rule rule = classify(config_.mode, line, in_trace_);
    if (rule == Rule::kStart) {
      flush(emit);
      append(line, now_ms);
      in_trace_ = (config_.mode == MultilineConfig::Mode::kPython &&
                   line.starts_with("Traceback (most recent call last):")) ||
                  (config_.mode == MultilineConfig::Mode::kGo &&
                   (line.starts_with("panic: ") || line.starts_with("fatal error: ")));
    } else {
      append(line, now_ms);
      if (rule == Rule::kLast) {
        flush(emit);
        return;
      }
    }
  }
  if (lines_ >= config_.max_lines || text_.size() >= config_.max_bytes) flush(emit);
}

}  // namespace sidecar::logship
