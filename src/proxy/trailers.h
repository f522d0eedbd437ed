// Trailer fields between HTTP/1.1 (the chunked trailer section, RFC 9112
// 7.1.2) and HTTP/2 (a HEADERS frame after the DATA, RFC 9113 8.1): the
// codecs of both sides hand trailers around as `Trailers` (codec.h).
//
// Fields that must not be trailers (RFC 9110 6.5.1: framing, routing,
// connection-specific ones) are dropped both ways. Pure; any thread.
#pragma once

#include <string>
#include <string_view>

#include "http/http1_parser.h"
#include "proxy/codec.h"

namespace sidecar::proxy {

// Whether `name` (lower case) may be passed on as a trailer field.
inline bool allowed_trailer(std::string_view name) {
  static constexpr std::string_view kNever[] = {
      "content-length", "transfer-encoding", "host", "connection",
      "keep-alive",     "proxy-connection",  "te",   "upgrade",
      "trailer"};
  if (name.empty() || name[0] == ':') return false;
  for (std::string_view n : kNever) {
    if (name == n) return false;
  }
  return true;
}

// The trailer section's lines ("Name: value\r\n", as ChunkedDecoder keeps
// them) as fields with lower-case names and trimmed values; appends to `out`.
inline void parse_trailer_lines(std::string_view lines, Trailers& out) {
  while (!lines.empty()) {
    const size_t eol = lines.find("\r\n");
    std::string_view line = lines.substr(0, eol);
    lines.remove_prefix(eol == std::string_view::npos ? lines.size() : eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name(line.substr(0, colon));
    for (char& c : name) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (allowed_trailer(name)) out.emplace_back(std::move(name), std::string(value));
  }
}

// Fields as a chunked trailer section's lines, for http::ChunkEncoder.
inline std::string format_trailer_lines(const Trailers& trailers) {
  std::string out;
  for (const auto& [name, value] : trailers) {
    if (allowed_trailer(name)) out.append(name).append(": ").append(value).append("\r\n");
  }
  return out;
}

}  // namespace sidecar::proxy
