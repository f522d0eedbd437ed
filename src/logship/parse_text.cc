// The text parsers (logfmt, syslog, regex, combined, cri), time parsing,
// and the per-input parser chain.
#include <re2/re2.h>

#include <charconv>
#include <cstring>
#include <ctime>

#include "logship/parsers.h"

namespace sidecar::logship {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t'; }

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Removes the fields (and arena bytes) added since a parser began.
struct Rollback {
  Batch& b;
  size_t fields;
  uint32_t count;
  size_t arena;
  explicit Rollback(Batch& batch)
      : b(batch),
        fields(batch.fields.size()),
        count(batch.last().field_count),
        arena(batch.arena.size()) {}
  bool fail() {
    b.fields.resize(fields);
    b.last().field_count = count;
    b.arena.resize(arena);
    return false;
  }
};

// Days since 1970-01-01 of a civil date (proleptic Gregorian).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool read_int(std::string_view s, size_t& i, size_t n, int& out) {
  if (i + n > s.size()) return false;
  int v = 0;
  for (size_t k = 0; k < n; ++k) {
    const char c = s[i + k];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  i += n;
  return true;
}

bool parse_rfc3339(std::string_view s, int64_t& out) {
  size_t i = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!read_int(s, i, 4, y) || i >= s.size() || s[i++] != '-' || !read_int(s, i, 2, mo) ||
      i >= s.size() || s[i++] != '-' || !read_int(s, i, 2, d) || i >= s.size() ||
      (s[i] != 'T' && s[i] != 't' && s[i] != ' ')) {
    return false;
  }
  ++i;
  if (!read_int(s, i, 2, h) || i >= s.size() || s[i++] != ':' || !read_int(s, i, 2, mi) ||
      i >= s.size() || s[i++] != ':' || !read_int(s, i, 2, sec)) {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return false;
  int64_t ns = 0;
  if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
    ++i;
    int64_t scale = 100000000;
    const size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      ns += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == start) return false;
  }
  int64_t offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    const int sign = s[i] == '-' ? -1 : 1;
    ++i;
    int oh, om;
    if (!read_int(s, i, 2, oh)) return false;
    if (i < s.size() && s[i] == ':') ++i;
    if (!read_int(s, i, 2, om)) return false;
    offset = sign * (oh * 3600 + om * 60);
  }
  if (i != s.size()) return false;
  const int64_t secs =
      days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 +
      mi * 60 + sec - offset;
  // Nanoseconds since the epoch fit in 64 bits until 2262: a later (or
  // much earlier) time is not a timestamp we can keep.
  int64_t ns_total = 0;
  if (__builtin_mul_overflow(secs, int64_t{1000000000}, &ns_total) ||
      __builtin_add_overflow(ns_total, static_cast<int64_t>(ns), &ns_total)) {
    return false;
  }
  out = ns_total;
  return true;
}

const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// "Oct  6 12:00:01" (RFC 3164 4.1.2), in the current year, UTC.
bool parse_bsd_time(std::string_view s, int64_t& out) {
  if (s.size() != 15 || s[3] != ' ' || s[6] != ' ') return false;
  int month = -1;
  for (int m = 0; m < 12; ++m) {
    if (s.substr(0, 3) == kMonths[m]) month = m + 1;
  }
  if (month < 0) return false;
  const int day = (s[4] == ' ' ? 0 : (s[4] - '0') * 10) + (s[5] - '0');
  size_t i = 7;
  int h, mi, sec;
  if (!read_int(s, i, 2, h) || s[i++] != ':' || !read_int(s, i, 2, mi) || s[i++] != ':' ||
      !read_int(s, i, 2, sec)) {
    return false;
  }
  if (day < 1 || day > 31 || h > 23 || mi > 59 || sec > 60) return false;
  const time_t now = ::time(nullptr);
  struct tm tm {};
  gmtime_r(&now, &tm);
  out = (days_from_civil(tm.tm_year + 1900, static_cast<unsigned>(month),
                         static_cast<unsigned>(day)) *
             86400 +
         h * 3600 + mi * 60 + sec) *
        1000000000;
  return true;
}

// Splits off the next space-delimited token.
std::string_view next_token(std::string_view& s) {
  const size_t sp = s.find(' ');
  std::string_view tok = s.substr(0, sp);
  s = sp == std::string_view::npos ? std::string_view{} : s.substr(sp + 1);
  return tok;
}

void add_text(Batch& b, std::string_view key, std::string_view value) {
  b.add(key, value, ValueKind::kString);
}

void add_number_or_text(Batch& b, std::string_view key, std::string_view value) {
  b.add(key, value, all_digits(value) ? ValueKind::kNumber : ValueKind::kString);
}

}  // namespace

