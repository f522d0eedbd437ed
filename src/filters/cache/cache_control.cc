#include "filters/cache/cache_control.h"

#include <cstdio>
#include <ctime>

#include "http/http1_parser.h"

namespace sidecar::filters::cache {
namespace {

constexpr int64_t kMaxDelta = 2147483648;  // RFC 9111 1.2.2

using http::iequals;
using http::trim_ows;

// delta-seconds = 1*DIGIT, capped; -1 when not digits.
int64_t delta_seconds(std::string_view v) {
  if (v.empty()) return -1;
  int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
    if (n > kMaxDelta) n = kMaxDelta;
  }
  return n;
}

}  // namespace

void parse_cache_control(std::string_view value, CacheControl& cc) {
  size_t i = 0;
  while (i < value.size()) {
    // One directive: token [ "=" ( token / quoted-string ) ], comma-separated.
    size_t end = i;
    bool quoted = false;
    while (end < value.size()) {
      const char c = value[end];
      if (quoted) {
        if (c == '\\' && end + 1 < value.size()) {
          ++end;
        } else if (c == '"') {
          quoted = false;
        }
      } else if (c == '"') {
        quoted = true;
      } else if (c == ',') {
        break;
      }
      ++end;
    }
    const std::string_view item = trim_ows(value.substr(i, end - i));
    i = end + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    const std::string_view name = trim_ows(item.substr(0, eq));
    std::string_view arg =
        eq == std::string_view::npos ? std::string_view() : trim_ows(item.substr(eq + 1));
    const bool has_arg = eq != std::string_view::npos;
    if (arg.size() >= 2 && arg.front() == '"' && arg.back() == '"') {
      arg = arg.substr(1, arg.size() - 2);  // senders should not quote numbers; accept it
    }
    if (iequals(name, "no-store")) {
      cc.no_store = true;
    } else if (iequals(name, "no-cache")) {
      cc.no_cache = true;
    } else if (iequals(name, "private")) {
      cc.private_ = true;
    } else if (iequals(name, "public")) {
      cc.public_ = true;
    } else if (iequals(name, "must-revalidate")) {
      cc.must_revalidate = true;
    } else if (iequals(name, "proxy-revalidate")) {
      cc.proxy_revalidate = true;
    } else if (iequals(name, "only-if-cached")) {
      cc.only_if_cached = true;
    } else if (iequals(name, "max-age")) {
      const int64_t n = delta_seconds(arg);
      cc.max_age = n < 0 ? 0 : n;
    } else if (iequals(name, "s-maxage")) {
      const int64_t n = delta_seconds(arg);
      cc.s_maxage = n < 0 ? 0 : n;
    } else if (iequals(name, "max-stale")) {
      if (!has_arg) {
        cc.max_stale_any = true;
      } else if (const int64_t n = delta_seconds(arg); n >= 0) {
        cc.max_stale = n;
      }
    } else if (iequals(name, "min-fresh")) {
      if (const int64_t n = delta_seconds(arg); n >= 0) cc.min_fresh = n;
    } else if (iequals(name, "stale-while-revalidate")) {
      if (const int64_t n = delta_seconds(arg); n >= 0) cc.stale_while_revalidate = n;
    } else if (iequals(name, "stale-if-error")) {
      if (const int64_t n = delta_seconds(arg); n >= 0) cc.stale_if_error = n;
    }
  }
}

namespace {

int month_of(std::string_view m) {
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i) {
    if (m == kMonths[i]) return i;
  }
  return -1;
}

bool digits(std::string_view s, int& out) {
  if (s.empty() || s.size() > 4) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

// "08:49:37"
bool clock(std::string_view s, int& h, int& m, int& sec) {
  return s.size() == 8 && s[2] == ':' && s[5] == ':' && digits(s.substr(0, 2), h) &&
         digits(s.substr(3, 2), m) && digits(s.substr(6, 2), sec) && h < 24 && m < 60 && sec < 61;
}

std::optional<int64_t> to_epoch(int year, int month, int day, int h, int m, int s) {
  if (month < 0 || day < 1 || day > 31 || year < 1900 || year > 9998) return std::nullopt;
  std::tm t{};
  t.tm_year = year - 1900;
  t.tm_mon = month;
  t.tm_mday = day;
  t.tm_hour = h;
  t.tm_min = m;
  t.tm_sec = s;
  return static_cast<int64_t>(timegm(&t));
}

}  // namespace

std::optional<int64_t> parse_http_date(std::string_view v) {
  v = trim_ows(v);
  int day = 0, year = 0, h = 0, m = 0, s = 0;
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (29 characters).
  if (v.size() == 29 && v[3] == ',' && v[4] == ' ' && v[7] == ' ' && v[11] == ' ' && v[16] == ' ' &&
      v[25] == ' ' && v.substr(26) == "GMT") {
    if (!digits(v.substr(5, 2), day) || !digits(v.substr(12, 4), year) ||
        !clock(v.substr(17, 8), h, m, s)) {
      return std::nullopt;
    }
    return to_epoch(year, month_of(v.substr(8, 3)), day, h, m, s);
  }
  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; two-digit years per RFC 9110 5.6.7
  // (taken as within 50 years: 70-99 -> 19xx, else 20xx).
  if (const size_t comma = v.find(", "); comma != std::string_view::npos && comma >= 6 &&
                                         v.size() == comma + 24 && v[comma + 4] == '-' &&
                                         v[comma + 8] == '-' && v.substr(v.size() - 3) == "GMT") {
    const std::string_view rest = v.substr(comma + 2);
    if (!digits(rest.substr(0, 2), day) || !digits(rest.substr(7, 2), year) || rest[9] != ' ' ||
        !clock(rest.substr(10, 8), h, m, s) || rest[18] != ' ') {
      return std::nullopt;
    }
    year += year < 70 ? 2000 : 1900;
    return to_epoch(year, month_of(rest.substr(3, 3)), day, h, m, s);
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (v.size() == 24 && v[3] == ' ' && v[7] == ' ' && v[10] == ' ' && v[19] == ' ') {
    const std::string_view d = v[8] == ' ' ? v.substr(9, 1) : v.substr(8, 2);
    if (!digits(d, day) || !clock(v.substr(11, 8), h, m, s) || !digits(v.substr(20, 4), year)) {
      return std::nullopt;
    }
    return to_epoch(year, month_of(v.substr(4, 3)), day, h, m, s);
  }
  return std::nullopt;
}

void format_http_date(int64_t seconds, char out[30]) {
  const time_t t = static_cast<time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(out, 30, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

}  // namespace sidecar::filters::cache
