// libFuzzer target for what the cache filter parses from upstream responses
// and client requests: Cache-Control values and HTTP-dates (Date, Expires).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "filters/cache/cache_control.h"

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sidecar::filters::cache;
  const std::string_view value(reinterpret_cast<const char*>(data), size);
  CacheControl cc;
  parse_cache_control(value, cc);
  // Delta-seconds stay within RFC 9111's cap; absent is -1.
  for (int64_t v : {cc.max_age, cc.s_maxage, cc.max_stale, cc.min_fresh, cc.stale_while_revalidate,
                    cc.stale_if_error}) {
    check(v >= -1 && v <= 2147483648);
  }
  if (auto t = parse_http_date(value)) {
    // A date that parses formats back to an IMF-fixdate that parses to it.
    char out[30];
    format_http_date(*t, out);
    check(std::strlen(out) == 29);
    check(parse_http_date(out) == t);
  }
  return 0;
}