bool parse_time(std::string_view text, std::string_view format, int64_t& time_ns) {
  if (format.empty() || format == "rfc3339") return parse_rfc3339(text, time_ns);
  if (format == "unix" || format == "unix_ms") {
    double v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || p != text.data() + text.size()) return false;
    time_ns = static_cast<int64_t>(v * (format == "unix" ? 1e9 : 1e6));
    return true;
  }
  char buf[128];
  if (text.size() >= sizeof(buf) || format.size() >= sizeof(buf)) return false;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = 0;
  char fmt[128];
  std::memcpy(fmt, format.data(), format.size());
  fmt[format.size()] = 0;
  struct tm tm {};
  const char* end = ::strptime(buf, fmt, &tm);
  if (end == nullptr) return false;
  int64_t ns = 0;
  if (*end == '.') {  // fractional seconds after the format's %S
    int64_t scale = 100000000;
    for (++end; *end >= '0' && *end <= '9'; ++end) {
      ns += (*end - '0') * scale;
      scale /= 10;
    }
  }
  if (*end != 0) return false;
  const long gmtoff = tm.tm_gmtoff;  // %z; timegm() resets it
  const int64_t secs = static_cast<int64_t>(::timegm(&tm)) - gmtoff;
  int64_t total = 0;  // nanoseconds fit in 64 bits until 2262
  if (__builtin_mul_overflow(secs, int64_t{1000000000}, &total) ||
      __builtin_add_overflow(total, ns, &total)) {
    return false;
  }
  time_ns = total;
  return true;
}

bool parse_logfmt(std::string_view line, Batch& b) {
  Rollback rb(b);
  bool any_pair = false;
  std::string value;
  size_t i = 0;
  const size_t n = line.size();
  while (i < n) {
    while (i < n && is_space(line[i])) ++i;
    if (i >= n) break;
    const size_t ks = i;
    while (i < n && !is_space(line[i]) && line[i] != '=' && line[i] != '"') ++i;
    if (i == ks) return rb.fail();  // '=' or '"' where a key should start
    const std::string_view key = line.substr(ks, i - ks);
    if (i >= n || line[i] != '=') {
      if (i < n && line[i] == '"') return rb.fail();
      b.add(key, {}, ValueKind::kTrue);  // a bare key is a boolean
      continue;
    }
    ++i;  // '='
    if (i < n && line[i] == '"') {
      ++i;
      value.clear();
      bool closed = false;
      while (i < n) {
        const char c = line[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < n) {
          const char e = line[i++];
          value += e == 'n' ? '\n' : e == 't' ? '\t' : e;
        } else {
          value += c;
        }
      }
      if (!closed) return rb.fail();
      if (i < n && !is_space(line[i])) return rb.fail();
      add_text(b, key, value);
    } else {
      const size_t vs = i;
      while (i < n && !is_space(line[i])) ++i;
      add_text(b, key, line.substr(vs, i - vs));
    }
    any_pair = true;
  }
  if (!any_pair) return rb.fail();
  return true;
}

