// Parsers: a line in, the fields of the record being built out.
//
// Every parser adds its fields to the last record of a Batch (after
// Batch::begin) and returns true, or adds nothing and returns false (the
// caller then keeps the line as `message` and counts the failure). Field
// names follow Fluent Bit's parsers of the same name.
//
//   json    RFC 8259 object (simdjson On-Demand); values kept as raw JSON
//   logfmt  key=value key="quoted value" (https://brandur.org/logfmt)
//   regex   RE2 named groups
//   cri     CRI-O / containerd log lines: TIME STREAM P|F MESSAGE
//           -> time, stream, logtag, message
//   docker  json-file: {"log":..,"stream":..,"time":..} -> message, stream, time
//   syslog  RFC 5424, or RFC 3164 (the PRI optional) -> pri, time, host,
//           ident, pid, msgid, extradata, message
//   nginx, apache: the combined log format -> remote, host, user, time,
//           method, path, code, size, referer, agent
//
// Input lines must be followed by kPadding readable bytes (simdjson reads
// past the end; the bytes are not interpreted).
//
// Thread safety: a Parsers object is used by one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "logship/config.h"
#include "logship/record.h"

namespace sidecar::logship {

inline constexpr size_t kPadding = 64;  // simdjson::SIMDJSON_PADDING

// A JSON parser with its reusable state (simdjson's parser).
class JsonParser {
 public:
  JsonParser();
  ~JsonParser();
  // Adds the members of the object in `line` as fields.
  bool parse(std::string_view line, Batch& b);
  // Checks that `text` is one valid JSON value (tests, fuzzing).
  bool validate(std::string_view text);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

bool parse_logfmt(std::string_view line, Batch& b);
bool parse_syslog(std::string_view line, Batch& b);
bool parse_regex(const re2::RE2& re, std::string_view line, Batch& b);
// The combined access log format (nginx and Apache share it).
bool parse_combined(std::string_view line, Batch& b);

// A CRI log line's parts (https://github.com/kubernetes/design-proposals-archive,
// node/kubelet-cri-logging.md): "2016-10-06T00:17:09.669794202Z stdout F msg".
struct CriLine {
  std::string_view time;
  std::string_view stream;
  bool partial = false;  // P: more of this message follows in the next line
  std::string_view message;
};
bool split_cri(std::string_view line, CriLine& out);

// Times: "rfc3339" (and the empty format), "unix" (seconds, fractions
// allowed), "unix_ms", or a strptime(3) format (with %z for offsets).
// Returns false when `text` does not match.
bool parse_time(std::string_view text, std::string_view format, int64_t& time_ns);

// The parsers of one input, tried in order; the first that accepts a line
// makes its record. When the first is an envelope (cri or docker), the
// others parse the envelope's message instead, whose fields then replace
// `message` (parser: [cri, json] is JSON logged to stdout under containerd).
class Parsers {
 public:
  explicit Parsers(std::vector<ParserConfig> configs);
  ~Parsers();
  bool empty() const { return configs_.empty(); }
  // Parses `line` (padded) into the last record of `b`; sets its time when
  // a parser has a time_key that parsed. False: nothing added.
  bool parse(std::string_view line, Batch& b);
  // CRI partial lines are joined before parsing (see Pipeline).
  bool has_cri() const;

 private:
  bool parse_one(const ParserConfig& c, std::string_view line, Batch& b);
  void apply_time(const ParserConfig& c, Batch& b);
  std::vector<ParserConfig> configs_;
  JsonParser json_;
  std::string scratch_;
  std::string padded_;
};

}  // namespace sidecar::logship
