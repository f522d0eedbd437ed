#include "http/http1_parser.h"

#include <array>
#include <cstring>

namespace sidecar::http {
namespace {

constexpr std::array<bool, 256> make_tchar_table() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kTchar = make_tchar_table();

// Bytes allowed inside a field value after OWS trimming: HTAB, SP, VCHAR,
// obs-text [RFC 9110 5.5].
constexpr std::array<bool, 256> make_value_table() {
  std::array<bool, 256> t{};
  t['\t'] = true;
  for (int c = 0x20; c <= 0x7e; ++c) t[c] = true;
  for (int c = 0x80; c <= 0xff; ++c) t[c] = true;
  return t;
}
constexpr std::array<bool, 256> kFieldValue = make_value_table();

// Bytes of a request-target: visible ASCII.
constexpr bool is_target_char(unsigned char c) { return c > 0x20 && c < 0x7f; }

// Host: reg-name / IP-literal / IPv4 with optional port [RFC 3986 3.2.2].
constexpr std::array<bool, 256> make_host_table() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("-._~!$&'()*+,;=:[]%")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kHostChar = make_host_table();

constexpr unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? c | 0x20 : c; }

int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

HeadResult error(ParseError e) { return {HeadResult::kError, e, 0}; }

// Finds the end of a head: the first empty line. Lines already scanned are
// not scanned again (`pos` persists between calls). With `skip_empty`,
// empty lines before the start line are skipped [RFC 9112 2.2] and
// `begin` moves past them.
HeadResult scan_head(std::string_view buf, const Limits& limits, bool skip_empty, size_t& pos,
                     size_t& begin, uint32_t& lines) {
  const char* d = buf.data();
  const size_t n = buf.size();
  while (pos < n) {
    const void* nl = std::memchr(d + pos, '\n', n - pos);
    if (nl == nullptr) break;
    const size_t lf = static_cast<const char*>(nl) - d;
    if (lf == pos || d[lf - 1] != '\r') return error(ParseError::kBareLf);
    if (lf + 1 - pos == 2) {  // empty line
      if (lines == 0) {
        if (!skip_empty) return error(ParseError::kBadStatusLine);
        pos = lf + 1;
        begin = pos;
        if (pos > limits.max_head_size) return error(ParseError::kHeadTooLarge);
        continue;
      }
      pos = lf + 1;
      // The empty line counts too: a head one byte over the limit is over it.
      if (pos > limits.max_head_size) return error(ParseError::kHeadTooLarge);
      return {HeadResult::kDone, ParseError::kNone, pos};
    }
    // The start line is not a field line.
    if (++lines > limits.max_headers + 1) return error(ParseError::kTooManyHeaders);
    pos = lf + 1;
    if (pos > limits.max_head_size) return error(ParseError::kHeadTooLarge);
  }
  if (n > limits.max_head_size) return error(ParseError::kHeadTooLarge);
  return {};
}

// Parses "HTTP/1.x" at the start of `s`.
ParseError parse_version(std::string_view s, uint8_t& minor, ParseError malformed) {
  if (s.size() != 8 || s.substr(0, 5) != "HTTP/" || s[6] != '.') return malformed;
  if (s[5] < '0' || s[5] > '9' || s[7] < '0' || s[7] > '9') return malformed;
  if (s[5] != '1' || (s[7] != '0' && s[7] != '1')) return ParseError::kUnsupportedVersion;
  minor = static_cast<uint8_t>(s[7] - '0');
  return ParseError::kNone;
}

bool has_cr(std::string_view s) { return std::memchr(s.data(), '\r', s.size()) != nullptr; }

// Parses the field lines of `m.head` from `m.start_line_end` and the framing
// they imply. `is_request` enables the request-only checks.
ParseError parse_fields(MessageHead& m, const Limits& limits, RequestHead* req) {
  const std::string_view head = m.head;
  size_t pos = m.start_line_end;
  while (true) {
    const size_t eol = head.find("\r\n", pos);  // the scan guaranteed one exists
    if (eol == pos) break;                      // the empty line ending the head
    const std::string_view line = head.substr(pos, eol - pos);
    const unsigned char first = line[0];
    if (first == ' ' || first == '\t') return ParseError::kObsFold;
    size_t k = 0;
    while (k < line.size() && kTchar[static_cast<unsigned char>(line[k])]) ++k;
    if (k == line.size()) return ParseError::kBadHeaderName;
    const unsigned char sep = line[k];
    if (sep != ':') {
      if (sep == ' ' || sep == '\t') return ParseError::kWhitespaceBeforeColon;
      if (sep == '\r') return ParseError::kBareCr;
      return ParseError::kBadHeaderName;
    }
    if (k == 0) return ParseError::kBadHeaderName;
    size_t vb = k + 1, ve = line.size();
    while (vb < ve && (line[vb] == ' ' || line[vb] == '\t')) ++vb;
    while (ve > vb && (line[ve - 1] == ' ' || line[ve - 1] == '\t')) --ve;
    for (size_t i = vb; i < ve; ++i) {
      const unsigned char c = line[i];
      if (!kFieldValue[c]) return c == '\r' ? ParseError::kBareCr : ParseError::kBadHeaderValue;
    }
    if (m.headers.size() >= limits.max_headers) return ParseError::kTooManyHeaders;
    HeaderField& f = m.headers.emplace_back();
    f.name = line.substr(0, k);
    f.value = line.substr(vb, ve - vb);
    f.line_begin = static_cast<uint32_t>(pos);
    f.line_end = static_cast<uint32_t>(eol + 2);
    pos = eol + 2;

    // Fields that decide framing and connection handling.
    switch (f.name.size()) {
      case 14:
        if (iequals(f.name, "content-length")) {
          if (m.has_content_length) return ParseError::kDuplicateContentLength;
          if (f.value.empty() || f.value.size() > 18) return ParseError::kBadContentLength;
          uint64_t v = 0;
          for (char c : f.value) {
            if (c < '0' || c > '9') return ParseError::kBadContentLength;
            v = v * 10 + static_cast<uint64_t>(c - '0');
          }
          m.has_content_length = true;
          m.content_length = v;
        }
        break;
      case 17:
        if (iequals(f.name, "transfer-encoding")) {
          if (m.has_transfer_encoding || !iequals(f.value, "chunked")) {
            return ParseError::kBadTransferEncoding;
          }
          m.has_transfer_encoding = true;
        }
        break;
      case 10:
        if (iequals(f.name, "connection")) {
          m.has_connection = true;
          for_each_token(f.value, [&m](std::string_view t) {
            if (iequals(t, "close")) m.connection_close = true;
            if (iequals(t, "keep-alive")) m.connection_keep_alive = true;
          });
        }
        break;
      case 7:
        if (iequals(f.name, "upgrade")) m.has_upgrade = true;
        break;
      case 4:
        if (req != nullptr && iequals(f.name, "host")) {
          if (req->host_index >= 0) return ParseError::kDuplicateHost;
          for (char c : f.value) {
            if (!kHostChar[static_cast<unsigned char>(c)]) return ParseError::kBadHost;
          }
          req->host_index = static_cast<int32_t>(m.headers.size() - 1);
        }
        break;
      case 6:
        if (req != nullptr && iequals(f.name, "expect")) {
          if (!iequals(f.value, "100-continue")) return ParseError::kUnsupportedExpect;
          req->expect_continue = true;
        }
        break;
      default:
        break;
    }
  }
  if (m.has_content_length && m.has_transfer_encoding) {
    return ParseError::kContentLengthWithTransferEncoding;
  }
  return ParseError::kNone;
}

Method method_of(std::string_view m) {
  switch (m.size()) {
    case 3:
      if (m == "GET") return Method::kGet;
      if (m == "PUT") return Method::kPut;
      break;
    case 4:
      if (m == "HEAD") return Method::kHead;
      if (m == "POST") return Method::kPost;
      break;
    case 6:
      if (m == "DELETE") return Method::kDelete;
      break;
    case 7:
      if (m == "OPTIONS") return Method::kOptions;
      if (m == "CONNECT") return Method::kConnect;
      break;
    default:
      break;
  }
  return Method::kOther;
}

// Sets the head and returns its start line (CRLF excluded) in `line`.
ParseError start_line(std::string_view head, MessageHead& m, std::string_view& line) {
  m.head = head;
  const size_t eol = head.find("\r\n");  // the scan guaranteed one exists
  line = head.substr(0, eol);
  m.start_line_end = static_cast<uint32_t>(eol + 2);
  return has_cr(line) ? ParseError::kBareCr : ParseError::kNone;
}

ParseError parse_request_head(std::string_view head, const Limits& limits, RequestHead& r) {
  r.clear();
  std::string_view line;
  if (ParseError e = start_line(head, r, line); e != ParseError::kNone) return e;
  size_t i = 0;
  while (i < line.size() && kTchar[static_cast<unsigned char>(line[i])]) ++i;
  if (i == 0 || i == line.size() || line[i] != ' ') return ParseError::kBadRequestLine;
  r.method_name = line.substr(0, i);
  size_t j = i + 1;
  while (j < line.size() && is_target_char(line[j])) ++j;
  if (j == i + 1 || j == line.size() || line[j] != ' ') return ParseError::kBadRequestLine;
  r.target = line.substr(i + 1, j - i - 1);
  if (ParseError e =
          parse_version(line.substr(j + 1), r.version_minor, ParseError::kBadRequestLine);
      e != ParseError::kNone) {
    return e;
  }
  r.method = method_of(r.method_name);
  if (ParseError e = parse_fields(r, limits, &r); e != ParseError::kNone) return e;
  if (r.version_minor == 1 && r.host_index < 0) return ParseError::kMissingHost;
  // A 1.0 recipient cannot know chunked framing: faulty framing [RFC 9112 6.1].
  if (r.has_transfer_encoding && r.version_minor == 0) return ParseError::kBadTransferEncoding;
  if (r.has_transfer_encoding) {
    r.body = BodyKind::kChunked;
  } else if (r.has_content_length && r.content_length > 0) {
    r.body = BodyKind::kContentLength;
  }
  return ParseError::kNone;
}

ParseError parse_response_head(std::string_view head, const Limits& limits, ResponseHead& r) {
  r.clear();
  std::string_view line;
  if (ParseError e = start_line(head, r, line); e != ParseError::kNone) return e;
  if (line.size() < 12 || line[8] != ' ') return ParseError::kBadStatusLine;
  if (ParseError e = parse_version(line.substr(0, 8), r.version_minor, ParseError::kBadStatusLine);
      e != ParseError::kNone) {
    return e;
  }
  uint16_t status = 0;
  for (size_t k = 9; k < 12; ++k) {
    if (line[k] < '0' || line[k] > '9') return ParseError::kBadStatusLine;
    status = static_cast<uint16_t>(status * 10 + (line[k] - '0'));
  }
  if (status < 100) return ParseError::kBadStatusLine;
  r.status = status;
  if (line.size() > 12) {
    if (line[12] != ' ') return ParseError::kBadStatusLine;
    r.reason = line.substr(13);
    for (char c : r.reason) {
      if (!kFieldValue[static_cast<unsigned char>(c)]) return ParseError::kBadStatusLine;
    }
  }
  if (ParseError e = parse_fields(r, limits, nullptr); e != ParseError::kNone) return e;
  if (r.has_transfer_encoding) {
    r.body = BodyKind::kChunked;
  } else if (r.has_content_length) {
    r.body = r.content_length > 0 ? BodyKind::kContentLength : BodyKind::kNone;
  } else {
    r.body = BodyKind::kUntilClose;
  }
  return ParseError::kNone;
}

}  // namespace

