// Strict, incremental HTTP/1.1 message parser (RFC 9112), zero-copy.
//
// The parser never copies header bytes: every name and value is a view into
// the caller's buffer, which must stay unchanged while the views are used.
// Parsing is incremental and linear: feeding a head one byte at a time costs
// O(head size) in total, because lines already seen are not scanned again.
//
// Strictness (RFC 9112 sections in brackets). Each of these is an error, never
// "repaired", because two parsers repairing differently is what request
// smuggling exploits:
//   - LF without CR, or CR not followed by LF, anywhere in the head [2.2]
//   - whitespace between a field name and its colon [5.1]
//   - obs-fold, a field line starting with SP or HTAB [5.2]
//   - field name bytes outside tchar, value bytes that are CTLs or DEL [5.5]
//   - Content-Length that is not 1*DIGIT, or appears twice [6.3]
//   - Content-Length together with Transfer-Encoding [6.3]
//   - Transfer-Encoding other than one "chunked", or repeated [6.1]
//   - chunk sizes that are not 1*HEXDIG (max 16 digits), bare LF or CR in
//     chunk framing, malformed chunk extensions or trailer fields [7.1]
//
// Thread safety: a parser object is used by one thread; the free functions
// are reentrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sidecar::http {

// Why a message was rejected. `status_for` maps each to the HTTP status a
// server answers a bad request with.
enum class ParseError : uint8_t {
  kNone = 0,
  kBadRequestLine,
  kBadStatusLine,
  kUnsupportedVersion,
  kBareCr,
  kBareLf,
  kBadHeaderName,
  kWhitespaceBeforeColon,
  kObsFold,
  kBadHeaderValue,
  kHeadTooLarge,
  kTooManyHeaders,
  kBadContentLength,
  kDuplicateContentLength,
  kContentLengthWithTransferEncoding,
  kBadTransferEncoding,
  kMissingHost,
  kDuplicateHost,
  kBadHost,
  kUnsupportedExpect,
  kBadChunkSize,
  kBadChunkExtension,
  kBadChunkFraming,
  kBadTrailer,
  kTrailersTooLarge,
};

// Short, stable, lower-case reason, e.g. "bare_lf" (used in logs and metrics).
std::string_view to_string(ParseError error);

// The status a server answers a request rejected with `error`: 400, 431
// (head or trailers too large, too many fields), 505 (version), 417 (Expect).
int status_for(ParseError error);

// Size limits applied while parsing. Units: bytes and counts.
struct Limits {
  uint32_t max_head_size = 60 * 1024;  // start line + fields + CRLFs
  uint32_t max_headers = 100;          // field lines in the head
  uint32_t max_chunk_line = 4096;      // a chunk-size line with its extensions
};

// One field line. `name` and `value` (OWS trimmed) point into the buffer;
// [line_begin, line_end) are offsets of the whole line, CRLF included,
// relative to the start of the head, so unchanged runs of lines can be
// forwarded as one span.
struct HeaderField {
  std::string_view name;
  std::string_view value;
  uint32_t line_begin = 0;
  uint32_t line_end = 0;
};

// How the body of a message is delimited [RFC 9112 6.3].
enum class BodyKind : uint8_t { kNone, kContentLength, kChunked, kUntilClose };

// What both requests and responses carry.
struct MessageHead {
  std::string_view head;        // start line through the empty line, CRLFs included
  uint32_t start_line_end = 0;  // offset just past the start line's CRLF
  uint8_t version_minor = 1;    // HTTP/1.<version_minor>
  std::vector<HeaderField> headers;
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;  // valid when body == kContentLength
  bool has_content_length = false;
  bool has_transfer_encoding = false;  // only "chunked" is ever accepted
  bool connection_close = false;       // "close" listed in Connection
  bool connection_keep_alive = false;  // "keep-alive" listed in Connection
  bool has_connection = false;         // any Connection field present
  bool has_upgrade = false;

  void clear();
  // The first field named `name` (case-insensitive), or nullptr.
  const HeaderField* find(std::string_view name) const;
  // Whether the connection may carry another message after this one
  // [RFC 9112 9.3]: 1.1 unless "close"; 1.0 only with "keep-alive".
  bool keep_alive() const;
};

enum class Method : uint8_t { kGet, kHead, kPost, kPut, kDelete, kOptions, kConnect, kOther };

struct RequestHead : MessageHead {
  std::string_view method_name;
  std::string_view target;  // as sent: origin-form, absolute-form, '*' or authority-form
  Method method = Method::kOther;
  int32_t host_index = -1;       // index of the Host field in `headers`, or -1
  bool expect_continue = false;  // "Expect: 100-continue"
  void clear();
  std::string_view host() const {
    return host_index < 0 ? std::string_view() : headers[host_index].value;
  }
};

struct ResponseHead : MessageHead {
  uint16_t status = 0;
  std::string_view reason;
  void clear();
};