bool parse_syslog(std::string_view line, Batch& b) {
  Rollback rb(b);
  std::string_view s = line;
  int pri = -1;
  if (!s.empty() && s[0] == '<') {
    const size_t close = s.find('>');
    if (close == std::string_view::npos || close < 2 || close > 4) return rb.fail();
    const std::string_view digits = s.substr(1, close - 1);
    if (!all_digits(digits)) return rb.fail();
    pri = std::stoi(std::string(digits));
    if (pri > 191) return rb.fail();
    s.remove_prefix(close + 1);
  }
  if (pri >= 0) b.add("pri", std::to_string(pri), ValueKind::kNumber);
  int64_t t = 0;
  if (pri >= 0 && s.size() >= 2 && s[0] >= '1' && s[0] <= '9' && s[1] == ' ') {
    // RFC 5424 6: VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
    s.remove_prefix(2);
    const std::string_view ts = next_token(s);
    const std::string_view host = next_token(s);
    const std::string_view app = next_token(s);
    const std::string_view proc = next_token(s);
    const std::string_view msgid = next_token(s);
    if (ts.empty() || host.empty() || app.empty() || proc.empty() || msgid.empty()) {
      return rb.fail();
    }
    if (ts != "-") {
      if (!parse_rfc3339(ts, t)) return rb.fail();
      add_text(b, "time", ts);
      b.last().time_ns = t;
    }
    if (host != "-") add_text(b, "host", host);
    if (app != "-") add_text(b, "ident", app);
    if (proc != "-") add_text(b, "pid", proc);
    if (msgid != "-") add_text(b, "msgid", msgid);
    // STRUCTURED-DATA: "-" or [id param="value"]... with \" \] \\ escapes.
    if (s.empty()) return rb.fail();
    if (s[0] == '-') {
      s.remove_prefix(1);
    } else if (s[0] == '[') {
      size_t i = 0;
      while (i < s.size() && s[i] == '[') {
        bool quoted = false;
        ++i;
        for (; i < s.size(); ++i) {
          if (s[i] == '\\' && quoted) {
            ++i;
          } else if (s[i] == '"') {
            quoted = !quoted;
          } else if (s[i] == ']' && !quoted) {
            break;
          }
        }
        if (i >= s.size()) return rb.fail();
        ++i;
      }
      add_text(b, "extradata", s.substr(0, i));
      s.remove_prefix(i);
    } else {
      return rb.fail();
    }
    if (!s.empty()) {
      if (s[0] != ' ') return rb.fail();
      s.remove_prefix(1);
      if (s.starts_with("\xef\xbb\xbf")) s.remove_prefix(3);  // the BOM of RFC 5424 6.4
    }
    add_text(b, "message", s);
    return true;
  }
  // RFC 3164 4.1.2: TIMESTAMP SP HOSTNAME SP TAG[PID]: MSG
  if (s.size() < 16 || !parse_bsd_time(s.substr(0, 15), t) || s[15] != ' ') return rb.fail();
  add_text(b, "time", s.substr(0, 15));
  b.last().time_ns = t;
  s.remove_prefix(16);
  const std::string_view host = next_token(s);
  if (host.empty()) return rb.fail();
  add_text(b, "host", host);
  size_t tag_end = 0;
  while (tag_end < s.size() && tag_end < 48 && s[tag_end] != ':' && s[tag_end] != '[' &&
         s[tag_end] != ' ') {
    ++tag_end;
  }
  if (tag_end > 0 && tag_end < s.size() && (s[tag_end] == ':' || s[tag_end] == '[')) {
    add_text(b, "ident", s.substr(0, tag_end));
    s.remove_prefix(tag_end);
    if (s[0] == '[') {
      const size_t close = s.find(']');
      if (close == std::string_view::npos) return rb.fail();
      add_text(b, "pid", s.substr(1, close - 1));
      s.remove_prefix(close + 1);
    }
    if (!s.empty() && s[0] == ':') s.remove_prefix(1);
    if (!s.empty() && s[0] == ' ') s.remove_prefix(1);
  }
  add_text(b, "message", s);
  return true;
}

bool parse_regex(const re2::RE2& re, std::string_view line, Batch& b) {
  const int groups = re.NumberOfCapturingGroups();
  re2::StringPiece pieces[33];
  if (groups > 32) return false;
  if (!re.Match(re2::StringPiece(line.data(), line.size()), 0, line.size(), RE2::UNANCHORED, pieces,
                groups + 1)) {
    return false;
  }
  for (const auto& [index, name] : re.CapturingGroupNames()) {
    const re2::StringPiece& p = pieces[index];
    if (p.data() == nullptr) continue;
    add_text(b, name, std::string_view(p.data(), p.size()));
  }
  return true;
}