bool is_tchar(unsigned char c) { return kTchar[c]; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(static_cast<unsigned char>(a[i])) != lower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view to_string(ParseError error) {
  switch (error) {
    case ParseError::kNone:
      return "none";
    case ParseError::kBadRequestLine:
      return "bad_request_line";
    case ParseError::kBadStatusLine:
      return "bad_status_line";
    case ParseError::kUnsupportedVersion:
      return "unsupported_version";
    case ParseError::kBareCr:
      return "bare_cr";
    case ParseError::kBareLf:
      return "bare_lf";
    case ParseError::kBadHeaderName:
      return "bad_header_name";
    case ParseError::kWhitespaceBeforeColon:
      return "whitespace_before_colon";
    case ParseError::kObsFold:
      return "obs_fold";
    case ParseError::kBadHeaderValue:
      return "bad_header_value";
    case ParseError::kHeadTooLarge:
      return "headers_too_large";
    case ParseError::kTooManyHeaders:
      return "too_many_headers";
    case ParseError::kBadContentLength:
      return "bad_content_length";
    case ParseError::kDuplicateContentLength:
      return "duplicate_content_length";
    case ParseError::kContentLengthWithTransferEncoding:
      return "content_length_with_transfer_encoding";
    case ParseError::kBadTransferEncoding:
      return "bad_transfer_encoding";
    case ParseError::kMissingHost:
      return "missing_host";
    case ParseError::kDuplicateHost:
      return "duplicate_host";
    case ParseError::kBadHost:
      return "bad_host";
    case ParseError::kUnsupportedExpect:
      return "unsupported_expect";
    case ParseError::kBadChunkSize:
      return "bad_chunk_size";
    case ParseError::kBadChunkExtension:
      return "bad_chunk_extension";
    case ParseError::kBadChunkFraming:
      return "bad_chunk_framing";
    case ParseError::kBadTrailer:
      return "bad_trailer";
    case ParseError::kTrailersTooLarge:
      return "trailers_too_large";
  }
  return "unknown";
}

int status_for(ParseError error) {
  switch (error) {
    case ParseError::kHeadTooLarge:
    case ParseError::kTooManyHeaders:
    case ParseError::kTrailersTooLarge:
      return 431;
    case ParseError::kUnsupportedVersion:
      return 505;
    case ParseError::kUnsupportedExpect:
      return 417;
    default:
      return 400;
  }
}

void MessageHead::clear() {
  head = {};
  start_line_end = 0;
  version_minor = 1;
  headers.clear();
  body = BodyKind::kNone;
  content_length = 0;
  has_content_length = has_transfer_encoding = false;
  connection_close = connection_keep_alive = has_connection = has_upgrade = false;
}

const HeaderField* MessageHead::find(std::string_view name) const {
  for (const HeaderField& f : headers) {
    if (iequals(f.name, name)) return &f;
  }
  return nullptr;
}

bool MessageHead::keep_alive() const {
  if (connection_close) return false;
  return version_minor >= 1 || connection_keep_alive;
}

void RequestHead::clear() {
  MessageHead::clear();
  method_name = target = {};
  method = Method::kOther;
  host_index = -1;
  expect_continue = false;
}

void ResponseHead::clear() {
  MessageHead::clear();
  status = 0;
  reason = {};
}

RequestParser::RequestParser(Limits limits) : limits_(limits) {}

void RequestParser::reset() {
  scan_pos_ = 0;
  head_begin_ = 0;
  lines_ = 0;
}

HeadResult RequestParser::feed(std::string_view buffered, RequestHead& out) {
  HeadResult r = scan_head(buffered, limits_, true, scan_pos_, head_begin_, lines_);
  if (r.status != HeadResult::kDone) return r;
  const std::string_view head = buffered.substr(head_begin_, r.consumed - head_begin_);
  if (ParseError e = parse_request_head(head, limits_, out); e != ParseError::kNone) {
    return error(e);
  }
  return r;
}

ResponseParser::ResponseParser(Limits limits) : limits_(limits) {}

void ResponseParser::reset() {
  scan_pos_ = 0;
  lines_ = 0;
}

HeadResult ResponseParser::feed(std::string_view buffered, ResponseHead& out) {
  size_t begin = 0;
  HeadResult r = scan_head(buffered, limits_, false, scan_pos_, begin, lines_);
  if (r.status != HeadResult::kDone) return r;
  if (ParseError e = parse_response_head(buffered.substr(0, r.consumed), limits_, out);
      e != ParseError::kNone) {
    return error(e);
  }
  return r;
}

BodyKind response_body_kind(const ResponseHead& response, Method request_method) {
  if (request_method == Method::kHead || response.status < 200 || response.status == 204 ||
      response.status == 304) {
    return BodyKind::kNone;
  }
  return response.body;
}

void ChunkedDecoder::reset() {
  state_ = State::kSize;
  remaining_ = 0;
  digits_ = line_len_ = trailer_bytes_ = 0;
  trailer_colon_ = trailer_name_ = ext_quoted_ = false;
  trailer_lines_.clear();
}

// Sub-states of a chunk extension [RFC 9112 7.1.1]:
//   chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
// kept in `digits_` while in State::kExt (the size digits are done by then).
namespace {
enum ExtState : uint32_t {
  kBeforeName,
  kName,
  kAfterName,
  kBeforeValue,
  kValue,
  kQuoted,
  kQuotedEscape,
  kAfterValue,
};
}  // namespace

ChunkedDecoder::Result ChunkedDecoder::feed(std::string_view data,
                                            std::vector<std::string_view>* chunk_data) {
  const char* p = data.data();
  const size_t n = data.size();
  size_t i = 0;
  auto fail = [&i](ParseError e) { return Result{i, false, e}; };
  while (i < n) {
    const unsigned char c = p[i];
    switch (state_) {
      case State::kSize: {
        const int v = hex_value(c);
        if (v >= 0) {
          if (++digits_ > 16) return fail(ParseError::kBadChunkSize);
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
          ++i;
          continue;
        }
        if (digits_ == 0) return fail(ParseError::kBadChunkSize);
        if (c == '\r') {
          state_ = State::kSizeLf;
        } else if (c == ';') {
          state_ = State::kExt;
          digits_ = kBeforeName;
        } else if (c == ' ' || c == '\t') {
          state_ = State::kSizeWs;
        } else if (c == '\n') {
          return fail(ParseError::kBadChunkFraming);
        } else {
          return fail(ParseError::kBadChunkSize);
        }
        line_len_ = 1;
        ++i;
        continue;
      }
      case State::kSizeWs:
        // Whitespace after the size is only allowed before an extension.
        if (c == ';') {
          state_ = State::kExt;
          digits_ = kBeforeName;
        } else if (c != ' ' && c != '\t') {
          return fail(ParseError::kBadChunkExtension);
        }
        break;
      case State::kExt: {
        if (c == '\r') {
          if (digits_ != kName && digits_ != kAfterName && digits_ != kValue &&
              digits_ != kAfterValue) {
            return fail(ParseError::kBadChunkExtension);
          }
          state_ = State::kSizeLf;
          break;
        }
        const bool ws = c == ' ' || c == '\t';
        switch (digits_) {
          case kBeforeName:
            if (kTchar[c]) {
              digits_ = kName;
            } else if (!ws) {
              return fail(ParseError::kBadChunkExtension);
            }
            break;
          case kName:
          case kAfterName:
            if (c == '=') {
              digits_ = kBeforeValue;
            } else if (c == ';') {
              digits_ = kBeforeName;
            } else if (ws) {
              digits_ = kAfterName;
            } else if (!(digits_ == kName && kTchar[c])) {
              return fail(ParseError::kBadChunkExtension);
            }
            break;
          case kBeforeValue:
            if (c == '"') {
              digits_ = kQuoted;
            } else if (kTchar[c]) {
              digits_ = kValue;
            } else if (!ws) {
              return fail(ParseError::kBadChunkExtension);
            }
            break;
          case kValue:
          case kAfterValue:
            if (c == ';') {
              digits_ = kBeforeName;
            } else if (ws) {
              digits_ = kAfterValue;
            } else if (!(digits_ == kValue && kTchar[c])) {
              return fail(ParseError::kBadChunkExtension);
            }
            break;
          case kQuoted:
            if (c == '"') {
              digits_ = kAfterValue;
            } else if (c == '\\') {
              digits_ = kQuotedEscape;
            } else if (!kFieldValue[c]) {
              return fail(ParseError::kBadChunkExtension);
            }
            break;
          case kQuotedEscape:
            if (!kFieldValue[c]) return fail(ParseError::kBadChunkExtension);
            digits_ = kQuoted;
            break;
          default:
            return fail(ParseError::kBadChunkExtension);
        }
        break;
      }
      case State::kSizeLf:
        if (c != '\n') return fail(ParseError::kBadChunkFraming);
        digits_ = 0;
        line_len_ = 0;
        state_ = remaining_ == 0 ? State::kTrailerStart : State::kData;
        ++i;
        continue;
      case State::kData: {
        const size_t take = remaining_ < n - i ? static_cast<size_t>(remaining_) : n - i;
        if (chunk_data != nullptr) chunk_data->emplace_back(p + i, take);
        i += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::kDataCr;
        continue;
      }
      case State::kDataCr:
        if (c != '\r') return fail(ParseError::kBadChunkFraming);
        state_ = State::kDataLf;
        ++i;
        continue;
      case State::kDataLf:
        if (c != '\n') return fail(ParseError::kBadChunkFraming);
        state_ = State::kSize;
        ++i;
        continue;
      case State::kTrailerStart:
        if (c == '\r') {
          state_ = State::kEndLf;
          ++i;
          continue;
        }
        if (c == ' ' || c == '\t') return fail(ParseError::kBadTrailer);  // obs-fold
        state_ = State::kTrailer;
        trailer_name_ = trailer_colon_ = false;
        continue;  // the byte is the first of a field name
      case State::kTrailer:
        if (++trailer_bytes_ > limits_.max_head_size) return fail(ParseError::kTrailersTooLarge);
        if (!trailer_colon_) {
          if (kTchar[c]) {
            trailer_name_ = true;
          } else if (c == ':' && trailer_name_) {
            trailer_colon_ = true;
          } else {
            return fail(ParseError::kBadTrailer);
          }
        } else if (c == '\r') {
          state_ = State::kTrailerLf;
        } else if (!kFieldValue[c] && c != ' ') {
          return fail(ParseError::kBadTrailer);
        }
        trailer_lines_ += static_cast<char>(c);  // bounded by trailer_bytes_
        ++i;
        continue;
      case State::kTrailerLf:
        if (c != '\n') return fail(ParseError::kBadTrailer);
        trailer_lines_ += '\n';
        state_ = State::kTrailerStart;
        ++i;
        continue;
      case State::kEndLf:
        if (c != '\n') return fail(ParseError::kBadChunkFraming);
        state_ = State::kDone;
        return Result{i + 1, true, ParseError::kNone};
      case State::kDone:
        return Result{i, true, ParseError::kNone};
    }
    // Bytes of a chunk-size line after the digits.
    if (++line_len_ > limits_.max_chunk_line) return fail(ParseError::kBadChunkExtension);
    ++i;
  }
  return Result{i, state_ == State::kDone, ParseError::kNone};
}

}  // namespace sidecar::http