// Result of feeding bytes to a head parser.
struct HeadResult {
  enum Status : uint8_t { kNeedMore, kDone, kError } status = kNeedMore;
  ParseError error = ParseError::kNone;
  // kDone: bytes of the buffer that belong to the head, including any empty
  // lines skipped before a request line. The body starts right after.
  size_t consumed = 0;
};

// Incremental head parser. Call `feed` with all bytes buffered so far for
// the current message (the same prefix plus whatever arrived since); it
// remembers how far it scanned. After kDone or kError, call `reset` before
// the next message.
class RequestParser {
 public:
  explicit RequestParser(Limits limits = {});
  HeadResult feed(std::string_view buffered, RequestHead& out);
  void reset();
  const Limits& limits() const { return limits_; }

 private:
  Limits limits_;
  size_t scan_pos_ = 0;
  size_t head_begin_ = 0;
  uint32_t lines_ = 0;
};

class ResponseParser {
 public:
  explicit ResponseParser(Limits limits = {});
  HeadResult feed(std::string_view buffered, ResponseHead& out);
  void reset();

 private:
  Limits limits_;
  size_t scan_pos_ = 0;
  uint32_t lines_ = 0;
};

// How the body of a response to a request with `request_method` is framed
// [RFC 9112 6.3]: none for HEAD, 1xx, 204 and 304, else the head's framing.
BodyKind response_body_kind(const ResponseHead& response, Method request_method);

// Decodes a chunked body [RFC 9112 7.1] incrementally, validating every byte
// of framing. Data bytes are skipped in bulk, not inspected.
class ChunkedDecoder {
 public:
  struct Result {
    size_t consumed = 0;  // bytes of input that belong to the body
    bool done = false;    // the last chunk and trailer section were consumed
    ParseError error = ParseError::kNone;
  };

  explicit ChunkedDecoder(Limits limits = {}) : limits_(limits) {}

  // Consumes body bytes from `data`. Stops at the end of the body (the rest
  // of `data` is the next message) or of `data`. When `chunk_data` is not
  // null, appends views of the chunk data (framing removed) to it.
  Result feed(std::string_view data, std::vector<std::string_view>* chunk_data = nullptr);
  void reset();
  bool done() const { return state_ == State::kDone; }
  // The trailer section's field lines as received ("name: value\r\n"...;
  // checked by the field grammar), for a proxy that passes trailers to a
  // peer of another protocol; "" when there were none. Kept until reset.
  const std::string& trailer_lines() const { return trailer_lines_; }

 private:
  enum class State : uint8_t {
    kSize,
    kSizeWs,
    kExt,
    kSizeLf,
    kData,
    kDataCr,
    kDataLf,
    kTrailerStart,
    kTrailer,
    kTrailerLf,
    kEndLf,
    kDone,
  };
  Limits limits_;
  State state_ = State::kSize;
  uint64_t remaining_ = 0;
  uint32_t digits_ = 0;
  uint32_t line_len_ = 0;
  uint32_t trailer_bytes_ = 0;
  bool trailer_colon_ = false;
  bool trailer_name_ = false;
  bool ext_quoted_ = false;
  std::string trailer_lines_;
};

// Character classes of RFC 9110 5.6.2 and 5.5.
bool is_tchar(unsigned char c);

// ASCII case-insensitive equality (field names, tokens).
bool iequals(std::string_view a, std::string_view b);

// Calls `fn(token)` for each element of a comma-separated list value
// [RFC 9110 5.6.1], with OWS trimmed and empty elements skipped.
template <typename Fn>
void for_each_token(std::string_view value, Fn&& fn) {
  size_t i = 0;
  while (i < value.size()) {
    size_t comma = value.find(',', i);
    if (comma == std::string_view::npos) comma = value.size();
    size_t b = i, e = comma;
    while (b < e && (value[b] == ' ' || value[b] == '\t')) ++b;
    while (e > b && (value[e - 1] == ' ' || value[e - 1] == '\t')) --e;
    if (e > b) fn(value.substr(b, e - b));
    i = comma + 1;
  }
}

// OWS trimmed from both ends of a field value or list element [RFC 9110 5.6.3].
inline std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls `fn(name, value)` for each "Name: value\r\n" line of `lines` (field
// lines the proxy composed itself: headers to add, trailers), the value
// OWS-trimmed; a line without a colon is skipped, the last line may lack
// its CRLF.
template <typename Fn>
void for_each_field_line(std::string_view lines, Fn&& fn) {
  while (!lines.empty()) {
    const size_t eol = lines.find("\r\n");
    const std::string_view line = lines.substr(0, eol);
    lines.remove_prefix(eol == std::string_view::npos ? lines.size() : eol + 2);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos)
      fn(line.substr(0, colon), trim_ows(line.substr(colon + 1)));
  }
}

}  // namespace sidecar::http