bool parse_combined(std::string_view line, Batch& b) {
  // $remote_addr - $remote_user [$time_local] "$request" $status
  // $body_bytes_sent "$http_referer" "$http_user_agent" (nginx; Apache's
  // combined is the same with %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i").
  static const re2::RE2 re(
      R"re(^(\S+) (\S+) (\S+) \[([^\]]*)\] "(\S+)(?: +([^"]*?)(?: +(\S+))?)?" (\d{3}|-) (\d+|-)(?: "([^"]*)" "([^"]*)")?)re");
  re2::StringPiece p[12];
  if (!re.Match(re2::StringPiece(line.data(), line.size()), 0, line.size(), RE2::ANCHOR_START, p,
                12)) {
    return false;
  }
  auto sv = [&](int i) { return std::string_view(p[i].data(), p[i].size()); };
  add_text(b, "remote", sv(1));
  if (sv(2) != "-") add_text(b, "host", sv(2));
  if (sv(3) != "-") add_text(b, "user", sv(3));
  add_text(b, "time", sv(4));
  int64_t t = 0;
  if (parse_time(sv(4), "%d/%b/%Y:%H:%M:%S %z", t)) b.last().time_ns = t;
  add_text(b, "method", sv(5));
  if (p[6].data() != nullptr) add_text(b, "path", sv(6));
  if (p[7].data() != nullptr) add_text(b, "protocol", sv(7));
  add_number_or_text(b, "code", sv(8));
  add_number_or_text(b, "size", sv(9));
  if (p[10].data() != nullptr) add_text(b, "referer", sv(10));
  if (p[11].data() != nullptr) add_text(b, "agent", sv(11));
  return true;
}

bool split_cri(std::string_view line, CriLine& out) {
  std::string_view s = line;
  out.time = next_token(s);
  out.stream = next_token(s);
  if (out.time.empty() || out.stream.empty() || s.empty()) return false;
  if (out.stream != "stdout" && out.stream != "stderr") return false;
  if (s[0] != 'P' && s[0] != 'F') return false;
  out.partial = s[0] == 'P';
  // The tag may carry more flags after a ':' (reserved); the message follows a space.
  const size_t sp = s.find(' ');
  out.message = sp == std::string_view::npos ? std::string_view{} : s.substr(sp + 1);
  int64_t t = 0;
  return parse_rfc3339(out.time, t);
}

Parsers::Parsers(std::vector<ParserConfig> configs) : configs_(std::move(configs)) {}
Parsers::~Parsers() = default;

bool Parsers::has_cri() const {
  for (const auto& c : configs_) {
    if (c.kind == ParserConfig::Kind::kCri) return true;
  }
  return false;
}

bool Parsers::parse(std::string_view line, Batch& b) {
  if (configs_.empty()) return false;
  const ParserConfig& first = configs_[0];
  const bool envelope =
      first.kind == ParserConfig::Kind::kCri || first.kind == ParserConfig::Kind::kDocker;
  if (!envelope || configs_.size() == 1) {
    for (const ParserConfig& c : configs_) {
      if (parse_one(c, line, b)) {
        if (!c.time_key.empty()) apply_time(c, b);
        return true;
      }
    }
    return false;
  }
  // An envelope (cri, docker) first: the other parsers parse its message.
  if (!parse_one(first, line, b)) return false;
  if (!first.time_key.empty()) apply_time(first, b);
  Record& r = b.last();
  Field* message = b.find(r, "message");
  if (message == nullptr) return true;
  const size_t index = static_cast<size_t>(message - b.fields.data());
  padded_.assign(b.text(*message, scratch_));
  const size_t size = padded_.size();
  padded_.append(kPadding, ' ');
  const std::string_view inner(padded_.data(), size);
  for (size_t i = 1; i < configs_.size(); ++i) {
    if (parse_one(configs_[i], inner, b)) {
      if (!configs_[i].time_key.empty()) apply_time(configs_[i], b);
      // The message's fields replace it.
      b.fields.erase(b.fields.begin() + static_cast<std::ptrdiff_t>(index));
      --b.last().field_count;
      return true;
    }
  }
  return true;
}

bool Parsers::parse_one(const ParserConfig& c, std::string_view line, Batch& b) {
  switch (c.kind) {
    case ParserConfig::Kind::kJson:
      return json_.parse(line, b);
    case ParserConfig::Kind::kLogfmt:
      return parse_logfmt(line, b);
    case ParserConfig::Kind::kRegex:
      return parse_regex(*c.regex, line, b);
    case ParserConfig::Kind::kSyslog:
      return parse_syslog(line, b);
    case ParserConfig::Kind::kNginx:
    case ParserConfig::Kind::kApache:
      return parse_combined(line, b);
    case ParserConfig::Kind::kCri: {
      CriLine cri;
      if (!split_cri(line, cri)) return false;
      add_text(b, "time", cri.time);
      add_text(b, "stream", cri.stream);
      add_text(b, "logtag", cri.partial ? "P" : "F");
      add_text(b, "message", cri.message);
      return true;
    }
    case ParserConfig::Kind::kDocker: {
      Rollback rb(b);
      if (!json_.parse(line, b)) return false;
      Record& r = b.last();
      Field* log = b.find(r, "log");
      if (log == nullptr) return rb.fail();
      log->key = b.append("message");
      log->key_len = 7;
      log->key_escaped = false;
      // json-file keeps the line's newline: drop it.
      if (log->kind == ValueKind::kEscaped && log->value_len >= 2 &&
          b.value(*log).ends_with("\\n")) {
        // An even number of backslashes before "n" is a literal backslash.
        size_t slashes = 0;
        const std::string_view v = b.value(*log);
        for (size_t i = v.size() - 1; i-- > 0 && v[i] == '\\';) ++slashes;
        if (slashes % 2 == 0) log->value_len -= 2;
      } else if (log->kind == ValueKind::kString && b.value(*log).ends_with('\n')) {
        log->value_len -= 1;
      }
      return true;
    }
  }
  return false;
}

void Parsers::apply_time(const ParserConfig& c, Batch& b) {
  Record& r = b.last();
  for (uint32_t i = 0; i < r.field_count; ++i) {
    Field& f = b.fields[r.first_field + i];
    if (b.key(f) != c.time_key) continue;
    int64_t t = 0;
    if (parse_time(b.text(f, scratch_), c.time_format, t)) r.time_ns = t;
    if (!c.keep_time_key) {
      b.fields.erase(b.fields.begin() + r.first_field + i);
      --r.field_count;
    }
    return;
  }
}

}  // namespace sidecar::logship
