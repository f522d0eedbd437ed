// What the cache filter reads from HTTP fields: Cache-Control directives
// [RFC 9111 5.2, RFC 5861] and HTTP-dates [RFC 9110 5.6.7]. Parsers of
// untrusted input (fuzzed: test/fuzz/cache_control_fuzz.cc); pure and
// thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace sidecar::filters::cache {

// Delta-seconds are capped at 2^31 [RFC 9111 1.2.2]; -1 means absent.
struct CacheControl {
  bool no_store = false;
  bool no_cache = false;  // unqualified, or with field names (treated alike: stricter)
  bool private_ = false;  // any form
  bool public_ = false;
  bool must_revalidate = false;
  bool proxy_revalidate = false;
  bool only_if_cached = false;
  int64_t max_age = -1;
  int64_t s_maxage = -1;
  int64_t max_stale = -1;  // request; "max-stale" without a value: any staleness
  bool max_stale_any = false;
  int64_t min_fresh = -1;
  int64_t stale_while_revalidate = -1;
  int64_t stale_if_error = -1;
};

// Adds the directives of one Cache-Control field value to `cc` (a message
// may carry several field lines). Unknown directives are ignored; a
// directive with an invalid value is ignored too, except that an invalid
// max-age/s-maxage counts as 0 (stale: the safe reading, RFC 9111 4.2.1).
void parse_cache_control(std::string_view value, CacheControl& cc);

// Seconds since the epoch of an HTTP-date: IMF-fixdate
// ("Sun, 06 Nov 1994 08:49:37 GMT"), and the obsolete RFC 850 and asctime
// forms recipients must accept; nullopt when it is none of them.
std::optional<int64_t> parse_http_date(std::string_view value);

// The IMF-fixdate of `seconds` since the epoch.
void format_http_date(int64_t seconds, char out[30]);

}  // namespace sidecar::filters::cache
